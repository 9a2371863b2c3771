"""Figures in the layout of the paper: factor x setting heatmaps of probe scores (Fig. 3, 7)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

__all__ = ["score_heatmap", "sweep_figure", "correlation_heatmap", "theory_scatter"]


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
