"""The set-up every chapter runs first: profile, device, seed, plotting defaults."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from . import validation as val
from .profiles import Profile, active_profile, default_device

__all__ = ["ChapterSetup", "setup_notebook", "seed_everything"]


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (helpers also take explicit seeds)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@dataclass(frozen=True)
class ChapterSetup:
    """What a chapter runs with: ``profile``, ``device`` and ``seed``."""

    profile: Profile
    device: str
    seed: int


def setup_notebook(seed: int = 0, profile: str | None = None, quiet: bool = False) -> ChapterSetup:
    """Pick the profile (``MMCL_PROFILE``) and device, seed everything, print what was chosen.

    Args:
        seed: the chapter's one seed.
        profile: a profile name; default ``$MMCL_PROFILE``, else ``gpu`` with CUDA, else ``cpu``.
        quiet: do not print.
    """
    val.check_params("setup_notebook", seed=(seed, val.NONNEG_INT), quiet=(quiet, val.BOOLEAN))
    import matplotlib as mpl

    prof = active_profile(profile)
    device = default_device()
    seed_everything(seed)
    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.titlesize": 10})
    if not quiet:
        threads = torch.get_num_threads()
        print(f"device: {device} ({threads} CPU threads)   seed: {seed}")
        print(prof)
    return ChapterSetup(prof, device, seed)
