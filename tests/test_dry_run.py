"""MMCL_DRY_RUN: the gpu profile's structure with capped sizes, and the synthetic MPI3D file."""

import dataclasses

import numpy as np
import pytest
import torch

from mmcl_helpers.book_support import notebook
from mmcl_helpers.core.dry_run import DRY_RUN_CAPS, dry_run_enabled, dry_run_notice
from mmcl_helpers.core.profiles import (
    IMAGE_TEXT_PROFILES,
    PROFILES,
    ImageTextProfile,
    Profile,
    active_profile,
    get_profile,
    image_text_profile,
)
from mmcl_helpers.datasets.mpi3d import (
    MPI3D_SIZES,
    MPI3DFormatError,
    check_mpi3d_file,
    load_mpi3d_images,
    mpi3d_factors,
)
from mmcl_helpers.datasets.mpi3d_synthetic import (
    SYNTHETIC_SIZES,
    mpi3d_sizes,
    synthetic_mpi3d_images,
    write_synthetic_mpi3d,
)

STRUCTURE = ("name", "seeds", "dependent_stride", "encoder", "hidden", "depth", "similarity", "tau",
             "extra_dims", "compile", "widths", "text_embed", "text_channels", "lr", "warmup")


@pytest.fixture
def dry(monkeypatch):
    monkeypatch.setenv("MMCL_DRY_RUN", "1")


def test_off_by_default_and_the_same_objects(monkeypatch):
    monkeypatch.delenv("MMCL_DRY_RUN", raising=False)
    assert not dry_run_enabled() and dry_run_notice() is None
    assert get_profile("gpu") is PROFILES["gpu"]
    assert image_text_profile("gpu") is IMAGE_TEXT_PROFILES["gpu"]
    assert mpi3d_sizes() == MPI3D_SIZES
    monkeypatch.setenv("MMCL_DRY_RUN", "0")
    assert not dry_run_enabled()


@pytest.mark.parametrize("name", list(PROFILES))
def test_dry_run_caps_sizes_and_keeps_the_structure(dry, name):
    for full, capped in ((PROFILES[name], get_profile(name)),
                         (IMAGE_TEXT_PROFILES[name], image_text_profile(name))):
        changed = False
        for f in dataclasses.fields(full):
            a, b = getattr(full, f.name), getattr(capped, f.name)
            if f.name in DRY_RUN_CAPS:
                assert b == min(a, DRY_RUN_CAPS[f.name]), f.name
                changed |= a != b
            else:
                assert a == b, f.name
        assert changed, f"{name}: nothing was capped"
    assert active_profile(name) == get_profile(name)


def test_the_gpu_structure_survives(dry):
    gpu = get_profile("gpu")
    assert (gpu.name, gpu.seeds, gpu.dependent_stride, gpu.hidden, gpu.depth) == ("gpu", 3, 1, 256, 4)
    assert image_text_profile("gpu").seeds == 3 and image_text_profile("gpu").widths == (32, 64, 128)
    assert mpi3d_sizes() == SYNTHETIC_SIZES


def test_every_cap_names_a_size_field():
    fields = {f.name for cls in (Profile, ImageTextProfile) for f in dataclasses.fields(cls)}
    assert set(DRY_RUN_CAPS) <= fields
    assert not set(DRY_RUN_CAPS) & set(STRUCTURE)


def test_a_value_it_does_not_understand_is_an_error(monkeypatch):
    monkeypatch.setenv("MMCL_DRY_RUN", "maybe")
    with pytest.raises(ValueError, match=r"MMCL_DRY_RUN='maybe'.*allowed: 1, true"):
        dry_run_enabled()


def test_the_setup_cell_says_it_is_a_dry_run(dry, capsys):
    setup = notebook.setup_notebook(seed=0, profile="gpu")
    out = capsys.readouterr().out
    assert "DRY RUN" in out and "testing aid" in out and "steps<=12" in out and "batch_size<=32" in out
    assert setup.profile.steps == min(PROFILES["gpu"].steps, DRY_RUN_CAPS["steps"])


def test_cuda_determinism_only_on_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    before = (torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled())
    assert notebook.cuda_determinism() is False
    assert (torch.backends.cudnn.benchmark, torch.are_deterministic_algorithms_enabled()) == before
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    try:
        assert notebook.cuda_determinism() is True
        import os

        assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_synthetic_mpi3d_has_the_real_layout(tmp_path):
    path = write_synthetic_mpi3d(tmp_path)
    assert path.name == "real3d_complicated_shapes_ordered.npz"
    assert check_mpi3d_file(path, SYNTHETIC_SIZES) == path
    images = load_mpi3d_images(path, SYNTHETIC_SIZES)
    assert isinstance(images, np.memmap)  # uncompressed, like the real file
    assert images.shape == (int(np.prod(SYNTHETIC_SIZES)), 64, 64, 3) and images.dtype == np.uint8
    with pytest.raises(MPI3DFormatError, match="holds 4608 images, expected 460800"):
        check_mpi3d_file(path)  # the real sizes: the file is not mistaken for the real one
    with pytest.raises(ValueError, match=r"\.npz"):
        write_synthetic_mpi3d(tmp_path / "x.txt")


def test_synthetic_pictures_show_their_factors():
    sizes = (4, 4, 2, 3, 3, 2, 2)
    img = synthetic_mpi3d_images(sizes).astype(float)
    lab = mpi3d_factors(np.arange(len(img)), sizes)
    corner = img[:, :3, :3].mean(axis=(1, 2))  # background only
    for b in range(3):  # each background colour is its own
        part = corner[lab[:, 4] == b]
        assert part.std(axis=0).max() < 10
    assert np.linalg.norm(corner[lab[:, 4] == 0].mean(0) - corner[lab[:, 4] == 1].mean(0)) > 50
    # Object pixels grow with the size factor; the shape changes the picture.
    fg = (np.abs(img - corner[:, None, None, :]).sum(-1) > 60).sum(axis=(1, 2))
    assert fg[lab[:, 2] == 1].mean() > 1.5 * fg[lab[:, 2] == 0].mean()
    same_but_shape = [np.flatnonzero((lab[:, 1] == s) & (lab[:, [0, 2, 3, 4, 5, 6]] == 0).all(1))[0]
                      for s in range(4)]
    masks = [(np.abs(img[i] - corner[i]).sum(-1) > 60) for i in same_but_shape]
    assert all((masks[i] != masks[j]).sum() > 10 for i in range(4) for j in range(i))
