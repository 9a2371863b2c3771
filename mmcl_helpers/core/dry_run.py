"""The dry run: a profile's structure with its steps and sample counts capped (a testing aid).

``MMCL_DRY_RUN=1`` makes :func:`~mmcl_helpers.core.profiles.get_profile` and
:func:`~mmcl_helpers.core.profiles.image_text_profile` return the chosen profile with every size
in :data:`DRY_RUN_CAPS` capped, and nothing else changed: the same columns, seeds, dependent
stride, encoder kind and widths, similarity and compile switch. ``make gpu-dry`` uses it to
execute every chapter with the ``gpu`` profile's structure on a CPU in minutes. The numbers a dry
run prints mean nothing (a handful of training steps); it exists so that every code path a GPU
build takes runs on every commit. It also makes chapter 5 read MPI3D-complex with the small
factor sizes of :data:`~mmcl_helpers.datasets.mpi3d_synthetic.SYNTHETIC_SIZES`, so that the run
can use the synthetic file that ``make gpu-dry`` writes
(:func:`~mmcl_helpers.datasets.mpi3d_synthetic.write_synthetic_mpi3d`).
"""

from __future__ import annotations

import dataclasses
import os
from typing import TypeVar

__all__ = ["DRY_RUN_CAPS", "DRY_RUN_ENV", "dry_run_enabled", "dry_run_sizes", "dry_run_notice"]

DRY_RUN_ENV = "MMCL_DRY_RUN"

#: Upper bounds on the sizes of a dry run, by field name of
#: :class:`~mmcl_helpers.core.profiles.Profile` and :class:`~mmcl_helpers.core.profiles.ImageTextProfile`.
#: A field a size table does not have is ignored; a value already below its cap is kept.
DRY_RUN_CAPS: dict[str, int] = {
    "steps": 12,
    "batch_size": 32,
    "probe_train": 600,
    "probe_test": 600,
    "probe_steps": 15,
    "n_train": 512,
    "n_probe_train": 256,
    "n_probe_test": 256,
    "mpi3d_train": 256,
}

_ON = {"1", "true", "yes", "on"}
_OFF = {"", "0", "false", "no", "off"}

T = TypeVar("T")


def dry_run_enabled() -> bool:
    """Whether ``$MMCL_DRY_RUN`` asks for a dry run (``1``/``true``/``yes``/``on``; unset = no).

    Raises:
        ValueError: any other value (the message names the variable, its value and what is allowed).
    """
    raw = os.environ.get(DRY_RUN_ENV, "")
    value = raw.strip().lower()
    if value in _ON:
        return True
    if value in _OFF:
        return False
    raise ValueError(
        f"{DRY_RUN_ENV}={raw!r} is not understood; allowed: 1, true, yes, on (dry run) or "
        "0, false, no, off, empty (normal run)."
    )


def dry_run_sizes(sizes: T) -> T:
    """``sizes`` (a frozen dataclass of sizes) with :data:`DRY_RUN_CAPS` applied under a dry run.

    Outside a dry run ``sizes`` comes back unchanged (the same object). The name is kept, so a
    capped ``gpu`` profile still takes every branch the ``gpu`` profile takes.
    """
    if not dry_run_enabled():
        return sizes
    changes = {f.name: min(getattr(sizes, f.name), DRY_RUN_CAPS[f.name])
               for f in dataclasses.fields(sizes) if f.name in DRY_RUN_CAPS}
    return dataclasses.replace(sizes, **changes)


def dry_run_notice() -> str | None:
    """One line for the set-up cell under a dry run (``None`` otherwise)."""
    if not dry_run_enabled():
        return None
    caps = ", ".join(f"{k}<={v}" for k, v in DRY_RUN_CAPS.items())
    return (f"DRY RUN ({DRY_RUN_ENV}=1, a testing aid): the profile's structure with its sizes capped "
            f"({caps}); the tables of sizes show the uncapped values, and no number below means anything.")
