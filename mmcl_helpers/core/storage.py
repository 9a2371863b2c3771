"""On-disk caches that cannot run code and cannot lie, and checksums of large files.

- The cache folder is ``$MMCL_CACHE_DIR``, else ``~/.cache/mmcl_helpers`` (:func:`default_cache_dir`).
  A folder that cannot be used (a file in its place, no permission) turns caching off with a
  :class:`CacheWarning` (:func:`cache_folder`); :func:`check_cache_dir` raises instead, for a
  command line that wants to fail before any work.
- Trained weights are saved as a flat ``{name: tensor}`` state dict with ``torch.save`` and read
  back with ``torch.load(weights_only=True)`` (no pickled objects, so a crafted file cannot run
  code), beside a JSON file holding the request that produced them and the SHA-256 of the weights
  file (:func:`save_weights`, :func:`load_weights`). Arrays go into an ``.npz`` read with
  ``allow_pickle=False``, the request stored inside it (:func:`save_arrays`, :func:`load_arrays`).
- On load the stored request must equal the requested one exactly: a file copied in from another
  setting is a miss. Any failure to read (truncated, empty, a pickle payload, the wrong object) is a
  miss that warns; the caller rebuilds. A failed write warns and the caller keeps its result.
- :func:`source_digest` hashes the package's own source, for cache keys that must change with the
  code; :func:`cached_sha256` checksums a large file once and keeps the digest beside it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "CACHE_ENV",
    "cache_enabled",
    "CacheWarning",
    "CacheDirError",
    "default_cache_dir",
    "cache_folder",
    "check_cache_dir",
    "source_digest",
    "file_sha256",
    "cached_sha256",
    "read_checksum_record",
    "write_checksum_record",
    "save_weights",
    "load_weights",
    "save_arrays",
    "load_arrays",
    "arrays_sha256",
    "atomic_write_text",
]

#: Environment variable naming the cache folder.
CACHE_ENV = "MMCL_CACHE_DIR"
_CONFIG_KEY = "__config__"


class CacheWarning(UserWarning):
    """A cache file was ignored (unreadable, foreign, stale) or could not be written."""


class CacheDirError(NotADirectoryError):
    """The cache folder cannot be used (e.g. ``MMCL_CACHE_DIR`` names a file)."""


def cache_enabled(cache: bool | None = None) -> bool:
    """``cache`` if given, else whether ``$MMCL_CACHE`` allows caching (anything but 0/false/no/off)."""
    if cache is not None:
        return cache
    return os.environ.get("MMCL_CACHE", "1").strip().lower() not in ("0", "false", "no", "off")


def default_cache_dir() -> Path:
    """``$MMCL_CACHE_DIR`` if set, else ``~/.cache/mmcl_helpers`` (not created here)."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mmcl_helpers"


def _blocker(folder: Path) -> str | None:
    """Why ``folder`` cannot be a folder (an existing file at it or above it), else None."""
    for p in (folder, *folder.parents):
        if p.exists():
            return None if p.is_dir() else f"{p} is a file, not a folder"
    return None


def check_cache_dir(sub: str | None = None) -> Path:
    """The cache folder (or its ``sub`` folder), created; raises if it cannot be used.

    Raises:
        CacheDirError: a file stands where the folder should be, or it cannot be created.
    """
    folder = default_cache_dir() / sub if sub else default_cache_dir()
    reason = _blocker(folder)
    if reason is None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            reason = f"it cannot be created ({err.strerror or err})"
    if reason is not None:
        raise CacheDirError(
            f"cannot use the cache folder {folder}: {reason}. Set {CACHE_ENV} to a folder you can "
            "write to (or MMCL_CACHE=0 to turn the encoder cache off)."
        )
    return folder


def cache_folder(sub: str, root: str | Path | None = None) -> Path | None:
    """``root / sub`` (default root :func:`default_cache_dir`), created; None if it cannot be used.

    A folder that cannot be used gives a :class:`CacheWarning` and None: the caller then computes
    without caching, so a finished result is never lost to a bad cache setting.
    """
    try:
        if root is None:
            return check_cache_dir(sub)
        folder = Path(root).expanduser() / sub if sub else Path(root).expanduser()
        reason = _blocker(folder)
        if reason:
            raise CacheDirError(f"cannot use the cache folder {folder}: {reason}.")
        folder.mkdir(parents=True, exist_ok=True)
        return folder
    except OSError as err:
        warnings.warn(f"{err} Caching is off for this call; results are computed and kept in memory.",
                      CacheWarning, stacklevel=3)
        return None


@functools.lru_cache(maxsize=2)  # the model store's suffixes and make book's (None)
def source_digest(suffixes: tuple[str, ...] | None = (".py", ".csv")) -> str:
    """SHA-256 (first 16 hex digits) of every ``.py`` and ``.csv`` file of the package.

    Part of the cache keys of trained models, so that any change to the code that trains them
    makes earlier files a miss (at the price of retraining after a change that did not matter).
    ``suffixes=None`` digests every file but compiled bytecode (what ``make book``'s execution
    cache depends on, :mod:`~mmcl_helpers.book_support.rebuild`).
    """
    root = Path(__file__).resolve().parents[1]  # the package root (this file is in core/)

    def wanted(p: Path) -> bool:
        if suffixes is None:
            return "__pycache__" not in p.parts and p.suffix != ".pyc"
        return p.suffix in suffixes

    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if wanted(p) and p.is_file()):
        h.update(path.relative_to(root).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()[:16]


def file_sha256(path: str | Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file's bytes (read in chunks)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _record_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def read_checksum_record(path: str | Path) -> dict | None:
    """The record ``{"size", "mtime_ns", "sha256"}`` kept in ``<file>.sha256``, or None."""
    try:
        rec = json.loads(_record_path(Path(path)).read_text())
        if isinstance(rec, dict) and isinstance(rec.get("sha256"), str) and \
                isinstance(rec.get("size"), int) and isinstance(rec.get("mtime_ns"), int):
            return rec
    except (OSError, ValueError):
        pass
    return None


def write_checksum_record(path: str | Path, sha256: str) -> None:
    """Keep ``sha256`` beside ``path`` with its current size and mtime (silently skipped if read-only)."""
    p = Path(path)
    st = p.stat()
    rec = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha256}
    try:
        _atomic_write_bytes(_record_path(p), json.dumps(rec).encode())
    except OSError:
        pass


def _record_is_fresh(path: Path, rec: dict | None) -> bool:
    if rec is None:
        return False
    st = path.stat()
    return rec["size"] == st.st_size and rec["mtime_ns"] == st.st_mtime_ns


def cached_sha256(path: str | Path) -> str:
    """SHA-256 of a file, computed once and kept in ``<file>.sha256``.

    The kept digest is reused while the file's size and modification time are unchanged, and
    recomputed (and kept again) otherwise.
    """
    p = Path(path)
    rec = read_checksum_record(p)
    if _record_is_fresh(p, rec):
        return rec["sha256"]
    digest = file_sha256(p)
    write_checksum_record(p, digest)
    return digest


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _jsonable(config: Mapping[str, Any]) -> Any:
    """``config`` as plain JSON values (a round trip, so that comparisons see what a load sees)."""
    return json.loads(json.dumps(config, sort_keys=True))


def _miss(path: Path, reason: str) -> None:
    warnings.warn(f"ignoring the cache file {path} ({reason}); computing it again.", CacheWarning,
                  stacklevel=3)


def _warn_write(path: Path, err: BaseException) -> None:
    warnings.warn(
        f"could not write the cache file {path} ({type(err).__name__}: {err}); the result is kept "
        "in memory but not cached.", CacheWarning, stacklevel=3,
    )


def save_weights(path: str | Path, tensors: Mapping[str, Any], config: Mapping[str, Any],
                 meta: Mapping[str, Any] | None = None) -> bool:
    """Save a flat ``{name: tensor}`` dict to ``path`` and ``config`` (+ ``meta``) to ``path.json``.

    Args:
        path: the weights file (``.pt``); the JSON goes to the same name with suffix ``.json``.
        tensors: string keys, ``torch.Tensor`` values only.
        config: the request that produced the weights (must match exactly on load).
        meta: further JSON values returned by :func:`load_weights` (e.g. training time).

    Returns:
        True if written; False (with a :class:`CacheWarning`) if writing failed.
    """
    import torch

    p = Path(path)
    bad = [k for k, t in tensors.items() if not isinstance(k, str) or not isinstance(t, torch.Tensor)]
    if bad:
        raise TypeError(f"save_weights stores tensors under string keys only; not: {bad[:5]}.")
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        torch.save({k: t.detach().cpu().contiguous() for k, t in tensors.items()}, tmp)
        os.replace(tmp, p)
        record = {"config": _jsonable(config), "meta": _jsonable(meta or {}),
                  "weights_sha256": file_sha256(p)}
        _atomic_write_bytes(p.with_suffix(".json"), json.dumps(record, indent=1, sort_keys=True).encode())
        return True
    except (OSError, RuntimeError, TypeError, ValueError) as err:
        if tmp.exists():
            tmp.unlink()
        _warn_write(p, err)
        return False


def load_weights(path: str | Path, config: Mapping[str, Any], map_location: str = "cpu"
                 ) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The tensors and meta saved by :func:`save_weights` for exactly ``config``, else None.

    No file: None quietly. A file that cannot be used (no or unreadable JSON, a config other than
    ``config``, a weights file whose checksum differs, a truncated file, a pickle of anything but
    tensors): None with a :class:`CacheWarning`. Never unpickles an object other than tensors.
    """
    import torch

    p = Path(path)
    j = p.with_suffix(".json")
    if not p.exists() and not j.exists():
        return None
    try:
        record = json.loads(j.read_text())
    except (OSError, ValueError) as err:
        _miss(p, f"its record {j.name} is missing or unreadable: {type(err).__name__}")
        return None
    if not isinstance(record, dict) or record.get("config") != _jsonable(config):
        _miss(p, "it was made for other settings")
        return None
    try:
        if file_sha256(p) != record.get("weights_sha256"):
            _miss(p, "its checksum does not match its record; it was changed or copied in")
            return None
        data = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to read is a miss
        _miss(p, f"unreadable: {type(err).__name__}: {str(err)[:120]}")
        return None
    if not isinstance(data, dict) or not all(
        isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in data.items()
    ):
        _miss(p, f"it holds a {type(data).__name__}, not a dict of tensors")
        return None
    meta = record.get("meta") if isinstance(record.get("meta"), dict) else {}
    return data, meta


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray], config: Mapping[str, Any]) -> bool:
    """Save arrays and the request that produced them in one ``.npz`` (written atomically).

    Returns:
        True if written; False (with a :class:`CacheWarning`) if writing failed.
    """
    p = Path(path)
    tmp = p.with_name(f".{p.stem}.{os.getpid()}.tmp.npz")
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(_jsonable(config), sort_keys=True)
        np.savez(tmp, **{_CONFIG_KEY: np.array(payload)}, **arrays)
        os.replace(tmp, p)
        return True
    except (OSError, ValueError) as err:
        if tmp.exists():
            tmp.unlink()
        _warn_write(p, err)
        return False


def load_arrays(path: str | Path, config: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
    """The arrays saved by :func:`save_arrays` for exactly ``config`` (read into memory), else None.

    No file: None quietly. A truncated or empty file, a foreign ``.npz``, another request's file
    or an object array: None with a :class:`CacheWarning`.
    """
    p = Path(path)
    if not p.exists():
        return None
    try:
        with np.load(p, allow_pickle=False) as data:
            if _CONFIG_KEY not in data.files:
                _miss(p, "it has no record of the settings it was made for")
                return None
            stored = json.loads(str(data[_CONFIG_KEY][()]))
            if stored != _jsonable(config):
                _miss(p, "it was made for other settings")
                return None
            return {k: data[k] for k in data.files if k != _CONFIG_KEY}
    except Exception as err:  # noqa: BLE001 - BadZipFile, EOFError, zlib.error, ...: all misses
        _miss(p, f"unreadable: {type(err).__name__}: {str(err)[:120]}")
        return None


def arrays_sha256(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 of named arrays: each name, dtype, shape and bytes, in name order.

    Stored beside arrays in a cache file, it tells arrays changed after writing (zeroed images under
    a kept record) from the arrays that were written.
    """
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(json.dumps([name, a.dtype.str, list(a.shape)]).encode())
        h.update(memoryview(a).cast("B") if a.size else b"")
    return h.hexdigest()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` so that a reader sees the old file or the whole new one, never part.

    The text goes to a temporary file beside ``path``, is flushed to disk, and replaces ``path``.
    """
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
    finally:
        if tmp.exists():
            tmp.unlink()
