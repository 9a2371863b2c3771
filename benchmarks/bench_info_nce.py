"""Speed of the InfoNCE loss (forward + backward) against a plain cross-entropy reference.

The reference forms the (E, B, B) logit matrix and applies ``cross_entropy`` in both directions;
``mmcl_helpers.core.losses.info_nce`` scales the (E, B, K) factors instead, reads the matched pairs off
the vectors and, for cosine similarity, shares one exponential between both directions. Both are
timed here, in the same run, and checked to agree.

    .venv/bin/python benchmarks/bench_info_nce.py [--members 10 --batch 512 --dim 6 --tau 0.1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from mmcl_helpers.core.losses import info_nce


def reference(z_x: torch.Tensor, z_t: torch.Tensor, tau: float) -> torch.Tensor:
    logits = F.normalize(z_x, dim=-1) @ F.normalize(z_t, dim=-1).transpose(-1, -2) / tau
    e, b, _ = logits.shape
    labels = torch.arange(b).repeat(e)
    rows = F.cross_entropy(logits.reshape(e * b, b), labels, reduction="none").view(e, b).mean(1)
    cols = F.cross_entropy(logits.transpose(-1, -2).reshape(e * b, b), labels, reduction="none")
    return 0.5 * (rows + cols.view(e, b).mean(1))


def timed(fn, z_x, z_t, tau, repeats):
    for _ in range(3):
        fn(z_x, z_t, tau).sum().backward()
    start = time.perf_counter()
    for _ in range(repeats):
        fn(z_x, z_t, tau).sum().backward()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--members", type=int, default=10)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--dim", type=int, default=6)
    parser.add_argument("--tau", type=float, default=0.1)
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    gen = torch.Generator().manual_seed(0)
    shape = (args.members, args.batch, args.dim)
    z_x = torch.randn(shape, generator=gen, requires_grad=True)
    z_t = torch.randn(shape, generator=gen, requires_grad=True)
    ours = info_nce(z_x, z_t, "cosine", args.tau)
    ref = reference(z_x, z_t, args.tau)
    assert torch.allclose(ours, ref, rtol=1e-4, atol=1e-4), (ours, ref)
    t_ref = timed(reference, z_x, z_t, args.tau, args.repeats)
    t_ours = timed(lambda a, b, tau: info_nce(a, b, "cosine", tau), z_x, z_t, args.tau, args.repeats)
    print(f"{args.members} members x batch {args.batch} x dim {args.dim}, tau {args.tau}, "
          f"{torch.get_num_threads()} threads (forward + backward, mean of {args.repeats})")
    print(f"cross-entropy reference: {t_ref * 1e3:8.2f} ms")
    print(f"mmcl_helpers info_nce:   {t_ours * 1e3:8.2f} ms")
    print(f"speed-up (reference / info_nce): {t_ref / t_ours:.2f}x")


if __name__ == "__main__":
    main()
