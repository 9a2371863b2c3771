"""The values Cai et al. (2025) report, for the comparison table at the end of each chapter.

Figure cells are read from CSV files shipped with the package (``paper_values/``, transcribed from
the preprint); tables quoted in the text are constants below. Nothing here is ever used as a
result: chapters compute their own numbers and set these beside them.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import pandas as pd

from mmcl_helpers.core.biases import format_set

__all__ = [
    "figure_values",
    "TABLE5_LINEAR_ZX",
    "TABLE4_LINEAR_ZX",
    "comparison_table",
    "compare_to_figure",
    "FIG4_CLASSIFICATION_MCC",
    "compare_to_fig10",
]

_FILES = {
    "fig3": "fig3_selection_r2_nonlinear.csv",
    "fig5": "fig5_mpi3d_mcc_nonlinear.csv",
    "fig6": "fig6_causal3dident_zx_nonlinear.csv",
    "fig7": "fig7_perturbation_r2_nonlinear.csv",
    # Fig. 10 (App. C.3): downstream tasks on the perturbation-sweep encoders. The preprint's plot
    # is vector graphics; each mean line's points were read from its coordinates against the
    # axis ticks (rows y1..y4: R² in distribution; class_id / class_ood: MCC of y2 > median in
    # distribution / with s9, s10 shifted), rounded to two decimals.
    "fig10": "fig10_downstream_perturbation.csv",
}

# Table 5: selected [8], perturbed [2], linear probe on z_hat_x (s1..s10, mx, mt).
TABLE5_LINEAR_ZX = {
    "independent": [0.00, 0.01, 0.97, 0.98, 0.97, 0.95, 0.99, 0.98, 0.00, 0.00, 0.00, 0.00],
    "dependent": [0.67, 0.57, 0.97, 0.99, 0.99, 0.98, 0.99, 0.97, 0.63, 0.63, 0.00, 0.00],
}
# Table 4: selected [3], encoding size 5, linear probe on z_hat_x (s1..s10, mx, mt), every cell as
# printed in the preprint's App. C.2 (NOTES summarises s4..s10 as the range 0.01-0.04).
TABLE4_LINEAR_ZX_INDEPENDENT = [0.98, 0.96, 0.98, 0.01, 0.03, 0.03, 0.02, 0.04, 0.01, 0.02, 0.02, 0.00]
TABLE4_LINEAR_ZX = {
    "independent": TABLE4_LINEAR_ZX_INDEPENDENT,
    "dependent": [0.98, 0.99, 0.99, 0.14, 0.23, 0.16, 0.10, 0.22, 0.42, 0.36, 0.01, 0.00],
}

# Fig. 4 (independent semantics), classification MCC of y2 > median, read off the plot (NOTES §3):
# in distribution and under the heavy-tailed shift of s9, s10. Keys are the selected sets.
FIG4_CLASSIFICATION_MCC = {
    "id": {"{1}": 0.25, "[5]": 0.88},
    "ood": {"[5]": 0.74, "[6]": 0.74, "[8]": 0.68, "[9]": 0.58, "[10]": 0.48},
}


def figure_values(figure: str) -> pd.DataFrame:
    """One figure's cells in long form: columns panel, factor (``task`` for Fig. 10), column, value.

    Args:
        figure: ``"fig3"``, ``"fig5"``, ``"fig6"``, ``"fig7"`` or ``"fig10"``.
    """
    if figure not in _FILES:
        raise ValueError(f"unknown figure {figure!r}; allowed: {sorted(_FILES)}.")
    path = resources.files("mmcl_helpers.core") / "paper_values" / _FILES[figure]
    with path.open() as fh:
        wide = pd.read_csv(fh, dtype=str)
    keys = list(wide.columns[:2])
    long = wide.melt(id_vars=keys, var_name="column", value_name="value")
    long["value"] = long["value"].astype(float)
    return long


def comparison_table(
    ours: pd.DataFrame, paper: pd.DataFrame, on: list[str], profile: str,
    labels: Sequence[str] = (), stats: Sequence[str] = (),
) -> pd.DataFrame:
    """Paper value, this run's value, their difference and the profile, side by side.

    Every comparison with the paper in the package goes through here: the cells both tables
    hold (an inner merge, in the paper's order), ``difference = ours - paper``.

    Args:
        ours: must hold the ``on`` columns and ``ours`` (and ``labels``, ``stats``).
        paper: must hold the ``on`` columns and ``paper``.
        on: the key columns (e.g. ``["panel", "factor", "column"]``).
        profile: the profile name this run used.
        labels: further columns of ``ours`` shown after the keys (e.g. ``role``, ``setting``).
        stats: further columns of ``ours`` shown after ``ours`` (e.g. ``ours_sd``).

    Returns:
        columns ``*on, *labels, paper, ours, *stats, difference, profile``.
    """
    merged = paper[[*on, "paper"]].merge(ours, on=on, how="inner")
    merged["difference"] = merged["ours"] - merged["paper"]
    merged["profile"] = profile
    return merged[[*on, *labels, "paper", "ours", *stats, "difference", "profile"]]


def compare_to_figure(
    scores: pd.DataFrame,
    figure: str,
    dependent: bool,
    column_of: str,
    profile: str,
    probe: str = "mlp",
) -> pd.DataFrame:
    """Every cell of a paper figure (Fig. 3 or 7) next to this run's mean over seeds.

    Args:
        scores: :attr:`NumericalRun.scores` of a sweep.
        figure: ``"fig3"`` (columns named by the selected set) or ``"fig7"`` (by the perturbed set).
        dependent: which half of the figure the run corresponds to.
        column_of: ``"selected"`` or ``"perturbed"``: which set names a column.
        profile: the profile name of the run.
        probe: the probe the figure used (the paper's Fig. 3 and 7 are nonlinear: ``"mlp"``).

    Returns:
        columns panel, factor, column, role, paper, ours, ours_sd (over seeds; 0 for one seed),
        difference, profile. Cells the run did not compute are left out.
    """
    df = scores[scores["probe"] == probe].copy()
    df["column"] = df[column_of].map(format_set)
    df["panel"] = ("dependent" if dependent else "independent") + "_z" + df["encoder"]
    ours = (
        df.groupby(["panel", "factor", "column", "role"], sort=False)["score"]
        .agg(ours="mean", ours_sd=lambda v: float(v.std(ddof=0)))
        .reset_index()
    )
    paper = figure_values(figure).rename(columns={"value": "paper"})
    return comparison_table(ours, paper, ["panel", "factor", "column"], profile, labels=["role"],
                            stats=["ours_sd"])


def compare_to_fig10(downstream: pd.DataFrame, dependent: bool, profile: str) -> pd.DataFrame:
    """Every cell of the paper's Fig. 10 next to this run's downstream score (mean over seeds).

    Args:
        downstream: :func:`mmcl_helpers.numerical.downstream.run_downstream` of a perturbation sweep
            (columns perturbed, task, split, seed, score).
        dependent: which half of the figure the run corresponds to.
        profile: the profile name of the run.

    Returns:
        columns panel, task (y1..y4, class_id, class_ood), column (the perturbed set), paper,
        ours, ours_sd (over seeds; 0 for one seed), difference, profile. Cells the run did not
        compute are left out.
    """
    missing = {"perturbed", "task", "split", "score"} - set(downstream.columns)
    if missing:
        raise ValueError(f"downstream lacks the columns {sorted(missing)}; give the table of "
                         "run_downstream.")
    df = downstream.copy()
    df["task"] = [f"class_{sp}" if t == "class" else t for t, sp in zip(df["task"], df["split"])]
    df["column"] = df["perturbed"]
    df["panel"] = "dependent_zx" if dependent else "independent_zx"
    ours = (df.groupby(["panel", "task", "column"], sort=False)["score"]
            .agg(ours="mean", ours_sd=lambda v: float(v.std(ddof=0))).reset_index())
    paper = figure_values("fig10").rename(columns={"value": "paper"})
    return comparison_table(ours, paper, ["panel", "task", "column"], profile, stats=["ours_sd"])
