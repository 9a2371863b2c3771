"""Feature suppression on rendered scenes: the paper's i.i.d. batches against contrast groups.

Chapter 5's most crowded setting (all seven semantics captioned, none perturbed) is trained twice
on the same pictures for the same steps: once with i.i.d. batches, once with batches that mix
contrast groups (scenes sharing every factor but the shape,
:func:`~mmcl_helpers.datasets.scenes.sample_shape_groups`) with i.i.d. pairs. The most perturbed
setting is trained with groups as well, to measure whether the groups let perturbed factors in.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmcl_helpers.core import validation as v
from mmcl_helpers.core.model_store import PlannedTraining, merge_plans
from mmcl_helpers.core.profiles import ImageTextProfile, image_text_profile
from mmcl_helpers.datasets.naming import named_perturbation_sweep, named_selection_sweep
from mmcl_helpers.image_text.sweeps import ImageTextRun, combined_seconds, run_scene_sweeps, sweep_plan

__all__ = ["SUPPRESSION_GROUPS", "SuppressionRun", "run_feature_suppression", "suppression_plan"]

#: Share of each batch in contrast groups and scenes per group, for a profile without groups.
SUPPRESSION_GROUPS: dict[str, float | int] = {"group_fraction": 0.75, "group_size": 4}


@dataclass
class SuppressionRun:
    """Scores of the comparison.

    Attributes:
        scores: long table as :attr:`~mmcl_helpers.image_text.sweeps.ImageTextRun.scores`, plus a
            column ``batches`` (``"i.i.d."`` or ``"contrast groups"``); settings are labelled
            ``"all seven"`` and ``"most perturbed"``.
        profile: the profile both runs trained with (contrast groups switched on).
        seconds: render, train and probe time of the runs trained here (settings taken from
            ``sweeps`` cost nothing), and ``reused``: how many settings came from ``sweeps``.
    """

    scores: pd.DataFrame
    profile: ImageTextProfile
    seconds: dict[str, float]

    def table(self, probe: str = "mlp") -> pd.DataFrame:
        """Factor x (batches, setting, encoder) scores of one probe (seed mean)."""
        df = self.scores[self.scores["probe"] == probe]
        return df.pivot_table(index="factor", columns=["batches", "setting", "encoder"],
                              values="score", aggfunc="mean", sort=False)

    def summary(self, perturbed: tuple[str, ...] = ("x_pos", "y_pos")) -> dict[str, float]:
        """The numbers chapter 5 quotes: the shape from ẑ_x and ẑ_t in the crowded setting with
        each kind of batch; with groups, the shape and the worst of the ``perturbed`` (discrete)
        factors from ẑ_x in the most perturbed setting, the worst image-specific score and the
        worst phrasing score of either setting."""
        from mmcl_helpers.datasets.scenes import IMAGE_FACTORS

        g = "contrast groups"
        groups = self.scores.query("batches == @g and probe == 'mlp'")
        mean = groups.groupby(["setting", "factor", "encoder"])["score"].mean()
        return {
            "shape_iid_x": self.cell("i.i.d.", "all seven", "shape"),
            "shape_iid_t": self.cell("i.i.d.", "all seven", "shape", "t"),
            "shape_groups_x": self.cell(g, "all seven", "shape"),
            "shape_groups_t": self.cell(g, "all seven", "shape", "t"),
            "most_shape_x": self.cell(g, "most perturbed", "shape"),
            "most_perturbed_max": max(self.cell(g, "most perturbed", f) for f in perturbed),
            "image_max": float(mean[mean.index.get_level_values("factor").isin(IMAGE_FACTORS)].max()),
            "template_max": float(mean[mean.index.get_level_values("factor") == "template"].max()),
        }

    def cell(self, batches: str, setting: str, factor: str, encoder: str = "x",
             probe: str = "mlp") -> float:
        """One seed-mean score."""
        df = self.scores.query("batches == @batches and setting == @setting and factor == @factor "
                               "and encoder == @encoder and probe == @probe")
        if df.empty:
            raise KeyError(f"no score for batches={batches!r}, setting={setting!r}, "
                           f"factor={factor!r}, encoder={encoder!r}, probe={probe!r}.")
        return float(df["score"].mean())


def run_feature_suppression(
    profile: ImageTextProfile | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
    sweeps: ImageTextRun | None = None,
) -> SuppressionRun:
    """Train the most crowded setting with i.i.d. batches and with contrast groups (same scenes,
    same steps), and the most perturbed setting with contrast groups.

    Args:
        profile: sizes; default the active profile's. One without contrast groups
            (``group_fraction == 0``) gets :data:`SUPPRESSION_GROUPS`.
        seed, device, progress, cache_dir: as in :func:`~mmcl_helpers.image_text.sweeps.run_scene_sweeps`.
        sweeps: a :func:`~mmcl_helpers.image_text.sweeps.run_scene_sweeps` run of the same profile and seed
            whose batches already have contrast groups: its all-seven and most perturbed columns
            are the same models, so their scores are taken from it instead of training them again
            (settings it lacks are trained). Anything else is ignored and both are trained.

    Returns:
        :class:`SuppressionRun` (three models per seed).
    """
    v.check_params("run_feature_suppression",
                   profile=(profile, [v.InstanceOf(ImageTextProfile), None]), seed=(seed, v.NONNEG_INT))
    t0 = time.perf_counter()
    profile, iid, grouped, frames = _suppression_parts(profile, seed, sweeps)
    reused = len(frames)
    runs = {"i.i.d.": run_scene_sweeps(profile, seed, device=device, progress=progress,
                                       cache_dir=cache_dir, iid_batches=True, settings=iid)}
    if grouped:
        runs["contrast groups"] = run_scene_sweeps(
            profile, seed, device=device, progress=progress, cache_dir=cache_dir, settings=grouped)
    for name, run in runs.items():
        frames.append(run.scores.assign(batches=name))
    seconds = combined_seconds(list(runs.values()), t0, reused)
    return SuppressionRun(pd.concat(frames, ignore_index=True), profile, seconds)


def _suppression_parts(profile: ImageTextProfile | None, seed: int, sweeps: ImageTextRun | None):
    """The comparison's profile, its i.i.d. and grouped settings to train, and the score frames
    taken from ``sweeps`` (whose settings are then not trained)."""
    profile = profile or image_text_profile()
    if profile.group_fraction == 0:
        profile = profile.with_overrides(**SUPPRESSION_GROUPS)
    everything = list(named_selection_sweep().items())[-1]
    most = list(named_perturbation_sweep().items())[0]
    wanted = {"all seven": everything, "most perturbed": most}
    frames = []
    if isinstance(sweeps, ImageTextRun) and profile.group_fraction > 0 and sweeps.trained_like(profile, seed):
        for name, (label, _) in list(wanted.items()):
            part = sweeps.scores[sweeps.scores["setting"] == label]
            if not part.empty:
                frames.append(part.assign(sweep="crowded", setting=name, batches="contrast groups"))
                del wanted[name]
    iid = {"crowded": {"all seven": everything[1]}}
    grouped = {"crowded": {name: bias for name, (_, bias) in wanted.items()}} if wanted else None
    return profile, iid, grouped, frames


def suppression_plan(profile: ImageTextProfile | None = None, reuse_sweeps: bool = False
                     ) -> list[PlannedTraining]:
    """What :func:`run_feature_suppression` trains with ``profile``; ``reuse_sweeps``: it is given
    the :func:`~mmcl_helpers.image_text.sweeps.run_scene_sweeps` run of the same profile and seed
    (as chapter 5 does), whose grouped models it reuses when the profile has contrast groups."""
    profile = profile or image_text_profile()
    reused = reuse_sweeps and profile.group_fraction > 0
    profile, iid, grouped, _ = _suppression_parts(profile, 0, None)
    return merge_plans(sweep_plan(iid, profile),
                       sweep_plan(grouped, profile) if grouped and not reused else [])
