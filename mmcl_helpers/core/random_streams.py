"""Small utilities shared by the datasets and the studies: hashed (counter-based) random numbers.

Counter-based numbers depend only on ``(seed, index, stream)``, so a scene, a caption word or a
split draw never changes when other samples are drawn with it, or in another order. (The cache
folder and cache files live in ``mmcl_helpers.core.storage``.)
"""

from __future__ import annotations

import numpy as np

__all__ = ["hashed_uniform", "hashed_integers"]

_MASK64 = (1 << 64) - 1


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def hashed_uniform(seed: int, index: np.ndarray, stream: int) -> np.ndarray:
    """Uniform numbers on [0, 1) that depend only on ``(seed, index, stream)``.

    A counter-based generator (SplitMix64 hashing): the number for one index never depends on
    which other indices are drawn with it.

    Args:
        seed: non-negative integer seed.
        index: integer sample indices, any shape.
        stream: non-negative integer naming the quantity drawn (one per factor).

    Returns:
        float64 array of the shape of ``index``.
    """
    for name, v in (("seed", seed), ("stream", stream)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 0 <= int(v) <= _MASK64:
            raise ValueError(f"{name} must be an integer in 0..2**64-1, got {v!r}.")
    idx = np.asarray(index)
    if idx.size and (not np.issubdtype(idx.dtype, np.integer) or idx.min() < 0):
        raise ValueError("index must hold non-negative integers.")
    with np.errstate(over="ignore"):
        key = _mix64(np.array([int(seed)], dtype=np.uint64) + np.uint64(0x9E3779B97F4A7C15))
        key = _mix64(key ^ np.uint64((int(stream) * 0xD1B54A32D192ED03) & _MASK64))
        z = _mix64(key ^ (idx.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def hashed_integers(seed: int, index: np.ndarray, stream: int, high: int) -> np.ndarray:
    """Uniform integers in 0..high-1 from :func:`hashed_uniform` (int64, the shape of ``index``)."""
    return np.minimum((hashed_uniform(seed, index, stream) * high).astype(np.int64), high - 1)
