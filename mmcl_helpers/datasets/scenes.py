"""Rendered causal scenes: a small, CPU-rendered analogue of Causal3DIdent (paper §5.3, App. E).

The paper renders 3D scenes with Blender; this module draws 64x64 RGB images in numpy and Pillow
from the same kind of latents, fast enough to make tens of thousands of images in seconds.

Semantic factors (shared by image and caption), in the paper's order (:data:`SEMANTIC_FACTORS`):

- ``shape``: one of 7 silhouettes (:data:`SHAPE_NAMES`), uniform;
- ``x_pos``, ``y_pos``: column and row of a 3x3 grid (0 = left / top), uniform on {0, 1, 2};
- ``s_pos``: spotlight position in [0, 1], uniform; the bright spot travels along a "Z" through
  the north-west, north-east, centre, south-west and south-east of the image;
- ``color``: object hue, ``(x_pos + y_pos) / 6 + U / 3``;
- ``s_color``: spotlight hue, ``(s_pos + U) / 2``;
- ``b_color``: background hue, ``(s_pos + s_color + U) / 3``;

with a fresh ``U ~ Uniform[0, 1]`` each time: the paper's causal graph. Hues lie in [0, 1] and are
drawn at the angle ``HUE_SPAN * value`` of the colour wheel (:func:`hue_to_rgb`), so that the two
ends of the range (red and violet) stay distinguishable.

Image-specific factors ``m_x`` (:data:`IMAGE_FACTORS`, all uniform on [0, 1], never in captions):
``rotation`` (a fraction of a full turn), ``scale`` (object radius), ``jitter_x``/``jitter_y``
(a small shift inside the grid cell) and ``texture`` (phase of a faint stripe pattern).

Every random number is a hash of ``(seed, index, stream)`` (:func:`hashed_uniform`), so sample ``i``
is the same whatever the batch it is drawn in, and batches are generated without a Python loop.
:func:`load_or_render` keeps rendered batches in an on-disk cache keyed by every generation setting.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
from matplotlib.colors import hsv_to_rgb
from PIL import Image, ImageDraw

from mmcl_helpers.core import validation as val
from mmcl_helpers.core.random_streams import hashed_integers, hashed_uniform, stream
from mmcl_helpers.core.storage import CacheWarning, arrays_sha256, cache_folder, load_arrays, save_arrays
from mmcl_helpers.core.timing import timed

__all__ = [
    "SEMANTIC_FACTORS",
    "IMAGE_FACTORS",
    "DISCRETE_FACTORS",
    "SHAPE_NAMES",
    "SCENE_ENCODING_SIZES",
    "scene_encoding_size",
    "encoding_size_for",
    "PARENT_R2",
    "parent_r2_table",
    "factor_inputs",
    "HUE_SPAN",
    "OBJECT_SV",
    "SPOTLIGHT_SV",
    "BACKGROUND_SV",
    "RENDER_VERSION",
    "SceneLatents",
    "hue_to_rgb",
    "spotlight_center",
    "sample_scene_latents",
    "sample_shape_groups",
    "sample_contrast_groups",
    "render_scenes",
    "load_or_render",
]

SEMANTIC_FACTORS: tuple[str, ...] = ("shape", "x_pos", "y_pos", "s_pos", "color", "s_color", "b_color")
IMAGE_FACTORS: tuple[str, ...] = ("rotation", "scale", "jitter_x", "jitter_y", "texture")
#: Number of values of each discrete semantic factor; the others are continuous on [0, 1].
DISCRETE_FACTORS: dict[str, int] = {"shape": 7, "x_pos": 3, "y_pos": 3}
#: The paper's encoding sizes for the scenes, by the number of unbiased semantics (App. E); settings
#: with 1..7 unbiased factors get 3, 3, 4, 5, 5, 6, 7 dimensions.
SCENE_ENCODING_SIZES: dict[int, int] = {1: 3, 2: 3, 3: 4, 4: 5, 5: 5, 6: 6, 7: 7}
SHAPE_NAMES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "heart", "hexagon")

#: A hue value h in [0, 1] is drawn at angle HUE_SPAN * h of the colour wheel (0 red, 0.8 violet).
HUE_SPAN = 0.8
#: (saturation, value) of the object, the spotlight and the background colours.
OBJECT_SV = (0.85, 0.95)
SPOTLIGHT_SV = (0.75, 1.0)
BACKGROUND_SV = (0.45, 0.55)

#: Bump when the pictures change, so that cached renders are not reused.
RENDER_VERSION = 2

# Geometry, as fractions of the image size.
_GRID = (0.28, 0.5, 0.72)  # centres of the 3x3 grid cells (large objects stay inside the frame)
# Object radius for scale = 0 and scale = 1: 11 to 14 pixels at 64x64. Version 1 drew objects of
# 8 to 10.5 pixels; at that size the cpu-profile encoder told the silhouettes apart far less
# reliably (shape MCC about 0.3 against about 0.5 with four factors captioned), so the shape result
# reflected the pixel count more than the captions.
_RADIUS = (0.17, 0.22)
_JITTER = 0.02  # largest shift from the cell centre
_SPOT_PATH = np.array([[0.2, 0.2], [0.8, 0.2], [0.5, 0.5], [0.2, 0.8], [0.8, 0.8]])  # NW NE C SW SE
_SPOT_SIGMA = 0.17
# Shading: pixel = base * (AMBIENT + DIFFUSE * glow * light) + GLOW * glow * light.
_AMBIENT, _DIFFUSE, _GLOW = 0.7, 0.45, 0.5
_STRIPE_PERIOD, _STRIPE_AMP = 0.09, 0.12
_SHADOW_SHIFT, _SHADOW = 0.03, 0.45  # drop shadow offset (fraction of size) and darkening

# The stream id of each factor (never reorder: sample i would change).
_STREAMS = {name: stream("scene_factor", k) for k, name in enumerate(
    ("shape", "x_pos", "y_pos", "s_pos", "color", "s_color", "b_color") + IMAGE_FACTORS
)}

@dataclass
class SceneLatents:
    """Latents of a batch of scenes, one array of shape (N,) per factor.

    Attributes:
        index: the sample indices the latents were drawn for (int64).
        shape, x_pos, y_pos: discrete semantics (int64; see :data:`DISCRETE_FACTORS`).
        s_pos, color, s_color, b_color: continuous semantics in [0, 1] (float64).
        rotation, scale, jitter_x, jitter_y, texture: image-specific factors in [0, 1] (float64).
    """

    index: np.ndarray
    shape: np.ndarray
    x_pos: np.ndarray
    y_pos: np.ndarray
    s_pos: np.ndarray
    color: np.ndarray
    s_color: np.ndarray
    b_color: np.ndarray
    rotation: np.ndarray
    scale: np.ndarray
    jitter_x: np.ndarray
    jitter_y: np.ndarray
    texture: np.ndarray

    def __post_init__(self) -> None:
        n = None
        for f in fields(self):
            dtype = np.int64 if f.name in ("index", *DISCRETE_FACTORS) else np.float64
            arr = np.asarray(getattr(self, f.name), dtype=dtype).reshape(-1)
            if n is None:
                n = len(arr)
            elif len(arr) != n:
                raise ValueError(f"SceneLatents.{f.name} has {len(arr)} entries, the index has {n}.")
            setattr(self, f.name, arr)
        self.validate()

    def validate(self) -> None:
        """Raise ValueError naming the first factor with a value outside its allowed range."""
        for name, k in DISCRETE_FACTORS.items():
            v = getattr(self, name)
            if v.size and (v.min() < 0 or v.max() >= k):
                raise ValueError(f"{name} must be an integer in 0..{k - 1}, got values in "
                                 f"{v.min()}..{v.max()}.")
        for name in SEMANTIC_FACTORS[3:] + IMAGE_FACTORS:
            v = getattr(self, name)
            if v.size and not (np.isfinite(v).all() and v.min() >= 0.0 and v.max() <= 1.0):
                raise ValueError(f"{name} must lie in [0, 1], got values in {v.min()}..{v.max()}.")

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, key: slice | np.ndarray | list[int]) -> SceneLatents:
        """The latents of a subset of the batch (slice, integer array or boolean mask)."""
        return SceneLatents(**{f.name: getattr(self, f.name)[key] for f in fields(self)})

    def replace(self, **values: np.ndarray | float | int) -> SceneLatents:
        """A copy with some factors set (a scalar is broadcast to the whole batch)."""
        unknown = sorted(set(values) - {f.name for f in fields(self)})
        if unknown:
            raise ValueError(f"unknown factor(s) {unknown}; allowed are {SEMANTIC_FACTORS + IMAGE_FACTORS}.")
        data = {f.name: getattr(self, f.name).copy() for f in fields(self)}
        for name, v in values.items():
            data[name] = np.broadcast_to(np.asarray(v), (len(self),)).copy()
        return SceneLatents(**data)

    def semantics(self) -> np.ndarray:
        """The semantic factors as columns, in :data:`SEMANTIC_FACTORS` order; shape (N, 7)."""
        return np.stack([getattr(self, n).astype(np.float64) for n in SEMANTIC_FACTORS], axis=1)

    def image_specific(self) -> np.ndarray:
        """The image-specific factors m_x as columns, in :data:`IMAGE_FACTORS` order; shape (N, 5)."""
        return np.stack([getattr(self, n) for n in IMAGE_FACTORS], axis=1)

    def as_dict(self) -> dict[str, np.ndarray]:
        """Every array by its field name (for saving)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


def sample_scene_latents(n: int, seed: int = 0, start: int = 0) -> SceneLatents:
    """Draw the latents of samples ``start .. start + n - 1`` from the causal graph.

    Sample ``i`` depends only on ``(seed, i)``: ``sample_scene_latents(10, s)[3]`` equals
    ``sample_scene_latents(1, s, start=3)[0]``.

    Args:
        n: number of samples.
        seed: non-negative integer seed.
        start: index of the first sample.

    Returns:
        :class:`SceneLatents` of length ``n``.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}.")
    if isinstance(start, bool) or not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}.")
    return _draw_latents(np.arange(start, start + n, dtype=np.int64), seed)


def _scene_noise(idx: np.ndarray, seed: int) -> dict[str, np.ndarray]:
    """The exogenous draws of the samples ``idx``: the three discrete factors' values and one
    uniform noise per continuous factor (semantic and image-specific), each shape (N,)."""
    noise = {name: hashed_integers(seed, idx, _STREAMS[name], high)
             for name, high in DISCRETE_FACTORS.items()}
    for name in ("s_pos", "color", "s_color", "b_color") + IMAGE_FACTORS:
        noise[name] = hashed_uniform(seed, idx, _STREAMS[name])
    return noise


def _latents_from_noise(idx: np.ndarray, noise: dict[str, np.ndarray]) -> SceneLatents:
    """The structural equations of the causal graph (the module's description), from the
    exogenous draws of :func:`_scene_noise`."""
    x_pos, y_pos, s_pos = noise["x_pos"], noise["y_pos"], noise["s_pos"]
    s_color = (s_pos + noise["s_color"]) / 2.0
    return SceneLatents(
        index=idx,
        shape=noise["shape"],
        x_pos=x_pos,
        y_pos=y_pos,
        s_pos=s_pos,
        color=(x_pos + y_pos) / 6.0 + noise["color"] / 3.0,
        s_color=s_color,
        b_color=(s_pos + s_color + noise["b_color"]) / 3.0,
        **{name: noise[name] for name in IMAGE_FACTORS},
    )


def _draw_latents(idx: np.ndarray, seed: int) -> SceneLatents:
    """The latents of the samples ``idx`` (int64, shape (N,)) from the causal graph."""
    return _latents_from_noise(idx, _scene_noise(idx, seed))


def sample_shape_groups(n_groups: int, group_size: int, seed: int = 0, start: int = 0) -> SceneLatents:
    """Groups of scenes that share every factor but the shape (contrast sets for hard negatives).

    Group ``k`` takes every factor, semantic and image-specific, of sample ``start + k *
    group_size`` of :func:`sample_scene_latents` and gives its ``group_size`` members distinct
    shapes, a uniformly random subset of :data:`SHAPE_NAMES` in random order. Each member is
    therefore, on its own, a draw from the causal graph (its shape is uniform and independent of
    the rest); only the members of one group are dependent. Members get the indices ``start +
    k * group_size + j``, so their captions (perturbations and phrasing) are drawn independently.

    Args:
        n_groups: number of groups.
        group_size: members per group, 2 .. number of shapes.
        seed: as in :func:`sample_scene_latents`.
        start: index of the first member of the first group.

    Returns:
        :class:`SceneLatents` of length ``n_groups * group_size``, group by group.
    """
    idx, first, g = _group_indices("sample_shape_groups", n_groups, group_size, seed, start)
    parent = _draw_latents(first, seed)
    data = {name: np.repeat(arr, g) for name, arr in parent.as_dict().items()}
    data.update(index=idx, shape=_group_shapes(first, g, seed))
    return SceneLatents(**data)


def _group_indices(caller: str, n_groups: int, group_size: int, seed: int,
                   start: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The checked arguments of a group sampler as (member indices (N,), each group's first
    index (n_groups,), group size)."""
    val.check_params(caller, n_groups=(n_groups, val.NONNEG_INT),
                     group_size=(group_size, val.Interval(val.Integral, 2, len(SHAPE_NAMES), closed="both")),
                     seed=(seed, val.NONNEG_INT), start=(start, val.NONNEG_INT))
    g = int(group_size)
    idx = start + np.arange(n_groups * g, dtype=np.int64)
    return idx, idx[::g], g


def _group_shapes(first: np.ndarray, g: int, seed: int) -> np.ndarray:
    """Distinct shapes for the ``g`` members of each group that starts at ``first``, shape (N,)."""
    # One draw per (group, shape): ranking them gives each group a random subset in random order.
    keys = hashed_uniform(seed, first[:, None] * len(SHAPE_NAMES) + np.arange(len(SHAPE_NAMES)),
                          stream("group_shapes"))
    return np.argsort(keys, axis=1)[:, :g].reshape(-1)


def sample_contrast_groups(n_groups: int, group_size: int, seed: int = 0, start: int = 0,
                           shape_share: float = 1.0) -> SceneLatents:
    """Groups of scenes that share every factor but one: the shape in about ``shape_share`` of the
    groups, else another semantic factor drawn uniformly for the group.

    ``shape_share=1`` is :func:`sample_shape_groups` exactly. Otherwise a group that varies a
    factor other than the shape gives each member its own draw of that factor's exogenous noise
    (for ``x_pos`` and ``y_pos`` the value itself, which members may share) and recomputes the
    factors that depend on it by the structural equations (varying ``s_pos`` also moves
    ``s_color`` and ``b_color``; ``x_pos`` and ``y_pos`` move ``color``; ``s_color`` moves
    ``b_color``). Each member is therefore, on its own, a draw from the causal graph, as in
    :func:`sample_shape_groups`. Why: the groups are hard negatives, and a factor that never gets
    them can be crowded out by one that always does (chapter 5, feature suppression).

    Args:
        n_groups, group_size, seed, start: as in :func:`sample_shape_groups`.
        shape_share: probability that a group varies the shape, in [0, 1].

    Returns:
        :class:`SceneLatents` of length ``n_groups * group_size``, group by group.
    """
    ok = val.check_params("sample_contrast_groups",
                          shape_share=(shape_share, val.Interval(val.Real, 0, 1, closed="both")))
    shape_share = float(ok["shape_share"])
    if shape_share == 1.0:
        return sample_shape_groups(n_groups, group_size, seed, start)
    idx, first, g = _group_indices("sample_contrast_groups", n_groups, group_size, seed, start)
    others = [f for f in SEMANTIC_FACTORS if f != "shape"]
    coin = hashed_uniform(seed, first, stream("group_factor"))
    # A group varies the shape when coin < shape_share, else the other factor its rescaled coin picks.
    rest = np.clip((coin - shape_share) / max(1.0 - shape_share, 1e-12), 0.0, 1.0 - 1e-12)
    varied = np.repeat(np.where(coin < shape_share, -1, (rest * len(others)).astype(np.int64)), g)
    # The parent's exogenous draws, repeated: each member keeps them unless its group varies one.
    noise = {name: np.repeat(a, g) for name, a in _scene_noise(first, seed).items()}
    noise["shape"] = np.where(varied == -1, _group_shapes(first, g, seed), noise["shape"])
    for k, name in enumerate(others):
        rows = varied == k
        offset = SEMANTIC_FACTORS.index(name)
        if name in DISCRETE_FACTORS:  # x_pos, y_pos: the value itself
            noise[name][rows] = hashed_integers(seed, idx[rows], stream("group_values", offset),
                                                DISCRETE_FACTORS[name])
        else:
            noise[name][rows] = hashed_uniform(seed, idx[rows], stream("group_values", offset))
    return _latents_from_noise(idx, noise)


def scene_encoding_size(bias, dims_per_factor: int = 0) -> int:
    """Encoding size of a scene setting (a :class:`~mmcl_helpers.core.biases.CaptionBias`):
    :data:`SCENE_ENCODING_SIZES` of its number ``n`` of unbiased semantics, or
    ``max(that, dims_per_factor * n)`` when ``dims_per_factor`` >= 1.

    Why more than the paper's sizes can be needed: with cosine similarity the encodings live on a
    sphere, one dimension fewer than their size, and a seven-valued shape needs more than one
    direction of it next to six other factors (chapter 5, "departures").
    """
    return encoding_size_for(len(bias.unbiased), dims_per_factor)


def encoding_size_for(n_unbiased: int, dims_per_factor: int = 0) -> int:
    """``max(SCENE_ENCODING_SIZES[n], dims_per_factor * n)`` for ``n = max(1, n_unbiased)`` factors."""
    val.check_params("encoding_size_for", n_unbiased=(n_unbiased, val.NONNEG_INT),
                     dims_per_factor=(dims_per_factor, val.Interval(val.Integral, 0, 8, closed="both")))
    return max(SCENE_ENCODING_SIZES[max(1, n_unbiased)], int(dims_per_factor) * n_unbiased)


#: Exact R^2 of a factor's best linear prediction from some of its causes, from the structural
#: equations above: ``(factor, predicted from) -> R^2``. With Var(x_pos / 6) = 2/3/36 and
#: Var(U / 3) = 1/108 for the object colour; ``b_color = (1.5 s_pos + 0.5 U1 + U2) / 3`` once
#: ``s_color`` is written out.
PARENT_R2: dict[tuple[str, tuple[str, ...]], float] = {
    ("color", ("x_pos",)): (2 / 3 / 36) / (2 * (2 / 3 / 36) + 1 / 108),
    ("color", ("x_pos", "y_pos")): 2 * (2 / 3 / 36) / (2 * (2 / 3 / 36) + 1 / 108),
    ("s_color", ("s_pos",)): 0.5,
    ("b_color", ("s_pos",)): 2.25 / 3.5,
    ("b_color", ("s_pos", "s_color")): 2.5 / 3.5,
}


def parent_r2_table(latents: SceneLatents):
    """:data:`PARENT_R2` beside the same R^2 measured by linear regression on ``latents``.

    Returns:
        a pandas frame with columns ``factor``, ``predicted from`` (comma-joined),
        ``R² (sampled)`` and ``R² (exact)``, one row per entry of :data:`PARENT_R2`.
    """
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    rows = []
    for (child, parents), exact in PARENT_R2.items():
        x = np.stack([getattr(latents, p) for p in parents], 1).astype(float)
        y = getattr(latents, child)
        sampled = LinearRegression().fit(x, y).score(x, y)
        rows.append((child, ", ".join(parents), sampled, exact))
    return pd.DataFrame(rows, columns=["factor", "predicted from", "R² (sampled)", "R² (exact)"])


def factor_inputs(values, names) -> np.ndarray:
    """The true values of some scene factors as probe inputs, discrete ones one-hot.

    A probe fitted on these reads off what a perfect encoder of exactly ``names`` would give it:
    the baseline for a factor that is not among them but depends on them (its causes or effects).

    Args:
        values: factor name -> values, shape (N,): a :class:`SceneLatents`' ``as_dict()`` or a
            split's ``labels``.
        names: the factors to stack, at least one, each a key of ``values``.

    Returns:
        float32 array (N, D): one column per continuous factor, one per value of a discrete one.
    """
    names = list(names)
    if not names:
        raise ValueError("factor_inputs needs at least one factor name; got none.")
    missing = [n for n in names if n not in values]
    if missing:
        raise ValueError(f"factor_inputs: names {missing} are not among the values' factors "
                         f"{sorted(values)}.")
    cols = []
    for n in names:
        v = np.asarray(values[n])
        cols.append(np.eye(DISCRETE_FACTORS[n])[v.astype(np.int64)] if n in DISCRETE_FACTORS
                    else v[:, None].astype(np.float64))
    return np.concatenate(cols, axis=1).astype(np.float32)


def hue_to_rgb(hue: np.ndarray, sv: tuple[float, float]) -> np.ndarray:
    """RGB in [0, 1] of hue values in [0, 1], as the renderer draws them.

    Args:
        hue: shape (...,), values in [0, 1] (drawn at colour-wheel angle ``HUE_SPAN * hue``).
        sv: (saturation, value), e.g. :data:`OBJECT_SV`.

    Returns:
        shape (..., 3).
    """
    h = HUE_SPAN * np.clip(np.asarray(hue, dtype=np.float64), 0.0, 1.0)
    hsv = np.stack([h, np.full_like(h, sv[0]), np.full_like(h, sv[1])], axis=-1)
    return hsv_to_rgb(hsv)


def spotlight_center(s_pos: np.ndarray) -> np.ndarray:
    """Centre of the spotlight, as fractions (x, y) of the image size; shape (..., 2).

    ``s_pos`` 0, 0.25, 0.5, 0.75 and 1 put the light at the north-west, north-east, centre,
    south-west and south-east; in between it moves in a straight line (a "Z").
    """
    s = np.clip(np.asarray(s_pos, dtype=np.float64), 0.0, 1.0)
    knots = np.linspace(0.0, 1.0, len(_SPOT_PATH))
    return np.stack([np.interp(s, knots, _SPOT_PATH[:, 0]), np.interp(s, knots, _SPOT_PATH[:, 1])], -1)


def _regular(n: int, phase: float = 0.0) -> np.ndarray:
    a = 2 * np.pi * (np.arange(n) / n) + phase
    return np.stack([np.sin(a), -np.cos(a)], axis=1)


def _star(points: int = 5, inner: float = 0.45) -> np.ndarray:
    outer = _regular(2 * points)
    outer[1::2] *= inner
    return outer


def _cross(arm: float = 0.36) -> np.ndarray:
    a, b = arm, 0.95
    return np.array([[-a, -b], [a, -b], [a, -a], [b, -a], [b, a], [a, a], [a, b], [-a, b],
                     [-a, a], [-b, a], [-b, -a], [-a, -a]])


def _heart(n: int = 48) -> np.ndarray:
    t = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
    x = 16 * np.sin(t) ** 3
    y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    pts = np.stack([x, y + 2.5], axis=1)
    return pts / np.abs(pts).max() * 0.95


#: Unit silhouettes (vertices inside the unit disc, y pointing down), one per shape class.
_SHAPES: tuple[np.ndarray, ...] = (
    _regular(40),  # circle
    _regular(4, np.pi / 4) * 1.0,  # square
    _regular(3) * 1.0 + np.array([0.0, 0.15]),  # triangle, centred on its area
    _star(),
    _cross(),
    _heart(),
    _regular(6, np.pi / 6),  # hexagon
)


def _object_polygons(lat: SceneLatents, size: int) -> list[np.ndarray]:
    """Pixel-coordinate vertices (V, 2) of each scene's object."""
    grid = np.asarray(_GRID) * size
    cx = grid[lat.x_pos] + (2 * lat.jitter_x - 1) * _JITTER * size
    cy = grid[lat.y_pos] + (2 * lat.jitter_y - 1) * _JITTER * size
    radius = (_RADIUS[0] + (_RADIUS[1] - _RADIUS[0]) * lat.scale) * size
    angle = 2 * np.pi * lat.rotation
    cos, sin = np.cos(angle), np.sin(angle)
    out = []
    for i in range(len(lat)):
        v = _SHAPES[lat.shape[i]]
        rx = v[:, 0] * cos[i] - v[:, 1] * sin[i]
        ry = v[:, 0] * sin[i] + v[:, 1] * cos[i]
        out.append(np.stack([cx[i] + radius[i] * rx, cy[i] + radius[i] * ry], axis=1))
    return out


def _object_masks(lat: SceneLatents, size: int, supersample: int) -> np.ndarray:
    """Anti-aliased object coverage in [0, 1], shape (N, size, size), float32.

    All polygons of the batch are drawn onto one large atlas image (one cell per scene) and
    box-filtered down in a single call, which avoids per-image Pillow overhead.
    """
    n = len(lat)
    cols = int(np.ceil(np.sqrt(n)))
    rows = int(np.ceil(n / cols))
    cell = size * supersample
    atlas = Image.new("L", (cols * cell, rows * cell), 0)
    draw = ImageDraw.Draw(atlas)
    for i, poly in enumerate(_object_polygons(lat, size)):
        r, c = divmod(i, cols)
        # Pixel centres sit at integer + 0.5 in the supersampled grid.
        pts = poly * supersample - 0.5 + np.array([c * cell, r * cell])
        draw.polygon(pts.ravel().tolist(), fill=255)
    if supersample > 1:
        atlas = atlas.reduce(supersample)  # box filter
    a = np.asarray(atlas, dtype=np.float32).reshape(rows, size, cols, size)
    return a.transpose(0, 2, 1, 3).reshape(rows * cols, size, size)[:n] / 255.0


@timed("data")
def render_scenes(
    latents: SceneLatents, size: int = 64, supersample: int = 2, chunk: int = 256
) -> np.ndarray:
    """Draw the scenes of a batch of latents.

    Args:
        latents: the batch (see :func:`sample_scene_latents`).
        size: image height and width in pixels.
        supersample: anti-aliasing factor of the object silhouette (1 = none).
        chunk: scenes shaded at a time (bounds the memory used, about 100 kB per scene).

    Returns:
        uint8 array of shape (N, size, size, 3).
    """
    ok = val.check_params("render_scenes", latents=(latents, val.InstanceOf(SceneLatents)),
                          size=(size, val.Interval(val.Integral, 16, None, closed="left")),
                          supersample=(supersample, val.Interval(val.Integral, 1, 8)),
                          chunk=(chunk, val.POSITIVE_INT))
    size, supersample, chunk = ok["size"], ok["supersample"], ok["chunk"]
    latents.validate()
    out = np.empty((len(latents), size, size, 3), dtype=np.uint8)
    coords = (np.arange(size, dtype=np.float32) + 0.5) / size
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    for lo in range(0, len(latents), chunk):
        lat = latents[lo : lo + chunk]
        n = len(lat)
        mask = _object_masks(lat, size, supersample)  # (n, s, s)
        shift = max(1, round(_SHADOW_SHIFT * size))
        shadow = np.zeros_like(mask)
        shadow[:, shift:, shift:] = mask[:, :-shift, :-shift]
        shade = 1.0 - _SHADOW * shadow  # darkens the background below and right of the object
        bg = hue_to_rgb(lat.b_color, BACKGROUND_SV).astype(np.float32)[:, None, None, :]
        obj = hue_to_rgb(lat.color, OBJECT_SV).astype(np.float32)[:, None, None, :]
        light = hue_to_rgb(lat.s_color, SPOTLIGHT_SV).astype(np.float32)[:, None, None, :]
        angle = (2 * np.pi * lat.rotation).astype(np.float32)[:, None, None]
        phase = (2 * np.pi * lat.texture).astype(np.float32)[:, None, None]
        along = xx * np.cos(angle) + yy * np.sin(angle)
        stripes = 1.0 + _STRIPE_AMP * np.sin(along * np.float32(2 * np.pi / _STRIPE_PERIOD) + phase)
        centre = spotlight_center(lat.s_pos).astype(np.float32)
        d2 = (xx - centre[:, 0, None, None]) ** 2 + (yy - centre[:, 1, None, None]) ** 2
        glow = np.exp(d2 * np.float32(-0.5 / _SPOT_SIGMA**2))
        for c in range(3):
            base = bg[..., c] * shade
            base += mask * (obj[..., c] * stripes - base)
            lit = glow * light[..., c]
            img = base * (_AMBIENT + _DIFFUSE * lit) + _GLOW * lit
            np.clip(img * 255.0 + 0.5, 0.0, 255.0, out=img)
            out[lo : lo + n, ..., c] = img
    return out


# The entry of a scene file holding the SHA-256 of its other arrays (storage.arrays_sha256).
_DIGEST_KEY = "arrays_sha256"


def _cache_key(**params: int) -> str:
    payload = json.dumps({"render_version": RENDER_VERSION, **params}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


@timed("data")
def load_or_render(
    n: int,
    seed: int = 0,
    start: int = 0,
    size: int = 64,
    supersample: int = 2,
    cache_dir: str | Path | None = None,
    group_size: int = 1,
    shape_share: float = 1.0,
) -> tuple[SceneLatents, np.ndarray]:
    """Latents and images of samples ``start .. start + n - 1``, from the cache when possible.

    The cache file name is a hash of every generation setting (and :data:`RENDER_VERSION`), so a
    changed setting never reads a stale file; the file also records those settings, which must
    match on load (:func:`~mmcl_helpers.core.storage.load_arrays`), and the SHA-256 of its arrays,
    which must match the arrays read. A damaged, empty or foreign file, or one whose arrays were
    changed under a kept record, is rendered again with a warning; a cache that cannot be written
    warns and keeps the images. Files are written atomically.

    Args:
        n, seed, start: as in :func:`sample_scene_latents`.
        size, supersample: as in :func:`render_scenes`.
        cache_dir: folder of the cache (default
            :func:`~mmcl_helpers.core.storage.default_cache_dir` / ``scenes``).
        group_size: 1 (the default) for independent scenes; 2 or more for groups of that many
            scenes sharing every factor but the shape (:func:`sample_shape_groups`, ``n`` a
            multiple of ``group_size``).
        shape_share: with groups, the share of them that vary the shape; the others vary
            another semantic factor (:func:`sample_contrast_groups`). 1 (the default): all.

    Returns:
        (latents, images): :class:`SceneLatents` of length n and uint8 images (n, size, size, 3).
    """
    ok = val.check_params("load_or_render", n=(n, val.NONNEG_INT), seed=(seed, val.NONNEG_INT),
                          start=(start, val.NONNEG_INT), size=(size, val.Interval(val.Integral, 16, None)),
                          supersample=(supersample, val.Interval(val.Integral, 1, 8)),
                          group_size=(group_size, val.Interval(val.Integral, 1, len(SHAPE_NAMES))),
                          shape_share=(shape_share, val.Interval(val.Real, 0, 1, closed="both")))
    g = ok.pop("group_size")
    share = float(ok.pop("shape_share"))
    if g > 1:
        if ok["n"] % g:
            raise ValueError(f"load_or_render: n must be a multiple of group_size={g}, got n={ok['n']}.")
        ok["group_size"] = g  # only grouped files carry it, so the keys of existing files stay valid
        if share != 1.0:
            ok["shape_share"] = share  # likewise: files of shape-only groups keep their keys
    config = {"render_version": RENDER_VERSION, **ok}
    folder = cache_folder("" if cache_dir is not None else "scenes", cache_dir)
    path = None if folder is None else folder / f"scenes-{_cache_key(**ok)}.npz"
    data = None if path is None else load_arrays(path, config)
    if data is not None:
        reason = "it does not hold the expected arrays"
        try:
            stored = str(data.pop(_DIGEST_KEY)[()]) if _DIGEST_KEY in data else None
            latents = SceneLatents(**{f.name: data[f.name] for f in fields(SceneLatents)})
            images = data["images"]
            if images.shape == (ok["n"], ok["size"], ok["size"], 3) and images.dtype == np.uint8 \
                    and len(latents) == ok["n"]:
                if stored is None:
                    reason = "it has no checksum of its arrays (written by an older version)"
                elif stored != arrays_sha256(data):
                    reason = "its arrays do not match the checksum in its record; they were changed"
                else:
                    return latents, images
        except (KeyError, ValueError):
            pass
        warnings.warn(f"ignoring the cache file {path} ({reason}); rendering again.", CacheWarning,
                      stacklevel=2)
    if g > 1:
        latents = sample_contrast_groups(ok["n"] // g, g, ok["seed"], ok["start"], share)
    else:
        latents = sample_scene_latents(ok["n"], ok["seed"], ok["start"])
    images = render_scenes(latents, size=ok["size"], supersample=ok["supersample"])
    if path is not None:
        arrays = {"images": images, **latents.as_dict()}
        save_arrays(path, {**arrays, _DIGEST_KEY: np.array(arrays_sha256(arrays))}, config)
    return latents, images
