import numpy as np
import pytest
import torch

from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.losses import info_nce
from mmcl_helpers.core.profiles import get_profile
from mmcl_helpers.numerical.experiments import run_numerical
from mmcl_helpers.numerical.latents import LatentModel
from mmcl_helpers.numerical.simulation import MultimodalSimulation
from mmcl_helpers.numerical.training import (
    NonFiniteLossError,
    adam_loop,
    build_encoders,
    lr_lambda,
    train_mmcl,
)

TINY = get_profile("smoke").with_overrides(steps=20, batch_size=64, probe_train=300,
                                           probe_test=300, probe_steps=20)


def _sim(settings=None):
    settings = settings or [CaptionBias({1, 2}, n_semantic=3)]
    return MultimodalSimulation(LatentModel(n_semantic=3, n_image=2, n_text=2), settings)


def test_history_shape_and_loss_decreases():
    prof = TINY.with_overrides(steps=200)
    res = train_mmcl(_sim(), prof, seed=0, device="cpu", progress=False)
    assert res.history.shape == (200, 1)
    assert res.history[-20:].mean() < res.history[:20].mean()
    z_x, z_t = res.encode(torch.zeros(5, 5), torch.zeros(1, 5, 4))
    assert z_x.shape == (1, 5, 3) and z_t.shape == (1, 5, 3)


def test_probes_read_unit_vectors_of_cosine_runs_and_raw_outputs_of_euclidean_ones():
    # Cosine similarity never sees an output's length, so the probes read the direction; the
    # paper's Euclidean loss sees the whole output, so its runs are probed as they are.
    settings = [CaptionBias({1}, n_semantic=3), CaptionBias({1, 2}, n_semantic=3)]
    x, t = torch.randn(7, 5), torch.randn(2, 7, 4)
    cos = train_mmcl(_sim(settings), TINY, seed=0, device="cpu", progress=False)
    raw_x, raw_t = cos.encode(x, t)
    unit_x, unit_t = cos.represent(x, t)
    for raw, unit in ((raw_x, unit_x), (raw_t, unit_t)):
        assert not torch.allclose(raw.norm(dim=-1), torch.ones(2, 7))
        torch.testing.assert_close(unit.norm(dim=-1), torch.ones(2, 7))
        torch.testing.assert_close(unit, raw / raw.norm(dim=-1, keepdim=True))
    assert (unit_x[0, :, 2] == 0).all()  # the first setting's padding stays zero
    euclid = train_mmcl(_sim(settings), TINY.with_overrides(similarity="euclidean", tau=1.0), seed=0,
                        device="cpu", progress=False)
    for a, b in zip(euclid.encode(x, t), euclid.represent(x, t)):
        torch.testing.assert_close(a, b)


def test_same_seed_gives_the_same_numbers_and_another_seed_does_not():
    settings = [CaptionBias({1}, n_semantic=3)]
    a = run_numerical(settings, n_image=2, n_text=2, profile=TINY, seeds=1, progress=False,
                      device="cpu")
    b = run_numerical(settings, n_image=2, n_text=2, profile=TINY, seeds=1, progress=False,
                      device="cpu")
    c = run_numerical(settings, n_image=2, n_text=2, profile=TINY, seeds=2, progress=False,
                      device="cpu")
    np.testing.assert_array_equal(a.scores["score"], b.scores["score"])
    np.testing.assert_array_equal(a.trained[0].history, b.trained[0].history)
    assert not np.array_equal(a.trained[0].history, c.trained[0].history)


def test_settings_trained_together_match_settings_trained_alone():
    # The ensemble sums independent losses and clips per member, so a member's updates do not
    # depend on its neighbours: a member trained beside another, from the same start and on the
    # same batches, ends with the same weights as when trained alone.
    both = [CaptionBias({1}, n_semantic=3), CaptionBias({1, 2}, n_semantic=3)]
    sim = _sim(both)
    torch.manual_seed(0)
    fx2, ft2 = build_encoders(sim.x_dim, sim.t_dims, [2, 3], TINY)
    fx1, ft1 = build_encoders(sim.x_dim, sim.t_dims[1:], [3], TINY)
    pair, alone = (fx2, ft2), (fx1, ft1)
    with torch.no_grad():
        for one, two in zip(alone, pair):
            for a, b in zip(list(one.parameters()) + list(one.buffers()),
                            list(two.parameters()) + list(two.buffers())):
                a.copy_(b[1:2] if b.dim() and b.shape[0] == 2 else b)
    gen = torch.Generator().manual_seed(0)
    batches = [sim.sample(64, gen) for _ in range(15)]

    def run(fx, ft, members):
        def step(k):
            b = batches[k]
            return info_nce(fx(b.x), ft(b.t[members][:, :, : ft.in_mask.shape[-1]]), "cosine", 0.1)

        params = list(fx.train().parameters()) + list(ft.train().parameters())
        # A tight clip, so that clipping acts and a shared clip would couple the members.
        return adam_loop(params, step, steps=15, lr=3e-3, warmup=0.1, grad_clip=0.05,
                         clip="per_member", progress=False)

    h2 = run(fx2, ft2, [0, 1])
    h1 = run(fx1, ft1, [1])
    assert h2.shape == (15, 2) and h1.shape == (15, 1)
    assert not np.allclose(h2[:, 0], h2[:, 1])  # the two members really differ
    np.testing.assert_allclose(h1[:, 0], h2[:, 1], rtol=1e-5, atol=1e-6)
    for one, two in zip(alone, pair):
        for a, b in zip(one.parameters(), two.parameters()):
            np.testing.assert_allclose(a.detach().numpy()[0], b.detach().numpy()[1], rtol=1e-4,
                                       atol=1e-6)
    res = train_mmcl(sim, TINY, seed=0, device="cpu", progress=False)
    assert res.history.shape == (20, 2) and res.encoding_sizes() == [2, 3]


def test_diverging_loss_raises_a_clear_error():
    sim = _sim()
    sim.g_x.weights[0, 0, 0] = float("inf")  # a broken image generator poisons every batch
    with pytest.raises(NonFiniteLossError, match=r"step 0 for setting\(s\) \['sel \[2\], pert ∅'\]"):
        train_mmcl(sim, TINY, seed=0, device="cpu", progress=False)


def test_bad_encoding_sizes():
    with pytest.raises(ValueError, match="encoding_sizes"):
        train_mmcl(_sim(), TINY, encoding_sizes=[0], device="cpu", progress=False)


def test_learning_rate_schedule():
    assert lr_lambda(0, 100, 0.0) == 1.0
    assert lr_lambda(0, 100, 0.1) == pytest.approx(0.1)
    assert lr_lambda(9, 100, 0.1) == pytest.approx(1.0)
    assert lr_lambda(99, 100, 0.1) < 0.01


def test_scores_table_is_tidy():
    run = run_numerical([CaptionBias({1, 2}, {2}, n_semantic=3)], n_image=2, n_text=2,
                        profile=TINY, progress=False, device="cpu")
    df = run.scores
    assert set(df["encoder"]) == {"x", "t"} and set(df["probe"]) == {"linear", "mlp"}
    assert list(dict.fromkeys(df["factor"])) == ["s1", "s2", "s3", "mx", "mt"]
    assert df["score"].between(0, 1).all() and set(df["metric"]) == {"r2"}
    roles = df.drop_duplicates("factor").set_index("factor")["role"].to_dict()
    assert roles == {"s1": "unbiased", "s2": "perturbed", "s3": "omitted",
                     "mx": "image-specific", "mt": "text-specific"}
    assert run.table().shape == (5, 1)


def test_compile_falls_back_to_eager_with_a_warning(monkeypatch):
    from mmcl_helpers.numerical import training

    def broken_compile(fn, **kwargs):
        def fail(*args):
            raise RuntimeError("no C++ compiler found")

        return fail

    monkeypatch.setattr(training.torch, "compile", broken_compile)
    with pytest.warns(RuntimeWarning, match="no C\\+\\+ compiler found.*eager mode"):
        fn = training.compiled_or_eager(lambda a: a * 2)
        assert fn(torch.ones(2)).tolist() == [2.0, 2.0]
    assert fn(torch.ones(1)).tolist() == [2.0]  # later calls go straight to eager, silently


def test_compiled_training_follows_eager_training():
    # torch.compile fuses operations, so floating-point sums may round differently; the model
    # and its loss curve must otherwise be the same.
    prof = TINY.with_overrides(steps=30)
    eager = train_mmcl(_sim(), prof, seed=0, device="cpu", progress=False)
    compiled = train_mmcl(_sim(), prof.with_overrides(compile=True), seed=0, device="cpu",
                          progress=False)
    np.testing.assert_allclose(compiled.history, eager.history, rtol=1e-3, atol=1e-3)
