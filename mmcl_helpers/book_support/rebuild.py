"""A second ``make book`` that reuses the first one's executed notebooks, only when nothing changed.

``make book`` executes the notebooks in myst-nb's ``cache`` mode: jupyter-cache files each
notebook's outputs under a digest of its code cells, and a later build re-executes only the
notebooks whose code changed. That digest does not see the rest of what decides a notebook's
outputs: the package (every file of ``mmcl_helpers``, the recorded tables included), the profile
and every other ``MMCL_*`` setting, the Python and torch versions, whether a GPU is there, and the
MPI3D-complex file chapter 5 looks for. :func:`execution_key` digests those;
:func:`prepare` keeps the digest beside the cache (``<build>/.mmcl-execution.json``) and, when
today's differs from it (or the file is missing or damaged), empties the cache and asks for a full
build, so nothing executed under other conditions reaches a page ("the prose is the run").

Command line (what ``make book`` runs)::

    python -m mmcl_helpers.book_support.rebuild --profile cpu [--config .book-config.yml] [--build-dir _build]

It prints whether the build reuses the earlier execution and why, then runs
``jupyter-book build`` (``--all`` on a fresh start) with ``-W -n --keep-going``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path

from mmcl_helpers.core.storage import source_digest

__all__ = ["KEY_FILE", "CACHE_FOLDER", "package_digest", "execution_key", "prepare", "main"]

#: Where the digest of the last build's conditions is kept, inside the build folder.
KEY_FILE = ".mmcl-execution.json"
#: jupyter-cache's folder inside the build folder (Jupyter Book 1's default).
CACHE_FOLDER = ".jupyter_cache"


def package_digest() -> str:
    """SHA-256 (first 16 hex digits) of every file of ``mmcl_helpers`` but compiled bytecode.

    Wider than the model store's :func:`~mmcl_helpers.core.storage.source_digest` (``.py`` and
    ``.csv``): a chapter also prints what the package's JSON records hold (the held-out table,
    the paper's values).
    """
    return source_digest(suffixes=None)


def execution_key(profile: str, environ: dict[str, str] | None = None) -> dict:
    """What a notebook's outputs depend on besides its code cells, as JSON values.

    Args:
        profile: the profile the build executes at (``MMCL_PROFILE``).
        environ: the environment to read the ``MMCL_*`` settings from (default ``os.environ``).
    """
    import torch

    from mmcl_helpers.datasets.mpi3d import find_mpi3d

    env = dict(os.environ if environ is None else environ)
    settings = {k: v for k, v in sorted(env.items()) if k.startswith("MMCL_")}
    settings["MMCL_PROFILE"] = profile
    mpi3d = find_mpi3d()
    return {"package": package_digest(), "settings": settings, "python": platform.python_version(),
            "torch": torch.__version__, "cuda": bool(torch.cuda.is_available()),
            "mpi3d": None if mpi3d is None else [str(mpi3d), mpi3d.stat().st_size]}


def _changes(old: dict, new: dict) -> list[str]:
    return [k for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def prepare(build_dir: str | Path, key: dict) -> tuple[bool, str]:
    """Keep the execution cache if ``key`` matches the one it was made under; else empty it.

    Args:
        build_dir: the book's build folder (``_build``).
        key: today's :func:`execution_key`.

    Returns:
        ``(reuse, why)``: ``reuse`` is False when the cache was emptied (the build must then be a
        full one, ``--all``), and ``why`` says which part of the key changed.
    """
    build = Path(build_dir)
    record = build / KEY_FILE
    try:
        old = json.loads(record.read_text())
        if not isinstance(old, dict):
            raise ValueError("not a JSON object")
        reason = None
    except FileNotFoundError:
        old, reason = None, "no earlier build in this folder"
    except (OSError, ValueError) as err:  # a damaged record is a miss, never trusted
        old, reason = None, f"the record of the earlier build is unreadable ({err})"
    if old is not None:
        changed = _changes(old, key)
        if not changed:
            return True, "same package, profile, settings, torch, device and data as the earlier build"
        reason = "changed since the earlier build: " + ", ".join(changed)
    shutil.rmtree(build / CACHE_FOLDER, ignore_errors=True)
    build.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(key, indent=1, sort_keys=True) + "\n")
    return False, reason


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's description)."""
    parser = argparse.ArgumentParser(prog="python -m mmcl_helpers.book_support.rebuild",
                                     description="Build the book, reusing executed notebooks "
                                                 "only when nothing they depend on changed.")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--config", default=None, help="a build config (default: _config.yml)")
    parser.add_argument("--build-dir", default="_build")
    parser.add_argument("--root", default=".")
    args = parser.parse_args(argv)
    from mmcl_helpers.core.profiles import PROFILES

    if args.profile not in PROFILES:
        parser.error(f"--profile must be one of {', '.join(PROFILES)}; got {args.profile!r}")
    reuse, why = prepare(Path(args.root) / args.build_dir, execution_key(args.profile))
    print(f"execution cache: {'reused' if reuse else 'fresh start'} ({why})", flush=True)
    cmd = [str(Path(sys.executable).with_name("jupyter-book")), "build", "-W", "-n", "--keep-going"]
    cmd += [] if reuse else ["--all"]
    cmd += ["--config", args.config] if args.config else []
    cmd.append(args.root)
    return subprocess.call(cmd, env={**os.environ, "MMCL_PROFILE": args.profile})


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
