"""Figures in the layout of the paper: factor x setting heatmaps of probe scores (Fig. 3, 7)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

__all__ = ["score_heatmap", "sweep_figure", "correlation_heatmap", "theory_scatter", "downstream_figure",
           "shift_figure", "recovery_curves_figure"]


def score_heatmap(
    grid: pd.DataFrame,
    ax: plt.Axes | None = None,
    title: str = "",
    xlabel: str = "setting",
    metric: str = "R²",
    colorbar: bool = True,
) -> plt.Axes:
    """Heatmap of scores in [0, 1], factors as rows and settings as columns, cells annotated.

    Args:
        grid: factor x setting table (e.g. :meth:`NumericalRun.table`).
        ax: axes to draw on (a new figure by default).
        title, xlabel: labels; the colour bar is labelled with ``metric``.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(0.6 * grid.shape[1] + 2.5, 0.4 * grid.shape[0] + 1.5))
    sns.heatmap(
        grid.astype(float), vmin=0.0, vmax=1.0, cmap="viridis", annot=True, fmt=".2f",
        annot_kws={"size": 8}, cbar=colorbar, cbar_kws={"label": metric}, ax=ax,
        linewidths=0.3, linecolor="white",
    )
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("factor")
    ax.tick_params(axis="x", rotation=45)
    ax.tick_params(axis="y", rotation=0)
    return ax


def sweep_figure(
    grids: Sequence[pd.DataFrame],
    titles: Sequence[str],
    suptitle: str = "",
    xlabel: str = "setting",
    metric: str = "R²",
) -> plt.Figure:
    """Several :func:`score_heatmap` panels with one shared colour scale.

    Panels sit side by side when they are narrow and one above the other when they have more than
    six columns, so that the cell annotations stay readable on a book page.
    """
    n = len(grids)
    width = max(g.shape[1] for g in grids)
    rows = grids[0].shape[0]
    stacked = width > 6
    cell_w, cell_h = 0.62, 0.36
    if stacked:
        size = (width * cell_w + 2.6, n * (rows * cell_h + 1.3) + 0.6)
        fig, axes = plt.subplots(n, 1, figsize=size, squeeze=False, constrained_layout=True)
        axes = axes[:, 0]
    else:
        size = (n * (width * cell_w + 1.8) + 1.2, rows * cell_h + 2.0)
        fig, axes = plt.subplots(1, n, figsize=size, squeeze=False, constrained_layout=True)
        axes = axes[0]
    for i, (grid, title, ax) in enumerate(zip(grids, titles, axes)):
        score_heatmap(grid, ax, title, xlabel, metric, colorbar=stacked or i == n - 1)
        if i and not stacked:
            ax.set_ylabel("")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def correlation_heatmap(
    data: pd.DataFrame, ax: plt.Axes | None = None, title: str = "", annotate: bool = False
) -> plt.Axes:
    """Pearson correlations between the columns of ``data`` on a symmetric [-1, 1] scale."""
    if ax is None:
        _, ax = plt.subplots(figsize=(0.35 * data.shape[1] + 2.5, 0.35 * data.shape[1] + 1.5))
    sns.heatmap(
        data.corr(), vmin=-1.0, vmax=1.0, cmap="RdBu_r", center=0.0, square=True, ax=ax,
        annot=annotate, fmt=".1f", annot_kws={"size": 6}, cbar_kws={"label": "correlation"},
    )
    ax.set_title(title)
    return ax


def theory_scatter(
    table: pd.DataFrame,
    ax: plt.Axes | None = None,
    title: str = "",
    hue: str = "setting",
) -> plt.Axes:
    """Measured R^2 against the R^2 the theorem predicts, one point per cell, with the diagonal.

    Args:
        table: rows with columns ``theory`` and ``score`` (see
            :func:`~mmcl_helpers.experiments.with_theory`) and the column named by ``hue``.
        ax: axes to draw on (a new figure by default).
        title: axes title.
        hue: column that colours the points.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.plot([0, 1], [0, 1], color="0.5", lw=1, ls="--", label="measured = predicted")
    sns.scatterplot(data=table, x="theory", y="score", hue=hue, ax=ax, s=45)
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("R² the unbiased block explains (theorem)")
    ax.set_ylabel("R² measured from ẑ_x")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    return ax


def downstream_figure(summary: pd.DataFrame, title: str = "") -> plt.Figure:
    """Chapter 3's downstream panels: regression R^2 per target, classification MCC per split.

    Args:
        summary: :func:`~mmcl_helpers.downstream.downstream_summary` of a selection sweep.
        title: figure title.

    Returns:
        the figure (two panels, error bars are one standard deviation over seeds).
    """
    from .downstream import TARGET_DIMS

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4), constrained_layout=True)
    for t, d in enumerate(TARGET_DIMS, start=1):
        part = summary[summary["task"] == f"y{t}"]
        ax1.errorbar(part["selected"], part["mean"], yerr=part["std"].fillna(0), marker="o",
                     capsize=3, label=f"y{t} = F(s_[{d}])")
    ax1.set_title("regression from the frozen ẑ_x, in distribution")
    ax1.set_ylabel("R²")
    for split, label in [("id", "in distribution"), ("ood", "s9, s10 shifted")]:
        part = summary[(summary["task"] == "class") & (summary["split"] == split)]
        ax2.errorbar(part["selected"], part["mean"], yerr=part["std"].fillna(0), marker="o",
                     capsize=3, label=label)
    ax2.set_title("classification (y2 > median) from the frozen ẑ_x")
    ax2.set_ylabel("MCC")
    for ax in (ax1, ax2):
        ax.set_xlabel("semantics the captions selected")
        ax.set_ylim(-0.02, 1.02)
        ax.legend()
    if title:
        fig.suptitle(title)
    return fig


def shift_figure(shift: pd.DataFrame, names: dict[str, str], title: str = "") -> plt.Figure:
    """Chapter 6's shift test: classifier MCC per policy, in distribution and shifted.

    Args:
        shift: :func:`~mmcl_helpers.practice.shift_scores` rows (policy, seed, split, mcc).
        names: policy label -> tick label, in bar order.
        title: axes title.

    Returns:
        the figure: bars are means over seeds with one standard deviation, dots single seeds.
    """
    import numpy as np

    fig, ax = plt.subplots(figsize=(7, 3.6), constrained_layout=True)
    order = list(names)
    for k, split in enumerate(["in-distribution", "shifted"]):
        part = shift[shift["split"] == split]
        means = part.groupby("policy")["mcc"].mean().reindex(order)
        stds = part.groupby("policy")["mcc"].std().reindex(order).fillna(0)
        x = np.arange(len(order)) + (k - 0.5) * 0.38
        ax.bar(x, means, width=0.36, yerr=stds, capsize=4, label=split,
               color=["tab:blue", "tab:orange"][k])
        for xi, policy in zip(x, order):
            ax.plot(np.full(int((part["policy"] == policy).sum()), xi),
                    part.loc[part["policy"] == policy, "mcc"], "k.", ms=4)
    ax.set_xticks(np.arange(len(order)), [names[p] for p in order])
    ax.set_ylabel("shape classifier MCC")
    ax.set_ylim(0, 1.05)
    ax.set_title(title)
    ax.legend(loc="lower right")
    return fig


def recovery_curves_figure(error_curve: pd.DataFrame, mention_curve: pd.DataFrame) -> plt.Figure:
    """Chapter 6's recovery curves: score against the wrong-mention and the mention rate.

    Args:
        error_curve, mention_curve: :func:`~mmcl_helpers.practice.recovery_curves` rows of the
            factor whose error rate varies and of the one whose mention rate varies.

    Returns:
        the figure, with the learned and discarded bands of :mod:`~mmcl_helpers.results` shaded
        and the theorem's values at the extremes marked.
    """
    from .results import DISCARDED_BAR, LEARNED_BAR

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True, sharey=True)
    ax1.plot(error_curve["error_rate"], error_curve["score_mean"], "o-", color="tab:red",
             label="measured")
    ax1.plot([0, 2 / 3], [1, 0], "s", mfc="none", color="k", ms=9, label="theorem at the extremes")
    ax1.set_xlabel("share of mentions of the row that are wrong (measured)")
    ax1.set_ylabel("factor recovered from ẑ_x (MCC, MLP probe)")
    ax1.set_title("Negate: corrupted mentions of the row")
    ax2.plot(mention_curve["mention_rate"], mention_curve["score_mean"], "o-", color="tab:green",
             label="measured")
    ax2.plot([0, 1], [0, 1], "s", mfc="none", color="k", ms=9, label="theorem at the extremes")
    ax2.set_xlabel("share of captions that mention the column (measured)")
    ax2.set_title("Randomly missing mentions of the column")
    for ax in (ax1, ax2):
        ax.axhspan(LEARNED_BAR, 1.05, color="tab:green", alpha=0.07)
        ax.axhspan(-0.05, DISCARDED_BAR, color="tab:red", alpha=0.07)
        ax.set_ylim(-0.05, 1.05)
        ax.legend(loc="center right")
    return fig
