"""Peak host memory of chapter 4's sample estimators at a profile's sizes, before vs after chunking.

Chapter 4 evaluates every step of the proof on ``probe_test`` samples (20,000 at ``gpu`` and
``paper``). Its two InfoNCE evaluations used to form the full (N, N) similarity matrix: the
uniformity term of ``kernel_entropy`` (float32) and the ``info_nce_terms`` check on float64
oracle codes, which at N = 20,000 hold 1.6 GB and 3.2 GB per matrix before log-sum-exp's
temporaries. ``identifiability.chunked_info_nce_terms`` forms (N, 1024) blocks instead. Each
variant runs in its own child process, and the child's peak resident set size
(``ru_maxrss``) is reported, so the numbers are comparable within one run. The ``chapter`` variant
runs the chapter's estimators end to end on N samples (oracles, Darmois codes, k-NN entropies, the
kernel entropies of cell ``c314b843``, the contamination sweep), without the training cell.

    .venv/bin/python benchmarks/bench_ch4_memory.py [--profile gpu] [--skip-full]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.numerical.experiments import EVAL_SEED_OFFSET
from mmcl_helpers.numerical.identifiability import (OracleEncoders, chunked_info_nce_terms,
                                                   contamination_sweep,
    darmois_gaussian, estimate_eq2, fold, kernel_entropy, knn_entropy)
from mmcl_helpers.numerical.latents import LatentModel
from mmcl_helpers.core.losses import info_nce_terms
from mmcl_helpers.numerical.simulation import MultimodalSimulation

variant, n = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
bias = CaptionBias(selected={1, 2, 3, 4}, perturbed={4}, n_semantic=5)
sim = MultimodalSimulation(LatentModel(5, 5, 5, seed=0), [bias], seed=0)
oracle = OracleEncoders(sim)
batch = sim.sample(n, torch.Generator().manual_seed(EVAL_SEED_OFFSET))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
z_x, z_t = oracle.contaminated_codes(batch, "mx", 0.5)
if variant == "full":  # what the chapter did: the whole (N, N) matrix, float64
    value = float(info_nce_terms(torch.as_tensor(z_x), torch.as_tensor(z_t), "euclidean", 0.1)[1])
elif variant == "chunked":
    value = chunked_info_nce_terms(z_x, z_t, "euclidean", 0.1)[1]
else:  # the chapter's estimators, end to end
    rng = np.random.default_rng(0)
    darmois_gaussian(batch.latents.s[:, :3].double().numpy(), oracle.cov_unbiased)
    knn_entropy(rng.uniform(size=(n, 3)))
    u1 = rng.uniform(size=(n, 1))
    for z in (u1, rng.beta(2.0, 2.0, size=(n, 1)), fold(u1)):
        for tau in np.geomspace(1e-1, 1e-3, 5):
            kernel_entropy(z, z, tau)
    value = chunked_info_nce_terms(z_x, z_t, "euclidean", 0.1)[1]
    estimate_eq2(*oracle.codes(batch))
    contamination_sweep(oracle, batch, np.linspace(0.0, 1.0, 9))
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"variant": variant, "n": n, "uniformity": value, "peak_rss_mb": round(peak / 1024),
                  "rss_before_mb": round(base / 1024), "seconds": round(time.perf_counter() - t0, 1)}))
"""


def run(variant: str, n: int) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, variant, str(n)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", default="gpu", help="profile whose probe_test sets N")
    parser.add_argument("--skip-full", action="store_true", help="do not run the unchunked variant")
    args = parser.parse_args()
    from mmcl_helpers.core.profiles import get_profile

    n = get_profile(args.profile).probe_test
    variants = (["chunked", "chapter"] if args.skip_full else ["full", "chunked", "chapter"])
    print(f"N = {n} samples (profile {args.profile!r}); peak resident memory of each child process:")
    rows = []
    for v in variants:  # one line as each finishes
        r = run(v, n)
        rows.append(r)
        print(f"  {r['variant']:8s} peak {r['peak_rss_mb']:6d} MB (after sampling: {r['rss_before_mb']} MB), "
              f"uniformity {r['uniformity']:.9f}, {r['seconds']} s", flush=True)
    vals = {r["variant"]: r["uniformity"] for r in rows}
    if "full" in vals:
        print(f"  |full - chunked| = {abs(vals['full'] - vals['chunked']):.2e}")


if __name__ == "__main__":
    main()
