"""The set-up every chapter runs first: profile, device, seed, plotting defaults."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import torch

from .profiles import Profile, active_profile, default_device

__all__ = ["ChapterSetup", "setup_notebook", "seed_everything", "glue", "GLUED"]

#: Every value passed to :func:`glue` in this kernel, by name (also where myst-nb is missing).
GLUED: dict[str, object] = {}


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


def glue(name: str, value: object) -> object:
    """Make ``value`` available to the chapter's prose as ``{glue:text}`name```.

    Uses myst-nb's ``glue`` (without displaying anything) when it is installed, as in the book
    build; elsewhere (e.g. on Colab without the book extras) the value is only kept in
    :data:`GLUED`. numpy scalars become Python numbers, so that format specs such as ``:.2f``
    work in the prose. Returns the stored value.

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
        return value
    myst_glue(name, value, display=False)
    return value
