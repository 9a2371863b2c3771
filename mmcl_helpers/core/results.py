"""What every study returns: one long-table schema, one role vocabulary, one pair of bars.

The numerical study (:func:`~mmcl_helpers.numerical.experiments.run_numerical`), the image-text sweeps
(:func:`~mmcl_helpers.image_text.sweeps.run_sweeps`) and the caption-policy study
(:func:`~mmcl_helpers.practice.studies.run_policy_study`) all return a :class:`StudyResult` whose
``scores`` table has one row per probed cell and at least the columns of :data:`SCORE_COLUMNS`:

- ``encoder``: ``x`` (ẑ_x, the image encoder) or ``t`` (ẑ_t, the text encoder);
- ``factor``: the factor probed for (``s1``.. / ``mx`` / ``mt`` in the simulation, factor names
  such as ``shape`` on images, ``template`` for the caption template);
- ``role``: what the captions did to it (:func:`factor_role`): ``unbiased``, ``omitted``,
  ``perturbed``, ``image-specific``, ``text-specific`` (and, for caption policies,
  ``partly mentioned``);
- ``probe``: ``linear`` or ``mlp``; ``metric``: :data:`R2` (``r2``) or :data:`MCC` (``mcc``), the one
  spelling every table, file and command uses; ``score``: the probe's score on held-out data.

Study-specific columns (seed, setting, sweep, policy, ...) come first. A factor is *learned* at
or above :data:`LEARNED_BAR` and *discarded* at or below :data:`DISCARDED_BAR`: the bars of
chapters 2-6, defined here only (the notebooks import them).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmcl_helpers.core.biases import CaptionBias

__all__ = [
    "SCORE_COLUMNS",
    "R2",
    "MCC",
    "LEARNED_BAR",
    "DISCARDED_BAR",
    "ROLES",
    "NUMERICAL_BARS",
    "recovery_class",
    "factor_role",
    "StudyResult",
    "SUPPRESSION_SECTION",
    "UnlearnedFactorWarning",
    "warn_unlearned",
]

#: The columns every study's score table ends with, in this order.
SCORE_COLUMNS: tuple[str, ...] = ("encoder", "factor", "role", "probe", "metric", "score")

#: The ``metric`` of a continuous factor's score, the coefficient of determination (lower case
#: everywhere).
R2 = "r2"
#: The ``metric`` of a discrete factor's score, the Matthews correlation coefficient (lower case
#: everywhere).
MCC = "mcc"

#: A factor is learned at or above this score (MCC for discrete, R^2 for continuous factors).
LEARNED_BAR = 0.8
#: A factor is discarded at or below this score.
DISCARDED_BAR = 0.2

#: The numerical chapters' bars on the worst cell of each role (ẑ_x, MLP probe, independent
#: semantics): ``role -> (">=" or "<=", bar)``. The learned and discarded bars are the book's one
#: pair (:data:`LEARNED_BAR`, :data:`DISCARDED_BAR`); image- and text-specific factors must fall
#: to 0.1, since they have no correlated route into the other modality.
NUMERICAL_BARS: dict[str, tuple[str, float]] = {
    "unbiased": (">=", LEARNED_BAR),
    "omitted": ("<=", DISCARDED_BAR),
    "perturbed": ("<=", DISCARDED_BAR),
    "image-specific": ("<=", 0.1),
    "text-specific": ("<=", 0.1),
}

#: Every value of the ``role`` column.
ROLES: tuple[str, ...] = ("unbiased", "omitted", "perturbed", "partly mentioned",
                          "image-specific", "text-specific")

#: Factor names that are text-specific in every study (the simulation's m_t, the caption template).
_TEXT_SPECIFIC = ("mt", "template")


def recovery_class(score: float) -> str:
    """``learned`` (score ≥ :data:`LEARNED_BAR`), ``discarded`` (≤ :data:`DISCARDED_BAR`) or
    ``partly learned`` in between."""
    if score >= LEARNED_BAR:
        return "learned"
    if score <= DISCARDED_BAR:
        return "discarded"
    return "partly learned"


def factor_role(bias: CaptionBias, factor: str, semantics: Sequence[str]) -> str:
    """The role of ``factor`` under the caption bias ``bias``.

    Args:
        bias: the setting (semantic ``i`` is ``semantics[i - 1]``).
        factor: a factor name.
        semantics: the study's semantic factors in order (``["s1", ..., "sN"]`` in the
            simulation, e.g. ``SEMANTIC_FACTORS`` on the scenes).

    Returns:
        ``text-specific`` for ``mt`` and ``template``, ``image-specific`` for any other factor
        that is not a semantic, else :meth:`CaptionBias.role` (``unbiased``, ``omitted`` or
        ``perturbed``).
    """
    if factor in _TEXT_SPECIFIC:
        return "text-specific"
    semantics = list(semantics)
    if factor not in semantics:
        return "image-specific"
    return bias.role(semantics.index(factor) + 1)


#: Where the book explains why a captioned factor can go unlearned (chapter 5's section; its label).
SUPPRESSION_SECTION = ('chapter 5, section "Feature suppression: what a batch holds" '
                       "(label sec-feature-suppression)")


class UnlearnedFactorWarning(UserWarning):
    """A factor the captions select and never perturb ended below :data:`LEARNED_BAR` in ẑ_x:
    the opposite of what Theorem 4.1 predicts (feature suppression in a finite run)."""


def warn_unlearned(scores: pd.DataFrame, where: str, stacklevel: int = 2) -> list[str]:
    """Warn, naming each factor, when an unbiased factor's ẑ_x MLP score is below the learned bar.

    Args:
        scores: a long score table with the columns ``factor``, ``role``, ``encoder``, ``probe``
            and ``score`` (optionally ``setting`` and ``seed``, named in the message).
        where: what produced it, e.g. ``"scenes sel {shape, color}"``.
        stacklevel: passed to ``warnings.warn``.

    Returns:
        one line per unlearned (setting, seed, factor), also the warning's text; empty when every
        unbiased factor is learned.
    """
    need = {"factor", "role", "encoder", "probe", "score"}
    if not need <= set(scores.columns):
        raise ValueError(f"warn_unlearned needs the columns {sorted(need)}; scores has "
                         f"{list(scores.columns)}.")
    low = scores[(scores["role"] == "unbiased") & (scores["encoder"] == "x") & (scores["probe"] == "mlp")
                 & (scores["score"] < LEARNED_BAR)]
    lines = []
    for row in low.itertuples():
        at = "".join(f" {c} {getattr(row, c)}" for c in ("setting", "seed") if c in low.columns)
        lines.append(f"{row.factor} = {row.score:.2f}{at}")
    if lines:
        names = sorted(set(low["factor"]))
        warnings.warn(
            f"{where}: the captions select and never perturb {', '.join(names)}, but ẑ_x did not "
            f"learn {'it' if len(names) == 1 else 'them'} (MLP score below the learned bar {LEARNED_BAR}: "
            f"{'; '.join(lines)}). Theorem 4.1 predicts it is recovered; a finite run can let "
            f"easier factors suppress it. See {SUPPRESSION_SECTION}.",
            UnlearnedFactorWarning, stacklevel=stacklevel + 1)
    return lines


@dataclass
class StudyResult:
    """Base of every study's result: a long score table (see :data:`SCORE_COLUMNS`), saved alike.

    Subclasses add their fields (trained models, configuration, timings). Each has a ``config``
    dict (its full configuration) that :meth:`save` writes next to the scores.
    """

    scores: pd.DataFrame

    def long_table(self) -> pd.DataFrame:
        """The scores with the shared columns last, in :data:`SCORE_COLUMNS` order.

        Raises:
            ValueError: a shared column is missing (a bug in the study that made the table).
        """
        missing = [c for c in SCORE_COLUMNS if c not in self.scores.columns]
        if missing:
            raise ValueError(f"the score table lacks the shared column(s) {missing}; it has "
                             f"{list(self.scores.columns)}.")
        first = [c for c in self.scores.columns if c not in SCORE_COLUMNS]
        return self.scores[first + list(SCORE_COLUMNS)]

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``scores.csv`` (the long table) into ``directory``."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        config = getattr(self, "config", {})
        (out / "config.json").write_text(json.dumps(config, indent=2, default=str))
        self.long_table().to_csv(out / "scores.csv", index=False)
        return out
