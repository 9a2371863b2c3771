"""The set-up every chapter runs first: profile, device, seed, plotting defaults."""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass

import numpy as np
import torch

from mmcl_helpers.core import validation as val
from mmcl_helpers.core.dry_run import dry_run_notice
from mmcl_helpers.core.profiles import PROFILES, Profile, default_device, get_profile, profile_choice

__all__ = ["ChapterSetup", "setup_notebook", "seed_everything", "cuda_determinism", "glue", "GLUED",
           "glued_text", "display_glued", "PENDING_TEXT"]

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
        profile: a profile name; default ``$MMCL_PROFILE``, else ``colab`` on Colab (``google.colab``
            importable), else ``gpu`` with CUDA, else ``cpu``
            (:func:`~mmcl_helpers.core.profiles.profile_choice`).
        quiet: do not print.

    Prints the device, the profile chosen, why, and how to choose another.
    """
    val.check_params("setup_notebook", seed=(seed, val.NONNEG_INT), quiet=(quiet, val.BOOLEAN))
    import matplotlib as mpl

    name, reason = profile_choice(profile)
    prof = get_profile(name)
    device = default_device()
    seed_everything(seed)
    mpl.rcParams.update({"figure.dpi": 110, "savefig.dpi": 110, "axes.titlesize": 10})
    if not quiet:
        threads = torch.get_num_threads()
        print(f"device: {device} ({threads} CPU threads)   seed: {seed}")
        print(f"profile: {prof.name!r} ({reason})")
        print(f"  another: set PROFILE in this cell to {', '.join(repr(n) for n in PROFILES)} "
              "(or set MMCL_PROFILE) and run it again")
        print(prof)
        notice = dry_run_notice()
        if notice:
            print(notice)
    return ChapterSetup(prof, device, seed)


#: ``{{name}}`` or ``{{name:format}}`` in the text of :func:`display_glued`.
_FIELD = re.compile(r"\{\{([A-Za-z_][\w.-]*)(?::([^{}]*))?\}\}")
#: What a value not yet computed shows until :func:`glue` provides it.
PENDING_TEXT = "(computed by a cell further down)"
#: Displays of :func:`display_glued` still waiting for values: [template, display handle, text shown].
_WAITING: list[list] = []


def _glued_value(name: str, spec: str | None) -> str:
    """One glued value as myst-nb's ``{glue:text}`` role shows it (format ``spec`` applied)."""
    value = GLUED[name]
    if spec:
        return format(value, spec)
    return value if isinstance(value, str) else repr(value).strip("'")


def glued_text(template: str) -> tuple[str, set[str]]:
    """``template`` with each ``{{name}}`` / ``{{name:spec}}`` replaced by the value glued under
    ``name`` (formatted with ``spec``); returns the text and the names not glued yet (shown as
    :data:`PENDING_TEXT`)."""
    missing: set[str] = set()

    def one(m: re.Match) -> str:
        if m.group(1) not in GLUED:
            missing.add(m.group(1))
            return PENDING_TEXT
        return _glued_value(m.group(1), m.group(2))

    return _FIELD.sub(one, template), missing


def display_glued(template: str) -> None:
    """Show a run-dependent sentence (Markdown) with this kernel's glued values (the editions' form
    of the book's ``{glue:text}`` roles; see :mod:`mmcl_helpers.book_support.editions`).

    A value glued only by a later cell shows :data:`PENDING_TEXT` until that cell runs; then
    :func:`glue` updates this display in place.
    """
    from IPython.display import Markdown, display

    text, missing = glued_text(template)
    handle = display(Markdown(text), display_id=True)
    if missing:
        _WAITING.append([template, handle, text])


def _refresh_waiting() -> None:
    """Update the displays of :func:`display_glued` whose text changed with a new glued value."""
    from IPython.display import Markdown

    for item in list(_WAITING):
        template, handle, shown = item
        text, missing = glued_text(template)
        if text != shown:
            handle.update(Markdown(text))
            item[2] = text
        if not missing:
            _WAITING.remove(item)


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
    if _WAITING:
        _refresh_waiting()
    try:
        from myst_nb import glue as myst_glue
    except ImportError:  # pragma: no cover - only without the book extras
        return
    myst_glue(name, value, display=False)
