"""The paper's whole numerical programme as one command: jobs, dispatch, resume, comparison.

A *job* is one sweep (its settings trained as one ensemble) under one kind of semantics for one
seed; the paper's programme is ``selection, perturbation x independent, dependent x seeds 0, 1,
2`` = 12 jobs of 10 settings each, 120 models. :func:`run_programme` runs the jobs not yet
finished in an output folder, on any :class:`concurrent.futures.Executor` (a process pool with
one worker per device, or a Dask cluster's executor), writes each job's encoders and probe table
as it finishes, and then one combined long table and the paper-vs-run comparisons::

    DIR/programme.json                       the programme's sizes (a resumed run must match)
    DIR/jobs/<job>/encoders.pt, .json        trained encoders and their config (the model store's
                                             format: :func:`~mmcl_helpers.core.model_store.save_model_file`)
    DIR/jobs/<job>/scores.csv                the job's probe table; its presence marks "done"
    DIR/scores.csv                           all jobs, long form
    DIR/compare_*.csv, DIR/comparisons.md    paper vs run for Fig. 3, 7, 8, 9, Tables 4, 5

From the shell: ``python -m mmcl_helpers sweep --profile paper --out DIR`` (see ``--help``).
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch

from mmcl_helpers.core import model_store
from mmcl_helpers.core.biases import CaptionBias, format_set
from mmcl_helpers.core.profiles import Profile

__all__ = [
    "SWEEPS",
    "SEMANTICS",
    "LONG_COLUMNS",
    "Job",
    "ProgrammeMismatchError",
    "plan",
    "programme_sweep",
    "run_job",
    "run_programme",
    "combine",
    "load_encoders",
    "dask_executor",
    "device_pool",
]

SWEEPS = ("selection", "perturbation", "ablation")
SEMANTICS = ("independent", "dependent")
#: The columns of the combined long table, in order.
LONG_COLUMNS = ["seed", "sweep", "semantics", "setting", "encoder", "factor", "role", "probe",
                "metric", "score"]


class ProgrammeMismatchError(ValueError):
    """An output folder holds a programme of other sizes than the one asked for."""


@dataclass(frozen=True)
class Job:
    """One sweep under one kind of semantics for one seed."""

    sweep: str
    semantics: str
    seed: int

    @property
    def name(self) -> str:
        return f"{self.sweep}-{self.semantics}-seed{self.seed}"


def programme_sweep(sweep: str, n_semantic: int) -> tuple[list[CaptionBias], list[int] | None]:
    """The settings and encoding sizes (``None``: one per unbiased semantic) of a programme's sweep
    named ``sweep`` (one of ``SWEEPS``).

    ``selection`` and ``perturbation`` are the paper's Fig. 3 and 7 sweeps; ``ablation`` holds the
    two settings of its Tables 4 and 5 (selected [3] with encoding size 5; selected [8] with
    perturbed [2]), which need ``n_semantic >= 8``.
    """
    from mmcl_helpers.numerical.experiments import numerical_perturbation_sweep, numerical_selection_sweep

    if sweep == "selection":
        return numerical_selection_sweep(n_semantic), None
    if sweep == "perturbation":
        return numerical_perturbation_sweep(n_semantic), None
    if sweep == "ablation":
        if n_semantic < 8:
            raise ValueError(f"the ablation sweep needs n_semantic >= 8, got {n_semantic}.")
        return [CaptionBias(range(1, 4), (), n_semantic),
                CaptionBias(range(1, 9), (1, 2), n_semantic, 0.75)], [5, 6]
    raise ValueError(f"unknown sweep {sweep!r}; allowed: {', '.join(SWEEPS)}.")


def plan(sweeps: Sequence[str], semantics: Sequence[str], seeds: Sequence[int]) -> list[Job]:
    """Every job of a programme, in a fixed order (sweep, then semantics, then seed)."""
    for s in semantics:
        if s not in SEMANTICS:
            raise ValueError(f"unknown semantics {s!r}; allowed: {', '.join(SEMANTICS)}.")
    for s in sweeps:
        if s not in SWEEPS:
            raise ValueError(f"unknown sweep {s!r}; allowed: {', '.join(SWEEPS)}.")
    if not (sweeps and semantics and seeds):
        raise ValueError("sweeps, semantics and seeds must each name at least one value.")
    return [Job(sw, se, int(seed)) for sw in sweeps for se in semantics for seed in seeds]


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    _write_text(path, frame.to_csv(index=False))


# --- One job. -----------------------------------------------------------------------------------

def _long_table(scores: pd.DataFrame, job: Job) -> pd.DataFrame:
    return scores.assign(sweep=job.sweep, semantics=job.semantics)[LONG_COLUMNS]


def run_job(job: Job, out: str | Path, profile: Profile, n_semantic: int = 10, n_modality: int = 5,
            device: str | None = None) -> str:
    """Train one job's settings as one ensemble, probe them and write the job's files.

    Returns the job's folder. The probe table (``scores.csv``) is written last and atomically,
    so a job either has it complete or is not done.
    """
    from mmcl_helpers.numerical.experiments import run_numerical

    folder = Path(out) / "jobs" / job.name
    folder.mkdir(parents=True, exist_ok=True)
    settings, sizes = programme_sweep(job.sweep, n_semantic)
    run = run_numerical(settings, dependent=job.semantics == "dependent", n_image=n_modality,
                        n_text=n_modality, profile=profile, seeds=job.seed, encoding_sizes=sizes,
                        device=device, progress=False)
    trained = run.trained[0]
    tensors = {f"{name}.{g}.{key}": value
               for name, nets in (("f_x", trained.f_x), ("f_t", trained.f_t))
               for g, net in enumerate(nets) for key, value in net.state_dict().items()}
    shapes = {name: [{"in_dims": n.in_dims, "out_dims": n.out_dims, "hidden": n.member_hidden,
                      "negative_slope": n.negative_slope, "batch_norm": n.batch_norm} for n in nets]
              for name, nets in (("f_x", trained.f_x), ("f_t", trained.f_t))}
    config = {**run.config, "job": asdict(job), "members": trained.members, "encoders": shapes,
              "hostname": os.uname().nodename, "cuda_visible_devices":
              os.environ.get("CUDA_VISIBLE_DEVICES")}
    model_store.save_model_file(folder / "encoders.pt", tensors, config)
    _write_csv(folder / "scores.csv", _long_table(run.scores, job))
    return str(folder)


def load_encoders(folder: str | Path) -> tuple[list, list, dict]:
    """A finished job's ``(f_x, f_t, config)``: lists of :class:`EnsembleMLP`, one per group."""
    from mmcl_helpers.numerical.encoders import EnsembleMLP

    tensors, config = model_store.read_model_file(Path(folder) / "encoders.pt")
    nets: dict[str, list] = {}
    for name, specs in config["encoders"].items():
        nets[name] = []
        for g, spec in enumerate(specs):
            net = EnsembleMLP(spec["in_dims"], spec["out_dims"], spec["hidden"],
                              spec["negative_slope"], spec["batch_norm"])
            prefix = f"{name}.{g}."
            state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            for path, module in net.named_modules():
                # A network saved without weight masks (members of equal widths) has none.
                if getattr(module, "weight_mask", None) is not None and f"{path}.weight_mask" not in state:
                    module.weight_mask = module.bias_mask = None
            net.load_state_dict(state)
            nets[name].append(net.eval())
    return nets["f_x"], nets["f_t"], config


# --- Dispatch. ----------------------------------------------------------------------------------

def _pin_device(queue, n_workers: int) -> None:
    # Runs once in each pool worker before any CUDA call: the worker sees only its own device.
    device = queue.get()
    if device.startswith("cuda"):
        os.environ["CUDA_VISIBLE_DEVICES"] = device.partition(":")[2] or "0"
        os.environ["MMCL_DEVICE"] = "cuda"
    else:
        os.environ["MMCL_DEVICE"] = "cpu"
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // n_workers))


def _job_in_worker(job: Job, out: str, profile: Profile, n_semantic: int, n_modality: int) -> str:
    return run_job(job, out, profile, n_semantic, n_modality, os.environ.get("MMCL_DEVICE"))


def device_pool(devices: Sequence[str]) -> cf.ProcessPoolExecutor:
    """One worker process per device (``"cuda:0"``, ``"cuda:1"``, ... or ``"cpu"``), each pinned.

    A CUDA worker sets ``CUDA_VISIBLE_DEVICES`` to its own GPU before touching CUDA, so every job
    it runs sees exactly one device.
    """
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    for d in devices:
        queue.put(str(d))
    return cf.ProcessPoolExecutor(len(devices), mp_context=ctx, initializer=_pin_device,
                                  initargs=(queue, len(devices)))


def dask_executor(address: str | object) -> cf.Executor:
    """A :mod:`concurrent.futures` executor on a Dask cluster (a scheduler address or a Client).

    Where the workers advertise a ``GPU`` resource (``dask worker ... --resources GPU=1``, one
    worker per GPU started with its own ``CUDA_VISIBLE_DEVICES``), every job asks for one, so a
    worker never runs two jobs on its GPU at once.
    """
    from distributed import Client

    client = address if isinstance(address, Client) else Client(address)
    workers = client.scheduler_info().get("workers", {}).values()
    has_gpu = any("GPU" in (w.get("resources") or {}) for w in workers)
    return client.get_executor(pure=False, **({"resources": {"GPU": 1}} if has_gpu else {}))


def _programme_spec(profile: Profile, n_semantic: int, n_modality: int) -> dict:
    return {"profile": asdict(profile), "n_semantic": n_semantic, "n_modality": n_modality}


def _check_folder(out: Path, spec: dict) -> None:
    path = out / "programme.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != json.loads(json.dumps(spec)):
            diff = {k: (old.get(k), spec[k]) for k in spec if old.get(k) != spec[k]}
            if "profile" in diff:
                a, b = diff.pop("profile")
                diff.update({f"profile.{k}": (a.get(k), b[k]) for k in b if a.get(k) != b[k]})
            raise ProgrammeMismatchError(
                f"{out} holds a programme of other sizes ({diff}, as (folder, asked)); resume it "
                "with the same sizes or choose another --out folder."
            )
    else:
        out.mkdir(parents=True, exist_ok=True)
        _write_text(path, json.dumps(spec, indent=1))


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_programme(
    out: str | Path,
    jobs: Sequence[Job],
    profile: Profile,
    *,
    n_semantic: int = 10,
    n_modality: int = 5,
    executor: cf.Executor | None = None,
    report: Callable[[str], None] | None = _say,
) -> pd.DataFrame:
    """Run every job of ``jobs`` not yet finished in ``out``, then :func:`combine` them.

    Args:
        out: the output folder (created; a folder from an earlier run is resumed).
        jobs: from :func:`plan`.
        profile: sizes of every job (with any overrides already applied).
        n_semantic, n_modality: the latent model's sizes (paper: 10 and 5).
        executor: where jobs run; ``None`` runs them one after another in this process. Jobs are
            submitted as picklable calls, so a process pool (:func:`device_pool`) or a Dask
            cluster (:func:`dask_executor`) works alike.
        report: receives one progress line per finished job (``None``: silent).

    Returns:
        the combined long table (columns :data:`LONG_COLUMNS`).

    Raises:
        ProgrammeMismatchError: ``out`` holds jobs trained with other sizes.
    """
    out = Path(out)
    _check_folder(out, _programme_spec(profile, n_semantic, n_modality))
    todo = [j for j in jobs if not (out / "jobs" / j.name / "scores.csv").exists()]
    total, done = len(jobs), len(jobs) - len(todo)
    say = report or (lambda _text: None)
    say(f"programme: {total} jobs, {done} already done in {out}, {len(todo)} to run")
    start = time.perf_counter()
    args = (str(out), profile, n_semantic, n_modality)

    def finished(job: Job, n_new: int) -> None:
        elapsed = time.perf_counter() - start
        eta = elapsed / n_new * (len(todo) - n_new)
        say(f"[{done + n_new}/{total}] {job.name} done; {elapsed:.0f} s so far, ETA {eta:.0f} s")

    if executor is None:
        for n_new, job in enumerate(todo, 1):
            run_job(job, *args)
            finished(job, n_new)
    else:
        futures = {executor.submit(_job_in_worker, job, *args): job for job in todo}
        for n_new, fut in enumerate(cf.as_completed(futures), 1):
            fut.result()
            finished(futures[fut], n_new)
    return combine(out, jobs, profile.name, n_semantic)


# --- Combined table and comparisons. ------------------------------------------------------------

_NOT_TRANSCRIBED = (
    "The paper's Fig. {n} (linear probes, {sweep} sweep) is not transcribed in "
    "mmcl_helpers/core/paper_values, so no paper cell stands beside this run's; `{file}` holds the "
    "run's linear-probe means over seeds (panel, factor, column, ours, ours_sd). The paper says "
    "these mirror the nonlinear Fig. {m}."
)


def _figure_input(long: pd.DataFrame, sweep: str, n_semantic: int) -> pd.DataFrame:
    settings, _ = programme_sweep(sweep, n_semantic)
    by_label = {b.label: b for b in settings}
    df = long[long["sweep"] == sweep]
    df = df.assign(selected=[sorted(by_label[s].selected) for s in df["setting"]],
                   perturbed=[sorted(by_label[s].perturbed) for s in df["setting"]])
    return df


def _linear_grid(df: pd.DataFrame, column_of: str, semantics: str) -> pd.DataFrame:
    df = df[df["probe"] == "linear"].assign(
        column=lambda d: d[column_of].map(format_set),
        panel=lambda d: semantics + "_z" + d["encoder"])
    return (df.groupby(["panel", "factor", "column", "role"], sort=False)["score"]
            .agg(ours="mean", ours_sd=lambda v: float(v.std(ddof=0))).reset_index())


def _table_comparison(long: pd.DataFrame, n_semantic: int, profile: str) -> dict[str, pd.DataFrame]:
    from mmcl_helpers.core.paper import TABLE4_LINEAR_ZX, TABLE5_LINEAR_ZX, comparison_table
    from mmcl_helpers.numerical.experiments import factor_names

    settings, _ = programme_sweep("ablation", n_semantic)
    names = factor_names(n_semantic)
    out = {}
    for key, bias, values in (("table4", settings[0], TABLE4_LINEAR_ZX),
                              ("table5", settings[1], TABLE5_LINEAR_ZX)):
        cells = long[(long["sweep"] == "ablation") & (long["setting"] == bias.label)
                     & (long["probe"] == "linear") & (long["encoder"] == "x")]
        paper = pd.DataFrame([{"semantics": semantics, "factor": name, "paper": value}
                              for semantics, row in values.items() for name, value in zip(names, row)])
        ours = (cells.groupby(["semantics", "factor"], sort=False)["score"]
                .agg(ours="mean", ours_sd=lambda v: float(v.std(ddof=0))).reset_index())
        out[key] = comparison_table(ours, paper, ["semantics", "factor"], profile, stats=["ours_sd"])
    return out


def combine(out: str | Path, jobs: Sequence[Job], profile: str, n_semantic: int = 10) -> pd.DataFrame:
    """Concatenate finished jobs' tables into ``out/scores.csv`` and write the comparisons.

    Fig. 3 and 7 (nonlinear probes) are compared cell by cell with the paper's values where the
    run has the sweep; Tables 4 and 5 (linear probe on z_x) where it has the ``ablation`` sweep;
    Fig. 8 and 9 (linear probes) are listed without paper cells (not transcribed). What is
    missing, and why, is written to ``comparisons.md``.
    """
    from mmcl_helpers.core.paper import compare_to_figure

    out = Path(out)
    missing = [j.name for j in jobs if not (out / "jobs" / j.name / "scores.csv").exists()]
    if missing:
        raise FileNotFoundError(f"jobs not finished in {out}: {', '.join(missing)}.")
    long = pd.concat([pd.read_csv(out / "jobs" / j.name / "scores.csv") for j in jobs],
                     ignore_index=True)
    _write_csv(out / "scores.csv", long)
    notes = [f"# Paper vs this run (profile {profile})", "",
             "Means over the run's seeds; `ours_sd` is their spread (0 for one seed).", ""]
    figures = (("fig3", "selection", "selected", 3, 8), ("fig7", "perturbation", "perturbed", 7, 9))
    for fig, sweep, column_of, n, n_linear in figures:
        linear_file = f"compare_fig{n_linear}.csv"
        if sweep not in set(long["sweep"]):
            notes.append(f"- Fig. {n} and Fig. {n_linear}: not computed, the run has no {sweep} "
                         f"sweep (add it to --sweeps).")
            continue
        df = _figure_input(long, sweep, n_semantic)
        parts, grids = [], []
        for semantics in dict.fromkeys(df["semantics"]):
            sub = df[df["semantics"] == semantics]
            parts.append(compare_to_figure(sub, fig, semantics == "dependent", column_of, profile))
            grids.append(_linear_grid(sub, column_of, semantics))
        table = pd.concat(parts, ignore_index=True)
        _write_csv(out / f"compare_fig{n}.csv", table)
        notes.append(f"- Fig. {n} (nonlinear probes): `compare_fig{n}.csv`, {len(table)} cells, "
                     f"mean |difference| {table['difference'].abs().mean():.3f}."
                     if len(table) else
                     f"- Fig. {n}: `compare_fig{n}.csv` is empty: the paper's cells are for "
                     f"n_semantic = 10 and this run used {n_semantic}.")
        _write_csv(out / linear_file, pd.concat(grids, ignore_index=True))
        notes.append("- " + _NOT_TRANSCRIBED.format(n=n_linear, sweep=sweep, file=linear_file, m=n))
    if "ablation" in set(long["sweep"]):
        for key, frame in _table_comparison(long, n_semantic, profile).items():
            _write_csv(out / f"compare_{key}.csv", frame)
            note = " (the paper gives Table 4's linear z_x row for independent semantics only)" \
                if key == "table4" else ""
            notes.append(f"- Table {key[-1]}: `compare_{key}.csv`, {len(frame)} "
                         f"cells{note}.")
    else:
        notes.append("- Tables 4 and 5: not computed, they need the `ablation` sweep (selected [3] "
                     "with encoding size 5; selected [8], perturbed [2]): add it to --sweeps.")
    _write_text(out / "comparisons.md", "\n".join(notes) + "\n")
    return long
