"""The ``paper`` profile's code paths at tiny sizes: its encoder, similarity and schedule run end to end.

The paper profile trains 100,000 steps of 6144 pairs per model; nothing here runs those sizes.
What is checked is every branch that only ``paper`` takes: the 7-layer MLP whose widths follow the
input size (so one setting per group), no batch norm, negative squared Euclidean similarity at
temperature 1, a constant learning rate (no warm-up), no spare output dimension, and the image-text
column with its wider networks, temperature 1 and learning rate 1e-5.
"""

import numpy as np
import pytest
import torch

from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.losses import info_nce
from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES, get_profile
from mmcl_helpers.datasets.captions import scene_captions
from mmcl_helpers.datasets.naming import named_selection_sweep
from mmcl_helpers.datasets.scenes import render_scenes, sample_scene_latents
from mmcl_helpers.image_text.pair_training import encode_pairs, train_pair_encoders
from mmcl_helpers.numerical.encoders import paper_hidden_widths
from mmcl_helpers.numerical.experiments import run_numerical
from mmcl_helpers.numerical.training import lr_lambda

PAPER = get_profile("paper")
TINY = PAPER.with_overrides(steps=4, batch_size=32, probe_train=64, probe_test=64, probe_steps=3)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_the_tiny_copy_keeps_every_paper_switch():
    for field in ("encoder", "similarity", "tau", "warmup", "extra_dims", "lr", "grad_clip", "seeds"):
        assert getattr(TINY, field) == getattr(PAPER, field), field
    assert (PAPER.encoder, PAPER.similarity, PAPER.tau, PAPER.warmup) == ("paper", "euclidean", 1.0, 0.0)
    # No warm-up and no decay: the learning rate is the paper's 1e-4 at every step.
    steps = (0, 1, PAPER.steps // 2, PAPER.steps - 1)
    assert {lr_lambda(s, PAPER.steps, PAPER.warmup) for s in steps} == {1.0}


def test_numerical_run_trains_the_paper_mlp_as_one_ensemble():
    settings = [CaptionBias({1, 2}, n_semantic=3), CaptionBias({1, 2, 3}, perturbed={3}, n_semantic=3)]
    run = run_numerical(settings, n_image=2, n_text=2, profile=TINY, seeds=[0], device="cpu",
                        progress=False, cache=False)
    (trained,) = run.trained
    # One ensemble for every setting: each member's widths follow its own input size (padded).
    assert len(trained.f_x) == len(trained.f_t) == 1
    assert trained.members == [(0, 0), (0, 1)]
    assert trained.history.shape == (TINY.steps, 2) and np.isfinite(trained.history).all()
    assert trained.encoding_sizes() == [2, 2]  # extra_dims = 0: the unbiased count exactly
    for fx in trained.f_x:
        linear = [m for m in fx.modules() if type(m).__name__ == "_EnsembleLinear"]
        widths = [int(m.weight.shape[-1]) for m in linear][:-1]
        assert widths == paper_hidden_widths(5)  # x = g_x(s, m_x): 3 + 2 inputs
    assert not any(type(m).__name__ == "_EnsembleBatchNorm" for m in fx.modules())
    assert run.config["similarity"] == "euclidean" and run.config["tau"] == 1.0
    scores = run.scores
    assert set(scores["probe"]) == {"linear", "mlp"} and set(scores["encoder"]) == {"x", "t"}
    assert len(scores) == 2 * 2 * 2 * (3 + 2) and np.isfinite(scores["score"]).all()


def test_euclidean_similarity_at_temperature_one_is_the_loss_of_eq_2():
    torch.manual_seed(0)
    z = torch.randn(8, 3)
    aligned = info_nce(z[None], z[None], "euclidean", 1.0)
    shuffled = info_nce(z[None], z[torch.randperm(8)][None], "euclidean", 1.0)
    assert aligned.shape == (1,) and float(aligned) < float(shuffled)


def test_image_text_paper_column_trains_and_encodes():
    paper = IMAGE_TEXT_PROFILES["paper"]
    assert (paper.tau, paper.lr, paper.warmup) == (1.0, 1e-5, 0.0)
    assert (paper.widths, paper.hidden) == ((64, 128, 256), 512)
    tiny = paper.with_overrides(steps=2, batch_size=8, probe_steps=2)
    lat = sample_scene_latents(16, seed=0)
    caps = scene_captions(lat, named_selection_sweep()["{shape..y_pos}"], seed=0)
    images = render_scenes(lat)
    model = train_pair_encoders(images, caps.text, 5, tiny, seed=0, device="cpu", progress=False)
    assert model.history.shape == (2,) and np.isfinite(model.history).all()
    z_x, z_t = encode_pairs(model, images, caps.text)
    assert z_x.shape == z_t.shape == (16, 5)
    np.testing.assert_allclose(z_x.norm(dim=1).numpy(), 1.0, rtol=1e-5)
