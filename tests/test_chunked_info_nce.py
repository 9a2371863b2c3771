"""Chapter 4's InfoNCE terms on many samples: chunked, same value, no (N, N) matrix."""

import numpy as np
import pytest
import torch

from mmcl_helpers.core.losses import info_nce_terms
from mmcl_helpers.numerical.identifiability import chunked_info_nce_terms, kernel_entropy


@pytest.mark.parametrize("similarity, tau", [("euclidean", 0.1), ("euclidean", 1.0), ("cosine", 0.1)])
def test_chunks_give_the_full_matrix_value(similarity, tau):
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(1000, 3))
    b = a + 0.1 * rng.normal(size=a.shape)
    full = [float(v) for v in info_nce_terms(torch.as_tensor(a), torch.as_tensor(b), similarity, tau)]
    for chunk in (1, 333, 1000, 5000):
        got = chunked_info_nce_terms(a, b, similarity, tau, chunk=chunk)
        np.testing.assert_allclose(got, full, rtol=1e-12, atol=1e-12)


def test_kernel_entropy_uses_the_chunked_terms():
    rng = np.random.default_rng(1)
    u = rng.uniform(size=(1500, 1))
    _, uniformity = info_nce_terms(torch.as_tensor(u), torch.as_tensor(u), "euclidean", 1e-2)
    expected = -(float(uniformity) - np.log(1500) - 0.5 * np.log(np.pi * 1e-2))
    assert kernel_entropy(u, u, 1e-2) == pytest.approx(expected, abs=1e-9)


def test_bad_arguments_are_named():
    a = np.zeros((4, 2))
    with pytest.raises(ValueError, match="chunk must be a positive"):
        chunked_info_nce_terms(a, a, chunk=0)
    with pytest.raises(ValueError, match="same shape"):
        chunked_info_nce_terms(a, np.zeros((5, 2)))
