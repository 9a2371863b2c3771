"""``python -m mmcl_helpers scenes``: one captioning setting of chapter 5, its table and its errors."""

import math

import pandas as pd
import pytest

from mmcl_helpers.cli import main
from mmcl_helpers.core.profiles import image_text_profile
from mmcl_helpers.datasets.naming import (
    bias_from_names,
    named_perturbation_sweep,
    named_selection_sweep,
)
from mmcl_helpers.datasets.scenes import IMAGE_FACTORS, SEMANTIC_FACTORS
from mmcl_helpers.image_text.sweeps import run_scene_sweeps, scene_setting

FACTORS = [*SEMANTIC_FACTORS, *IMAGE_FACTORS, "template"]
ARGS = ["scenes", "--selected", "shape,x_pos", "--perturbed", "x_pos", "--profile", "smoke", "--quiet"]


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path


def test_scenes_prints_and_writes_the_chapter_table(cache, capsys):
    out = cache / "r.csv"
    assert main([*ARGS, "--out", str(out)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split() == ["role", "metric", "x", "linear", "x", "mlp", "t", "linear", "t", "mlp"]
    rows = {line.split()[0]: line.split() for line in printed[2:]}
    assert list(rows) == FACTORS
    assert rows["shape"][1] == "unbiased" and rows["x_pos"][1] == "perturbed"
    assert rows["y_pos"][1] == "omitted" and rows["scale"][1] == "image-specific"
    assert rows["template"][1] == "text-specific" and rows["template"][3:5] == ["-", "-"]

    table = pd.read_csv(out)
    assert list(table.columns) == ["encoder", "factor", "probe", "metric", "score"]
    assert set(table["metric"]) == {"mcc", "r2"} and set(table["encoder"]) == {"x", "t"}
    assert set(table["probe"]) == {"linear", "mlp"} and set(table["factor"]) == set(FACTORS)
    assert table["score"].map(math.isfinite).all()
    assert set(table.loc[table["factor"] == "shape", "metric"]) == {"mcc"}
    assert set(table.loc[table["factor"] == "s_pos", "metric"]) == {"r2"}
    assert len(table) == 4 * (len(FACTORS) - 1) + 2  # the template is read from ẑ_t only

    # The command is the library function, and a seed gives the same numbers every time.
    direct = scene_setting(["shape", "x_pos"], ["x_pos"], image_text_profile("smoke"), seed=0,
                           progress=False)
    pd.testing.assert_frame_equal(direct, table, check_exact=False, rtol=1e-9, atol=1e-12)
    again = cache / "r2.csv"
    assert main([*ARGS, "--out", str(again)]) == 0
    assert again.read_text() == out.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--selected", "shape,bogus"], "--selected holds unknown factor name(s) ['bogus']"),
        (["--selected", "shape", "--perturbed", "shape"], "--perturbed equals selected"),
        (["--selected", "shape", "--perturbed", "x_pos"], "--perturbed holds ['x_pos']"),
        (["--selected", ""], "--selected is empty"),
        (["--selected", "shape", "--profile", "huge"], "--profile huge: Unknown compute profile 'huge'"),
        (["--selected", "shape", "--seed", "-1"], "--seed must be an int"),
        (["--selected", "shape", "--device", "tpu"], "--device must be"),
    ],
)
def test_scenes_rejects_bad_input(cache, args, message, capsys):
    assert main(["scenes", *args, "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]


def test_scenes_keeps_an_existing_out_file(cache, capsys):
    out = cache / "r.csv"
    out.write_text("keep me")
    assert main([*ARGS, "--out", str(out)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "keep me"


def test_scene_settings_are_built_as_in_chapter_5():
    # The chapter's sweeps and the command build the same CaptionBias (p_perturb included).
    assert bias_from_names(["shape", "x_pos"]) == named_selection_sweep()["{shape, x_pos}"]
    assert bias_from_names(SEMANTIC_FACTORS, ["s_color", "b_color"]) == \
        named_perturbation_sweep()["{s_color, b_color}"]


def test_scene_setting_trains_the_chapters_model(cache):
    # Trained beside another of the chapter's settings, the same setting gets the same encoders,
    # hence the same linear probe scores; only the MLP probes' ensemble initialisation differs.
    profile = image_text_profile("smoke")
    one = scene_setting(["shape", "x_pos"], profile=profile, seed=0, progress=False)
    sel = named_selection_sweep()
    run = run_scene_sweeps(profile, 0, progress=False,
                           settings={"selection": {k: sel[k] for k in ("{shape}", "{shape, x_pos}")}})
    cell = run.scores.query("setting == '{shape, x_pos}'")
    cell = cell.assign(metric=cell["metric"].str.lower())[list(one.columns)]
    both = one.merge(cell, on=["encoder", "factor", "probe", "metric"], suffixes=("", "_chapter"))
    assert len(both) == len(one) == len(cell)
    linear = both[both["probe"] == "linear"]
    assert (linear["score"] - linear["score_chapter"]).abs().max() < 1e-6


def test_scenes_help_names_the_factors(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["scenes", "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert all(f in text for f in FACTORS) and "--perturbed" in text


@pytest.mark.parametrize("settings", [{}, {"mine": {}}, {"mine": {"x": "not a bias"}}])
def test_run_scene_sweeps_rejects_settings_that_are_not_sweeps_of_scene_biases(settings):
    from mmcl_helpers.image_text.sweeps import run_scene_sweeps

    with pytest.raises(ValueError, match="settings must map sweep names to non-empty"):
        run_scene_sweeps(image_text_profile("smoke"), settings=settings)


def test_scenes_warns_naming_a_selected_unperturbed_factor_it_did_not_learn(cache, capsys, monkeypatch):
    from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES
    from mmcl_helpers.core.results import UnlearnedFactorWarning

    # Three steps learn nothing: the shape, selected and never perturbed, ends below the bar.
    short = IMAGE_TEXT_PROFILES["smoke"].with_overrides(steps=3)
    with pytest.warns(UnlearnedFactorWarning, match=r"never perturb shape.*sec-feature-suppression"):
        scene_setting(["shape", "x_pos"], ["x_pos"], short, seed=0, progress=False)
    monkeypatch.setitem(IMAGE_TEXT_PROFILES, "smoke", short)
    assert main([*ARGS]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "never perturb shape" in err and "Feature suppression" in err


def test_the_unlearned_warning_reads_only_unbiased_factors_from_z_x_mlp():
    import warnings

    from mmcl_helpers.core.results import LEARNED_BAR, UnlearnedFactorWarning, warn_unlearned

    rows = [("x", "shape", "unbiased", "mlp", 0.95), ("x", "x_pos", "omitted", "mlp", 0.0),
            ("x", "y_pos", "perturbed", "mlp", 0.1), ("t", "shape", "unbiased", "mlp", 0.2),
            ("x", "shape", "unbiased", "linear", 0.3), ("x", "scale", "image-specific", "mlp", 0.0)]
    frame = pd.DataFrame(rows, columns=["encoder", "factor", "role", "probe", "score"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to say: the one unbiased ẑ_x MLP score is learned
        assert warn_unlearned(frame, "here") == []
    frame.loc[0, "score"] = LEARNED_BAR - 0.01
    frame["setting"], frame["seed"] = "sel {shape}", 1
    message = r"here: .*never perturb shape.*setting sel \{shape\} seed 1"
    with pytest.warns(UnlearnedFactorWarning, match=message):
        assert warn_unlearned(frame, "here") == ["shape = 0.79 setting sel {shape} seed 1"]
    with pytest.raises(ValueError, match=r"needs the columns .*'role'"):
        warn_unlearned(frame.drop(columns="role"), "here")


def test_factor_inputs_one_hot_the_discrete_factors_and_name_a_missing_one():
    import numpy as np

    from mmcl_helpers.datasets.scenes import factor_inputs

    values = {"shape": np.array([0, 6]), "s_pos": np.array([0.25, 0.5])}
    got = factor_inputs(values, ["shape", "s_pos"])
    assert got.shape == (2, 8) and got.dtype == np.float32
    assert got[1, 6] == 1 and got[1, 7] == 0.5 and got[0, :7].sum() == 1
    with pytest.raises(ValueError, match=r"names \['b_color'\] are not among"):
        factor_inputs(values, ["b_color"])
    with pytest.raises(ValueError, match="at least one factor name"):
        factor_inputs(values, [])
