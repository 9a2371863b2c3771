"""Chapter 5's feature-suppression comparison: i.i.d. batches against contrast groups."""

import pytest

from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES
from mmcl_helpers.datasets.scenes import IMAGE_FACTORS
from mmcl_helpers.image_text.suppression import SUPPRESSION_GROUPS, run_feature_suppression
from mmcl_helpers.image_text.sweeps import run_scene_sweeps

TINY = IMAGE_TEXT_PROFILES["smoke"].with_overrides(
    n_train=256, n_probe_train=64, n_probe_test=64, steps=3, batch_size=32, widths=(4, 8, 8),
    hidden=16, text_embed=8, text_channels=8, probe_steps=10,
)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return run_feature_suppression(TINY, seed=1, progress=False, cache_dir=tmp_path_factory.mktemp("s"))


def test_three_models_same_scenes_groups_switched_on(run):
    assert run.profile.group_fraction == SUPPRESSION_GROUPS["group_fraction"]
    assert run.profile.group_size == SUPPRESSION_GROUPS["group_size"]
    trained = run.scores.groupby(["batches", "setting"]).size()
    assert sorted(trained.index) == [("contrast groups", "all seven"), ("contrast groups", "most perturbed"),
                                     ("i.i.d.", "all seven")]
    # Every factor (semantic, image-specific, the phrasing) is scored for every model.
    factors = set(run.scores["factor"])
    assert set(IMAGE_FACTORS) <= factors and {"shape", "template"} <= factors
    assert set(run.seconds) == {"render", "train", "probe", "total", "reused"}
    assert run.seconds["reused"] == 0


def test_summary_reads_the_table(run):
    s = run.summary()
    tab = run.table()
    assert s["shape_iid_x"] == pytest.approx(tab[("i.i.d.", "all seven", "x")]["shape"])
    assert s["shape_groups_t"] == pytest.approx(tab[("contrast groups", "all seven", "t")]["shape"])
    assert s["most_perturbed_max"] == pytest.approx(
        max(tab[("contrast groups", "most perturbed", "x")][f] for f in ("x_pos", "y_pos")))
    groups = tab.xs("contrast groups", axis=1, level="batches")
    assert s["image_max"] == pytest.approx(groups.loc[list(IMAGE_FACTORS)].max().max())
    assert s["template_max"] == pytest.approx(groups.loc["template"].max())
    with pytest.raises(KeyError, match="no score"):
        run.cell("i.i.d.", "most perturbed", "shape")


def test_a_profile_with_groups_keeps_its_own_and_same_seed_same_numbers(tmp_path):
    own = TINY.with_overrides(group_fraction=0.5, group_size=2)
    a = run_feature_suppression(own, seed=1, progress=False, cache_dir=tmp_path)
    b = run_feature_suppression(own, seed=1, progress=False, cache_dir=tmp_path)
    assert a.profile.group_fraction == 0.5 and a.profile.group_size == 2
    assert a.scores["score"].tolist() == b.scores["score"].tolist()


def test_bad_profile_is_named():
    with pytest.raises((TypeError, ValueError), match="profile"):
        run_feature_suppression("cpu")


def test_the_sweeps_models_are_reused_and_are_the_same_models(tmp_path):
    import torch

    from mmcl_helpers.datasets.naming import named_perturbation_sweep, named_selection_sweep

    own = TINY.with_overrides(group_fraction=0.5, group_size=2, scene_columns="key")
    sweeps = run_scene_sweeps(own, seed=1, progress=False, cache_dir=tmp_path)
    fresh = run_feature_suppression(own, seed=1, progress=False, cache_dir=tmp_path)
    reused = run_feature_suppression(own, seed=1, progress=False, cache_dir=tmp_path, sweeps=sweeps)
    assert fresh.seconds["reused"] == 0 and reused.seconds["reused"] == 2
    keys = ["batches", "setting", "encoder", "factor", "probe"]
    assert sorted(set(map(tuple, fresh.scores[keys[:2]].values))) == sorted(
        set(map(tuple, reused.scores[keys[:2]].values)))
    # The grouped scores are the sweeps' own rows; the i.i.d. model is trained and probed alike.
    (all_label, all_bias), = list(named_selection_sweep().items())[-1:]
    (most_label, most_bias), = list(named_perturbation_sweep().items())[:1]
    mine = reused.scores.query("batches == 'contrast groups' and setting == 'all seven'")["score"]
    theirs = sweeps.scores.query("setting == @all_label")["score"]
    assert mine.tolist() == theirs.tolist()
    iid = [r.scores.query("batches == 'i.i.d.'").set_index(keys)["score"].sort_index()
           for r in (fresh, reused)]
    assert iid[0].tolist() == iid[1].tolist()
    # Reusing is sound because training the two settings on their own gives the same weights
    # (their probe scores differ slightly: probes are fitted as one ensemble per call).
    alone = run_scene_sweeps(own, seed=1, progress=False, cache_dir=tmp_path,
                             settings={"crowded": {"all seven": all_bias, "most perturbed": most_bias}})
    for key, model in alone.models.items():
        a, b = model.f_x.state_dict(), sweeps.models[key].f_x.state_dict()
        assert all(torch.equal(a[n], b[n]) for n in a)
    # A run of another seed, or one trained without groups, is not reused.
    other = run_feature_suppression(own, seed=2, progress=False, cache_dir=tmp_path, sweeps=sweeps)
    assert other.seconds["reused"] == 0
    iid = run_scene_sweeps(own, seed=1, progress=False, cache_dir=tmp_path, iid_batches=True)
    assert run_feature_suppression(own, seed=1, progress=False, cache_dir=tmp_path,
                                   sweeps=iid).seconds["reused"] == 0
