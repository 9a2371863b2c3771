"""Hashed (counter-based) random numbers and the one registry of their stream ids.

Counter-based numbers depend only on ``(seed, index, stream)``, so a scene, a caption word or a
split draw never changes when other samples are drawn with it, or in another order. Every stream
id the package uses is named in :data:`STREAMS` and read with :func:`stream`; no two names share
an id, so two quantities never draw the same numbers by accident. (The cache folder and cache
files live in ``mmcl_helpers.core.storage``.)
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Stream", "STREAMS", "stream", "hashed_uniform", "hashed_integers"]

_MASK64 = (1 << 64) - 1


class Stream(NamedTuple):
    """A block of stream ids: ``base`` .. ``base + width - 1`` (one per factor when ``width`` > 1)."""

    base: int
    width: int = 1


#: Every stream id of the package, by what it draws. Never change a number; the draws of every
#: scene and caption would change with it.
STREAMS: dict[str, Stream] = {
    # datasets.scenes: one id per scene factor, in the order semantics then image factors.
    "scene_factor": Stream(0, 12),
    # datasets.scenes: which shapes a contrast group's scenes take.
    "group_shapes": Stream(100),
    # datasets.scenes: which factor a contrast group varies (when not always the shape) ...
    "group_factor": Stream(101),
    # ... and the values its members take (one per semantic factor).
    "group_values": Stream(200, 7),
    # datasets.perturbation: whether a perturbable factor is redrawn in a pair (one per factor) ...
    "perturb_coin": Stream(1000, 100),
    # ... and the value it is redrawn to (one per factor).
    "perturb_value": Stream(2000, 100),
    # datasets.captions and datasets.mpi3d: which phrasing (template) a caption uses.
    "caption_phrasing": Stream(3000),
    # datasets.policies: whether a caption mentions a factor (one per factor) ...
    "policy_mention": Stream(4000, 100),
    # ... whether a mention misreports it (one per factor) ...
    "policy_resample": Stream(5000, 100),
    # ... the value it then reports (one per factor) ...
    "policy_value": Stream(6000, 100),
    # ... and which phrasing a policy caption uses.
    "policy_phrasing": Stream(7000),
}


def stream(name: str, offset: int = 0) -> int:
    """The stream id ``STREAMS[name].base + offset`` (``offset``: the factor's position in a block).

    Raises:
        ValueError: an unknown name, or an offset outside the block.
    """
    if name not in STREAMS:
        raise ValueError(f"unknown random stream {name!r}; known: {', '.join(STREAMS)}.")
    base, width = STREAMS[name]
    if not 0 <= offset < width:
        raise ValueError(f"stream {name!r} has offsets 0..{width - 1}, got {offset}.")
    return base + offset


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
