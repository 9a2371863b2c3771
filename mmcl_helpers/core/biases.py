"""Selection and perturbation bias as explicit index sets, and the paper's integer codes.

A caption *selects* the semantic factors it talks about (``selected``, the paper's I_theta) and may
get some of them wrong (``perturbed``, I_rho, a proper subset of the selected ones). Indices are
1-based, as in the paper: ``selected={1, 2, 3}`` means s1, s2, s3.

The paper's scripts name settings by integers ``theta`` and ``rho`` that enumerate subsets in graded
lexicographic order (by size, then lexicographically), 1-based. This module is the only place
where codes and sets are converted; everything else takes sets. Examples for n_s = 10: theta 1 is
{1}, theta 11 is [2] = {1, 2}, theta 968 is [8]; inside theta 1023 = [10], rho 1 is the empty set
and rho 12 is [2].
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from math import comb

from mmcl_helpers.core import validation as v

__all__ = [
    "InvalidIndexSetError",
    "CaptionBias",
    "validate_index_set",
    "subset_rank",
    "subset_unrank",
    "theta_to_set",
    "set_to_theta",
    "rho_to_set",
    "set_to_rho",
    "format_set",
]


class InvalidIndexSetError(ValueError):
    """Raised for an index set or code that does not describe a valid caption bias."""


def validate_index_set(indices: Iterable[int], n: int, name: str) -> frozenset[int]:
    """Check a collection of 1-based indices into {1..n} and return it as a frozenset.

    Raises:
        InvalidIndexSetError: for a non-integer, an index outside 1..n, or a repeated index.
    """
    if isinstance(indices, (str, bytes)):
        raise InvalidIndexSetError(
            f"{name} must be a collection of integers such as {{1, 2, 3}}, got the string "
            f"{indices!r}."
        )
    if indices is None or not isinstance(indices, Iterable):
        empty = " (use () for none)" if name == "perturbed" else ""
        raise InvalidIndexSetError(
            f"{name} must be a collection of 1-based integers such as {{1, 2, 3}}{empty}, got "
            f"{indices!r} ({type(indices).__name__})."
        )
    items = list(indices)
    for i in items:
        if isinstance(i, bool) or not isinstance(i, int) and not hasattr(i, "__index__"):
            raise InvalidIndexSetError(f"{name} holds {i!r}, which is not an integer index.")
    items = [int(i) for i in items]
    bad = sorted({i for i in items if not 1 <= i <= n})
    if bad:
        raise InvalidIndexSetError(
            f"{name} holds {bad}, outside the allowed range 1..{n} (indices are 1-based, as "
            "in the paper)."
        )
    dupes = sorted({i for i in items if items.count(i) > 1})
    if dupes:
        raise InvalidIndexSetError(f"{name} lists {dupes} more than once; list each index once.")
    return frozenset(items)


def subset_rank(subset: Iterable[int], n: int, include_empty: bool) -> int:
    """1-based position of ``subset`` among subsets of {1..n} in graded lexicographic order.

    With ``include_empty`` the empty set is position 1; otherwise enumeration starts at {1}.
    """
    elems = sorted(subset)
    k = len(elems)
    rank = sum(comb(n, j) for j in range(0 if include_empty else 1, k))
    prev = 0
    for i, c in enumerate(elems, start=1):
        # Count the k-subsets that agree up to position i-1 and have a smaller i-th element.
        for smaller in range(prev + 1, c):
            rank += comb(n - smaller, k - i)
        prev = c
    return rank + 1


def subset_unrank(code: int, n: int, include_empty: bool) -> frozenset[int]:
    """Inverse of :func:`subset_rank`."""
    remaining = code - 1
    k = 0 if include_empty else 1
    while k <= n and remaining >= comb(n, k):
        remaining -= comb(n, k)
        k += 1
    elems: list[int] = []
    candidate = 1
    for i in range(1, k + 1):
        while remaining >= comb(n - candidate, k - i):
            remaining -= comb(n - candidate, k - i)
            candidate += 1
        elems.append(candidate)
        candidate += 1
    return frozenset(elems)


def theta_to_set(theta: int, n_semantic: int) -> frozenset[int]:
    """Selected set I_theta for the paper's code ``theta`` (1 .. 2**n_semantic - 1)."""
    n_semantic = v.check_param("n_semantic", n_semantic, v.POSITIVE_INT, "theta_to_set", InvalidIndexSetError)
    top = 2**n_semantic - 1
    theta = int(theta) if v.is_integer(theta) else theta
    if isinstance(theta, bool) or not isinstance(theta, int) or not 1 <= theta <= top:
        raise InvalidIndexSetError(
            f"theta={theta!r} is not a valid code for {n_semantic} semantics: allowed are the "
            f"integers 1..{top} (one per non-empty subset)."
        )
    return subset_unrank(theta, n_semantic, include_empty=False)


def set_to_theta(selected: Iterable[int], n_semantic: int) -> int:
    """The paper's code ``theta`` of a non-empty selected set."""
    sel = validate_index_set(selected, n_semantic, "selected")
    if not sel:
        raise InvalidIndexSetError("selected is empty: a caption must describe at least one factor.")
    return subset_rank(sel, n_semantic, include_empty=False)


def rho_to_set(rho: int, selected: Iterable[int], n_semantic: int) -> frozenset[int]:
    """Perturbed set I_rho for code ``rho`` inside ``selected`` (proper subsets, empty set first)."""
    sel = sorted(validate_index_set(selected, n_semantic, "selected"))
    if not sel:
        raise InvalidIndexSetError("selected is empty: a caption must describe at least one factor.")
    top = 2 ** len(sel) - 1
    rho = int(rho) if v.is_integer(rho) else rho
    if isinstance(rho, bool) or not isinstance(rho, int) or not 1 <= rho <= top:
        raise InvalidIndexSetError(
            f"rho={rho!r} is not a valid code inside a selected set of size {len(sel)}: allowed "
            f"are the integers 1..{top} (one per proper subset, the empty set first)."
        )
    positions = subset_unrank(rho, len(sel), include_empty=True)
    return frozenset(sel[p - 1] for p in positions)


def set_to_rho(perturbed: Iterable[int], selected: Iterable[int], n_semantic: int) -> int:
    """The paper's code ``rho`` of ``perturbed`` relative to ``selected``."""
    bias = CaptionBias(selected=selected, perturbed=perturbed, n_semantic=n_semantic)
    sel = sorted(bias.selected)
    positions = [sel.index(i) + 1 for i in bias.perturbed]
    return subset_rank(positions, len(sel), include_empty=True)


def format_set(indices: Iterable[int]) -> str:
    """Paper notation: ``∅``, ``{4}``, ``[3]`` for {1,2,3}, else ``{2,5}``."""
    elems = sorted(indices)
    if not elems:
        return "∅"
    if len(elems) > 1 and elems == list(range(1, len(elems) + 1)):
        return f"[{len(elems)}]"
    return "{" + ",".join(map(str, elems)) + "}"


@dataclass(frozen=True, init=False)
class CaptionBias:
    """Which semantics a caption keeps (``selected``) and which it may misreport (``perturbed``).

    Args:
        selected: non-empty 1-based indices of the semantics the caption describes (I_theta).
        perturbed: indices, a proper subset of ``selected``, that a caption may get wrong (I_rho).
        n_semantic: number of semantic factors n_s.
        p_perturb: probability that each perturbable factor is actually changed in a given pair.

    Raises:
        InvalidIndexSetError: empty ``selected``; an index out of range or repeated; ``perturbed``
            not a proper subset of ``selected``; ``p_perturb`` outside [0, 1].
    """

    selected: frozenset[int]
    perturbed: frozenset[int]
    n_semantic: int
    p_perturb: float

    def __init__(
        self,
        selected: Iterable[int],
        perturbed: Iterable[int] = (),
        n_semantic: int = 10,
        p_perturb: float = 0.75,
    ) -> None:
        n_semantic = v.check_param("n_semantic", n_semantic, v.POSITIVE_INT, "CaptionBias",
                                   InvalidIndexSetError)
        sel = validate_index_set(selected, n_semantic, "selected")
        if not sel:
            raise InvalidIndexSetError(
                "selected is empty: a caption must describe at least one semantic factor."
            )
        pert = validate_index_set(perturbed, n_semantic, "perturbed")
        outside = sorted(pert - sel)
        if outside:
            raise InvalidIndexSetError(
                f"perturbed holds {outside}, which the caption does not select "
                f"(selected = {sorted(sel)}); only selected factors can be misreported."
            )
        if pert == sel:
            raise InvalidIndexSetError(
                f"perturbed equals selected ({sorted(sel)}): it must be a proper subset, so that "
                "at least one selected factor is always reported faithfully."
            )
        p = v.check_param("p_perturb", p_perturb, v.PROBABILITY, "CaptionBias", InvalidIndexSetError)
        object.__setattr__(self, "selected", sel)
        object.__setattr__(self, "perturbed", pert)
        object.__setattr__(self, "n_semantic", n_semantic)
        object.__setattr__(self, "p_perturb", p)

    @classmethod
    def from_codes(
        cls, theta: int, rho: int = 1, n_semantic: int = 10, p_perturb: float = 0.75
    ) -> CaptionBias:
        """Build from the paper's integer codes (``rho=1`` is the empty perturbed set)."""
        sel = theta_to_set(theta, n_semantic)
        return cls(sel, rho_to_set(rho, sel, n_semantic), n_semantic, p_perturb)

    @property
    def unbiased(self) -> list[int]:
        """Sorted indices that are selected and never perturbed, i.e. what MMCL should recover."""
        return sorted(self.selected - self.perturbed)

    @property
    def theta(self) -> int:
        return set_to_theta(self.selected, self.n_semantic)

    @property
    def rho(self) -> int:
        return set_to_rho(self.perturbed, self.selected, self.n_semantic)

    @property
    def label(self) -> str:
        """Short label such as ``sel [8], pert [2]``."""
        return f"sel {format_set(self.selected)}, pert {format_set(self.perturbed)}"

    def role(self, i: int) -> str:
        """``"unbiased"``, ``"perturbed"`` or ``"omitted"`` for the 1-based semantic ``i``."""
        if i in self.perturbed:
            return "perturbed"
        return "unbiased" if i in self.selected else "omitted"

    def __repr__(self) -> str:
        return (
            f"CaptionBias(selected={sorted(self.selected)}, perturbed={sorted(self.perturbed)}, "
            f"n_semantic={self.n_semantic}, p_perturb={self.p_perturb})"
        )
