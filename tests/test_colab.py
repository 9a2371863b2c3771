"""Colab: every chapter opens on a GPU runtime (the notebook's own metadata asks for one)."""

import json
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "book").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_asks_colab_for_a_gpu(path):
    meta = json.loads(path.read_text())["metadata"]
    assert meta["accelerator"] == "GPU"  # Colab reads this when it opens the notebook
    assert meta["colab"]["gpuType"] == "T4"  # the free tier's GPU, which the gpu profile is sized for
    assert meta["colab"]["provenance"] == []
    assert meta["kernelspec"]["name"] == "python3"


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 6
