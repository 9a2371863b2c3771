"""Captions of the rendered scenes.

The phrasing (one of :data:`N_PHRASINGS`) is the text-specific factor ``m_t``. Colours are named
as in the paper: the object colour by the nearest of matplotlib's ``TABLEAU_COLORS`` (10 names),
the spotlight by ``CSS4_COLORS`` and the background by ``XKCD_COLORS``, nearest in RGB to the
colour the renderer draws. The spotlight position is named by one of five words (northwest,
northeast, center, southwest, southeast): a lossy description of a continuous factor.

Settings by factor name live in :mod:`~mmcl_helpers.datasets.naming`, the generic perturbation
of reported values in :mod:`~mmcl_helpers.datasets.perturbation` and the tokenizer in
:mod:`~mmcl_helpers.datasets.tokens`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib.colors import CSS4_COLORS, TABLEAU_COLORS, XKCD_COLORS, to_rgb

from mmcl_helpers.core import validation as val
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.random_streams import hashed_integers, stream
from mmcl_helpers.datasets.perturbation import (
    CaptionBatch,
    perturb_factors,
    statement_ids,
)
from mmcl_helpers.datasets.scenes import (
    BACKGROUND_SV,
    DISCRETE_FACTORS,
    OBJECT_SV,
    SEMANTIC_FACTORS,
    SHAPE_NAMES,
    SPOTLIGHT_SV,
    SceneLatents,
    hue_to_rgb,
)

__all__ = [
    "OBJECT_PALETTE",
    "SPOTLIGHT_PALETTE",
    "BACKGROUND_PALETTE",
    "X_WORDS",
    "Y_WORDS",
    "S_POS_WORDS",
    "N_PHRASINGS",
    "nearest_color_names",
    "s_pos_words",
    "factor_words",
    "caption_text",
    "scene_captions",
]


# ----------------------------------------------------------------------------------------------
# Scene captions

OBJECT_PALETTE: dict[str, str] = {k.removeprefix("tab:"): v for k, v in TABLEAU_COLORS.items()}
SPOTLIGHT_PALETTE: dict[str, str] = dict(CSS4_COLORS)
BACKGROUND_PALETTE: dict[str, str] = {k.removeprefix("xkcd:"): v for k, v in XKCD_COLORS.items()}
X_WORDS = ("left", "middle", "right")
Y_WORDS = ("top", "central", "bottom")
S_POS_WORDS = ("northwest", "northeast", "center", "southwest", "southeast")

_PALETTE_RGB: dict[int, tuple[list[str], np.ndarray]] = {}


def nearest_color_names(rgb: np.ndarray, palette: Mapping[str, str]) -> np.ndarray:
    """Name of the palette colour nearest in RGB to each colour.

    Args:
        rgb: shape (N, 3), values in [0, 1].
        palette: name -> colour spec understood by matplotlib (e.g. ``TABLEAU_COLORS``).

    Returns:
        array of N names (dtype object).
    """
    key = id(palette)
    if key not in _PALETTE_RGB or len(_PALETTE_RGB[key][0]) != len(palette):
        _PALETTE_RGB[key] = (list(palette), np.array([to_rgb(c) for c in palette.values()]))
    names, table = _PALETTE_RGB[key]
    rgb = np.asarray(rgb, dtype=np.float64).reshape(-1, 3)
    out = np.empty(len(rgb), dtype=np.int64)
    sq = (table**2).sum(1)
    for lo in range(0, len(rgb), 4096):
        part = rgb[lo : lo + 4096]
        out[lo : lo + len(part)] = np.argmin(sq[None, :] - 2.0 * part @ table.T, axis=1)
    return np.asarray(names, dtype=object)[out]


def s_pos_words(s_pos: np.ndarray) -> np.ndarray:
    """Word for each spotlight position: nearest of the five stops of the light's path."""
    k = np.clip(np.rint(np.asarray(s_pos, dtype=np.float64) * 4), 0, 4).astype(np.int64)
    return np.asarray(S_POS_WORDS, dtype=object)[k]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


# Five phrasings; each entry: (sentence frame, position, light, background) templates. A clause
# whose factors are all omitted is dropped; a partly described clause uses the matching variant.
_PHRASINGS = (
    dict(frame="{np}{pos}{light}{bg}.", pos_xy=" in the {y} row and {x} column",
         pos_x=" in the {x} column", pos_y=" in the {y} row",
         light_cs=", lit by {sc} spotlight from the {sp}", light_c=", lit by {sc} spotlight",
         light_s=", lit by a spotlight from the {sp}", bg=", on {bc} background"),
    dict(frame="There is {np}{pos}{bg}{light}.", pos_xy=" at the {x} column of the {y} row",
         pos_x=" at the {x} column", pos_y=" at the {y} row",
         light_cs=" under {sc} spotlight shining from the {sp}", light_c=" under {sc} spotlight",
         light_s=" under a spotlight shining from the {sp}", bg=" in front of {bc} background"),
    dict(frame="The picture shows {np}{pos}{light}{bg}.", pos_xy=", {x} column, {y} row",
         pos_x=", {x} column", pos_y=", {y} row",
         light_cs=", with {sc} spotlight in the {sp}", light_c=", with {sc} spotlight",
         light_s=", with a spotlight in the {sp}", bg=", against {bc} background"),
    dict(frame="{bg}{np}{pos}{light}.", pos_xy=" sits in the {y} row, {x} column",
         pos_x=" sits in the {x} column", pos_y=" sits in the {y} row",
         light_cs=" and {sc} spotlight comes from the {sp}", light_c=" and {sc} spotlight shines",
         light_s=" and a spotlight comes from the {sp}", bg="On {bc} background, "),
    dict(frame="A photo of {np}{pos}{light}{bg}.", pos_xy=" placed {x} column, {y} row",
         pos_x=" placed {x} column", pos_y=" placed {y} row",
         light_cs="; {sc} spotlight from the {sp}", light_c="; {sc} spotlight",
         light_s="; a spotlight from the {sp}", bg="; {bc} background"),
)
N_PHRASINGS = len(_PHRASINGS)


def _with_article(words: str) -> str:
    return f"{_article(words)} {words}"


def factor_words(reported: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The word a caption uses for each reported factor value.

    Args:
        reported: value per factor (names from ``SEMANTIC_FACTORS``), shape (N,) each.

    Returns:
        word per factor, object arrays of shape (N,).
    """
    words: dict[str, np.ndarray] = {}
    if "shape" in reported:
        words["shape"] = np.asarray(SHAPE_NAMES, dtype=object)[np.asarray(reported["shape"])]
    if "x_pos" in reported:
        words["x_pos"] = np.asarray(X_WORDS, dtype=object)[np.asarray(reported["x_pos"])]
    if "y_pos" in reported:
        words["y_pos"] = np.asarray(Y_WORDS, dtype=object)[np.asarray(reported["y_pos"])]
    if "s_pos" in reported:
        words["s_pos"] = s_pos_words(reported["s_pos"])
    for name, sv, palette in (("color", OBJECT_SV, OBJECT_PALETTE),
                              ("s_color", SPOTLIGHT_SV, SPOTLIGHT_PALETTE),
                              ("b_color", BACKGROUND_SV, BACKGROUND_PALETTE)):
        if name in reported:
            words[name] = nearest_color_names(hue_to_rgb(reported[name], sv), palette)
    return words


def caption_text(words: Mapping[str, np.ndarray], phrasing: np.ndarray) -> list[str]:
    """Assemble scene captions from the words of each factor.

    Args:
        words: word per factor, object arrays of shape (N,); an entry ``None`` leaves the factor
            out of that one caption (so mentions can vary from caption to caption).
        phrasing: template index of each caption, shape (N,), values in 0..N_PHRASINGS-1.

    Returns:
        N captions.
    """
    text = []
    for j in range(len(phrasing)):
        w = {k: v[j] for k, v in words.items() if v[j] is not None}
        t = _PHRASINGS[phrasing[j]]
        noun = " ".join([w[k] for k in ("color",) if k in w] + [w.get("shape", "object")])
        pos = ""
        if "x_pos" in w and "y_pos" in w:
            pos = t["pos_xy"].format(x=w["x_pos"], y=w["y_pos"])
        elif "x_pos" in w:
            pos = t["pos_x"].format(x=w["x_pos"])
        elif "y_pos" in w:
            pos = t["pos_y"].format(y=w["y_pos"])
        light = ""
        sc = _with_article(w["s_color"]) if "s_color" in w else ""
        if "s_color" in w and "s_pos" in w:
            light = t["light_cs"].format(sc=sc, sp=w["s_pos"])
        elif "s_color" in w:
            light = t["light_c"].format(sc=sc)
        elif "s_pos" in w:
            light = t["light_s"].format(sp=w["s_pos"])
        bg = t["bg"].format(bc=_with_article(w["b_color"])) if "b_color" in w else ""
        sentence = t["frame"].format(np=_with_article(noun), pos=pos, light=light, bg=bg)
        text.append(sentence[0].upper() + sentence[1:])
    return text


def scene_captions(
    latents: SceneLatents, bias: CaptionBias, seed: int = 0, phrasings: int = N_PHRASINGS
) -> CaptionBatch:
    """Captions of rendered scenes under a selection/perturbation setting.

    Args:
        latents: the scenes' latents (length N); their ``index`` seeds each caption's draws.
        bias: setting over :data:`~mmcl_helpers.datasets.scenes.SEMANTIC_FACTORS` (see
            :func:`bias_from_names`, :func:`named_selection_sweep`, :func:`named_perturbation_sweep`).
        seed: caption seed (perturbations and phrasing); the same seed gives the same captions.
        phrasings: number of phrasings to draw from (1 .. :data:`N_PHRASINGS`).

    Returns:
        :class:`CaptionBatch` of N captions.
    """
    val.check_params("scene_captions", bias=(bias, val.InstanceOf(CaptionBias)), seed=(seed, val.NONNEG_INT),
                     phrasings=(phrasings, val.POSITIVE_INT))
    if not 1 <= phrasings <= N_PHRASINGS:
        raise ValueError(f"phrasings must be in 1..{N_PHRASINGS}, got {phrasings!r}.")
    values = {name: getattr(latents, name) for name in SEMANTIC_FACTORS}
    reported, resampled = perturb_factors(
        values, bias, SEMANTIC_FACTORS, DISCRETE_FACTORS, seed, latents.index
    )
    phrasing = hashed_integers(seed, latents.index, stream("caption_phrasing"), phrasings)
    words = factor_words(reported)
    text = caption_text(words, phrasing)
    return CaptionBatch(text=text, phrasing=phrasing, reported=reported, resampled=resampled,
                        statement=statement_ids(words))
