"""Command line: ``python -m mmcl_helpers simulate --selected 1,2,3 --perturbed 2 ...``.

Trains one setting of the numerical study and prints its R^2 table (rows s1..sN, mx, mt; columns
encoder x/t times probe linear/mlp). ``--out`` writes the same numbers in long form with the
columns ``encoder, factor, probe, r2``.

``python -m mmcl_helpers sweep --profile paper --out DIR`` runs the paper's whole numerical
programme, resumably, on one device, one worker per device (``--devices``) or a Dask cluster
(``--scheduler``); see :mod:`mmcl_helpers.programme`.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence

from .biases import CaptionBias, InvalidIndexSetError
from .profiles import UnknownProfileError, active_profile

__all__ = ["main", "parse_index_list"]


def parse_index_list(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]``; ``""`` -> ``[]``. Ranges such as ``1-4`` are allowed."""
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        try:
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                out.extend(range(lo, hi + 1))
            else:
                out.append(int(part))
        except ValueError:
            raise InvalidIndexSetError(
                f"cannot read {part!r} as an index: use comma-separated 1-based integers such "
                "as 1,2,3 or a range such as 1-3."
            ) from None
    return out


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m mmcl_helpers", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("simulate", help="train and probe one setting of the numerical study")
    sim.add_argument("--selected", required=True, help="1-based semantics the captions describe")
    sim.add_argument("--perturbed", default="", help="1-based selected semantics that may be wrong")
    sim.add_argument("--p-perturb", type=float, default=0.75, help="perturbation probability")
    sim.add_argument("--dependent", action="store_true", help="dependent (Wishart) semantics")
    sim.add_argument("--n-semantic", type=int, default=10)
    sim.add_argument("--n-modality", type=int, default=5, help="size of m_x and of m_t")
    sim.add_argument("--encoding-size", type=int, default=None)
    sim.add_argument("--steps", type=int, default=None, help="override the profile's steps")
    sim.add_argument("--batch-size", type=int, default=None, help="override the profile's batch")
    sim.add_argument("--profile", default=None, help="smoke, cpu, gpu or paper")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    sim.add_argument("--out", default=None, help="write the long-form table to this CSV")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_sweep_parser(sub)
    return parser


def _add_sweep_parser(sub) -> None:
    sw = sub.add_parser("sweep", help="train and probe a whole programme of sweeps (resumable)")
    sw.add_argument("--out", required=True, help="output folder (an existing one is resumed)")
    sw.add_argument("--profile", default=None, help="smoke, cpu, gpu or paper")
    sw.add_argument("--sweeps", default="selection,perturbation", help="selection,perturbation,ablation")
    sw.add_argument("--semantics", default="independent,dependent", help="independent,dependent")
    sw.add_argument("--seeds", default="0,1,2", help="seeds, e.g. 0,1,2 or 0-2")
    sw.add_argument("--scheduler", default=None, help="Dask scheduler address (tcp://host:8786)")
    sw.add_argument("--devices", default=None, help="one worker per device, e.g. cuda:0,cuda:1")
    for flag in ("steps", "batch-size", "probe-train", "probe-test", "probe-steps"):
        sw.add_argument(f"--{flag}", type=int, default=None, help=f"override the profile's {flag}")
    sw.add_argument("--precision", default=None, help="fp32, tf32 or bf16 (default: the profile's)")
    sw.add_argument("--n-semantic", type=int, default=10)
    sw.add_argument("--n-modality", type=int, default=5, help="size of m_x and of m_t")


def _sweep(args: argparse.Namespace) -> int:
    from . import programme as pg

    profile = active_profile(args.profile).with_overrides(
        steps=args.steps, batch_size=args.batch_size, probe_train=args.probe_train,
        probe_test=args.probe_test, probe_steps=args.probe_steps, precision=args.precision)
    try:
        jobs = pg.plan(args.sweeps.split(","), args.semantics.split(","), parse_index_list(args.seeds))
    except ValueError as err:  # an unknown sweep or semantics, named in the message
        print(f"error: {err}", file=sys.stderr)
        return 2
    executor = (pg.dask_executor(args.scheduler) if args.scheduler
                else pg.device_pool(args.devices.split(",")) if args.devices else None)
    print(f"{profile}", file=sys.stderr)
    pg.run_programme(args.out, jobs, profile, n_semantic=args.n_semantic,
                     n_modality=args.n_modality, executor=executor)
    print(f"combined table: {args.out}/scores.csv; comparisons: {args.out}/comparisons.md")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from .experiments import run_numerical

    bias = CaptionBias(
        parse_index_list(args.selected),
        parse_index_list(args.perturbed),
        n_semantic=args.n_semantic,
        p_perturb=args.p_perturb,
    )
    profile = active_profile(args.profile).with_overrides(
        steps=args.steps, batch_size=args.batch_size
    )
    sizes = None if args.encoding_size is None else [args.encoding_size]
    print(f"{bias!r}\n{profile}", file=sys.stderr)
    start = time.perf_counter()
    run = run_numerical(
        [bias], dependent=args.dependent, n_image=args.n_modality, n_text=args.n_modality,
        profile=profile, seeds=args.seed, encoding_sizes=sizes, device=args.device,
        progress=not args.quiet,
    )
    long = run.scores[["encoder", "factor", "probe", "r2"]]
    wide = long.pivot_table(index="factor", columns=["encoder", "probe"], values="r2")
    wide = wide.reindex(index=list(dict.fromkeys(long["factor"])))
    print(wide.round(3).to_string())
    print(f"({time.perf_counter() - start:.1f} s, profile {profile.name})", file=sys.stderr)
    if args.out:
        long.to_csv(args.out, index=False)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return _sweep(args) if args.command == "sweep" else _simulate(args)
    except (InvalidIndexSetError, UnknownProfileError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
