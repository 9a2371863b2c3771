"""Caption policies (random mentions, resampled mentions) and the chapter-6 study helpers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmcl_helpers.core.profiles import image_text_profile
from mmcl_helpers.core.results import UnlearnedFactorWarning, recovery_class
from mmcl_helpers.datasets.naming import UnknownFactorError
from mmcl_helpers.datasets.policies import MentionPolicy, describe_policy, policy_captions
from mmcl_helpers.datasets.scene_audit import scene_audit_frame, scene_vocabulary
from mmcl_helpers.datasets.scenes import sample_scene_latents
from mmcl_helpers.practice.audit import AuditThresholds, audit_captions
from mmcl_helpers.practice.studies import (
    agreement_by_seed,
    audit_agreement,
    calibrate_thresholds,
    carried_factors,
    policy_encoding_size,
    recovery_curves,
    run_policy_study,
    shift_scores,
    study_architecture,
)


@pytest.fixture(scope="module")
def scenes():
    return sample_scene_latents(3000, seed=3)


def _audit(lat, caps):
    return audit_captions(scene_audit_frame(lat, caps.text), scene_vocabulary())


def test_mention_rate_and_omission(scenes):
    caps = policy_captions(scenes, {"shape": (1.0, 0.0), "x_pos": (0.3, 0.0)}, seed=1)
    audit = _audit(scenes, caps)
    assert audit.loc["shape", "mention_rate"] == 1.0
    assert audit.loc["shape", "error_rate"] == 0.0
    assert abs(audit.loc["x_pos", "mention_rate"] - 0.3) < 0.03
    assert audit.loc["x_pos", "error_rate"] == 0.0
    # The audit's count equals the policy's own record of mentions.
    assert audit.loc["x_pos", "n_mentions"] == caps.mentioned["x_pos"].sum()
    for omitted in ("y_pos", "s_pos", "color", "s_color", "b_color"):
        assert audit.loc[omitted, "mention_rate"] == 0.0


def test_resampled_mentions_are_wrong_at_the_expected_rate(scenes):
    caps = policy_captions(scenes, {"y_pos": MentionPolicy(1.0, 0.6)}, seed=2)
    audit = _audit(scenes, caps)
    # A resample hits one of 3 rows uniformly: wrong with probability 0.6 * 2/3.
    assert abs(audit.loc["y_pos", "error_rate"] - 0.4) < 0.03
    wrong = caps.reported["y_pos"] != scenes.y_pos
    assert not wrong[~caps.resampled_mention["y_pos"]].any()
    assert audit.loc["y_pos", "n_wrong"] == wrong.sum()


def test_full_resampling_is_independent_of_the_truth(scenes):
    caps = policy_captions(scenes, {"x_pos": (1.0, 1.0)}, seed=0)
    table = pd.crosstab(scenes.x_pos, caps.reported["x_pos"], normalize="index").to_numpy()
    assert np.abs(table - 1 / 3).max() < 0.05


def test_policy_captions_are_deterministic_per_sample(scenes):
    policy = {"shape": (0.5, 0.2), "b_color": (0.7, 0.5)}
    whole = policy_captions(scenes, policy, seed=4).text
    part = policy_captions(scenes[100:110], policy, seed=4).text
    assert whole[100:110] == part
    assert policy_captions(scenes, policy, seed=5).text != whole


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), True, "0.5"])
def test_mention_policy_rejects_non_probabilities(bad):
    with pytest.raises(ValueError, match="probability in \\[0, 1\\]"):
        MentionPolicy(mention=bad)
    with pytest.raises(ValueError, match="resample"):
        MentionPolicy(resample=bad)


def test_unknown_factor_and_bad_rule(scenes):
    with pytest.raises(UnknownFactorError, match="shade"):
        policy_captions(scenes, {"shade": (1, 0)})
    with pytest.raises(TypeError, match="MentionPolicy"):
        policy_captions(scenes, {"shape": 1.0})


def test_describe_and_sizes():
    policy = {"shape": (1, 0), "x_pos": (0.5, 0), "y_pos": (1, 0.25), "b_color": (1, 1), "color": (0, 0)}
    assert describe_policy(policy) == ("shape, x_pos (mentioned 50%), y_pos (resampled 25%), "
                                       "b_color (resampled 100%)")
    assert carried_factors(policy) == ["shape", "x_pos", "y_pos"]
    assert policy_encoding_size(policy) == 4
    assert policy_encoding_size({}) == 3


def test_study_architecture_is_the_densest_policys():
    prof = image_text_profile("cpu").with_overrides(first_stride=1, stride1_from=4, dims_per_factor=2)
    full = {f: (1, 0) for f in ("shape", "x_pos", "y_pos", "b_color")}
    three = {f: (1, 0) for f in ("shape", "x_pos", "y_pos")}
    arch, size = study_architecture({"describe": full, "omit": three}, prof)
    assert (arch.first_stride, size) == (1, 8)  # four carried factors: stride 1, 2 x 4 outputs
    arch, size = study_architecture({"omit": three, "one": {"shape": (1, 0)}}, prof)
    assert (arch.first_stride, size) == (2, 6)
    with pytest.raises(ValueError, match="policies is empty"):
        study_architecture({}, prof)


@pytest.mark.parametrize("score, cls", [(0.8, "learned"), (0.79, "partly learned"), (0.2, "discarded"),
                                        (0.21, "partly learned"), (0.0, "discarded")])
def test_recovery_class_bounds(score, cls):
    assert recovery_class(score) == cls


def test_calibrate_thresholds_reads_the_curves():
    mention = pd.DataFrame({"mention_rate": [0.0, 0.1, 0.25, 0.5, 0.75, 1.0],
                            "score_mean": [0.01, 0.1, 0.5, 0.85, 0.9, 0.95]})
    error = pd.DataFrame({"error_rate": [0.0, 0.07, 0.17, 0.33, 0.5, 0.67],
                          "score_mean": [0.95, 0.9, 0.6, 0.3, 0.15, 0.02]})
    t = calibrate_thresholds(mention, error)
    assert t == AuditThresholds(min_mention_rate=0.5, max_error_rate=0.07, discard_mention_rate=0.1,
                                discard_error_rate=0.5)
    # A dip breaks "every point from here on": the learned threshold moves up past it.
    mention.loc[4, "score_mean"] = 0.7
    assert calibrate_thresholds(mention, error).min_mention_rate == 1.0
    # An under-trained model learns nothing: that axis keeps the defaults, with a warning.
    mention["score_mean"] = 0.05
    with pytest.warns(UserWarning, match="mention curve does not separate"):
        t = calibrate_thresholds(mention, error)
    assert (t.min_mention_rate, t.discard_mention_rate) == (AuditThresholds().min_mention_rate,
                                                            AuditThresholds().discard_mention_rate)
    assert t.discard_error_rate == 0.5


def test_policy_study_runs_and_scores(tmp_path):
    settings = image_text_profile("smoke").with_overrides(n_train=256, n_probe_train=200,
                                                           n_probe_test=200, steps=4, probe_steps=5)
    policies = {"full": {"shape": (1, 0), "b_color": (1, 0)}, "omit": {"shape": (1, 0)},
                "pos": {"x_pos": (1, 0), "y_pos": (1, 0)}}
    # Four steps learn nothing: each policy's always-stated factors are named as unlearned.
    with pytest.warns(UnlearnedFactorWarning, match=r"policy study: .*never perturb .*shape"):
        study = run_policy_study(policies, seeds=[0, 1], profile=settings, progress=False,
                                 cache_dir=str(tmp_path))
    s = study.scores
    assert set(s["policy"]) == {"full", "omit", "pos"}
    assert {"score", "explained", "direct", "metric", "kind"} <= set(s.columns)
    assert s["score"].between(0, 1).all() and (s["direct"] <= s["score"] + 1e-12).all()
    s0 = s[s["seed"] == 0]
    # b_color is carried by "full" but says nothing about shape; shape is explained by nothing.
    full = s0[(s0["policy"] == "full") & (s0["probe"] == "linear")].set_index("factor")
    assert full.loc["shape", "explained"] < 0.1 and full.loc["b_color", "explained"] < 0.1
    omit = s0[(s0["policy"] == "omit") & (s0["probe"] == "linear")].set_index("factor")
    assert omit.loc["b_color", "explained"] == 0.0  # nothing else carried
    # Object colour is caused by the position: captions naming the position explain most of it.
    pos = s0[(s0["policy"] == "pos") & (s0["probe"] == "linear")].set_index("factor")
    assert pos.loc["color", "explained"] > 0.6 and pos.loc["shape", "explained"] < 0.1
    assert study.table().shape == (12, 3)
    # One architecture and one output size for every policy of the study (the densest policy's).
    assert study.config["encoding_size"] == policy_encoding_size(policies["full"], settings.dims_per_factor)
    assert study.config["first_stride"] == settings.for_setting(2).first_stride
    assert {z[0].shape[1] for z in study.z.values()} == {study.config["encoding_size"]}
    shift = shift_scores(study, factor="b_color", threshold=0.5, task="shape", probe_steps=5)
    assert list(shift.columns) == ["policy", "seed", "split", "n", "mcc"]
    assert len(shift) == 12 and (shift["n"] > 0).all()  # 3 policies x 2 seeds x 2 splits
    curves = recovery_curves(study, ["b_color"])
    assert curves.set_index("policy").loc["omit", "mention_rate"] == 0.0
    agree = audit_agreement(study, AuditThresholds(), factors=["shape", "b_color"])
    assert set(agree["verdict"]) <= {"likely learned", "at risk", "likely discarded"}
    assert agree.set_index(["policy", "factor"]).loc[("omit", "b_color"), "verdict"] == "likely discarded"
    assert ((agree["why"] == "") == agree["agree"]).all()  # a reason exactly where they disagree
    # Per seed: each seed's own captions and models; the seeds' scores differ, so the per-seed
    # comparison is not the seed-mean one repeated.
    by_seed = agreement_by_seed(study, AuditThresholds(), factors=["shape", "b_color"])
    assert by_seed["seed"].tolist() == [0, 1]
    assert (by_seed["pairs"] == 6).all()
    for seed, row in by_seed.set_index("seed").iterrows():
        alone = s[s["seed"] == seed]
        per = audit_agreement(type(study)(alone, study.z, study.latents, study.captions, study.policies,
                                          config={**study.config, "seeds": [seed]}),
                              AuditThresholds(), factors=["shape", "b_color"])
        assert row["agreeing"] == per["agree"].sum() and row["share"] == pytest.approx(per["agree"].mean())
    with pytest.raises(ValueError, match="continuous scene factor"):
        shift_scores(study, factor="shape")


def test_disagreement_reason_names_the_mechanism():
    from mmcl_helpers.practice.studies import disagreement_reason

    assert disagreement_reason("likely learned", "learned", 1.0) == ""
    assert "crowded out" in disagreement_reason("likely learned", "partly learned", 1.0)
    assert "crowded out" in disagreement_reason("at risk", "discarded", 0.5)
    assert "residue" in disagreement_reason("likely discarded", "partly learned", 0.0)
    assert "informative" in disagreement_reason("likely discarded", "learned", 1.0)
    assert "informative" in disagreement_reason("at risk", "learned", 0.3)
    with pytest.raises(ValueError, match="verdict"):
        disagreement_reason("maybe", "learned", 1.0)
    with pytest.raises(ValueError, match="measured"):
        disagreement_reason("at risk", "half", 1.0)
