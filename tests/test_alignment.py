"""Chapter 5's alignment comparison: Eq. (1) against the profile's late pull on matched pairs."""

import pytest
import torch

from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES
from mmcl_helpers.datasets.naming import named_perturbation_sweep
from mmcl_helpers.image_text.alignment import run_alignment_comparison
from mmcl_helpers.image_text.pair_training import train_pair_encoders
from mmcl_helpers.image_text.sweeps import run_scene_sweeps

TINY = IMAGE_TEXT_PROFILES["smoke"].with_overrides(
    n_train=256, n_probe_train=64, n_probe_test=64, steps=4, batch_size=32, widths=(4, 8, 8),
    hidden=16, text_embed=8, text_channels=8, probe_steps=10, align_weight=6.0, align_from=0.5,
)
MOST = next(iter(named_perturbation_sweep()))


def test_two_losses_on_the_same_setting_and_a_summary(tmp_path):
    run = run_alignment_comparison(TINY, seed=1, progress=False, cache_dir=tmp_path)
    assert set(run.scores["loss"]) == {"Eq. 1", "late pull"}
    assert set(run.scores["setting"]) == {MOST}
    assert run.seconds["reused"] == 0
    s = run.summary()
    assert list(s.index) == ["Eq. 1", "late pull"]
    mlp = run.scores.query("probe == 'mlp' and loss == 'late pull'")
    shape = mlp.query("factor == 'shape' and encoder == 'x'")["score"].mean()
    assert s.loc["late pull", "shape (ẑ_x)"] == pytest.approx(shape)
    phrasing = mlp.query("factor == 'template' and encoder == 't'")["score"].mean()
    assert s.loc["late pull", "phrasing (ẑ_t)"] == pytest.approx(phrasing)


def test_the_sweeps_model_is_reused_and_the_weight_changes_training(tmp_path):
    sweeps = run_scene_sweeps(TINY.with_overrides(seeds=1), 1, progress=False, cache_dir=tmp_path,
                              settings={"perturbation": {MOST: named_perturbation_sweep()[MOST]}})
    run = run_alignment_comparison(TINY.with_overrides(seeds=1), seed=1, progress=False,
                                   cache_dir=tmp_path, sweeps=sweeps)
    assert run.seconds["reused"] == 1
    late = run.scores.query("loss == 'late pull'")["score"].tolist()
    assert late == sweeps.scores["score"].tolist()
    # Another seed's sweeps are not reused.
    other = run_alignment_comparison(TINY.with_overrides(seeds=1), seed=2, progress=False,
                                     cache_dir=tmp_path, sweeps=sweeps)
    assert other.seconds["reused"] == 0


def test_late_weight_changes_only_the_second_half_of_training():
    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 255, (64, 64, 64, 3), dtype=torch.uint8, generator=gen).numpy()
    caps = [f"a {w} thing" for w in ("red", "blue", "green", "grey") * 16]
    base = TINY.with_overrides(group_fraction=0.0, group_warmup=0.0, false_negatives="keep", steps=6,
                               batch_size=16)
    paper = train_pair_encoders(images, caps, 3, base.with_overrides(align_weight=1.0), seed=0,
                                progress=False)
    late = train_pair_encoders(images, caps, 3, base, seed=0, progress=False)
    # Same loss (bit for bit) while the weight is 1, then a different one.
    assert paper.history[:3].tolist() == late.history[:3].tolist()
    assert paper.history[3:].tolist() != late.history[3:].tolist()


def test_a_profile_without_a_late_pull_is_refused():
    with pytest.raises(ValueError, match="align_weight"):
        run_alignment_comparison(TINY.with_overrides(align_weight=1.0))
    with pytest.raises((TypeError, ValueError), match="profile"):
        run_alignment_comparison("cpu")
