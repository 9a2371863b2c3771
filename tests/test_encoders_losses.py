import math

import pytest
import torch

from mmcl_helpers.core.losses import info_nce, info_nce_terms, similarity_matrix
from mmcl_helpers.numerical.encoders import EnsembleMLP, mlp, paper_hidden_widths


def test_ensemble_members_equal_their_plain_copies(gen):
    torch.manual_seed(0)
    net = EnsembleMLP([3, 5], [2, 4], [8, 8], batch_norm=True)
    x = torch.randn(2, 16, 5, generator=gen)
    x[0, :, 3:] = 0.0
    net.train()
    net(x)  # one training pass updates the running statistics
    net.eval()
    out = net(x)
    assert out.shape == (2, 16, 4)
    assert torch.all(out[0, :, 2:] == 0)  # outputs past a member's size are masked
    for i, (a, b) in enumerate([(3, 2), (5, 4)]):
        plain = net.member(i).eval()
        assert torch.allclose(plain(x[i, :, :a]), out[i, :, :b], atol=1e-5)


def test_padding_does_not_leak_into_a_smaller_member(gen):
    net = EnsembleMLP([2, 4], [3, 3], [8], batch_norm=False).eval()
    x = torch.randn(2, 10, 4, generator=gen)
    y = x.clone()
    y[0, :, 2:] = 1e3  # garbage in the padding of member 0
    assert torch.allclose(net(x)[0], net(y)[0])


def test_plain_mlp_and_paper_widths():
    f = mlp(15, 6, paper_hidden_widths(15))
    assert f(torch.zeros(4, 15)).shape == (4, 6)
    assert paper_hidden_widths(15) == [150, 750, 750, 750, 750, 150]
    assert sum(isinstance(m, torch.nn.Linear) for m in f) == 7


def test_similarities_on_hand_computed_inputs():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    b = torch.tensor([[1.0, 1.0], [0.0, -1.0]])
    cos = similarity_matrix(a, b, "cosine")
    r = 1 / math.sqrt(2)
    assert torch.allclose(cos, torch.tensor([[r, 0.0], [r, -1.0]]), atol=1e-6)
    euc = similarity_matrix(a, b, "euclidean")
    assert torch.allclose(euc, torch.tensor([[-1.0, -2.0], [-2.0, -9.0]]))


def test_info_nce_on_hand_computed_inputs():
    # Two pairs, euclidean similarity, tau 1. logits = [[0, -2], [-2, 0]].
    z = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    expected = math.log(1 + math.exp(-2.0))
    assert torch.isclose(info_nce(z, z, "euclidean", 1.0), torch.tensor(expected), atol=1e-6)
    align, unif = info_nce_terms(z, z, "euclidean", 1.0)
    assert torch.isclose(align, torch.tensor(0.0)) and torch.isclose(unif, torch.tensor(expected))


def test_info_nce_prefers_matched_pairs_and_batches_over_leading_dims(gen):
    z = torch.randn(64, 5, generator=gen)
    matched = info_nce(z, z, "cosine", 0.1)
    shuffled = info_nce(z, z[torch.randperm(64, generator=gen)], "cosine", 0.1)
    assert matched < shuffled
    stacked = info_nce(torch.stack([z, z]), torch.stack([z, z.flip(0)]), "cosine", 0.1)
    assert stacked.shape == (2,) and torch.isclose(stacked[0], matched)


@pytest.mark.parametrize("similarity", ["cosine", "euclidean"])
@pytest.mark.parametrize("tau", [0.5, 0.1, 0.02])  # 0.02 takes the cosine logsumexp path
def test_info_nce_is_symmetric_mean_of_two_cross_entropies(gen, similarity, tau):
    a, b = torch.randn(32, 4, generator=gen), torch.randn(32, 4, generator=gen)
    logits = similarity_matrix(a, b, similarity) / tau
    labels = torch.arange(32)
    ce = 0.5 * (
        torch.nn.functional.cross_entropy(logits, labels)
        + torch.nn.functional.cross_entropy(logits.T, labels)
    )
    assert torch.isclose(info_nce(a, b, similarity, tau), ce, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("kwargs", [dict(similarity="dot"), dict(tau=0.0)])
def test_loss_rejects_bad_settings(kwargs):
    z = torch.zeros(4, 2)
    with pytest.raises(ValueError):
        info_nce(z, z, **{"similarity": "cosine", "tau": 0.1, **kwargs})


@pytest.mark.parametrize("similarity", ["cosine", "euclidean"])
def test_align_weight_scales_only_the_alignment_part(gen, similarity):
    a, b = torch.randn(16, 3, generator=gen), torch.randn(16, 3, generator=gen)
    align, unif = info_nce_terms(a, b, similarity, 0.1)
    assert torch.isclose(info_nce(a, b, similarity, 0.1, align_weight=1.0), align + unif)
    # Eq. 1 plus 5 x the misalignment, which is >= 0 (cosine: mean(1 - cos) / tau).
    misalignment = align + 1 / 0.1 if similarity == "cosine" else align
    assert misalignment >= 0
    assert torch.isclose(info_nce(a, b, similarity, 0.1, align_weight=6.0), align + unif + 5.0 * misalignment,
                         atol=1e-5)
    assert torch.isclose(info_nce(b, b, similarity, 0.1, align_weight=6.0), info_nce(b, b, similarity, 0.1),
                         atol=1e-5)  # aligned pairs: no extra term
    # A stronger pull on matched pairs: the gradient moves an image further towards its caption.
    x = a.clone().requires_grad_(True)
    pulls = []
    for w in (1.0, 6.0):
        (g,) = torch.autograd.grad(info_nce(x, b, similarity, 0.1, align_weight=w), x)
        pulls.append(-(g * (b - a)).sum())
    assert pulls[1] > pulls[0]


@pytest.mark.parametrize("bad", [-1.0, "2", None])
def test_align_weight_rejects_bad_values(bad):
    z = torch.zeros(4, 2)
    with pytest.raises(ValueError, match="align_weight"):
        info_nce(z, z, "cosine", 0.1, align_weight=bad)
