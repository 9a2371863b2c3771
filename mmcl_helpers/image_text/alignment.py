"""The late alignment weight on rendered scenes: InfoNCE as in Eq. (1) against a stronger pull.

Chapter 5's most perturbed setting (every factor captioned, all but the shape redrawn at random)
is where what varies inside a shape cluster (the object's size, the phrasing) lingers longest.
:func:`run_alignment_comparison` trains it on the same pictures for the same steps with the
paper's weights (``align_weight=1``) and reads the profile's own model of that setting from the
sweeps, or trains it too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mmcl_helpers.core import validation as v
from mmcl_helpers.core.model_store import PlannedTraining, merge_plans
from mmcl_helpers.core.profiles import ImageTextProfile, image_text_profile
from mmcl_helpers.datasets.naming import named_perturbation_sweep
from mmcl_helpers.datasets.scenes import IMAGE_FACTORS
from mmcl_helpers.image_text.sweeps import ImageTextRun, combined_seconds, run_scene_sweeps, sweep_plan

__all__ = ["AlignmentRun", "run_alignment_comparison", "alignment_plan"]


@dataclass
class AlignmentRun:
    """Scores of the comparison.

    Attributes:
        scores: long table as :attr:`~mmcl_helpers.image_text.sweeps.ImageTextRun.scores` plus a column
            ``loss``: ``"Eq. 1"`` (alignment weight 1) or ``"late pull"`` (the profile's).
        profile: the profile of the ``"late pull"`` run.
        seconds: render, train and probe time of what was trained here, ``total``, and
            ``reused`` (1 when the profile's model came from the sweeps).
    """

    scores: pd.DataFrame
    profile: ImageTextProfile
    seconds: dict[str, float]

    def summary(self) -> pd.DataFrame:
        """Rows ``Eq. 1`` and ``late pull``; columns: the shape from ẑ_x, the worst
        image-specific factor from ẑ_x and from ẑ_t, and the phrasing from ẑ_t (MLP probe,
        seed mean)."""
        df = self.scores[self.scores["probe"] == "mlp"]
        mean = df.groupby(["loss", "factor", "encoder"])["score"].mean()
        rows = {}
        for loss in ("Eq. 1", "late pull"):
            m = mean.loc[loss]
            image = m[m.index.get_level_values("factor").isin(IMAGE_FACTORS)]
            rows[loss] = {
                "shape (ẑ_x)": float(m[("shape", "x")]),
                "image-specific, worst (ẑ_x)": float(image.xs("x", level="encoder").max()),
                "image-specific, worst (ẑ_t)": float(image.xs("t", level="encoder").max()),
                "phrasing (ẑ_t)": float(m[("template", "t")]),
            }
        return pd.DataFrame(rows).T.rename_axis("loss")


def run_alignment_comparison(
    profile: ImageTextProfile | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
    sweeps: ImageTextRun | None = None,
) -> AlignmentRun:
    """Train the most perturbed scene setting with alignment weight 1 and with the profile's.

    Args:
        profile: sizes; default the active profile's. Its ``align_weight`` must differ from 1
            (otherwise there is nothing to compare).
        seed, device, progress, cache_dir: as in :func:`~mmcl_helpers.image_text.sweeps.run_scene_sweeps`.
        sweeps: a :func:`~mmcl_helpers.image_text.sweeps.run_scene_sweeps` run of the same profile and data
            seed that holds the most perturbed column: its model is the ``"late pull"`` one, so
            its scores are taken instead of training it again.

    Returns:
        :class:`AlignmentRun` (two models per seed, one of them possibly reused).

    Raises:
        ValueError: ``profile.align_weight`` is 1.
    """
    v.check_params("run_alignment_comparison",
                   profile=(profile, [v.InstanceOf(ImageTextProfile), None]), seed=(seed, v.NONNEG_INT))
    t0 = time.perf_counter()
    profile, label, most, runs, frames = _alignment_parts(profile, seed, sweeps)
    done = {name: run_scene_sweeps(p, seed, device=device, progress=progress, cache_dir=cache_dir,
                                   settings={"alignment": {label: most}})
            for name, p in runs.items()}
    reused = len(frames)
    frames += [run.scores.assign(loss=name) for name, run in done.items()]
    seconds = combined_seconds(list(done.values()), t0, reused)
    return AlignmentRun(pd.concat(frames, ignore_index=True), profile, seconds)


def _alignment_parts(profile: ImageTextProfile | None, seed: int, sweeps: ImageTextRun | None):
    """The profile, the most perturbed setting (label, bias), the profiles to train it with and
    the score frames taken from ``sweeps``."""
    profile = profile or image_text_profile()
    if profile.align_weight == 1:
        raise ValueError(f"profile {profile.name!r} has align_weight 1, the paper's loss: there is no "
                         "late pull to compare with; pass a profile with align_weight != 1.")
    label, most = next(iter(named_perturbation_sweep().items()))
    frames, runs = [], {"Eq. 1": profile.with_overrides(align_weight=1.0)}
    if isinstance(sweeps, ImageTextRun) and sweeps.trained_like(profile, seed, label):
        frames.append(sweeps.scores[sweeps.scores["setting"] == label].assign(loss="late pull"))
    else:
        runs["late pull"] = profile
    return profile, label, most, runs, frames


def alignment_plan(profile: ImageTextProfile | None = None, reuse_sweeps: bool = False
                   ) -> list[PlannedTraining]:
    """What :func:`run_alignment_comparison` trains with ``profile``; ``reuse_sweeps``: it is given
    the :func:`~mmcl_helpers.image_text.sweeps.run_scene_sweeps` run of the same profile and seed
    (as chapter 5 does), whose model of the most perturbed setting is the late-pull one."""
    _, label, most, runs, _ = _alignment_parts(profile, 0, None)
    if reuse_sweeps:
        runs.pop("late pull", None)
    return merge_plans(*(sweep_plan({"alignment": {label: most}}, p) for p in runs.values()))
