"""Cost estimates: FLOPs and operations per training step, host reads, chapter workloads, plans."""

import pandas as pd
import pytest
import torch

from mmcl_helpers.book_support.costs import (
    DEVICES,
    PROFILE_DEVICE,
    Device,
    StepCost,
    TrainingPlan,
    chapter_workload,
    count_host_reads,
    numerical_plan,
    numerical_step_cost,
)
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES, PROFILES, get_profile
from mmcl_helpers.numerical.experiments import run_numerical

TINY = get_profile("smoke").with_overrides(hidden=8, depth=1, batch_size=16, steps=4, probe_train=50,
                                           probe_test=50, probe_steps=2)


def test_host_reads_are_counted_and_the_methods_restored():
    original = torch.Tensor.item
    x = torch.ones(3)
    with count_host_reads() as reads:
        x.sum().item()
        bool(x.all())
        float(x[0])
        x.cpu().numpy()
        x + 1  # not a read
    assert reads["item"] == 1 and reads["__bool__"] == 1 and reads["__float__"] == 1
    assert reads["cpu"] == 1 and reads["numpy"] == 1
    assert torch.Tensor.item is original


def test_flops_follow_the_layer_sizes_and_ops_do_not_depend_on_the_batch():
    small = numerical_step_cost(TINY, 1, x_dim=4, t_dim=4, out_dim=2, ops_batch=8)
    big = numerical_step_cost(TINY.with_overrides(batch_size=32), 1, x_dim=4, t_dim=4, out_dim=2,
                              ops_batch=16)
    # Forward matmuls of both encoders, 4 -> 8 -> 2 each, plus the (B, B) logits; backward doubles
    # the encoder part (grads of inputs and weights) except the first layer's input gradient.
    b = 16
    enc = 2 * b * (4 * 8 + 8 * 2)
    assert small.flops >= 2 * enc and small.flops <= 3 * 2 * enc + 3 * 2 * b * b * 2
    assert big.flops > 1.9 * small.flops
    assert big.ops == small.ops > 20


def test_paper_encoder_costs_one_group_per_setting():
    paper = get_profile("paper").with_overrides(batch_size=8)
    one = numerical_step_cost(paper, 1, ops_batch=4)
    three = numerical_step_cost(paper, 3, ops_batch=4)
    assert three.flops == pytest.approx(3 * one.flops) and three.ops == pytest.approx(3 * one.ops)


def test_device_pricing():
    dev = Device("x", flops_per_s=1e9, seconds_per_op=1e-5)
    assert dev.seconds(StepCost(2e9, 1000, 0), 10) == pytest.approx(10 * (2.0 + 0.01))
    assert set(PROFILE_DEVICE) == set(PROFILES) and set(PROFILE_DEVICE.values()) <= set(DEVICES)


@pytest.mark.parametrize("name, dependent", [("smoke", 4), ("cpu", 4), ("gpu", 10), ("paper", 10)])
def test_workload_follows_the_chapters(name, dependent):
    prof, it = PROFILES[name], IMAGE_TEXT_PROFILES[name]
    work = chapter_workload(prof, it)
    assert work["1 latent model"] == []
    assert work["2 selection bias"] == [("numerical", 11, prof.seeds, prof.steps),
                                        ("numerical", dependent, prof.seeds, prof.steps)]
    assert work["3 perturbation bias"][1] == ("numerical", dependent + 1, prof.seeds, prof.steps)
    # Key columns train 7 scene models, all train 13; the suppression comparison adds the i.i.d.
    # model only when the sweeps already use contrast groups, else its three models; the late-pull
    # comparison adds the most perturbed setting with Eq. 1 when the profile has a late pull.
    # With stride1_from=4, settings with fewer than 4 unbiased factors train at stride 2: key
    # columns {shape}, {shape, x_pos}, {shape..y_pos}, the most perturbed (and its Eq. 1 twin);
    # all columns add the perturbation columns with 2 and 3 unbiased factors.
    dense, sparse = {"smoke": (3 + 1, 4 + 1), "cpu": (3 + 1, 4 + 1), "gpu": (7 + 1, 6 + 1),
                     "paper": (13 + 3, 0)}[name]
    expected = [("image-text", 1, dense * it.seeds, it.steps)]
    if sparse:
        expected.append(("image-text, stride 2", 1, sparse * it.seeds, it.steps))
    assert work["5 image-text (scenes)"] == expected
    # Chapter 6: the three shift policies at the describe policy's first stage (4 carried factors,
    # one architecture per study), the six rate policies (at most 3) at stride 2 where
    # stride1_from is 4.
    shift = max(3, it.seeds)
    policies = ([("image-text", 1, 3 * shift + 6, it.steps)] if name == "paper" else
                [("image-text", 1, 3 * shift, it.steps), ("image-text, stride 2", 1, 6, it.steps)])
    assert work["6 practice"] == policies


def test_plan_says_train_then_load(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MMCL_CACHE", raising=False)
    settings = [CaptionBias({1}, n_semantic=3)]
    kwargs = dict(profile=TINY, seeds=[0], device="cpu")
    before = numerical_plan("the sweep", settings, n_image=2, n_text=2, **kwargs)
    assert isinstance(before, TrainingPlan) and before.cached == (False,) and before.minutes > 0
    assert "trains them itself" in str(before) and "1 models x 4 steps" in str(before)
    run_numerical(settings, n_image=2, n_text=2, progress=False, **kwargs)
    after = numerical_plan("the sweep", settings, n_image=2, n_text=2, **kwargs)
    assert after.cached == (True,) and after.minutes == 0.0
    assert "loaded, not trained" in str(after)


def test_chapter_cost_measures_once_then_reads_the_cache(tmp_path, monkeypatch):
    import mmcl_helpers.book_support.costs as costs

    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    calls = []
    real = costs.numerical_step_cost

    def counted(profile, members, *args, **kwargs):
        calls.append((profile.name, members))
        return real(TINY, 1, x_dim=4, t_dim=4, out_dim=2, ops_batch=4)

    monkeypatch.setattr(costs, "numerical_step_cost", counted)
    first = costs.chapter_cost(4, ["smoke", "gpu"])
    assert list(first.index) == ["4 identifiability proof"] and first.shape == (1, 2)
    assert calls == [("smoke", 1), ("gpu", 1)]  # chapter 4 trains one numerical setting
    assert (first.to_numpy() >= 0).all() and first.iloc[0, 1] > first.iloc[0, 0]  # gpu: more steps
    again = costs.chapter_cost(4, ["smoke", "gpu"])
    assert len(calls) == 2  # read back from the cache, not measured again
    pd.testing.assert_frame_equal(first, again)
    assert list(costs.chapter_cost(3, ["smoke"]).index) == ["3 perturbation bias",
                                                            "3, if chapter 2 is not cached"]
    # A damaged cache file is a miss: measured again, not an error.
    for f in (tmp_path / "costs").glob("*.npz"):
        f.write_bytes(b"not a zip")
    with pytest.warns(Warning):
        costs.chapter_cost(4, ["smoke"])
    assert calls[-1] == ("smoke", 1)


@pytest.mark.parametrize("bad", [0, 7, "2", 2.0, True, None])
def test_chapter_cost_rejects_a_chapter_that_is_not_one(bad):
    from mmcl_helpers.book_support.costs import chapter_cost

    with pytest.raises(ValueError, match="chapter must be an int from 1 to 6"):
        chapter_cost(bad)
