"""Reading the image-text sweeps: score grids, heatmaps, the chapter's bars, the paper's figures.

Everything here reads an ``scores`` table of an
:class:`~mmcl_helpers.image_text.sweeps.ImageTextRun` (the long table
of :mod:`~mmcl_helpers.core.results`); nothing trains.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from mmcl_helpers.core.paper import comparison_table
from mmcl_helpers.core.results import DISCARDED_BAR, LEARNED_BAR, R2

__all__ = [
    "scene_score_grid",
    "sweep_heatmaps",
    "image_text_checks",
    "compare_to_paper_figure",
]


def scene_score_grid(
    scores: pd.DataFrame, sweep: str, encoder: str = "x", probe: str = "mlp",
    factors: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mean score over seeds as a factor x setting grid (rows labelled ``factor (metric)``).

    Args:
        scores: the ``scores`` of an :class:`~mmcl_helpers.image_text.sweeps.ImageTextRun`.
        sweep: ``selection`` or ``perturbation``.
        encoder, probe: which representation and probe.
        factors: row order (default: image-specific factors, then semantics, then ``template``,
            as they occur in ``scores``).
    """
    df = scores[(scores["sweep"] == sweep) & (scores["encoder"] == encoder) & (scores["probe"] == probe)]
    if df.empty:
        raise ValueError(f"no scores for sweep={sweep!r}, encoder={encoder!r}, probe={probe!r}.")
    if factors is None:
        present = list(dict.fromkeys(df["factor"]))
        roles = dict(zip(df["factor"], df["role"]))
        factors = ([f for f in present if roles[f] == "image-specific"]
                   + [f for f in present if roles[f] not in ("image-specific", "text-specific")]
                   + [f for f in present if roles[f] == "text-specific"])
    metric = dict(zip(df["factor"], df["metric"]))
    columns = list(dict.fromkeys(df.sort_values("column")["setting"]))
    grid = df.pivot_table(index="factor", columns="setting", values="score", aggfunc="mean")
    grid = grid.loc[[f for f in factors if f in grid.index], columns]
    grid.index = [f"{f} ({'R²' if metric[f] == R2 else 'MCC'})" for f in grid.index]
    grid.columns.name = None
    return grid


def sweep_heatmaps(
    scores: pd.DataFrame, encoder: str = "x", probe: str = "mlp", title: str = "",
    sweeps: Sequence[str] = ("selection", "perturbation"),
):
    """The two sweeps as stacked factor x setting heatmaps, laid out like the paper's Fig. 6 / 16.

    Args:
        scores: the ``scores`` of an :class:`~mmcl_helpers.image_text.sweeps.ImageTextRun`.
        encoder: ``"x"`` (Fig. 6) or ``"t"`` (Fig. 16).
        probe: ``"mlp"`` (the paper's figures) or ``"linear"``.
        title: figure title.
        sweeps: the panels, top to bottom.

    Returns:
        the matplotlib figure (one colour bar per panel, scale 0..1).
    """
    import matplotlib.pyplot as plt

    from mmcl_helpers.core.plots import score_heatmap

    xlabels = {"selection": "selected semantics (nothing perturbed)",
               "perturbation": "perturbed semantics (everything selected)"}
    grids = [scene_score_grid(scores, s, encoder, probe) for s in sweeps]
    rows = max(g.shape[0] for g in grids)
    width = max(g.shape[1] for g in grids)
    fig, axes = plt.subplots(len(grids), 1, figsize=(0.95 * width + 3.2, len(grids) * (0.36 * rows + 2.1)),
                             squeeze=False, constrained_layout=True)
    for ax, sweep, grid in zip(axes[:, 0], sweeps, grids):
        score_heatmap(grid, ax, f"{sweep} sweep, ẑ_{encoder}, {probe} probe", xlabels.get(sweep, sweep),
                      metric="MCC / R²")
        ax.tick_params(axis="x", rotation=30)
    if title:
        fig.suptitle(title)
    return fig


def image_text_checks(
    scores: pd.DataFrame,
    discrete: Sequence[str] = ("shape", "x_pos", "y_pos"),
    learned_bar: float = LEARNED_BAR,
    discarded_bar: float = DISCARDED_BAR,
    image_bar: float = 0.1,
    template_bar: float = 0.1,
    probe: str = "mlp",
) -> pd.DataFrame:
    """The chapter's measured bars, each with its worst cell.

    Checks (all with the given probe, mean over seeds):

    1. every discrete factor of ``discrete`` has MCC >= ``learned_bar`` from ẑ_x wherever it is
       selected and not perturbed;
    2. ... MCC <= ``discarded_bar`` from ẑ_x wherever it is omitted or perturbed;
    3. every image-specific factor has R^2 (or MCC) <= ``image_bar`` from ẑ_x and ẑ_t everywhere;
    4. the caption template has MCC <= ``template_bar`` from ẑ_t everywhere.

    Returns:
        one row per check: check, bar, worst (value), where (setting and factor of the worst
        cell), met (bool).
    """
    df = scores[scores["probe"] == probe]
    keys = ["sweep", "setting", "encoder", "factor", "role"]
    df = df.groupby(keys, sort=False)["score"].mean().reset_index()
    disc = df[df["factor"].isin(discrete) & (df["encoder"] == "x")]
    checks = [
        (f"{', '.join(discrete)} from ẑ_x when selected and unperturbed: MCC >= {learned_bar}",
         disc[disc["role"] == "unbiased"], "min", learned_bar),
        (f"{', '.join(discrete)} from ẑ_x when omitted or perturbed: MCC <= {discarded_bar}",
         disc[disc["role"].isin(["omitted", "perturbed"])], "max", discarded_bar),
        (f"image-specific factors from ẑ_x and ẑ_t: score <= {image_bar}",
         df[df["role"] == "image-specific"], "max", image_bar),
        (f"caption template from ẑ_t: MCC <= {template_bar}",
         df[(df["role"] == "text-specific") & (df["encoder"] == "t")], "max", template_bar),
    ]
    rows = []
    for name, part, how, bar in checks:
        if part.empty:
            rows.append(dict(check=name, bar=bar, worst=math.nan, where="(no cells)", met=False))
            continue
        i = part["score"].idxmin() if how == "min" else part["score"].idxmax()
        worst = float(part.loc[i, "score"])
        cell = part.loc[i]
        where = f"{cell['sweep']} {cell['setting']}, {cell['factor']} (ẑ_{cell['encoder']})"
        met = worst >= bar if how == "min" else worst <= bar
        rows.append(dict(check=name, bar=bar, worst=round(worst, 3), where=where, met=bool(met)))
    return pd.DataFrame(rows)


#: The paper's rotations alpha, beta, gamma are compared with the largest image-specific score here.
_PAPER_IMAGE_FACTORS = ("alpha", "beta", "gamma")


def compare_to_paper_figure(
    scores: pd.DataFrame, figure: str, profile: str, encoder: str = "x", probe: str = "mlp"
) -> pd.DataFrame:
    """Every cell of the paper's Fig. 6 (scenes) or Fig. 5 (MPI3D) next to this run's mean.

    Columns are matched by position (c1 = first setting of the sweep, as the paper prints them).
    Fig. 6's rotations (alpha, beta, gamma, all 0 in the paper) are set beside the largest score of
    this run's image-specific factors, under the name ``m_x (max)``.

    Args:
        scores: the ``scores`` of an :class:`~mmcl_helpers.image_text.sweeps.ImageTextRun`.
        figure: ``"fig6"`` or ``"fig5"``.
        profile: the profile name of the run.
        encoder, probe: which of this run's scores to compare (the paper's figures are nonlinear).

    Returns:
        columns panel, factor, column, setting, paper, ours, difference, profile.
    """
    from mmcl_helpers.core.paper import figure_values

    paper = figure_values(figure)
    if figure == "fig6":
        if encoder != "x":
            raise ValueError("Fig. 6 shows ẑ_x only.")
        panel_of = {"selection": "selection", "perturbation": "perturbation"}
    elif figure == "fig5":
        panel_of = {"selection": f"selection_z{encoder}", "perturbation": f"perturbation_z{encoder}"}
    else:
        raise ValueError(f"figure must be 'fig6' or 'fig5', got {figure!r}.")
    df = scores[(scores["encoder"] == encoder) & (scores["probe"] == probe)].copy()
    df = df[df["sweep"].isin(panel_of)]
    df["panel"] = df["sweep"].map(panel_of)
    if figure == "fig5":
        # Fig. 5 prints its perturbation panel from the most perturbed setting to ∅.
        last = df.loc[df["sweep"] == "perturbation", "column"].max()
        pert = df["sweep"] == "perturbation"
        df.loc[pert, "column"] = last + 1 - df.loc[pert, "column"]
    df["column"] = "c" + df["column"].astype(str)
    mx = df["role"] == "image-specific"
    if figure == "fig6":
        df.loc[mx, "factor"] = "m_x (max)"
    grouped = df.groupby(["panel", "factor", "column", "setting", "seed"], sort=False)["score"]
    per_seed = grouped.max().reset_index()
    ours = per_seed.groupby(["panel", "factor", "column", "setting"], sort=False)["score"].mean()
    ours = ours.rename("ours").reset_index()
    paper = paper.copy()
    if figure == "fig6":
        paper = paper[paper["factor"].isin(_PAPER_IMAGE_FACTORS)].groupby(
            ["panel", "column"], sort=False)["value"].max().reset_index().assign(factor="m_x (max)").pipe(
            lambda m: pd.concat([m, paper[~paper["factor"].isin(_PAPER_IMAGE_FACTORS)]], ignore_index=True))
    paper = paper.rename(columns={"value": "paper"})
    return comparison_table(ours, paper, ["panel", "factor", "column"], profile, labels=["setting"])
