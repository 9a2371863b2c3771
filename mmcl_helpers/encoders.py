"""MLP encoders f_x and f_t, built so that many of them can train side by side.

:class:`EnsembleMLP` holds ``E`` independent MLPs in stacked weight tensors and runs them with one
batched matrix product per layer. On a CPU, where small matrix products are dominated by per-call
overhead, this trains several bias settings in roughly the time of one (``benchmarks/`` measures
it). Members may have different input and output sizes: inputs are zero-padded and outputs
masked, which is exactly equivalent to separate networks. :meth:`EnsembleMLP.member` returns one
member as an ordinary ``nn.Sequential`` for use on its own.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from . import validation as val

__all__ = ["EnsembleMLP", "paper_hidden_widths", "mlp"]


def paper_hidden_widths(in_dim: int) -> list[int]:
    """Hidden widths of the paper's 7-layer encoder: 10, 50, 50, 50, 50, 10 times ``in_dim``."""
    return [m * in_dim for m in (10, 50, 50, 50, 50, 10)]


class _EnsembleLinear(nn.Module):
    def __init__(self, n: int, fan_ins: Sequence[int], in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, in_dim, out_dim))
        self.bias = nn.Parameter(torch.empty(n, 1, out_dim))
        with torch.no_grad():
            # PyTorch's nn.Linear default, using each member's own fan-in.
            for i, fan_in in enumerate(fan_ins):
                bound = 1.0 / math.sqrt(fan_in)
                self.weight[i].uniform_(-bound, bound)
                self.bias[i].uniform_(-bound, bound)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, h, self.weight)


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
        hidden: hidden-layer widths, shared by all members.
        negative_slope: leaky-ReLU slope.
        batch_norm: batch normalisation after each hidden linear layer.

    Shapes:
        forward: (E, B, max(in_dims)) or (B, max(in_dims)) -> (E, B, max(out_dims)).
    """

    def __init__(
        self,
        in_dims: Sequence[int],
        out_dims: Sequence[int],
        hidden: Sequence[int],
        negative_slope: float = 0.01,
        batch_norm: bool = True,
    ) -> None:
        super().__init__()
        val.check_params("EnsembleMLP", in_dims=(in_dims, val.SequenceOf(val.POSITIVE_INT)),
                         out_dims=(out_dims, val.SequenceOf(val.POSITIVE_INT)),
                         hidden=(hidden, val.SequenceOf(val.POSITIVE_INT, min_len=0)))
        if len(in_dims) != len(out_dims) or not in_dims:
            raise ValueError("in_dims and out_dims must be non-empty and of equal length.")
        self.in_dims, self.out_dims = [int(d) for d in in_dims], [int(d) for d in out_dims]
        self.hidden = [int(h) for h in hidden]
        self.negative_slope, self.batch_norm = negative_slope, batch_norm
        n, d_in, d_out = len(in_dims), max(self.in_dims), max(self.out_dims)
        layers: list[nn.Module] = []
        fan_ins: Sequence[int] = self.in_dims
        width = d_in
        for h in self.hidden:
            layers.append(_EnsembleLinear(n, fan_ins, width, h))
            if batch_norm:
                layers.append(_EnsembleBatchNorm(n, h))
            layers.append(nn.LeakyReLU(negative_slope))
            fan_ins, width = [h] * n, h
        layers.append(_EnsembleLinear(n, fan_ins, width, d_out))
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
        a, b = self.in_dims[i], self.out_dims[i]
        modules: list[nn.Module] = []
        width = a
        for layer in self.net:
            if isinstance(layer, _EnsembleLinear):
                is_last = layer is self.net[-1]
                w = layer.weight[i, :width, :]
                bias = layer.bias[i, 0, :]
                if is_last:
                    w, bias = w[:, :b], bias[:b]
                lin = nn.Linear(w.shape[0], w.shape[1])
                with torch.no_grad():
                    lin.weight.copy_(w.T)
                    lin.bias.copy_(bias)
                modules.append(lin)
                width = w.shape[1]
            elif isinstance(layer, _EnsembleBatchNorm):
                bn = nn.BatchNorm1d(width, eps=layer.eps, momentum=layer.momentum)
                with torch.no_grad():
                    bn.weight.copy_(layer.weight[i, 0])
                    bn.bias.copy_(layer.bias[i, 0])
                    bn.running_mean.copy_(layer.running_mean[i, 0])
                    bn.running_var.copy_(layer.running_var[i, 0])
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
) -> nn.Sequential:
    """A single plain MLP encoder: (B, in_dim) -> (B, out_dim)."""
    return EnsembleMLP([in_dim], [out_dim], hidden, negative_slope, batch_norm).member(0)
