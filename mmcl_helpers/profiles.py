"""Compute profiles: one small table that decides every size in the book.

A chapter never hard-codes a step count. It asks for the active profile and reads its sizes::

    from mmcl_helpers.profiles import active_profile
    prof = active_profile()          # MMCL_PROFILE, else "gpu" with CUDA, else "cpu"
    print(prof)                      # shows the row the chapter runs with

``smoke`` exists for tests and CI (every notebook in about a minute on 2 CPU cores), ``cpu`` is the
honest laptop run, ``gpu`` is sized for a Colab T4, and ``paper`` copies the hyper-parameters of
Cai et al. (2025), App. C, exactly (it is meant for a large GPU).

Why ``cpu`` and ``gpu`` use cosine similarity: Eq. (2) of the paper, which the theory analyses, is
InfoNCE with negative squared Euclidean similarity and temperature 1. With the small batches a CPU
can afford, that form collapses the representation onto two or three directions; cosine similarity
with a temperature of 0.1 and one spare output dimension does not. ``paper`` keeps the Euclidean
form. Chapter 2 says this to the reader as well.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, replace

import pandas as pd

__all__ = [
    "Profile",
    "PROFILES",
    "UnknownProfileError",
    "get_profile",
    "active_profile",
    "profiles_table",
    "default_device",
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
            autocast, loss in float32); :mod:`mmcl_helpers.cost` applies it. At tiny sizes,
            short of convergence, bf16 moved linear-probe R^2 by up to about 0.1
            (``tests/test_programme.py`` allows 0.12), so the paper profile keeps fp32; TF32
            rounds less than bf16 and is the faster choice where GPU time is what limits.
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

    def with_overrides(self, **changes) -> Profile:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def __str__(self) -> str:
        cells = ", ".join(f"{k}={v}" for k, v in asdict(self).items() if k != "name")
        return f"Profile {self.name!r}: {cells}"


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
    return PROFILES[key]


def active_profile(name: str | None = None) -> Profile:
    """The profile to run with: ``name``, else ``$MMCL_PROFILE``, else gpu/cpu by hardware."""
    chosen = name or os.environ.get("MMCL_PROFILE") or None
    if chosen is None:
        chosen = "gpu" if default_device() == "cuda" else "cpu"
    return get_profile(chosen)


def profiles_table() -> pd.DataFrame:
    """All profiles side by side, one column per profile (the table printed in the book)."""
    return pd.DataFrame({n: asdict(p) for n, p in PROFILES.items()}).drop(index="name")
