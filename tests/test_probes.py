import numpy as np
import torch

from mmcl_helpers.numerical.probes import linear_mcc, linear_r2, mlp_mcc, mlp_r2

BLOCKS = [slice(0, 1), slice(1, 2), slice(2, 4)]


def _data(n, gen):
    z = torch.randn(n, 3, generator=gen)
    y = torch.stack(
        [
            torch.sin(2 * z[:, 0]) + z[:, 1] ** 2,   # nonlinear function of z
            torch.randn(n, generator=gen),           # independent noise
            z[:, 2],                                 # block: linear ...
            torch.randn(n, generator=gen),           # ... plus noise -> about half
        ],
        dim=1,
    )
    return z, y


def test_mlp_probe_recovers_a_nonlinear_relation_and_not_noise(gen):
    z, y = _data(6000, gen)
    r2 = mlp_r2(z[:4000], y[:4000], z[4000:], y[4000:], BLOCKS, steps=800)
    assert r2.shape == (3,)
    assert r2[0] > 0.95
    assert r2[1] < 0.03
    assert 0.4 < r2[2] < 0.55


def test_linear_probe_misses_the_nonlinear_relation_but_scores_are_clipped(gen):
    z, y = _data(6000, gen)
    r2 = linear_r2(z[:4000], y[:4000], z[4000:], y[4000:], BLOCKS)
    assert r2[0] < 0.3
    assert r2[1] < 0.01
    assert np.all((r2 >= 0) & (r2 <= 1))


def test_probes_batch_over_representations(gen):
    z, y = _data(3000, gen)
    zz = torch.stack([z, torch.randn_like(z)])
    r2 = mlp_r2(zz[:, :2000], y[:2000], zz[:, 2000:], y[2000:], BLOCKS, steps=400)
    assert r2.shape == (2, 3)
    assert r2[0, 0] > 0.8 and r2[1, 0] < 0.05
    lin = linear_r2(zz[:, :2000], y[:2000], zz[:, 2000:], y[2000:], BLOCKS)
    assert lin.shape == (2, 3)


def test_mcc_probes(gen):
    z = torch.randn(4000, 2, generator=gen)
    label = ((z[:, 0] ** 2 + z[:, 1] ** 2) > 1.4).long()   # a circle: not linearly separable
    noise = torch.randint(0, 2, (4000,), generator=gen)
    assert mlp_mcc(z[:3000], label[:3000], z[3000:], label[3000:], steps=600) > 0.9
    assert abs(mlp_mcc(z[:3000], noise[:3000], z[3000:], noise[3000:], steps=300)) < 0.1
    half = (z[:, 0] > 0).long()
    assert linear_mcc(z[:3000], half[:3000], z[3000:], half[3000:]) > 0.95
