"""Each study's plan (what it says it will train) against what a small run actually trains."""

from __future__ import annotations

from collections import Counter

import pytest

from mmcl_helpers.core import model_store
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.profiles import get_profile, image_text_profile
from mmcl_helpers.datasets.policies import MentionPolicy
from mmcl_helpers.image_text.alignment import alignment_plan, run_alignment_comparison
from mmcl_helpers.image_text.suppression import run_feature_suppression, suppression_plan
from mmcl_helpers.image_text.sweeps import run_scene_sweeps, scene_sweep_plan
from mmcl_helpers.numerical.experiments import numerical_training_plan, run_numerical
from mmcl_helpers.practice.studies import policy_study_plan, run_policy_study

TINY = get_profile("smoke").with_overrides(steps=3, batch_size=16, probe_train=40, probe_test=40,
                                           probe_steps=2)
# The smoke image-text profile (key columns, contrast groups, late pull, stride 2 below four
# unbiased factors), shrunk.
IT = image_text_profile("smoke").with_overrides(n_train=160, n_probe_train=60, n_probe_test=60, steps=3,
                                                batch_size=32, probe_steps=2)


@pytest.fixture(autouse=True)
def no_store(monkeypatch, tmp_path):
    """Every model trained, none read: the log then holds the whole plan."""
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("MMCL_CACHE", "0")


def _planned(plan, kind):
    out = Counter()
    for p in plan:
        if p.kind == kind:
            key = (p.models, p.steps) + ((p.profile.first_stride,) if kind == "image_text" else ())
            out[key] += p.runs
    return out


def _trained(log, kind):
    return Counter((e["models"], e["steps"]) + ((e["first_stride"],) if kind == "image_text" else ())
                   for e in log if e["kind"] == kind)


def test_numerical_plan_is_what_run_numerical_trains():
    settings = [CaptionBias({1}, (), 3), CaptionBias({1, 2}, {2}, 3)]
    with model_store.training_log() as log:
        run_numerical(settings, n_image=1, n_text=1, profile=TINY, seeds=[0, 1], progress=False,
                      device="cpu", probes=("linear",))
    plan = numerical_training_plan(settings, TINY, [0, 1])
    assert _trained(log, "numerical") == _planned(plan, "numerical") == Counter({(2, 3): 2})


def test_scene_suppression_and_alignment_plans_are_what_chapter_5_trains():
    with model_store.training_log() as log:
        run = run_scene_sweeps(IT, device="cpu", progress=False)
    assert _trained(log, "image_text") == _planned(scene_sweep_plan(IT), "image_text")
    assert sum(_trained(log, "image_text").values()) == run.config["distinct_models"] == 7
    assert len({k[2] for k in _trained(log, "image_text")}) == 2  # both first stages occur
    with model_store.training_log() as log:
        run_feature_suppression(IT, device="cpu", progress=False, sweeps=run)
    assert _trained(log, "image_text") == _planned(suppression_plan(IT, reuse_sweeps=True), "image_text")
    assert sum(_trained(log, "image_text").values()) == 1  # only the i.i.d. model is new
    with model_store.training_log() as log:
        run_alignment_comparison(IT, device="cpu", progress=False, sweeps=run)
    assert _trained(log, "image_text") == _planned(alignment_plan(IT, reuse_sweeps=True), "image_text")
    assert sum(_trained(log, "image_text").values()) == 1  # only Eq. 1 is new
    with model_store.training_log() as log:  # without the sweeps, both comparisons train more
        run_feature_suppression(IT, device="cpu", progress=False)
        run_alignment_comparison(IT, device="cpu", progress=False)
    assert _trained(log, "image_text") == _planned(suppression_plan(IT) + alignment_plan(IT), "image_text")
    assert sum(_trained(log, "image_text").values()) == 3 + 2


def test_policy_plan_is_what_the_policy_study_trains():
    base = {"shape": MentionPolicy(), "x_pos": MentionPolicy(), "y_pos": MentionPolicy()}
    policies = {"describe": {**base, "b_color": MentionPolicy()}, "omit": dict(base),
                "none": {"shape": MentionPolicy(), "x_pos": MentionPolicy(mention=0.0)}}
    with model_store.training_log() as log:
        run_policy_study(policies, seeds=[0, 1], profile=IT, device="cpu", progress=False)
    plan = policy_study_plan(policies, [0, 1], IT)
    assert _trained(log, "image_text") == _planned(plan, "image_text")
    assert sum(_trained(log, "image_text").values()) == 6
