"""Recorded tables: a result too slow for every build, kept as JSON with the recipe that made it.

The held-out protocols (:mod:`mmcl_helpers.image_text.heldout`, :mod:`mmcl_helpers.numerical.heldout`)
train dozens of models, so a build of the book quotes a recorded table instead of running them.
A record keeps the rows, the full profile, the protocol's keys (its settings or seeds and its
bars), the commit and the date; :func:`record_is_current` tells whether today's recipe and
protocol still match it, so a chapter can say when the table it quotes is stale.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from dataclasses import MISSING, asdict, fields
from datetime import date
from pathlib import Path

import pandas as pd

__all__ = ["commit", "write_record", "read_record", "record_is_current"]


def commit() -> str:
    """The git commit of the package's checkout, or ``"unknown"`` outside one."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def write_record(table: pd.DataFrame, profile, keys: Mapping, path: str | Path) -> Path:
    """Write ``table`` with what produced it (the full ``profile``, ``keys``, seeds, commit, date) as JSON."""
    record = {"profile": asdict(profile), "seeds": sorted({int(s) for s in table["seed"]}),
              **keys, "commit": commit(), "date": date.today().isoformat(),
              "rows": json.loads(table.to_json(orient="records"))}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def read_record(path: str | Path) -> tuple[pd.DataFrame, dict]:
    """A recorded table and its metadata (profile, seeds, the protocol's keys, commit, date).

    Raises:
        FileNotFoundError: no record at ``path``.
        ValueError: the file is not a record written by :func:`write_record`.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        table = pd.DataFrame(record.pop("rows"))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} is not a held-out record written by write_record: {exc}") from exc
    return table, record


def record_is_current(meta: Mapping, profile, keys: Mapping) -> bool:
    """Whether a record was made with ``profile`` and the protocol ``keys`` of today (else it is stale).

    A profile field added after the record was made counts as unchanged when today's value is the
    field's default (every new field's default leaves the recipe as it was).
    """
    recorded = meta.get("profile")
    if not isinstance(recorded, Mapping):
        return False
    today = json.loads(json.dumps(asdict(profile)))
    defaults = {f.name: f.default for f in fields(profile)}
    for name in set(today) - set(recorded):
        if defaults[name] is MISSING or today[name] != json.loads(json.dumps(defaults[name])):
            return False  # a field with no default (or off its default) changes the recipe
        today.pop(name)
    return recorded == today and all(meta.get(k) == v for k, v in keys.items())
