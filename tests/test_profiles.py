import sys

import pytest

from mmcl_helpers.core.profiles import (
    PROFILES,
    UnknownProfileError,
    active_profile,
    get_profile,
    profiles_table,
)


def test_five_profiles_and_a_visible_table():
    assert list(PROFILES) == ["smoke", "cpu", "colab", "gpu", "paper"]
    table = profiles_table()
    assert list(table.columns) == ["smoke", "cpu", "colab", "gpu", "paper"]
    assert "steps" in table.index


def test_paper_profile_copies_the_paper():
    p = get_profile("paper")
    assert (p.steps, p.batch_size, p.lr, p.tau, p.similarity) == (100_000, 6144, 1e-4, 1.0,
                                                                   "euclidean")
    assert p.encoder == "paper" and p.grad_clip == 2.0 and p.seeds == 3 and p.extra_dims == 0


def test_env_var_selects_profile(monkeypatch):
    monkeypatch.setenv("MMCL_PROFILE", "gpu")
    assert active_profile().name == "gpu"
    assert active_profile("SMOKE").name == "smoke"


def test_default_without_env_var_follows_hardware(monkeypatch):
    monkeypatch.delenv("MMCL_PROFILE", raising=False)
    monkeypatch.setitem(sys.modules, "google.colab", None)  # importing it fails: not Colab
    import torch

    assert active_profile().name == ("gpu" if torch.cuda.is_available() else "cpu")


def test_unknown_profile_is_an_error(monkeypatch):
    with pytest.raises(UnknownProfileError, match="smoke, cpu, colab, gpu, paper"):
        get_profile("fast")
    monkeypatch.setenv("MMCL_PROFILE", "laptop")
    with pytest.raises(UnknownProfileError, match="laptop"):
        active_profile()


def test_overrides():
    p = get_profile("cpu").with_overrides(steps=7, batch_size=None)
    assert p.steps == 7 and p.batch_size == get_profile("cpu").batch_size
