"""Colab: the notebooks' runtime requests, the colab profile as the default there, and its budget."""

import json
import sys
import types
from dataclasses import asdict
from pathlib import Path

import pytest
import yaml

from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES, PROFILES, active_profile, profile_choice

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))
#: Chapters that train nothing ask Colab for no GPU.
NO_GPU = {"01_latent_model.ipynb"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_asks_colab_for_a_gpu_only_where_it_trains(path):
    meta = json.loads(path.read_text())["metadata"]
    if path.name in NO_GPU:
        assert "accelerator" not in meta and "gpuType" not in meta["colab"]
    else:
        assert meta["accelerator"] == "GPU"  # Colab reads this when it opens the notebook
        assert meta["colab"]["gpuType"] == "T4"  # the free tier's GPU, which `colab` is sized for
    assert meta["colab"]["provenance"] == []
    assert meta["kernelspec"]["name"] == "python3"


def test_the_launch_settings_do_not_ask_for_a_runtime():
    launch = yaml.safe_load((ROOT / "_config.yml").read_text())["launch_buttons"]
    assert set(launch) <= {"colab_url", "notebook_interface", "binderhub_url", "jupyterhub_url", "thebe"}


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 6


@pytest.fixture
def on_colab(monkeypatch):
    """A stub google.colab module: importing it works, as on Colab."""
    google = types.ModuleType("google")
    colab = types.ModuleType("google.colab")
    google.colab = colab
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", colab)
    monkeypatch.delenv("MMCL_PROFILE", raising=False)


def test_colab_is_the_default_on_colab(on_colab, capsys):
    from mmcl_helpers.book_support.notebook import setup_notebook

    assert profile_choice()[0] == "colab" and active_profile().name == "colab"
    setup = setup_notebook(seed=0)
    assert setup.profile.name == "colab"
    out = capsys.readouterr().out
    assert "profile: 'colab' (the default on Colab" in out and "set PROFILE in this cell" in out
    # An explicit choice still wins, and says so.
    assert profile_choice("smoke") == ("smoke", "chosen in the set-up cell (PROFILE)")


def test_the_environment_variable_wins_on_colab(on_colab, monkeypatch):
    monkeypatch.setenv("MMCL_PROFILE", "smoke")
    assert profile_choice() == ("smoke", "set by the environment variable MMCL_PROFILE")


def test_colab_has_the_cpu_sizes_whose_results_show_the_pattern():
    """The intro's claim: colab trains what cpu trains (whose results are the evidence), in eager mode."""
    cpu, colab = asdict(PROFILES["cpu"]), asdict(PROFILES["colab"])
    assert {k for k in cpu if cpu[k] != colab[k]} == {"name", "compile"} and colab["compile"] is False
    cpu_it, colab_it = asdict(IMAGE_TEXT_PROFILES["cpu"]), asdict(IMAGE_TEXT_PROFILES["colab"])
    assert {k for k in cpu_it if cpu_it[k] != colab_it[k]} == {"name"}


def test_every_chapter_fits_a_free_colab_session():
    """Each chapter trains for at most 15 minutes at colab on a T4 in the book's cost model; chapter 3
    counts chapter 2's sweep too (a Colab session keeps no cache)."""
    from mmcl_helpers.book_support.costs import PROFILE_DEVICE, chapter_costs

    assert PROFILE_DEVICE["colab"] == "t4"
    column = chapter_costs(["colab"]).iloc[:, 0]
    assert column.name == "colab (T4 GPU)"
    per_chapter: dict[str, float] = {}
    for row, minutes in column.items():
        per_chapter[row[0]] = per_chapter.get(row[0], 0.0) + float(minutes)
    assert set(per_chapter) == {"1", "2", "3", "4", "5", "6"}
    assert all(m <= 15 for m in per_chapter.values()), per_chapter
    assert per_chapter["2"] > 0 and per_chapter["1"] == 0
