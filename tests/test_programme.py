"""The paper's programme as one command: batched paper encoders, resume, a local Dask cluster."""

import math

import pandas as pd
import pytest
import torch

from mmcl_helpers.book_support.costs import mlp_macs, step_flops
from mmcl_helpers.cli import main
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


def test_sweep_command_rejects_an_unknown_sweep(tmp_path, capsys):
    assert main(["sweep", "--out", str(tmp_path), "--sweeps", "selection,fig99"]) == 2
    assert "unknown sweep 'fig99'" in capsys.readouterr().err
