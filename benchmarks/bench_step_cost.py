"""Work per training step: FLOPs, aten operations dispatched and host reads, for every profile.

For these small models the number of operations a step dispatches (each at least one kernel
launch on a GPU) and the values it copies back to the host (each a synchronisation on a GPU)
decide the GPU time more than the FLOPs do. This prints, per profile, the measured step costs
that ``mmcl_helpers.book_support.costs`` multiplies into the introduction's cost table:

- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on the meta device (forward + backward);
- operations: ``torch.profiler`` on the CPU, leaf ``aten::`` operations of the real training loop,
  (run of 2k steps - run of k steps) / k;
- host reads: calls of ``.cpu()``, ``.item()``, ``.tolist()``, ``.numpy()``, ``bool()``, ``float()``
  and ``int()`` on tensors in the same runs (``costs.count_host_reads``).

Run it on two versions of the training loop (e.g. before and after a change) to compare them;
the figures of one run are comparable with each other.

    .venv/bin/python benchmarks/bench_step_cost.py [--profiles smoke gpu] [--members 11]
"""

from __future__ import annotations

import argparse
import time

import torch

from mmcl_helpers.book_support.costs import DEVICES, PROFILE_DEVICE, image_text_step_cost, numerical_step_cost
from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES, PROFILES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", nargs="+", default=list(PROFILES), choices=list(PROFILES))
    parser.add_argument("--members", type=int, default=11, help="settings trained side by side")
    args = parser.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    print(f"{'profile':8s} {'loop':14s} {'GFLOP/step':>9s} {'ops/step':>9s} {'reads/step':>10s} "
          f"{'est. ms/step':>12s}  priced on")
    for name in args.profiles:
        device = DEVICES[PROFILE_DEVICE[name]]
        for loop, cost in (
            (f"numerical x{args.members}", numerical_step_cost(PROFILES[name], args.members)),
            ("image-text", image_text_step_cost(IMAGE_TEXT_PROFILES[name])),
        ):
            ms = 1000 * device.seconds(cost, 1)
            print(f"{name:8s} {loop:14s} {cost.flops / 1e9:9.1f} {cost.ops:9.0f} {cost.host_reads:10.1f} "
                  f"{ms:12.2f}  {device.name}")
    print(f"(measured in {time.perf_counter() - start:.0f} s; "
          "ms/step is the estimate of mmcl_helpers.book_support.costs)")


if __name__ == "__main__":
    main()
