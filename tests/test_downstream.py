"""Downstream tasks on frozen representations (App. C.1): targets, shift, and the scores table."""

from __future__ import annotations

import torch

from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.profiles import get_profile
from mmcl_helpers.numerical.downstream import downstream_scores, downstream_targets, shift_semantics
from mmcl_helpers.numerical.latents import LatentModel
from mmcl_helpers.numerical.simulation import MultimodalSimulation
from mmcl_helpers.numerical.training import train_mmcl


def test_targets_depend_only_on_their_semantics():
    s = torch.randn(64, 10, generator=torch.Generator().manual_seed(0))
    y = downstream_targets(s)
    s2 = s.clone()
    s2[:, 3:] = torch.randn(64, 7)  # y1 = F(s_[3]) must not move
    assert torch.allclose(downstream_targets(s2)[:, 0], y[:, 0])
    assert not torch.allclose(downstream_targets(s2)[:, 1], y[:, 1])


def test_shift_changes_only_s9_s10():
    s = torch.randn(32, 10, generator=torch.Generator().manual_seed(1))
    shifted = shift_semantics(s)
    assert torch.equal(shifted[:, :8], s[:, :8])
    assert torch.allclose(shifted[:, 8:], 2 * torch.sign(s[:, 8:]) * s[:, 8:] ** 2)


def test_scores_table_names_both_sets():
    prof = get_profile("smoke").with_overrides(steps=3, probe_train=128, probe_test=128, probe_steps=3,
                                               compile=False)
    biases = [CaptionBias(selected=range(1, 11), n_semantic=10),
              CaptionBias(selected=range(1, 11), perturbed={1, 2}, n_semantic=10)]
    sim = MultimodalSimulation(LatentModel(10, 5, 5, seed=0), biases, seed=0)
    trained = train_mmcl(sim, prof, seed=0, device="cpu", progress=False)
    table = downstream_scores(sim, trained, prof, seed=0)
    assert list(table.columns) == ["seed", "member", "setting", "selected", "perturbed", "task",
                                   "split", "metric", "score"]
    assert set(table["perturbed"]) == {"∅", "[2]"} and set(table["selected"]) == {"[10]"}
    # Per model: four regression targets in distribution, the classifier in and out of it.
    assert len(table) == 2 * (4 + 2)
    assert table["score"].notna().all()
