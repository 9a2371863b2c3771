"""Kernels, host syncs and host-to-device copies per training step: before vs after, one run.

For the book's small models the GPU time of a step is set by how many operations it dispatches
(each at least one kernel launch) and how often the host waits for the device (each value
copied back is a synchronisation), far more than by FLOPs. Issue 16 removed per-step syncs and
copies from the training loops; this benchmark measures both versions of the package in the
same run, on this machine's CPU:

- **before**: the package as of ``--before`` (default ``1043ea4``, the code the issue reviewed:
  a finiteness test and a ``.cpu()`` copy of the losses every step, image-text batches gathered
  from host memory and copied, a Cholesky factor copied on every draw), extracted with
  ``git archive`` into a temporary folder;
- **after**: the package in this working tree.

Each version runs in its own subprocess (so the two never share an import) the same two loops
with the ``gpu`` profile's structure at a tiny batch (the count of operations does not depend on
the batch size): the numerical study's ensemble (``train_mmcl``, eleven settings, eager) and the
image-text encoders (``train_pair_encoders``). Per step, as (run of 2k steps - run of k steps)/k:

- ``ops``: leaf ``aten::`` operations seen by ``torch.profiler`` (each is >= 1 kernel on a GPU);
- ``host reads``: calls of ``.cpu()``, ``.item()``, ``.tolist()``, ``.numpy()``, ``bool()``,
  ``float()``, ``int()`` on tensors (each is a device sync on a GPU; an upper bound, since reads of
  host-only tensors count too);
- ``to-device``: calls of ``Tensor.to``/``Tensor.cuda`` naming a device, made by the package's
  code on a host tensor (each is a host-to-device copy on a GPU run; on this CPU they are
  counted, not timed; torch's own ``.to`` calls inside clipping move device tensors, not host
  data, and are left out).

The ratio column is before / after. Counts, not times: the GPU time they imply is an estimate
(see ``mmcl_helpers.book_support.costs``).

    .venv/bin/python benchmarks/bench_step_syncs.py [--before REF] [--k 4]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs inside each subprocess, against whichever mmcl_helpers is first on sys.path. Only names
# present in both versions are used.
MEASURE = r'''
import contextlib, json, os, sys
import torch
torch.set_num_threads(1)
from torch.profiler import ProfilerActivity, profile
import mmcl_helpers
from mmcl_helpers.numerical.experiments import numerical_selection_sweep
from mmcl_helpers.numerical.latents import LatentModel
from mmcl_helpers.numerical.simulation import MultimodalSimulation
from mmcl_helpers.numerical.training import train_mmcl
from mmcl_helpers.core.profiles import PROFILES
from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES
from mmcl_helpers.image_text.pair_training import train_pair_encoders
from mmcl_helpers.datasets.scenes import render_scenes, sample_scene_latents
from mmcl_helpers.datasets.captions import scene_captions, named_selection_sweep

PACKAGE = os.path.dirname(mmcl_helpers.__file__)
READS = ("cpu", "item", "tolist", "numpy", "__bool__", "__float__", "__int__")

def _names_device(args, kwargs):
    cand = list(args) + [kwargs.get("device")]
    return any(isinstance(a, (str, torch.device)) for a in cand if a is not None)

@contextlib.contextmanager
def counting():
    counts = {"reads": 0, "to_device": 0}
    saved = {n: getattr(torch.Tensor, n) for n in (*READS, "to", "cuda")}
    def read(fn):
        def f(self, *a, **k):
            counts["reads"] += 1
            return fn(self, *a, **k)
        return f
    def move(fn, always):
        def f(self, *a, **k):
            # Only the package's own calls: torch's internal .to() calls move device tensors
            # between devices they already share (clipping, module conversion), not host data.
            caller = sys._getframe(1).f_code.co_filename
            if (self.device.type == "cpu" and PACKAGE in caller
                    and (always or _names_device(a, k))):
                counts["to_device"] += 1
            return fn(self, *a, **k)
        return f
    for n in READS:
        setattr(torch.Tensor, n, read(saved[n]))
    torch.Tensor.to = move(saved["to"], False)
    torch.Tensor.cuda = move(saved["cuda"], True)
    try:
        yield counts
    finally:
        for n, fn in saved.items():
            setattr(torch.Tensor, n, fn)

def measure(run, steps):
    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
        with counting() as c, profile(activities=[ProfilerActivity.CPU]) as prof:
            run(steps)
    ops = sum(1 for e in prof.events() if e.name.startswith("aten::")
              and not any(ch.name.startswith("aten::") for ch in e.cpu_children))
    return ops, c["reads"], c["to_device"]

def per_step(run, k):
    run(1)  # warm-up: one-time set-up (per-device copies, caches) is not a per-step cost
    a, b = measure(run, k), measure(run, 2 * k)
    return [(y - x) / k for x, y in zip(a, b)]

k = int(sys.argv[1])
sim = MultimodalSimulation(LatentModel(10, 5, 5, seed=0), numerical_selection_sweep(10)[:11], seed=0)
num = PROFILES["gpu"].with_overrides(batch_size=16, compile=False)
def numerical(steps):
    train_mmcl(sim, num.with_overrides(steps=steps), seed=0, device="cpu", progress=False)

lat = sample_scene_latents(32, seed=0)
caps = scene_captions(lat, named_selection_sweep()["{shape..y_pos}"], seed=0)
images = render_scenes(lat)
pairs = IMAGE_TEXT_PROFILES["gpu"].with_overrides(batch_size=8)
def image_text(steps):
    train_pair_encoders(images, caps.text, 7, pairs.with_overrides(steps=steps), seed=0,
                        device="cpu", progress=False)

out = {"numerical x11": per_step(numerical, k), "image-text": per_step(image_text, k)}
print(json.dumps({"package": os.path.dirname(mmcl_helpers.__file__), "loops": out}))
'''


def extract(ref: str, into: Path) -> Path:
    """``git archive ref mmcl_helpers`` unpacked under ``into``; returns ``into``."""
    done = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", ref, "mmcl_helpers"],
                          capture_output=True)
    if done.returncode != 0:
        raise SystemExit(f"--before {ref}: git cannot read that commit here "
                         f"({done.stderr.decode().strip()}); a shallow clone lacks it, so fetch "
                         "the history or pass --before with a commit you have.")
    blob = done.stdout
    tar_path = into / "before.tar"
    tar_path.write_bytes(blob)
    with tarfile.open(tar_path) as tar:
        tar.extractall(into, filter="data")
    return into


def run_version(package_root: Path, k: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(package_root), "MMCL_PROGRESS": "0",
           "OMP_NUM_THREADS": "1", "MMCL_CACHE_DIR": tempfile.mkdtemp(prefix="mmcl_bench_")}
    done = subprocess.run([sys.executable, "-c", MEASURE, str(k)], env=env, cwd=package_root,
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"measuring {package_root} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected = (package_root / "mmcl_helpers").resolve()
    if Path(result["package"]).resolve() != expected:
        raise SystemExit(f"measured {result['package']}, expected {expected}")
    return result["loops"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="1043ea4", help="git ref of the baseline package")
    parser.add_argument("--k", type=int, default=4, help="steps of the shorter measured run")
    args = parser.parse_args()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        before = run_version(extract(args.before, Path(tmp)), args.k)
    after = run_version(ROOT, args.k)
    print(f"per training step, before = {args.before}, after = working tree "
          "(gpu-profile structure, on this CPU)")
    print(f"{'loop':14s} {'count':10s} {'before':>8s} {'after':>8s} {'before/after':>12s}")
    for loop in after:
        for i, name in enumerate(("ops", "host reads", "to-device")):
            b, a = before[loop][i], after[loop][i]
            ratio = f"{b / a:12.1f}" if a > 0 else ("           -" if b == 0 else "    inf (->0)")
            print(f"{loop:14s} {name:10s} {b:8.2f} {a:8.2f} {ratio}")
    print(f"(measured in {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
