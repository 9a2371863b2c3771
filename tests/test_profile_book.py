"""The book profiler (book_support/profile_book.py): attribution of timed blocks to cells, and a run."""

import json

import nbformat
import pytest

from mmcl_helpers.book_support.profile_book import attribute, book_notebooks, main


def _ev(category, start, end, pid=1):
    return {"category": category, "start": start, "end": end, "pid": pid}


def test_blocks_are_attributed_to_the_cell_that_contains_them():
    cells = [(0.0, 10.0), (10.0, 20.0)]
    events = [_ev("training", 1, 4), _ev("probing", 5, 6), _ev("data", 9, 12), _ev("training", 15, 30)]
    a, b = attribute(cells, events)
    assert a == pytest.approx({"total": 10, "training": 3, "probing": 1, "data": 1, "other": 5})
    # A block crossing a cell boundary counts in each cell only for its own part.
    assert b == pytest.approx({"total": 10, "training": 5, "probing": 0, "data": 2, "other": 3})


def test_overlapping_blocks_count_each_moment_once():
    # Blocks of two processes overlap: the one that started first owns the shared time.
    (row,) = attribute([(0.0, 10.0)], [_ev("training", 0, 10), _ev("data", 2, 5, pid=2)])
    assert row == pytest.approx({"total": 10, "training": 10, "probing": 0, "data": 0, "other": 0})
    (row,) = attribute([(0.0, 10.0)], [_ev("training", 3, 8, pid=2), _ev("data", 0, 5)])
    assert row == pytest.approx({"total": 10, "training": 3, "probing": 0, "data": 5, "other": 2})
    # Many overlapping blocks never push "other" below zero.
    events = [_ev(c, s, s + 4) for s in range(10) for c in ("training", "probing", "data")]
    (row,) = attribute([(2.0, 7.0)], events)
    assert row["other"] == 0 and sum(row[c] for c in ("training", "probing", "data")) == pytest.approx(5)


def test_a_cell_without_blocks_is_all_other():
    assert attribute([(5.0, 7.5)], []) == [
        {"total": 2.5, "training": 0.0, "probing": 0.0, "data": 0.0, "other": 2.5}]


def test_the_book_notebooks_come_in_the_order_of_the_toc():
    names = [p.stem for p in book_notebooks(".")]
    assert names.index("01_latent_model") < names.index("02_selection_bias") < names.index("06_practice")
    assert len(names) == len(set(names))


def _notebook(path, *sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# A chapter")]
    nb.cells += [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def test_the_command_profiles_notebooks_and_reports_a_failing_cell(tmp_path, capsys):
    (tmp_path / "book").mkdir()
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n"
                                       "  - file: book/tiny\n  - file: book/broken\n  - file: book/dies\n")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    _notebook(tmp_path / "book" / "tiny.ipynb",
              "import time\nfrom mmcl_helpers.core.timing import timed",
              "with timed('training'):\n    time.sleep(0.3)\nx = 1")
    _notebook(tmp_path / "book" / "broken.ipynb", "y = 2", "raise RuntimeError('this cell is broken')",
              "z = 3")
    _notebook(tmp_path / "book" / "dies.ipynb", "import os\nos._exit(3)")
    out = tmp_path / "profile.json"
    status = main(["--root", str(tmp_path), "--profile", "smoke", "--json", str(out)])
    printed = capsys.readouterr()
    assert status == 1
    table = json.loads(out.read_text())
    assert table["profile"] == "smoke"
    tiny, broken, dies = table["chapters"]
    assert tiny["name"] == "tiny" and tiny["error"] is None
    assert tiny["split"]["training"] > 0 and tiny["split"]["probing"] == tiny["split"]["data"] == 0
    # Cells are numbered among all cells (the markdown cell is 0); the timed block is in cell 2.
    assert [c["index"] for c in tiny["cells"]] == [1, 2]
    assert tiny["cells"][0]["split"]["training"] == 0 and tiny["cells"][1]["split"]["training"] > 0
    for c in tiny["cells"]:
        assert sum(c["split"].values()) == pytest.approx(c["seconds"])
    assert sum(tiny["split"].values()) == pytest.approx(tiny["seconds"])
    assert tiny["cells"][1]["first_line"] == "with timed('training'):"
    # The failing cell ends its notebook, and is named with its error.
    assert broken["error"]["cell"] == 2 and "this cell is broken" in broken["error"]["error"]
    assert [c["index"] for c in broken["cells"]] == [1, 2]
    assert "FAILED" in printed.out and "broken.ipynb: cell 2" in printed.out
    assert "RuntimeError" in printed.out and "this cell is broken" in printed.out
    # A kernel that dies in a cell is a failure of that cell.
    assert dies["error"]["cell"] == 1 and "DeadKernelError" in dies["error"]["error"]
    assert "2 of 3 notebooks failed" in printed.err and "dies.ipynb: cell 1" in printed.err
    line = next(s for s in printed.out.splitlines() if s.startswith("tiny "))
    assert float(line.split()[2]) > 0  # the training column of the chapter table


def test_unknown_names_and_profiles_are_refused_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--only", "01_latent_model", "no_such_chapter"])
    assert exc.value.code == 2 and "no notebook named 'no_such_chapter'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--profile", "fast", "--only", "01_latent_model"])
    assert exc.value.code == 2 and "--profile must be one of" in capsys.readouterr().err


def test_make_test_executes_the_notebooks_through_the_profiler_at_smoke():
    import re
    from pathlib import Path

    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    notebooks = makefile.split("\nnotebooks: ", 1)[1].split("\n\n", 1)[0]
    assert "-m mmcl_helpers.book_support.profile_book --profile smoke" in notebooks
    assert "notebooks" in re.search(r"^test: (.*)$", makefile, flags=re.M).group(1).split()
    target = makefile.split("\nprofile-book: ", 1)[1].split("\n\n", 1)[0]
    assert "--profile $(PROFILE_BOOK_PROFILE)" in target and "$(PROFILE_BOOK_FLAGS)" in target
    assert re.search(r"^PROFILE_BOOK_PROFILE \?= \$\(or \$\(MMCL_PROFILE\),smoke\)$", makefile, flags=re.M)
    phony = makefile.split("\n.PHONY:", 1)[1].split("\n\n", 1)[0]
    assert "profile-book" in phony.split()
