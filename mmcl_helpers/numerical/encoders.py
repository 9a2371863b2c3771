"""MLP encoders f_x and f_t, built so that many of them can train side by side.

:class:`EnsembleMLP` holds ``E`` independent MLPs in stacked weight tensors and runs them with one
batched matrix product per layer. On a CPU, where small matrix products are dominated by per-call
overhead, this trains several bias settings in roughly the time of one (``benchmarks/`` measures
it). Members may have different input and output sizes: inputs are zero-padded and outputs
masked, which is exactly equivalent to separate networks. Members may also have different hidden
widths (the paper's encoder, whose widths are multiples of each member's input size): every layer
is padded to the largest width and the weights past a member's own widths are masked to zero, so
the padding never touches a member's numbers. Given one ``torch.Generator`` per member, each
member's real block is initialised exactly as its standalone network built from the same
generator. :meth:`EnsembleMLP.member` returns one member as an ordinary ``nn.Sequential`` for use
on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from mmcl_helpers.core import validation as val

__all__ = ["EnsembleMLP", "paper_hidden_widths", "mlp"]


def paper_hidden_widths(in_dim: int) -> list[int]:
    """Hidden widths of the paper's 7-layer encoder: 10, 50, 50, 50, 50, 10 times ``in_dim``."""
    return [m * in_dim for m in (10, 50, 50, 50, 50, 10)]


class _EnsembleLinear(nn.Module):
    def __init__(
        self,
        n: int,
        fan_ins: Sequence[int],
        in_dim: int,
        out_dim: int,
        out_widths: Sequence[int] | None = None,
        generators: Sequence[torch.Generator] | None = None,
    ) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim))
        self.register_buffer("weight_mask", None)
        self.register_buffer("bias_mask", None)
        with torch.no_grad():
            if generators is None:
                # PyTorch's nn.Linear default, using each member's own fan-in.
                for i, fan_in in enumerate(fan_ins):
                    bound = 1.0 / math.sqrt(fan_in)
                    self.weight[i].uniform_(-bound, bound)
                    self.bias[i].uniform_(-bound, bound)
            else:
                # Each member draws only its own (fan_in, width) block, from its own generator, in
                # the order a standalone network would: the same numbers as that network.
                widths = list(out_widths) if out_widths is not None else [out_dim] * n
                self.weight.zero_()
                self.bias.zero_()
                for i, (fan_in, width, g) in enumerate(zip(fan_ins, widths, generators)):
                    bound = 1.0 / math.sqrt(fan_in)
                    self.weight[i, :fan_in, :width] = torch.empty(fan_in, width).uniform_(
                        -bound, bound, generator=g)
                    self.bias[i, 0, :width] = torch.empty(width).uniform_(-bound, bound, generator=g)
        if out_widths is not None and (min(fan_ins) < in_dim or min(out_widths) < out_dim):
            w_mask = torch.zeros(n, in_dim, out_dim)
            b_mask = torch.zeros(n, 1, out_dim)
            for i, (a, b) in enumerate(zip(fan_ins, out_widths)):
                w_mask[i, :a, :b] = 1.0
                b_mask[i, :, :b] = 1.0
            self.weight_mask, self.bias_mask = w_mask, b_mask

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.weight_mask is None:
            return torch.baddbmm(self.bias, h, self.weight)
        # Masking the weights (not the activations) costs E*in*out per step instead of E*B*out and
        # keeps every padded weight's gradient exactly zero.
        return torch.baddbmm(self.bias * self.bias_mask, h, self.weight * self.weight_mask)


class _EnsembleBatchNorm(nn.Module):
    def __init__(self, n: int, dim: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n, 1, dim))
        self.bias = nn.Parameter(torch.zeros(n, 1, dim))
        self.register_buffer("running_mean", torch.zeros(n, 1, dim))
        self.register_buffer("running_var", torch.ones(n, 1, dim))
        self.momentum, self.eps = momentum, eps

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        # Members and features side by side as E*H channels lets one fused batch-norm kernel do
        # the work; the (E, 1, H) parameters and statistics are viewed, not copied.
        e, b, d = h.shape
        flat = h.transpose(0, 1).reshape(b, e * d)
        out = nn.functional.batch_norm(
            flat, self.running_mean.view(-1), self.running_var.view(-1), self.weight.view(-1),
            self.bias.view(-1), self.training, self.momentum, self.eps,
        )
        return out.view(b, e, d).transpose(0, 1)


class EnsembleMLP(nn.Module):
    """``E`` independent MLPs evaluated together.

    Args:
        in_dims: input size of each member (length E); inputs are padded to the largest.
        out_dims: output size of each member (length E); outputs past it are set to zero.
        hidden: hidden-layer widths, shared by all members, or one list of widths per member
            (all of the same depth; each layer is padded to its largest width and masked).
        negative_slope: leaky-ReLU slope.
        batch_norm: batch normalisation after each hidden linear layer.
        generators: optional, one ``torch.Generator`` per member: member i's weights are drawn
            from ``generators[i]`` exactly as ``mlp(..., generator=generators[i])`` draws them, so
            an ensemble member starts where its standalone network starts. Default: the global
            generator, layer by layer across members (the compact ensemble's historical order).

    Shapes:
        forward: (E, B, max(in_dims)) or (B, max(in_dims)) -> (E, B, max(out_dims)).
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        out_dims: Sequence[int],
        hidden: Sequence[int] | Sequence[Sequence[int]],
        negative_slope: float = 0.01,
        batch_norm: bool = True,
        generators: Sequence[torch.Generator] | None = None,
    ) -> None:
        super().__init__()
        val.check_params("EnsembleMLP", in_dims=(in_dims, val.SequenceOf(val.POSITIVE_INT)),
                         out_dims=(out_dims, val.SequenceOf(val.POSITIVE_INT)),
                         # one list of widths shared by all members, or one list per member
                         hidden=(hidden, [val.SequenceOf(val.POSITIVE_INT, min_len=0),
                                          val.SequenceOf(val.SequenceOf(val.POSITIVE_INT, min_len=0))]))
        if len(in_dims) != len(out_dims) or not in_dims:
            raise ValueError("in_dims and out_dims must be non-empty and of equal length.")
        self.in_dims, self.out_dims = [int(d) for d in in_dims], [int(d) for d in out_dims]
        n = len(self.in_dims)
        per_member = len(hidden) > 0 and hasattr(hidden[0], "__len__")
        widths = [[int(h) for h in row] for row in hidden] if per_member else [
            [int(h) for h in hidden]] * n
        if len(widths) != n or len({len(row) for row in widths}) != 1:
            raise ValueError(
                f"hidden must be one list of widths, or one list per member ({n}) of equal depth; "
                f"got {hidden!r}."
            )
        if generators is not None and len(generators) != n:
            raise ValueError(f"generators must hold one generator per member ({n}), got {len(generators)}.")
        self.member_hidden = widths
        self.hidden = [max(col) for col in zip(*widths)]
        self.negative_slope, self.batch_norm = negative_slope, batch_norm
        d_in, d_out = max(self.in_dims), max(self.out_dims)
        ragged = per_member or generators is not None
        layers: list[nn.Module] = []
        fan_ins: Sequence[int] = self.in_dims
        width = d_in
        for j, h in enumerate(self.hidden):
            own = [row[j] for row in widths]
            layers.append(_EnsembleLinear(n, fan_ins, width, h, own if ragged else None, generators))
            if batch_norm:
                layers.append(_EnsembleBatchNorm(n, h))
            layers.append(nn.LeakyReLU(negative_slope))
            fan_ins, width = own, h
        layers.append(_EnsembleLinear(n, fan_ins, width, d_out, self.out_dims if ragged else None,
                                      generators))
        self.net = nn.Sequential(*layers)
        in_mask = torch.zeros(n, 1, d_in)
        out_mask = torch.zeros(n, 1, d_out)
        for i, (a, b) in enumerate(zip(self.in_dims, self.out_dims)):
            in_mask[i, :, :a] = 1.0
            out_mask[i, :, :b] = 1.0
        self.register_buffer("in_mask", in_mask)
        self.register_buffer("out_mask", out_mask)

    @property
    def n_members(self) -> int:
        return len(self.in_dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 2:
            x = x.unsqueeze(0).expand(self.n_members, -1, -1)
        return self.net(x * self.in_mask) * self.out_mask

    def member(self, i: int) -> nn.Sequential:
        """Member ``i`` as a plain ``nn.Sequential``: (B, in_dims[i]) -> (B, out_dims[i])."""
        widths = [*self.member_hidden[i], self.out_dims[i]]
        modules: list[nn.Module] = []
        width, j = self.in_dims[i], 0
        for layer in self.net:
            if isinstance(layer, _EnsembleLinear):
                w = layer.weight[i, :width, : widths[j]]
                bias = layer.bias[i, 0, : widths[j]]
                lin = nn.Linear(w.shape[0], w.shape[1])
                with torch.no_grad():
                    lin.weight.copy_(w.T)
                    lin.bias.copy_(bias)
                modules.append(lin)
                width, j = w.shape[1], j + 1
            elif isinstance(layer, _EnsembleBatchNorm):
                bn = nn.BatchNorm1d(width, eps=layer.eps, momentum=layer.momentum)
                with torch.no_grad():
                    bn.weight.copy_(layer.weight[i, 0, :width])
                    bn.bias.copy_(layer.bias[i, 0, :width])
                    bn.running_mean.copy_(layer.running_mean[i, 0, :width])
                    bn.running_var.copy_(layer.running_var[i, 0, :width])
                modules.append(bn)
            else:
                modules.append(nn.LeakyReLU(self.negative_slope))
        return nn.Sequential(*modules).to(self.in_mask.device).train(self.training)


def mlp(
    in_dim: int,
    out_dim: int,
    hidden: Sequence[int],
    negative_slope: float = 0.01,
    batch_norm: bool = False,
    generator: torch.Generator | None = None,
) -> nn.Sequential:
    """A single plain MLP encoder: (B, in_dim) -> (B, out_dim); ``generator`` draws its weights."""
    gens = None if generator is None else [generator]
    return EnsembleMLP([in_dim], [out_dim], hidden, negative_slope, batch_norm, gens).member(0)
