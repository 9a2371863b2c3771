"""The book's exercises and their answer checkers (the problem sets of chapters 1-6).

Every exercise of the book is listed in :data:`EXERCISES`, with its chapter, tier and title:

- ``★`` compute: change a knob, predict, run;
- ``★★`` derive: a short derivation, then a run that checks it;
- ``★★★`` prove, or find the flaw in an argument;
- ``project``: open-ended, no single answer (a worked example is one way to do it).

An exercise whose answer is a number, a set, a short tuple or a function has a checker. A student
calls :func:`check` on their own answer::

    from mmcl_helpers.exercises import check
    check("ex-01-pairs", 58000)    # prints "not yet" and a hint, never the solution

The comparison is tolerant (numbers to an absolute tolerance that allows an answer read off a
run, sets in any order and of ``3`` or ``"s3"``); a wrong answer gets a hint that names what is
likely wrong; an answer of the wrong form raises :class:`AnswerFormatError`, which names the
argument and the form expected. The placeholder ``...`` that the chapters' checker cells hold is
"no answer yet", not an error. The reference answers are computed here from the package (never
pasted into a chapter), so the book's solutions and these checkers cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["TIERS", "Exercise", "EXERCISES", "CheckResult", "AnswerFormatError", "check",
           "exercise_table", "answer_form"]

#: Tier -> what it asks for; the tier mark starts the exercise's title in the book.
TIERS: dict[str, str] = {
    "★": "compute",
    "★★": "derive",
    "★★★": "prove or find the flaw",
    "project": "open-ended project",
}


@dataclass(frozen=True)
class Exercise:
    """One exercise of the book.

    Attributes:
        id: the exercise's label in the chapter (``ex-CC-name``).
        chapter: 1..6.
        tier: a key of :data:`TIERS`.
        title: the title without its tier mark.
        minutes: estimated student time (reading the question, working, running the solution).
    """

    id: str
    chapter: int
    tier: str
    title: str
    minutes: int

    @property
    def checkable(self) -> bool:
        """Whether :func:`check` has a checker for this exercise."""
        return self.id in _CHECKERS

    @property
    def heading(self) -> str:
        """The title as the book prints it, tier mark first (``*Project*: ...`` for a project)."""
        return f"*Project*: {self.title}" if self.tier == "project" else f"{self.tier} {self.title}"


#: Every exercise of chapters 1-6, in book order (tests/test_exercises.py checks the chapters agree).
EXERCISES: tuple[Exercise, ...] = (
    Exercise("ex-01-rare-perturbation", 1, "★", "A rarer perturbation", 10),
    Exercise("ex-01-codes", 1, "★★", "Counting biases", 20),
    Exercise("ex-01-pairs", 1, "★★", "How many caption models?", 20),
    Exercise("ex-02-euclidean", 2, "★", "Euclidean similarity", 20),
    Exercise("ex-02-wide", 2, "★", "More output dimensions", 20),
    Exercise("ex-02-derive", 2, "★★", "How much of an omitted factor may be predictable", 30),
    Exercise("ex-02-bound", 2, "★★★", "Eq. (2) is bounded below", 45),
    Exercise("ex-03-rate", 3, "★★", "How often must a caption be wrong?", 30),
    Exercise("ex-03-swap", 3, "★", "Perturb other factors", 15),
    Exercise("ex-03-flaw", 3, "★★★", "Find the flaw: a rarely wrong caption is worth reading", 40),
    Exercise("ex-04-square", 4, "★★", "A smooth bijection that still costs", 30),
    Exercise("ex-04-darmois", 4, "★★", "The Darmois construction by hand", 30),
    Exercise("ex-04-rare", 4, "★", "A rarer perturbation in Step 4", 15),
    Exercise("ex-04-corollary", 4, "★★★", "Corollary 4.2 from Theorem 4.1", 45),
    Exercise("ex-05-parents", 5, "★★", "Causes, not the colour", 20),
    Exercise("ex-05-length", 5, "★★", "The length channel with more captioned factors", 25),
    Exercise("ex-05-project", 5, "project", "What the encoder keeps of the spotlight", 90),
    Exercise("ex-06-audit", 6, "★", "Audit a policy of your own", 20),
    Exercise("ex-06-half", 6, "★★", "Half the captions, or half the mentions wrong", 30),
    Exercise("ex-06-wrong", 6, "★", "How often is a resampled mention wrong?", 10),
    Exercise("ex-06-project", 6, "project", "Negate or embrace a nuisance factor of your choice", 120),
)


class AnswerFormatError(TypeError):
    """An answer of the wrong form (not a wrong answer): names the argument and the form expected."""


@dataclass(frozen=True)
class CheckResult:
    """What :func:`check` found: ``correct`` (also the truth value) and the ``message`` it printed."""

    exercise_id: str
    correct: bool
    message: str

    def __bool__(self) -> bool:
        return self.correct

    def _ipython_display_(self) -> None:
        """Nothing more to show in a notebook: :func:`check` has printed the message."""


@dataclass(frozen=True)
class _Checker:
    form: str                                    # the answer's form, for the messages
    reference: Callable[[], Any]                 # the reference answer (computed, never printed)
    judge: Callable[[Any, Any], str | None]      # (parsed answer, reference) -> hint, None if right
    parse: Callable[[str, Any], Any]             # (exercise id, answer) -> parsed, or AnswerFormatError


# ---------------------------------------------------------------------------------------------
# parsing: one clear error per malformed answer


def _bad(exercise_id: str, form: str, answer: Any) -> AnswerFormatError:
    shown = repr(answer)
    shown = shown if len(shown) <= 80 else shown[:77] + "..."
    return AnswerFormatError(f"check({exercise_id!r}, answer): answer must be {form}; got {shown} "
                             f"({type(answer).__name__}).")


def _number(exercise_id: str, form: str, value: Any, answer: Any) -> float:
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.item()
    if hasattr(value, "item") and not isinstance(value, (str, bytes)) and np.ndim(value) == 0:
        value = value.item()  # numpy or torch scalars
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _bad(exercise_id, form, answer)
    return float(value)


def _numbers(k: int, keys: tuple[str, ...] = ()) -> Callable[[str, Any], tuple[float, ...]]:
    form = (f"{k} finite numbers in a tuple, list or array" if not keys else
            f"{k} finite numbers, as a tuple/list/array in the order {keys} or a dict with those keys")

    def parse(exercise_id: str, answer: Any) -> tuple[float, ...]:
        if isinstance(answer, Mapping):
            if not keys or set(answer) != set(keys):
                raise _bad(exercise_id, form, answer)
            values = [answer[key] for key in keys]
        elif isinstance(answer, (str, bytes)) or not isinstance(answer, (Iterable, np.ndarray)):
            raise _bad(exercise_id, form, answer)
        else:
            values = list(np.asarray(answer, dtype=object).ravel()) if isinstance(answer, np.ndarray) \
                else list(answer)
        if len(values) != k:
            raise _bad(exercise_id, form, answer)
        return tuple(_number(exercise_id, form, v, answer) for v in values)

    parse.form = form  # type: ignore[attr-defined]
    return parse


def _one_number(exercise_id: str, answer: Any) -> float:
    return _number(exercise_id, "one finite number (an int or a float)", answer, answer)


def _count(exercise_id: str, answer: Any) -> int:
    value = _number(exercise_id, "a whole number (an int)", answer, answer)
    if value != int(value):
        raise _bad(exercise_id, "a whole number (an int)", answer)
    return int(value)


def _factor_set(n_semantic: int) -> Callable[[str, Any], frozenset[int]]:
    form = (f"a set of semantic factors, as 1-based ints (e.g. {{1, 2}}) or names (e.g. {{'s1', 's2'}}), "
            f"each in 1..{n_semantic}")

    def parse(exercise_id: str, answer: Any) -> frozenset[int]:
        if isinstance(answer, (str, bytes, Mapping)) or not isinstance(answer, Iterable):
            raise _bad(exercise_id, form, answer)
        out = set()
        for item in answer:
            if isinstance(item, str) and item.startswith("s") and item[1:].isdigit():
                item = int(item[1:])
            if isinstance(item, (bool, np.bool_)) or not isinstance(item, (int, np.integer)) \
                    or not 1 <= int(item) <= n_semantic:
                raise _bad(exercise_id, form, answer)
            out.add(int(item))
        return frozenset(out)

    return parse


def _function(exercise_id: str, answer: Any) -> Callable:
    if not callable(answer):
        raise _bad(exercise_id, "a function r2(cov, S, i) -> float (S a set of 1-based indices, "
                   "i a 1-based index)", answer)
    return answer


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol


# ---------------------------------------------------------------------------------------------
# the checkers, one per checkable exercise


def _rare_reference() -> tuple[float, float]:
    p = 0.25  # each perturbable factor is redrawn independently with this probability
    return p, p * p


def _rare_judge(ans: tuple[float, float], ref: tuple[float, float]) -> str | None:
    one, both = ans
    if not _close(one, ref[0], 0.015):
        if _close(one, 1 - ref[0], 0.015):
            return ("p_perturb is the probability that a caption misreports the factor, "
                    "not that it reports it.")
        return "each perturbable factor is redrawn on its own, with probability p_perturb."
    if not _close(both, ref[1], 0.01):
        if _close(both, ref[0], 0.015):
            return "both factors must be redrawn in the same caption: two independent events."
        if _close(both, 2 * ref[0] - ref[1], 0.015) or _close(both, 2 * ref[0], 0.015):
            return "that is the share that misreports s4 *or* s5; the question asks for both."
        return "the two redraws are independent: what is the probability of two independent events?"
    return None


def _codes_reference() -> tuple[int, int, int]:
    from mmcl_helpers.core.biases import set_to_theta
    k = 2
    return 2 ** 3 - 1, 2 ** k - 1, set_to_theta({2, 3}, 3)


def _codes_judge(ans: tuple[float, ...], ref: tuple[int, int, int]) -> str | None:
    n_theta, n_rho, theta = ans
    if n_theta != ref[0]:
        return ("θ indexes the non-empty subsets of the three factors." if n_theta == 2 ** 3
                else "count the subsets of {shape, size, colour} that a caption may select.")
    if n_rho != ref[1]:
        return ("ρ indexes *proper* subsets of the selected set: the whole selected set is not allowed, "
                "the empty set is." if n_rho in (2 ** 2, 2 ** 2 - 2) else
                "ρ indexes subsets of the selected set (k = 2 factors), not of all three factors.")
    if theta != ref[2]:
        return ("graded lexicographic order lists all singletons before any pair."
                if theta in (3, 4) else "list the subsets by size first, then lexicographically.")
    return None


def _pairs_reference() -> int:
    from mmcl_helpers.core.biases import theta_to_set
    n = 10
    return sum(2 ** len(theta_to_set(theta, n)) - 1 for theta in range(1, 2 ** n))


def _pairs_judge(ans: int, ref: int) -> str | None:
    n = 10
    if ans == ref:
        return None
    if ans == 3 ** n:
        return "I_ρ must be a *proper* subset of I_θ, and I_θ must not be empty."
    if ans == (2 ** n - 1) ** 2 or ans == (2 ** n - 1) * 2 ** n:
        return "ρ ranges over the subsets of the selected set I_θ, not over all subsets of the ten factors."
    if ans == 3 ** n - 2 ** n - 1 or ans == 3 ** n - 1:
        return "give each factor one of three roles; which role assignments are not a caption model?"
    return ("sum over the selected sets I_θ of the number of proper subsets of I_θ "
            "(or count role assignments).")


def _derive_reference() -> Callable[[np.ndarray, set[int], int], float]:
    from mmcl_helpers.numerical.latents import gaussian_conditional

    def r2(cov: np.ndarray, S: set[int], i: int) -> float:
        order = [j - 1 for j in sorted(S)] + [i - 1]
        _, residual = gaussian_conditional(np.asarray(cov)[np.ix_(order, order)], len(S))
        return 1.0 - residual / float(cov[i - 1, i - 1])

    return r2


def _derive_cases() -> list[tuple[np.ndarray, set[int], int]]:
    """Covariances and blocks the student's function is tried on (fixed Wishart draws)."""
    from mmcl_helpers.numerical.latents import LatentModel
    cases = []
    for seed, (S, i) in enumerate([({1, 2}, 3), ({1}, 2), ({2, 3, 4}, 1), ({1, 3}, 2)]):
        cases.append((np.array(LatentModel(4, 1, 1, dependent=True, seed=seed).cov_s), S, i))
    return cases


def _derive_judge(fn: Callable, ref: Callable) -> str | None:
    for cov, S, i in _derive_cases():
        try:
            got = float(fn(cov.copy(), set(S), i))
        except Exception as err:  # the student's function failed: say how, it is their code
            return f"your function raised {type(err).__name__}: {err} (for S = {sorted(S)}, i = {i})."
        want = ref(cov, S, i)
        if _close(got, want, 1e-6):
            continue
        corr = cov / np.sqrt(np.outer(np.diag(cov), np.diag(cov)))
        if _close(got, 1 - want, 1e-6):
            return "that is the share of the variance left unexplained: R² is one minus it."
        if _close(got, sum(corr[i - 1, j - 1] ** 2 for j in S), 1e-6):
            return ("summing squared correlations is right only when the block's factors are "
                    "uncorrelated: invert Σ_SS.")
        if _close(got, want * cov[i - 1, i - 1], 1e-6):
            return "divide the explained variance by Var(s_i) = Σ_ii."
        return ("not the best predictor's R² on a test covariance (S and i are 1-based): the best "
                "predictor from s_S is the conditional mean.")
    return None


def _swap_reference() -> frozenset[int]:
    from mmcl_helpers.core.biases import CaptionBias
    return frozenset(CaptionBias(selected=range(1, 9), perturbed={7, 8}, n_semantic=10).unbiased)


def _swap_judge(ans: frozenset[int], ref: frozenset[int]) -> str | None:
    if ans == ref:
        return None
    if ans & {7, 8}:
        return "s7 and s8 are in every caption, but misreported at random: what does Step 4 say about them?"
    if ans & {9, 10}:
        return "captions that select [8] never mention s9 and s10."
    if ans < ref:
        return "every selected factor that captions always report truthfully is kept, whatever its index."
    return "list the factors the encoder keeps at the theorem's minimum: selected and never perturbed."


def _square_reference() -> float:
    # H(u^2) = log 2 - 1 for u uniform on (0, 1) (both modalities), alignment unchanged (0)
    return -(2 * (math.log(2.0) - 1.0)) / 2


def _square_judge(ans: float, ref: float) -> str | None:
    if _close(ans, ref, 0.01):
        return None
    if _close(ans, -ref, 0.01):
        return "Eq. (2) *subtracts* the mean entropy, and a non-uniform code has negative entropy."
    if _close(ans, 0.0, 0.01):
        return "a bijection keeps the information, but does it keep the code uniform on (0, 1)?"
    if _close(ans, 2 * ref, 0.01) or _close(ans, ref / 2, 0.01):
        return "Eq. (2) takes the mean of the two entropies, and both codes are squared."
    return "find the density of v = u² on (0, 1), then its entropy −E[log p(v)]."


def _corollary_reference() -> int:
    """Caption models (I_θ, I_ρ) over n_s = 10 whose omitted ∪ perturbed set is {4, 5, 6}."""
    from itertools import combinations

    from mmcl_helpers.core.biases import theta_to_set
    n, shifting, everything = 10, frozenset({4, 5, 6}), frozenset(range(1, 11))
    count = 0
    for theta in range(1, 2 ** n):
        selected = sorted(theta_to_set(theta, n))
        for k in range(len(selected)):  # proper subsets only: I_ρ ≠ I_θ
            count += sum((everything - set(selected)) | set(perturbed) == shifting
                         for perturbed in combinations(selected, k))
    return count


def _corollary_judge(ans: int, ref: int) -> str | None:
    if ans == ref:
        return None
    if ans == ref - 1:
        return "perturbing all three shifting factors is allowed: I_ρ stays a proper subset of I_θ."
    if ans == ref - 2:
        return "omitting all three is allowed too (I_ρ = ∅ is a perturbation bias)."
    if ans in (2, 3, 6):
        return "each shifting factor can be omitted or perturbed, independently of the others."
    return "for each shifting factor decide: omitted, or selected and perturbed; the rest are fixed."


def _parents_reference() -> tuple[float, float, float]:
    from mmcl_helpers.datasets.scenes import PARENT_R2
    return 0.0, PARENT_R2[("color", ("x_pos",))], PARENT_R2[("color", ("x_pos", "y_pos"))]


def _parents_judge(ans: tuple[float, ...], ref: tuple[float, ...]) -> str | None:
    if all(_close(a, r, 0.02) for a, r in zip(ans, ref)):
        return None
    if not _close(ans[0], ref[0], 0.02):
        return "with only the shape captioned the encoder holds no cause of the colour."
    if _close(ans[1], ans[2], 0.02) or _close(ans[2], 1.0, 0.02):
        return "the colour has two causes and some noise of its own: each position explains a share."
    if _close(ans[1], 0.5, 0.02):
        return "the colour also depends on its own noise, not only on the two positions."
    return "use the variances in the colour's structural equation (the causal table of the chapter)."


def _wrong_reference() -> tuple[float, float]:
    from mmcl_helpers.datasets.scenes import DISCRETE_FACTORS
    k_y, k_shape = DISCRETE_FACTORS["y_pos"], DISCRETE_FACTORS["shape"]
    return 0.3 * (k_y - 1) / k_y, 0.6 * (k_shape - 1) / k_shape


def _wrong_judge(ans: tuple[float, float], ref: tuple[float, float]) -> str | None:
    if all(_close(a, r, 0.01) for a, r in zip(ans, ref)):
        return None
    if _close(ans[0], 0.3, 0.01) or _close(ans[1], 0.6, 0.01):
        return "a resampled value is drawn uniformly over all values, the true one included."
    if _close(ans[0], 0.3 / 3, 0.01) or _close(ans[1], 0.6 / 7, 0.01):
        return "that is the share of resampled mentions that happen to be right."
    return "wrong share = resampling rate x probability that a uniform draw misses the true value."


_CHECKERS: dict[str, _Checker] = {
    "ex-01-rare-perturbation": _Checker(
        "(share of captions misreporting s4, share misreporting both s4 and s5)",
        _rare_reference, _rare_judge, _numbers(2, ("s4", "both"))),
    "ex-01-codes": _Checker(
        "(number of θ values for n_s = 3, number of ρ values for k = 2, θ of {2, 3})",
        _codes_reference, _codes_judge, _numbers(3, ("theta_values", "rho_values", "theta"))),
    "ex-01-pairs": _Checker("the number of (θ, ρ) pairs for n_s = 10, an int",
                            _pairs_reference, _pairs_judge, _count),
    "ex-02-derive": _Checker("a function r2(cov, S, i) -> float (1-based S and i)",
                             _derive_reference, _derive_judge, _function),
    "ex-03-swap": _Checker("the set of semantic factors the encoder keeps, e.g. {1, 2} or {'s1', 's2'}",
                           _swap_reference, _swap_judge, _factor_set(10)),
    "ex-04-square": _Checker("the increase of Eq. (2) over the oracle, in nats (a number)",
                             _square_reference, _square_judge, _one_number),
    "ex-04-corollary": _Checker("the number of caption models (I_θ, I_ρ), an int",
                                _corollary_reference, _corollary_judge, _count),
    "ex-05-parents": _Checker(
        "(R² of color for {shape}, for {shape, x_pos}, for {shape..y_pos})",
        _parents_reference, _parents_judge, _numbers(3)),
    "ex-06-wrong": _Checker("(share of y_pos mentions that are wrong, share of shape mentions that are "
                            "wrong)",
                            _wrong_reference, _wrong_judge, _numbers(2, ("y_pos", "shape"))),
}

_BY_ID: dict[str, Exercise] = {ex.id: ex for ex in EXERCISES}


def _checker(exercise_id: Any) -> _Checker:
    if not isinstance(exercise_id, str) or exercise_id not in _BY_ID:
        known = ", ".join(ex.id for ex in EXERCISES if ex.checkable)
        raise ValueError(f"exercise_id must be the label of a checkable exercise ({known}); "
                         f"got {exercise_id!r}.")
    if exercise_id not in _CHECKERS:
        ex = _BY_ID[exercise_id]
        raise ValueError(f"exercise_id {exercise_id!r} ({ex.heading}) has no checker: its answer is an "
                         "argument or a run, not a value; compare with the worked solution instead.")
    return _CHECKERS[exercise_id]


def answer_form(exercise_id: str) -> str:
    """The form :func:`check` expects for ``exercise_id`` (e.g. ``"one finite number ..."``)."""
    return _checker(exercise_id).form


def check(exercise_id: str, answer: Any, quiet: bool = False) -> CheckResult:
    """Check a student's answer to a book exercise; print right or wrong, with a hint when wrong.

    Never prints the solution. ``answer=...`` (the placeholder of the chapters' checker cells)
    prints what form the answer takes and counts as not yet answered.

    Args:
        exercise_id: the exercise's label, e.g. ``"ex-01-pairs"`` (see :data:`EXERCISES`).
        answer: the answer, in the form :func:`answer_form` names (numbers, a set, a tuple, or a
            function for ``ex-02-derive``).
        quiet: return the result without printing it.

    Returns:
        :class:`CheckResult` (true when the answer is right).

    Raises:
        ValueError: ``exercise_id`` is not a checkable exercise.
        AnswerFormatError: ``answer`` is not of the form the exercise expects.
    """
    checker = _checker(exercise_id)
    if answer is Ellipsis:
        result = CheckResult(exercise_id, False, f"{exercise_id}: no answer yet. Replace ... with "
                                                 f"{checker.form}, then run the cell again.")
    else:
        parsed = checker.parse(exercise_id, answer)
        hint = checker.judge(parsed, checker.reference())
        message = (f"{exercise_id}: right." if hint is None else f"{exercise_id}: not yet. Hint: {hint}")
        result = CheckResult(exercise_id, hint is None, message)
    if not quiet:
        print(result.message)
    return result


def exercise_table(chapter: int | None = None):
    """:data:`EXERCISES` as a pandas frame (one row per exercise), optionally of one chapter.

    Columns: ``id``, ``chapter``, ``tier``, ``kind`` (what the tier asks for), ``title``,
    ``minutes``, ``checkable``.
    """
    import pandas as pd

    if chapter is not None and (isinstance(chapter, bool) or chapter not in range(1, 7)):
        raise ValueError(f"chapter must be an int from 1 to 6 or None, got {chapter!r}.")
    rows = [{"id": ex.id, "chapter": ex.chapter, "tier": ex.tier, "kind": TIERS[ex.tier],
             "title": ex.title, "minutes": ex.minutes, "checkable": ex.checkable}
            for ex in EXERCISES if chapter is None or ex.chapter == chapter]
    return pd.DataFrame(rows)
