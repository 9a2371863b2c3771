"""Downstream tasks on frozen image representations, in and out of distribution (App. C.1).

Regression targets ``y_k = F(s_[d_k])`` for d = 3, 5, 7, 9 use a fixed nonlinear function of the
first d semantics; the classification label is ``y_2`` binarised at its training median. The
distribution shift replaces s9 and s10 by the heavy-tailed ``2 sign(s) |s|^2`` in the *image*, so a
representation that encodes s9, s10 sees inputs it never saw in training.
"""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from sklearn.metrics import matthews_corrcoef

from mmcl_helpers.core.biases import format_set
from mmcl_helpers.core.profiles import Profile
from mmcl_helpers.numerical.experiments import EVAL_SEED_OFFSET, NumericalRun
from mmcl_helpers.numerical.probes import mlp_classifier, mlp_r2
from mmcl_helpers.numerical.simulation import MultimodalSimulation
from mmcl_helpers.numerical.training import TrainResult

__all__ = ["target_function", "downstream_targets", "shift_semantics", "downstream_scores",
           "run_downstream", "downstream_summary", "downstream_figure", "TARGET_DIMS", "SHIFTED"]

TARGET_DIMS = (3, 5, 7, 9)
SHIFTED = (9, 10)


def target_function(s: torch.Tensor) -> torch.Tensor:
    """F(s) of App. C.1 for s of shape (N, d): polynomial, pairwise, triple and smooth terms.

    Returns:
        shape (N,).
    """
    p1, p2, p3 = s.sum(1), s.pow(2).sum(1), s.pow(3).sum(1)
    pairs = (p1**2 - p2) / 2  # sum over i<j of s_i s_j
    triples = (p1**3 - 3 * p1 * p2 + 2 * p3) / 6  # sum over i<j<k of s_i s_j s_k
    a = s.abs()
    return (
        p2 + 0.3 * p3 + 0.5 * pairs + 0.2 * triples
        + 0.7 * (torch.sin(s) + torch.cos(s)).sum(1)
        + 0.4 * torch.log1p(a).sum(1) + 0.4 * torch.exp(-a).sum(1)
    )


def downstream_targets(s: torch.Tensor, dims: Sequence[int] = TARGET_DIMS) -> torch.Tensor:
    """Targets y_k = F(s_[d_k]), shape (N, len(dims))."""
    return torch.stack([target_function(s[:, :d]) for d in dims], dim=1)


def shift_semantics(s: torch.Tensor, indices: Sequence[int] = SHIFTED) -> torch.Tensor:
    """Replace the 1-based ``indices`` of s (N, n) by ``2 sign(s) |s|^2`` (heavy-tailed)."""
    out = s.clone()
    for i in indices:
        out[:, i - 1] = 2 * torch.sign(s[:, i - 1]) * s[:, i - 1].abs() ** 2
    return out


@torch.no_grad()
def downstream_scores(
    sim: MultimodalSimulation,
    trained: TrainResult,
    profile: Profile,
    seed: int,
    dims: Sequence[int] = TARGET_DIMS,
    shifted: Sequence[int] = SHIFTED,
) -> pd.DataFrame:
    """Regression R^2 (in distribution) and classification MCC (in distribution and shifted).

    The labels always come from the true semantics; the shift changes only what the image shows
    for the ``shifted`` factors (and hence the targets computed from them).

    Returns:
        tidy table with columns seed, member, setting, selected and perturbed (paper notation),
        task (y1..y4 or class), split (id/ood), metric, score.
    """
    device = trained.f_x[0].in_mask.device
    gen = torch.Generator(device=device).manual_seed(seed + 2 * EVAL_SEED_OFFSET)
    n_tr, n_te = profile.probe_train, profile.probe_test
    lat = sim.model.sample(n_tr + 2 * n_te, gen)
    s = lat.s.clone()
    s[n_tr + n_te :] = shift_semantics(s[n_tr + n_te :], shifted)
    x = sim.g_x(torch.cat([s, lat.m_x], dim=1))
    dummy_t = torch.zeros(len(sim.biases), x.shape[0], max(sim.t_dims), device=device)
    z_x, _ = trained.represent(x, dummy_t)
    sizes = trained.encoding_sizes()
    y = downstream_targets(s, dims).cpu()
    label = (y[:, 1] > y[:n_tr, 1].median()).long()
    tr, te, ood = slice(0, n_tr), slice(n_tr, n_tr + n_te), slice(n_tr + n_te, None)
    rows = []
    probe_seed = seed + 2 * EVAL_SEED_OFFSET
    with torch.enable_grad():
        # One ensemble of probes for all settings, each reading its own output dimensions.
        r2 = mlp_r2(z_x[:, tr], y[tr].to(device), z_x[:, te], y[te],
                    [slice(j, j + 1) for j in range(len(dims))],
                    steps=profile.probe_steps, seed=probe_seed, in_dims=sizes)
        predict = mlp_classifier(z_x[:, tr], label[tr].to(device), steps=profile.probe_steps,
                                 seed=probe_seed, in_dims=sizes)
    pred_id, pred_ood = predict(z_x[:, te]), predict(z_x[:, ood])
    for k, bias in enumerate(sim.biases):
        key = (seed, k, bias.label, format_set(bias.selected), format_set(bias.perturbed))
        for t in range(len(dims)):
            rows.append((*key, f"y{t + 1}", "id", "r2", float(r2[k, t])))
        rows.append((*key, "class", "id", "mcc",
                     float(matthews_corrcoef(label[te].numpy(), pred_id[k]))))
        rows.append((*key, "class", "ood", "mcc",
                     float(matthews_corrcoef(label[ood].numpy(), pred_ood[k]))))
    columns = ["seed", "member", "setting", "selected", "perturbed", "task", "split", "metric",
               "score"]
    return pd.DataFrame(rows, columns=columns)


def run_downstream(run: NumericalRun, profile: Profile) -> pd.DataFrame:
    """:func:`downstream_scores` for every seed of a :class:`NumericalRun`, concatenated."""
    frames = [
        downstream_scores(sim, trained, profile, seed)
        for sim, trained, seed in zip(run.simulations, run.trained, run.config["seeds"])
    ]
    return pd.concat(frames, ignore_index=True)


def downstream_summary(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean and standard deviation over seeds of :func:`run_downstream` scores.

    Returns:
        columns task, split, selected, mean, std (std NaN for one seed), in the order of
        ``scores``.
    """
    return (scores.groupby(["task", "split", "selected"], sort=False)["score"]
            .agg(["mean", "std"]).reset_index())


def downstream_figure(summary: pd.DataFrame, title: str = "") -> plt.Figure:
    """Chapter 3's downstream panels: regression R^2 per target, classification MCC per split.

    Args:
        summary: :func:`~mmcl_helpers.numerical.downstream.downstream_summary` of a selection sweep.
        title: figure title.

    Returns:
        the figure (two panels, error bars are one standard deviation over seeds).
    """
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
