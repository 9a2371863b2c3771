import numpy as np
import pytest
import torch

from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.numerical.latents import LatentModel, perturb
from mmcl_helpers.numerical.mixing import InvertibleMLP
from mmcl_helpers.numerical.simulation import MultimodalSimulation


def test_shapes_and_factor_names(gen):
    model = LatentModel(n_semantic=4, n_image=3, n_text=2)
    lat = model.sample(100, gen)
    assert lat.s.shape == (100, 4) and lat.m_x.shape == (100, 3) and lat.m_t.shape == (100, 2)
    assert list(lat.factors()) == ["s1", "s2", "s3", "s4", "mx", "mt"]


def test_same_seed_same_numbers_other_seed_other_numbers():
    a = LatentModel(dependent=True, seed=3)
    b = LatentModel(dependent=True, seed=3)
    c = LatentModel(dependent=True, seed=4)
    np.testing.assert_array_equal(a.cov_s, b.cov_s)
    assert not np.allclose(a.cov_s, c.cov_s)
    x = a.sample(10, torch.Generator().manual_seed(1)).s
    y = b.sample(10, torch.Generator().manual_seed(1)).s
    assert torch.equal(x, y)


def test_independent_semantics_have_identity_covariance_dependent_do_not():
    assert np.array_equal(LatentModel(dependent=False).cov_s, np.eye(10))
    cov = LatentModel(dependent=True).cov_s
    off = cov - np.diag(np.diag(cov))
    assert np.abs(off).max() > 0.5
    assert np.all(np.linalg.eigvalsh(cov) > 0)


def test_sample_covariance_matches_model(gen):
    model = LatentModel(n_semantic=3, dependent=True, seed=1)
    s = model.sample(200_000, gen).s.double().numpy()
    np.testing.assert_allclose(np.cov(s.T), model.cov_s, rtol=0.05, atol=0.1)


def test_perturbation_touches_only_perturbed_factors_at_the_given_rate(gen):
    model = LatentModel(n_semantic=5)
    bias = CaptionBias({1, 2, 3}, {2, 3}, n_semantic=5, p_perturb=0.3)
    s = model.sample(20_000, gen).s
    s_tilde, changed = perturb(s, bias, model, gen)
    assert not changed[:, [0, 3, 4]].any()
    assert torch.equal(s_tilde[:, [0, 3, 4]], s[:, [0, 3, 4]])
    rate = changed[:, [1, 2]].float().mean().item()
    assert abs(rate - 0.3) < 0.02
    assert torch.equal(s_tilde[~changed], s[~changed])
    assert (s_tilde[changed] != s[changed]).all()


def test_no_perturbation_when_probability_is_zero(gen):
    model = LatentModel(n_semantic=3)
    bias = CaptionBias({1, 2}, {1}, n_semantic=3, p_perturb=0.0)
    s = model.sample(500, gen).s
    s_tilde, changed = perturb(s, bias, model, gen)
    assert not changed.any() and torch.equal(s_tilde, s)


@pytest.mark.parametrize("dim", [1, 4, 15])
def test_mixing_round_trips_through_its_inverse(dim, gen):
    g = InvertibleMLP(dim, seed=2)
    z = torch.randn(1000, dim, generator=gen) * 3
    x = g(z)
    assert x.shape == z.shape
    assert torch.allclose(g.inverse(x), z, rtol=1e-4, atol=1e-3)
    # Leaky-ReLU layers without bias are positively homogeneous but not odd: nonlinear.
    assert not torch.allclose(g(-z), -g(z), atol=1e-3)


def test_mixing_layers_are_well_conditioned_and_column_normalised():
    g = InvertibleMLP(10, seed=0)
    for w in g.weights:
        assert torch.allclose(w.norm(dim=0), torch.ones(10), atol=1e-5)
        assert torch.linalg.cond(w) < 50


def test_mixing_rejects_slope_that_breaks_invertibility():
    with pytest.raises(ValueError, match="invertible"):
        InvertibleMLP(3, negative_slope=0.0)


def test_simulation_captions_depend_only_on_selected_semantics(gen):
    model = LatentModel(n_semantic=4, n_image=2, n_text=2)
    sim = MultimodalSimulation(model, [CaptionBias({1, 2}, n_semantic=4)], seed=0)
    batch = sim.sample(64, gen)
    assert batch.x.shape == (64, 6) and batch.t.shape == (1, 64, 4)
    # Recover z_t from the caption: it must be (s1, s2, m_t) exactly.
    z_t = sim.g_t[0].inverse(batch.t[0])
    assert torch.allclose(z_t[:, :2], batch.latents.s[:, :2], atol=1e-4)
    assert torch.allclose(z_t[:, 2:], batch.latents.m_t, atol=1e-4)
    z_x = sim.g_x.inverse(batch.x)
    assert torch.allclose(z_x[:, :4], batch.latents.s, atol=1e-4)


def test_simulation_rejects_mismatched_settings():
    with pytest.raises(ValueError, match="semantics"):
        MultimodalSimulation(LatentModel(n_semantic=4), [CaptionBias({1}, n_semantic=5)])


def test_explained_r2_matches_a_regression_on_samples(gen):
    from sklearn.linear_model import LinearRegression

    model = LatentModel(dependent=True, seed=3)
    s = model.sample(100_000, gen).s.numpy()
    for target, given in ((9, [8, 10]), (1, [5, 6, 7, 8, 9, 10]), (4, [2])):
        cols = [g - 1 for g in given]
        fit = LinearRegression().fit(s[:, cols], s[:, target - 1])
        sampled = fit.score(s[:, cols], s[:, target - 1])
        assert abs(model.explained_r2(target, given) - sampled) < 0.01
    # A factor the representation holds is predicted perfectly, nothing predicts from nothing,
    # and independent semantics predict nothing about each other.
    assert model.explained_r2(3, [1, 3]) == 1.0
    assert model.explained_r2(3, []) == 0.0
    assert LatentModel(dependent=False).explained_r2(2, [1, 3, 4]) == 0.0


@pytest.mark.parametrize("target, given", [(0, [1]), (11, [1]), (2, [1, 12]), (2, [-1])])
def test_explained_r2_rejects_indices_outside_the_semantics(target, given):
    with pytest.raises(ValueError, match="1..10"):
        LatentModel().explained_r2(target, given)
