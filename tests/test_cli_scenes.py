"""``python -m mmcl_helpers scenes``: one captioning setting of chapter 5, its table and its errors."""

import math

import pandas as pd
import pytest

from mmcl_helpers.cli import main
from mmcl_helpers.datasets.scenes import IMAGE_FACTORS, SEMANTIC_FACTORS
from mmcl_helpers.profiles import image_text_profile
from mmcl_helpers.sweeps import scene_setting

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
        (["--selected", "shape", "--profile", "huge"], "Unknown compute profile 'huge'"),
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
