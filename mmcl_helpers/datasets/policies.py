"""Caption policies: captions that mention each factor only sometimes, and sometimes wrongly.

The paper's settings are all-or-nothing: a factor is always described (selected), never described
(omitted), or described and resampled with a fixed probability (perturbed). Real captions are in
between. A :class:`MentionPolicy` gives, for one factor, the probability that a caption mentions
it and the probability that a mention reports a resampled value; :func:`policy_captions` writes
scene captions under one policy per factor (book chapter 6).

As in the paper's perturbation bias, a misreported mention is *resampled*: a discrete factor
uniformly over its values, a continuous one uniformly on [0, 1]. A resampled value can equal the
true one (a 3-valued position does so a third of the time, two close hues share a colour name), so
the share of mentions that are actually wrong is below ``resample`` (``resample * (K-1)/K`` for a
factor with K values). Resampling, rather than always naming a different value, keeps a fully
resampled factor independent of the truth, which is the condition of the paper's theorem.
:func:`mmcl_helpers.practice.audit.audit_captions` measures the word-level rates.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from mmcl_helpers.core import validation as val
from mmcl_helpers.core.random_streams import hashed_integers, hashed_uniform, stream
from mmcl_helpers.datasets.captions import N_PHRASINGS, caption_text, factor_words
from mmcl_helpers.datasets.naming import UnknownFactorError
from mmcl_helpers.datasets.perturbation import CaptionBatch, statement_ids
from mmcl_helpers.datasets.scenes import DISCRETE_FACTORS, SEMANTIC_FACTORS, SceneLatents

__all__ = ["MentionPolicy", "PolicyCaptions", "policy_captions", "describe_policy"]

# Stream ids of the policy's random numbers (distinct from the renderer's and scene_captions').


@dataclass(frozen=True)
class MentionPolicy:
    """How captions treat one factor.

    Attributes:
        mention: probability that a caption mentions the factor (0 = omitted, selection bias).
        resample: probability that a mention reports a resampled value instead of the true one
            (1 = the perturbation bias of the paper's scenes).
    """

    mention: float = 1.0
    resample: float = 0.0

    def __post_init__(self) -> None:
        for name in ("mention", "resample"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                math.isfinite(value) and 0.0 <= value <= 1.0
            ):
                raise ValueError(f"MentionPolicy.{name} must be a probability in [0, 1], got {value!r}.")


@dataclass
class PolicyCaptions(CaptionBatch):
    """Captions under a policy; besides :class:`CaptionBatch`'s fields:

    Attributes:
        mentioned: for each factor of the policy, whether the caption mentions it, shape (N,) bool.
        resampled_mention: for each factor of the policy, whether a mentioned value was
            resampled, shape (N,) bool (False where the factor is not mentioned; a resampled value
            may still equal the true one).
    """

    # Defaults only because the base class's last field has one; policy_captions fills both.
    mentioned: dict[str, np.ndarray] = field(default_factory=dict)
    resampled_mention: dict[str, np.ndarray] = field(default_factory=dict)


def _check_policy(policy: Mapping[str, MentionPolicy]) -> dict[str, MentionPolicy]:
    unknown = [k for k in policy if k not in SEMANTIC_FACTORS]
    if unknown:
        raise UnknownFactorError(
            f"the policy names unknown factor(s) {unknown}; allowed are {list(SEMANTIC_FACTORS)}."
        )
    out = {}
    for name, rule in policy.items():
        if isinstance(rule, tuple):
            rule = MentionPolicy(*rule)
        if not isinstance(rule, MentionPolicy):
            raise TypeError(f"the policy for {name!r} must be a MentionPolicy or a (mention, resample) "
                            f"tuple, got {rule!r}.")
        out[name] = rule
    return out


def policy_captions(
    latents: SceneLatents,
    policy: Mapping[str, MentionPolicy | tuple[float, float]],
    seed: int = 0,
    phrasings: int = N_PHRASINGS,
) -> PolicyCaptions:
    """Scene captions under one mention policy per factor.

    Args:
        latents: the scenes (length N); their ``index`` seeds each caption's draws, so a caption
            never depends on the batch it is written in.
        policy: factor name -> :class:`MentionPolicy` (or a ``(mention, resample)`` tuple); a
            factor that is not listed is never mentioned.
        seed: caption seed.
        phrasings: number of phrasings to draw from (1 .. :data:`N_PHRASINGS`).

    Returns:
        :class:`PolicyCaptions` of N captions.

    Raises:
        mmcl_helpers.datasets.naming.UnknownFactorError: a factor name that is not a scene factor.
        ValueError: a probability outside [0, 1] or a bad ``phrasings``.
    """
    val.check_params("policy_captions", seed=(seed, val.NONNEG_INT), phrasings=(phrasings, val.POSITIVE_INT))
    rules = _check_policy(policy)
    if not 1 <= phrasings <= N_PHRASINGS:
        raise ValueError(f"phrasings must be in 1..{N_PHRASINGS}, got {phrasings!r}.")
    idx = latents.index
    reported, mentioned, redrawn = {}, {}, {}
    for name in SEMANTIC_FACTORS:
        if name not in rules:
            continue
        k = SEMANTIC_FACTORS.index(name)
        rule = rules[name]
        value = getattr(latents, name)
        says = hashed_uniform(seed, idx, stream("policy_mention", k)) < rule.mention
        redraw = says & (hashed_uniform(seed, idx, stream("policy_resample", k)) < rule.resample)
        if name in DISCRETE_FACTORS:
            other = hashed_integers(seed, idx, stream("policy_value", k), DISCRETE_FACTORS[name])
        else:
            other = hashed_uniform(seed, idx, stream("policy_value", k))
        reported[name] = np.where(redraw, other, value).astype(value.dtype)
        mentioned[name], redrawn[name] = says, redraw
    words = factor_words(reported)
    for name, says in mentioned.items():
        words[name] = np.where(says, words[name], None)
    phrasing = hashed_integers(seed, idx, stream("policy_phrasing"), phrasings)
    return PolicyCaptions(
        text=caption_text(words, phrasing), phrasing=phrasing, reported=reported,
        resampled={k: v for k, v in redrawn.items() if rules[k].resample > 0}, mentioned=mentioned,
        resampled_mention=redrawn,
        statement=statement_ids(words) if words else np.zeros(len(idx), np.int64),
    )


def describe_policy(policy: Mapping[str, MentionPolicy | tuple[float, float]]) -> str:
    """A short label: ``shape, x_pos (mentioned 50%), y_pos (resampled 25%)``; omitted ones left out."""
    parts = []
    for name, rule in _check_policy(policy).items():
        if rule.mention == 0:
            continue
        notes = []
        if rule.mention < 1:
            notes.append(f"mentioned {rule.mention:.0%}")
        if rule.resample > 0:
            notes.append(f"resampled {rule.resample:.0%}")
        parts.append(name + (f" ({', '.join(notes)})" if notes else ""))
    return ", ".join(parts) if parts else "no factor mentioned"
