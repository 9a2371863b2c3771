"""Does a chapter train slower inside `make book` than in a plain Python process?

#35 measured chapters 5 and 6 at 1.7x their nbclient time when `make book` executed them. This
runs one fixed workload, the cpu profile's scene image-text training step (image and text towers,
forward and backward, Adam), three ways in one run and prints seconds per step and the ratio to the
first:

1. in this Python process;
2. in a Jupyter kernel started by nbclient (how `make profile-book` and nbmake execute);
3. inside a Jupyter Book build of a one-page book (myst-nb, the way `make book` executes a chapter),
   with this checkout's `_config.yml` execution settings.

Each way also reports the torch threads it saw and the MMCL_*/OMP_* settings of its process, so a
difference in threads or environment shows up beside the time.

    .venv/bin/python benchmarks/bench_book_kernel.py [--steps 30] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
MARK = "BENCH_BOOK_KERNEL"

#: The timed workload as source, so each way runs the very same code.
WORKLOAD = textwrap.dedent("""
    import json, os, time, torch
    from mmcl_helpers.core.losses import info_nce
    from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES
    from mmcl_helpers.image_text.image_encoders import ImageEncoder, TextEncoder

    def _bench(steps, repeats):
        p = IMAGE_TEXT_PROFILES["cpu"]
        torch.manual_seed(0)
        f_x = ImageEncoder(12, p.widths, p.hidden, first_stride=p.first_stride)
        f_t = TextEncoder(60, 12, p.text_embed, p.text_channels, p.hidden)
        opt = torch.optim.Adam(list(f_x.parameters()) + list(f_t.parameters()), lr=p.lr)
        x = torch.rand(p.batch_size, 64, 64, 3)
        t = torch.randint(1, 60, (p.batch_size, 16))

        def step():
            opt.zero_grad(set_to_none=True)
            info_nce(f_x(x), f_t(t), "cosine", p.tau).backward()
            opt.step()

        for _ in range(3):  # warm-up: allocator, first-call overheads
            step()
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(steps):
                step()
            best = min(best, (time.perf_counter() - start) / steps)
        env = {k: v for k, v in os.environ.items() if k.startswith(("MMCL_", "OMP_", "MKL_"))}
        return {"s_per_step": best, "threads": torch.get_num_threads(), "batch": p.batch_size, "env": env}
""")


def _cell(steps: int, repeats: int) -> str:
    return WORKLOAD + f"\nprint('{MARK}', json.dumps(_bench({steps}, {repeats})))\n"


def _parse(text: str) -> dict:
    m = re.search(MARK + r" (\{.*\})", text)
    if not m:
        raise RuntimeError(f"no {MARK} line in the output:\n{text[-2000:]}")
    return json.loads(m.group(1))


def in_process(steps: int, repeats: int) -> dict:
    scope: dict = {}
    exec(WORKLOAD, scope)  # noqa: S102 - our own source above
    return scope["_bench"](steps, repeats)


def in_nbclient(steps: int, repeats: int) -> dict:
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_cell(steps, repeats))])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    NotebookClient(nb, timeout=1800, kernel_name="python3").execute()
    return _parse("".join(o.get("text", "") for o in nb.cells[0].outputs))


def in_book_build(steps: int, repeats: int) -> dict:
    """A one-page Jupyter Book with this checkout's execution settings, built with `jupyter-book`."""
    config = (ROOT / "_config.yml").read_text()
    execute = re.search(r"^execute:\n(?:[ \t]+.*\n)+", config, re.M)
    with tempfile.TemporaryDirectory() as tmp:
        book = Path(tmp)
        (book / "_config.yml").write_text('title: bench\nonly_build_toc_files: true\n'
                                          + (execute.group(0) if execute else ""))
        (book / "_toc.yml").write_text("format: jb-book\nroot: page\n")
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(_cell(steps, repeats))])
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, book / "page.ipynb")
        jb = Path(sys.executable).with_name("jupyter-book")
        subprocess.run([str(jb), "build", str(book), "--quiet"], check=True, cwd=book,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        html = (book / "_build" / "html" / "page.html").read_text()
        return _parse(html.replace("&quot;", '"').replace("&#34;", '"'))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="repeats; the best is kept")
    args = parser.parse_args()
    for name, value in (("steps", args.steps), ("repeats", args.repeats)):
        if value < 1:
            parser.error(f"--{name} must be >= 1, got {value}")
    os.environ.setdefault("MMCL_PROGRESS", "0")
    start = time.perf_counter()
    rows = []
    for way, run in (("python process", in_process), ("nbclient kernel", in_nbclient),
                     ("jupyter-book build", in_book_build)):
        rows.append((way, run(args.steps, args.repeats)))
    base = rows[0][1]["s_per_step"]
    print(f"{'executed in':20s} {'ms/step':>8s} {'ratio':>6s} {'threads':>7s}  environment")
    for way, r in rows:
        print(f"{way:20s} {1000 * r['s_per_step']:8.1f} {r['s_per_step'] / base:6.2f} "
              f"{r['threads']:7d}  {r['env'] or '-'}")
    print(f"(cpu profile's image-text step at batch {rows[0][1]['batch']}, "
          f"best of {args.repeats} x {args.steps} steps; "
          f"ratio against the Python process measured in this run; {time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
