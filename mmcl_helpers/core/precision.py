"""The numeric precision a training run uses: ``Profile.precision`` takes effect here.

``"fp32"`` (every profile: float32 everywhere, TF32 off), ``"tf32"`` (float32 storage, TF32
tensor-core matrix products on CUDA; no effect on a CPU) or ``"bf16"`` (the encoders under
bfloat16 autocast, applied in :func:`~mmcl_helpers.numerical.training.train_mmcl`; the loss is computed from
float32 copies of their outputs).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["PRECISIONS", "precision_context"]

#: The allowed values of ``Profile.precision``.
PRECISIONS = ("fp32", "tf32", "bf16")


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
