"""The set-up every chapter runs first: profile, device, seed, plotting defaults."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from mmcl_helpers.core import validation as val
from mmcl_helpers.core.dry_run import dry_run_notice
from mmcl_helpers.core.profiles import Profile, active_profile, default_device

__all__ = ["ChapterSetup", "setup_notebook", "seed_everything", "cuda_determinism", "glue", "GLUED"]

#: cuBLAS's documented setting for reproducible results (CUDA >= 10.2): a fixed workspace.
CUBLAS_WORKSPACE = ":4096:8"


def cuda_determinism() -> bool:
    """Ask CUDA for reproducible kernels; returns whether a GPU is visible (nothing is done otherwise).

    Sets ``CUBLAS_WORKSPACE_CONFIG`` (unless already set; it must precede the first cuBLAS call),
    turns cuDNN's autotuner off and its deterministic algorithms on, and calls
    ``torch.use_deterministic_algorithms(True, warn_only=True)``: an operation with no
    deterministic CUDA kernel warns instead of failing, and that operation stays nondeterministic.
    """
    if not torch.cuda.is_available():
        return False
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
    return True

#: Every value passed to :func:`glue` in this kernel, by name (also where myst-nb is missing).
GLUED: dict[str, object] = {}


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (helpers also take explicit seeds).

    On a GPU it also applies :func:`cuda_determinism`, so the same seed gives the same numbers on
    the same GPU model, driver and torch build (not across them).
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # every device's generator, CUDA's included
    cuda_determinism()


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
        notice = dry_run_notice()
        if notice:
            print(notice)
    return ChapterSetup(prof, device, seed)


def glue(name: str, value: object) -> None:
    """Make ``value`` available to the chapter's prose as ``{glue:text}`name```.

    Uses myst-nb's ``glue`` (without displaying anything) when it is installed, as in the book
    build; elsewhere (e.g. on Colab without the book extras) the value is only kept in
    :data:`GLUED`. numpy scalars become Python numbers, so that format specs such as ``:.2f``
    work in the prose. Returns nothing, so a cell that ends with a glue call shows no stray
    value on the page.

    Raises:
        TypeError: ``name`` is not a non-empty string.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"glue name must be a non-empty string, got {name!r}.")
    if isinstance(value, np.generic):
        value = value.item()
    GLUED[name] = value
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # pragma: no cover - only without the book extras
        return
    myst_glue(name, value, display=False)
