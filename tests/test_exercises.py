"""The book's problem sets and their checkers (mmcl_helpers.exercises, issue 32).

Reference answers here are computed by the test from first principles or read from the package's
own constants (never pasted from a chapter), and each checker must accept them, reject a typical
wrong answer with its specific hint, and refuse a malformed answer with a clear error.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from mmcl_helpers import exercises as ex
from mmcl_helpers.exercises import EXERCISES, TIERS, AnswerFormatError, check

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("0[1-6]_*.ipynb"))


def _r2(cov, S, i):
    """Best-predictor R² of s_i from s_S for Gaussian s (1-based S, i), written out by the test."""
    S = [j - 1 for j in sorted(S)]
    c = np.asarray(cov)
    return float(c[i - 1, S] @ np.linalg.solve(c[np.ix_(S, S)], c[S, i - 1]) / c[i - 1, i - 1])


def _references():
    from mmcl_helpers.datasets.scenes import DISCRETE_FACTORS, PARENT_R2

    k = DISCRETE_FACTORS
    return {
        "ex-01-rare-perturbation": (0.25, 0.25 ** 2),
        "ex-01-codes": (2 ** 3 - 1, 2 ** 2 - 1, 6),
        "ex-01-pairs": 3 ** 10 - 2 ** 10,
        "ex-02-derive": _r2,
        "ex-03-swap": {1, 2, 3, 4, 5, 6},
        "ex-04-square": 1 - math.log(2),
        "ex-04-corollary": 2 ** 3,
        "ex-05-parents": (0.0, PARENT_R2[("color", ("x_pos",))], PARENT_R2[("color", ("x_pos", "y_pos"))]),
        "ex-06-wrong": (0.3 * (k["y_pos"] - 1) / k["y_pos"], 0.6 * (k["shape"] - 1) / k["shape"]),
    }


CHECKABLE = [e.id for e in EXERCISES if e.checkable]


def test_the_problem_sets_meet_the_course_plan():
    ids = [e.id for e in EXERCISES]
    assert len(ids) == len(set(ids))
    assert all(e.tier in TIERS and 1 <= e.chapter <= 6 and e.minutes > 0 for e in EXERCISES)
    for chapter in range(1, 7):
        tiers = [e.tier for e in EXERCISES if e.chapter == chapter]
        assert len(tiers) >= 3, chapter
        assert any(e.checkable for e in EXERCISES if e.chapter == chapter), chapter
        if chapter in (2, 3, 4):
            assert "★★★" in tiers, chapter
        if chapter in (5, 6):
            assert "project" in tiers, chapter
    assert len(CHECKABLE) >= 6
    assert set(CHECKABLE) == set(_references())


def _cells(path):
    cells = json.loads(path.read_text())["cells"]
    return cells, ["".join(c["source"]) for c in cells]


def test_the_chapters_hold_exactly_the_listed_exercises_with_their_tier_in_the_title():
    for path in CHAPTERS:
        chapter = int(path.name[:2])
        cells, text = _cells(path)
        md = "\n".join(t for t, c in zip(text, cells) if c["cell_type"] == "markdown")
        found = re.findall(r"```\{exercise\} ([^\n]*)\n:label: (\S+)", md)
        listed = [(e.heading, e.id) for e in EXERCISES if e.chapter == chapter]
        assert sorted(found, key=lambda t: t[1]) == sorted(listed, key=lambda t: t[1]), path.name


def test_each_checkable_exercise_shows_the_student_call_outside_its_solution():
    for path in CHAPTERS:
        chapter = int(path.name[:2])
        cells, text = _cells(path)
        inside, student_calls = False, set()
        for cell, source in zip(cells, text):
            if "```{solution-start}" in source:
                inside = True
            elif "```{solution-end}" in source:
                inside = False
            elif cell["cell_type"] == "code" and not inside:
                student_calls |= set(re.findall(r'check\("([\w-]+)", my_answer\)', source))
                if "my_answer" in source:
                    assert "my_answer = ...\n" in source, "the student's slot holds the placeholder ..."
        assert student_calls == {e.id for e in EXERCISES if e.chapter == chapter and e.checkable}, path.name


def test_every_chapter_ends_with_what_to_try_next_calls():
    for path in CHAPTERS:
        cells, text = _cells(path)
        assert cells[-1]["id"] == "try-next" and text[-1].startswith("## What to try next"), path.name
        calls = re.findall(r"`([^`]*\w\([^`]*\)|python -m mmcl_helpers [^`]+)`", text[-1])
        assert len(calls) >= 2, path.name


@pytest.mark.parametrize("exercise_id", CHECKABLE)
def test_the_reference_answer_passes(exercise_id, capsys):
    result = check(exercise_id, _references()[exercise_id])
    assert result and result.correct, result.message
    assert capsys.readouterr().out.strip() == f"{exercise_id}: right."


def test_answers_are_compared_tolerantly():
    assert check("ex-01-rare-perturbation", np.array([0.248, 0.061]), quiet=True)
    assert check("ex-01-rare-perturbation", {"s4": 0.25, "both": 0.0625}, quiet=True)
    assert check("ex-01-codes", [7.0, 3, np.int64(6)], quiet=True)
    assert check("ex-03-swap", ["s6", "s5", "s4", 3, 2, 1], quiet=True)
    assert check("ex-04-square", np.float32(0.31), quiet=True)
    assert check("ex-05-parents", [0.01, 0.39, 0.81], quiet=True)
    assert not check("ex-05-parents", [0.01, 0.45, 0.81], quiet=True)


WRONG = [
    ("ex-01-rare-perturbation", (0.75, 0.0625), "not that it reports it"),
    ("ex-01-rare-perturbation", (0.25, 0.25), "two independent events"),
    ("ex-01-rare-perturbation", (0.25, 0.5), "*or*"),
    ("ex-01-codes", (8, 3, 6), "non-empty"),
    ("ex-01-codes", (7, 4, 6), "*proper*"),
    ("ex-01-codes", (7, 3, 4), "singletons"),
    ("ex-01-pairs", 3 ** 10, "*proper*"),
    ("ex-01-pairs", (2 ** 10 - 1) ** 2, "not over all subsets"),
    ("ex-02-derive", lambda cov, S, i: 1 - _r2(cov, S, i), "unexplained"),
    ("ex-02-derive", lambda cov, S, i: float(sum(
        cov[i - 1, j - 1] ** 2 / (cov[i - 1, i - 1] * cov[j - 1, j - 1]) for j in S)), "invert Σ_SS"),
    ("ex-02-derive", lambda cov, S, i: _r2(cov, S, i) * cov[i - 1, i - 1], "Var(s_i)"),
    ("ex-02-derive", lambda cov, S, i: 1 / 0, "ZeroDivisionError"),
    ("ex-03-swap", {1, 2, 3, 4, 5, 6, 7, 8}, "misreported at random"),
    ("ex-03-swap", {3, 4, 5, 6}, "whatever its index"),
    ("ex-04-square", math.log(2) - 1, "*subtracts*"),
    ("ex-04-square", 0.0, "uniform"),
    ("ex-04-corollary", 7, "perturbing all three"),
    ("ex-04-corollary", 3, "independently"),
    ("ex-05-parents", (0.5, 0.4, 0.8), "no cause of the colour"),
    ("ex-05-parents", (0.0, 0.8, 0.8), "each position explains a share"),
    ("ex-06-wrong", (0.3, 0.6), "the true one included"),
    ("ex-06-wrong", (0.1, 0.6 / 7), "happen to be right"),
]


@pytest.mark.parametrize("exercise_id, answer, hint", WRONG)
def test_a_typical_wrong_answer_fails_with_its_hint(exercise_id, answer, hint, capsys):
    result = check(exercise_id, answer)
    printed = capsys.readouterr().out
    assert not result and hint in result.message and result.message in printed
    assert "not yet. Hint:" in printed
    # never the solution itself
    reference = _references()[exercise_id]
    if not callable(reference) and not isinstance(reference, set):
        for value in np.atleast_1d(np.asarray(reference, dtype=float)):
            if value != int(value):
                assert f"{value:.2f}" not in printed and f"{value:.3g}" not in printed
    if exercise_id == "ex-01-pairs":
        assert "58025" not in printed and "58,025" not in printed


MALFORMED = [
    ("ex-01-rare-perturbation", "0.25, 0.0625"),
    ("ex-01-rare-perturbation", (0.25,)),
    ("ex-01-rare-perturbation", {"s4": 0.25}),
    ("ex-01-codes", (7, 3, None)),
    ("ex-01-pairs", 58025.5),
    ("ex-01-pairs", "58025"),
    ("ex-02-derive", 0.42),
    ("ex-03-swap", "s1, s2"),
    ("ex-03-swap", {0, 1}),
    ("ex-03-swap", {True, 2}),
    ("ex-04-square", [0.3]),
    ("ex-04-square", float("nan")),
    ("ex-04-corollary", True),
    ("ex-05-parents", np.zeros((2, 2))),
    ("ex-06-wrong", ("0.2", 0.5)),
]


@pytest.mark.parametrize("exercise_id, answer", MALFORMED)
def test_a_malformed_answer_gets_a_clear_error_naming_the_argument(exercise_id, answer):
    with pytest.raises(AnswerFormatError) as err:
        check(exercise_id, answer)
    message = str(err.value)
    assert f"check({exercise_id!r}, answer): answer must be" in message
    assert type(answer).__name__ in message


def test_the_placeholder_is_not_an_answer_yet(capsys):
    result = check("ex-01-pairs", ...)
    assert not result and "no answer yet" in capsys.readouterr().out
    assert ex.answer_form("ex-01-pairs") in result.message


def test_bad_exercise_ids_are_refused_with_what_is_allowed():
    with pytest.raises(ValueError, match="exercise_id must be the label of a checkable exercise.*ex-01-pai"):
        check("ex-99-nothing", 1)
    with pytest.raises(ValueError, match="exercise_id must be"):
        check(3, 1)
    with pytest.raises(ValueError, match="has no checker"):
        check("ex-02-bound", 0)


def test_the_exercise_table_lists_every_exercise():
    table = ex.exercise_table()
    assert list(table["id"]) == [e.id for e in EXERCISES]
    assert set(table.columns) == {"id", "chapter", "tier", "kind", "title", "minutes", "checkable"}
    assert list(ex.exercise_table(2)["chapter"].unique()) == [2]
    with pytest.raises(ValueError, match="chapter must be"):
        ex.exercise_table(7)
