"""MPI3D-complex loader on a tiny synthetic file with the real layout (nothing is downloaded)."""

import builtins

import numpy as np
import pytest

from mmcl_helpers.core.biases import InvalidIndexSetError
from mmcl_helpers.datasets import mpi3d
from mmcl_helpers.datasets.mpi3d import (
    MPI3D_FACTORS,
    MPI3D_SEMANTICS,
    MPI3D_SIZES,
    MPI3D_URL,
    MPI3D_VALUES,
    MPI3DFormatError,
    MPI3DNotFoundError,
    check_mpi3d_file,
    download_mpi3d,
    find_mpi3d,
    load_mpi3d_images,
    mpi3d_bias,
    mpi3d_captions,
    mpi3d_factors,
    mpi3d_perturbation_sweep,
    mpi3d_selection_sweep,
    mpi3d_split_sizes,
    mpi3d_splits,
)
from mmcl_helpers.datasets.naming import UnknownFactorError
from mmcl_helpers.datasets.tokens import tokenize

SIZES = (4, 4, 2, 3, 3, 2, 2)  # 1,152 images
N = int(np.prod(SIZES))


def _images(n=N):
    """Images whose first pixel stores their own index, so order can be checked."""
    img = np.zeros((n, 64, 64, 3), dtype=np.uint8)
    idx = np.arange(n)
    img[:, 0, 0, 0] = idx % 256
    img[:, 0, 0, 1] = idx // 256
    return img


@pytest.fixture
def fake(tmp_path):
    path = tmp_path / mpi3d.MPI3D_FILENAME
    np.savez(path, images=_images())
    return path


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.delenv("MMCL_MPI3D_PATH", raising=False)
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path / "cache"))


def test_labels_from_the_flat_index():
    lab = mpi3d_factors(np.arange(N), SIZES)
    assert lab.shape == (N, 7)
    for k, size in enumerate(SIZES):
        assert set(np.unique(lab[:, k])) == set(range(size)), MPI3D_FACTORS[k]
    # The first factor varies slowest, the last fastest.
    assert lab[:, 0].tolist() == sorted(lab[:, 0].tolist())
    assert lab[:4, 6].tolist() == [0, 1, 0, 1]
    np.testing.assert_array_equal(lab[N - 1], np.array(SIZES) - 1)
    real = mpi3d_factors(np.array([0, 1, 40, 1600, 460_799]))
    np.testing.assert_array_equal(real[1], [0, 0, 0, 0, 0, 0, 1])
    np.testing.assert_array_equal(real[2], [0, 0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(real[3], [0, 0, 0, 0, 1, 0, 0])
    np.testing.assert_array_equal(real[4], np.array(MPI3D_SIZES) - 1)
    with pytest.raises(IndexError, match="0..1151"):
        mpi3d_factors(np.array([N]), SIZES)
    with pytest.raises(ValueError, match="7 positive factor sizes"):
        mpi3d_factors(np.arange(3), (4, 4))


def test_split_sizes_scale_with_the_dataset():
    assert mpi3d_split_sizes() == (44_720, 23_040, 23_040)
    sizes = mpi3d_split_sizes(SIZES)
    assert sizes == tuple(round(k * N / 460_800) for k in (44_720, 23_040, 23_040))
    splits = mpi3d_splits(seed=0, sizes=SIZES)
    assert tuple(len(v) for v in splits.values()) == sizes
    joined = np.concatenate(list(splits.values()))
    assert len(np.unique(joined)) == len(joined) and joined.max() < N
    np.testing.assert_array_equal(mpi3d_splits(0, SIZES)["test"], splits["test"])
    assert not np.array_equal(mpi3d_splits(1, SIZES)["train"], splits["train"])


def test_check_and_load_memory_maps_the_images(fake):
    assert check_mpi3d_file(fake, SIZES) == fake
    img = load_mpi3d_images(fake, SIZES)
    assert isinstance(img, np.memmap) and img.shape == (N, 64, 64, 3) and img.dtype == np.uint8
    np.testing.assert_array_equal(img, _images())
    compressed = fake.with_name("compressed.npz")
    np.savez_compressed(compressed, images=_images())
    np.testing.assert_array_equal(load_mpi3d_images(compressed, SIZES), _images())
    npy = fake.with_name("images.npy")
    np.save(npy, _images())
    np.testing.assert_array_equal(load_mpi3d_images(npy, SIZES)[7], _images()[7])


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"imgs": _images()}, r"has arrays \['imgs'\] but no 'images'"),
        ({"images": _images().astype(np.float32)}, "dtype float32, expected uint8"),
        ({"images": np.zeros((N, 32, 32, 3), np.uint8)},
         r"shape \(1152, 32, 32, 3\), expected \(N, 64, 64, 3\)"),
        ({"images": _images(N - 5)}, "holds 1147 images, expected 1152"),
    ],
)
def test_structural_check_names_what_is_wrong(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(MPI3DFormatError, match=message):
        check_mpi3d_file(path, SIZES)


def test_the_real_sizes_are_the_default(fake):
    with pytest.raises(MPI3DFormatError, match="expected 460800"):
        check_mpi3d_file(fake)


def test_not_an_archive(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(MPI3DFormatError, match="not a readable .npz"):
        check_mpi3d_file(path, SIZES)


def test_missing_file_says_how_to_get_it(tmp_path):
    assert find_mpi3d() is None
    with pytest.raises(MPI3DNotFoundError, match="download_mpi3d.*MMCL_MPI3D_PATH") as err:
        load_mpi3d_images(sizes=SIZES)
    assert MPI3D_URL in str(err.value)
    with pytest.raises(MPI3DNotFoundError, match="does not exist"):
        check_mpi3d_file(tmp_path / "nowhere.npz", SIZES)


def test_find_uses_the_environment_variable(fake, monkeypatch):
    monkeypatch.setenv("MMCL_MPI3D_PATH", str(fake))
    assert find_mpi3d() == fake
    monkeypatch.setenv("MMCL_MPI3D_PATH", str(fake.parent))
    assert find_mpi3d() == fake
    assert load_mpi3d_images(sizes=SIZES).shape[0] == N


def test_download_without_gdown_explains_what_to_do(monkeypatch, tmp_path):
    real_import = builtins.__import__

    def no_gdown(name, *args, **kwargs):
        if name == "gdown":
            raise ImportError("No module named 'gdown'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_gdown)
    with pytest.raises(ImportError, match="pip install gdown") as err:
        download_mpi3d(tmp_path / "x.npz")
    assert "drive.google.com/uc?id=1Tp8eTdHxgUMtsZv5uAoYAbJR1BOa_OQm" in str(err.value)
    existing = tmp_path / "have.npz"
    existing.write_bytes(b"")
    with pytest.raises(mpi3d.MPI3DFormatError, match="not a complete MPI3D-complex file.*Delete"):
        download_mpi3d(existing)  # what is there is verified, not downloaded again nor trusted


def test_settings_follow_the_paper():
    sel = mpi3d_selection_sweep()
    assert list(sel) == ["{color}", "{color, shape}", "{color..size}", "{color..cam}", "{color..back}"]
    pert = mpi3d_perturbation_sweep()
    assert list(pert) == ["∅", "{back}", "{cam, back}", "{size..back}", "{shape..back}"]
    assert all(b.p_perturb == 0.9 for b in pert.values())
    with pytest.raises(UnknownFactorError, match="hori"):
        mpi3d_bias({"color", "hori"})
    with pytest.raises(InvalidIndexSetError, match="proper"):
        mpi3d_bias(MPI3D_SEMANTICS, MPI3D_SEMANTICS)


# Words only one factor uses ("green" is shared by the colour and "sea green").
_WORDS = {"shape": {"coffee", "tennis", "croissant", "beer", "cup", "ball"}, "size": {"small", "large"},
          "cam": {"top", "center", "bottom"}, "back": {"purple", "sea", "salmon"}}


@pytest.mark.parametrize("label", list(mpi3d_selection_sweep()))
def test_captions_mention_selected_factors_only(label):
    bias = mpi3d_selection_sweep()[label]
    chosen = {MPI3D_SEMANTICS[i - 1] for i in bias.selected}
    idx = np.arange(N)
    batch = mpi3d_captions(idx, bias, seed=0, sizes=SIZES)
    lab = mpi3d_factors(idx, SIZES)
    assert set(np.unique(batch.phrasing)) == {0, 1, 2}
    for j, text in enumerate(batch.text):
        words = set(tokenize(text))
        for k, name in enumerate(MPI3D_SEMANTICS):
            value = MPI3D_VALUES[name][lab[j, k]]
            if name in chosen:
                assert value in text, (name, text)
            elif name in _WORDS:
                assert not words & _WORDS[name], (name, text)


def test_caption_perturbation_rate():
    idx = np.arange(N)
    bias = mpi3d_perturbation_sweep()["{shape..back}"]
    batch = mpi3d_captions(idx, bias, seed=1, sizes=SIZES)
    lab = mpi3d_factors(idx, SIZES)
    np.testing.assert_array_equal(batch.reported["color"], lab[:, 0])
    for k, name in enumerate(MPI3D_SEMANTICS[1:], start=1):
        assert abs(batch.resampled[name].mean() - 0.9) < 0.04, name
        wrong = (batch.reported[name] != lab[:, k]).mean()
        assert abs(wrong - 0.9 * (1 - 1 / SIZES[k])) < 0.05, name
