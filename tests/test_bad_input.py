"""Bad input and damaged files: every case gets a clear error, a correct result, or a safe rebuild.

Each case of the tables below asserts the exception type and a phrase of its message (or the
correct result). The cache cases include a crafted pickle whose payload would create a marker
file: loading must not run it, and the run must be rebuilt with a warning.
"""

from __future__ import annotations

import json
import pickle
import shutil
import zipfile

import numpy as np
import pytest
import torch

from mmcl_helpers.cli import main
from mmcl_helpers.core import storage
from mmcl_helpers.core import validation as val
from mmcl_helpers.core.biases import CaptionBias, InvalidIndexSetError, theta_to_set
from mmcl_helpers.core.losses import info_nce
from mmcl_helpers.core.profiles import get_profile, image_text_profile
from mmcl_helpers.datasets import mpi3d
from mmcl_helpers.datasets.scenes import load_or_render, render_scenes, sample_scene_latents
from mmcl_helpers.datasets.tokens import build_vocab, encode_captions
from mmcl_helpers.image_text.image_encoders import ImageEncoder, TextEncoder
from mmcl_helpers.image_text.pair_training import (
    NotLearningWarning,
    loss_stuck_at_chance,
    train_pair_encoders,
)
from mmcl_helpers.numerical.encoders import EnsembleMLP
from mmcl_helpers.numerical.experiments import run_numerical
from mmcl_helpers.numerical.latents import LatentModel
from mmcl_helpers.numerical.mixing import InvertibleMLP
from mmcl_helpers.numerical.simulation import MultimodalSimulation
from mmcl_helpers.numerical.training import train_mmcl
from mmcl_helpers.numerical.training_cache import load_cached_result, training_cache_path, training_inputs
from mmcl_helpers.practice.audit import LIKELY_DISCARDED, audit_verdict

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
SMOKE = get_profile("smoke")
TINY = SMOKE.with_overrides(steps=4, batch_size=16, probe_train=40, probe_test=40, probe_steps=2)
IT = image_text_profile("smoke")
SETTINGS = [CaptionBias({1}, (), 2)]
OTHER = [CaptionBias({1, 2}, (), 2)]


def _sim():
    return MultimodalSimulation(LatentModel(2, 1, 1, seed=0), SETTINGS, seed=0)


def _numerical(settings=SETTINGS, **kw):
    kw = {"n_image": 1, "n_text": 1, "profile": TINY, "seeds": 0, "progress": False, "device": "cpu",
          "probes": ("linear",), **kw}
    return run_numerical(settings, **kw)


def _path(settings=SETTINGS):
    return training_cache_path(settings, False, 1, 1, TINY, 0, None, "cpu")


# ----------------------------------------------------------------------------------------------
# Arguments and settings: (call, exception type, phrase of the message)

ERRORS = {
    "steps 0": (lambda: SMOKE.with_overrides(steps=0), val.InvalidParameterError,
                "The 'steps' parameter of Profile must be an int in the range [1, inf). Got 0 instead."),
    "steps -5": (lambda: SMOKE.with_overrides(steps=-5), ValueError, "Got -5 instead"),
    "grad_clip 0": (lambda: SMOKE.with_overrides(grad_clip=0.0), ValueError,
                    "'grad_clip' parameter of Profile must be a float in the range (0, inf)"),
    "grad_clip < 0": (lambda: SMOKE.with_overrides(grad_clip=-1.0), ValueError, "Got -1.0 instead"),
    "batch 0": (lambda: SMOKE.with_overrides(batch_size=0), ValueError, "'batch_size'"),
    "batch 1": (lambda: SMOKE.with_overrides(batch_size=1), ValueError, "an int in the range [2, inf)"),
    "batch True": (lambda: SMOKE.with_overrides(batch_size=True), ValueError, "Got True instead"),
    "hidden width 0": (lambda: SMOKE.with_overrides(hidden=0), ValueError, "'hidden' parameter"),
    "lr as a string": (lambda: SMOKE.with_overrides(lr="0.1"), TypeError, "Got '0.1' instead"),
    "tau NaN": (lambda: SMOKE.with_overrides(tau=float("nan")), ValueError, "'tau'"),
    "warmup 1": (lambda: SMOKE.with_overrides(warmup=1.0), ValueError, "[0, 1)"),
    "similarity": (lambda: SMOKE.with_overrides(similarity="dot"), ValueError,
                   "a str among {'cosine', 'euclidean'}"),
    "compile 'yes'": (lambda: SMOKE.with_overrides(compile="yes"), ValueError, "must be a bool"),
    "seeds 0": (lambda: SMOKE.with_overrides(seeds=0), ValueError, "'seeds'"),
    "image-text batch 1": (lambda: IT.with_overrides(batch_size=1), ValueError,
                           "'batch_size' parameter of ImageTextProfile"),
    "image-text widths": (lambda: IT.with_overrides(widths=(8, 0)), ValueError, "'widths'"),
    "image-text steps 0": (lambda: IT.with_overrides(steps=0), ValueError, "'steps'"),
    "p_perturb '0.5'": (lambda: CaptionBias({1, 2}, {2}, 3, "0.5"), InvalidIndexSetError,
                        "'p_perturb' parameter of CaptionBias must be a float in the range [0, 1]"),
    "p_perturb True": (lambda: CaptionBias({1, 2}, {2}, 3, True), InvalidIndexSetError, "Got True"),
    "p_perturb 1.5": (lambda: CaptionBias({1, 2}, {2}, 3, 1.5), InvalidIndexSetError, "Got 1.5"),
    "encoding_sizes [2.7]": (lambda: _numerical(encoding_sizes=[2.7]), ValueError,
                             "'encoding_sizes' parameter of run_numerical"),
    "seeds < 0": (lambda: _numerical(seeds=-1), ValueError, "'seeds' parameter of run_numerical"),
    "a negative seed in a list": (lambda: _numerical(seeds=[0, -2]), ValueError, "Got [0, -2]"),
    "no settings": (lambda: _numerical(settings=[]), ValueError, "non-empty list of 'CaptionBias'"),
    "unknown probe": (lambda: _numerical(probes=("ridge",)), ValueError, "'linear', 'mlp'"),
    "device tpu": (lambda: _numerical(device="tpu"), ValueError, "'device' parameter of run_numerical"),
    "train seed < 0": (lambda: train_mmcl(_sim(), TINY, seed=-1, device="cpu"), ValueError,
                       "'seed' parameter of train_mmcl"),
    "train encoding size 0": (lambda: train_mmcl(_sim(), TINY, encoding_sizes=[0], device="cpu"),
                              ValueError, "'encoding_sizes'"),
    "render chunk -1": (lambda: render_scenes(sample_scene_latents(2), chunk=-1), ValueError,
                        "'chunk' parameter of render_scenes must be an int in the range [1, inf)"),
    "render chunk 0": (lambda: render_scenes(sample_scene_latents(2), chunk=0), ValueError, "Got 0"),
    "audit_verdict(1.7, -3)": (lambda: audit_verdict(1.7, -3), ValueError,
                               "'mention_rate' parameter of audit_verdict"),
    "audit_verdict(0.5, -3)": (lambda: audit_verdict(0.5, -3), ValueError, "'error_rate'"),
    "info_nce empty batch": (lambda: info_nce(torch.zeros(0, 3), torch.zeros(0, 3)), ValueError,
                             "batch of B >= 1 pairs"),
    "info_nce shapes differ": (lambda: info_nce(torch.zeros(4, 3), torch.zeros(4, 2)), ValueError,
                               "(4, 3) and (4, 2)"),
    "InvertibleMLP 0 layers": (lambda: InvertibleMLP(3, n_layers=0), ValueError,
                               "'n_layers' parameter of InvertibleMLP"),
    "InvertibleMLP dim 0": (lambda: InvertibleMLP(0), ValueError, "'dim'"),
    "LatentModel seed < 0": (lambda: LatentModel(2, 1, 1, seed=-3), ValueError, "'seed'"),
    "EnsembleMLP hidden 0": (lambda: EnsembleMLP([3], [2], [0]), ValueError, "'hidden' parameter"),
    "TextEncoder vocab 1": (lambda: TextEncoder(1, 3), ValueError, "'vocab_size'"),
    "images of the wrong size": (lambda: ImageEncoder(3, (4, 8), 8)(torch.zeros(2, 32, 32, 3)),
                                 ValueError, "64x64 pixels"),
    "all-empty captions": (
        lambda: train_pair_encoders(np.zeros((4, 64, 64, 3), np.uint8), ["", " ", ".", ""], 3, IT,
                                    device="cpu", progress=False),
        ValueError, "captions are empty"),
    "CaptionBias(None)": (lambda: CaptionBias(None), InvalidIndexSetError,
                          "selected must be a collection of 1-based integers such as {1, 2, 3}, got None"),
    "CaptionBias(3)": (lambda: CaptionBias(3), InvalidIndexSetError, "got 3 (int)"),
    "CaptionBias perturbed None": (lambda: CaptionBias({1, 2}, None), InvalidIndexSetError,
                                   "perturbed must be a collection of 1-based integers such as {1, 2, 3} "
                                   "(use () for none), got None"),
    "encode_captions([None])": (lambda: encode_captions([None], build_vocab(["a b"]), 4), ValueError,
                                "texts[0] is None (NoneType)"),
    "encode_captions(['a', 3])": (lambda: encode_captions(["a", 3], build_vocab(["a b"]), 4), ValueError,
                                  "texts[1] is 3 (int), and 1 of 2 are not strings"),
    "encode_captions of a string": (lambda: encode_captions("a b", build_vocab(["a b"]), 4), ValueError,
                                    "texts must be a sequence of caption strings (a list), got str"),
    "LatentModel(10**6)": (lambda: LatentModel(10**6), ValueError,
                           "The 'n_semantic' parameter of LatentModel must be an int in the range [1, 4096]. "
                           "Got 1000000 instead."),
    "LatentModel m_x 10**6": (lambda: LatentModel(2, 10**6, 1), ValueError, "'n_image' parameter"),
    "captions not strings": (
        lambda: train_pair_encoders(np.zeros((2, 64, 64, 3), np.uint8), [1, 2], 3, IT, device="cpu"),
        ValueError, "'captions'"),
}

CUDA_ERRORS = {
    "run_numerical on cuda": lambda: _numerical(device="cuda"),
    "train_mmcl on cuda": lambda: train_mmcl(_sim(), TINY, device="cuda"),
    "train_pair_encoders on cuda": lambda: train_pair_encoders(
        np.zeros((2, 64, 64, 3), np.uint8), ["a b", "c d"], 3, IT, device="cuda"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_argument_is_named_with_what_is_allowed(case):
    call, kind, phrase = ERRORS[case]
    with pytest.raises(kind) as err:
        call()
    assert phrase in str(err.value)


@NO_CUDA
@pytest.mark.parametrize("case", list(CUDA_ERRORS))
def test_cuda_without_cuda_is_a_clear_error(case):
    with pytest.raises(val.DeviceUnavailableError, match="sees no CUDA GPU"):
        CUDA_ERRORS[case]()


# Inputs that are fine: (call, check of the result)
ACCEPTED = {
    "theta as a NumPy integer": (lambda: theta_to_set(np.int64(11), 10), lambda r: r == {1, 2}),
    "rho as a NumPy integer": (lambda: CaptionBias.from_codes(np.int64(11), np.int32(2), 10).perturbed,
                               lambda r: r == {1}),
    "n_semantic as a NumPy integer": (lambda: CaptionBias([1], (), np.int64(3)).n_semantic,
                                      lambda r: r == 3 and type(r) is int),
    "steps as a NumPy integer": (lambda: SMOKE.with_overrides(steps=np.int64(7)).steps,
                                 lambda r: r == 7 and type(r) is int),
    "render size as a NumPy integer": (lambda: render_scenes(sample_scene_latents(2), size=np.int64(16)),
                                       lambda r: r.shape == (2, 16, 16, 3)),
    "never-mentioned attribute": (lambda: audit_verdict(0.0, float("nan")), lambda r: r == LIKELY_DISCARDED),
    # Why a batch of one pair is refused: InfoNCE has no negatives and is exactly 0.
    "info_nce of one pair is 0": (lambda: float(info_nce(torch.randn(1, 3), torch.randn(1, 3))),
                                  lambda r: r == pytest.approx(0.0, abs=1e-6)),
}


@pytest.mark.parametrize("case", list(ACCEPTED))
def test_good_input_gives_the_correct_result(case):
    call, check = ACCEPTED[case]
    assert check(call())


@pytest.mark.parametrize(
    "value,constraint,ok",
    [(np.int64(3), val.POSITIVE_INT, True), (np.bool_(True), val.POSITIVE_INT, False),
     ("3", val.POSITIVE_INT, False), (3, val.PROBABILITY, False), (1, val.PROBABILITY, True),
     (float("inf"), val.POSITIVE_REAL, False), (np.float32(0.5), val.PROBABILITY, True)],
)
def test_numbers_are_numbers(value, constraint, ok):
    assert constraint.is_satisfied_by(value) is ok


# ----------------------------------------------------------------------------------------------
# The command line: one `error:` line naming the flag, exit code 2, nothing run

CLI = {
    "--steps 0": (["--steps", "0"], "--steps must be an int in the range [1, inf); got 0."),
    "--steps -1": (["--steps", "-1"], "--steps must be an int in the range [1, inf); got -1."),
    "--batch-size 0": (["--batch-size", "0"], "--batch-size must be an int in the range [2, inf); got 0."),
    "--encoding-size 0": (["--encoding-size", "0"], "--encoding-size must be an int in the range [1, inf)"),
    "--p-perturb 2": (["--p-perturb", "2"], "--p-perturb must be a float in the range [0, 1]; got 2.0."),
    "--seed -1": (["--seed", "-1"], "--seed must be an int in the range [0, inf); got -1."),
    "--steps abc": (["--steps", "abc"], "argument --steps: invalid int value: 'abc'"),
    "--selected 1,5-3": (["--selected", "1,5-3"], "--selected 1,5-3: the range '5-3' runs backwards"),
    "--selected 1,12": (["--selected", "1,12"], "--selected holds [12], outside the allowed range 1..3"),
    "--device tpu": (["--device", "tpu"], "--device must be a device 'cpu', 'cuda', 'cuda:N' or 'mps'"),
}


@pytest.mark.parametrize("case", list(CLI))
def test_cli_reports_one_error_line(case, capsys):
    args, message = CLI[case]
    base = ["simulate", "--selected", "1", "--n-semantic", "3", "--quiet"]
    assert main(base + args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


@NO_CUDA
def test_cli_device_cuda_without_cuda(capsys):
    assert main(["simulate", "--selected", "1", "--device", "cuda"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --device cuda: PyTorch sees no CUDA GPU") and err.count("\n") == 1


def test_cli_checks_out_and_the_cache_folder_before_any_work(tmp_path, monkeypatch, capsys):
    base = ["simulate", "--selected", "1", "--n-semantic", "2", "--n-modality", "1", "--quiet"]
    assert main(base + ["--out", str(tmp_path / "no" / "r.csv")]) == 2
    assert "the folder" in capsys.readouterr().err
    existing = tmp_path / "r.csv"
    existing.write_text("keep me")
    assert main(base + ["--out", str(existing)]) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert existing.read_text() == "keep me"
    assert main(base + ["--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    blocker = tmp_path / "cachefile"
    blocker.write_text("")
    monkeypatch.setenv("MMCL_CACHE_DIR", str(blocker))
    assert main(base + ["--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "is a file, not a folder" in err and err.count("\n") == 1


# ----------------------------------------------------------------------------------------------
# The training cache: tensors only, the request must match, any failure is a rebuild


class _Payload:
    """A pickle whose loading would create ``marker`` (what a hostile cache file could do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant(path, data: bytes):
    """Put ``data`` where the weights file is, with a JSON record that vouches for it."""
    path.write_bytes(data)
    record_path = path.with_suffix(".json")
    record = json.loads(record_path.read_text())
    record["weights_sha256"] = storage.file_sha256(path)
    record_path.write_text(json.dumps(record))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One trained cache entry (weights + record), made once for the cache tests below."""
    root = tmp_path_factory.mktemp("trained")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MMCL_CACHE_DIR", str(root))
        run = _numerical()
        path = _path()
    assert run.config["from_cache"] == [False] and path.exists()
    return root, run


@pytest.fixture
def cache(trained, tmp_path, monkeypatch):
    """A fresh cache folder holding a copy of the trained entry; returns its weights path."""
    shutil.copytree(trained[0], tmp_path, dirs_exist_ok=True)
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    return _path()


def _request(settings=SETTINGS):
    return training_inputs(settings, False, 1, 1, TINY, 0, None, "cpu")


def test_crafted_pickle_in_the_cache_does_not_run(cache, trained, tmp_path):
    assert _numerical().config["from_cache"] == [True]  # the copied entry is valid
    marker = tmp_path / "payload-ran"
    _plant(cache, pickle.dumps(_Payload(marker)))
    with pytest.warns(storage.CacheWarning, match="unreadable"):
        run = _numerical()
    assert not marker.exists()
    assert run.config["from_cache"] == [False]  # rebuilt, the same run, and the file replaced:
    np.testing.assert_allclose(run.scores["score"], trained[1].scores["score"])
    assert _numerical().config["from_cache"] == [True]


@pytest.mark.parametrize(
    "damage,phrase",
    [
        (lambda p: _plant(p, pickle.dumps([1, 2, 3])), "unreadable"),
        (lambda p: _plant(p, _torch_bytes({"a": [1]})), "not a dict of tensors"),
        (lambda p: _plant(p, _torch_bytes([torch.zeros(2)])), "not a dict of tensors"),
        (lambda p: _plant(p, _torch_bytes({"history": torch.zeros(1)})), "does not fit"),
        (lambda p: _plant(p, p.read_bytes()[:100]), "unreadable"),
        (lambda p: _plant(p, b""), "unreadable"),
        (lambda p: p.write_bytes(p.read_bytes()[:-10]), "checksum does not match"),
        (lambda p: p.with_suffix(".json").write_text("{"), "missing or unreadable"),
        (lambda p: p.with_suffix(".json").unlink(), "missing or unreadable"),
    ],
    ids=["pickle of a list", "dict of non-tensors", "list of tensors", "wrong state dict",
         "truncated", "empty", "changed weights", "broken record", "no record"],
)
def test_damaged_cache_file_is_a_miss_that_warns(damage, phrase, cache):
    sim = _sim()
    assert load_cached_result(cache, _request(), sim, TINY, "cpu") is not None
    damage(cache)
    with pytest.warns(storage.CacheWarning, match=phrase):
        assert load_cached_result(cache, _request(), sim, TINY, "cpu") is None


def _torch_bytes(obj) -> bytes:
    import io

    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def test_file_copied_from_another_setting_is_not_used(cache):
    sim = MultimodalSimulation(LatentModel(2, 1, 1, seed=0), OTHER, seed=0)
    dst = _path(OTHER)
    shutil.copy(cache, dst)
    shutil.copy(cache.with_suffix(".json"), dst.with_suffix(".json"))
    with pytest.warns(storage.CacheWarning, match="made for other settings"):
        assert load_cached_result(dst, _request(OTHER), sim, TINY, "cpu") is None


def test_failed_cache_write_warns_and_keeps_the_result(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    _path().mkdir(parents=True)  # a folder where the file should go: writing fails
    with pytest.warns(storage.CacheWarning, match="could not write"):
        run = _numerical()
    assert len(run.scores) and run.config["from_cache"] == [False]


def test_cache_dir_that_is_a_file_turns_caching_off(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("MMCL_CACHE_DIR", str(blocker))
    with pytest.warns(storage.CacheWarning, match="is a file, not a folder"):
        run = _numerical()
    assert len(run.scores) and blocker.read_text() == ""


def test_cache_key_includes_the_source_digest(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    before = _path()
    monkeypatch.setattr(storage, "source_digest", lambda: "changed-code")
    assert _path() != before


# ----------------------------------------------------------------------------------------------
# The scene cache


@pytest.mark.parametrize(
    "damage",
    [lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]), lambda p: p.write_bytes(b""),
     lambda p: p.write_bytes(p.read_bytes()[:-30])],
    ids=["truncated", "empty", "end cut off"],
)
def test_damaged_scene_cache_is_rendered_again(damage, tmp_path):
    _, img = load_or_render(6, seed=1, size=16, cache_dir=tmp_path)
    (path,) = tmp_path.glob("scenes-*.npz")
    damage(path)
    with pytest.warns(storage.CacheWarning, match="unreadable"):
        _, again = load_or_render(6, seed=1, size=16, cache_dir=tmp_path)
    np.testing.assert_array_equal(img, again)
    _, third = load_or_render(6, seed=1, size=16, cache_dir=tmp_path)  # the file was replaced
    np.testing.assert_array_equal(img, third)


def _resave(path, change):
    """Rewrite a scene file with ``change`` applied to its arrays, its record (and checksum) kept."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    change(arrays)
    np.savez(path.with_suffix(""), **arrays)  # np.savez adds the .npz


@pytest.mark.parametrize(
    "change,phrase",
    [(lambda a: a["images"].fill(0), "do not match the checksum in its record"),
     (lambda a: a["shape"].fill(0), "do not match the checksum in its record"),
     (lambda a: a.pop("arrays_sha256"), "no checksum of its arrays")],
    ids=["images zeroed", "a latent changed", "no checksum (an older file)"],
)
def test_scene_arrays_changed_under_a_kept_record_are_rendered_again(change, phrase, tmp_path):
    _, img = load_or_render(6, seed=1, size=16, cache_dir=tmp_path)
    (path,) = tmp_path.glob("scenes-*.npz")
    _resave(path, change)
    with pytest.warns(storage.CacheWarning, match=phrase):
        _, again = load_or_render(6, seed=1, size=16, cache_dir=tmp_path)
    np.testing.assert_array_equal(img, again)
    _, third = load_or_render(6, seed=1, size=16, cache_dir=tmp_path)  # the file was replaced
    np.testing.assert_array_equal(img, third)


def test_scene_file_copied_from_another_setting_is_not_used(tmp_path):
    load_or_render(6, seed=1, size=16, cache_dir=tmp_path)
    (a,) = tmp_path.glob("scenes-*.npz")
    load_or_render(6, seed=2, size=16, cache_dir=tmp_path)
    (b,) = set(tmp_path.glob("scenes-*.npz")) - {a}
    shutil.copy(a, b)
    with pytest.warns(storage.CacheWarning, match="other settings"):
        lat, _ = load_or_render(6, seed=2, size=16, cache_dir=tmp_path)
    np.testing.assert_array_equal(lat.color, sample_scene_latents(6, seed=2).color)


# ----------------------------------------------------------------------------------------------
# MPI3D: verified after download and before reuse (small files made here; no network)

SIZES = (2, 2, 2, 2, 2, 2, 2)


@pytest.fixture
def small_mpi3d(tmp_path, monkeypatch):
    monkeypatch.delenv("MMCL_MPI3D_PATH", raising=False)
    monkeypatch.delenv("MMCL_MPI3D_SHA256", raising=False)
    path = tmp_path / mpi3d.MPI3D_FILENAME
    rng = np.random.default_rng(0)
    np.savez(path, images=rng.integers(0, 256, (int(np.prod(SIZES)), 64, 64, 3), dtype=np.uint8))
    return path


def test_corrupted_bytes_under_a_memory_map_are_detected(small_mpi3d):
    assert mpi3d.load_mpi3d_images(small_mpi3d, SIZES).shape[0] == 128
    assert small_mpi3d.with_name(small_mpi3d.name + ".sha256").is_file()
    with open(small_mpi3d, "r+b") as f:  # flip image bytes in the middle of the file
        f.seek(small_mpi3d.stat().st_size // 2)
        f.write(b"\xff\x00\xff\x00")
    with pytest.raises(mpi3d.MPI3DChecksumError, match="changed since it was first used"):
        mpi3d.load_mpi3d_images(small_mpi3d, SIZES)


def test_mpi3d_damaged_before_its_first_use_is_detected_by_its_crc(small_mpi3d):
    with open(small_mpi3d, "r+b") as f:  # damaged before any checked use: no digest recorded yet
        f.seek(small_mpi3d.stat().st_size // 2)
        f.write(b"\xff\x00\xff\x00")
    with pytest.raises(zipfile.BadZipFile, match="Bad CRC-32"):  # what np.load itself says
        np.load(small_mpi3d)["images"]
    with pytest.raises(mpi3d.MPI3DChecksumError, match="is damaged: its bytes do not match the CRC-32"):
        mpi3d.load_mpi3d_images(small_mpi3d, SIZES)
    assert not small_mpi3d.with_name(small_mpi3d.name + ".sha256").exists()  # no bad digest kept


def test_a_known_checksum_is_enforced(small_mpi3d):
    digest = storage.file_sha256(small_mpi3d)
    assert mpi3d.load_mpi3d_images(small_mpi3d, SIZES, sha256=f"sha256:{digest}").shape[0] == 128
    with pytest.raises(mpi3d.MPI3DChecksumError, match="expected 0000"):
        mpi3d.load_mpi3d_images(small_mpi3d, SIZES, sha256="0" * 64)


def test_truncated_mpi3d_file_is_reported(small_mpi3d):
    small_mpi3d.write_bytes(small_mpi3d.read_bytes()[:5000])
    with pytest.raises(mpi3d.MPI3DFormatError, match="not a readable .npz"):
        mpi3d.load_mpi3d_images(small_mpi3d, SIZES)
    with pytest.raises(mpi3d.MPI3DFormatError, match="Delete"):
        mpi3d.download_mpi3d(small_mpi3d, sizes=SIZES)


def test_truncated_npy_is_reported(tmp_path):
    path = tmp_path / "images.npy"
    np.save(path, np.zeros((int(np.prod(SIZES)), 64, 64, 3), np.uint8))
    path.write_bytes(path.read_bytes()[:-4096])
    with pytest.raises(mpi3d.MPI3DFormatError, match="may be truncated"):
        mpi3d.load_mpi3d_images(path, SIZES)


def test_download_is_verified_by_pooch(small_mpi3d, tmp_path, monkeypatch):
    import sys
    import types

    good = small_mpi3d.read_bytes()

    def download(id, output, quiet):  # noqa: A002 - gdown's own argument name
        with open(output, "wb") as f:
            f.write(good)
        return output

    monkeypatch.setitem(sys.modules, "gdown", types.SimpleNamespace(download=download))
    dest = tmp_path / "dl" / mpi3d.MPI3D_FILENAME
    digest = storage.file_sha256(small_mpi3d)
    assert mpi3d.download_mpi3d(dest, sha256=digest, sizes=SIZES) == dest
    assert storage.read_checksum_record(dest)["sha256"] == digest
    other = tmp_path / "dl2" / mpi3d.MPI3D_FILENAME
    with pytest.raises(mpi3d.MPI3DChecksumError, match="run download_mpi3d"):
        mpi3d.download_mpi3d(other, sha256="1" * 64, sizes=SIZES)
    assert not other.exists()


def test_an_npz_holding_objects_is_not_unpickled(tmp_path):
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("__config__.npy", pickle.dumps(_Payload(tmp_path / "ran")))
    with pytest.warns(storage.CacheWarning):
        assert storage.load_arrays(path, {}) is None
    assert not (tmp_path / "ran").exists()


# ----------------------------------------------------------------------------------------------
# Image-text training that does not learn: a loss frozen at chance (ln B) is reported

LN64 = float(np.log(64))


@pytest.mark.parametrize(
    "history,align,stuck",
    [(np.full(40, LN64), {}, True),
     (np.r_[6.0, np.full(39, LN64)], {}, True),  # the first steps may move
     (np.r_[np.full(16, LN64), np.full(24, LN64 + 50)], {"align_weight": 6.0, "align_from": 0.4}, True),
     (np.r_[np.full(16, LN64 - 0.2), np.full(24, 53.9)], {"align_weight": 6.0, "align_from": 0.4}, True),
     (np.linspace(LN64, 2.0, 40), {}, False),
     (np.full(40, 1.0), {}, False),  # flat, but far below chance: it learned
     (np.r_[np.full(39, LN64), np.nan], {}, False),
     (np.full(5, LN64), {}, False)],  # too short to tell
    ids=["flat at ln B", "flat after a first step", "ln B, then the late pull's level",
         "masked negatives", "falling", "flat below chance", "not finite", "5 steps"],
)
def test_loss_stuck_at_chance(history, align, stuck):
    profile = IT.with_overrides(steps=40, align_weight=align.get("align_weight", 1.0),
                                align_from=align.get("align_from", 0.0))
    reason = loss_stuck_at_chance(history, 64, profile)
    assert (reason is not None) is stuck
    if stuck:
        assert "the encoders did not learn" in reason and "ln B = 4.159 for B = 64" in reason


def test_training_at_a_frozen_learning_rate_warns_not_learning():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (128, 64, 64, 3), dtype=np.uint8)
    statement = rng.integers(0, 4, 128)
    captions = [f"a {('red', 'blue', 'green', 'grey')[i]} thing" for i in statement]
    frozen = IT.with_overrides(lr=1e3, steps=20, batch_size=64)
    with pytest.warns(NotLearningWarning, match=r"did not learn; try a lower learning rate \(now 1000.0\)"):
        model = train_pair_encoders(images, captions, 3, frozen, statements=statement, device="cpu",
                                    progress=False)
    assert len(model.history) == 20
