"""Figures of the book: factor x setting heatmaps of probe scores in the layout of the paper
(Fig. 3, 7), and the figures chapters 1, 3 and 6 draw from their own data."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

__all__ = ["score_heatmap", "sweep_figure", "correlation_heatmap", "theory_scatter",
           "shift_figure", "recovery_curves_figure", "perturbation_figure", "mixing_figure",
           "intervention_figure"]


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
            :func:`~mmcl_helpers.numerical.experiments.with_theory`) and the column named by ``hue``.
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


def shift_figure(shift: pd.DataFrame, names: dict[str, str], title: str = "") -> plt.Figure:
    """Chapter 6's shift test: classifier MCC per policy, in distribution and shifted.

    Args:
        shift: :func:`~mmcl_helpers.practice.studies.shift_scores` rows (policy, seed, split, mcc).
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
        error_curve, mention_curve: :func:`~mmcl_helpers.practice.studies.recovery_curves` rows of the
            factor whose error rate varies and of the one whose mention rate varies.

    Returns:
        the figure, with the learned and discarded bands of :mod:`~mmcl_helpers.core.results` shaded
        and the theorem's values at the extremes marked.
    """
    from mmcl_helpers.core.results import DISCARDED_BAR, LEARNED_BAR

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


def perturbation_figure(s, s_tilde, changed, bias, factors: Sequence[int]) -> plt.Figure:
    """Chapter 1: each factor in the image against the value the caption reports.

    Args:
        s, s_tilde: true and reported semantics, shape (N, n_semantic).
        changed: which entries were perturbed, bool, shape (N, n_semantic).
        bias: the :class:`~mmcl_helpers.core.biases.CaptionBias` that produced ``s_tilde``.
        factors: 1-based factors to show, one panel each.
    """
    import numpy as np

    fig, axes = plt.subplots(1, len(factors), figsize=(3.25 * len(factors), 3.4), sharex=True,
                             constrained_layout=True, squeeze=False)
    for ax, i in zip(axes[0], factors):
        role = bias.role(i)
        if role == "omitted":
            ax.text(0.5, 0.5, f"s{i} is omitted:\nthe caption\nnever mentions it", ha="center",
                    va="center", transform=ax.transAxes)
        else:
            ax.scatter(s[:, i - 1], s_tilde[:, i - 1], s=2, alpha=0.3,
                       c=np.where(changed[:, i - 1], "tab:red", "tab:blue"))
        ax.set_title(f"s{i}: {role}")
        ax.set_xlabel(f"s{i} in the image")
        ax.set_ylabel(f"s{i} as the caption reports it")
    fig.suptitle(f"{bias.label} (blue: copied, red: perturbed)")
    return fig


def mixing_figure(g2, error) -> plt.Figure:
    """Chapter 1: a 2-D mixing function bending a square grid, and round-trip errors of g_x.

    Args:
        g2: an :class:`~mmcl_helpers.numerical.mixing.InvertibleMLP` on 2 dimensions.
        error: largest absolute round-trip error per sample, shape (N,).
    """
    import torch

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2), constrained_layout=True)
    ticks = torch.linspace(-2, 2, 9)
    line = torch.linspace(-2, 2, 200)
    for v in ticks:
        for pts in (torch.stack([line, v.expand(200)], 1), torch.stack([v.expand(200), line], 1)):
            out = g2(pts)
            ax1.plot(out[:, 0], out[:, 1], lw=0.8, color="tab:blue")
    ax1.set_title("a 2-D mixing bends a square grid")
    ax1.set_xlabel("x1")
    ax1.set_ylabel("x2")
    ax2.hist(error.numpy(), bins=50, color="tab:green")
    ax2.set_yscale("log")
    ax2.set_title("image generator g_x: |g_x⁻¹(g_x(z)) − z| per sample")
    ax2.set_xlabel("largest absolute error over the 15 latents")
    ax2.set_ylabel("samples")
    return fig


def intervention_figure(s, panels: Sequence[tuple[str, object]], j: int) -> plt.Figure:
    """Chapter 1: s1 against s_j in the scene and after each change of s1.

    Args:
        s: the scene's semantics, shape (N, n_semantic).
        panels: ``(title, semantics after the change)`` per panel.
        j: 1-based factor on the vertical axis.
    """
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 3.8), sharex=True, sharey=True,
                             constrained_layout=True, squeeze=False)
    for ax, (title, values) in zip(axes[0], panels):
        ax.scatter(s[:, 0], s[:, j - 1], s=2, alpha=0.15, color="lightgray", label="the scene")
        ax.scatter(values[:, 0], values[:, j - 1], s=2, alpha=0.3, label="after the change")
        ax.set_title(title)
        ax.set_xlabel("s1")
    axes[0, 0].set_ylabel(f"s{j}")
    axes[0, min(1, len(panels) - 1)].legend(loc="upper left", markerscale=5)
    return fig
