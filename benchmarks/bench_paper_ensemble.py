"""Step time of the paper's encoders: one ensemble per sweep vs one setting at a time vs B x B x d.

Three arms train the selection sweep's settings ({1}, [2], ..., [10]: caption sizes 6..15; or,
with ``--sweep perturbation``, the perturbation sweep's, every caption of size 15) with
the paper's 7-layer encoders, Euclidean InfoNCE at tau 1, Adam and per-model clipping, all
measured in the same run on the same device:

- ensemble: every setting in one :class:`~mmcl_helpers.numerical.encoders.EnsembleMLP` (widths padded to
  the largest caption, masked), one batched step;
- one at a time: one network pair per setting, one step each (the paper profile before);
- B x B x d: one at a time with the loss written as the authors' formulation, a (B, B, d) tensor
  of differences, instead of :func:`~mmcl_helpers.core.losses.info_nce`'s matrix product.

The batch is reduced (``--batch``, default 256) so that the whole run takes a few minutes on two
CPU cores; the FLOP count is printed for this batch and for the paper's 6,144, with its
arithmetic, so a reader can turn it into a step time on any device (FLOPs / sustained FLOP/s).
A last part times the two loss formulations alone at a larger batch. Nothing here is asserted.

    .venv/bin/python benchmarks/bench_paper_ensemble.py [--batch 256] [--steps 3] [--threads 1]
"""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from mmcl_helpers.book_support.costs import mlp_macs, step_flops
from mmcl_helpers.core.losses import info_nce
from mmcl_helpers.core.profiles import get_profile
from mmcl_helpers.numerical.encoders import paper_hidden_widths
from mmcl_helpers.numerical.experiments import numerical_perturbation_sweep, numerical_selection_sweep
from mmcl_helpers.numerical.latents import LatentModel
from mmcl_helpers.numerical.simulation import MultimodalSimulation, member_seed
from mmcl_helpers.numerical.training import build_encoders


def bbd_info_nce(z_x: torch.Tensor, z_t: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
    """Symmetric Euclidean InfoNCE from an explicit (B, B, d) difference tensor; z: (B, d)."""
    diff = z_x[:, None, :] - z_t[None, :, :]
    logits = -diff.pow(2).sum(-1) / tau
    labels = torch.arange(z_x.shape[0], device=z_x.device)
    return 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))


def _clip_per_member(params: list[torch.nn.Parameter], max_norm: float) -> None:
    grads = [p.grad for p in params if p.grad is not None]
    sq = sum(g.pow(2).flatten(1).sum(1) for g in grads)
    scale = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))


class Arm:
    """Encoders, optimiser and one training step for a group of settings."""

    def __init__(self, sim, group, sizes, prof, device, loss="matmul"):
        self.sim, self.group, self.loss, self.prof = sim, group, loss, prof
        seeds = [member_seed(0, sim.biases[k], "init") for k in group]
        self.fx, self.ft = (m.to(device) for m in build_encoders(
            sim.x_dim, [sim.t_dims[k] for k in group], [sizes[k] for k in group], prof, seeds))
        self.params = list(self.fx.parameters()) + list(self.ft.parameters())
        self.opt = torch.optim.Adam(self.params, lr=prof.lr)
        self.width = self.ft.in_mask.shape[-1]

    def step(self, x: torch.Tensor, t: torch.Tensor) -> None:
        z_x, z_t = self.fx(x), self.ft(t[self.group][:, :, : self.width])
        if self.loss == "matmul":
            losses = info_nce(z_x, z_t, "euclidean", self.prof.tau)
        else:
            losses = torch.stack([bbd_info_nce(a, b, self.prof.tau) for a, b in zip(z_x, z_t)])
        self.opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        _clip_per_member(self.params, self.prof.grad_clip)
        self.opt.step()


def _time_steps(arms: list[Arm], sim, batch: int, steps: int, device: str) -> float:
    gen = torch.Generator(device=device).manual_seed(0)
    data = [sim.sample(batch, gen) for _ in range(steps + 1)]
    for arm in arms:  # warm-up step: first-call allocations and kernel selection
        arm.step(data[0].x, data[0].t)
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for b in data[1:]:
        for arm in arms:
            arm.step(b.x, b.t)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def _loss_only(fn, batch: int, dim: int, repeats: int, device: str) -> float:
    g = torch.Generator(device=device).manual_seed(1)
    z_x = torch.randn(batch, dim, generator=g, device=device, requires_grad=True)
    z_t = torch.randn(batch, dim, generator=g, device=device, requires_grad=True)
    fn(z_x, z_t).backward()
    start = time.perf_counter()
    for _ in range(repeats):
        fn(z_x, z_t).backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / repeats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=256, help="pairs per step (paper: 6144)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per arm (after one warm-up)")
    parser.add_argument("--loss-batch", type=int, default=2048, help="batch of the loss-only timing")
    parser.add_argument("--sweep", default="selection", choices=["selection", "perturbation"],
                        help="perturbation: every caption of size 15, so the ensemble pads nothing")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default: torch's; 1 is steadier on a shared machine)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    prof = get_profile("paper").with_overrides(batch_size=args.batch)
    sweep = numerical_selection_sweep if args.sweep == "selection" else numerical_perturbation_sweep
    settings = sweep(10)
    sim = MultimodalSimulation(LatentModel(seed=0), settings, seed=0).to(device)
    sizes = [len(b.unbiased) for b in settings]
    n = len(settings)

    ensemble = _time_steps([Arm(sim, list(range(n)), sizes, prof, device)], sim, args.batch,
                           args.steps, device)
    alone = _time_steps([Arm(sim, [k], sizes, prof, device) for k in range(n)], sim, args.batch,
                        args.steps, device)
    bbd = _time_steps([Arm(sim, [k], sizes, prof, device, loss="bbd") for k in range(n)], sim,
                      args.batch, args.steps, device)

    print(f"paper encoders, {args.sweep} sweep ({n} settings, caption sizes {min(sim.t_dims)}.."
          f"{max(sim.t_dims)}), batch {args.batch}, {args.steps} timed steps per arm, device "
          f"{device}, {torch.get_num_threads()} threads")
    print(f"  ensemble (one batched step)          {ensemble:8.3f} s per sweep step")
    print(f"  one setting at a time                {alone:8.3f} s   ratio to ensemble "
          f"{alone / ensemble:5.2f}x")
    print(f"  one at a time, B x B x d loss        {bbd:8.3f} s   ratio to ensemble "
          f"{bbd / ensemble:5.2f}x, to one at a time {bbd / alone:5.2f}x")

    print("\nFLOPs per sweep step (dense layer a->b: 2ab per sample forward, 4ab backward = 6ab):")
    x_macs = mlp_macs(sim.x_dim, paper_hidden_widths(sim.x_dim), max(sizes))
    print(f"  f_x: {sim.x_dim} -> {paper_hidden_widths(sim.x_dim)} -> k: {x_macs:,} MACs per sample "
          f"(k = {max(sizes)})")
    for d in (min(sim.t_dims), max(sim.t_dims)):
        print(f"  f_t for a caption of size {d}: {d} -> {paper_hidden_widths(d)} -> k: "
              f"{mlp_macs(d, paper_hidden_widths(d), max(sizes)):,} MACs per sample")
    for batch in (args.batch, 6144):
        need = step_flops(sim.x_dim, sim.t_dims, sizes, batch)
        pad = step_flops(sim.x_dim, sim.t_dims, sizes, batch, padded=True)
        one = step_flops(sim.x_dim, [max(sim.t_dims)], [max(sizes)], batch)
        print(f"  batch {batch}: 6 x batch x MACs, both encoders, all settings = "
              f"{need['encoders'] / 1e9:.1f} GFLOP needed, {pad['encoders'] / 1e9:.1f} GFLOP as "
              f"padded in the ensemble; loss 6 x B^2 x k per setting = {need['loss'] / 1e9:.3g} "
              f"GFLOP; one [10] setting = {one['total'] / 1e9:.1f} GFLOP")
    for name, t, flops in (("ensemble", ensemble, "padded"), ("one at a time", alone, "needed")):
        f = step_flops(sim.x_dim, sim.t_dims, sizes, args.batch, padded=flops == "padded")["total"]
        print(f"  measured {name}: {f / t / 1e9:.1f} GFLOP/s sustained ({flops} FLOPs / step time)")

    dim = max(sizes)
    mm = _loss_only(lambda a, b: info_nce(a, b, "euclidean", 1.0), args.loss_batch, dim, 3, device)
    bb = _loss_only(bbd_info_nce, args.loss_batch, dim, 3, device)
    a, b = torch.randn(64, dim), torch.randn(64, dim)
    gap = float((info_nce(a, b, "euclidean", 1.0) - bbd_info_nce(a, b)).abs())
    print(f"\nloss alone, forward + backward, batch {args.loss_batch}, d = {dim}: matrix product "
          f"{mm * 1e3:.1f} ms, B x B x d {bb * 1e3:.1f} ms (ratio {bb / mm:.1f}x); the two agree "
          f"to {gap:.1e}. One (B, B, d) float32 tensor at batch 6144 holds "
          f"{6144**2 * dim * 4 / 1e9:.2f} GB.")


if __name__ == "__main__":
    main()
