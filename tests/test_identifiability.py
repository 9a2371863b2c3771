"""The numerical companions of the identifiability proof (mmcl_helpers.numerical.identifiability)."""

import math

import numpy as np
import pytest
import torch
from scipy.linalg import cholesky, solve_triangular
from scipy.stats import kstest, norm, wishart

from mmcl_helpers import CaptionBias
from mmcl_helpers.numerical.identifiability import (
    CONTAMINANTS,
    OracleEncoders,
    contamination_sweep,
    cube_entropy,
    darmois_gaussian,
    estimate_eq2,
    fit_decoder,
    fold,
    gaussian_entropy,
    kernel_entropy,
    knn_entropy,
    mixed_code_alignment,
)
from mmcl_helpers.numerical.latents import LatentModel, gaussian_conditional
from mmcl_helpers.numerical.simulation import MultimodalSimulation

# Tolerances in nats for N of a few thousand samples (the estimators' bias plus a few standard
# errors at these sizes).
TOL_ENTROPY = 0.1


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


def test_knn_entropy_matches_closed_forms(rng):
    cov = np.array([[2.0, 0.6], [0.6, 0.5]])
    s = rng.multivariate_normal(np.zeros(2), cov, size=4000)
    assert abs(knn_entropy(s) - gaussian_entropy(cov)) < TOL_ENTROPY
    assert abs(knn_entropy(rng.uniform(size=(4000, 2))) - 0.0) < TOL_ENTROPY
    # A box of side lengths 2 and 0.5: entropy log(2 * 0.5) = 0; a box of side 3: log 3.
    assert abs(knn_entropy(3.0 * rng.uniform(size=4000)) - math.log(3.0)) < TOL_ENTROPY


def test_cube_entropy_removes_the_boundary_bias(rng):
    u = rng.uniform(size=(3000, 3))
    assert abs(cube_entropy(u)) < TOL_ENTROPY
    assert abs(cube_entropy(u)) < abs(knn_entropy(u))
    folded = np.c_[fold(u[:, :1]), u[:, 1:]]
    assert abs(cube_entropy(folded) - (math.log(2.0) - 1.0)) < TOL_ENTROPY
    with pytest.raises(ValueError, match="outside"):
        cube_entropy(u + 1.0)


def test_knn_entropy_rejects_repeated_samples():
    with pytest.raises(ValueError, match="distance 0"):
        knn_entropy(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="k must"):
        knn_entropy(np.zeros((3, 2)), k=3)


def test_darmois_is_the_cholesky_whitening_and_is_uniform(rng):
    cov = wishart(df=4, scale=np.eye(4)).rvs(random_state=1)
    s = rng.multivariate_normal(np.zeros(4), cov, size=4000)
    d = darmois_gaussian(s, cov)
    chol = cholesky(cov, lower=True)
    assert np.allclose(d, norm.cdf(solve_triangular(chol, s.T, lower=True).T), atol=1e-10)
    assert d.min() > 0 and d.max() < 1
    for i in range(4):
        assert kstest(d[:, i], "uniform").pvalue > 1e-3
    assert np.abs(np.corrcoef(d.T) - np.eye(4)).max() < 0.06
    assert abs(cube_entropy(d)) < TOL_ENTROPY
    beta, var = gaussian_conditional(cov, 2)
    assert beta.shape == (2,) and 0 < var < cov[2, 2]


_ORACLES: dict = {}


def _oracle(dependent: bool) -> tuple[OracleEncoders, object]:
    # Built once per kind: drawing the mixing functions is the slow part.
    if dependent not in _ORACLES:
        model = LatentModel(4, 2, 2, dependent=dependent, seed=0)
        bias = CaptionBias(selected={1, 2, 3}, perturbed={3}, n_semantic=4)
        sim = MultimodalSimulation(model, [bias], seed=0)
        _ORACLES[dependent] = OracleEncoders(sim), sim.sample(3000, torch.Generator().manual_seed(5))
    return _ORACLES[dependent]


@pytest.mark.parametrize("dependent", [False, True])
def test_oracle_attains_zero_and_every_contamination_costs(dependent):
    oracle, batch = _oracle(dependent)
    assert oracle.n == 2
    z_x, z_t = oracle.codes(batch)
    best = estimate_eq2(z_x, z_t)
    assert best.alignment < 1e-8
    assert abs(best.loss) < TOL_ENTROPY
    for source in CONTAMINANTS:
        same = estimate_eq2(*oracle.contaminated_codes(batch, source, 0.0))
        assert same.loss == pytest.approx(best.loss, abs=1e-9)
        for lam in (0.25, 1.0):
            worse = estimate_eq2(*oracle.contaminated_codes(batch, source, lam))
            assert worse.alignment > 0.003, (source, lam)
            assert worse.loss > best.loss, (source, lam)


def test_contamination_sweep_is_a_tidy_table_of_gaps():
    oracle, batch = _oracle(False)
    df = contamination_sweep(oracle, batch, [0.0, 1.0])
    assert len(df) == 2 * len(CONTAMINANTS)
    assert set(df["step"]) == {"Step 2", "Step 3", "Step 4"}
    assert np.allclose(df.query("lam == 0")["gap"], 0.0, atol=1e-9)
    assert (df.query("lam == 1")["gap"] > 0).all()


def test_alignment_of_a_mixed_coordinate_matches_its_closed_form():
    oracle, batch = _oracle(False)
    z_x, z_t = oracle.contaminated_codes(batch, "mx", 0.5)
    measured = np.mean((z_x[:, 0] - z_t[:, 0]) ** 2)
    assert measured == pytest.approx(mixed_code_alignment(0.5), abs=0.01)
    assert mixed_code_alignment(0.0) == pytest.approx(0.0, abs=1e-12)
    assert mixed_code_alignment(1.0) == pytest.approx(1.0 / 6.0)


def test_contaminated_codes_reject_bad_arguments():
    oracle, batch = _oracle(False)
    with pytest.raises(ValueError, match="source"):
        oracle.contaminated_codes(batch, "noise", 0.5)
    with pytest.raises(ValueError, match="lam"):
        oracle.contaminated_codes(batch, "mx", 1.5)
    with pytest.raises(ValueError, match="not omitted"):
        oracle.contaminated_codes(batch, "omitted", 0.5, factor=1)


def test_kernel_entropy_of_infonce_tends_to_the_entropy(rng):
    u = rng.uniform(size=(1500, 1))
    assert abs(kernel_entropy(u, u, tau=1e-3)) < 0.05
    assert abs(kernel_entropy(u, u, tau=1e-3)) < abs(kernel_entropy(u, u, tau=1e-1))


def test_fit_decoder_recovers_an_invertible_map():
    gen = torch.Generator().manual_seed(0)
    y = torch.randn(1000, 2, generator=gen)
    z = torch.stack([y[:, 0] + 0.5 * y[:, 1], y[:, 1] + 0.2 * torch.tanh(y[:, 0])], dim=1)
    decode = fit_decoder(z[:600], y[:600], steps=120, hidden=(16,), lr=1e-2, batch_size=256)
    pred = decode(z[600:])
    r2 = 1 - ((pred - y[600:]) ** 2).mean(0) / y[600:].var(0)
    assert pred.shape == (400, 2) and (r2 > 0.9).all()
