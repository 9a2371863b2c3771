"""Captions of the rendered scenes, bias settings by factor name, and a word tokenizer.

A caption describes the *selected* semantic factors and may misreport the *perturbed* ones (paper
§5.3): a perturbed factor is resampled uniformly (a discrete factor over its values, a continuous
one on [0, 1]) with probability ``p_perturb``, independently for each factor and pair. The
phrasing (one of :data:`N_PHRASINGS`) is the text-specific factor ``m_t``.

Settings are written with factor names (``selected={"shape", "x_pos"}``) and converted here, in
one place, to :class:`~mmcl_helpers.biases.CaptionBias` (1-based indices in the factor order).
The helpers for names, settings and perturbation take the factor list as an argument, so that
:mod:`~mmcl_helpers.datasets.mpi3d` uses them too.

Colours are named as in the paper: the object colour by the nearest of matplotlib's
``TABLEAU_COLORS`` (10 names), the spotlight by ``CSS4_COLORS`` and the background by
``XKCD_COLORS``, nearest in RGB to the colour the renderer draws. The spotlight position is
named by one of five words (northwest, northeast, center, southwest, southeast): a lossy
description of a continuous factor.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.colors import CSS4_COLORS, TABLEAU_COLORS, XKCD_COLORS, to_rgb

from .. import validation as val
from ..biases import CaptionBias, InvalidIndexSetError
from .scenes import (
    BACKGROUND_SV,
    DISCRETE_FACTORS,
    OBJECT_SV,
    SEMANTIC_FACTORS,
    SHAPE_NAMES,
    SPOTLIGHT_SV,
    SceneLatents,
    hashed_integers,
    hashed_uniform,
    hue_to_rgb,
)

__all__ = [
    "SCENE_P_PERTURB",
    "UnknownFactorError",
    "CaptionBatch",
    "factor_indices",
    "factor_names",
    "format_factor_set",
    "bias_from_names",
    "selection_settings",
    "perturbation_settings",
    "perturb_factors",
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
    "PAD",
    "UNK",
    "tokenize",
    "build_vocab",
    "encode_captions",
    "decode_tokens",
]

#: Default probability that a perturbable factor is resampled in a given pair (paper §5.3).
SCENE_P_PERTURB = 1.0


class UnknownFactorError(InvalidIndexSetError):
    """Raised for a factor name that is not one of the dataset's semantic factors."""


# ----------------------------------------------------------------------------------------------
# Settings by factor name


def factor_indices(names: Iterable[str], factors: Sequence[str], what: str) -> frozenset[int]:
    """1-based indices of factor names in ``factors``.

    Raises:
        UnknownFactorError: a name not in ``factors``, a bare string, or a repeated name.
    """
    if isinstance(names, str):
        raise UnknownFactorError(
            f"{what} must be a collection of factor names such as {{{factors[0]!r}}}, got the string "
            f"{names!r}."
        )
    items = list(names)
    unknown = [n for n in items if n not in factors]
    if unknown:
        raise UnknownFactorError(
            f"{what} holds unknown factor name(s) {unknown}; allowed are {list(factors)}."
        )
    dupes = sorted({n for n in items if items.count(n) > 1})
    if dupes:
        raise UnknownFactorError(f"{what} lists {dupes} more than once; list each factor once.")
    return frozenset(factors.index(n) + 1 for n in items)


def factor_names(indices: Iterable[int], factors: Sequence[str]) -> tuple[str, ...]:
    """Names of 1-based indices, in factor order."""
    return tuple(factors[i - 1] for i in sorted(indices))


def format_factor_set(indices: Iterable[int], factors: Sequence[str]) -> str:
    """Set label by names: ``∅``, ``{shape}``, ``{shape, x_pos}``, ``{shape..y_pos}`` (a run of 3+)."""
    idx = sorted(indices)
    if not idx:
        return "∅"
    parts, run = [], [idx[0]]
    for i in idx[1:] + [None]:
        if i is not None and i == run[-1] + 1:
            run.append(i)
            continue
        if len(run) >= 3:
            parts.append(f"{factors[run[0] - 1]}..{factors[run[-1] - 1]}")
        else:
            parts.extend(factors[j - 1] for j in run)
        if i is not None:
            run = [i]
    return "{" + ", ".join(parts) + "}"


def bias_from_names(
    selected: Iterable[str],
    perturbed: Iterable[str] = (),
    factors: Sequence[str] = SEMANTIC_FACTORS,
    p_perturb: float = SCENE_P_PERTURB,
) -> CaptionBias:
    """A :class:`CaptionBias` from factor names.

    Args:
        selected: names of the factors a caption describes (non-empty).
        perturbed: names of the selected factors it may misreport (a proper subset of selected).
        factors: the dataset's semantic factors, in order (index i + 1 is ``factors[i]``).
        p_perturb: probability that each perturbed factor is resampled in a given pair.

    Raises:
        UnknownFactorError: for an unknown name.
        InvalidIndexSetError: empty selection, perturbed not a proper subset of selected, or
            ``p_perturb`` outside [0, 1] (the message gives indices; see ``factors``).
    """
    sel = factor_indices(selected, factors, "selected")
    pert = factor_indices(perturbed, factors, "perturbed")
    outside = factor_names(pert - sel, factors)
    if outside:
        raise InvalidIndexSetError(
            f"perturbed holds {list(outside)}, which the caption does not select (selected = "
            f"{list(factor_names(sel, factors))}); only selected factors can be misreported."
        )
    if sel and pert == sel:
        raise InvalidIndexSetError(
            f"perturbed equals selected ({list(factor_names(sel, factors))}): it must be a proper "
            "subset, so that at least one selected factor is always reported faithfully."
        )
    return CaptionBias(sel, pert, n_semantic=len(factors), p_perturb=p_perturb)


def selection_settings(
    factors: Sequence[str] = SEMANTIC_FACTORS, p_perturb: float = SCENE_P_PERTURB
) -> dict[str, CaptionBias]:
    """Selection sweep: setting k selects the first k factors, nothing perturbed.

    Returns:
        label (e.g. ``"{shape..y_pos}"``) -> bias, in order k = 1 .. len(factors).
    """
    out = {}
    for k in range(1, len(factors) + 1):
        bias = bias_from_names(factors[:k], (), factors, p_perturb)
        out[format_factor_set(bias.selected, factors)] = bias
    return out


def perturbation_settings(
    factors: Sequence[str] = SEMANTIC_FACTORS,
    p_perturb: float = SCENE_P_PERTURB,
    most_perturbed_first: bool = True,
) -> dict[str, CaptionBias]:
    """Perturbation sweep: everything selected, perturbed = every suffix of ``factors[1:]``.

    For the scenes: {x_pos..b_color}, {y_pos..b_color}, ..., {b_color}, ∅ (the first factor is
    never perturbed). The paper numbers these both ways, so they are named by their sets.

    Returns:
        label of the perturbed set -> bias, from the largest perturbed set to ∅ (reversed with
        ``most_perturbed_first=False``).
    """
    out = {}
    for k in range(1, len(factors) + 1):
        bias = bias_from_names(factors, factors[k:], factors, p_perturb)
        out[format_factor_set(bias.perturbed, factors)] = bias
    if not most_perturbed_first:
        out = dict(reversed(out.items()))
    return out


@dataclass
class CaptionBatch:
    """Captions of a batch and what they report.

    Attributes:
        text: the captions, N strings.
        phrasing: template index of each caption (the text-specific factor m_t), shape (N,).
        reported: for each selected factor, the value the caption states (after perturbation),
            shape (N,) each.
        resampled: for each perturbed factor, whether its value was resampled, shape (N,) bool.
    """

    text: list[str]
    phrasing: np.ndarray
    reported: dict[str, np.ndarray]
    resampled: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.text)


# Stream ids of the caption's random numbers (distinct from the renderer's 0..11).
_COIN_STREAM, _VALUE_STREAM, _PHRASING_STREAM = 1000, 2000, 3000


def perturb_factors(
    values: Mapping[str, np.ndarray],
    bias: CaptionBias,
    factors: Sequence[str],
    cardinality: Mapping[str, int],
    seed: int,
    index: np.ndarray,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """The values a caption reports: selected factors, perturbed ones resampled with ``p_perturb``.

    Draws depend only on ``(seed, index)``, so a pair's caption never depends on its batch.

    Args:
        values: true value of each factor, shape (N,) each (at least the selected ones).
        bias: selected and perturbed factors (indices into ``factors``) and ``p_perturb``.
        factors: the dataset's semantic factors in order.
        cardinality: number of values of each discrete factor; the others are uniform on [0, 1].
        seed: caption seed.
        index: sample indices, shape (N,).

    Returns:
        (reported, resampled): value per selected factor, and a bool mask per perturbed factor.
    """
    if len(factors) != bias.n_semantic:
        raise InvalidIndexSetError(
            f"the bias is for {bias.n_semantic} factors but the dataset has {len(factors)} "
            f"({list(factors)}); build it with bias_from_names(..., factors=...)."
        )
    reported, resampled = {}, {}
    for i in sorted(bias.selected):
        name = factors[i - 1]
        value = np.asarray(values[name])
        if i in bias.perturbed:
            coin = hashed_uniform(seed, index, _COIN_STREAM + i) < bias.p_perturb
            if name in cardinality:
                new = hashed_integers(seed, index, _VALUE_STREAM + i, cardinality[name])
            else:
                new = hashed_uniform(seed, index, _VALUE_STREAM + i)
            value = np.where(coin, new, value).astype(value.dtype)
            resampled[name] = coin
        reported[name] = value
    return reported, resampled


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
            :func:`bias_from_names`, :func:`selection_settings`, :func:`perturbation_settings`).
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
    phrasing = hashed_integers(seed, latents.index, _PHRASING_STREAM, phrasings)
    text = caption_text(factor_words(reported), phrasing)
    return CaptionBatch(text=text, phrasing=phrasing, reported=reported, resampled=resampled)


# ----------------------------------------------------------------------------------------------
# Tokenizer

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens: letters and digits, keeping an inner apostrophe (``robin's``).

    Punctuation, slashes and spaces separate words and are dropped.
    """
    return _WORD.findall(text.lower())


def build_vocab(texts: Iterable[str], min_count: int = 1) -> dict[str, int]:
    """Word -> id, with ``<pad>`` = 0 and ``<unk>`` = 1, then words by frequency (ties by name).

    Args:
        texts: captions to count words in.
        min_count: words seen fewer times map to ``<unk>``.
    """
    counts = Counter(tok for t in texts for tok in tokenize(t))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return {PAD: 0, UNK: 1, **{w: i + 2 for i, w in enumerate(words)}}


def encode_captions(texts: Sequence[str], vocab: Mapping[str, int], max_len: int) -> torch.Tensor:
    """Token ids of each caption, cut or padded (id 0) to ``max_len``.

    Args:
        texts: N captions.
        vocab: from :func:`build_vocab`; words not in it become ``<unk>``.
        max_len: L, tokens kept per caption.

    Returns:
        LongTensor of shape (N, L).
    """
    if vocab.get(PAD) != 0 or UNK not in vocab:
        raise ValueError(f"vocab must map {PAD!r} to 0 and contain {UNK!r}; use build_vocab().")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive integer, got {max_len!r}.")
    out = torch.zeros(len(texts), max_len, dtype=torch.long)
    unk = vocab[UNK]
    for i, t in enumerate(texts):
        ids = [vocab.get(w, unk) for w in tokenize(t)[:max_len]]
        if ids:
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def decode_tokens(ids: torch.Tensor, vocab: Mapping[str, int]) -> list[str]:
    """Captions back from token ids (padding dropped), words joined by single spaces.

    Args:
        ids: LongTensor of shape (N, L).
        vocab: the vocabulary used to encode.
    """
    inverse = {i: w for w, i in vocab.items()}
    pad = vocab[PAD]
    return [" ".join(inverse[int(i)] for i in row if int(i) != pad) for row in ids]
