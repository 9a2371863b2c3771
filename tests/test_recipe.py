"""The book's image-text recipe: encoding sizes per factor, the departures table, chapter 6's sizes."""

import dataclasses

import pytest

from mmcl_helpers.core.profiles import (
    FOLDED_FIELDS,
    IMAGE_TEXT_PROFILES,
    NOT_SETTINGS,
    PAPER_IMAGE_TEXT,
    RECIPE_REASONS,
    ImageTextProfile,
    image_text_departures,
)
from mmcl_helpers.datasets.naming import named_perturbation_sweep, named_selection_sweep
from mmcl_helpers.datasets.policies import MentionPolicy
from mmcl_helpers.datasets.scenes import SCENE_ENCODING_SIZES, scene_encoding_size
from mmcl_helpers.practice.studies import policy_encoding_size, policy_profile


def test_dims_per_factor_gives_at_least_the_papers_size():
    sel = list(named_selection_sweep().values())
    assert [scene_encoding_size(b) for b in sel] == [SCENE_ENCODING_SIZES[k] for k in range(1, 8)]
    assert [scene_encoding_size(b, 2) for b in sel] == [3, 4, 6, 8, 10, 12, 14]
    most = list(named_perturbation_sweep().values())[0]  # only the shape unbiased
    assert scene_encoding_size(most, 2) == 3 and scene_encoding_size(most, 5) == 5
    policy = {"shape": MentionPolicy(), "b_color": MentionPolicy()}
    assert policy_encoding_size(policy) == 3 and policy_encoding_size(policy, 2) == 4
    for bad in (-1, 9, 1.5):
        with pytest.raises((TypeError, ValueError), match="dims_per_factor"):
            scene_encoding_size(sel[0], bad)
        with pytest.raises((TypeError, ValueError), match="dims_per_factor"):
            policy_encoding_size(policy, bad)
    with pytest.raises((TypeError, ValueError), match="dims_per_factor"):
        IMAGE_TEXT_PROFILES["cpu"].with_overrides(dims_per_factor=9)


def test_departures_name_every_changed_field_with_a_reason():
    cpu = image_text_departures("cpu")
    assert {"group_fraction", "false_negatives", "first_stride", "dims_per_factor", "tau", "batch_size",
            "warmup", "scene_columns", "steps"} <= set(cpu.index)
    assert (cpu["why"] == [RECIPE_REASONS[f] for f in cpu.index]).all()
    assert "contrast groups of 4" in cpu.loc["group_fraction", "this profile"]
    assert cpu.loc["group_fraction", "paper"] == "i.i.d. batches"
    assert cpu.loc["batch_size", ["paper", "this profile"]].tolist() == ["256", "128"]
    assert "cosine decay" in cpu.loc["warmup", "this profile"]
    # The paper profile keeps the paper's hyper-parameters but not its encoders or MPI3D's steps.
    paper = image_text_departures("paper")
    assert {"steps", "widths", "grad_clip"} <= set(paper.index)
    assert "200,000 (MPI3D-complex)" in paper.loc["steps", "paper"]
    assert not {"batch_size", "lr", "tau", "warmup", "n_train", "seeds"} & set(paper.index)
    # A field equal to the paper's is not a departure.
    same = IMAGE_TEXT_PROFILES["cpu"].with_overrides(first_stride=2)
    assert "first_stride" not in image_text_departures(same).index
    with pytest.raises((TypeError, ValueError), match="profile"):
        image_text_departures(3)


def test_every_profile_field_is_compared_with_the_paper():
    """A new ImageTextProfile field must get a row (with the paper's value and a reason), be shown
    in another field's row, or be declared no setting: the departures table cannot forget it."""
    fields = {f.name for f in dataclasses.fields(ImageTextProfile)}
    rows, folded = set(PAPER_IMAGE_TEXT), set(FOLDED_FIELDS)
    assert rows | folded | NOT_SETTINGS == fields
    assert not (rows & folded) and not (rows & NOT_SETTINGS) and not (folded & NOT_SETTINGS)
    assert set(RECIPE_REASONS) == rows and all(RECIPE_REASONS.values())
    assert set(FOLDED_FIELDS.values()) <= rows
    # Each row compares with the paper's value: a profile at that value has no row for it
    # (unless no value matches the paper), any other value has one.
    cpu = IMAGE_TEXT_PROFILES["cpu"]
    for name, (value, _) in PAPER_IMAGE_TEXT.items():
        if value is None:
            assert name in image_text_departures(cpu).index
            continue
        # The paper's i.i.d. batches (group_fraction 0) leave the group warm-up nothing to act on.
        base = cpu.with_overrides(group_warmup=0.0) if name == "group_fraction" else cpu
        at = base.with_overrides(**{name: value})
        assert name not in image_text_departures(at).index
        assert name in image_text_departures(at.with_overrides(**{name: _other(at, name)})).index
    # A folded field shows in its row: changing it changes the row's words.
    for name, row in FOLDED_FIELDS.items():
        # The spread's stop shows only while the spread is on.
        base = cpu.with_overrides(text_uniformity=1.0) if row == "text_uniformity" else cpu
        changed = base.with_overrides(**{name: _other(base, name)})
        assert (image_text_departures(changed).loc[row, "this profile"]
                != image_text_departures(base).loc[row, "this profile"]), name
    for name, p in IMAGE_TEXT_PROFILES.items():
        table = image_text_departures(p)
        differs = {f for f, (value, _) in PAPER_IMAGE_TEXT.items() if value is None or getattr(p, f) != value}
        assert set(table.index) == differs, name


def _other(p, name):
    """A valid value of field ``name`` different from ``p``'s."""
    value = getattr(p, name)
    alternatives = {"first_stride": {1: 2, 2: 1}, "scene_columns": {"key": "all", "all": "key"},
                    "false_negatives": {"keep": "mask", "mask": "keep"},
                    "group_size": {4: 3}, "stride1_from": {4: 3}, "dims_per_factor": {2: 3, 3: 2, 0: 1},
                    "align_weight": {1.0: 2.0, 6.0: 2.0}, "text_uniformity": {0.0: 1.0, 1.0: 2.0}}
    if name in alternatives:
        return alternatives[name][value]
    if name == "widths":
        return tuple(w + 1 for w in value)
    if name in ("warmup", "group_fraction", "align_from", "group_warmup", "group_shape_share",
                "spread_until"):
        return 0.5 if value != 0.5 else 0.25
    return value + 1 if isinstance(value, int) else value * 1.5


def test_policy_profile_keeps_the_recipe_but_the_late_pull():
    cpu = IMAGE_TEXT_PROFILES["cpu"]
    p = policy_profile(cpu)
    assert p.align_weight == 1.0 and p.with_overrides(align_weight=cpu.align_weight,
                                                      align_from=cpu.align_from) == cpu
    # Four carried factors keep stride 1, three get stride 2 (a study trains all its policies at
    # the densest one's, studies.study_architecture).
    assert p.for_setting(4).first_stride == 1 and p.for_setting(3).first_stride == 2
    with pytest.raises((TypeError, ValueError), match="profile"):
        policy_profile("cpu")


def test_for_setting_keeps_stride_1_only_for_crowded_settings():
    dense = IMAGE_TEXT_PROFILES["cpu"].with_overrides(first_stride=1, stride1_from=4)
    assert [dense.for_setting(n).first_stride for n in range(8)] == [2, 2, 2, 2, 1, 1, 1, 1]
    assert dense.for_setting(5) is dense  # nothing else changes
    assert dense.for_setting(1) == dense.with_overrides(first_stride=2)
    every = dense.with_overrides(stride1_from=0)
    assert all(every.for_setting(n).first_stride == 1 for n in range(8))
    stride2 = dense.with_overrides(first_stride=2)
    assert all(stride2.for_setting(n).first_stride == 2 for n in range(8))
    for bad in (-1, 8, 2.5):
        with pytest.raises((TypeError, ValueError), match="stride1_from"):
            dense.with_overrides(stride1_from=bad)
    with pytest.raises((TypeError, ValueError), match="n_unbiased"):
        dense.for_setting(-1)


def test_align_weight_switches_on_at_align_from():
    p = IMAGE_TEXT_PROFILES["cpu"].with_overrides(steps=100, align_weight=6.0, align_from=0.5)
    assert [p.align_weight_at(s) for s in (0, 49, 50, 99)] == [1.0, 1.0, 6.0, 6.0]
    assert p.with_overrides(align_from=0.0).align_weight_at(0) == 6.0
    assert IMAGE_TEXT_PROFILES["paper"].align_weight_at(10) == 1.0
    for field, bad in [("align_weight", -1.0), ("align_from", 1.0), ("align_from", -0.1)]:
        with pytest.raises((TypeError, ValueError), match=field):
            p.with_overrides(**{field: bad})


def test_group_warmup_contrasts_inside_groups_first():
    p = IMAGE_TEXT_PROFILES["cpu"].with_overrides(steps=100, group_warmup=0.2)
    assert [p.contrasts_in_groups_only(s) for s in (0, 19, 20, 99)] == [True, True, False, False]
    assert not p.with_overrides(group_warmup=0.0).contrasts_in_groups_only(0)
    for bad in (-0.1, 1.0):
        with pytest.raises((TypeError, ValueError), match="group_warmup"):
            p.with_overrides(group_warmup=bad)
    with pytest.raises(ValueError, match="group_warmup.*group_fraction"):
        p.with_overrides(group_fraction=0.0)
    row = image_text_departures(p).loc["group_fraction", "this profile"]
    assert "first 20 steps" in row and "inside a pair's own group" in row
    assert "first" not in image_text_departures(p.with_overrides(group_warmup=0.0)).loc[
        "group_fraction", "this profile"]


def test_text_uniformity_is_a_departure_only_when_on():
    cpu = IMAGE_TEXT_PROFILES["cpu"]
    assert "text_uniformity" not in image_text_departures(cpu.with_overrides(text_uniformity=0.0)).index
    row = image_text_departures(cpu.with_overrides(text_uniformity=1.0)).loc["text_uniformity"]
    assert row["this profile"] == ("InfoNCE + 1 x caption-caption uniformity from step 0 until step 1,200 "
                                   "of 1,200")
    assert row["paper"] == "InfoNCE alone (Eq. 1)"
    late = cpu.with_overrides(text_uniformity=1.0, group_warmup=0.1, spread_until=0.8)
    assert (image_text_departures(late).loc["text_uniformity", "this profile"]
            == "InfoNCE + 1 x caption-caption uniformity from step 120 until step 960 of 1,200")
    with pytest.raises((TypeError, ValueError), match="text_uniformity"):
        cpu.with_overrides(text_uniformity=-1.0)
    # A stop inside the warm-up would leave the spread switched on but never applied.
    with pytest.raises(ValueError, match=r"spread_until=0\.1 must lie after the group warm-up"):
        cpu.with_overrides(text_uniformity=1.0, group_warmup=0.2, spread_until=0.1)
    with pytest.raises(ValueError, match="spread_until"):
        cpu.with_overrides(spread_until=0.0)
    # Judged in steps, as applied. Of 20 steps a 0.1 warm-up takes steps 0-1 and a stop at 0.101
    # leaves step 2 to the spread; a 0.06 warm-up also takes steps 0-1 (ceil 1.2), so a stop at 0.1
    # (step 2) leaves the spread no step although 0.1 > 0.06: refused.
    short = cpu.with_overrides(steps=20, text_uniformity=1.0, group_warmup=0.1, spread_until=0.101)
    assert [short.spreads_captions(s) for s in range(4)] == [False, False, True, False]
    with pytest.raises(ValueError, match="2 of 20 steps"):
        cpu.with_overrides(steps=20, text_uniformity=1.0, group_warmup=0.06, spread_until=0.1)


def test_departures_describe_the_stride_rule_and_the_alignment_weight():
    p = IMAGE_TEXT_PROFILES["cpu"].with_overrides(first_stride=1, stride1_from=4, align_weight=6.0,
                                                  align_from=0.5, steps=1200)
    table = image_text_departures(p)
    assert "at least 4 unbiased" in table.loc["first_stride", "this profile"]
    assert table.loc["align_weight", "paper"] == "1 (Eq. 1)"
    assert "6" in table.loc["align_weight", "this profile"]
    assert "600" in table.loc["align_weight", "this profile"]
    assert "align_weight" not in image_text_departures(p.with_overrides(align_weight=1.0)).index


def test_sweeps_train_few_factor_settings_at_stride_2(tmp_path):
    from mmcl_helpers.image_text.sweeps import run_scene_sweeps

    tiny = IMAGE_TEXT_PROFILES["smoke"].with_overrides(
        n_train=128, n_probe_train=32, n_probe_test=32, steps=2, batch_size=16, widths=(4, 8, 8),
        hidden=8, text_embed=8, text_channels=8, probe_steps=2, first_stride=1, stride1_from=4)
    sel = named_selection_sweep()
    run = run_scene_sweeps(tiny, 0, progress=False, cache_dir=tmp_path,
                           settings={"s": {k: sel[k] for k in ("{shape}", "{shape..s_pos}")}})
    strides = {key[0]: model.f_x.blocks[0].conv1.stride[0] for (key, _), model in run.models.items()}
    assert strides == {(1,): 2, (1, 2, 3, 4): 1}
