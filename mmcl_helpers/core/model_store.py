"""The one store of trained models: every study saves and finds what it trained here.

A model is filed under a *kind* (``numerical``, ``image_text``, ``probes``) and a key that hashes
every input of its training (:func:`input_digest` turns arrays, tensors and JSON values into one
digest) together with :data:`STORE_VERSION`, the torch version and
:func:`~mmcl_helpers.core.storage.source_digest` (any change to the package's code is a miss).
The file is ``$MMCL_CACHE_DIR/<kind>/<kind>-<key>.pt``: tensors only (``torch.save`` of a flat state
dict, read back with ``torch.load(weights_only=True)``) beside a JSON record of the inputs, written
and checked by :func:`~mmcl_helpers.core.storage.save_weights` /
:func:`~mmcl_helpers.core.storage.load_weights`. A damaged, foreign or stale file is a miss with a
:class:`~mmcl_helpers.core.storage.CacheWarning`; the model is then trained again and the file
replaced. ``MMCL_CACHE=0`` (or ``cache=False``) turns the store off.

:func:`fetch_or_train` is the one entry point; :func:`training_log` counts what was actually
trained (the studies' plans are checked against it), and :func:`save_model_file` /
:func:`read_model_file` write and read the same format at a path of your choice (the programme's
job folders).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmcl_helpers.core import storage

__all__ = [
    "STORE_VERSION",
    "input_digest",
    "store_request",
    "model_path",
    "fetch_or_train",
    "load_model",
    "training_log",
    "PlannedTraining",
    "merge_plans",
    "save_model_file",
    "read_model_file",
]

#: Part of every key. Bump it when a change alters what training produces without changing the
#: package's source (the source digest covers the rest).
STORE_VERSION = 1

_LOGS: list[list[dict]] = []


def _feed(h: Any, obj: Any) -> None:
    import torch

    if isinstance(obj, torch.Tensor):
        obj = obj.detach().cpu().contiguous().numpy()
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        h.update(f"nd:{arr.dtype.str}:{arr.shape}:".encode())
        h.update(memoryview(arr.reshape(-1).view(np.uint8)))
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        h.update(f"dc:{type(obj).__name__}:".encode())
        _feed(h, dataclasses.asdict(obj))
    elif isinstance(obj, Mapping):
        h.update(b"map:")
        for k in sorted(obj, key=str):
            _feed(h, str(k))
            _feed(h, obj[k])
        h.update(b";")
    elif isinstance(obj, (list, tuple)):
        h.update(f"seq:{len(obj)}:".encode())
        for item in obj:
            _feed(h, item)
    elif isinstance(obj, (set, frozenset)):
        _feed(h, sorted(obj, key=repr))
    else:
        h.update(json.dumps(obj).encode() + b";")


@dataclass(frozen=True)
class PlannedTraining:
    """Part of what a study will train: ``runs`` trainings of ``models`` models side by side
    (one ensemble; 1 for an image-text pair), ``steps`` steps each, of the store's ``kind``
    (``numerical`` or ``image_text``), with the sizes of ``profile``.

    Every study exposes its plan through a function (e.g.
    :func:`~mmcl_helpers.image_text.sweeps.scene_sweep_plan`); the cost tables of
    :mod:`~mmcl_helpers.book_support.costs` are priced from these plans, and :func:`training_log`
    records the same ``kind``/``models``/``steps`` for what was actually trained.
    """

    kind: str
    models: int
    runs: int
    steps: int
    profile: Any


def merge_plans(*plans: Sequence[PlannedTraining]) -> list[PlannedTraining]:
    """One list of the entries of ``plans``, equal trainings (all but ``runs``) summed, in order."""
    out: dict[tuple, int] = {}
    for plan in plans:
        for p in plan:
            key = (p.kind, p.models, p.steps, p.profile)
            out[key] = out.get(key, 0) + p.runs
    return [PlannedTraining(k, m, runs, s, prof) for (k, m, s, prof), runs in out.items() if runs]


def input_digest(*objects: Any) -> str:
    """SHA-256 (hex) of arrays, tensors, dataclasses and JSON values, in order.

    Arrays and tensors hash their dtype, shape and bytes; mappings hash their items in key
    order; so two inputs with the same digest train the same model.
    """
    h = hashlib.sha256()
    for obj in objects:
        _feed(h, obj)
    return h.hexdigest()


def store_request(kind: str, inputs: Mapping[str, Any]) -> dict:
    """The record a model of ``kind`` trained from ``inputs`` is filed under (and checked by on load).

    ``inputs`` are JSON values (arrays go in as :func:`input_digest` strings); the record adds the
    store version, the torch version and the package's source digest.
    """
    import torch

    return {"kind": kind, "version": STORE_VERSION, "torch": torch.__version__,
            "source": storage.source_digest(), "inputs": dict(inputs)}


def model_path(kind: str, inputs: Mapping[str, Any]) -> Path:
    """Where the model of ``kind`` trained from ``inputs`` is kept (the folder is not created)."""
    payload = json.dumps(store_request(kind, inputs), sort_keys=True, default=str)
    key = hashlib.sha256(payload.encode()).hexdigest()[:20]
    return storage.default_cache_dir() / kind / f"{kind}-{key}.pt"


@contextlib.contextmanager
def training_log() -> Iterator[list[dict]]:
    """Collect one entry per model trained inside the ``with`` block (store hits are not trained).

    Each entry is ``{"kind": ..., **plan}`` with the ``plan`` the caller of :func:`fetch_or_train`
    gave (e.g. ``models``, ``steps``, ``n_train``).
    """
    log: list[dict] = []
    _LOGS.append(log)
    try:
        yield log
    finally:
        _LOGS.remove(log)


def fetch_or_train(
    kind: str,
    inputs: Mapping[str, Any],
    train: Callable[[], Any],
    pack: Callable[[Any], tuple[Mapping[str, Any], Mapping[str, Any]]],
    unpack: Callable[[dict, dict], Any],
    cache: bool | None = None,
    plan: Mapping[str, Any] | None = None,
) -> tuple[Any, bool]:
    """The model trained from ``inputs``: read from the store, else trained and filed.

    Args:
        kind: the store's sub-folder (``numerical``, ``image_text``, ``probes``).
        inputs: every input of training, as JSON values (digests for arrays).
        train: trains the model.
        pack: model -> ``(tensors, meta)``: a flat ``{name: tensor}`` dict and JSON values.
        unpack: ``(tensors, meta)`` -> the model; any exception makes the file a miss.
        cache: use the store; default on unless ``MMCL_CACHE=0``.
        plan: what one training trains (e.g. ``{"models": 3, "steps": 500}``), written to
            :func:`training_log`.

    Returns:
        ``(model, from_store)``.
    """
    folder = storage.cache_folder(kind) if storage.cache_enabled(cache) else None
    if folder is not None:
        found = load_model(kind, inputs, unpack)
        if found is not None:
            return found, True
    model = train()
    for log in _LOGS:
        log.append({"kind": kind, **(plan or {})})
    if folder is not None:
        tensors, meta = pack(model)
        storage.save_weights(model_path(kind, inputs), tensors, store_request(kind, inputs), meta)
    return model, False


def load_model(kind: str, inputs: Mapping[str, Any], unpack: Callable[[dict, dict], Any],
               path: str | Path | None = None) -> Any | None:
    """The stored model of ``kind`` for ``inputs`` (at ``path``, default :func:`model_path`), else None.

    No file: None quietly; a file that cannot be used (damaged, foreign, for other inputs, or
    one ``unpack`` rejects): None with a :class:`~mmcl_helpers.core.storage.CacheWarning`.
    """
    path = Path(path) if path is not None else model_path(kind, inputs)
    loaded = storage.load_weights(path, store_request(kind, inputs))
    if loaded is None:
        return None
    try:
        return unpack(*loaded)
    except Exception as err:  # noqa: BLE001 - a file that does not fit the request is a miss
        warnings.warn(f"ignoring the cache file {path} (it does not fit these inputs: "
                      f"{type(err).__name__}: {str(err)[:120]}); training again.",
                      storage.CacheWarning, stacklevel=2)
        return None


def save_model_file(path: str | Path, tensors: Mapping[str, Any], record: Mapping[str, Any]) -> bool:
    """Write a model in the store's format at ``path`` (``.pt`` tensors + ``.json`` record; values of
    the record that JSON cannot hold are written as their ``str``). Returns whether it was written."""
    return storage.save_weights(path, tensors, json.loads(json.dumps(record, default=str)))


def read_model_file(path: str | Path) -> tuple[dict, dict]:
    """What :func:`save_model_file` wrote: ``(tensors, record)``, checksum checked, tensors only.

    Raises:
        ValueError: the file or its record is missing, damaged or not in the store's format.
    """
    p = Path(path)
    try:
        record = json.loads(p.with_suffix(".json").read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{p} has no readable record beside it ({type(err).__name__}).") from None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", storage.CacheWarning)
        loaded = storage.load_weights(p, record)
    if loaded is None:
        raise ValueError(f"{p} is missing, damaged or not a file of tensors.")
    return loaded[0], record
