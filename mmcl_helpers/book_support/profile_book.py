"""Where the book's time goes: execute the chapters and split each cell's seconds (``make profile-book``).

``python -m mmcl_helpers.book_support.profile_book [--profile P] [--only NAME ...] [--json OUT]``
executes the notebooks of ``_toc.yml`` in the book's order (then any other ``book/*.ipynb``), each
in a fresh ``python3`` kernel started in the notebook's folder, at compute profile ``P``
(``MMCL_PROFILE``). The kernel inherits ``MMCL_TIMINGS``, naming a fresh file, so every outermost
:func:`~mmcl_helpers.core.timing.timed` block of the package (the training loops, the probes,
rendering and sampling) appends its category and wall-clock interval there. Each block is then
attributed to the cell whose execution interval (wall clock around the cell's execution, as the
profiler saw it) contains it (:func:`attribute`), and the command prints

- per chapter: its seconds (kernel start included) and how many of them went to training,
  probing, data and everything else ("other");
- per chapter, its slowest code cells (index among all cells, seconds split the same way, the
  first line of the source).

A cell that fails (an error, a time-out, a dead kernel) ends its notebook: the command prints the
notebook, the cell's index and source and the error, goes on with the next notebook, and exits
with status 1 after the tables, listing every failure. ``make test`` runs it at ``smoke`` in place of
a plain execution of the notebooks (it reports failures the same way), so CI prints the profile;
``MMCL_PROFILE=cpu make profile-book`` measures the real build.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from mmcl_helpers.book_support.editions import edition_sources
from mmcl_helpers.core.timing import CATEGORIES, read_timings, recording

__all__ = ["CellTime", "ChapterProfile", "attribute", "book_notebooks", "profile_notebook",
           "profile_book", "format_profile", "to_json", "main"]

#: The columns of every row: categories first, then what is left.
COLUMNS: tuple[str, ...] = (*CATEGORIES, "other")


@dataclass
class CellTime:
    """One executed code cell: its place, seconds and their split.

    Attributes:
        index: the cell's index among all cells of the notebook (markdown included).
        first_line: the first non-empty line of its source.
        seconds: wall-clock seconds of its execution.
        split: seconds per category of :data:`~mmcl_helpers.core.timing.CATEGORIES` and
            ``"other"`` (the rest); they add up to ``seconds``.
    """

    index: int
    first_line: str
    seconds: float
    split: dict[str, float]


@dataclass
class ChapterProfile:
    """One executed notebook.

    Attributes:
        name: the notebook's name without suffix (e.g. ``01_latent_model``).
        path: its path.
        seconds: wall-clock seconds from starting the kernel to the end of the last cell run.
        split: seconds per category and ``"other"`` (kernel start and everything outside the
            timed blocks); they add up to ``seconds``.
        cells: the code cells run, in order.
        error: ``None``, or what failed: ``{"cell": index, "source": ..., "error": text}``.
    """

    name: str
    path: str
    seconds: float
    split: dict[str, float]
    cells: list[CellTime] = field(default_factory=list)
    error: dict | None = None


def attribute(intervals: Sequence[tuple[float, float]], events: Iterable[Mapping]) -> list[dict[str, float]]:
    """Split each interval's seconds by the recorded blocks that fall inside it.

    A block counts only its part inside the interval. Where blocks overlap (blocks of different
    processes; one process records only outermost blocks, which never overlap), each moment
    counts once, for the block that started first. So the categories never add up to more than
    the interval, and ``"other"``, the rest, is never negative.

    Args:
        intervals: ``(start, end)`` per cell, seconds since the epoch.
        events: blocks with ``category``, ``start`` and ``end`` (as
            :func:`~mmcl_helpers.core.timing.read_timings` returns them).

    Returns:
        one dict per interval: ``"total"``, each category of
        :data:`~mmcl_helpers.core.timing.CATEGORIES` and ``"other"``, in seconds.
    """
    blocks = sorted(((float(e["start"]), float(e["end"]), str(e["category"])) for e in events),
                    key=lambda b: (b[0], -b[1]))
    out = []
    for lo, hi in intervals:
        row = {"total": max(0.0, hi - lo), **{c: 0.0 for c in CATEGORIES}}
        covered = lo
        for start, end, category in blocks:
            if start >= hi:
                break
            a, b = max(start, covered), min(end, hi)
            if b > a:
                row[category] += b - a
                covered = b
        row["other"] = max(0.0, row["total"] - sum(row[c] for c in CATEGORIES))
        out.append(row)
    return out


def book_notebooks(root: str | Path = ".") -> list[Path]:
    """The notebooks of ``_toc.yml`` in the book's order, then any other ``book/*.ipynb`` (sorted)."""
    root = Path(root)
    listed = edition_sources(root)
    seen = {p.resolve() for p in listed}
    return listed + sorted(p for p in (root / "book").glob("*.ipynb") if p.resolve() not in seen)


def _first_line(source: str) -> str:
    return next((line.strip() for line in source.splitlines() if line.strip()), "")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _error_text(err: BaseException) -> str:
    # nbclient's CellExecutionError already shows the cell's source and the kernel's traceback.
    return _ANSI.sub("", f"{type(err).__name__}: {err}")


def profile_notebook(path: str | Path, timeout: int | None = 900, kernel: str = "python3") -> ChapterProfile:
    """Execute one notebook in a fresh kernel and split its time (see the module's description).

    The kernel runs in the notebook's folder with this process's environment plus
    ``MMCL_TIMINGS``. A failing cell ends the run; the result's ``error`` says which and why.

    Args:
        path: the notebook.
        timeout: seconds a cell may run (``None``: no limit).
        kernel: the kernel's name.

    Returns:
        a :class:`ChapterProfile`.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, allow_errors=False,
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    intervals: list[tuple[int, float, float]] = []
    error = None
    # The kernel inherits MMCL_TIMINGS when it starts.
    with tempfile.TemporaryDirectory(prefix="mmcl-profile-") as tmp, \
            recording(Path(tmp) / "timings.jsonl") as timings:
        start = time.time()
        try:
            with client.setup_kernel():
                for index, cell in enumerate(nb.cells):
                    if cell.cell_type != "code":
                        continue
                    t0 = time.time()
                    try:
                        client.execute_cell(cell, index, execution_count=client.code_cells_executed + 1)
                    except Exception as err:  # an error, a time-out or a dead kernel: report it
                        intervals.append((index, t0, time.time()))
                        error = {"cell": index, "source": cell.source, "error": _error_text(err)}
                        break
                    intervals.append((index, t0, time.time()))
        except Exception as err:  # the kernel failed to start, or to shut down (after a dead kernel)
            if error is None:
                error = {"cell": None, "source": "", "error": _error_text(err)}
        end = intervals[-1][2] if intervals else time.time()
        events = read_timings(timings)
    rows = attribute([(a, b) for _, a, b in intervals], events)
    cells = [CellTime(index, _first_line(nb.cells[index].source), row["total"],
                      {c: row[c] for c in COLUMNS})
             for (index, _, _), row in zip(intervals, rows)]
    seconds = end - start
    split = {c: sum(cell.split[c] for cell in cells) for c in CATEGORIES}
    split["other"] = max(0.0, seconds - sum(split.values()))
    return ChapterProfile(path.stem, str(path), seconds, split, cells, error)


def _select(notebooks: Sequence[Path], only: Sequence[str] | None) -> list[Path]:
    if not only:
        return list(notebooks)
    names = {p.stem: p for p in notebooks}
    unknown = [n for n in only if Path(n).stem not in names]
    if unknown:
        raise ValueError(f"--only: no notebook named {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(names)}.")
    wanted = {Path(n).stem for n in only}
    return [p for p in notebooks if p.stem in wanted]


def profile_book(root: str | Path = ".", only: Sequence[str] | None = None, timeout: int | None = 900,
                 echo: bool = True) -> list[ChapterProfile]:
    """Profile the book's notebooks (all, or those named in ``only``) in the book's order.

    The compute profile is whatever ``MMCL_PROFILE`` says (:func:`main` sets it). With ``echo``,
    prints one line per notebook as it finishes, and each failure in full as it happens.

    Raises:
        ValueError: a name in ``only`` is not a notebook of the book (the message lists them).
    """
    chosen = _select(book_notebooks(root), only)
    results = []
    for path in chosen:
        result = profile_notebook(path, timeout=timeout)
        results.append(result)
        if echo:
            status = "ok" if result.error is None else "FAILED"
            print(f"{status:6s} {result.name}  {result.seconds:8.1f} s", flush=True)
            if result.error is not None:
                print(_failure(result), flush=True)
    return results


def _failure(result: ChapterProfile) -> str:
    err = result.error or {}
    if err.get("cell") is None:
        where = "the kernel failed outside any cell (start or shutdown)"
    else:
        where = f"cell {err['cell']} ({_first_line(err.get('source', ''))!r}) failed"
    return f"{result.path}: {where}\n{err.get('error', '')}"


def _row(label: str, seconds: float, split: Mapping[str, float], width: int) -> str:
    return f"{label:<{width}} {seconds:9.1f}" + "".join(f" {split[c]:9.1f}" for c in COLUMNS)


def format_profile(results: Sequence[ChapterProfile], profile: str, top: int = 5) -> str:
    """The tables :func:`main` prints: per chapter, then each chapter's ``top`` slowest cells."""
    width = max([len(r.name) for r in results] + [len("chapter")])
    head = f"{'chapter':<{width}} {'seconds':>9}" + "".join(f" {c:>9}" for c in COLUMNS)
    lines = [f"Time per chapter at profile {profile!r} (seconds; other = everything outside training, "
             "probing and data, kernel start included)", head, "-" * len(head)]
    for r in results:
        lines.append(_row(r.name, r.seconds, r.split, width) + ("  FAILED" if r.error else ""))
    total = {c: sum(r.split[c] for r in results) for c in COLUMNS}
    lines += ["-" * len(head), _row("all", sum(r.seconds for r in results), total, width)]
    for r in results:
        slow = sorted(r.cells, key=lambda c: -c.seconds)[:top]
        if not slow:
            continue
        lines += ["", f"{r.name}: the {len(slow)} slowest of {len(r.cells)} code cells",
                  f"{'cell':>6} {'seconds':>9}" + "".join(f" {c:>9}" for c in COLUMNS) + "  first line"]
        for c in slow:
            first = c.first_line if len(c.first_line) <= 60 else c.first_line[:57] + "..."
            lines.append(f"{c.index:>6} {c.seconds:9.1f}" + "".join(f" {c.split[k]:9.1f}" for k in COLUMNS)
                         + f"  {first}")
    return "\n".join(lines)


def to_json(results: Sequence[ChapterProfile], profile: str) -> dict:
    """Everything measured, as plain JSON-ready data (what ``--json`` writes)."""
    return {"profile": profile, "columns": list(COLUMNS), "chapters": [asdict(r) for r in results]}


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's description); returns the exit status."""
    from mmcl_helpers.core.profiles import PROFILES

    parser = argparse.ArgumentParser(prog="python -m mmcl_helpers.book_support.profile_book",
                                     description="Execute the book's chapters and print where the time goes.")
    parser.add_argument("--profile", default=os.environ.get("MMCL_PROFILE") or "smoke",
                        help="compute profile (default: $MMCL_PROFILE, else smoke)")
    parser.add_argument("--only", nargs="+", metavar="NAME",
                        help="only these notebooks (e.g. 01_latent_model)")
    parser.add_argument("--json", metavar="OUT", help="also write the full table to this JSON file")
    parser.add_argument("--timeout", type=int, default=900, help="seconds a cell may run (default 900)")
    parser.add_argument("--top", type=int, default=5, help="slowest cells shown per chapter (default 5)")
    parser.add_argument("--root", default=".", help="the repository (holding _toc.yml and book/)")
    args = parser.parse_args(argv)
    if args.profile not in PROFILES:
        parser.error(f"--profile must be one of {', '.join(PROFILES)}; got {args.profile!r}.")
    if args.timeout < 1 or args.top < 1:
        parser.error(f"--timeout and --top must be positive; got {args.timeout} and {args.top}.")
    try:
        chosen = _select(book_notebooks(args.root), args.only)
    except ValueError as err:
        parser.error(str(err))
    os.environ["MMCL_PROFILE"] = args.profile
    results = profile_book(args.root, [p.stem for p in chosen], timeout=args.timeout)
    print()
    print(format_profile(results, args.profile, args.top))
    if args.json:
        Path(args.json).write_text(json.dumps(to_json(results, args.profile), indent=1) + "\n")
        print(f"\nwrote {args.json}")
    failed = [r for r in results if r.error is not None]
    if failed:
        print(f"\n{len(failed)} of {len(results)} notebooks failed:", file=sys.stderr)
        for r in failed:
            cell = r.error.get("cell")
            print(f"  {r.path}: " + ("kernel failed outside any cell" if cell is None else f"cell {cell}"),
                  file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
