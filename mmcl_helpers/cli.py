"""Command line: simulate and scenes train and probe one setting; sweep runs a whole programme.

``python -m mmcl_helpers simulate --selected 1,2,3 --perturbed 2 ...`` trains one setting of
the numerical study and prints its R^2 table (rows s1..sN, mx, mt; columns encoder x/t times
probe linear/mlp). ``--out`` writes the same numbers in long form with the columns
``encoder, factor, probe, metric, score`` (metric ``r2``); the file is checked before any work and
an existing one is kept unless ``--force`` is given. Any bad input ends with one ``error: ...``
line naming the flag, the value and what is allowed, and exit code 2.

``python -m mmcl_helpers scenes --selected shape,x_pos --perturbed x_pos ...`` trains one
captioning setting of chapter 5's rendered scenes with the chapter's recipe
(:func:`~mmcl_helpers.image_text.sweeps.scene_setting`) and prints its probe table (rows: the semantics, the
image-specific factors and ``template``, the phrasing; columns ẑ_x/ẑ_t times linear/mlp);
``--out`` writes it in long form with the columns ``encoder, factor, probe, metric, score``
(metric ``mcc`` or ``r2``). Factors are named as in chapter 5; a perturbed factor is redrawn with
the chapter's probability (:data:`~mmcl_helpers.datasets.naming.SCENE_P_PERTURB`).

``python -m mmcl_helpers sweep --profile paper --out DIR`` runs the paper's whole numerical
programme, resumably, on one device, one worker per device (``--devices``) or a Dask cluster
(``--scheduler``); see :mod:`mmcl_helpers.numerical.programme`. ``DIR`` is checked before any
work: an existing folder that the command did not create, or one holding files it did not write,
is used only with ``--force``; a resumed job whose files do not match their record is trained
again, with a warning naming the file.

Every command checks its environment variables first (``MMCL_DRY_RUN``, ``MMCL_PROFILE``,
``MMCL_CACHE``, ``MMCL_PROGRESS``, ``MMCL_CACHE_DIR``): a value it cannot use is one ``error:``
line naming the variable, exit code 2, as for a flag.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from mmcl_helpers.core import validation as val
from mmcl_helpers.core.biases import CaptionBias, InvalidIndexSetError
from mmcl_helpers.core.profiles import PROFILE_FIELDS, UnknownProfileError, active_profile
from mmcl_helpers.core.storage import CacheDirError

__all__ = ["main", "parse_index_list", "parse_seed_list", "MAX_RANGE"]


# Digits 0-9 only: int() would also read '1_0' (10), '+3' and non-ASCII digits such as '３'.
_INTEGER = re.compile(r"[0-9]+")
_RANGE = re.compile(r"([0-9]+)-([0-9]+)")
#: The most values one range may expand to (``1-99999999999`` would fill the memory).
MAX_RANGE = 10_000


def _parse_ints(text: str, what: str, example: str) -> list[int]:
    out: list[int] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _RANGE.fullmatch(part)
        if match is None and not _INTEGER.fullmatch(part):
            raise InvalidIndexSetError(f"cannot read {part!r} as {what}: use {example}.")
        lo, hi = (int(match[1]), int(match[2])) if match else (int(part),) * 2
        if lo > hi:
            raise InvalidIndexSetError(
                f"the range {part!r} runs backwards: write it from low to high ({hi}-{lo})."
            )
        if hi - lo >= MAX_RANGE:
            raise InvalidIndexSetError(f"the range {part!r} holds {hi - lo + 1} values; at most "
                                       f"{MAX_RANGE} are allowed.")
        out.extend(range(lo, hi + 1))
    return out


def parse_index_list(text: str) -> list[int]:
    """``"1,2,3"`` -> ``[1, 2, 3]``; ``""`` -> ``[]``. Ranges such as ``1-4`` are allowed.

    Each number is written with the digits 0-9 only (no sign, underscore or other digits).

    Raises:
        InvalidIndexSetError: a part that is not such a number or an increasing range (``5-3``),
            or a range of more than :data:`MAX_RANGE` values.
    """
    return _parse_ints(text, "an index",
                       "comma-separated 1-based integers such as 1,2,3 or a range such as 1-3")


def parse_seed_list(text: str) -> list[int]:
    """``"0,1,2"`` or ``"0-2"`` -> ``[0, 1, 2]``: non-negative seeds, read as :func:`parse_index_list`."""
    return _parse_ints(text, "a seed",
                       "comma-separated non-negative integers such as 0,1,2 or a range such as 0-2")


class _UsageError(Exception):
    """A bad command line: reported as one ``error:`` line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, not a usage dump plus a line
        raise _UsageError(f"{message} (see {self.prog} --help)")


# Command-line flag of each argument name that the package may name in an error.
_FLAGS = {
    "steps": "--steps", "batch_size": "--batch-size", "encoding_sizes": "--encoding-size",
    "seed": "--seed", "seeds": "--seed", "p_perturb": "--p-perturb", "n_semantic": "--n-semantic",
    "n_image": "--n-modality", "n_text": "--n-modality", "device": "--device", "profile": "--profile",
    "selected": "--selected", "perturbed": "--perturbed", "probe_train": "--probe-train",
    "probe_test": "--probe-test", "probe_steps": "--probe-steps", "precision": "--precision",
}

_ON, _OFF = {"1", "true", "yes", "on"}, {"", "0", "false", "no", "off"}


def _check_environment(args: argparse.Namespace) -> None:
    """Every environment variable a command reads, before any work: one error naming the variable."""
    from mmcl_helpers.core.dry_run import dry_run_enabled
    from mmcl_helpers.core.profiles import get_profile

    try:
        dry_run_enabled()
    except ValueError as err:
        raise _UsageError(str(err)) from None
    raw = os.environ.get("MMCL_PROFILE")
    if raw and getattr(args, "profile", None) is None:
        try:
            get_profile(raw)
        except UnknownProfileError:
            raise _UsageError(f"MMCL_PROFILE={raw!r} is not a compute profile; allowed: smoke, cpu, "
                              "gpu, paper (or unset it, or give --profile).") from None
    raw = os.environ.get("MMCL_CACHE")
    if raw is not None and raw.strip().lower() not in _ON | _OFF:
        raise _UsageError(f"MMCL_CACHE={raw!r} is not understood; allowed: 0, false, no, off (no "
                          "cache) or 1, true, yes, on (the default).")
    raw = os.environ.get("MMCL_PROGRESS")
    if raw is not None and raw.strip() not in ("", "0", "1"):
        raise _UsageError(f"MMCL_PROGRESS={raw!r} is not understood; allowed: 0 (no progress bars) "
                          "or 1 (the default).")


def _check_flags(args: argparse.Namespace) -> None:
    """Every numeric flag, the device, ``--out`` and the cache folder, before any work."""
    from mmcl_helpers.numerical.latents import MAX_LATENT_SIZE

    size = val.Interval(val.Integral, 1, MAX_LATENT_SIZE, closed="both")  # LatentModel's limit
    # A flag a subcommand does not have reads as "not given".
    given = {name: getattr(args, name, None) for name in (
        "steps", "batch_size", "encoding_size", "n_semantic", "n_modality", "seed", "p_perturb")}
    checks = {
        "--steps": (given["steps"], PROFILE_FIELDS["steps"]),
        "--batch-size": (given["batch_size"], PROFILE_FIELDS["batch_size"]),
        "--encoding-size": (given["encoding_size"], val.POSITIVE_INT),
        "--n-semantic": (given["n_semantic"], size),
        "--n-modality": (given["n_modality"], size),
        "--seed": (given["seed"], val.NONNEG_INT),
        "--p-perturb": (given["p_perturb"], val.PROBABILITY),
    }
    for flag, (value, constraint) in checks.items():
        if value is None:  # not given: the profile's value
            continue
        try:
            val.check_param(flag, value, constraint)
        except val.InvalidParameterError as err:
            raise _UsageError(f"{flag} must be {err.allowed}; got {value!r}.") from None
    if args.command == "sweep":
        return
    try:
        val.check_device(args.device, name="--device")
    except val.DeviceUnavailableError as err:
        reason = str(err).split(", but ", 1)[-1].split(". Use", 1)[0]
        raise _UsageError(
            f"--device {args.device}: {reason}; use --device cpu or leave --device out."
        ) from None
    except val.InvalidParameterError as err:
        allowed = err.allowed.removesuffix(" or None")
        raise _UsageError(f"--device must be {allowed}; got {args.device!r}.") from None
    if args.out is not None:
        out = Path(args.out).expanduser()
        if out.is_dir():
            raise _UsageError(f"--out {args.out} is a folder; give a file name such as {out / 'r2.csv'}.")
        if out.exists() and not args.force:
            raise _UsageError(f"--out {args.out} already exists; pass --force to overwrite it.")
        if not out.parent.is_dir():
            raise _UsageError(f"--out {args.out}: the folder {out.parent} does not exist; create it first.")
        if not os.access(out.parent, os.W_OK) or not _can_write_in(out.parent):
            raise _UsageError(f"--out {args.out}: the folder {out.parent} is not writable.")


def _flag_message(err: Exception, args: argparse.Namespace) -> str:
    """The package's message in the words of the command line (flags instead of argument names)."""
    param = getattr(err, "param", "")
    if param in _FLAGS and getattr(err, "allowed", ""):
        flag = _FLAGS[param]
        value = getattr(args, flag[2:].replace("-", "_"), err.value)
        return f"{flag} must be {err.allowed}; got {value!r}."
    text = str(err)
    if isinstance(err, UnknownProfileError) and getattr(args, "profile", None) is not None:
        return f"--profile {args.profile}: {text}"  # else the name came from MMCL_PROFILE
    return re.sub(r"^(selected|perturbed)\b", lambda m: _FLAGS[m.group(1)], text)


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m mmcl_helpers", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
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
    sim.add_argument("--out", default=None, help="write the long-form table to this CSV (checked first)")
    sim.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_sweep_parser(sub)
    _add_scenes_parser(sub)
    return parser


def _add_scenes_parser(sub) -> None:
    from mmcl_helpers.datasets.naming import SCENE_P_PERTURB
    from mmcl_helpers.datasets.scenes import IMAGE_FACTORS, SEMANTIC_FACTORS

    sc = sub.add_parser(
        "scenes", help="train and probe one captioning setting of chapter 5's scenes",
        description=(
            "Train one captioning setting of chapter 5's rendered scenes with the chapter's data, "
            "encoders, training and probes, and print its probe table: one row per semantic "
            f"factor ({', '.join(SEMANTIC_FACTORS)}), image-specific factor "
            f"({', '.join(IMAGE_FACTORS)}) and the phrasing (template); columns ẑ_x/ẑ_t times "
            "linear/mlp probe (MCC for discrete factors, R² for continuous ones). A perturbed factor "
            f"is redrawn in each pair with probability {SCENE_P_PERTURB:g}, as in the chapter."),
        epilog="example: python -m mmcl_helpers scenes --selected shape,x_pos --perturbed x_pos "
               "--profile cpu --out scenes.csv")
    sc.add_argument("--selected", required=True,
                    help="scene factors the captions describe, e.g. shape,x_pos (names as in chapter 5)")
    sc.add_argument("--perturbed", default="",
                    help="selected factors the captions may misreport (a proper subset of --selected)")
    sc.add_argument("--profile", default=None, help="smoke, cpu, gpu or paper")
    sc.add_argument("--seed", type=int, default=0, help="data and training seed")
    sc.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    sc.add_argument("--out", default=None, help="write the long-form table to this CSV (checked first)")
    sc.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    sc.add_argument("--quiet", action="store_true", help="no progress bar")


def _names(text: str) -> list[str]:
    return [p.strip() for p in text.split(",") if p.strip()]


def _scenes(args: argparse.Namespace) -> int:
    from mmcl_helpers.core.profiles import image_text_profile
    from mmcl_helpers.core.results import factor_role
    from mmcl_helpers.core.storage import check_cache_dir
    from mmcl_helpers.datasets.naming import bias_from_names
    from mmcl_helpers.datasets.scenes import SEMANTIC_FACTORS
    from mmcl_helpers.image_text.sweeps import scene_setting

    _check_flags(args)
    bias = bias_from_names(_names(args.selected), _names(args.perturbed))  # bad names fail here
    profile = image_text_profile(args.profile)
    check_cache_dir("scenes")  # a cache folder that cannot be used fails now, not after rendering
    print(f"{bias!r}\n{profile}", file=sys.stderr)
    start = time.perf_counter()
    long = scene_setting(_names(args.selected), _names(args.perturbed), profile, seed=args.seed,
                         device=args.device, progress=not args.quiet)
    wide = long.pivot_table(index="factor", columns=["encoder", "probe"], values="score", sort=False)
    wide.columns = [f"{enc} {probe}" for enc, probe in wide.columns]
    wide = wide.reindex(columns=[c for c in ("x linear", "x mlp", "t linear", "t mlp") if c in wide])
    metric = long.drop_duplicates("factor").set_index("factor")["metric"]
    wide.insert(0, "metric", metric.reindex(wide.index))
    wide.insert(0, "role", [factor_role(bias, f, SEMANTIC_FACTORS) for f in wide.index])
    print(wide.round(3).to_string(na_rep="-"))
    print(f"({time.perf_counter() - start:.1f} s, profile {profile.name}, seed {args.seed})",
          file=sys.stderr)
    return _write_out(long, args)


def _write_out(long, args: argparse.Namespace) -> int:
    from mmcl_helpers.core.storage import atomic_write_text

    if args.out:
        try:
            atomic_write_text(Path(args.out).expanduser(), long.to_csv(index=False))
        except OSError as err:
            raise _UsageError(f"--out {args.out}: could not write it ({err}); the table above is the "
                              "result.") from None
    return 0


def _add_sweep_parser(sub) -> None:
    sw = sub.add_parser(
        "sweep", help="train and probe a whole programme of sweeps (resumable)",
        description=("Train and probe the paper's numerical programme: every sweep x semantics x "
                     "seed is one job; finished jobs are kept in --out and skipped when the same "
                     "command is run again."),
        epilog="example: python -m mmcl_helpers sweep --profile cpu --seeds 0 --out runs/cpu")
    sw.add_argument("--out", required=True,
                    help="output folder: a new one, or one this command wrote (resumed); checked first")
    sw.add_argument("--force", action="store_true",
                    help="use an --out folder this command did not create or that holds other files "
                         "(files of the programme's names are replaced), or start over one of other sizes")
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


def _choices(flag: str, text: str, allowed: Sequence[str]) -> list[str]:
    names = _names(text)
    if not names:
        raise _UsageError(f"{flag} is empty; allowed: {', '.join(allowed)} (comma-separated).")
    unknown = [n for n in names if n not in allowed]
    if unknown:
        raise _UsageError(f"{flag} holds unknown name(s) {unknown}; allowed: {', '.join(allowed)}.")
    if len(set(names)) != len(names):
        raise _UsageError(f"{flag} {text}: list each name once.")
    return names


def _check_sweep_out(args: argparse.Namespace, spec: dict) -> None:
    """``--out`` of ``sweep``: a new folder in a writable place, or one this command wrote."""
    from mmcl_helpers.numerical import programme as pg

    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        raise _UsageError(f"--out {args.out} is a file; give a folder name (the programme writes "
                          "several files there).")
    if not out.exists():
        if not out.parent.is_dir():
            raise _UsageError(f"--out {args.out}: the folder {out.parent} does not exist; create it first.")
        if not _can_write_in(out.parent):
            raise _UsageError(f"--out {args.out}: cannot create a folder in {out.parent} (not writable).")
        return
    if not _can_write_in(out):
        raise _UsageError(f"--out {args.out}: the folder is not writable.")
    if not args.force and not (out / "programme.json").exists() and not any(out.iterdir()):
        raise _UsageError(f"--out {args.out} already exists and this command did not create it (it "
                          "holds no programme.json); pass --force to use it, or give a new folder name.")
    try:
        pg.check_folder(out, spec, args.force)
    except pg.ProgrammeError as err:
        raise _UsageError(f"--out {args.out}: {str(err).replace(' (force=True)', '')}") from None


def _can_write_in(folder: Path) -> bool:
    """Whether a folder can be made in ``folder`` (tried, then removed: nothing is left behind)."""
    import tempfile

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".mmcl-check-", dir=folder))
        return True
    except OSError:
        return False


def _sweep_executor(args: argparse.Namespace):
    from mmcl_helpers.numerical import programme as pg

    if args.scheduler and args.devices:
        raise _UsageError("give --scheduler or --devices, not both.")
    if args.devices is not None:
        devices = _names(args.devices)
        if not devices:
            raise _UsageError("--devices is empty; give devices such as cuda:0,cuda:1 or cpu.")
        for d in devices:
            try:
                val.check_device(d, name="--devices")
            except val.DeviceUnavailableError as err:
                raise _UsageError(f"--devices {args.devices}: {d}: "
                                  f"{str(err).split(', but ', 1)[-1].split('. Use', 1)[0]}.") from None
            except val.InvalidParameterError as err:
                raise _UsageError(f"--devices {args.devices}: {d!r} is not a device; allowed: "
                                  f"{err.allowed.removesuffix(' or None')}.") from None
        return pg.device_pool(devices)
    if args.scheduler is None:
        return None
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise _UsageError("--scheduler needs the distributed package: pip install distributed.") from None
    try:
        return pg.dask_executor(args.scheduler)
    except pg.SchedulerError as err:
        raise _UsageError(f"--scheduler {args.scheduler}: {err}") from None


def _sweep(args: argparse.Namespace) -> int:
    from mmcl_helpers.numerical import programme as pg

    _check_flags(args)
    profile = active_profile(args.profile).with_overrides(  # a bad value is named by its flag
        steps=args.steps, batch_size=args.batch_size, probe_train=args.probe_train,
        probe_test=args.probe_test, probe_steps=args.probe_steps, precision=args.precision)
    try:
        seeds = parse_seed_list(args.seeds)
    except InvalidIndexSetError as err:
        raise _UsageError(f"--seeds {args.seeds}: {err}") from None
    if not seeds:
        raise _UsageError("--seeds is empty; give seeds such as 0,1,2 or 0-2.")
    if len(set(seeds)) != len(seeds):
        raise _UsageError(f"--seeds {args.seeds}: list each seed once.")
    jobs = pg.plan(_choices("--sweeps", args.sweeps, pg.SWEEPS),
                   _choices("--semantics", args.semantics, pg.SEMANTICS), seeds)
    if "ablation" in {j.sweep for j in jobs} and args.n_semantic < 8:
        raise _UsageError(f"--n-semantic {args.n_semantic}: the ablation sweep (in --sweeps) needs "
                          "--n-semantic 8 or more; raise it or drop ablation from --sweeps.")
    pg.check_sizes(jobs, args.n_semantic, args.n_modality)
    spec = pg.programme_spec(profile, args.n_semantic, args.n_modality)
    _check_sweep_out(args, spec)
    executor = _sweep_executor(args)  # an unreachable scheduler fails here, before any file is written
    print(f"{profile}", file=sys.stderr)
    try:
        pg.run_programme(Path(args.out).expanduser(), jobs, profile, n_semantic=args.n_semantic,
                         n_modality=args.n_modality, executor=executor, force=args.force)
    except pg.ProgrammeError as err:  # the folder changed while the command ran
        raise _UsageError(f"--out {args.out}: {str(err).replace(' (force=True)', '')}") from None
    finally:
        if executor is not None:
            executor.shutdown()
    print(f"combined table: {args.out}/scores.csv; comparisons: {args.out}/comparisons.md")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from mmcl_helpers.core.storage import cache_enabled, check_cache_dir
    from mmcl_helpers.numerical.experiments import run_numerical

    _check_flags(args)
    try:
        selected = parse_index_list(args.selected)
    except InvalidIndexSetError as err:
        raise _UsageError(f"--selected {args.selected}: {err}") from None
    try:
        perturbed = parse_index_list(args.perturbed)
    except InvalidIndexSetError as err:
        raise _UsageError(f"--perturbed {args.perturbed}: {err}") from None
    bias = CaptionBias(selected, perturbed, n_semantic=args.n_semantic, p_perturb=args.p_perturb)
    profile = active_profile(args.profile).with_overrides(
        steps=args.steps, batch_size=args.batch_size
    )
    if cache_enabled():
        check_cache_dir("numerical")  # a cache folder that cannot be used fails now, not after training
    sizes = None if args.encoding_size is None else [args.encoding_size]
    print(f"{bias!r}\n{profile}", file=sys.stderr)
    start = time.perf_counter()
    run = run_numerical(
        [bias], dependent=args.dependent, n_image=args.n_modality, n_text=args.n_modality,
        profile=profile, seeds=args.seed, encoding_sizes=sizes, device=args.device,
        progress=not args.quiet,
    )
    long = run.scores[["encoder", "factor", "probe", "metric", "score"]]
    wide = long.pivot_table(index="factor", columns=["encoder", "probe"], values="score")
    wide = wide.reindex(index=list(dict.fromkeys(long["factor"])))
    print(wide.round(3).to_string())
    print(f"({time.perf_counter() - start:.1f} s, profile {profile.name})", file=sys.stderr)
    return _write_out(long, args)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"warning: {' '.join(str(message).split())}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 done, 2 bad input, with one ``error:`` line).

    Warnings (a cache file rebuilt, a job trained again) print as one ``warning:`` line each.
    """
    args = None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            args = _build_parser().parse_args(argv)
            _check_environment(args)
            commands = {"sweep": _sweep, "simulate": _simulate, "scenes": _scenes}
            return commands[args.command](args)
    except _UsageError as err:
        message = str(err)
    except (InvalidIndexSetError, UnknownProfileError, val.InvalidParameterError, CacheDirError) as err:
        message = _flag_message(err, args)
    print(f"error: {' '.join(message.split())}", file=sys.stderr)
    return 2
