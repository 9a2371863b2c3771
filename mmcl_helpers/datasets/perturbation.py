"""What a caption reports: the selected factors, with perturbed ones resampled (any dataset).

A caption describes the *selected* semantic factors and may misreport the *perturbed* ones (paper
§5.3): a perturbed factor is resampled uniformly (a discrete factor over its values, a continuous
one on [0, 1]) with probability ``p_perturb``, independently for each factor and pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from mmcl_helpers.core.biases import CaptionBias, InvalidIndexSetError
from mmcl_helpers.core.random_streams import hashed_integers, hashed_uniform, stream

__all__ = ["CaptionBatch", "perturb_factors", "statement_ids"]


@dataclass
class CaptionBatch:
    """Captions of a batch and what they report.

    Attributes:
        text: the captions, N strings.
        phrasing: template index of each caption (the text-specific factor m_t), shape (N,).
        reported: for each selected factor, the value the caption states (after perturbation),
            shape (N,) each.
        resampled: for each perturbed factor, whether its value was resampled, shape (N,) bool.
        statement: what each caption states, whatever its phrasing: equal ids mean the same words
            for every factor, shape (N,) int64 (:func:`statement_ids`); ``None`` when unknown.
    """

    text: list[str]
    phrasing: np.ndarray
    reported: dict[str, np.ndarray]
    resampled: dict[str, np.ndarray]
    statement: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.text)


def statement_ids(words: Mapping[str, np.ndarray]) -> np.ndarray:
    """Ids of what captions state: two captions get the same id when they use the same word
    (or leave the factor out, ``None``) for every factor, shape (N,) int64, numbered in order
    of first appearance.

    Args:
        words: factor -> the word (or value index) each caption uses for it, shape (N,) each.
    """
    cols = [np.asarray(w, dtype=object) for _, w in sorted(words.items())]
    if not cols:
        raise ValueError("statement_ids needs the words of at least one factor, got none.")
    n = len(cols[0])
    if any(len(c) != n for c in cols):
        raise ValueError(f"every factor needs one word per caption; got lengths {[len(c) for c in cols]}.")
    seen: dict[tuple, int] = {}
    return np.array([seen.setdefault(row, len(seen)) for row in zip(*cols)], dtype=np.int64)


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
            coin = hashed_uniform(seed, index, stream("perturb_coin", i)) < bias.p_perturb
            if name in cardinality:
                new = hashed_integers(seed, index, stream("perturb_value", i), cardinality[name])
            else:
                new = hashed_uniform(seed, index, stream("perturb_value", i))
            value = np.where(coin, new, value).astype(value.dtype)
            resampled[name] = coin
        reported[name] = value
    return reported, resampled
