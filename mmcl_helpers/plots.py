"""Figures in the layout of the paper: factor x setting heatmaps of probe scores (Fig. 3, 7)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

__all__ = ["score_heatmap", "sweep_figure", "correlation_heatmap"]


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
        annot_kws={"size": 7}, cbar=colorbar, cbar_kws={"label": metric}, ax=ax,
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
    """Several :func:`score_heatmap` panels side by side, one shared colour scale."""
    n = len(grids)
    width = max(g.shape[1] for g in grids)
    fig, axes = plt.subplots(
        1, n, figsize=(n * (0.55 * width + 1.8) + 1.2, 0.38 * grids[0].shape[0] + 2.0),
        squeeze=False, constrained_layout=True,
    )
    for i, (grid, title, ax) in enumerate(zip(grids, titles, axes[0])):
        score_heatmap(grid, ax, title, xlabel, metric, colorbar=i == n - 1)
        if i:
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
