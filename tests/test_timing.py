"""The timing recorder (core/timing.py): outermost blocks only, nothing when unset, clear errors."""

import json
import os
import threading

import pytest

from mmcl_helpers.core.timing import CATEGORIES, TIMINGS_ENV, read_timings, recording, timed


def test_records_one_line_per_outermost_block(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    monkeypatch.setenv(TIMINGS_ENV, str(path))
    with timed("training"):
        with timed("data"):  # nested: its time is the training block's
            with timed("probing"):
                pass
    with timed("probing"):
        pass
    events = read_timings(path)
    assert [e["category"] for e in events] == ["training", "probing"]
    for e in events:
        assert e["end"] >= e["start"] > 0 and set(e) == {"category", "start", "end", "pid"}
    assert events[0]["end"] <= events[1]["start"]


def test_decorator_nests_like_the_context_manager(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    monkeypatch.setenv(TIMINGS_ENV, str(path))

    @timed("data")
    def sample(n):
        """Draw n things."""
        return list(range(n))

    @timed("probing")
    def probe():
        return sample(3)  # a probe that samples: all of it is probing

    assert probe() == [0, 1, 2] and sample(2) == [0, 1]
    assert sample.__doc__ == "Draw n things." and sample.__name__ == "sample"
    assert [e["category"] for e in read_timings(path)] == ["probing", "data"]


def test_recursion_and_exceptions_keep_the_depth_right(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    monkeypatch.setenv(TIMINGS_ENV, str(path))

    @timed("training")
    def countdown(k):
        if k == 0:
            raise RuntimeError("bottom")
        return countdown(k - 1)

    with pytest.raises(RuntimeError, match="bottom"):
        countdown(4)
    with timed("data"):
        pass
    # The failed (recursive) call is one block; the depth went back to 0, so "data" is recorded.
    assert [e["category"] for e in read_timings(path)] == ["training", "data"]


def test_nothing_is_written_when_the_variable_is_unset(tmp_path, monkeypatch):
    monkeypatch.delenv(TIMINGS_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with timed("training"):
        pass
    assert list(tmp_path.iterdir()) == []
    # A block that started unrecorded stays unrecorded, even if the variable appears meanwhile.
    path = tmp_path / "t.jsonl"
    with timed("training"):
        monkeypatch.setenv(TIMINGS_ENV, str(path))
    assert not path.exists()


def test_threads_count_their_own_outermost_blocks(tmp_path, monkeypatch):
    path = tmp_path / "t.jsonl"
    monkeypatch.setenv(TIMINGS_ENV, str(path))

    def work():
        with timed("data"):
            pass

    with timed("training"):
        thread = threading.Thread(target=work)
        thread.start()
        thread.join()
    assert sorted(e["category"] for e in read_timings(path)) == ["data", "training"]


def test_a_bad_category_names_the_argument_and_the_choices():
    with pytest.raises(ValueError, match=r"category must be one of training, probing, data; got 'train'"):
        timed("train")
    assert CATEGORIES == ("training", "probing", "data")


def test_recording_sets_and_restores_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(TIMINGS_ENV, "before")
    with recording(tmp_path / "r.jsonl") as path:
        assert os.environ[TIMINGS_ENV] == str(path)
        with timed("probing"):
            pass
    assert os.environ[TIMINGS_ENV] == "before"
    assert [e["category"] for e in read_timings(path)] == ["probing"]


def test_read_timings_rejects_damaged_lines(tmp_path):
    assert read_timings(tmp_path / "missing.jsonl") == []
    path = tmp_path / "t.jsonl"
    good = json.dumps({"category": "data", "start": 1.0, "end": 2.0, "pid": 1}) + "\n"
    # A last line cut off mid-write (no newline) is left out; a damaged complete line raises.
    path.write_text(good + '{"categ')
    assert [e["category"] for e in read_timings(path)] == ["data"]
    path.write_text(good + '{"categ\n' + good)
    with pytest.raises(ValueError, match=r"t\.jsonl, line 2: not a timing record"):
        read_timings(path)
    path.write_text(json.dumps({"category": "sleep", "start": 1.0, "end": 2.0, "pid": 1}) + "\n")
    with pytest.raises(ValueError, match="line 1: unknown category 'sleep'"):
        read_timings(path)


def test_the_package_marks_its_training_probing_and_data_steps(tmp_path, monkeypatch):
    import torch

    from mmcl_helpers.datasets.scenes import load_or_render
    from mmcl_helpers.numerical.probes import mlp_r2
    from mmcl_helpers.numerical.training import adam_loop

    path = tmp_path / "t.jsonl"
    monkeypatch.setenv(TIMINGS_ENV, str(path))
    w = torch.nn.Parameter(torch.ones(3))
    adam_loop([w], lambda s: w.pow(2).sum(), steps=3, lr=0.1, warmup=0.0, grad_clip=None, clip="none",
              progress=False)
    z, y = torch.randn(40, 2), torch.randn(40, 1)
    # The MLP probe trains with adam_loop: one probing block, no training block inside it.
    mlp_r2(z[:30], y[:30], z[30:], y[30:], [slice(0, 1)], steps=3, batch_size=8)
    load_or_render(4, seed=0, size=16, cache_dir=tmp_path / "scenes")
    assert [e["category"] for e in read_timings(path)] == ["training", "probing", "data"]
