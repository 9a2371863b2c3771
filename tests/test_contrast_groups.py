"""Contrast groups (scenes sharing every factor but the shape) and the batch sampler that uses them."""

import numpy as np
import pytest
import torch

from mmcl_helpers.core.losses import info_nce, text_uniformity
from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES
from mmcl_helpers.datasets.captions import scene_captions
from mmcl_helpers.datasets.naming import bias_from_names
from mmcl_helpers.datasets.scenes import (
    IMAGE_FACTORS,
    SEMANTIC_FACTORS,
    SHAPE_NAMES,
    load_or_render,
    sample_contrast_groups,
    sample_scene_latents,
    sample_shape_groups,
)
from mmcl_helpers.image_text.image_encoders import ImageEncoder
from mmcl_helpers.image_text.pair_training import (
    BatchSampler,
    outside_groups,
    train_pair_encoders,
    warmup_exclude,
)
from mmcl_helpers.image_text.sweeps import scene_splits

# The paper's recipe (i.i.d. batches, every other caption a negative, stride-2 stem, the paper's
# encoding sizes, all columns): the tests that need the book's recipe switch it on themselves.
TINY = IMAGE_TEXT_PROFILES["smoke"].with_overrides(
    n_train=96, n_probe_train=40, n_probe_test=40, steps=3, batch_size=32, widths=(4, 8, 8),
    hidden=16, text_embed=8, text_channels=8, probe_steps=20,
    group_fraction=0.0, false_negatives="keep", first_stride=2, dims_per_factor=0, scene_columns="all",
    group_warmup=0.0, text_uniformity=0.0,
)


def test_group_members_share_every_factor_but_a_distinct_shape():
    lat = sample_shape_groups(50, 4, seed=3, start=1000)
    assert len(lat) == 200 and list(lat.index) == list(range(1000, 1200))
    for name in SEMANTIC_FACTORS[1:] + IMAGE_FACTORS:
        values = getattr(lat, name).reshape(50, 4)
        assert (values == values[:, :1]).all(), name
    shapes = lat.shape.reshape(50, 4)
    assert all(len(set(row)) == 4 for row in shapes)
    # Each group's factors are those of its first member's independent draw.
    first = sample_scene_latents(1, seed=3, start=1004)
    assert lat.x_pos[4] == first.x_pos[0] and lat.scale[4] == first.scale[0]
    # Same seed, same groups; another seed, other shapes.
    assert (sample_shape_groups(50, 4, seed=3, start=1000).shape == lat.shape).all()
    assert (sample_shape_groups(50, 4, seed=4, start=1000).shape != lat.shape).any()


def test_group_shapes_are_uniform_on_their_own():
    shapes = sample_shape_groups(3000, 3, seed=0).shape
    counts = np.bincount(shapes, minlength=len(SHAPE_NAMES)) / len(shapes)
    assert np.abs(counts - 1 / len(SHAPE_NAMES)).max() < 0.01


@pytest.mark.parametrize("kwargs, needle", [
    (dict(n_groups=3, group_size=1), "group_size"),
    (dict(n_groups=3, group_size=8), "group_size"),
    (dict(n_groups=-1, group_size=3), "n_groups"),
])
def test_bad_group_arguments_are_named(kwargs, needle):
    with pytest.raises(ValueError, match=needle):
        sample_shape_groups(**kwargs)


def test_contrast_groups_with_shape_share_1_are_the_shape_groups():
    a, b = sample_contrast_groups(40, 4, seed=2, start=7), sample_shape_groups(40, 4, seed=2, start=7)
    assert all(np.array_equal(x, y) for x, y in zip(a.as_dict().values(), b.as_dict().values()))


# The factors each semantic factor's value moves (itself and its descendants in the causal graph).
MOVES = {"shape": {"shape"}, "x_pos": {"x_pos", "color"}, "y_pos": {"y_pos", "color"},
         "s_pos": {"s_pos", "s_color", "b_color"}, "color": {"color"},
         "s_color": {"s_color", "b_color"}, "b_color": {"b_color"}}


def test_other_groups_vary_one_factor_and_what_it_causes():
    lat = sample_contrast_groups(700, 4, seed=5, start=100, shape_share=0.5)
    lat.validate()
    data = lat.as_dict()
    varied_by = {name: 0 for name in SEMANTIC_FACTORS}
    for k in range(700):
        rows = slice(4 * k, 4 * k + 4)
        moved = {f for f in SEMANTIC_FACTORS if len(np.unique(data[f][rows])) > 1}
        for name in IMAGE_FACTORS:  # image-specific factors are always shared
            assert len(np.unique(data[name][rows])) == 1
        causes = [f for f in SEMANTIC_FACTORS if moved and moved <= MOVES[f] and f in moved]
        assert not moved or causes, moved  # one factor and only what it causes
        if causes:
            varied_by[causes[0]] += 1
    # Each member still follows the structural equations (uniform noises in [0, 1)).
    u_color = 3 * (lat.color - (lat.x_pos + lat.y_pos) / 6.0)
    u_s = 2 * lat.s_color - lat.s_pos
    u_b = 3 * lat.b_color - lat.s_pos - lat.s_color
    for u in (u_color, u_s, u_b):
        assert u.min() > -1e-9 and u.max() < 1 + 1e-9
    assert 0.4 < varied_by["shape"] / 700 < 0.6
    assert all(varied_by[f] > 20 for f in SEMANTIC_FACTORS)  # every factor gets groups
    again = sample_contrast_groups(700, 4, seed=5, start=100, shape_share=0.5)
    assert all(np.array_equal(x, y) for x, y in zip(again.as_dict().values(), data.values()))


def test_bad_shape_share_is_named(tmp_path):
    with pytest.raises(ValueError, match="shape_share"):
        sample_contrast_groups(3, 4, shape_share=1.5)
    with pytest.raises(ValueError, match="shape_share"):
        load_or_render(8, cache_dir=tmp_path, group_size=4, shape_share=-0.1)
    with pytest.raises((TypeError, ValueError), match="group_shape_share"):
        IMAGE_TEXT_PROFILES["cpu"].with_overrides(group_shape_share=2.0)


def test_mixed_groups_are_rendered_and_cached_apart(tmp_path):
    shape_only, _ = load_or_render(16, cache_dir=tmp_path, group_size=4)
    mixed, _ = load_or_render(16, cache_dir=tmp_path, group_size=4, shape_share=0.0)
    assert len(list(tmp_path.glob("*.npz"))) == 2
    assert not all(np.array_equal(getattr(shape_only, f), getattr(mixed, f)) for f in SEMANTIC_FACTORS)
    assert not (mixed.shape.reshape(4, 4) != mixed.shape.reshape(4, 4)[:, :1]).any()  # shape shared


def test_grouped_renders_are_cached_apart_from_independent_ones(tmp_path):
    lat, img = load_or_render(8, seed=0, start=0, cache_dir=tmp_path, group_size=4)
    again, img2 = load_or_render(8, seed=0, start=0, cache_dir=tmp_path, group_size=4)
    assert (img == img2).all() and (again.shape == lat.shape).all()
    plain, _ = load_or_render(8, seed=0, start=0, cache_dir=tmp_path)
    assert (plain.x_pos[:4] != plain.x_pos[0]).any() or (plain.scale[:4] != plain.scale[0]).any()
    assert len(list(tmp_path.glob("*.npz"))) == 2
    with pytest.raises(ValueError, match="multiple of group_size=4"):
        load_or_render(6, seed=0, cache_dir=tmp_path, group_size=4)


def test_sampler_without_groups_gives_the_iid_epochs():
    gen, ref = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    sampler = BatchSampler(10, 4, gen, "cpu")
    first, second = torch.randperm(10, generator=ref), torch.randperm(10, generator=ref)
    assert sampler.next().tolist() == first[:4].tolist()
    assert sampler.next().tolist() == first[4:8].tolist()
    assert sampler.next().tolist() == second[:4].tolist()  # a fresh order once an epoch runs out


def test_sampler_keeps_groups_whole_and_fills_with_outside_pairs():
    groups = 20 + np.arange(40).reshape(10, 4)  # pairs 20..59 in groups, 0..19 outside
    sampler = BatchSampler(60, 16, torch.Generator().manual_seed(0), "cpu", groups, k=3)
    seen = set()
    for _ in range(10):
        batch = sampler.next().tolist()
        assert len(batch) == 16 and len(set(batch)) == 16
        grouped, single = batch[:12], batch[12:]
        for j in range(3):
            member = grouped[4 * j : 4 * j + 4]
            assert sorted(member) == sorted(groups[(member[0] - 20) // 4].tolist())
        assert all(i < 20 for i in single)
        seen.update(batch)
    assert seen == set(range(60))


def test_outside_groups_leaves_each_pair_its_own_group():
    mask = outside_groups(2, 3, 8)
    gid = [0, 0, 0, 1, 1, 1, 2, 3]
    assert mask.dtype == torch.bool and mask.shape == (8, 8)
    assert mask.tolist() == [[a != b for b in gid] for a in gid]
    with pytest.raises(ValueError, match="k=3, g=3, b=8"):
        outside_groups(3, 3, 8)
    # Masked, InfoNCE is the mean over the batch of each pair's cross-entropy against its own
    # group (both directions); an i.i.d. pair, alone in its group, adds 0.
    gen = torch.Generator().manual_seed(0)
    zx, zt = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    logits = torch.nn.functional.normalize(zx, dim=1) @ torch.nn.functional.normalize(zt, dim=1).T / 0.1
    expected = 0.0
    for rows in ([0, 1, 2], [3, 4, 5]):
        block = logits[rows][:, rows]
        target = torch.arange(3)
        expected += 0.5 * 3 * (torch.nn.functional.cross_entropy(block, target)
                               + torch.nn.functional.cross_entropy(block.T, target))
    assert torch.isclose(info_nce(zx, zt, "cosine", 0.1, mask), expected / 8, atol=1e-5)


def test_warmup_contrasts_inside_groups_only_where_they_contrast_something():
    outside = outside_groups(2, 3, 8)
    # Captions that differ inside the groups (the shape is stated): the groups' masks apply.
    differ = torch.zeros(8, 8, dtype=torch.bool)
    assert torch.equal(warmup_exclude(differ, outside), outside)
    assert torch.equal(warmup_exclude(None, outside), outside)
    # Every group's captions state the same thing (the shape is omitted): the whole batch instead.
    gid = torch.tensor([0, 0, 0, 1, 1, 1, 2, 3])
    same = (gid[:, None] == gid[None, :]) & ~torch.eye(8, dtype=torch.bool)
    assert torch.equal(warmup_exclude(same, outside), same)
    # One pair of one group still differs: the groups' masks apply again.
    partly = same.clone()
    partly[0, 1] = partly[1, 0] = False
    assert torch.equal(warmup_exclude(partly, outside), partly | outside)
    gen = torch.Generator().manual_seed(0)
    zx, zt = torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen)
    assert info_nce(zx, zt, "cosine", 0.1, warmup_exclude(same, outside)) > 0


def test_group_warmup_changes_only_the_first_steps_loss():
    lat = sample_scene_latents(40, seed=0)
    from mmcl_helpers.datasets.scenes import render_scenes

    images, caps = render_scenes(lat), scene_captions(lat, bias_from_names(["shape"]), seed=0).text
    prof = TINY.with_overrides(group_fraction=0.5, group_size=4, batch_size=16, steps=6)
    groups = np.arange(16).reshape(4, 4)
    plain = train_pair_encoders(images, caps, 3, prof, groups=groups, progress=False, cache=False)
    warm = train_pair_encoders(images, caps, 3, prof.with_overrides(group_warmup=0.5), groups=groups,
                               progress=False, cache=False)
    # Same seed, same first batch: leaving negatives out (and the i.i.d. half at 0) lowers the loss.
    assert warm.history[0] < plain.history[0]
    assert np.isfinite(warm.history).all()


def test_text_uniformity_spreads_the_captions_among_themselves():
    gen = torch.Generator().manual_seed(1)
    zt = torch.randn(5, 4, generator=gen)
    t = torch.nn.functional.normalize(zt, dim=1)
    sims = t @ t.T / 0.1
    same = torch.zeros(5, 5, dtype=torch.bool)
    same[0, 1] = same[1, 0] = True
    expected = torch.stack([torch.logsumexp(sims[i][[j for j in range(5) if j != i and not same[i, j]]], 0)
                            for i in range(5)]).mean()
    assert torch.isclose(text_uniformity(zt, 0.1, same), expected, atol=1e-5)
    # Identical captions score the maximum; spread ones less.
    assert text_uniformity(torch.ones(5, 4), 0.1) > text_uniformity(zt, 0.1)
    # A row with nothing left adds 0.
    everything = ~torch.eye(2, dtype=torch.bool)
    assert text_uniformity(torch.randn(2, 3, generator=gen), 0.1, everything) == 0
    with pytest.raises(ValueError, match="z_t must have shape"):
        text_uniformity(torch.randn(1, 3))
    with pytest.raises(ValueError, match="exclude must be a bool mask"):
        text_uniformity(zt, 0.1, torch.zeros(4, 4, dtype=torch.bool))


def test_text_uniformity_trains_but_stays_out_of_the_history():
    lat = sample_scene_latents(40, seed=0)
    from mmcl_helpers.datasets.scenes import render_scenes

    images, caps = render_scenes(lat), scene_captions(lat, bias_from_names(["shape"]), seed=0).text
    prof = TINY.with_overrides(steps=2, batch_size=16)
    plain = train_pair_encoders(images, caps, 3, prof, progress=False, cache=False)
    spread = train_pair_encoders(images, caps, 3, prof.with_overrides(text_uniformity=1.0), progress=False,
                                 cache=False)
    # Same seed, same first batch: the history records InfoNCE alone (so a run stuck at its chance
    # level is still recognised), identical at step 1; the term's gradient moves step 2's.
    assert spread.history[0] == plain.history[0]
    assert spread.history[1] != plain.history[1]


def test_caption_spread_starts_when_the_group_warmup_ends():
    lat = sample_scene_latents(40, seed=0)
    from mmcl_helpers.datasets.scenes import render_scenes

    images, caps = render_scenes(lat), scene_captions(lat, bias_from_names(["shape"]), seed=0).text
    prof = TINY.with_overrides(group_fraction=0.5, group_size=4, batch_size=16, steps=6, group_warmup=0.5)
    on = prof.with_overrides(text_uniformity=1.0)
    assert [on.spreads_captions(s) for s in range(6)] == [False] * 3 + [True] * 3
    assert not any(prof.spreads_captions(s) for s in range(6))  # weight 0: never
    stop = on.with_overrides(spread_until=5 / 6)  # stops before the last of 6 steps
    assert [stop.spreads_captions(s) for s in range(6)] == [False] * 3 + [True] * 2 + [False]
    groups = np.arange(16).reshape(4, 4)
    plain = train_pair_encoders(images, caps, 3, prof, groups=groups, progress=False, cache=False)
    spread = train_pair_encoders(images, caps, 3, prof.with_overrides(text_uniformity=1.0), groups=groups,
                                 progress=False, cache=False)
    # The three warm-up steps train as without the term, so the fourth step's loss is still the
    # same; the fourth step's update is the first the term moves.
    assert np.array_equal(spread.history[:4], plain.history[:4])
    assert spread.history[4] != plain.history[4]


def test_stuck_loss_is_judged_after_the_group_warmup():
    from mmcl_helpers.image_text.pair_training import loss_stuck_at_chance

    prof = TINY.with_overrides(group_fraction=0.5, steps=100, align_weight=1.0)
    history = np.r_[np.full(50, 0.5), np.full(50, np.log(64))]
    assert loss_stuck_at_chance(history, 64, prof) is None  # moved, seen from step 11
    assert "did not learn" in loss_stuck_at_chance(history, 64, prof.with_overrides(group_warmup=0.5))


def test_training_checks_the_groups():
    lat = sample_scene_latents(40, seed=0)
    from mmcl_helpers.datasets.scenes import render_scenes

    images, caps = render_scenes(lat), scene_captions(lat, bias_from_names(["shape"]), seed=0).text
    prof = TINY.with_overrides(group_fraction=0.5, group_size=4, batch_size=16)
    for bad, needle in [(np.arange(4).reshape(1, 4), "asks for 2 groups"),
                        (np.array([[0, 1], [1, 2]]), "distinct pair indices"),
                        (np.arange(6).reshape(2, 3) + 100, "distinct pair indices"),
                        (np.arange(4), "shape \\(G, g\\)")]:
        with pytest.raises(ValueError, match=needle):
            train_pair_encoders(images, caps, 3, prof, groups=bad, progress=False)
    model = train_pair_encoders(images, caps, 3, prof, groups=np.arange(16).reshape(4, 4), progress=False)
    assert len(model.history) == prof.steps and np.isfinite(model.history).all()


def test_scene_splits_put_the_groups_after_the_independent_scenes(tmp_path):
    prof = TINY.with_overrides(group_fraction=0.5, group_size=4)
    splits = scene_splits(prof, seed=0, cache_dir=tmp_path)
    train, groups = splits["train"], splits["train"].groups
    assert len(train.images) == prof.n_train and groups.shape == (12, 4)
    assert groups.min() == prof.n_train - 48 and groups.max() == prof.n_train - 1
    for name in ("x_pos", "s_pos", "scale", "rotation"):
        assert (train.labels[name][groups] == train.labels[name][groups[:, :1]]).all()
    assert all(len(set(row)) == 4 for row in train.labels["shape"][groups])
    assert splits["probe_train"].groups is None
    # The probe scenes do not depend on the grouping.
    plain = scene_splits(TINY, seed=0, cache_dir=tmp_path)
    assert plain["train"].groups is None
    assert (plain["probe_test"].images == splits["probe_test"].images).all()
    # With group_shape_share 0 no group varies the shape; the independent scenes stay the same.
    mixed = scene_splits(prof.with_overrides(group_shape_share=0.0), seed=0, cache_dir=tmp_path)
    shapes = mixed["train"].labels["shape"][mixed["train"].groups]
    assert (shapes == shapes[:, :1]).all()
    assert (mixed["train"].images[:48] == train.images[:48]).all()


def test_first_stride_one_keeps_the_stems_resolution():
    x = torch.zeros(2, 64, 64, 3, dtype=torch.uint8)
    wide = ImageEncoder(3, (4, 8), 8, first_stride=1)
    assert wide(x).shape == (2, 3)
    assert wide.head[1].in_features == 8 * 16 * 16
    assert ImageEncoder(3, (4, 8), 8).head[1].in_features == 8 * 8 * 8
    with pytest.raises(ValueError, match="first_stride"):
        ImageEncoder(3, (4, 8), 8, first_stride=3)


def test_key_columns_train_only_the_listed_settings(tmp_path):
    from mmcl_helpers.image_text.sweeps import KEY_SCENE_COLUMNS, run_scene_sweeps

    prof = TINY.with_overrides(scene_columns="key")
    run = run_scene_sweeps(prof, seed=0, device="cpu", progress=False, cache_dir=tmp_path)
    for sweep, labels in KEY_SCENE_COLUMNS.items():
        part = run.scores[run.scores["sweep"] == sweep]
        assert list(part["setting"].unique()) == list(labels)
    assert run.config["distinct_models"] == 7  # "{shape..b_color}" and "∅" are one setting
    with pytest.raises(ValueError, match="scene_columns"):
        TINY.with_overrides(scene_columns="some")


def test_iid_batches_use_the_same_scenes_without_groups(tmp_path):
    from mmcl_helpers.datasets.naming import bias_from_names
    from mmcl_helpers.image_text.sweeps import run_scene_sweeps

    prof = TINY.with_overrides(group_fraction=0.5, group_size=4)
    one = {"s": {"{shape}": bias_from_names(["shape"])}}
    grouped = run_scene_sweeps(prof, seed=0, device="cpu", progress=False, cache_dir=tmp_path,
                               settings=one)
    iid = run_scene_sweeps(prof, seed=0, device="cpu", progress=False, cache_dir=tmp_path,
                           settings=one, iid_batches=True)
    assert iid.config["iid_batches"] and not grouped.config["iid_batches"]
    # Same pictures and steps, other batches: the training losses differ.
    (m_g,), (m_i,) = grouped.models.values(), iid.models.values()
    assert len(m_g.history) == len(m_i.history) and not np.array_equal(m_g.history, m_i.history)


def test_policy_study_trains_on_the_chapter_5_scenes(tmp_path):
    from mmcl_helpers.datasets.policies import MentionPolicy
    from mmcl_helpers.practice.studies import run_policy_study

    prof = TINY.with_overrides(group_fraction=0.5, group_size=4)
    study = run_policy_study({"p": {"shape": MentionPolicy()}}, profile=prof, device="cpu",
                             progress=False, cache_dir=tmp_path)
    train = scene_splits(prof, seed=0, cache_dir=tmp_path)["train"]
    assert (study.latents["train"].shape == train.labels["shape"]).all()
