"""Speed-up of training several bias settings as one ensemble versus one setting at a time.

Three arms train the same settings for the same number of steps with the same profile: one
setting at a time (the baseline, eager PyTorch), all settings as one ensemble (eager), and the
ensemble with ``torch.compile`` (the ``cpu`` profile's default; its one-off compile time is
included, and reported on its own). Every arm is measured in the same run. Prints seconds per
arm and each arm's speed-up over the baseline.

    .venv/bin/python benchmarks/bench_ensemble_training.py [--profile cpu] [--steps 300]
"""

from __future__ import annotations

import argparse
import time

import torch

from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.profiles import get_profile
from mmcl_helpers.numerical.latents import LatentModel
from mmcl_helpers.numerical.simulation import MultimodalSimulation
from mmcl_helpers.numerical.training import train_mmcl


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--settings", type=int, default=10, help="selection sweep {1}..[k]")
    args = parser.parse_args()
    prof = get_profile(args.profile).with_overrides(steps=args.steps, compile=False)
    model = LatentModel(seed=0)
    settings = [CaptionBias(range(1, k + 1)) for k in range(1, args.settings + 1)]
    device = "cuda" if torch.cuda.is_available() else "cpu"

    start = time.perf_counter()
    for bias in settings:
        train_mmcl(MultimodalSimulation(model, [bias]), prof, device=device, progress=False)
    one_at_a_time = time.perf_counter() - start

    start = time.perf_counter()
    train_mmcl(MultimodalSimulation(model, settings), prof, device=device, progress=False)
    together = time.perf_counter() - start

    # The compile happens inside the first step; a one-step run of the same model measures it.
    compiled_prof = prof.with_overrides(compile=True)
    torch._dynamo.reset()
    start = time.perf_counter()
    train_mmcl(MultimodalSimulation(model, settings), compiled_prof.with_overrides(steps=1),
               device=device, progress=False)
    compile_once = time.perf_counter() - start
    torch._dynamo.reset()
    start = time.perf_counter()
    train_mmcl(MultimodalSimulation(model, settings), compiled_prof, device=device, progress=False)
    compiled = time.perf_counter() - start

    print(f"profile {prof.name}, {len(settings)} settings x {prof.steps} steps, "
          f"batch {prof.batch_size}, width {prof.hidden}, device {device}, "
          f"{torch.get_num_threads()} threads")
    print(f"one setting at a time: {one_at_a_time:8.2f} s")
    print(f"all settings together: {together:8.2f} s")
    print(f"ensemble + torch.compile: {compiled:8.2f} s  (of which about {compile_once:.1f} s "
          "compiling)")
    print(f"speed-up (baseline / ensemble): {one_at_a_time / together:.2f}x")
    print(f"speed-up (baseline / ensemble + compile): {one_at_a_time / compiled:.2f}x")
    print(f"speed-up (ensemble / ensemble + compile): {together / compiled:.2f}x")


if __name__ == "__main__":
    main()
