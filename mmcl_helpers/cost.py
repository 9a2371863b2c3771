"""What one training step of the numerical study costs, and the numeric precision it runs in.

:func:`step_flops` counts the floating-point operations of one step of the paper's encoders and
Euclidean InfoNCE loss, from the layer widths alone: a dense layer of ``a -> b`` inputs costs
``2 a b`` FLOPs per sample forward (one multiply, one add) and twice that backward (gradients of
the inputs and of the weights), so ``6 a b`` per sample and step. Element-wise work (activations,
masks, the optimiser) is left out: it is a few per cent at these widths. A reader can divide the
count by a device's sustained throughput to estimate the time of a step on any GPU.

:func:`precision_context` is where a profile's ``precision`` takes effect: ``"fp32"`` (the paper
profile: float32 everywhere, TF32 off), ``"tf32"`` (float32 storage, TF32 tensor-core matrix
products on CUDA; no effect on a CPU) or ``"bf16"`` (the encoders under bfloat16 autocast, applied
in :func:`~mmcl_helpers.training.train_mmcl`; the loss is computed from float32 copies of their
outputs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch

from .encoders import paper_hidden_widths

__all__ = ["PRECISIONS", "precision_context", "mlp_macs", "step_flops"]

#: The allowed values of ``Profile.precision``.
PRECISIONS = ("fp32", "tf32", "bf16")


def mlp_macs(in_dim: int, hidden: Sequence[int], out_dim: int) -> int:
    """Multiply-accumulates of one sample through a dense MLP ``in_dim -> hidden... -> out_dim``."""
    widths = [int(in_dim), *[int(h) for h in hidden], int(out_dim)]
    return sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def step_flops(
    x_dim: int, t_dims: Sequence[int], out_dims: Sequence[int], batch: int, padded: bool = False
) -> dict[str, float]:
    """FLOPs of one training step of the paper's encoders for a group of settings.

    Args:
        x_dim: image size; t_dims: caption size per setting; out_dims: encoding size per setting.
        batch: pairs per step.
        padded: count what an ensemble computes (every text encoder at the largest caption's
            widths) instead of what the settings need.

    Returns:
        ``encoders`` (6 x MACs x batch, both encoders of every setting), ``loss`` (the B x B x K
        similarity product, forward and backward: 6 B^2 K per setting), and ``total``.
    """
    if len(t_dims) != len(out_dims):
        raise ValueError(f"t_dims and out_dims differ in length: {len(t_dims)} vs {len(out_dims)}.")
    widest = max(t_dims)
    enc = loss = 0.0
    for d, k in zip(t_dims, out_dims):
        dt = widest if padded else d
        kk = max(out_dims) if padded else k
        enc += 6.0 * batch * (mlp_macs(x_dim, paper_hidden_widths(x_dim), kk)
                              + mlp_macs(dt, paper_hidden_widths(dt), kk))
        loss += 6.0 * batch * batch * kk
    return {"encoders": enc, "loss": loss, "total": enc + loss}


def _check(precision: str) -> None:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}.")


@contextlib.contextmanager
def precision_context(precision: str, device: str | torch.device) -> Iterator[None]:
    """Wrap a whole training run: TF32 matrix products on CUDA under ``"tf32"`` only.

    (``"bf16"`` autocast wraps only the encoders' forward pass, inside the training step.)

    Raises:
        ValueError: ``precision`` is not one of :data:`PRECISIONS`.
    """
    _check(precision)
    if torch.device(device).type != "cuda":
        yield
        return
    before = torch.backends.cuda.matmul.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32 = before
