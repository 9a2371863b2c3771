"""Where the time goes: a tiny recorder of training, probing and data blocks (``make profile-book``).

The package marks its expensive steps with :func:`timed`, as a context manager or a decorator::

    with timed("training"):
        ...

    @timed("probing")
    def fit_probe(...): ...

When the environment variable ``MMCL_TIMINGS`` names a file, each *outermost* timed block appends
one JSON line ``{"category", "start", "end", "pid"}`` to it (``start``/``end`` in seconds since the
epoch, wall clock). A block inside another one records nothing: its time belongs to the outer
block's category (an MLP probe fitted by the shared training loop is probing, the latents sampled
inside a training step are training). Unset, a block costs one environment lookup and a counter.
:mod:`~mmcl_helpers.book_support.profile_book` reads the file and attributes each block to the
notebook cell that ran it.

Nothing here imports another module of the package.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["CATEGORIES", "TIMINGS_ENV", "timed", "read_timings", "recording"]

_F = TypeVar("_F", bound=Callable[..., Any])

#: The environment variable naming the file the blocks are appended to; unset, nothing is recorded.
TIMINGS_ENV = "MMCL_TIMINGS"

#: The categories a block may have; the rest of a cell's time is "other".
CATEGORIES: tuple[str, ...] = ("training", "probing", "data")

# Per thread: how deep we are in timed blocks, and where the outermost one started.
_state = threading.local()


class _Timed:
    """One category's block (see :func:`timed`); reusable, re-entrant, and a decorator."""

    def __init__(self, category: str) -> None:
        self.category = category

    def __call__(self, func: _F) -> _F:
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with self:
                return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    def __enter__(self) -> _Timed:
        depth = getattr(_state, "depth", 0)
        _state.depth = depth + 1
        if depth == 0:
            # Read once per outermost block, so a block started unrecorded ends unrecorded.
            _state.path = os.environ.get(TIMINGS_ENV) or None
            _state.start = time.time() if _state.path else 0.0
        return self

    def __exit__(self, *exc: object) -> None:
        _state.depth -= 1
        if _state.depth == 0 and _state.path:
            line = json.dumps({"category": self.category, "start": _state.start, "end": time.time(),
                               "pid": os.getpid()})
            # One short append per block: lines from several processes never interleave.
            with open(_state.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")
            _state.path = None


def timed(category: str) -> _Timed:
    """A block of ``category`` (``"training"``, ``"probing"`` or ``"data"``).

    Use it as ``with timed("training"): ...`` or as a decorator ``@timed("training")``. Only the
    outermost block of a thread is recorded, and only when ``MMCL_TIMINGS`` names a file (see the
    module's description).

    Raises:
        ValueError: ``category`` is not one of :data:`CATEGORIES`.
    """
    if category not in CATEGORIES:
        raise ValueError(f"timed: category must be one of {', '.join(CATEGORIES)}; got {category!r}.")
    return _Timed(category)


def read_timings(path: str | Path) -> list[dict]:
    """The blocks recorded in ``path`` (one dict per line: category, start, end, pid).

    A missing file holds no blocks. Every record ends with a newline, so a last line without one
    (a process killed while writing it) is left out; any other line that is not a record raises,
    naming the file and the line.

    Raises:
        ValueError: a line is not JSON, or lacks a field, or has an unknown category.
    """
    path = Path(path)
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")[:-1]  # complete lines only: the text after the last newline is cut off
    events = []
    for i, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
            event = {"category": str(event["category"]), "start": float(event["start"]),
                     "end": float(event["end"]), "pid": int(event["pid"])}
        except (ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}, line {i}: not a timing record ({err}): {line[:200]!r}") from None
        if event["category"] not in CATEGORIES:
            raise ValueError(f"{path}, line {i}: unknown category {event['category']!r}; "
                             f"expected one of {', '.join(CATEGORIES)}.")
        events.append(event)
    return events


@contextlib.contextmanager
def recording(path: str | Path) -> Iterator[Path]:
    """Set ``MMCL_TIMINGS`` to ``path`` inside the block (restored after); yields the path."""
    old = os.environ.get(TIMINGS_ENV)
    os.environ[TIMINGS_ENV] = str(path)
    try:
        yield Path(path)
    finally:
        if old is None:
            os.environ.pop(TIMINGS_ENV, None)
        else:
            os.environ[TIMINGS_ENV] = old
