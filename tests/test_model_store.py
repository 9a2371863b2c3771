"""The one model store: keys from every input, safe files, reuse across calls and studies."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch

from mmcl_helpers.cli import main
from mmcl_helpers.core import model_store, storage
from mmcl_helpers.core.profiles import image_text_profile
from mmcl_helpers.image_text.pair_training import KIND, train_pair_encoders

SCENES = ["scenes", "--selected", "shape,x_pos", "--perturbed", "x_pos", "--profile", "smoke", "--quiet"]


def test_input_digest_sees_dtype_shape_values_and_order():
    a = np.arange(6, dtype=np.int64)
    digests = {
        model_store.input_digest(a),
        model_store.input_digest(a.astype(np.int32)),
        model_store.input_digest(a.reshape(2, 3)),
        model_store.input_digest(a[::-1].copy()),
        model_store.input_digest(["a", "b"]),
        model_store.input_digest(["b", "a"]),
        model_store.input_digest({"x": 1, "y": 2}),
        model_store.input_digest({"x": 2, "y": 1}),
    }
    assert len(digests) == 8
    assert model_store.input_digest(torch.arange(6)) == model_store.input_digest(a)
    assert model_store.input_digest({"y": 2, "x": 1}) == model_store.input_digest({"x": 1, "y": 2})


def test_fetch_or_train_trains_once_and_logs_only_training(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    calls = []

    def train():
        calls.append(1)
        return torch.arange(4.0)

    def args():
        return ("demo", {"n": 4}, train, lambda t: ({"w": t}, {"note": "x"}),
                lambda tensors, meta: tensors["w"])

    with model_store.training_log() as log:
        first, hit1 = model_store.fetch_or_train(*args(), plan={"models": 1, "steps": 7})
        second, hit2 = model_store.fetch_or_train(*args(), plan={"models": 1, "steps": 7})
    assert (hit1, hit2) == (False, True) and len(calls) == 1
    assert torch.equal(first, second)
    assert log == [{"kind": "demo", "models": 1, "steps": 7}]
    assert model_store.model_path("demo", {"n": 4}).parent == tmp_path / "demo"
    assert model_store.model_path("demo", {"n": 4}) != model_store.model_path("demo", {"n": 5})
    # MMCL_CACHE=0: always trained, nothing written.
    monkeypatch.setenv("MMCL_CACHE", "0")
    model_store.fetch_or_train("other", {"n": 4}, train, lambda t: ({"w": t}, {}), lambda t, m: t["w"])
    assert len(calls) == 2 and not (tmp_path / "other").exists()


def test_model_file_round_trip_and_damage(tmp_path):
    path = tmp_path / "job" / "encoders.pt"
    assert model_store.save_model_file(path, {"a": torch.ones(3)}, {"job": {"seed": 1}, "p": tmp_path})
    tensors, record = model_store.read_model_file(path)
    assert torch.equal(tensors["a"], torch.ones(3)) and record["job"] == {"seed": 1}
    assert record["p"] == str(tmp_path)
    path.write_bytes(path.read_bytes()[:-4])
    with pytest.raises(ValueError, match="missing, damaged"):
        model_store.read_model_file(path)


def _pair_model(**kw):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (16, 64, 64, 3), dtype=np.uint8)
    captions = [f"a {w} thing" for w in rng.choice(["red", "blue", "green"], 16)]
    prof = image_text_profile("smoke").with_overrides(steps=3, batch_size=8, false_negatives="keep",
                                                     group_fraction=0.0, group_warmup=0.0)
    return train_pair_encoders(images, captions, 4, prof, seed=0, device="cpu", progress=False, **kw)


def test_image_text_models_are_stored_and_a_damaged_file_is_a_miss(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path))
    with model_store.training_log() as log:
        first = _pair_model()
        second = _pair_model()
    assert [e["kind"] for e in log] == [KIND]
    assert first.store_key == second.store_key and first.vocab == second.vocab
    for a, b in zip(first.f_x.state_dict().values(), second.f_x.state_dict().values()):
        assert torch.equal(a, b)
    np.testing.assert_array_equal(first.history, second.history)
    (path,) = (tmp_path / KIND).glob("*.pt")
    path.write_bytes(b"not a checkpoint")
    with pytest.warns(storage.CacheWarning, match="unreadable|checksum"):
        with model_store.training_log() as log:
            third = _pair_model()
    assert len(log) == 1 and np.array_equal(third.history, first.history)
    with warnings.catch_warnings():
        warnings.simplefilter("error", storage.CacheWarning)
        _pair_model()  # the damaged file was replaced by a good one


def test_second_identical_scenes_call_reuses_the_models(tmp_path, monkeypatch):
    """The same ``scenes`` call twice in one cache folder: >= 5x faster, the same bytes."""
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path / "cache"))
    seconds, outs = [], []
    for i in range(2):
        out = tmp_path / f"run{i}.csv"
        start = time.perf_counter()
        with model_store.training_log() as log:
            assert main([*SCENES, "--out", str(out)]) == 0
        seconds.append(time.perf_counter() - start)
        outs.append(out.read_bytes())
        assert len(log) == (2 if i == 0 else 0)  # the pair of encoders and its probes, then nothing
    assert outs[0] == outs[1]
    assert seconds[1] * 5 <= seconds[0], seconds


def test_scenes_without_the_store_trains_again(tmp_path, monkeypatch):
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MMCL_CACHE", "0")
    with model_store.training_log() as log:
        assert main([*SCENES, "--out", str(tmp_path / "r.csv")]) == 0
    assert [e["kind"] for e in log] == [KIND, "probes"]
    assert not (tmp_path / "cache" / KIND).exists()
