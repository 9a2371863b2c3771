"""The held-out protocol for the scenes recipe: a fixed draw, disjoint sets, a table that can fail."""

import pandas as pd
import pytest

from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.datasets.scenes import SEMANTIC_FACTORS
from mmcl_helpers.image_text import heldout as ho


def _keys(settings):
    return {(frozenset(s), frozenset(p)) for s, p in settings}


def test_the_draw_is_fixed_and_covers_one_to_six_unbiased_factors_with_and_without_perturbation():
    held = ho.heldout_settings()
    assert held == ho.heldout_settings()  # one recorded seed, the same draw every time
    assert len(held) == len(_keys(held)) == 12
    unbiased = [len(s) - len(p) for s, p in held]
    assert unbiased == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    assert [bool(p) for _, p in held] == [False, True] * 6
    for selected, perturbed in held:
        assert set(perturbed) < set(selected) <= set(SEMANTIC_FACTORS)
        assert list(selected) == [f for f in SEMANTIC_FACTORS if f in selected]  # canonical order


def test_held_out_tuning_and_chapter_settings_are_disjoint():
    held, tuning, chapter = _keys(ho.heldout_settings()), _keys(ho.tuning_settings()), ho.chapter_settings()
    assert len(chapter) == 13  # 7 selection columns + 6 perturbed ones (the 7th is 'all, none perturbed')
    assert not held & chapter and not tuning & chapter and not held & tuning


def _scores(rows):
    return pd.DataFrame(rows, columns=["encoder", "factor", "role", "probe", "score"])


def test_a_setting_passes_only_when_every_bar_is_met():
    bias = CaptionBias({1, 2}, {2}, n_semantic=7)
    good = _scores([("x", "shape", "unbiased", "mlp", 0.95), ("x", "x_pos", "perturbed", "mlp", 0.05),
                    ("x", "y_pos", "omitted", "mlp", 0.1), ("x", "scale", "image-specific", "mlp", 0.02),
                    ("t", "scale", "image-specific", "mlp", 0.0), ("x", "shape", "unbiased", "linear", 0.1)])
    row = ho._summary(good, "s", bias, 0)
    assert row["passed"] and row["worst_learned"] == 0.95 and row["learned_factor"] == "shape (ẑ_x)"
    for i, value, factor in [(0, 0.5, "shape"), (1, 0.6, "x_pos"), (4, 0.3, "scale")]:
        bad = good.copy()
        bad.loc[i, "score"] = value
        row = ho._summary(bad, "s", bias, 0)
        assert not row["passed"], (factor, row)


def test_the_table_trains_each_setting_at_the_smoke_profile(tmp_path, monkeypatch):
    from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES

    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    settings = [(("shape", "x_pos"), ("x_pos",))]
    table = ho.heldout_table(settings, IMAGE_TEXT_PROFILES["smoke"], seeds=(0,), progress=False)
    assert list(table["setting"]) == ["sel {shape, x_pos} pert {x_pos}"]
    assert table.loc[0, "learned_factor"] == "shape (ẑ_x)"  # the one selected, unperturbed factor
    assert table.loc[0, "dropped_factor"].split(" ")[0] in SEMANTIC_FACTORS[1:]
    assert table["passed"].dtype == bool


def test_the_command_rejects_bad_flags():
    with pytest.raises(SystemExit):
        ho.main(["--first", "0"])
    with pytest.raises(SystemExit):
        ho.main(["--profile", "huge"])
