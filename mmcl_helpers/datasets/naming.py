"""Caption settings written with factor names, converted in one place to a CaptionBias.

A *setting* is one :class:`~mmcl_helpers.core.biases.CaptionBias`; a *sweep* is an ordered mapping
label -> setting (a figure's columns). Functions returning a sweep are named
``<where>_<kind>_sweep`` across the package: :func:`named_selection_sweep` here (any named
factors), ``numerical_selection_sweep`` (the simulation's s1..sN),
``mpi3d_selection_sweep`` and ``programme_sweep`` (see the README). Settings are written with factor names
(``selected={"shape", "x_pos"}``) and converted here to 1-based indices in the factor order. Every
function takes the factor list as an argument, so :mod:`~mmcl_helpers.datasets.mpi3d` uses them
too; the defaults are the scenes' factors.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from mmcl_helpers.core.biases import CaptionBias, InvalidIndexSetError
from mmcl_helpers.datasets.scenes import SEMANTIC_FACTORS

__all__ = [
    "SCENE_P_PERTURB",
    "UnknownFactorError",
    "factor_indices",
    "names_of",
    "format_factor_set",
    "bias_from_names",
    "named_selection_sweep",
    "named_perturbation_sweep",
]

#: Default probability that a perturbable factor is resampled in a given pair (paper §5.3).
SCENE_P_PERTURB = 1.0


class UnknownFactorError(InvalidIndexSetError):
    """Raised for a factor name that is not one of the dataset's semantic factors."""


def factor_indices(names: Iterable[str], factors: Sequence[str], what: str) -> frozenset[int]:
    """1-based indices of factor names in ``factors``.

    Raises:
        UnknownFactorError: a name not in ``factors``, a bare string, or a repeated name.
    """
    if isinstance(names, str):
        raise UnknownFactorError(
            f"{what} must be a collection of factor names such as {{{factors[0]!r}}}, got the string "
            f"{names!r}."
        )
    items = list(names)
    unknown = [n for n in items if n not in factors]
    if unknown:
        raise UnknownFactorError(
            f"{what} holds unknown factor name(s) {unknown}; allowed are {list(factors)}."
        )
    dupes = sorted({n for n in items if items.count(n) > 1})
    if dupes:
        raise UnknownFactorError(f"{what} lists {dupes} more than once; list each factor once.")
    return frozenset(factors.index(n) + 1 for n in items)


def names_of(indices: Iterable[int], factors: Sequence[str]) -> tuple[str, ...]:
    """Names of 1-based indices, in factor order."""
    return tuple(factors[i - 1] for i in sorted(indices))


def format_factor_set(indices: Iterable[int], factors: Sequence[str]) -> str:
    """Set label by names: ``∅``, ``{shape}``, ``{shape, x_pos}``, ``{shape..y_pos}`` (a run of 3+)."""
    idx = sorted(indices)
    if not idx:
        return "∅"
    parts, run = [], [idx[0]]
    for i in idx[1:] + [None]:
        if i is not None and i == run[-1] + 1:
            run.append(i)
            continue
        if len(run) >= 3:
            parts.append(f"{factors[run[0] - 1]}..{factors[run[-1] - 1]}")
        else:
            parts.extend(factors[j - 1] for j in run)
        if i is not None:
            run = [i]
    return "{" + ", ".join(parts) + "}"


def bias_from_names(
    selected: Iterable[str],
    perturbed: Iterable[str] = (),
    factors: Sequence[str] = SEMANTIC_FACTORS,
    p_perturb: float = SCENE_P_PERTURB,
) -> CaptionBias:
    """A :class:`CaptionBias` from factor names.

    Args:
        selected: names of the factors a caption describes (non-empty).
        perturbed: names of the selected factors it may misreport (a proper subset of selected).
        factors: the dataset's semantic factors, in order (index i + 1 is ``factors[i]``).
        p_perturb: probability that each perturbed factor is resampled in a given pair.

    Raises:
        UnknownFactorError: for an unknown name.
        InvalidIndexSetError: empty selection, perturbed not a proper subset of selected, or
            ``p_perturb`` outside [0, 1] (the message gives indices; see ``factors``).
    """
    sel = factor_indices(selected, factors, "selected")
    pert = factor_indices(perturbed, factors, "perturbed")
    outside = names_of(pert - sel, factors)
    if outside:
        raise InvalidIndexSetError(
            f"perturbed holds {list(outside)}, which the caption does not select (selected = "
            f"{list(names_of(sel, factors))}); only selected factors can be misreported."
        )
    if sel and pert == sel:
        raise InvalidIndexSetError(
            f"perturbed equals selected ({list(names_of(sel, factors))}): it must be a proper "
            "subset, so that at least one selected factor is always reported faithfully."
        )
    return CaptionBias(sel, pert, n_semantic=len(factors), p_perturb=p_perturb)


def named_selection_sweep(
    factors: Sequence[str] = SEMANTIC_FACTORS, p_perturb: float = SCENE_P_PERTURB
) -> dict[str, CaptionBias]:
    """Selection sweep: setting k selects the first k factors, nothing perturbed.

    Returns:
        label (e.g. ``"{shape..y_pos}"``) -> bias, in order k = 1 .. len(factors).
    """
    out = {}
    for k in range(1, len(factors) + 1):
        bias = bias_from_names(factors[:k], (), factors, p_perturb)
        out[format_factor_set(bias.selected, factors)] = bias
    return out


def named_perturbation_sweep(
    factors: Sequence[str] = SEMANTIC_FACTORS,
    p_perturb: float = SCENE_P_PERTURB,
    most_perturbed_first: bool = True,
) -> dict[str, CaptionBias]:
    """Perturbation sweep: everything selected, perturbed = every suffix of ``factors[1:]``.

    For the scenes: {x_pos..b_color}, {y_pos..b_color}, ..., {b_color}, ∅ (the first factor is
    never perturbed). The paper numbers these both ways, so they are named by their sets.

    Returns:
        label of the perturbed set -> bias, from the largest perturbed set to ∅ (reversed with
        ``most_perturbed_first=False``).
    """
    out = {}
    for k in range(1, len(factors) + 1):
        bias = bias_from_names(factors, factors[k:], factors, p_perturb)
        out[format_factor_set(bias.perturbed, factors)] = bias
    if not most_perturbed_first:
        out = dict(reversed(out.items()))
    return out

