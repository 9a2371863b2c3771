"""The paper's whole numerical programme as one command: jobs, dispatch, resume, comparison.

A *job* is one sweep (its settings trained as one ensemble) under one kind of semantics for one
seed; the paper's programme is ``selection, perturbation x independent, dependent x seeds 0, 1,
2`` = 12 jobs of 10 settings each, 120 models. :func:`run_programme` runs the jobs not yet
finished in an output folder, on any :class:`concurrent.futures.Executor` (a process pool with
one worker per device, or a Dask cluster's executor), writes each job's encoders and probe table
as it finishes, and then one combined long table and the paper-vs-run comparisons::

    DIR/programme.json                       the programme's sizes (a resumed run must match)
    DIR/jobs/<job>/encoders.pt, .json        trained encoders (tensors only) and their config, in
                                             the model store's format (model_store.save_model_file)
    DIR/jobs/<job>/scores.csv                the job's probe table
    DIR/jobs/<job>/record.json               written last: row count and SHA-256 of each file
    DIR/scores.csv                           all jobs, long form
    DIR/compare_*.csv, DIR/comparisons.md    paper vs run for Fig. 3, 7, 8, 9, Tables 4, 5
    DIR/outputs.json                         SHA-256 of each file above written at the end

Nothing is overwritten that the programme did not write, and nothing half-written is read:

- :func:`check_folder` refuses a folder holding files it did not write (anything but the names
  above, or one of them changed since it was written) unless ``force=True``, and a programme of
  other sizes;
- every file is written atomically, and a job is done only when its ``record.json`` matches its
  files (checksums), its sizes and the plan's row count (:func:`check_job`); on resume, a job whose
  files do not match is trained again with a :class:`JobRecordWarning` naming the file;
- :func:`combine` checks the combined table against the plan (every job, every row) before any
  comparison is written.

From the shell: ``python -m mmcl_helpers sweep --profile paper --out DIR`` (see ``--help``).
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import multiprocessing
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch

from mmcl_helpers.core import model_store
from mmcl_helpers.core.biases import CaptionBias, format_set
from mmcl_helpers.core.profiles import Profile
from mmcl_helpers.core.storage import atomic_write_text, file_sha256

__all__ = [
    "SWEEPS",
    "SEMANTICS",
    "LONG_COLUMNS",
    "Job",
    "ProgrammeError",
    "ProgrammeMismatchError",
    "ProgrammeFolderError",
    "IncompleteProgrammeError",
    "SchedulerError",
    "JobRecordWarning",
    "plan",
    "programme_sweep",
    "check_sizes",
    "job_keys",
    "JOB_FILES",
    "OUTPUT_FILES",
    "SCHEDULER_TIMEOUT",
    "foreign_entries",
    "check_folder",
    "check_job",
    "check_scheduler_address",
    "programme_spec",
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


class ProgrammeError(ValueError):
    """A programme that cannot run as asked (the message names the file or folder and what to do)."""


class ProgrammeMismatchError(ProgrammeError):
    """An output folder holds a programme of other sizes than the one asked for."""


class ProgrammeFolderError(ProgrammeError):
    """An output folder that is not a folder, or holds files the programme did not write."""


class IncompleteProgrammeError(ProgrammeError):
    """Finished jobs' tables that do not make up the plan (a job or a row missing or extra)."""


class SchedulerError(ConnectionError):
    """A Dask scheduler address that cannot be parsed or does not answer."""


class JobRecordWarning(UserWarning):
    """A job's files do not match its record: the job is trained again."""


#: Files a job writes in ``jobs/<job>/``; ``record.json`` last.
JOB_FILES = ("encoders.pt", "encoders.json", "scores.csv", "record.json")
#: Files :func:`combine` may write in the output folder (the comparisons depend on the sweeps).
OUTPUT_FILES = ("scores.csv", "comparisons.md", "compare_fig3.csv", "compare_fig7.csv",
                "compare_fig8.csv", "compare_fig9.csv", "compare_table4.csv", "compare_table5.csv")
_JOB_NAME = re.compile(f"(?:{'|'.join(SWEEPS)})-(?:{'|'.join(SEMANTICS)})-seed[0-9]+")
# A write cut short (atomic_write_text, model_store.save_model_file).
_TEMP = re.compile(r"(?:\..+\.\d+\.tmp|.+\.tmp\d+)")


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


def check_sizes(jobs: Sequence[Job], n_semantic: int, n_modality: int) -> None:
    """Raise before any work if a job cannot run at these sizes (e.g. ``ablation`` below 8 semantics).

    Raises:
        InvalidParameterError: a size outside what :class:`~mmcl_helpers.numerical.latents.LatentModel`
            accepts; ValueError: a sweep that needs more semantics.
    """
    from mmcl_helpers.core import validation as val
    from mmcl_helpers.numerical.latents import MAX_LATENT_SIZE

    size = val.Interval(val.Integral, 1, MAX_LATENT_SIZE, closed="both")
    val.check_params("run_programme", n_semantic=(n_semantic, size), n_modality=(n_modality, size))
    for sweep in dict.fromkeys(j.sweep for j in jobs):
        programme_sweep(sweep, n_semantic)


def job_keys(job: Job, n_semantic: int) -> set[tuple]:
    """The rows a finished job's table must hold: ``(setting, encoder, factor, probe)`` each once."""
    from mmcl_helpers.numerical.experiments import factor_names

    settings, _ = programme_sweep(job.sweep, n_semantic)
    return {(b.label, enc, f, probe) for b in settings for enc in ("x", "t")
            for f in factor_names(n_semantic) for probe in ("linear", "mlp")}


def _write_text(path: Path, text: str) -> None:
    atomic_write_text(path, text)


def _write_csv(path: Path, frame: pd.DataFrame) -> None:
    _write_text(path, frame.to_csv(index=False))


# --- One job. -----------------------------------------------------------------------------------

def _long_table(scores: pd.DataFrame, job: Job) -> pd.DataFrame:
    return scores.assign(sweep=job.sweep, semantics=job.semantics)[LONG_COLUMNS]


def run_job(job: Job, out: str | Path, profile: Profile, n_semantic: int = 10, n_modality: int = 5,
            device: str | None = None) -> str:
    """Train one job's settings as one ensemble, probe them and write the job's files.

    Returns the job's folder. Every file is written atomically, and ``record.json`` (the row
    count and SHA-256 of each file, and the programme's sizes) last: a job is done only when its
    record matches its files (:func:`check_job`).
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
    (folder / "record.json").unlink(missing_ok=True)  # not done until the new record is written
    model_store.save_model_file(folder / "encoders.pt", tensors, config)
    table = _long_table(run.scores, job)
    _write_csv(folder / "scores.csv", table)
    files = {name: {"sha256": file_sha256(folder / name)} for name in JOB_FILES[:3]}
    files["scores.csv"]["rows"] = len(table)
    record = {"job": asdict(job), "programme": _spec_digest(programme_spec(profile, n_semantic, n_modality)),
              "files": files}
    _write_text(folder / "record.json", json.dumps(record, indent=1))
    return str(folder)


def _read_json(path: Path) -> object:
    """The JSON in ``path``; ``None`` if it is missing or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None


def _spec_digest(spec: dict) -> str:
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


def check_job(out: str | Path, job: Job, spec: dict | None) -> tuple[bool, str | None]:
    """Whether ``job`` is done in ``out``, and if not, what is wrong with the files it left.

    A job is done when ``jobs/<job>/record.json`` was written for this programme (``spec``, the
    content of ``programme.json``), every file it names has the recorded SHA-256, and its table has
    the plan's number of rows (:func:`job_keys`).

    Returns:
        ``(True, None)``; ``(False, None)`` for a job not started (no files); ``(False, reason)``
        for files that do not make a finished job (the reason names the file).
    """
    folder = Path(out) / "jobs" / job.name
    rel = f"jobs/{job.name}"
    if not folder.is_dir() or not any(p.name in JOB_FILES for p in folder.iterdir()):
        return False, None
    record = _read_json(folder / "record.json")
    if not (folder / "record.json").exists():
        return False, f"{rel} has no record.json (the job did not finish)"
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict) or not all(isinstance(v, dict) for v in files.values()):
        return False, f"{rel}/record.json is unreadable"
    if not isinstance(spec, dict) or record.get("programme") != _spec_digest(spec) \
            or record.get("job") != asdict(job):
        return False, f"{rel}/record.json was written for another programme or job"
    for name in JOB_FILES[:3]:
        path = folder / name
        if not path.is_file():
            return False, f"{rel}/{name} is missing"
        if name not in files or file_sha256(path) != files[name].get("sha256"):
            return False, f"{rel}/{name} does not match the checksum in its record (changed or cut short)"
    rows, want = files["scores.csv"].get("rows"), len(job_keys(job, spec.get("n_semantic", 0)))
    if rows != want:
        return False, f"{rel}/scores.csv holds {rows} rows, the plan needs {want}"
    return True, None


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


def check_scheduler_address(address: str) -> str:
    """``address`` if it reads as a Dask scheduler address (``tcp://HOST:PORT``), else a clear error.

    Raises:
        SchedulerError: no port, a port outside 1..65535, no host, or an unknown protocol.
    """
    text = str(address).strip()
    how = "give it as tcp://HOST:PORT, e.g. tcp://10.0.0.5:8786 (the address `dask scheduler` prints)"
    protocol, sep, rest = text.rpartition("://")
    protocol = protocol if sep else "tcp"
    if protocol not in ("tcp", "tls", "inproc", "ucx", "ws", "wss"):
        raise SchedulerError(f"the scheduler address {text!r} has an unknown protocol {protocol!r}; {how}.")
    host, colon, port = rest.rpartition(":")
    if not colon or not port:
        raise SchedulerError(f"the scheduler address {text!r} has no port number; {how}.")
    if not host.strip("[]"):
        raise SchedulerError(f"the scheduler address {text!r} has no host; {how}.")
    if not (port.isascii() and port.isdigit() and 1 <= int(port) <= 65535):
        raise SchedulerError(f"the scheduler address {text!r} has the port {port!r}, not a number in "
                             f"1..65535; {how}.")
    return text


#: Seconds :func:`dask_executor` waits for a scheduler to answer.
SCHEDULER_TIMEOUT = 10.0


def dask_executor(address: str | object, timeout: float | None = None) -> cf.Executor:
    """A :mod:`concurrent.futures` executor on a Dask cluster (a scheduler address or a Client).

    Where the workers advertise a ``GPU`` resource (``dask worker ... --resources GPU=1``, one
    worker per GPU started with its own ``CUDA_VISIBLE_DEVICES``), every job asks for one, so a
    worker never runs two jobs on its GPU at once.

    Args:
        address: ``tcp://HOST:PORT`` or a connected ``distributed.Client``.
        timeout: seconds to wait for the scheduler to answer (default :data:`SCHEDULER_TIMEOUT`).

    Raises:
        SchedulerError: an address that cannot be parsed (:func:`check_scheduler_address`), or a
            scheduler that does not answer within ``timeout`` (the message says what to check).
    """
    from distributed import Client

    timeout = SCHEDULER_TIMEOUT if timeout is None else float(timeout)
    if not isinstance(address, Client):
        text = check_scheduler_address(address)
        try:
            client = Client(text, timeout=f"{timeout}s")
        except (OSError, TimeoutError, ValueError) as err:
            raise SchedulerError(
                f"no Dask scheduler answered at {text} within {timeout:g} s ({type(err).__name__}: "
                f"{' '.join(str(err).split())[:160]}). Check that `dask scheduler` is running there "
                "and that HOST:PORT are the ones it printed at start-up, that this machine can reach "
                "that host (VPN, firewall: the port must be open), and that its workers are started "
                "with `dask worker ADDRESS`."
            ) from None
    client = address if isinstance(address, Client) else client
    workers = client.scheduler_info().get("workers", {}).values()
    has_gpu = any("GPU" in (w.get("resources") or {}) for w in workers)
    return client.get_executor(pure=False, **({"resources": {"GPU": 1}} if has_gpu else {}))


def programme_spec(profile: Profile, n_semantic: int, n_modality: int) -> dict:
    """The sizes that define a programme (written to ``programme.json``; a resume must match them)."""
    return {"profile": asdict(profile), "n_semantic": n_semantic, "n_modality": n_modality}


def _programme_record(out: Path) -> dict | None:
    """``programme.json`` if it is one this module wrote, else ``None``."""
    spec = _read_json(out / "programme.json")
    if isinstance(spec, dict) and set(spec) == {"profile", "n_semantic", "n_modality"} \
            and isinstance(spec["profile"], dict):
        return spec
    return None


def foreign_entries(out: str | Path) -> list[str]:
    """Paths in ``out`` (relative, sorted) that this programme did not write.

    In a folder without a valid ``programme.json`` everything is foreign. Otherwise these are ours:
    ``programme.json``, ``outputs.json``, the files of :data:`OUTPUT_FILES` that still have the
    SHA-256 recorded in ``outputs.json`` when they were written, ``jobs/<job>/`` folders holding
    only :data:`JOB_FILES`, and temporary files of writes cut short.
    """
    out = Path(out)
    if not out.is_dir():
        return []
    entries = sorted(p.name for p in out.iterdir())
    if _programme_record(out) is None:
        return entries
    written = _read_json(out / "outputs.json")
    written = written if isinstance(written, dict) else {}
    foreign = [] if written or not (out / "outputs.json").exists() else ["outputs.json"]
    for name in entries:
        path = out / name
        if name in ("programme.json", "outputs.json") or _TEMP.fullmatch(name):
            continue
        if name == "jobs" and path.is_dir():
            for job in sorted(path.iterdir()):
                if not (job.is_dir() and _JOB_NAME.fullmatch(job.name)):
                    foreign.append(f"jobs/{job.name}")
                    continue
                foreign += [f"jobs/{job.name}/{f.name}" for f in sorted(job.iterdir())
                            if f.name not in JOB_FILES and not _TEMP.fullmatch(f.name)]
        elif not (name in OUTPUT_FILES and path.is_file()
                  and (name not in written or file_sha256(path) == written[name])):
            foreign.append(name)
    return foreign


def check_folder(out: str | Path, spec: dict, force: bool = False) -> None:
    """Raise before any work if ``out`` cannot hold this programme; writes nothing.

    Args:
        out: the output folder (need not exist).
        spec: the programme's sizes (``programme.json``'s content).
        force: write into a folder holding files the programme did not write (those with the
            programme's file names are replaced, others kept), and start over a programme of other
            sizes (its jobs are trained again).

    Raises:
        ProgrammeFolderError: ``out`` is a file, or holds foreign files (:func:`foreign_entries`)
            and ``force`` is false.
        ProgrammeMismatchError: ``out`` holds a programme of other sizes and ``force`` is false.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ProgrammeFolderError(f"{out} is a file, not a folder; give a new folder name.")
    if force or not out.is_dir():
        return
    if (out / "programme.json").exists() and _programme_record(out) is None:
        raise ProgrammeFolderError(
            f"{out}/programme.json is unreadable or was not written by this command, so nothing in "
            f"{out} can be trusted as this programme's; choose a new folder, or pass --force "
            "(force=True) to write a new programme.json there (jobs whose records do not match are "
            "trained again)."
        )
    foreign = foreign_entries(out)
    if foreign:
        listed = ", ".join(foreign[:6]) + (f" and {len(foreign) - 6} more" if len(foreign) > 6 else "")
        raise ProgrammeFolderError(
            f"{out} holds files this command did not write ({listed}); choose a new folder, or pass "
            "--force (force=True) to write into it (files of the programme's names are replaced)."
        )
    old = _programme_record(out)
    spec = json.loads(json.dumps(spec, default=str))
    if old is not None and old != spec:
        diff = {k: (old.get(k), spec[k]) for k in spec if old.get(k) != spec[k]}
        if "profile" in diff:
            a, b = diff.pop("profile")
            diff.update({f"profile.{k}": (a.get(k), b[k]) for k in b if a.get(k) != b[k]})
        raise ProgrammeMismatchError(
            f"{out} holds a programme of other sizes ({diff}, as (folder, asked)); resume it "
            "with the same sizes, choose another folder, or pass --force (force=True) to start it "
            "over (its jobs are trained again)."
        )


def _prepare_folder(out: Path, spec: dict) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    spec = json.loads(json.dumps(spec, default=str))
    if _programme_record(out) != spec:
        _write_text(out / "programme.json", json.dumps(spec, indent=1))
    return spec


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
    force: bool = False,
) -> pd.DataFrame:
    """Run every job of ``jobs`` not yet finished in ``out``, then :func:`combine` them.

    Args:
        out: the output folder (created, its parent must exist; a folder from an earlier run is
            resumed, jobs checked against their records by :func:`check_job`).
        jobs: from :func:`plan`.
        profile: sizes of every job (with any overrides already applied).
        n_semantic, n_modality: the latent model's sizes (paper: 10 and 5).
        executor: where jobs run; ``None`` runs them one after another in this process. Jobs are
            submitted as picklable calls, so a process pool (:func:`device_pool`) or a Dask
            cluster (:func:`dask_executor`) works alike.
        report: receives one progress line per finished job (``None``: silent).
        force: see :func:`check_folder`.

    Returns:
        the combined long table (columns :data:`LONG_COLUMNS`).

    Raises:
        ProgrammeMismatchError: ``out`` holds jobs trained with other sizes.
        ProgrammeFolderError: ``out`` holds files the programme did not write.
        ValueError: a sweep that cannot run at these sizes (checked before anything is written).

    Warns:
        JobRecordWarning: a job's files do not match its record; it is trained again.
    """
    out = Path(out)
    check_sizes(jobs, n_semantic, n_modality)
    spec = programme_spec(profile, n_semantic, n_modality)
    check_folder(out, spec, force)
    spec = _prepare_folder(out, spec)
    say = report or (lambda _text: None)
    todo = []
    for job in jobs:
        finished_already, problem = check_job(out, job, spec)
        if problem:
            warnings.warn(f"training {job.name} again: {problem}.", JobRecordWarning, stacklevel=2)
        if not finished_already:
            todo.append(job)
    total, done = len(jobs), len(jobs) - len(todo)
    say(f"programme: {total} job{'s' * (total != 1)}, {done} already done in {out}, {len(todo)} to run")
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
    long = _checked_table(out, jobs, n_semantic)
    written: dict[str, str] = {}

    def output(path: Path, frame: pd.DataFrame) -> None:  # recorded in outputs.json
        _write_csv(path, frame)
        written[path.name] = file_sha256(path)

    output(out / "scores.csv", long)
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
        output(out / f"compare_fig{n}.csv", table)
        notes.append(f"- Fig. {n} (nonlinear probes): `compare_fig{n}.csv`, {len(table)} cells, "
                     f"mean |difference| {table['difference'].abs().mean():.3f}."
                     if len(table) else
                     f"- Fig. {n}: `compare_fig{n}.csv` is empty: the paper's cells are for "
                     f"n_semantic = 10 and this run used {n_semantic}.")
        output(out / linear_file, pd.concat(grids, ignore_index=True))
        notes.append("- " + _NOT_TRANSCRIBED.format(n=n_linear, sweep=sweep, file=linear_file, m=n))
    if "ablation" in set(long["sweep"]):
        for key, frame in _table_comparison(long, n_semantic, profile).items():
            output(out / f"compare_{key}.csv", frame)
            note = " (the paper gives Table 4's linear z_x row for independent semantics only)" \
                if key == "table4" else ""
            notes.append(f"- Table {key[-1]}: `compare_{key}.csv`, {len(frame)} "
                         f"cells{note}.")
    else:
        notes.append("- Tables 4 and 5: not computed, they need the `ablation` sweep (selected [3] "
                     "with encoding size 5; selected [8], perturbed [2]): add it to --sweeps.")
    _write_text(out / "comparisons.md", "\n".join(notes) + "\n")
    written["comparisons.md"] = file_sha256(out / "comparisons.md")
    old = _read_json(out / "outputs.json")
    _write_text(out / "outputs.json", json.dumps({**(old if isinstance(old, dict) else {}), **written},
                                                 indent=1))
    return long


def _checked_table(out: Path, jobs: Sequence[Job], n_semantic: int) -> pd.DataFrame:
    """Every job's table, after checking each against its record and the whole against the plan."""
    spec = _programme_record(out)
    if spec is None:
        raise ProgrammeFolderError(f"{out}/programme.json is missing or unreadable; run the programme "
                                   "(run_programme) to write it.")
    problems, frames = [], []
    for job in jobs:
        done, problem = check_job(out, job, spec)
        if not done:
            problems.append(f"{job.name} ({problem or 'not run'})")
            continue
        try:
            frames.append(pd.read_csv(out / "jobs" / job.name / "scores.csv"))
        except (OSError, ValueError) as err:
            problems.append(f"{job.name} (jobs/{job.name}/scores.csv unreadable: {err})")
    if problems:
        raise IncompleteProgrammeError(
            f"jobs not finished in {out}: {'; '.join(problems)}. Run the programme again to train them.")
    long = pd.concat(frames, ignore_index=True)
    if list(long.columns) != LONG_COLUMNS or not pd.api.types.is_numeric_dtype(long["score"]):
        raise IncompleteProgrammeError(f"the jobs' tables in {out}/jobs have the columns "
                                       f"{list(long.columns)}, not {LONG_COLUMNS} with numeric scores.")
    for job, frame in zip(jobs, frames):
        rows = frame[(frame["seed"] == job.seed) & (frame["sweep"] == job.sweep)
                     & (frame["semantics"] == job.semantics)]
        keys = list(zip(rows["setting"], rows["encoder"], rows["factor"], rows["probe"]))
        want = job_keys(job, n_semantic)
        missing, extra = want - set(keys), len(frame) - len(want)
        if missing or len(keys) != len(frame) or len(set(keys)) != len(keys) or extra:
            raise IncompleteProgrammeError(
                f"jobs/{job.name}/scores.csv does not hold the plan's rows: {len(missing)} of "
                f"{len(want)} missing, {len(frame)} rows in all; delete jobs/{job.name} and run the "
                "programme again.")
    return long
