"""Captions that state the same thing: statement ids and the loss that leaves them out of the negatives."""

import numpy as np
import pytest
import torch

from mmcl_helpers.core.losses import info_nce, info_nce_terms, similarity_matrix
from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES
from mmcl_helpers.datasets.captions import scene_captions
from mmcl_helpers.datasets.naming import bias_from_names
from mmcl_helpers.datasets.perturbation import statement_ids
from mmcl_helpers.datasets.policies import MentionPolicy, policy_captions
from mmcl_helpers.datasets.scenes import render_scenes, sample_scene_latents
from mmcl_helpers.image_text.pair_training import train_pair_encoders

# The paper's recipe (i.i.d. batches, every other caption a negative, stride-2 stem, the paper's
# encoding sizes, all columns): the tests that need the book's recipe switch it on themselves.
TINY = IMAGE_TEXT_PROFILES["smoke"].with_overrides(
    n_train=64, steps=3, batch_size=16, widths=(4, 8, 8), hidden=16, text_embed=8, text_channels=8,
    group_fraction=0.0, false_negatives="keep", first_stride=2, dims_per_factor=0, scene_columns="all",
    group_warmup=0.0, text_uniformity=0.0,
)


def test_statement_ids_number_distinct_word_tuples_in_order_of_first_appearance():
    words = {"shape": np.array(["star", "cube", "star", "star"], dtype=object),
             "color": np.array(["red", "red", None, "red"], dtype=object)}
    assert statement_ids(words).tolist() == [0, 1, 2, 0]
    with pytest.raises(ValueError, match="at least one factor"):
        statement_ids({})
    with pytest.raises(ValueError, match="lengths"):
        statement_ids({"shape": np.array(["a", "b"]), "color": np.array(["c"])})


def test_scene_statements_match_exactly_when_captions_say_the_same_in_one_phrasing():
    lat = sample_scene_latents(400, seed=2)
    bias = bias_from_names(["shape", "x_pos"], ["x_pos"])
    caps = scene_captions(lat, bias, seed=5)
    # The same captions written in a single phrasing: equal text <=> equal statement.
    plain = scene_captions(lat, bias, seed=5, phrasings=1)
    assert (plain.statement == caps.statement).all()
    text = np.array(plain.text, dtype=object)
    same_text = text[:, None] == text[None, :]
    same_id = caps.statement[:, None] == caps.statement[None, :]
    assert (same_text == same_id).all()
    # Two shapes x at most a few position words: many repeats, so the mask has work to do.
    assert len(set(caps.statement.tolist())) < 400 / 4


def test_policy_captions_carry_statements_that_ignore_phrasing():
    lat = sample_scene_latents(300, seed=1)
    policy = {"shape": MentionPolicy(1.0, 0.0), "b_color": MentionPolicy(0.5, 0.0)}
    caps = policy_captions(lat, policy, seed=3)
    plain = policy_captions(lat, policy, seed=3, phrasings=1)
    text = np.array(plain.text, dtype=object)
    assert ((text[:, None] == text[None, :]) == (caps.statement[:, None] == caps.statement[None, :])).all()
    # A policy that mentions nothing: every caption states the same (nothing).
    assert (policy_captions(lat, {}, seed=3).statement == 0).all()


def _masked_reference(z_x, z_t, tau, exclude, similarity):
    """InfoNCE with the excluded entries dropped from each denominator, one row at a time."""
    s = similarity_matrix(z_x, z_t, similarity) / tau
    keep = ~exclude
    row = torch.stack([torch.logsumexp(s[i][keep[i]], 0) for i in range(len(s))]).mean()
    col = torch.stack([torch.logsumexp(s[:, j][keep[:, j]], 0) for j in range(len(s))]).mean()
    return -s.diagonal().mean() + 0.5 * (row + col)


@pytest.mark.parametrize("similarity,tau", [("cosine", 0.1), ("cosine", 0.01), ("euclidean", 0.5)])
def test_excluded_negatives_leave_both_denominators(similarity, tau):
    g = torch.Generator().manual_seed(0)
    z_x, z_t = torch.randn(8, 3, generator=g), torch.randn(8, 3, generator=g)
    ids = torch.tensor([0, 1, 0, 2, 1, 0, 3, 3])
    exclude = (ids[:, None] == ids[None, :]) & ~torch.eye(8, dtype=torch.bool)
    got = info_nce(z_x, z_t, similarity, tau, exclude)
    want = _masked_reference(z_x, z_t, tau, exclude, similarity)
    assert torch.allclose(got, want, atol=1e-5), (got, want)
    # An empty mask is the paper's loss; a real one lowers the loss (fewer terms in each sum).
    none = torch.zeros(8, 8, dtype=torch.bool)
    assert torch.equal(info_nce(z_x, z_t, similarity, tau, none), info_nce(z_x, z_t, similarity, tau))
    assert got < info_nce(z_x, z_t, similarity, tau)
    # Alignment is untouched: only the negatives change.
    assert torch.equal(info_nce_terms(z_x, z_t, similarity, tau, exclude)[0],
                       info_nce_terms(z_x, z_t, similarity, tau)[0])


def test_bad_masks_are_named():
    z = torch.randn(4, 2)
    with pytest.raises(ValueError, match=r"exclude must be a bool mask of shape \(4, 4\)"):
        info_nce(z, z, exclude=torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="bool mask"):
        info_nce(z, z, exclude=torch.zeros(4, 4))
    with pytest.raises(ValueError, match="diagonal"):
        info_nce(z, z, exclude=torch.eye(4, dtype=torch.bool))


def test_training_with_the_mask_needs_statements_and_uses_them():
    lat = sample_scene_latents(64, seed=0)
    images = render_scenes(lat, size=64, supersample=1)
    caps = scene_captions(lat, bias_from_names(["shape"], []), seed=0)
    prof = TINY.with_overrides(false_negatives="mask")
    with pytest.raises(ValueError, match="no statements were given"):
        train_pair_encoders(images, caps.text, 3, prof, progress=False)
    with pytest.raises(ValueError, match="statements must be 64 integer ids"):
        train_pair_encoders(images, caps.text, 3, prof, progress=False, statements=caps.statement[:10])
    masked = train_pair_encoders(images, caps.text, 3, prof, progress=False, statements=caps.statement)
    plain = train_pair_encoders(images, caps.text, 3, TINY, progress=False, statements=caps.statement)
    # Same seed and batches; only the negatives differ, so the losses differ from the first step.
    assert masked.history[0] < plain.history[0]
    with pytest.raises(ValueError, match="false_negatives"):
        TINY.with_overrides(false_negatives="drop")
