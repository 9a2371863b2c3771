"""What one image-text training step costs at the cpu profile, three ways, against eager float32.

Chapters 5 and 6 train their scene models one after another, so a cheaper step shortens them
directly. This times the cpu profile's step (image and text towers, cosine InfoNCE, backward, Adam)
for both first strides the recipe uses, in one run:

1. eager float32 (what every profile runs today): the baseline, ratio 1;
2. the towers under bfloat16 autocast, loss in float32 (``Profile.precision = "bf16"`` of the
   numerical study; not an option of the image-text profiles);
3. ``torch.compile`` of both towers, float32.

A ratio below 1 is faster. bfloat16 is fast only on CPUs with native bfloat16 instructions
(``avx512_bf16``/AMX on x86); elsewhere it can be slower than float32, and it changes the numbers
a run gives, so a build that used it would read differently from machine to machine. The run
prints whether this CPU has them.

    .venv/bin/python benchmarks/bench_image_text_step.py [--steps 15] [--repeats 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch

from mmcl_helpers.core.losses import info_nce
from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES
from mmcl_helpers.image_text.image_encoders import ImageEncoder, TextEncoder


def _cpu_has_bf16() -> str:
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return "unknown"
    return "yes" if ("avx512_bf16" in flags or "amx_bf16" in flags) else "no"


def _seconds_per_step(mode: str, stride: int, steps: int, repeats: int) -> float:
    p = IMAGE_TEXT_PROFILES["cpu"]
    torch.manual_seed(0)
    f_x = ImageEncoder(14, p.widths, p.hidden, first_stride=stride)
    f_t = TextEncoder(60, 14, p.text_embed, p.text_channels, p.hidden)
    opt = torch.optim.Adam(list(f_x.parameters()) + list(f_t.parameters()), lr=p.lr)
    images = torch.randint(0, 256, (p.batch_size, 64, 64, 3), dtype=torch.uint8)
    tokens = torch.randint(1, 60, (p.batch_size, 16))
    fx, ft = (torch.compile(f_x), torch.compile(f_t)) if mode == "compile" else (f_x, f_t)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", torch.bfloat16, enabled=mode == "bf16"):
            z_x, z_t = fx(images), ft(tokens)
        info_nce(z_x.float(), z_t.float(), "cosine", p.tau).backward()
        opt.step()

    for _ in range(3):  # warm-up: allocator, first calls, compilation
        step()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, (time.perf_counter() - start) / steps)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"cpu profile step, batch {IMAGE_TEXT_PROFILES['cpu'].batch_size}, {args.threads} thread(s), "
          f"best of {args.repeats} x {args.steps} steps; native bfloat16 on this CPU: {_cpu_has_bf16()}")
    print(f"{'first stride':>12s} {'mode':>22s} {'ms/step':>8s} {'ratio':>6s}")
    for stride in (1, 2):
        base = None
        for mode, label in (("fp32", "eager float32"), ("bf16", "bfloat16 autocast"),
                            ("compile", "torch.compile float32")):
            sec = _seconds_per_step(mode, stride, args.steps, args.repeats)
            base = base or sec
            print(f"{stride:12d} {label:>22s} {1000 * sec:8.1f} {sec / base:6.2f}")


if __name__ == "__main__":
    main()
