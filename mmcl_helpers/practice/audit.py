"""Caption audit: how often captions mention each attribute, and how often they get it wrong.

The paper's theory says what a contrastive model learns from a caption set: a factor the captions
always report faithfully is recovered, a factor they never mention (selection bias) or misreport
(perturbation bias) is discarded. An audit estimates, for a table of images with annotated
attributes and their captions, the two quantities that decide this:

- the *mention rate* of an attribute: share of captions that name any of its values;
- the *error rate*: among captions that mention it, share whose mention is wrong.

and turns them into a verdict (``"likely learned"``, ``"at risk"``, ``"likely discarded"``) with
:class:`AuditThresholds`.

Matching rules (:func:`find_mentions`):

- case-insensitive, whole words only: a caption is split into words (letters, digits and
  underscores, with inner apostrophes: ``robin's``; a typographic apostrophe counts as ``'``)
  and punctuation marks; ``"red"`` never matches ``"redwood"``, ``"tired"`` or ``"red's"``;
- spaces and hyphens separate words and are interchangeable: ``"sea green"`` matches
  ``"Sea-Green"`` and ``"sea  green"``; other punctuation is part of a phrase (``"green/blue"``
  and ``"green blue"`` are different phrases) and a phrase never matches across it;
- the caption is read left to right and matches do not overlap; at each position the longest
  phrase wins, so ``"light blue"`` counts as light blue only, never also as blue;
- a caption that names several different values of one attribute mentions it, and the mention is
  correct only if the annotated value is the *only* value named (naming the same value twice is
  fine). "Blue or green" about a blue object is wrong: the caption does not pin the value down.

The vocabulary of the book's rendered scenes is
:func:`~mmcl_helpers.datasets.scene_audit.scene_vocabulary`;
:func:`~mmcl_helpers.datasets.scene_audit.scene_audit_frame` builds the table to audit from a
batch of scenes and their captions.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd

from mmcl_helpers.core import validation as val
from mmcl_helpers.datasets.tokens import mention_tokens
from mmcl_helpers.datasets.vocabulary import AuditInputError

__all__ = [
    "LIKELY_LEARNED",
    "AT_RISK",
    "LIKELY_DISCARDED",
    "VERDICTS",
    "AuditThresholds",
    "audit_verdict",
    "find_mentions",
    "caption_mentions",
    "audit_captions",
]

LIKELY_LEARNED, AT_RISK, LIKELY_DISCARDED = "likely learned", "at risk", "likely discarded"
#: The verdicts, from best to worst.
VERDICTS: tuple[str, ...] = (LIKELY_LEARNED, AT_RISK, LIKELY_DISCARDED)

#: Most rows or values listed in an error message.
_SHOW = 5


# ----------------------------------------------------------------------------------------------
# Verdicts


@dataclass(frozen=True)
class AuditThresholds:
    """Mention and error rates that separate the verdicts (all bounds inclusive).

    An attribute is

    - ``"likely discarded"`` if mention rate <= ``discard_mention_rate`` or error rate >=
      ``discard_error_rate`` (also when it is never mentioned, error rate undefined);
    - ``"likely learned"`` if mention rate >= ``min_mention_rate`` and error rate <=
      ``max_error_rate``;
    - ``"at risk"`` otherwise.

    The defaults are read off the recovery curves of book chapter 6, section 3 (``cpu`` profile,
    seed 0, rendered scenes, probes on unit-length ẑ_x;
    :func:`mmcl_helpers.practice.studies.calibrate_thresholds` computes them from any such curves). With
    captions that name the shape and report the column ``x_pos`` in a share of captions only, the
    image encoder recovered the column with MCC 0.07, 0.17, 0.76, 1.00, 1.00, 1.00 at measured
    mention rates 0, 0.105, 0.259, 0.505, 0.753, 1: learned from half of the captions on
    (``min_mention_rate = 0.5``), partly learned at a quarter, discarded at a tenth
    (``discard_mention_rate = 0.15``, between the 0.105 still discarded and the 0.259 partly
    learned, with room for sampling noise). With the row ``y_pos`` always mentioned but resampled, it
    recovered the row with MCC 1.00, 1.00, 1.00, 0.93, 0.93, 0.05 at measured error rates 0,
    0.067, 0.17, 0.336, 0.501, 0.667: learned while at most half the mentions are wrong
    (``max_error_rate = 0.5``), discarded when mentions are independent of the truth
    (``discard_error_rate = 0.6``, between the 0.50 still learned and the 2/3 of a fully
    resampled 3-valued factor, with room for sampling noise in a measured rate).

    Caveats: the curves come from one factor type (3-valued positions), one encoder size and one
    training budget; a factor with K values that is always resampled is wrong (K-1)/K of the
    time, so for binary attributes (at most 0.5) the error thresholds say "learned" even for
    pure noise; and an audit reads words only, so it cannot see a factor crowded out by easier
    ones (chapter 6 shows this happening to the shape) or one predictable through its causes.

    Attributes:
        min_mention_rate: smallest mention rate of a likely learned attribute.
        max_error_rate: largest error rate (among mentions) of a likely learned attribute.
        discard_mention_rate: mention rates at or below this are likely discarded.
        discard_error_rate: error rates at or above this are likely discarded.
    """

    min_mention_rate: float = 0.5
    max_error_rate: float = 0.5
    discard_mention_rate: float = 0.15
    discard_error_rate: float = 0.6

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v <= 1.0:
                raise AuditInputError(f"AuditThresholds.{f.name} must be a number in [0, 1], got {v!r}.")
        if not self.discard_mention_rate < self.min_mention_rate:
            raise AuditInputError(
                f"discard_mention_rate ({self.discard_mention_rate}) must be below min_mention_rate "
                f"({self.min_mention_rate}), so that no attribute is both learned and discarded."
            )
        if not self.max_error_rate < self.discard_error_rate:
            raise AuditInputError(
                f"max_error_rate ({self.max_error_rate}) must be below discard_error_rate "
                f"({self.discard_error_rate}), so that no attribute is both learned and discarded."
            )


def audit_verdict(mention_rate: float, error_rate: float, thresholds: AuditThresholds | None = None) -> str:
    """Verdict for one attribute (one of :data:`VERDICTS`); see :class:`AuditThresholds`.

    Args:
        mention_rate: share of captions that mention the attribute, in [0, 1].
        error_rate: share of wrong mentions among mentions, in [0, 1]; NaN when never mentioned.
        thresholds: defaults to ``AuditThresholds()``.
    """
    val.check_params("audit_verdict", mention_rate=(mention_rate, val.PROBABILITY),
                     error_rate=(error_rate, [val.PROBABILITY, val.IsNaN()]))
    t = _check_thresholds(thresholds)
    if mention_rate <= t.discard_mention_rate or error_rate >= t.discard_error_rate:
        return LIKELY_DISCARDED
    if mention_rate >= t.min_mention_rate and error_rate <= t.max_error_rate:
        return LIKELY_LEARNED
    return AT_RISK


def _check_thresholds(thresholds: AuditThresholds | None) -> AuditThresholds:
    if thresholds is None:
        return AuditThresholds()
    if not isinstance(thresholds, AuditThresholds):
        raise AuditInputError(
            f"thresholds must be an AuditThresholds (or None for the defaults), got {thresholds!r}."
        )
    return thresholds


# ----------------------------------------------------------------------------------------------
# Matching

_WORD = re.compile(r"\w")
_tokens = mention_tokens  # the audit's reading of a caption (datasets.tokens)


class _Matcher:
    """Phrases of one attribute's values, found leftmost-longest and without overlap."""

    def __init__(self, attribute: str, value_words: Mapping[Any, Iterable[str]]) -> None:
        if not isinstance(value_words, Mapping) or not value_words:
            raise AuditInputError(
                f"the vocabulary of {attribute!r} is empty (or not a mapping): give a mapping "
                "value -> words, e.g. {'red': ['red', 'scarlet']}."
            )
        owner: dict[tuple[str, ...], Any] = {}
        for value, words in value_words.items():
            if isinstance(words, str):
                raise AuditInputError(
                    f"the words for {attribute}={value!r} must be a list of words or phrases such as "
                    f"[{words!r}], got the string {words!r}."
                )
            items = list(words) if isinstance(words, Iterable) else [words]
            if not items:
                raise AuditInputError(
                    f"{attribute}={value!r} has no words: give at least one word or phrase that "
                    "expresses it."
                )
            for phrase in items:
                toks = _tokens(phrase) if isinstance(phrase, str) else ()
                if not any(_WORD.match(t) for t in toks):
                    raise AuditInputError(
                        f"{attribute}={value!r} lists {phrase!r}; words must be strings holding at "
                        "least one letter or digit."
                    )
                if toks in owner and owner[toks] != value:
                    raise AuditInputError(
                        f"the phrase {phrase!r} of {attribute!r} expresses both {owner[toks]!r} and "
                        f"{value!r}; each phrase may express one value only (case, spaces and "
                        "hyphens are ignored when comparing phrases)."
                    )
                owner[toks] = value
        self.by_first: dict[str, list[tuple[tuple[str, ...], Any]]] = {}
        for toks, value in owner.items():
            self.by_first.setdefault(toks[0], []).append((toks, value))
        for cands in self.by_first.values():
            cands.sort(key=lambda c: -len(c[0]))

    def find(self, text: str) -> list[Any]:
        toks = _tokens(text)
        out, i = [], 0
        while i < len(toks):
            for phrase, value in self.by_first.get(toks[i], ()):
                if toks[i : i + len(phrase)] == phrase:
                    out.append(value)
                    i += len(phrase)
                    break
            else:
                i += 1
        return out


def find_mentions(text: str, value_words: Mapping[Any, Iterable[str]]) -> list[Any]:
    """Values of one attribute that a text names, in order of appearance (repeats kept).

    Args:
        text: a caption.
        value_words: value -> words or phrases expressing it (one attribute of a vocabulary).

    Example: ``find_mentions("A light-blue cube", {"blue": ["blue"], "light blue": ["light blue"]})``
    is ``["light blue"]``. See the module docstring for the matching rules.
    """
    if not isinstance(text, str):
        raise AuditInputError(f"text must be a string, got {text!r}.")
    return _Matcher("attribute", value_words).find(text)


# ----------------------------------------------------------------------------------------------
# Audit


def _check_inputs(
    frame: pd.DataFrame, vocabulary: Mapping[str, Mapping[Any, Iterable[str]]], caption_column: str
) -> dict[str, _Matcher]:
    if not isinstance(frame, pd.DataFrame):
        raise AuditInputError(f"frame must be a pandas DataFrame, got {type(frame).__name__}.")
    if caption_column not in frame.columns:
        raise AuditInputError(
            f"frame has no caption column {caption_column!r}; its columns are {list(frame.columns)} "
            "(pass caption_column=... to name another)."
        )
    if len(frame) == 0:
        raise AuditInputError("frame is empty: give at least one row (one image and its caption).")
    if not isinstance(vocabulary, Mapping) or not vocabulary:
        raise AuditInputError(
            "vocabulary is empty (or not a mapping): give attribute -> {value: words}, e.g. "
            "{'color': {'red': ['red']}}."
        )
    if caption_column in vocabulary:
        raise AuditInputError(
            f"the caption column {caption_column!r} is also an attribute of the vocabulary; an "
            "attribute must be an annotation column, not the captions."
        )
    missing = [a for a in vocabulary if a not in frame.columns]
    if missing:
        others = [c for c in frame.columns if c != caption_column]
        raise AuditInputError(
            f"vocabulary attribute(s) {missing} have no column in frame; annotation columns are {others}."
        )
    captions = frame[caption_column]
    bad = [(label, c) for label, c in captions.items() if not isinstance(c, str) or not _WORD.search(c)]
    if bad:
        shown = ", ".join(f"{label!r}: {c!r}" for label, c in bad[:_SHOW])
        more = f" and {len(bad) - _SHOW} more" if len(bad) > _SHOW else ""
        raise AuditInputError(
            f"{len(bad)} caption(s) in column {caption_column!r} are empty (no word) or "
            f"not strings (row: value) {shown}{more}; every caption must be a string holding a word."
        )
    matchers = {a: _Matcher(a, words) for a, words in vocabulary.items()}
    for attribute, words in vocabulary.items():
        unknown = []
        for label, v in frame[attribute].items():
            try:
                known = not _is_missing(v) and v in words
            except TypeError:  # unhashable
                known = False
            if not known:
                unknown.append((label, v))
        if unknown:
            shown = ", ".join(f"{label!r}: {v!r}" for label, v in unknown[:_SHOW])
            more = f" and {len(unknown) - _SHOW} more" if len(unknown) > _SHOW else ""
            allowed = ", ".join(repr(k) for k in list(words)[:10]) + (", ..." if len(words) > 10 else "")
            raise AuditInputError(
                f"{len(unknown)} row(s) of column {attribute!r} hold values that the vocabulary does "
                f"not list (row: value) {shown}{more}; allowed are [{allowed}]. "
                "Add words for every annotated value, and drop rows without an annotation."
            )
    return matchers


def _is_missing(v: Any) -> bool:
    return v is None or (isinstance(v, (float, np.floating)) and math.isnan(v)) or v is pd.NA


def caption_mentions(
    frame: pd.DataFrame,
    vocabulary: Mapping[str, Mapping[Any, Iterable[str]]],
    caption_column: str = "caption",
) -> pd.DataFrame:
    """What each caption says about each attribute: one row per (caption, attribute).

    Args:
        frame: N rows; one column per attribute of ``vocabulary`` (the annotated value of each
            image, a key of ``vocabulary[attribute]``) and the caption column (non-empty strings).
            Other columns are ignored.
        vocabulary: attribute -> value -> words or phrases expressing the value.
        caption_column: name of the caption column.

    Returns:
        DataFrame of N * A rows (A attributes, in vocabulary order, then rows in frame order) with
        columns ``row`` (the frame's index label), ``attribute``, ``annotated``, ``mentioned``
        (tuple of the distinct values named, in order of first appearance), ``is_mention`` and
        ``is_wrong`` (bool; wrong unless the annotated value is the only one named).

    Raises:
        AuditInputError: see :func:`audit_captions`.
    """
    matchers = _check_inputs(frame, vocabulary, caption_column)
    captions = frame[caption_column].tolist()
    records = []
    for attribute, matcher in matchers.items():
        key_of = {k: k for k in vocabulary[attribute]}  # annotated value -> the vocabulary's key
        for label, annotated, caption in zip(frame.index, frame[attribute].tolist(), captions):
            named = tuple(dict.fromkeys(matcher.find(caption)))
            annotated = key_of[annotated]
            records.append(
                dict(row=label, attribute=attribute, annotated=annotated, mentioned=named,
                     is_mention=bool(named), is_wrong=bool(named) and named != (annotated,))
            )
    return pd.DataFrame.from_records(
        records, columns=["row", "attribute", "annotated", "mentioned", "is_mention", "is_wrong"]
    )


def audit_captions(
    frame: pd.DataFrame,
    vocabulary: Mapping[str, Mapping[Any, Iterable[str]]],
    caption_column: str = "caption",
    thresholds: AuditThresholds | None = None,
) -> pd.DataFrame:
    """Mention rate, error rate and verdict of each attribute over a table of captions.

    Args:
        frame: N rows, one per image: a column per attribute of ``vocabulary`` holding the
            annotated value (a key of ``vocabulary[attribute]``), and ``caption_column`` holding
            the caption (a non-empty string). Other columns are ignored.
        vocabulary: attribute -> value -> words or phrases expressing the value (synonyms). See
            the module docstring for the matching rules.
        caption_column: name of the caption column.
        thresholds: verdict thresholds; defaults to ``AuditThresholds()`` (provisional).

    Returns:
        DataFrame indexed by ``attribute`` (vocabulary order) with columns ``n`` (captions),
        ``n_mentions``, ``mention_rate`` (n_mentions / n), ``n_wrong``, ``error_rate`` (n_wrong /
        n_mentions; NaN if never mentioned), ``n_multiple`` (captions naming two or more different
        values) and ``verdict`` (one of :data:`VERDICTS`).

    Raises:
        AuditInputError: no caption column, an empty frame, a vocabulary attribute without a
            column, an attribute with an empty vocabulary, a value without words, a phrase shared
            by two values of one attribute, empty or non-string captions, annotated values missing
            from the vocabulary, or invalid thresholds.
    """
    t = _check_thresholds(thresholds)
    long = caption_mentions(frame, vocabulary, caption_column)
    rows = []
    for attribute in vocabulary:
        part = long[long["attribute"] == attribute]
        n, n_mentions, n_wrong = len(part), int(part["is_mention"].sum()), int(part["is_wrong"].sum())
        mention_rate = n_mentions / n
        error_rate = n_wrong / n_mentions if n_mentions else math.nan
        rows.append(dict(
            attribute=attribute, n=n, n_mentions=n_mentions, mention_rate=mention_rate,
            n_wrong=n_wrong, error_rate=error_rate,
            n_multiple=int((part["mentioned"].map(len) > 1).sum()),
            verdict=audit_verdict(mention_rate, error_rate, t),
        ))
    return pd.DataFrame.from_records(rows).set_index("attribute")

