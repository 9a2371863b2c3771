"""The paper's programme as one command: batched paper encoders, resume, a local Dask cluster."""

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from mmcl_helpers.book_support.costs import mlp_macs, step_flops
from mmcl_helpers.cli import main
from mmcl_helpers.core import storage
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.precision import precision_context
from mmcl_helpers.core.profiles import get_profile
from mmcl_helpers.numerical import programme as pg
from mmcl_helpers.numerical.encoders import EnsembleMLP, mlp, paper_hidden_widths
from mmcl_helpers.numerical.experiments import evaluate_run
from mmcl_helpers.numerical.latents import LatentModel
from mmcl_helpers.numerical.simulation import MultimodalSimulation, member_seed
from mmcl_helpers.numerical.training import build_encoders, train_mmcl

# Tiny sizes: 2 semantics and 1-d modality factors give paper encoders 30..150 wide.
TINY = get_profile("paper").with_overrides(steps=5, batch_size=32, probe_train=100, probe_test=100,
                                           probe_steps=10)
SIZES = {"n_semantic": 2, "n_modality": 1}
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
JOBS = pg.plan(["selection"], ["independent", "dependent"], [0])


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread, as in every Dask worker below (and far faster on a loaded machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def reference(one_thread, tmp_path_factory):
    """An uninterrupted single-process run of the tiny programme."""
    out = tmp_path_factory.mktemp("reference")
    return pg.run_programme(out, JOBS, TINY, **SIZES, report=None), out


def test_flop_arithmetic_matches_the_paper_step():
    # 15 -> 150 -> 750 x4 -> 150 -> 10: one sample's multiply-accumulates, by hand.
    macs = 15 * 150 + 150 * 750 + 3 * 750 * 750 + 750 * 150 + 150 * 10
    assert mlp_macs(15, paper_hidden_widths(15), 10) == macs == 1_916_250
    flops = step_flops(15, [15], [10], 6144)
    assert flops["encoders"] == 6 * 6144 * 2 * macs and flops["loss"] == 6 * 6144**2 * 10
    assert 143e9 < flops["total"] < 144e9
    padded = step_flops(15, [6, 15], [1, 10], 64, padded=True)["encoders"]
    assert padded == 2 * step_flops(15, [15], [10], 64)["encoders"]


def test_ensemble_member_starts_as_its_standalone_network():
    x_seed, sizes = 3, [4, 7]
    f_x, f_t = build_encoders(5, sizes, [2, 3], get_profile("paper"), [x_seed, x_seed + 1])
    for i, (d, k) in enumerate(zip(sizes, [2, 3])):
        g = torch.Generator().manual_seed(x_seed + i)
        alone_x = mlp(5, k, paper_hidden_widths(5), generator=g)
        alone_t = mlp(d, k, paper_hidden_widths(d), generator=g)  # f_t draws after f_x
        for ens, alone in ((f_x, alone_x), (f_t, alone_t)):
            for a, b in zip(ens.member(i).state_dict().values(), alone.state_dict().values()):
                assert torch.equal(a, b)
    assert f_t.hidden == paper_hidden_widths(7) and f_t.member_hidden[0] == paper_hidden_widths(4)


def test_padded_hidden_units_never_leak(gen):
    net = EnsembleMLP([2, 3], [2, 2], [[4, 4], [8, 6]], batch_norm=False)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)  # garbage in every padded weight: the masks must hide it
    x = torch.randn(2, 5, 3, generator=gen)
    out = net(x)
    for i, d in enumerate([2, 3]):
        assert torch.allclose(net.member(i)(x[i, :, :d]), out[i], atol=1e-5)


def test_paper_ensemble_trains_as_each_setting_alone():
    prof = get_profile("paper").with_overrides(steps=6, batch_size=32, lr=1e-3)
    model = LatentModel(3, 1, 1, seed=0)
    biases = [CaptionBias([1], (), 3), CaptionBias([1, 2, 3], [1], 3), CaptionBias([1, 2], (), 3)]
    ens = train_mmcl(MultimodalSimulation(model, biases, seed=0), prof, 0, device="cpu", progress=False)
    x = torch.randn(40, 4, generator=torch.Generator().manual_seed(1))
    frozen = prof.with_overrides(steps=1, lr=1e-12)  # the initial networks, as trained "alone"
    for k, b in enumerate(biases):
        alone = train_mmcl(MultimodalSimulation(model, [b], seed=0), prof, 0, device="cpu",
                           progress=False)
        start = train_mmcl(MultimodalSimulation(model, [b], seed=0), frozen, 0, device="cpu",
                           progress=False)
        assert abs(ens.history[:, k] - alone.history[:, 0]).max() < 1e-5
        assert ens.history[0, k] != ens.history[-1, k]  # it did train
        with torch.no_grad():
            got, want = ens.f_x[0].member(k).eval()(x), alone.f_x[0].member(0).eval()(x)
            moved = (want - start.f_x[0].member(0).eval()(x)).abs().max()
        # Not bit for bit: batched and single matmuls round differently, and Adam divides each
        # gradient by its own running size, so a weight whose gradient is near 0 can take an
        # lr-sized step either way (seen: 5e-4 of a 2e-2 move on one CPU, 0 on another).
        assert (got - want).abs().max() <= 0.05 * moved
    assert member_seed(0, biases[0], "init") != member_seed(1, biases[0], "init")


def test_bf16_autocast_keeps_probe_scores_within_tolerance():
    """bf16 encoders (loss in fp32) vs fp32 at tiny sizes, 150 steps: linear-probe R^2 within 0.12.

    The runs are short of convergence, where any rounding changes the training path; measured
    here the largest difference is about 0.10 (why the paper profile stays in fp32). The final
    losses are not compared with each other: this regime is chaotic, and two fp32 runs whose
    only difference is the order of one reduction (the gradient clip) already end about 13%
    apart. Instead both must have learned: below the chance level log(batch) by a clear margin.
    """
    prof = get_profile("paper").with_overrides(steps=150, batch_size=64, lr=3e-3, probe_train=1000,
                                               probe_test=1000)
    model = LatentModel(3, 1, 1, seed=0)
    biases = [CaptionBias([1, 2], (), 3), CaptionBias([1, 2, 3], [3], 3)]
    scores, losses = {}, {}
    for precision in ("fp32", "bf16"):
        sim = MultimodalSimulation(model, biases, seed=0)
        p = prof.with_overrides(precision=precision)
        run = train_mmcl(sim, p, 0, device="cpu", progress=False)
        scores[precision] = evaluate_run(sim, run, p, 0, probes=("linear",))["score"].to_numpy()
        losses[precision] = run.history[-10:].mean(0)
    assert scores["fp32"].max() > 0.5  # something was learned, so the comparison means something
    assert abs(scores["fp32"] - scores["bf16"]).max() < 0.12
    chance = math.log(64)  # the InfoNCE loss of an encoder that learned nothing
    assert (losses["fp32"] < chance - 0.5).all() and (losses["bf16"] < chance - 0.5).all()
    assert not (scores["fp32"] == scores["bf16"]).all()  # bf16 did run in lower precision
    with pytest.raises(ValueError, match="precision must be one of"):
        with precision_context("fp16", "cpu"):
            pass


def test_resume_after_a_crash_gives_the_uninterrupted_table(reference, tmp_path, monkeypatch):
    ref, _ = reference
    real = pg.run_job
    calls = []

    def crash_on_second(job, *args, **kwargs):
        calls.append(job.name)
        if len(calls) == 2:
            raise RuntimeError("preempted")
        return real(job, *args, **kwargs)

    monkeypatch.setattr(pg, "run_job", crash_on_second)
    with pytest.raises(RuntimeError, match="preempted"):
        pg.run_programme(tmp_path, JOBS, TINY, **SIZES, report=None)
    first = tmp_path / "jobs" / JOBS[0].name / "scores.csv"
    assert first.exists() and not (tmp_path / "jobs" / JOBS[1].name / "scores.csv").exists()
    assert not (tmp_path / "scores.csv").exists()
    stamp = first.stat().st_mtime_ns
    monkeypatch.setattr(pg, "run_job", real)
    lines = []
    resumed = pg.run_programme(tmp_path, JOBS, TINY, **SIZES, report=lines.append)
    assert first.stat().st_mtime_ns == stamp  # the finished job was skipped, not retrained
    assert "1 already done" in lines[0] and lines[-1].startswith("[2/2]") and "ETA" in lines[-1]
    pd.testing.assert_frame_equal(resumed, ref)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "scores.csv"), ref)
    assert list(ref.columns) == pg.LONG_COLUMNS and set(ref["metric"]) == {"r2"}
    assert (tmp_path / "compare_fig3.csv").exists() and "Tables 4 and 5: not computed" in (
        tmp_path / "comparisons.md").read_text()
    with pytest.raises(pg.ProgrammeMismatchError, match="profile.steps"):
        pg.run_programme(tmp_path, JOBS, TINY.with_overrides(steps=6), **SIZES, report=None)


def test_saved_encoders_load_safely_and_match_the_config(reference):
    _, out = reference
    f_x, f_t, config = pg.load_encoders(out / "jobs" / JOBS[0].name)
    assert config["job"]["sweep"] == "selection" and f_t[0].in_dims == [2, 3]
    z = f_t[0](torch.randn(2, 8, 3))
    assert torch.all(z[0, :, 1:] == 0) and z.shape == (2, 8, 2)  # {1} encodes into one dimension


def test_local_dask_cluster_gives_the_single_process_table(reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    ref, _ = reference
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        table = pg.run_programme(tmp_path, JOBS, TINY, **SIZES, executor=pg.dask_executor(client),
                                 report=None)
    pd.testing.assert_frame_equal(table, ref)


# --- The sweep command: checked before any work, nothing overwritten, nothing half-read. ---------

# The reference programme's sizes as flags (the same programme.json as `reference`).
TINY_FLAGS = ["--profile", "paper", "--steps", "5", "--batch-size", "32", "--probe-train", "100",
              "--probe-test", "100", "--probe-steps", "10", "--n-semantic", "2", "--n-modality", "1",
              "--sweeps", "selection", "--semantics", "independent,dependent", "--seeds", "0"]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# (flags after TINY_FLAGS, phrase of the one error line); each leaves nothing behind.
SWEEP_ERRORS = {
    "--seeds a": (["--seeds", "a"], "--seeds a: cannot read 'a' as a seed: use comma-separated non-negative"),
    "--seeds 1_0": (["--seeds", "1_0"], "cannot read '1_0' as a seed"),
    "--seeds +3": (["--seeds", "+3"], "cannot read '+3' as a seed"),
    "--seeds fullwidth 3": (["--seeds", "\uff13"], "cannot read '\uff13' as a seed"),
    "--seeds empty": (["--seeds", ""], "--seeds is empty"),
    "--seeds repeated": (["--seeds", "0,0"], "list each seed once"),
    "--n-semantic 0": (["--n-semantic", "0"], "--n-semantic must be an int in the range [1, 4096]; got 0."),
    "--n-semantic 10**6": (["--n-semantic", "1000000"], "--n-semantic must be an int in the range [1, 4096]"),
    "--n-modality 0": (["--n-modality", "0"], "--n-modality must be an int in the range [1, 4096]"),
    "ablation with 3 semantics": (["--sweeps", "ablation", "--n-semantic", "3"],
                                  "--n-semantic 3: the ablation sweep (in --sweeps) needs --n-semantic 8"),
    "unknown sweep": (["--sweeps", "selection,fig99"], "--sweeps holds unknown name(s) ['fig99']; allowed"),
    "no sweeps": (["--sweeps", ","], "--sweeps is empty"),
    "unknown semantics": (["--semantics", "weird"], "--semantics holds unknown name(s) ['weird']"),
    "--steps 0": (["--steps", "0"], "--steps must be an int in the range [1, inf); got 0."),
    "--probe-steps 0": (["--probe-steps", "0"], "--probe-steps must be an int in the range [1, inf)"),
    "--probe-train abc": (["--probe-train", "abc"], "argument --probe-train: invalid int value: 'abc'"),
    "--precision fp16": (["--precision", "fp16"], "--precision must be a str among"),
    "--profile huge": (["--profile", "huge"], "--profile huge: Unknown compute profile 'huge'"),
    "--devices tpu": (["--devices", "tpu"], "--devices tpu: 'tpu' is not a device"),
    "--devices empty": (["--devices", ","], "--devices is empty"),
    "--devices and --scheduler": (["--devices", "cpu", "--scheduler", "tcp://h:1"], "not both"),
    "--scheduler without a port": (["--scheduler", "nonsense"],
                                   "--scheduler nonsense: the scheduler address 'nonsense' has no port"),
    "--scheduler tcp://host": (["--scheduler", "tcp://host"], "has no port number; give it as tcp://HOST:PORT"),
    "--scheduler port 99999": (["--scheduler", "tcp://h:99999"], "not a number in 1..65535"),
    "--scheduler port abc": (["--scheduler", "tcp://h:abc"], "has the port 'abc'"),
    "--scheduler no host": (["--scheduler", "tcp://:8786"], "has no host"),
    "--scheduler unknown protocol": (["--scheduler", "http://h:8786"], "unknown protocol 'http'"),
}


@pytest.mark.parametrize("case", list(SWEEP_ERRORS))
def test_sweep_flag_errors_are_one_line_and_leave_nothing(case, tmp_path, capsys):
    flags, phrase = SWEEP_ERRORS[case]
    out = tmp_path / "run"
    assert main(["sweep", "--out", str(out), *TINY_FLAGS, *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and phrase in err
    assert list(tmp_path.iterdir()) == []  # no programme.json, no folder


def test_unreachable_scheduler_fails_fast_with_what_to_check(tmp_path, capsys, monkeypatch):
    pytest.importorskip("distributed")
    monkeypatch.setattr(pg, "SCHEDULER_TIMEOUT", 1.0)
    address = f"tcp://127.0.0.1:{_free_port()}"
    out = tmp_path / "run"
    assert main(["sweep", "--out", str(out), *TINY_FLAGS, "--scheduler", address]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--scheduler {address}: no Dask scheduler answered at {address} " \
        "within 1 s" in err and "Check that `dask scheduler` is running there" in err
    assert not out.exists()


@NO_CUDA
def test_sweep_devices_cuda_without_cuda(tmp_path, capsys):
    assert main(["sweep", "--out", str(tmp_path / "run"), *TINY_FLAGS, "--devices", "cuda:0,cuda:1"]) == 2
    assert "--devices cuda:0,cuda:1: cuda:0: PyTorch sees no CUDA GPU" in capsys.readouterr().err


def _copy(reference, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(reference[1], out)
    return out


# (set-up of the --out folder, phrase of the one error line); the folder is left as it was.
OUT_ERRORS = {
    "the user's own files": (lambda out, ref: _user_files(out), "holds files this command did not write "
                             "(comparisons.md, scores.csv); choose a new folder, or pass --force"),
    "an empty folder it did not create": (lambda out, ref: out.mkdir(), "already exists and this command "
                                          "did not create it"),
    "a file": (lambda out, ref: out.write_text("mine"), "is a file; give a folder name"),
    "no parent folder": (lambda out, ref: None, "does not exist; create it first"),
    "other sizes": (lambda out, ref: shutil.copytree(ref, out), "holds a programme of other sizes "
                    "({'profile.steps': (5, 6)}"),
    "garbage programme.json": (lambda out, ref: (shutil.copytree(ref, out),
                                                 (out / "programme.json").write_text("garbage")),
                               "programme.json is unreadable or was not written by this command"),
    "its combined table edited": (lambda out, ref: (shutil.copytree(ref, out),
                                                    open(out / "scores.csv", "a").write("edited\n")),
                                  "holds files this command did not write (scores.csv)"),
    "a foreign file in a job folder": (
        lambda out, ref: (shutil.copytree(ref, out),
                          (out / "jobs" / JOBS[0].name / "notes.txt").write_text("")),
        f"(jobs/{JOBS[0].name}/notes.txt)"),
}


def _user_files(out):
    out.mkdir()
    (out / "scores.csv").write_text("my,own\n1,2\n")
    (out / "comparisons.md").write_text("# my notes\n")


def _snapshot(folder):
    if folder.is_file():
        return folder.read_bytes()
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()} \
        if folder.exists() else None


@pytest.mark.parametrize("case", list(OUT_ERRORS))
def test_sweep_out_is_checked_before_any_work(case, reference, tmp_path, capsys):
    setup, phrase = OUT_ERRORS[case]
    out = tmp_path / ("missing/run" if case == "no parent folder" else "run")
    setup(out, reference[1])
    before = _snapshot(out)
    flags = [*TINY_FLAGS, "--steps", "6"] if case == "other sizes" else TINY_FLAGS
    assert main(["sweep", "--out", str(out), *flags]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"error: --out {out}") and phrase in err
    assert _snapshot(out) == before  # nothing written, nothing removed


def test_sweep_force_writes_into_a_foreign_folder_and_keeps_other_files(reference, tmp_path, capsys):
    out = _copy(reference, tmp_path)
    (out / "notes.txt").write_text("keep me")
    (out / "scores.csv").write_text("my,own\n")
    assert main(["sweep", "--out", str(out), *TINY_FLAGS]) == 2
    assert main(["sweep", "--out", str(out), *TINY_FLAGS, "--force"]) == 0
    assert (out / "notes.txt").read_text() == "keep me"  # not one of the programme's names: kept
    pd.testing.assert_frame_equal(pd.read_csv(out / "scores.csv"), reference[0])
    assert "0 to run" in capsys.readouterr().err  # the finished jobs were kept


def _rewrite(path, transform):
    path.write_bytes(transform(path.read_bytes()))


def _half_lines(data: bytes) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join(lines[: len(lines) // 2])


def _record(out, job=JOBS[0]):
    return out / "jobs" / job.name / "record.json"


# Damage to the first job's files: (damage, the file the warning names, phrase)
DAMAGE = {
    "scores cut to half its lines": (lambda j: _rewrite(j / "scores.csv", _half_lines), "scores.csv",
                                     "does not match the checksum in its record"),
    "scores cut mid-number": (lambda j: _rewrite(j / "scores.csv", lambda b: b[:-4]), "scores.csv",
                              "does not match the checksum"),
    "scores replaced by random bytes": (
        lambda j: (j / "scores.csv").write_bytes(np.random.default_rng(0).bytes(500)), "scores.csv",
        "does not match the checksum"),
    "scores replaced by another CSV": (lambda j: (j / "scores.csv").write_text("a,b\n1,2\n"), "scores.csv",
                                       "does not match the checksum"),
    "scores emptied": (lambda j: (j / "scores.csv").write_bytes(b""), "scores.csv", "does not match"),
    "scores deleted": (lambda j: (j / "scores.csv").unlink(), "scores.csv", "is missing"),
    "encoders changed": (lambda j: _rewrite(j / "encoders.pt", lambda b: b[:-8] + bytes(8)), "encoders.pt",
                         "does not match the checksum"),
    "record garbage": (lambda j: (j / "record.json").write_text("{"), "record.json", "is unreadable"),
    "record deleted": (lambda j: (j / "record.json").unlink(), "has no record.json", "did not finish"),
    "record of another programme": (
        lambda j: (j / "record.json").write_text(json.dumps(
            {**json.loads((j / "record.json").read_text()), "programme": "0" * 64})),
        "record.json", "was written for another programme"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_resume_trains_a_damaged_job_again_with_a_warning(case, reference, tmp_path):
    ref, _ = reference
    out = _copy(reference, tmp_path)
    damage, file, phrase = DAMAGE[case]
    damage(out / "jobs" / JOBS[0].name)
    other = (out / "jobs" / JOBS[1].name / "scores.csv").stat().st_mtime_ns
    with pytest.warns(pg.JobRecordWarning, match=f"training {JOBS[0].name} again") as caught:
        table = pg.run_programme(out, JOBS, TINY, **SIZES, report=None)
    message = str(caught[0].message)
    assert f"jobs/{JOBS[0].name}" in message and file in message and phrase in message
    pd.testing.assert_frame_equal(table, ref)  # the job was trained again, not combined half-read
    assert (out / "jobs" / JOBS[1].name / "scores.csv").stat().st_mtime_ns == other  # the sound one kept
    assert pg.check_job(out, JOBS[0], json.loads((out / "programme.json").read_text())) == (True, None)


def test_combined_table_is_checked_against_the_plan(reference, tmp_path):
    out = _copy(reference, tmp_path)
    (out / "comparisons.md").unlink()
    job = out / "jobs" / JOBS[0].name
    table = pd.read_csv(job / "scores.csv")
    half = len(table) // 2
    forged = pd.concat([table.iloc[:half], table.iloc[:half]], ignore_index=True)  # as many rows
    forged.to_csv(job / "scores.csv", index=False)
    record = json.loads(_record(out).read_text())
    record["files"]["scores.csv"]["sha256"] = storage.file_sha256(job / "scores.csv")
    _record(out).write_text(json.dumps(record))  # a record that vouches for it
    with pytest.raises(pg.IncompleteProgrammeError, match=f"jobs/{JOBS[0].name}/scores.csv does not hold "
                       "the plan's rows"):
        pg.combine(out, JOBS, TINY.name, SIZES["n_semantic"])
    assert not (out / "comparisons.md").exists()
    with pytest.raises(pg.IncompleteProgrammeError, match=f"{JOBS[1].name} \\(not run\\)"):
        shutil.rmtree(out / "jobs" / JOBS[1].name)
        pg.combine(out, JOBS, TINY.name, SIZES["n_semantic"])
    assert not (out / "comparisons.md").exists()


def test_library_refuses_a_foreign_folder_and_a_bad_plan_before_writing(tmp_path):
    _user_files(tmp_path / "mine")
    with pytest.raises(pg.ProgrammeFolderError, match="did not write"):
        pg.run_programme(tmp_path / "mine", JOBS, TINY, **SIZES, report=None)
    with pytest.raises(ValueError, match="ablation sweep needs n_semantic >= 8"):
        pg.run_programme(tmp_path / "new", pg.plan(["ablation"], ["independent"], [0]), TINY, **SIZES,
                         report=None)
    assert not (tmp_path / "new").exists()
    assert (tmp_path / "mine" / "scores.csv").read_text() == "my,own\n1,2\n"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs a folder nobody can write in (/proc)")
def test_sweep_out_in_an_unwritable_place(capsys):
    assert main(["sweep", "--out", "/proc/mmcl-sweep", *TINY_FLAGS]) == 2
    err = capsys.readouterr().err
    assert err == "error: --out /proc/mmcl-sweep: cannot create a folder in /proc (not writable).\n"
    assert not Path("/proc/mmcl-sweep").exists()
