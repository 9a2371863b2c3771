"""run_numerical keeps trained encoders on disk and reuses them for exactly the same inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.profiles import get_profile
from mmcl_helpers.numerical.experiments import run_numerical
from mmcl_helpers.numerical.training_cache import training_cache_path

PROFILE = get_profile("smoke").with_overrides(steps=20, probe_train=300, probe_test=300, probe_steps=10)
SETTINGS = [CaptionBias({1, 2}, set(), 4), CaptionBias({1, 2, 3, 4}, {4}, 4, 0.75)]


def _run(**kw):
    return run_numerical(SETTINGS, n_image=2, n_text=2, profile=PROFILE, seeds=0, progress=False,
                         device="cpu", probes=("linear",), **kw)


def test_second_run_loads_the_same_encoders(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    first = _run()
    assert first.config["from_cache"] == [False]
    path = training_cache_path(SETTINGS, False, 2, 2, PROFILE, 0, None, "cpu")
    assert path.exists() and path.parent == tmp_path / "numerical"
    second = _run()
    assert second.config["from_cache"] == [True]
    pd.testing.assert_frame_equal(first.scores, second.scores)


def test_any_changed_input_changes_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    base = training_cache_path(SETTINGS, False, 2, 2, PROFILE, 0, None, "cpu")
    others = [
        training_cache_path(SETTINGS[:1], False, 2, 2, PROFILE, 0, None, "cpu"),
        training_cache_path(SETTINGS, True, 2, 2, PROFILE, 0, None, "cpu"),
        training_cache_path(SETTINGS, False, 3, 2, PROFILE, 0, None, "cpu"),
        training_cache_path(SETTINGS, False, 2, 2, PROFILE.with_overrides(steps=21), 0, None, "cpu"),
        training_cache_path(SETTINGS, False, 2, 2, PROFILE, 1, None, "cpu"),
        training_cache_path(SETTINGS, False, 2, 2, PROFILE, 0, [3, 3], "cpu"),
    ]
    assert len({base, *others}) == 1 + len(others)


def test_cache_can_be_turned_off_and_survives_a_corrupt_file(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("MMCL_CACHE", "0")
    assert _run().config["from_cache"] == [False]
    assert not (tmp_path / "numerical").exists()
    monkeypatch.delenv("MMCL_CACHE")
    path = training_cache_path(SETTINGS, False, 2, 2, PROFILE, 0, None, "cpu")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not a checkpoint")
    run = _run()
    assert run.config["from_cache"] == [False]
    assert _run().config["from_cache"] == [True]  # the corrupt file was replaced


def test_with_theory_predicts_each_cell_from_the_unbiased_block(tmp_path, monkeypatch):
    from mmcl_helpers.numerical.experiments import with_theory

    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    run = run_numerical(SETTINGS, dependent=True, n_image=2, n_text=2, profile=PROFILE, seeds=0,
                        progress=False, device="cpu", probes=("linear",))
    table = with_theory(run)
    assert len(table) == len(run.scores)
    by_role = table.groupby("role")["theory"]
    assert (by_role.get_group("unbiased") == 1.0).all()
    assert (table.loc[table["factor"].isin(["mx", "mt"]), "theory"] == 0.0).all()
    # Setting 2 selects s1..s4 and perturbs s4: s4 is predicted from s1..s3 alone.
    model = run.simulations[0].model
    cell = table.query("member == 1 and factor == 's4'")["theory"].unique()
    assert cell.tolist() == [model.explained_r2(4, [1, 2, 3])]
    assert 0.0 < cell[0] < 1.0


def test_recovery_by_variance_lists_unbiased_factors_with_their_variance(tmp_path, monkeypatch):
    from mmcl_helpers.numerical.experiments import recovery_by_variance

    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    run = run_numerical(SETTINGS, dependent=True, n_image=2, n_text=2, profile=PROFILE, seeds=0,
                        progress=False, device="cpu", probes=("linear",))
    table, rho = recovery_by_variance(run, member=1, probe="linear")
    model = run.simulations[0].model
    unbiased = sorted(run.simulations[0].biases[1].unbiased)
    assert sorted(table["factor"]) == sorted(f"s{i}" for i in unbiased)
    assert table["variance"].is_monotonic_increasing
    for _, row in table.iterrows():
        i = int(row["factor"][1:])
        assert row["variance"] == pytest.approx(model.cov_s[i - 1, i - 1])
        expected = run.scores.query(
            "member == 1 and encoder == 'x' and probe == 'linear' and factor == @row.factor"
        )["score"].mean()
        assert row["r2"] == pytest.approx(expected)
    assert len(unbiased) == 3 and -1.0 <= rho <= 1.0
    # Two unbiased factors give no meaningful rank correlation.
    assert np.isnan(recovery_by_variance(run, member=0, probe="linear")[1])
    with pytest.raises(ValueError, match="member must lie in 0..1"):
        recovery_by_variance(run, member=2)
