"""Random invertible mixing functions g_x and g_t (the "renderer" of the numerical study).

Each mixing is a square MLP: ``n_layers`` linear maps with leaky-ReLU (slope 0.2) between them.
Every weight matrix has unit-norm columns and is kept only if its condition number is below a
threshold read off a pool of random matrices (the ``cond_ratio`` quantile), so that the map is
invertible and numerically well conditioned. Weights are frozen; :meth:`InvertibleMLP.inverse`
undoes the map exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from mmcl_helpers.core import validation as v

__all__ = ["InvertibleMLP", "well_conditioned_matrix"]


def well_conditioned_matrix(
    dim: int,
    rng: np.random.Generator,
    cond_ratio: float = 1e-3,
    pool_size: int = 4000,
) -> np.ndarray:
    """A random (dim, dim) matrix with unit-norm columns and a low condition number.

    The threshold is the ``cond_ratio`` quantile of the condition numbers of ``pool_size`` random
    column-normalised matrices; candidates are drawn until one falls below it.
    """
    if not 0.0 < cond_ratio <= 1.0:
        raise ValueError(f"cond_ratio must lie in (0, 1], got {cond_ratio!r}.")

    def candidates(n: int) -> np.ndarray:
        w = rng.uniform(-1.0, 1.0, size=(n, dim, dim))
        return w / np.linalg.norm(w, axis=1, keepdims=True)

    if dim == 1:
        return np.ones((1, 1))
    threshold = np.quantile(np.linalg.cond(candidates(pool_size)), cond_ratio)
    for _ in range(1000):
        batch = candidates(1000)
        ok = np.nonzero(np.linalg.cond(batch) <= threshold)[0]
        if ok.size:
            return batch[ok[0]]
    raise RuntimeError(f"No {dim}x{dim} matrix met the condition-number threshold {threshold:.3g}.")


class InvertibleMLP(nn.Module):
    """A frozen, invertible map R^dim -> R^dim.

    Args:
        dim: input and output size.
        n_layers: number of square linear layers (paper: 3).
        negative_slope: leaky-ReLU slope between layers (paper: 0.2).
        seed: seeds the weights.
        cond_ratio: quantile of the condition-number pool used as the acceptance threshold.
    """

    def __init__(
        self,
        dim: int,
        n_layers: int = 3,
        negative_slope: float = 0.2,
        seed: int = 0,
        cond_ratio: float = 1e-3,
    ) -> None:
        super().__init__()
        v.check_params("InvertibleMLP", dim=(dim, v.POSITIVE_INT), n_layers=(n_layers, v.POSITIVE_INT),
                       seed=(seed, v.NONNEG_INT), cond_ratio=(cond_ratio, v.Interval(v.Real, 0, 1, "right")),
                       negative_slope=(negative_slope, v.Interval(v.Real, None, None)))
        if not 0.0 < negative_slope <= 1.0:
            raise ValueError(
                f"negative_slope must lie in (0, 1] for the map to be invertible, "
                f"got {negative_slope!r}."
            )
        rng = np.random.default_rng(seed)
        mats = [well_conditioned_matrix(dim, rng, cond_ratio) for _ in range(n_layers)]
        self.register_buffer("weights", torch.as_tensor(np.stack(mats), dtype=torch.float32))
        self.register_buffer(
            "inverses", torch.as_tensor(np.linalg.inv(np.stack(mats)), dtype=torch.float32)
        )
        self.negative_slope = negative_slope
        self.dim = dim

    @torch.no_grad()
    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Mix latents: (N, dim) -> (N, dim)."""
        h = z
        last = len(self.weights) - 1
        for k, w in enumerate(self.weights):
            h = h @ w.T
            if k < last:
                h = nn.functional.leaky_relu(h, self.negative_slope)
        return h

    @torch.no_grad()
    def inverse(self, x: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`forward`: (N, dim) -> (N, dim)."""
        h = x
        last = len(self.weights) - 1
        for k in range(last, -1, -1):
            if k < last:
                h = torch.where(h >= 0, h, h / self.negative_slope)
            h = h @ self.inverses[k].T
        return h
