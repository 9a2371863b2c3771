"""Compute profiles: one small table that decides every size in the book.

A chapter never hard-codes a step count. It asks for the active profile and reads its sizes::

    from mmcl_helpers.core.profiles import active_profile, image_text_profile
    prof = active_profile()          # MMCL_PROFILE, else "colab" on Colab, "gpu" with CUDA, "cpu"
    print(prof)                      # shows the row the chapter runs with
    sizes = image_text_profile()     # the same profile's image-text sizes (chapters 5 and 6)

Each profile has two rows of sizes, both in this module: :data:`PROFILES` for the numerical
study (chapters 1-4) and :data:`IMAGE_TEXT_PROFILES` for the image-text models (chapters 5-6);
:func:`profiles_table` prints either or both.

``smoke`` exists for tests and CI (every notebook in about a minute on 2 CPU cores), ``cpu`` is the
honest laptop run, ``colab`` is a free Colab session (one T4, at most 15 minutes of training per
chapter in :func:`~mmcl_helpers.book_support.costs.chapter_costs`; the ``cpu`` sizes, whose results
show the theorem's pattern, in eager mode), ``gpu`` is sized for a dedicated GPU (three seeds, every
column), and ``paper`` copies the hyper-parameters of Cai et al. (2025), App. C, exactly (it is
meant for a large GPU). The default is ``$MMCL_PROFILE``, else ``colab`` on Colab, else ``gpu``
with CUDA, else ``cpu`` (:func:`profile_choice` says which and why).

Why ``cpu`` and ``gpu`` use cosine similarity: Eq. (2) of the paper, which the theory analyses, is
InfoNCE with negative squared Euclidean similarity and temperature 1. With the small batches a CPU
can afford, that form collapses the representation onto two or three directions; cosine similarity
with a temperature of 0.1 and one spare output dimension does not. ``paper`` keeps the Euclidean
form. Chapter 2 says this to the reader as well.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace

import pandas as pd

from mmcl_helpers.core import validation as v
from mmcl_helpers.core.dry_run import dry_run_sizes
from mmcl_helpers.core.precision import PRECISIONS

__all__ = [
    "Profile",
    "PROFILE_FIELDS",
    "PROFILES",
    "UnknownProfileError",
    "get_profile",
    "active_profile",
    "profile_choice",
    "on_colab",
    "profiles_table",
    "default_device",
    "ImageTextProfile",
    "IMAGE_TEXT_PROFILES",
    "image_text_profile",
    "image_text_table",
    "image_text_departures",
    "RECIPE_REASONS",
    "PAPER_IMAGE_TEXT",
    "FOLDED_FIELDS",
    "NOT_SETTINGS",
    "profile_with_overrides",
]


class UnknownProfileError(ValueError):
    """Raised for a profile name that is not one of ``PROFILES``."""


@dataclass(frozen=True)
class Profile:
    """Sizes for one compute budget.

    Attributes:
        name: profile name.
        steps: MMCL training steps per model.
        batch_size: pairs per training step.
        encoder: ``"compact"`` (hidden layers of width ``hidden`` with batch norm) or ``"paper"``
            (7-layer MLP, widths 10,50,50,50,50,10 times the input dimension, no normalisation).
        hidden: width of the compact encoder's hidden layers.
        depth: number of hidden layers of the compact encoder.
        lr: Adam learning rate (peak, after warm-up).
        warmup: fraction of steps spent warming the learning rate up (0 = constant schedule).
        similarity: ``"cosine"`` or ``"euclidean"`` (negative squared distance).
        tau: InfoNCE temperature.
        extra_dims: encoder output size minus the number of unbiased semantics.
        grad_clip: gradient 2-norm clipping threshold, per model.
        probe_train: samples used to fit each probe.
        probe_test: held-out samples used to score each probe.
        probe_steps: Adam steps of the MLP probe.
        seeds: independent seeds per setting.
        dependent_stride: run every k-th column of the dependent-semantics sweeps (1 = all).
        compile: compile the encoders and the loss with ``torch.compile`` (fuses the many small
            element-wise operations that dominate a CPU step; ``benchmarks/`` measures the
            gain). Falls back to plain eager mode, with a warning, where compiling fails.
        precision: ``"fp32"`` (float32, TF32 off: every profile, the paper's included),
            ``"tf32"`` (TF32 matrix products on CUDA) or ``"bf16"`` (encoders under bfloat16
            autocast, loss in float32); :mod:`mmcl_helpers.core.precision` applies it. At tiny sizes,
            short of convergence, bf16 moves linear-probe R^2 measurably
            (``tests/test_programme.py`` measures and bounds it), so the paper profile keeps
            fp32; TF32 rounds less than bf16 and is the faster choice where GPU time is what
            limits.
    """

    name: str
    steps: int
    batch_size: int
    encoder: str
    hidden: int
    depth: int
    lr: float
    warmup: float
    similarity: str
    tau: float
    extra_dims: int
    grad_clip: float
    probe_train: int
    probe_test: int
    probe_steps: int
    seeds: int
    dependent_stride: int
    compile: bool = False
    precision: str = "fp32"

    def __post_init__(self) -> None:
        v.check_fields(self, PROFILE_FIELDS)
        if self.encoder == "compact" and self.hidden < 1:
            v.check_param("hidden", self.hidden, v.POSITIVE_INT, "Profile (encoder 'compact')")

    def with_overrides(self, **changes) -> Profile:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def __str__(self) -> str:
        cells = ", ".join(f"{k}={v}" for k, v in asdict(self).items() if k != "name")
        return f"Profile {self.name!r}: {cells}"


#: What each :class:`Profile` field accepts (checked on construction; the command line checks its
#: flags against the same rules).
PROFILE_FIELDS = {
    "name": v.InstanceOf(str), "steps": v.POSITIVE_INT,
    # InfoNCE needs negatives: a batch of one pair has loss 0 whatever the encoders do.
    "batch_size": v.Interval(v.Integral, 2, None, closed="left"),
    "encoder": v.Options(str, ("compact", "paper")), "hidden": v.NONNEG_INT, "depth": v.POSITIVE_INT,
    "lr": v.POSITIVE_REAL, "warmup": v.Interval(v.Real, 0, 1, closed="left"),
    "similarity": v.Options(str, ("cosine", "euclidean")), "tau": v.POSITIVE_REAL,
    "extra_dims": v.NONNEG_INT, "grad_clip": v.POSITIVE_REAL,
    "probe_train": v.Interval(v.Integral, 2, None, closed="left"),
    "probe_test": v.Interval(v.Integral, 2, None, closed="left"), "probe_steps": v.POSITIVE_INT,
    "seeds": v.POSITIVE_INT, "dependent_stride": v.POSITIVE_INT, "compile": v.BOOLEAN,
    "precision": v.Options(str, PRECISIONS),
}

#: The numerical study's sizes, one :class:`Profile` per compute profile.
PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("smoke", steps=150, batch_size=256, encoder="compact", hidden=64, depth=2,
                lr=3e-3, warmup=0.1, similarity="cosine", tau=0.1, extra_dims=1, grad_clip=2.0,
                probe_train=2000, probe_test=2000, probe_steps=150, seeds=1, dependent_stride=3),
        Profile("cpu", steps=16000, batch_size=512, encoder="compact", hidden=96, depth=3,
                lr=6e-3, warmup=0.05, similarity="cosine", tau=0.1, extra_dims=1, grad_clip=2.0,
                probe_train=10000, probe_test=5000, probe_steps=1000, seeds=1, dependent_stride=3,
                compile=True),
        # A free Colab session (one T4, no cache kept between sessions): the cpu profile's sizes,
        # whose results show the theorem's pattern, in eager mode (compiling costs minutes there).
        Profile("colab", steps=16000, batch_size=512, encoder="compact", hidden=96, depth=3,
                lr=6e-3, warmup=0.05, similarity="cosine", tau=0.1, extra_dims=1, grad_clip=2.0,
                probe_train=10000, probe_test=5000, probe_steps=1000, seeds=1, dependent_stride=3),
        Profile("gpu", steps=15000, batch_size=2048, encoder="compact", hidden=256, depth=4,
                lr=2e-3, warmup=0.05, similarity="cosine", tau=0.1, extra_dims=1, grad_clip=2.0,
                probe_train=50000, probe_test=20000, probe_steps=3000, seeds=3, dependent_stride=1),
        Profile("paper", steps=100_000, batch_size=6144, encoder="paper", hidden=0, depth=6,
                lr=1e-4, warmup=0.0, similarity="euclidean", tau=1.0, extra_dims=0,
                grad_clip=2.0, probe_train=50000, probe_test=20000, probe_steps=5000, seeds=3,
                dependent_stride=1),
    )
}


def default_device() -> str:
    """``"cuda"`` when a GPU is visible to torch, else ``"cpu"``."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def get_profile(name: str) -> Profile:
    """The profile called ``name`` (case-insensitive); a clear error for any other name."""
    key = str(name).strip().lower()
    if key not in PROFILES:
        raise UnknownProfileError(
            f"Unknown compute profile {name!r}. Allowed: {', '.join(PROFILES)} "
            "(set MMCL_PROFILE to one of them, or leave it unset for the default)."
        )
    return dry_run_sizes(PROFILES[key])  # unchanged unless MMCL_DRY_RUN=1 (a testing aid)


def on_colab() -> bool:
    """Whether this kernel runs on Google Colab (the module ``google.colab`` can be imported)."""
    import importlib

    try:
        importlib.import_module("google.colab")
    except ImportError:
        return False
    return True


def profile_choice(name: str | None = None) -> tuple[str, str]:
    """Which profile :func:`active_profile` picks, and why, in words: ``(name, reason)``.

    The order: ``name``; else ``$MMCL_PROFILE``; else ``"colab"`` on Colab (:func:`on_colab`);
    else ``"gpu"`` when torch sees CUDA; else ``"cpu"``. The name is not checked here.
    """
    if name:
        return str(name), "chosen in the set-up cell (PROFILE)"
    env = os.environ.get("MMCL_PROFILE")
    if env:
        return env, "set by the environment variable MMCL_PROFILE"
    if on_colab():
        return "colab", "the default on Colab, sized for a free T4 session"
    if default_device() == "cuda":
        return "gpu", "the default where torch sees a CUDA GPU"
    return "cpu", "the default without a GPU"


def active_profile(name: str | None = None) -> Profile:
    """The profile to run with: ``name``, else ``$MMCL_PROFILE``, else colab/gpu/cpu by platform
    (:func:`profile_choice`)."""
    return get_profile(profile_choice(name)[0])


def profiles_table(study: str = "numerical") -> pd.DataFrame:
    """All profiles side by side, one column per profile (the table printed in the book).

    Args:
        study: ``"numerical"`` (:data:`PROFILES`), ``"image_text"`` (:data:`IMAGE_TEXT_PROFILES`)
            or ``"all"`` (both, rows prefixed ``numerical.`` and ``image_text.``).
    """
    tables = {
        "numerical": pd.DataFrame({n: asdict(p) for n, p in PROFILES.items()}).drop(index="name"),
        "image_text": pd.DataFrame(
            {n: asdict(s) for n, s in IMAGE_TEXT_PROFILES.items()}).drop(index="name"),
    }
    if study == "all":
        return pd.concat([t.rename(index=lambda r, k=k: f"{k}.{r}") for k, t in tables.items()])
    if study not in tables:
        raise ValueError(f"study must be 'numerical', 'image_text' or 'all', got {study!r}.")
    return tables[study]


# ----------------------------------------------------------------------------------------------
# Image-text sizes (chapters 5 and 6)


@dataclass(frozen=True)
class ImageTextProfile:
    """Sizes of the image-text experiments for one compute profile.

    Why they differ from the paper's (tau 1, Adam lr 1e-5, 100,000 steps of 256 pairs,
    ResNet-18): a CPU affords minutes, not GPU-days. A temperature of 0.1 with Adam at lr 2e-3,
    warm-up and cosine decay trains the compact encoders in about a thousand steps; with tau 1
    and cosine similarity the loss barely moves in that budget (the logits are confined to
    [-1, 1]).

    ``smoke``, ``cpu`` and ``gpu`` also change the recipe where chapter 5 found the paper's
    i.i.d. batches crowd the shape out in a short run: contrast groups, the false-negative mask,
    a stride-1 first stage for settings with four or more unbiased factors and two output
    dimensions per unbiased factor; and where a short run leaves image-specific factors and the
    phrasing inside the clusters: a late pull on matched pairs (``align_weight``, ``align_from``).
    :func:`image_text_departures` lists every difference from the paper with its reason; ``paper``
    keeps the paper's hyper-parameters but not its ResNet-18 or its 200,000 MPI3D-complex steps.

    Attributes:
        name: the profile name (``smoke``, ``cpu``, ``gpu``, ``paper``).
        n_train: image-caption pairs in the training set (rendered once, cached).
        n_probe_train, n_probe_test: held-out pairs to fit the probes on and to score them on.
        steps: Adam steps per trained pair of encoders.
        batch_size: pairs per step.
        lr: peak learning rate (after warm-up; cosine decay afterwards when ``warmup`` > 0).
        warmup: fraction of the steps spent warming up.
        tau: InfoNCE temperature (cosine similarity).
        widths: channels of the image encoder's stages.
        hidden: width of both heads' hidden layer.
        text_embed, text_channels: word embedding size and 1-D conv channels of the text encoder.
        grad_clip: gradient 2-norm clipping threshold.
        probe_steps: Adam steps of each MLP probe.
        seeds: independent training seeds per setting.
        mpi3d_train: MPI3D training images used (at most the paper's 44,720 train split).
        first_stride: stride of the image encoder's first stage (1 keeps the stem's 32x32 map;
            see :class:`~mmcl_helpers.image_text.image_encoders.ImageEncoder`).
        group_fraction: share of each batch drawn as contrast groups (scenes that share every
            factor but the shape, :func:`~mmcl_helpers.datasets.scenes.sample_shape_groups`);
            0 gives the paper's i.i.d. batches. The rest of a batch is i.i.d.
        group_size: scenes per contrast group (2 .. 7).
        scene_columns: which settings chapter 5's sweeps train: ``"all"`` fourteen (thirteen
            models), or ``"key"`` the columns of
            :data:`~mmcl_helpers.image_text.sweeps.KEY_SCENE_COLUMNS` (seven models), to fit a CPU budget.
        false_negatives: ``"keep"`` (the paper's loss: every other caption in the batch is a
            negative) or ``"mask"``: captions that state the same thing as a pair's own caption,
            in any phrasing, are left out of its negatives (see
            :func:`~mmcl_helpers.core.losses.info_nce_terms`, argument ``exclude``).
        dims_per_factor: ``0`` gives the paper's encoding sizes
            (:data:`~mmcl_helpers.datasets.scenes.SCENE_ENCODING_SIZES`); ``k >= 1`` gives each
            setting ``max(paper's size, k * number of unbiased semantics)`` dimensions (see
            :func:`~mmcl_helpers.datasets.scenes.scene_encoding_size`).
        stride1_from: with ``first_stride=1``, only settings with at least this many unbiased
            semantics train with it; fewer train with stride 2 (:meth:`for_setting`). ``0``:
            every setting uses ``first_stride``.
        align_weight: weight of InfoNCE's alignment part (:func:`~mmcl_helpers.core.losses.info_nce`);
            1 is the paper's loss.
        align_from: fraction of the steps after which ``align_weight`` applies (1 before it;
            :meth:`align_weight_at`).
        group_warmup: fraction of the steps, at the start, in which each grouped pair is contrasted
            only with the other members of its contrast group (and the i.i.d. pairs of the batch
            add nothing to the loss; :meth:`contrasts_in_groups_only`). Those members share every
            factor but the shape (or, with ``group_shape_share`` < 1, but one other factor), so
            that factor is the only one the warm-up rewards telling apart (perturbed mentions
            aside). Where the captions do not state that factor, the groups contrast nothing and
            those steps use the whole batch
            (:func:`~mmcl_helpers.image_text.pair_training.warmup_exclude`); ``0``: no warm-up.
            Needs ``group_fraction`` > 0.
        text_uniformity: weight of an extra loss term that spreads the captions among themselves
            (:func:`~mmcl_helpers.core.losses.text_uniformity`, with the false-negative mask);
            ``0``: the paper's loss. It starts when the group warm-up ends
            (:meth:`spreads_captions`): during the warm-up the images are rewarded for the groups'
            factor alone, and a spread applied then rewards the text tower for telling captions
            apart by their perturbed mentions, which the images cannot follow (in cpu runs on
            captions whose every mention but the shape's is perturbed, the shape was then not
            learned). It stops at ``spread_until``.
        spread_until: fraction of the steps after which the caption-spread term stops (``1``: it
            runs to the last step). Must lie after the group warm-up when the term is on; a stop
            before the end leaves the last steps to InfoNCE and the late pull alone.
        group_shape_share: share of the contrast groups whose scenes differ in the shape; the
            others differ in one other semantic factor drawn for each group
            (:func:`~mmcl_helpers.datasets.scenes.sample_contrast_groups`). ``1``: every group
            varies the shape. A diagnosis option: the groups are hard negatives, and where the
            captions name many factors the factor that gets them wins over one that does not.
    """

    name: str
    n_train: int
    n_probe_train: int
    n_probe_test: int
    steps: int
    batch_size: int
    lr: float
    warmup: float
    tau: float
    widths: tuple[int, ...]
    hidden: int
    text_embed: int
    text_channels: int
    grad_clip: float
    probe_steps: int
    seeds: int
    mpi3d_train: int
    first_stride: int = 2
    group_fraction: float = 0.0
    group_size: int = 4
    scene_columns: str = "all"
    false_negatives: str = "keep"
    dims_per_factor: int = 0
    stride1_from: int = 0
    align_weight: float = 1.0
    align_from: float = 0.0
    group_warmup: float = 0.0
    text_uniformity: float = 0.0
    group_shape_share: float = 1.0
    spread_until: float = 1.0

    def __post_init__(self) -> None:
        v.check_fields(self, _IMAGE_TEXT_FIELDS)
        # Compared in steps, as spreads_captions applies it: a stop that rounds into the warm-up
        # would leave the spread switched on but never applied.
        warm = self.group_warmup_steps()
        if self.text_uniformity > 0 and math.ceil(self.spread_until * self.steps) <= warm:
            raise ValueError(f"ImageTextProfile: spread_until={self.spread_until!r} must lie after the "
                             f"group warm-up (group_warmup={self.group_warmup!r}, {warm} of {self.steps} "
                             "steps) when text_uniformity > 0; otherwise the caption spread would never "
                             "apply.")
        if self.group_warmup > 0 and self.group_fraction == 0:
            raise ValueError(f"ImageTextProfile: group_warmup={self.group_warmup!r} needs contrast "
                             "groups in the batches (group_fraction > 0); got group_fraction=0.")

    def for_setting(self, n_unbiased: int) -> ImageTextProfile:
        """The profile one setting trains with: a stride-2 first stage when it has fewer than
        ``stride1_from`` unbiased semantics, otherwise ``self`` unchanged."""
        v.check_params("ImageTextProfile.for_setting", n_unbiased=(n_unbiased, v.NONNEG_INT))
        if self.first_stride == 1 and n_unbiased < self.stride1_from:
            return replace(self, first_stride=2)
        return self

    def align_weight_at(self, step: int) -> float:
        """Weight of InfoNCE's alignment part at a 0-based ``step``: 1 (the paper's loss) before
        ``align_from * steps``, ``align_weight`` from then on."""
        return self.align_weight if step >= self.align_from * self.steps else 1.0

    def contrasts_in_groups_only(self, step: int) -> bool:
        """Whether a 0-based ``step`` lies in the group warm-up (the first ``group_warmup *
        steps`` steps), where a pair's negatives are only the other members of its contrast group."""
        return step < self.group_warmup * self.steps

    def spreads_captions(self, step: int) -> bool:
        """Whether the caption-spread term (``text_uniformity``) applies at a 0-based ``step``:
        from the end of the group warm-up (the first step without one) to before ``spread_until *
        steps``, never at weight 0."""
        return (self.text_uniformity > 0 and not self.contrasts_in_groups_only(step)
                and step < self.spread_until * self.steps)

    def group_warmup_steps(self) -> int:
        """Steps of the group warm-up: ``ceil(group_warmup * steps)`` (0 without one)."""
        return int(math.ceil(self.group_warmup * self.steps))

    def groups_per_batch(self) -> int:
        """Contrast groups in each batch: ``round(group_fraction * batch_size / group_size)``."""
        return int(round(self.group_fraction * self.batch_size / self.group_size))

    def with_overrides(self, **changes) -> ImageTextProfile:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


_AT_LEAST_2 = v.Interval(v.Integral, 2, None, closed="left")
_IMAGE_TEXT_FIELDS = {
    "name": v.InstanceOf(str), "n_train": _AT_LEAST_2, "n_probe_train": _AT_LEAST_2,
    "n_probe_test": _AT_LEAST_2, "steps": v.POSITIVE_INT, "batch_size": _AT_LEAST_2,
    "lr": v.POSITIVE_REAL, "warmup": v.Interval(v.Real, 0, 1, closed="left"), "tau": v.POSITIVE_REAL,
    "widths": v.SequenceOf(v.POSITIVE_INT, container=tuple), "hidden": v.POSITIVE_INT,
    "text_embed": v.POSITIVE_INT, "text_channels": v.POSITIVE_INT, "grad_clip": v.POSITIVE_REAL,
    "probe_steps": v.POSITIVE_INT, "seeds": v.POSITIVE_INT, "mpi3d_train": v.POSITIVE_INT,
    "first_stride": v.Options(int, (1, 2)), "group_fraction": v.Interval(v.Real, 0, 1, closed="left"),
    "group_size": v.Interval(v.Integral, 2, 7), "scene_columns": v.Options(str, ("all", "key")),
    "false_negatives": v.Options(str, ("keep", "mask")),
    "dims_per_factor": v.Interval(v.Integral, 0, 8, closed="both"),
    "stride1_from": v.Interval(v.Integral, 0, 7, closed="both"),
    "align_weight": v.Interval(v.Real, 0, None, closed="left"),
    "align_from": v.Interval(v.Real, 0, 1, closed="left"),
    "group_warmup": v.Interval(v.Real, 0, 1, closed="left"),
    "text_uniformity": v.Interval(v.Real, 0, None, closed="both"),
    "group_shape_share": v.Interval(v.Real, 0, 1, closed="both"),
    "spread_until": v.Interval(v.Real, 0, 1, closed="right"),
}

#: The image-text sizes of each compute profile (the numerical chapters use :data:`PROFILES`).
IMAGE_TEXT_PROFILES: dict[str, ImageTextProfile] = {
    s.name: s
    for s in (
        ImageTextProfile("smoke", n_train=2000, n_probe_train=600, n_probe_test=600, steps=40,
                         batch_size=64, lr=2e-3, warmup=0.1, tau=0.1, widths=(8, 16, 32), hidden=64,
                         text_embed=16, text_channels=32, grad_clip=5.0, probe_steps=100, seeds=1,
                         mpi3d_train=2000, first_stride=1,
                         group_fraction=0.75, group_size=4, false_negatives="mask", dims_per_factor=2,
                         stride1_from=4, align_weight=6.0, align_from=0.4,
                         scene_columns="key"),
        ImageTextProfile("cpu", n_train=20000, n_probe_train=4000, n_probe_test=4000, steps=1200,
                         batch_size=128, lr=2e-3, warmup=0.05, tau=0.1, widths=(16, 32, 64),
                         hidden=128, text_embed=32, text_channels=64, grad_clip=5.0, probe_steps=600,
                         seeds=1, mpi3d_train=20000, first_stride=1,
                         group_fraction=0.75, group_size=4, false_negatives="mask", dims_per_factor=2,
                         stride1_from=4, align_weight=6.0, align_from=0.4,
                         scene_columns="key"),
        ImageTextProfile("colab", n_train=20000, n_probe_train=4000, n_probe_test=4000, steps=1200,
                         batch_size=128, lr=2e-3, warmup=0.05, tau=0.1, widths=(16, 32, 64),
                         hidden=128, text_embed=32, text_channels=64, grad_clip=5.0, probe_steps=600,
                         seeds=1, mpi3d_train=20000, first_stride=1,
                         group_fraction=0.75, group_size=4, false_negatives="mask", dims_per_factor=2,
                         stride1_from=4, align_weight=6.0, align_from=0.4,
                         scene_columns="key"),
        ImageTextProfile("gpu", n_train=80000, n_probe_train=10000, n_probe_test=10000, steps=10000,
                         batch_size=256, lr=1e-3, warmup=0.05, tau=0.1, widths=(32, 64, 128),
                         hidden=256, text_embed=64, text_channels=128, grad_clip=5.0,
                         probe_steps=2000, seeds=3, mpi3d_train=44720, first_stride=1,
                         group_fraction=0.75, group_size=4, false_negatives="mask", dims_per_factor=2,
                         stride1_from=4, align_weight=6.0, align_from=0.4),
        ImageTextProfile("paper", n_train=80000, n_probe_train=10000, n_probe_test=10000,
                         steps=100_000, batch_size=256, lr=1e-5, warmup=0.0, tau=1.0,
                         widths=(64, 128, 256), hidden=512, text_embed=128, text_channels=256,
                         grad_clip=5.0, probe_steps=5000, seeds=3, mpi3d_train=44720),
    )
}


def image_text_profile(name: str | None = None) -> ImageTextProfile:
    """The image-text sizes of a profile: ``name``, else the active profile (``MMCL_PROFILE``)."""
    return dry_run_sizes(IMAGE_TEXT_PROFILES[active_profile(name).name])  # unchanged unless MMCL_DRY_RUN=1



def image_text_table() -> pd.DataFrame:
    """All image-text sizes side by side, one column per profile (the table chapter 5 prints)."""
    return profiles_table("image_text")


#: The paper's image-text recipe (Cai et al. 2025, App. D for MPI3D-complex, App. E for
#: Causal3DIdent), one entry per :class:`ImageTextProfile` field that has a row in
#: :func:`image_text_departures`: ``(value, words)``. ``value`` is what the field would hold to
#: match the paper, or ``None`` where no value of the field does (the paper's ResNet-18 is not one
#: of the book's encoders, its step count differs between the two datasets); such a field is a
#: departure at every profile, ``paper`` included.
PAPER_IMAGE_TEXT: dict[str, tuple[object, str]] = {
    "n_train": (80_000, "80,000 Causal3DIdent scenes"),
    "n_probe_train": (10_000, "10,000"),
    "n_probe_test": (10_000, "10,000"),
    "steps": (None, "100,000 (Causal3DIdent), 200,000 (MPI3D-complex)"),
    "batch_size": (256, "256"),
    "lr": (1e-5, "1e-05 (Adam)"),
    "warmup": (0.0, "constant rate (no warm-up, no decay)"),
    "tau": (1.0, "1"),
    "widths": (None, "ResNet-18 with a 100-d linear head; text: one-hot tokens into a CNN"),
    "grad_clip": (None, "not stated for the image-text runs"),
    "probe_steps": (10_000, "10,000"),
    "seeds": (3, "3"),
    "mpi3d_train": (44_720, "44,720 (the train split)"),
    "first_stride": (2, "one image encoder for every setting"),
    "group_fraction": (0.0, "i.i.d. batches"),
    "scene_columns": ("all", "every setting: 13 models"),
    "false_negatives": ("keep", "every other caption is a negative"),
    "dims_per_factor": (0, "the paper's sizes (3-7)"),
    "align_weight": (1.0, "1 (Eq. 1)"),
    "text_uniformity": (0.0, "InfoNCE alone (Eq. 1)"),
}

#: Fields whose value is part of another field's row (their own value only matters through it):
#: field -> the row that shows it.
FOLDED_FIELDS: dict[str, str] = {
    "hidden": "widths", "text_embed": "widths", "text_channels": "widths",
    "group_size": "group_fraction", "stride1_from": "first_stride", "align_from": "align_weight",
    "group_warmup": "group_fraction", "group_shape_share": "group_fraction",
    "spread_until": "text_uniformity",
}

#: Fields that are no setting at all (never compared with the paper).
NOT_SETTINGS: frozenset[str] = frozenset({"name"})

#: Why a profile's image-text recipe may differ from the paper's, one reason per row of
#: :func:`image_text_departures` (every key of :data:`PAPER_IMAGE_TEXT`).
RECIPE_REASONS: dict[str, str] = {
    "n_train": "rendering and storing 80,000 pictures does not fit a CPU budget; fewer scenes, "
               "each seen more often",
    "n_probe_train": "fewer held-out scenes to fit the probes on, to fit the budget",
    "n_probe_test": "fewer held-out scenes to score the probes on, to fit the budget",
    "steps": "a CPU affords minutes, not GPU-days; every profile trains both datasets with one step "
             "count, so MPI3D-complex gets the Causal3DIdent count (at paper: half of its 200,000)",
    "batch_size": "a step's cost grows with the batch; smaller profiles halve it (or more) to fit "
                  "the budget",
    "lr": "a larger rate trains the compact encoders in about a thousand steps",
    "warmup": "with the larger rate, a short warm-up keeps the first steps stable and cosine decay "
              "lets a short run settle",
    "tau": "with cosine similarity and tau 1 the logits lie in [-1, 1] and the loss hardly moves "
           "in a CPU budget",
    "widths": "the book's own small residual CNN and word-CNN, sized by profile (no torchvision); "
              "a ResNet-18 is far beyond a CPU budget",
    "grad_clip": "the paper gives no clipping for these runs; the book clips at every profile as "
                 "a guard against rare large steps",
    "probe_steps": "fewer probe steps to fit the budget",
    "seeds": "fewer seeds to fit the budget; the spread over seeds is not measured at one seed",
    "mpi3d_train": "fewer MPI3D-complex training images to fit the budget",
    "first_stride": "a stride-1 first stage keeps the 32x32 map (as a ResNet-18's first stage "
                    "does), so the silhouettes stay apart next to several other factors; settings "
                    "with fewer unbiased factors learn the shape at stride 2, at half the cost",
    "group_fraction": "contrast groups (scenes sharing every factor but the shape) keep the shape "
                      "from being crowded out by easier factors (feature suppression); a warm-up "
                      "with negatives only inside the groups has the shape learned first",
    "scene_columns": "to fit a CPU budget, chapter 5 trains only the columns its comparisons read "
                     "(KEY_SCENE_COLUMNS)",
    "false_negatives": "captions that state the same thing are not negatives of each other, so the "
                       "loss no longer rewards telling them apart by their phrasing",
    "dims_per_factor": "cosine similarity leaves one dimension fewer than the output size; a "
                       "seven-valued shape needs more than one of them next to six other factors",
    "align_weight": "once the clusters are apart, InfoNCE at a small temperature hardly pulls on "
                    "what varies inside one (object size, phrasing); a stronger pull on matched "
                    "pairs late in training lowers it and keeps the theorem's minimisers, which "
                    "are perfectly aligned",
    "text_uniformity": "where the image encoder ignores a factor, InfoNCE stops separating captions "
                       "that differ only in it and both encoders can stay blind to it; a term that "
                       "spreads the captions among themselves keeps the text side apart",
}


def _recipe_value(p: ImageTextProfile, name: str) -> str:
    """One row of the departures table for a profile, in words (folded fields included)."""
    if name == "group_fraction":
        if p.group_fraction == 0:
            return "i.i.d. batches"
        text = (f"{p.groups_per_batch()} contrast groups of {p.group_size} per batch of "
                f"{p.batch_size} (share {p.group_fraction:g}), the rest i.i.d.")
        if p.group_shape_share < 1:
            text += (f"; {p.group_shape_share:g} of the groups vary the shape, the others another "
                     "factor drawn for each group")
        warm = p.group_warmup_steps()
        if warm > 0:
            text += f"; in the first {warm:,d} steps, negatives only inside a pair's own group"
        return text
    if name == "false_negatives":
        return {"keep": "every other caption is a negative",
                "mask": "captions stating the same thing are left out"}[p.false_negatives]
    if name == "first_stride":
        if p.first_stride == 1 and p.stride1_from > 0:
            return (f"first stage stride 1 where at least {p.stride1_from} unbiased factors "
                    "are captioned, else 2")
        return f"first stage stride {p.first_stride} for every setting"
    if name == "align_weight":
        if p.align_weight == 1:
            return "1 (Eq. 1)"
        start = int(math.ceil(p.align_from * p.steps))
        return (f"{p.align_weight:g} from step {start:,d} of {p.steps:,d} on (1 before)" if start > 0
                else f"{p.align_weight:g} throughout")
    if name == "text_uniformity":
        if p.text_uniformity == 0:
            return "InfoNCE alone (Eq. 1)"
        first = p.group_warmup_steps()
        last = int(math.ceil(p.spread_until * p.steps))
        return (f"InfoNCE + {p.text_uniformity:g} x caption-caption uniformity from step {first:,d} "
                f"until step {last:,d} of {p.steps:,d}")
    if name == "dims_per_factor":
        return ("the paper's sizes (3-7)" if p.dims_per_factor == 0
                else f"max(paper's size, {p.dims_per_factor} x unbiased factors)")
    if name == "widths":
        return (f"compact residual CNN, stages {p.widths}, heads of width {p.hidden}; text: "
                f"{p.text_embed}-d word embedding, {p.text_channels}-channel 1-D convs")
    if name == "warmup":
        return ("constant rate (no warm-up, no decay)" if p.warmup == 0
                else f"{p.warmup:g} of the steps warm-up, then cosine decay")
    if name == "scene_columns":
        return "every setting: 13 models" if p.scene_columns == "all" else "the key columns: 7 models"
    if name == "steps":
        return f"{p.steps:,d} (both datasets)"
    if name in ("n_train", "n_probe_train", "n_probe_test", "probe_steps", "mpi3d_train"):
        return f"{getattr(p, name):,d}"
    return f"{getattr(p, name):g}"


def image_text_departures(profile: ImageTextProfile | str | None = None) -> pd.DataFrame:
    """Every way a profile's image-text training departs from the paper's (App. D, E), and why.

    Generated from the fields of :class:`ImageTextProfile`: each field has a row
    (:data:`PAPER_IMAGE_TEXT`, :data:`RECIPE_REASONS`), is shown in another field's row
    (:data:`FOLDED_FIELDS`) or is no setting (:data:`NOT_SETTINGS`); ``tests/test_recipe.py``
    checks that no field is left out.

    Args:
        profile: an :class:`ImageTextProfile`, a profile name, or ``None`` for the active one.

    Returns:
        One row per field whose value differs from the paper's, or that no value of the field can
        match (the encoders, the step count of two datasets, clipping), index: the field; columns
        ``paper``, ``this profile`` and ``why``. The ``paper`` profile has rows too: it keeps the
        paper's hyper-parameters but not its ResNet-18 or its MPI3D-complex step count.
    """
    if profile is None or isinstance(profile, str):
        profile = image_text_profile(profile)
    v.check_params("image_text_departures", profile=(profile, v.InstanceOf(ImageTextProfile)))
    rows = []
    for name, (value, words) in PAPER_IMAGE_TEXT.items():
        if value is None or getattr(profile, name) != value:
            rows.append((name, words, _recipe_value(profile, name), RECIPE_REASONS[name]))
    return pd.DataFrame(rows, columns=["field", "paper", "this profile", "why"]).set_index("field")


def profile_with_overrides(profile, overrides: Sequence[str]):
    """``profile`` (a :class:`Profile` or an :class:`ImageTextProfile`) with each ``FIELD=VALUE`` of
    ``overrides`` applied (VALUE parsed as JSON; a list becomes a tuple), checked by the profile's
    own class. The held-out commands use it to score a candidate recipe without editing the package.

    Raises:
        ValueError: an item without ``=``, an unknown field, a VALUE that is not JSON, or a value
            the profile refuses; the message names the item and what is allowed.
    """
    names = [f.name for f in fields(type(profile)) if f.name != "name"]
    changes: dict = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or key.strip() not in names:
            raise ValueError(f"--set {item!r}: expected FIELD=VALUE with FIELD one of {', '.join(names)}")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            raise ValueError(f"--set {item!r}: VALUE must be JSON (a number, true/false, a quoted "
                             f"string or a list), got {raw!r}") from None
        changes[key.strip()] = tuple(value) if isinstance(value, list) else value
    try:
        return replace(profile, **changes)
    except (TypeError, ValueError) as err:
        raise ValueError(f"--set {' '.join(overrides)}: {err}") from None
