"""Caption policies in practice (book chapter 6): what a policy costs, what it buys, and an audit check.

Chapter 6 trains the image-text models of chapter 5 (:mod:`~mmcl_helpers.image_text`) on captions
written under :class:`~mmcl_helpers.datasets.policies.MentionPolicy` rules and asks three things:

- :func:`shift_scores` -- does leaving a factor out of the captions make a downstream classifier
  robust to a shift of that factor (Corollary 4.2 of the paper, here on images)?
- :func:`recovery_curves` -- how is a factor recovered when captions mention it only sometimes,
  or resample some mentions (the paper leaves this open, its App. G.1)?
- :func:`calibrate_thresholds` and :func:`audit_agreement` -- which audit thresholds those curves
  support, and whether the audit's verdicts match what trained models learn.

Everything starts from :func:`run_policy_study`, which trains one pair of encoders per policy and
seed on the same rendered scenes and probes ẑ_x for every factor.

Recovery classes (:func:`~mmcl_helpers.core.results.recovery_class`) use the bars of
:mod:`~mmcl_helpers.core.results`: a factor is *learned* when its probe score (MCC for discrete, R^2 for
continuous factors) is at least :data:`~mmcl_helpers.core.results.LEARNED_BAR` (0.8) and *discarded* when
it is at most :data:`~mmcl_helpers.core.results.DISCARDED_BAR` (0.2). A factor the captions never name
can still be predictable through its causes (object colour through the position, chapter 5):
:func:`run_policy_study` also scores how well the *true* values of the other factors the captions
carry predict each factor, and reports the *direct* recovery, the part of the score those factors do
not already explain.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from sklearn.metrics import matthews_corrcoef

from mmcl_helpers.core import validation as val
from mmcl_helpers.core.model_store import PlannedTraining, merge_plans
from mmcl_helpers.core.profiles import ImageTextProfile, image_text_profile
from mmcl_helpers.core.results import DISCARDED_BAR, LEARNED_BAR, StudyResult, recovery_class, warn_unlearned
from mmcl_helpers.datasets.policies import MentionPolicy, PolicyCaptions, policy_captions
from mmcl_helpers.datasets.scene_audit import scene_audit_frame, scene_vocabulary
from mmcl_helpers.datasets.scenes import (
    DISCRETE_FACTORS,
    IMAGE_FACTORS,
    SEMANTIC_FACTORS,
    SceneLatents,
    encoding_size_for,
    factor_inputs,
)
from mmcl_helpers.image_text.pair_training import encode_pairs, train_pair_encoders
from mmcl_helpers.image_text.sweeps import scene_parts
from mmcl_helpers.numerical.probes import FactorSpec, mlp_classifier, probe_representations, standardize
from mmcl_helpers.practice.audit import AuditThresholds, audit_captions, audit_verdict

__all__ = [
    "carried_factors",
    "policy_profile",
    "policy_encoding_size",
    "study_architecture",
    "policy_role",
    "PolicyStudy",
    "run_policy_study",
    "policy_study_plan",
    "shift_scores",
    "audit_study",
    "recovery_curves",
    "calibrate_thresholds",
    "audit_agreement",
    "disagreement_reason",
    "agreement_by_seed",
]


def _rules(policy: Mapping[str, MentionPolicy | tuple[float, float]]) -> dict[str, MentionPolicy]:
    return {k: v if isinstance(v, MentionPolicy) else MentionPolicy(*v) for k, v in policy.items()}


def carried_factors(policy: Mapping[str, MentionPolicy | tuple[float, float]]) -> list[str]:
    """Factors whose captions carry information: mentioned sometimes and not always resampled."""
    rules = _rules(policy)
    return [k for k in SEMANTIC_FACTORS if k in rules and rules[k].mention > 0 and rules[k].resample < 1]


def policy_role(policy: Mapping[str, MentionPolicy | tuple[float, float]], factor: str) -> str:
    """The role of ``factor`` under a policy, in the vocabulary of :mod:`~mmcl_helpers.core.results`.

    ``image-specific`` for an image factor; for a semantic: ``omitted`` (never mentioned, or not
    in the policy), ``perturbed`` (some mentions resampled), ``unbiased`` (always mentioned,
    never resampled), else ``partly mentioned``.
    """
    if factor not in SEMANTIC_FACTORS:
        return "image-specific"
    rule = _rules(policy).get(factor)
    if rule is None or rule.mention == 0:
        return "omitted"
    if rule.resample > 0:
        return "perturbed"
    return "unbiased" if rule.mention == 1 else "partly mentioned"


def policy_profile(profile: ImageTextProfile) -> ImageTextProfile:
    """The sizes chapter 6 trains its policies with: ``profile`` without the late pull.

    Chapter 5's recipe otherwise: contrast groups, the false-negative mask, the encoding sizes,
    and the first stage of :meth:`~mmcl_helpers.core.profiles.ImageTextProfile.for_setting`.
    :func:`run_policy_study` trains every policy of one study with one architecture and one output
    size (:func:`study_architecture`), so that policies differ in their captions only. Why no late
    pull (``align_weight`` 1): chapter 6 asks which semantic
    factors an encoder learns, not whether it drops the image-specific ones, and the pull costs
    the shape part of its separation (chapter 5's late-pull section measures it); with the
    background described, the shape is the factor this chapter needs.
    """
    val.check_params("policy_profile", profile=(profile, val.InstanceOf(ImageTextProfile)))
    return profile.with_overrides(align_weight=1.0, align_from=0.0)


def policy_encoding_size(policy: Mapping[str, MentionPolicy | tuple[float, float]],
                         dims_per_factor: int = 0) -> int:
    """Encoding size of a policy: the paper's size for its number ``n`` of carried factors (at
    least 3), or ``max(that, dims_per_factor * n)`` (as
    :func:`~mmcl_helpers.datasets.scenes.scene_encoding_size`)."""
    return encoding_size_for(len(carried_factors(policy)), dims_per_factor)


def study_architecture(
    policies: Mapping[str, Mapping[str, MentionPolicy | tuple[float, float]]],
    profile: ImageTextProfile,
) -> tuple[ImageTextProfile, int]:
    """The one architecture and output size every policy of a study trains with.

    Both are those chapter 5's recipe gives the policy that carries the most factors: the first
    stage of :meth:`~mmcl_helpers.core.profiles.ImageTextProfile.for_setting` and
    :func:`policy_encoding_size` for that many factors. A comparison of policies then changes the
    captions alone, not the network or the size of its output.

    Returns:
        ``(profile the study trains with, encoding size)``.
    """
    if not policies:
        raise ValueError("policies is empty: give at least one label -> policy.")
    val.check_params("study_architecture", profile=(profile, val.InstanceOf(ImageTextProfile)))
    most = max(len(carried_factors(p)) for p in policies.values())
    return profile.for_setting(most), encoding_size_for(most, profile.dims_per_factor)


@dataclass
class PolicyStudy(StudyResult):
    """Models trained under several caption policies, and what their image encoders learned.

    Attributes:
        scores: long table (:data:`~mmcl_helpers.core.results.SCORE_COLUMNS`), one row per policy, seed,
            factor and probe, columns policy, seed, kind (semantic / image-specific), encoder
            (always ``x``), factor, role (:func:`policy_role`), probe (mlp / linear), metric (``mcc``
            / ``r2``), score, explained (score of the same probe from the true values of the *other*
            factors the captions carry; 0 when there are none) and direct (``max(score - explained,
            0)``).
        z: ``(policy, seed)`` -> ``(z_probe_train, z_probe_test)``, the image representations.
        latents: ``train``, ``probe_train`` and ``probe_test`` scenes.
        captions: ``(policy, seed)`` -> the training captions (:class:`PolicyCaptions`).
        policies: label -> policy, as given.
        seconds: wall-clock time of ``render``, ``train`` and ``probe``.
        config: settings, seeds and encoding sizes.
    """

    z: dict
    latents: dict[str, SceneLatents]
    captions: dict
    policies: dict
    seconds: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def table(self, probe: str = "mlp", value: str = "score") -> pd.DataFrame:
        """Mean over seeds, factor x policy (``value``: ``score``, ``explained`` or ``direct``)."""
        df = self.scores[self.scores["probe"] == probe]
        grid = df.pivot_table(index="factor", columns="policy", values=value, aggfunc="mean", sort=False)
        return grid[list(self.policies)]


def run_policy_study(
    policies: Mapping[str, Mapping[str, MentionPolicy | tuple[float, float]]],
    seeds: int | Sequence[int] = 0,
    profile: ImageTextProfile | None = None,
    data_seed: int = 0,
    device: str | None = None,
    progress: bool | None = None,
    cache_dir: str | None = None,
) -> PolicyStudy:
    """Train one pair of encoders per policy and seed on the same scenes; probe ẑ_x.

    Every policy trains the same architecture with the same output size
    (:func:`study_architecture`), so the policies differ in their captions only.

    Args:
        policies: label -> policy (factor -> :class:`MentionPolicy` or ``(mention, resample)``).
        seeds: training seeds (each also seeds the captions).
        profile: sizes; default :func:`~mmcl_helpers.core.profiles.image_text_profile`.
        data_seed: seed of the rendered scenes (train, probe-train and probe-test splits).
        device, progress: as in :func:`~mmcl_helpers.image_text.pair_training.train_pair_encoders`.
        cache_dir: render cache folder.

    Returns:
        :class:`PolicyStudy`.
    """
    if not policies:
        raise ValueError("policies is empty: give at least one label -> policy.")
    ok = val.check_params("run_policy_study", seeds=(seeds, val.SEEDS), data_seed=(data_seed, val.NONNEG_INT),
                          profile=(profile, [val.InstanceOf(ImageTextProfile), None]))
    device = val.check_device(device, "run_policy_study")
    profile = profile or image_text_profile()
    seeds = [ok["seeds"]] if isinstance(ok["seeds"], int) else list(ok["seeds"])
    arch, size = study_architecture(policies, profile)
    t0 = time.perf_counter()
    # The scenes of chapter 5 (with its contrast groups when the profile asks for them).
    scene_data, groups = scene_parts(profile, data_seed, cache_dir)
    lat = {part: pair[0] for part, pair in scene_data.items()}
    img = {part: pair[1] for part, pair in scene_data.items()}
    t_render = time.perf_counter() - t0
    factors = SEMANTIC_FACTORS + IMAGE_FACTORS
    specs = [FactorSpec(n, getattr(lat["probe_train"], n), getattr(lat["probe_test"], n),
                        DISCRETE_FACTORS.get(n, 0), encoders=("x",)) for n in factors]
    z, caps, frames = {}, {}, []
    t_train = t_probe = 0.0
    for seed in seeds:
        reps = {}
        for label, policy in policies.items():
            t1 = time.perf_counter()
            caps[(label, seed)] = policy_captions(lat["train"], policy, seed=seed)
            model = train_pair_encoders(img["train"], caps[(label, seed)].text, size, arch, seed=seed,
                                        device=device, progress=progress, desc=label,
                                        groups=groups, statements=caps[(label, seed)].statement)
            t2 = time.perf_counter()
            t_train += t2 - t1
            zs = [encode_pairs(model, img[p], policy_captions(lat[p], policy, seed=seed).text)[0]
                  for p in ("probe_train", "probe_test")]
            z[(label, seed)] = tuple(zs)
            reps[(label, "x")] = tuple(zs)
            t_probe += time.perf_counter() - t2
        t2 = time.perf_counter()
        scores = probe_representations(reps, specs, profile.probe_steps, seed=seed + 1000)
        # What the true values of the *other* carried factors explain (the same probes): a factor
        # the captions never name can still be read off through its causes or effects.
        parts = []
        for spec in specs[: len(SEMANTIC_FACTORS)]:
            truth = {}
            for label, policy in policies.items():
                others = [c for c in carried_factors(policy) if c != spec.name]
                if others:
                    truth[(label, "x")] = tuple(
                        torch.from_numpy(factor_inputs(lat[p].as_dict(), others))
                        for p in ("probe_train", "probe_test"))
            if truth:
                parts.append(probe_representations(truth, [spec], profile.probe_steps,
                                                   seed=seed + 1000))
        explained = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
            columns=["key", "factor", "probe", "score"])
        t_probe += time.perf_counter() - t2
        explained = explained.rename(columns={"score": "explained"})
        scores = scores.merge(explained[["key", "factor", "probe", "explained"]],
                              on=["key", "factor", "probe"], how="left")
        scores["explained"] = scores["explained"].fillna(0.0).clip(lower=0.0)
        scores["score"] = scores["score"].clip(lower=0.0)  # MCC below 0 means "nothing learned"
        scores["direct"] = (scores["score"] - scores["explained"]).clip(lower=0.0)
        scores = scores.rename(columns={"key": "policy"}).drop(columns="encoder")
        scores.insert(1, "seed", seed)
        scores.insert(2, "kind", ["image-specific" if f in IMAGE_FACTORS else "semantic"
                                  for f in scores["factor"]])
        scores.insert(3, "encoder", "x")
        scores.insert(5, "role", [policy_role(policies[p], f)
                                  for p, f in zip(scores["policy"], scores["factor"])])
        frames.append(scores)
    config = {"profile": asdict(profile), "seeds": seeds, "data_seed": data_seed,
              "encoding_size": size, "first_stride": arch.first_stride,
              "policies": {k: {f: asdict(r) for f, r in _rules(p).items()} for k, p in policies.items()}}
    seconds = {"render": round(t_render, 1), "train": round(t_train, 1), "probe": round(t_probe, 1)}
    table = pd.concat(frames, ignore_index=True)
    # A factor a policy always states truthfully that ẑ_x did not learn: say so, naming it.
    warn_unlearned(table.rename(columns={"policy": "setting"}), "policy study", stacklevel=2)
    return PolicyStudy(table, z, lat, caps, dict(policies), seconds, config)


def policy_study_plan(
    policies: Mapping[str, Mapping[str, MentionPolicy | tuple[float, float]]],
    seeds: int | Sequence[int] = 0,
    profile: ImageTextProfile | None = None,
) -> list[PlannedTraining]:
    """What :func:`run_policy_study` with these arguments trains: one pair of encoders per policy
    and seed, all with the study's one architecture (:func:`study_architecture`)."""
    profile = profile or image_text_profile()
    n_seeds = 1 if isinstance(seeds, int) else len(list(seeds))
    arch, _ = study_architecture(policies, profile)
    return merge_plans([PlannedTraining("image_text", 1, n_seeds, arch.steps, arch)
                        for _ in policies.values()])


def shift_scores(
    study: PolicyStudy,
    factor: str = "b_color",
    threshold: float = 0.5,
    task: str = "shape",
    probe_steps: int | None = None,
) -> pd.DataFrame:
    """A downstream classifier fitted in one environment and tested in-distribution and shifted.

    Environments split the scenes by one continuous factor: ``factor < threshold`` (training
    environment) and ``factor >= threshold`` (shifted test). A 2-layer MLP classifier for ``task``
    is fitted on frozen ẑ_x of the probe-training scenes of the training environment and scored
    (MCC) on the probe-test scenes of each environment.

    Returns:
        frame with columns policy, seed, split (``in-distribution`` / ``shifted``), n, mcc.
    """
    if factor not in SEMANTIC_FACTORS or factor in DISCRETE_FACTORS:
        raise ValueError(f"factor must be a continuous scene factor "
                         f"{[f for f in SEMANTIC_FACTORS if f not in DISCRETE_FACTORS]}, got {factor!r}.")
    if task not in DISCRETE_FACTORS:
        raise ValueError(f"task must be a discrete factor {list(DISCRETE_FACTORS)}, got {task!r}.")
    tr, te = study.latents["probe_train"], study.latents["probe_test"]
    env_tr = getattr(tr, factor) < threshold
    env_id, env_ood = getattr(te, factor) < threshold, getattr(te, factor) >= threshold
    steps = probe_steps or study.config["profile"]["probe_steps"]
    rows = []
    for (label, seed), (z_tr, z_te) in study.z.items():
        # Standardise with the training environment's statistics only, as a practitioner would.
        a, b = standardize(z_tr[torch.as_tensor(env_tr, device=z_tr.device)], z_te)
        y = torch.as_tensor(getattr(tr, task)[env_tr], dtype=torch.long)
        predict = mlp_classifier(a[None], y[None], steps=steps, seed=seed + 2000)
        pred = predict(b[None])[0]
        truth = getattr(te, task)
        for split, mask in (("in-distribution", env_id), ("shifted", env_ood)):
            rows.append(dict(policy=label, seed=seed, split=split, n=int(mask.sum()),
                             mcc=float(matthews_corrcoef(truth[mask], pred[mask]))))
    return pd.DataFrame(rows)


def audit_study(study: PolicyStudy, seed: int | None = None) -> pd.DataFrame:
    """Audit the training captions of every policy (one seed): :func:`audit_captions` rows."""
    seed = study.config["seeds"][0] if seed is None else seed
    frames = []
    for label in study.policies:
        caps: PolicyCaptions = study.captions[(label, seed)]
        audit = audit_captions(scene_audit_frame(study.latents["train"], caps.text), scene_vocabulary())
        audit = audit.reset_index().rename(columns={"attribute": "factor"})
        audit.insert(0, "policy", label)
        frames.append(audit)
    return pd.concat(frames, ignore_index=True)


def recovery_curves(
    study: PolicyStudy, factors: Sequence[str], probe: str = "mlp"
) -> pd.DataFrame:
    """Measured caption rates and recovery of some factors across the policies of a study.

    Returns:
        frame with columns policy, factor, mention_rate, error_rate (measured on the training
        captions by the audit), score_mean, score_std (over seeds), direct_mean.
    """
    audit = audit_study(study)
    audit = audit[audit["factor"].isin(factors)]
    df = study.scores[(study.scores["probe"] == probe) & study.scores["factor"].isin(factors)]
    agg = df.groupby(["policy", "factor"], sort=False).agg(
        score_mean=("score", "mean"), score_std=("score", "std"), direct_mean=("direct", "mean")
    ).reset_index()
    out = audit[["policy", "factor", "mention_rate", "error_rate"]].merge(agg, on=["policy", "factor"])
    out["error_rate"] = out["error_rate"].fillna(0.0)
    return out


def calibrate_thresholds(mention_curve: pd.DataFrame, error_curve: pd.DataFrame) -> AuditThresholds:
    """Audit thresholds read off measured recovery curves.

    Args:
        mention_curve: :func:`recovery_curves` rows of a factor whose mention rate varies (no
            resampling); error_curve: rows of a factor always mentioned whose error rate varies.

    Returns:
        :class:`~mmcl_helpers.practice.audit.AuditThresholds`: ``min_mention_rate`` is the lowest measured
        mention rate from which every point is learned (score ≥ 0.8), ``discard_mention_rate``
        the highest rate up to which every point is discarded (≤ 0.2); ``max_error_rate`` and
        ``discard_error_rate`` likewise along the error curve. Where no point is learned (or
        discarded) the threshold falls back to the extreme (1.0 or 0.0 for mentions); where a
        curve cannot separate the two at all, that axis keeps the defaults of
        :class:`~mmcl_helpers.practice.audit.AuditThresholds` and a warning says so.
    """
    def lowest_from(x: np.ndarray, ok: np.ndarray, default: float) -> float:
        order = np.argsort(x)
        x, ok = x[order], ok[order]
        good = [x[i] for i in range(len(x)) if ok[i:].all()]
        return float(min(good)) if good else default

    def highest_until(x: np.ndarray, ok: np.ndarray, default: float) -> float:
        order = np.argsort(x)
        x, ok = x[order], ok[order]
        good = [x[i] for i in range(len(x)) if ok[: i + 1].all()]
        return float(max(good)) if good else default

    m_x = mention_curve["mention_rate"].to_numpy()
    m_s = mention_curve["score_mean"].to_numpy()
    e_x = error_curve["error_rate"].to_numpy()
    e_s = error_curve["score_mean"].to_numpy()
    min_mention = lowest_from(m_x, m_s >= LEARNED_BAR, 1.0)
    discard_mention = highest_until(m_x, m_s <= DISCARDED_BAR, 0.0)
    # Along the error axis "learned" holds for low rates and "discarded" for high ones.
    max_error = highest_until(e_x, e_s >= LEARNED_BAR, 0.0)
    discard_error = lowest_from(e_x, e_s <= DISCARDED_BAR, 1.0)
    default = AuditThresholds()
    # A curve that never reaches the learned bar (an under-trained model) cannot place both
    # thresholds of its axis; keep the defaults for that axis and say so.
    if not discard_mention < min_mention:
        warnings.warn(f"the mention curve does not separate learned from discarded (scores "
                      f"{np.round(m_s, 2).tolist()}); keeping the default mention thresholds.",
                      stacklevel=2)
        min_mention, discard_mention = default.min_mention_rate, default.discard_mention_rate
    if not max_error < discard_error:
        warnings.warn(f"the error curve does not separate learned from discarded (scores "
                      f"{np.round(e_s, 2).tolist()}); keeping the default error thresholds.",
                      stacklevel=2)
        max_error, discard_error = default.max_error_rate, default.discard_error_rate
    return AuditThresholds(min_mention_rate=min_mention, max_error_rate=max_error,
                           discard_mention_rate=discard_mention, discard_error_rate=discard_error)


def audit_agreement(
    study: PolicyStudy,
    thresholds: AuditThresholds,
    factors: Sequence[str] = SEMANTIC_FACTORS,
    probe: str = "mlp",
    value: str = "direct",
) -> pd.DataFrame:
    """The audit's verdict next to the measured recovery, per policy and factor.

    Args:
        study: trained models and their captions.
        thresholds: audit thresholds (e.g. from :func:`calibrate_thresholds`).
        factors: factors to compare.
        probe: probe whose score is used.
        value: ``direct`` (default: recovery beyond what the carried factors explain) or ``score``.

    Returns:
        frame with columns policy, factor, mention_rate, error_rate, verdict, score, direct,
        measured (recovery class of ``value``), agree and why (:func:`disagreement_reason`,
        empty where they agree).
    """
    rows = audit_study(study)
    rows = rows[rows["factor"].isin(factors)].copy()
    rows["verdict"] = [audit_verdict(m, e, thresholds)
                       for m, e in zip(rows["mention_rate"], rows["error_rate"])]
    df = study.scores[study.scores["probe"] == probe]
    agg = df.groupby(["policy", "factor"], sort=False)[["score", "direct"]].mean().reset_index()
    cols = ["policy", "factor", "mention_rate", "error_rate", "verdict"]
    out = rows[cols].merge(agg, on=["policy", "factor"])
    out["measured"] = [recovery_class(v) for v in out[value]]
    out["agree"] = [_MATCH[v] == m for v, m in zip(out["verdict"], out["measured"])]
    out["why"] = [disagreement_reason(v, m, q) for v, m, q in
                  zip(out["verdict"], out["measured"], out["mention_rate"])]
    return out


_MATCH = {"likely learned": "learned", "at risk": "partly learned", "likely discarded": "discarded"}
_ORDER = ("discarded", "partly learned", "learned")


def disagreement_reason(verdict: str, measured: str, mention_rate: float) -> str:
    """Why an audit verdict and a measured recovery class can differ, in a few words.

    The audit reads only mention and error rates; the reasons are the mechanisms chapters 5 and 6
    name. Returns ``""`` when the two agree.

    Args:
        verdict: ``likely learned``, ``at risk`` or ``likely discarded``.
        measured: ``learned``, ``partly learned`` or ``discarded`` (:func:`recovery_class`).
        mention_rate: share of captions that mention the factor.

    Raises:
        ValueError: an unknown verdict or class.
    """
    if verdict not in _MATCH or measured not in _ORDER:
        raise ValueError(f"verdict must be one of {sorted(_MATCH)} and measured one of "
                         f"{list(_ORDER)}; got verdict={verdict!r}, measured={measured!r}.")
    expected = _MATCH[verdict]
    if expected == measured:
        return ""
    if _ORDER.index(measured) < _ORDER.index(expected):
        return ("learned less than its words promise: the audit reads words, not how hard a factor "
                "is to see (crowded out by easier cues, or too short a run; chapter 5)")
    if mention_rate == 0:
        return ("never mentioned, yet above the discarded bar: the finite-training residue of "
                "chapters 2, 3 and 5")
    return ("learned more than its rates predict: a finite-batch loss keeps a factor whose "
            "mentions are informative even when many are wrong (section 2)")


def agreement_by_seed(
    study: PolicyStudy,
    thresholds: AuditThresholds,
    factors: Sequence[str] = SEMANTIC_FACTORS,
    probe: str = "mlp",
    value: str = "direct",
) -> pd.DataFrame:
    """:func:`audit_agreement` for each seed on its own: that seed's captions and trained models.

    Chapter 6 reports this for policies whose numbers were not used to calibrate ``thresholds``,
    so that the agreement is not measured on the models the thresholds were read off.

    Returns:
        one row per seed, columns seed, pairs ((policy, factor) pairs compared), agreeing, share.
    """
    rows = []
    for seed in study.config["seeds"]:
        one = replace(study, scores=study.scores[study.scores["seed"] == seed],
                      config={**study.config, "seeds": [seed]})
        agree = audit_agreement(one, thresholds, factors=factors, probe=probe, value=value)
        rows.append({"seed": seed, "pairs": len(agree), "agreeing": int(agree["agree"].sum()),
                     "share": float(agree["agree"].mean())})
    return pd.DataFrame(rows, columns=["seed", "pairs", "agreeing", "share"])
