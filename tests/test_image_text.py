"""Image-text experiments: encoders, training, probing, sweeps on scenes and on a synthetic MPI3D file."""

import numpy as np
import pandas as pd
import pytest
import torch

from mmcl_helpers.core.paper import figure_values
from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES, PROFILES, image_text_profile, image_text_table
from mmcl_helpers.core.results import SCORE_COLUMNS
from mmcl_helpers.datasets import mpi3d
from mmcl_helpers.datasets.captions import scene_captions
from mmcl_helpers.datasets.naming import named_selection_sweep
from mmcl_helpers.datasets.perturbation import CaptionBatch
from mmcl_helpers.datasets.scenes import (
    IMAGE_FACTORS,
    SEMANTIC_FACTORS,
    render_scenes,
    sample_scene_latents,
    scene_encoding_size,
)
from mmcl_helpers.datasets.splits import Split
from mmcl_helpers.datasets.tokens import build_vocab
from mmcl_helpers.image_text.image_encoders import ImageEncoder, TextEncoder, images_to_tensor
from mmcl_helpers.image_text.pair_training import PairEncoders, encode_pairs, train_pair_encoders
from mmcl_helpers.image_text.sweep_reports import compare_to_paper_figure, image_text_checks, scene_score_grid
from mmcl_helpers.image_text.sweeps import (
    ImageTextRun,
    norm_channel_table,
    run_mpi3d_sweeps,
    run_scene_sweeps,
    setting_key,
)
from mmcl_helpers.numerical.probes import FactorSpec, probe_representations
from mmcl_helpers.numerical.training import NonFiniteLossError

# The paper's recipe (i.i.d. batches, every other caption a negative, stride-2 stem, the paper's
# encoding sizes, all columns): the tests that need the book's recipe switch it on themselves.
TINY = IMAGE_TEXT_PROFILES["smoke"].with_overrides(
    n_train=96, n_probe_train=120, n_probe_test=120, steps=3, batch_size=32, widths=(4, 8, 8),
    hidden=16, text_embed=8, text_channels=8, probe_steps=20, mpi3d_train=96,
    group_fraction=0.0, false_negatives="keep", first_stride=2, dims_per_factor=0, scene_columns="all",
    group_warmup=0.0, text_uniformity=0.0,
)
COLUMNS = ["dataset", "sweep", "column", "setting", "selected", "perturbed", "seed",
           *SCORE_COLUMNS]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def pairs():
    lat = sample_scene_latents(64, seed=0)
    caps = scene_captions(lat, named_selection_sweep()["{shape..y_pos}"], seed=0)
    return lat, render_scenes(lat), caps


def test_encoders_map_inputs_to_the_encoding_size():
    torch.manual_seed(0)
    img = torch.randint(0, 256, (5, 64, 64, 3), dtype=torch.uint8)
    f_x = ImageEncoder(4, widths=(4, 8, 8), hidden=16).eval()
    z = f_x(img)
    assert z.shape == (5, 4) and torch.isfinite(z).all()
    # uint8 channels-last and float channels-first input give the same encoding.
    torch.testing.assert_close(f_x(img.permute(0, 3, 1, 2).float() / 255.0), z)
    assert images_to_tensor(img).shape == (5, 3, 64, 64) and images_to_tensor(img).max() <= 1.0
    f_t = TextEncoder(vocab_size=12, out_dim=4, embed=8, channels=8, hidden=16).eval()
    tokens = torch.tensor([[2, 3, 4, 0, 0], [5, 6, 0, 0, 0], [0, 0, 0, 0, 0]])
    zt = f_t(tokens)
    assert zt.shape == (3, 4) and torch.isfinite(zt).all()
    # Padding is ignored: more trailing padding does not change the encoding.
    longer = torch.nn.functional.pad(tokens, (0, 4))
    torch.testing.assert_close(f_t(longer), zt)
    assert not torch.allclose(zt[0], zt[1])
    with pytest.raises(ValueError, match="shape"):
        f_x(img[0])


def test_training_is_deterministic_and_learns(pairs):
    _, images, caps = pairs
    settings = TINY.with_overrides(steps=4)
    a = train_pair_encoders(images, caps.text, 3, settings, seed=1, device="cpu", progress=False)
    b = train_pair_encoders(images, caps.text, 3, settings, seed=1, device="cpu", progress=False)
    c = train_pair_encoders(images, caps.text, 3, settings, seed=2, device="cpu", progress=False)
    np.testing.assert_array_equal(a.history, b.history)
    for p, q in zip(a.f_x.state_dict().values(), b.f_x.state_dict().values()):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert not np.array_equal(a.history, c.history)
    assert a.history.shape == (4,) and np.isfinite(a.history).all()
    zx, zt = encode_pairs(a, images, caps.text)
    assert zx.shape == zt.shape == (len(images), 3)
    # A longer run on the same pairs lowers the loss (Eq. 1's, and the late pull's after it starts).
    longer = train_pair_encoders(images, caps.text, 3,
                                 settings.with_overrides(steps=40, lr=3e-3, align_weight=1.0),
                                 seed=1, device="cpu", progress=False)
    assert longer.history[-5:].mean() < longer.history[:5].mean() - 0.2
    pulled = settings.with_overrides(steps=40, lr=3e-3, align_weight=6.0, align_from=0.4)
    late = train_pair_encoders(images, caps.text, 3, pulled, seed=1, device="cpu", progress=False).history
    assert late[-5:].mean() < late[16:21].mean() - 0.2  # the pull starts at step 16


def test_encode_pairs_returns_unit_vectors_by_default(pairs):
    _, images, caps = pairs
    model = train_pair_encoders(images, caps.text, 3, TINY.with_overrides(steps=2), seed=0,
                                device="cpu", progress=False)
    zx, zt = encode_pairs(model, images, caps.text)
    raw_x, raw_t = encode_pairs(model, images, caps.text, unit=False)
    torch.testing.assert_close(zx.norm(dim=1), torch.ones(len(images)))
    torch.testing.assert_close(zt.norm(dim=1), torch.ones(len(images)))
    torch.testing.assert_close(zx, raw_x / raw_x.norm(dim=1, keepdim=True))
    torch.testing.assert_close(zt, raw_t / raw_t.norm(dim=1, keepdim=True))
    # The raw outputs are not unit vectors, so the two options really differ.
    assert (raw_x.norm(dim=1) - 1).abs().max() > 1e-2


class _LengthCarrier(torch.nn.Module):
    """An image 'encoder' whose output points one way and whose length is the brightness."""

    def __init__(self):
        super().__init__()
        self.unused = torch.nn.Parameter(torch.zeros(()))  # encode_pairs reads the device here

    def forward(self, x):
        b = x.float().mean(dim=(1, 2, 3)) / 255.0
        return torch.stack([1.0 + 3.0 * b, torch.zeros_like(b), torch.zeros_like(b)], 1)


class _Constant(_LengthCarrier):
    def forward(self, tokens):
        return torch.ones(len(tokens), 3)


def _length_run(n=300):
    rng = np.random.default_rng(0)
    bright = rng.random(2 * n)
    images = (bright[:, None, None, None] * 255 * np.ones((1, 64, 64, 3))).astype(np.uint8)
    text = ["a red square"] * n

    def split(lo):
        labels = {"brightness": images[lo:lo + n].mean(axis=(1, 2, 3)) / 255.0}
        phr = rng.integers(0, 2, n)
        return Split(images[lo:lo + n], labels, lambda bias, s, phr=phr: CaptionBatch(text, phr, {}, {}))

    bias = named_selection_sweep()["{shape}"]
    model = PairEncoders(_LengthCarrier(), _Constant(), build_vocab(text), 3, np.zeros(1), 0.0)
    data = {"splits": {"probe_train": split(0), "probe_test": split(n)},
            "sweeps": {"selection": {"{shape}": bias}}, "semantics": list(SEMANTIC_FACTORS),
            "classes": {}, "probe_steps": 300}
    return ImageTextRun(pd.DataFrame(), {(setting_key(bias), 0): model}, {}, {"seeds": [0]}, data)


def test_norm_channel_table_finds_what_only_the_length_carries():
    table = norm_channel_table(_length_run(), ["{shape}"])
    assert list(table.columns) == ["raw output", "unit vector", "length only"]
    row = table.loc[("{shape}", "x", "brightness", "image-specific")]
    assert row["raw output"] > 0.9 and row["length only"] > 0.9
    assert row["unit vector"] < 0.05
    # The text side is constant: nothing to read from it, in any form.
    assert table.loc[("{shape}", "t", "brightness", "image-specific")].max() < 0.05


def test_norm_channel_table_refuses_what_it_cannot_probe(scene_run):
    with pytest.raises(ValueError, match="not in the selection sweep"):
        norm_channel_table(scene_run, ["{nothing}"])
    with pytest.raises(ValueError, match="sweep 'other'"):
        norm_channel_table(scene_run, ["{shape}"], sweep="other")
    saved = ImageTextRun(scene_run.scores, config=scene_run.config)
    with pytest.raises(ValueError, match="made in this session"):
        norm_channel_table(saved, ["{shape}"])
    table = norm_channel_table(scene_run, ["{shape}", "{shape, x_pos}"])
    assert set(table.index.get_level_values("setting")) == {"{shape}", "{shape, x_pos}"}
    flat = table.reset_index().drop_duplicates(["setting", "factor"])
    roles = flat.set_index(["setting", "factor"])["role"]
    assert roles[("{shape}", "x_pos")] == "omitted" and roles[("{shape, x_pos}", "x_pos")] == "unbiased"
    assert roles[("{shape}", "template")] == "text-specific"
    assert table.notna().all().all()


def test_a_diverging_run_raises_non_finite_loss(pairs):
    _, images, caps = pairs
    with pytest.raises(NonFiniteLossError, match="learning rate"):
        train_pair_encoders(images, caps.text, 3, TINY.with_overrides(lr=1e30, warmup=0.0),
                            seed=0, device="cpu", progress=False)
    with pytest.raises(ValueError, match="caption per image"):
        train_pair_encoders(images, caps.text[:-1], 3, TINY, device="cpu", progress=False)


def test_probes_score_known_structure():
    rng = np.random.default_rng(0)
    n = 400
    label = rng.integers(0, 3, 2 * n)
    value = rng.random(2 * n)
    noise = rng.random(2 * n)
    # A representation holding the label and the value, and one holding only noise.
    good = torch.tensor(np.stack([label, value, rng.normal(size=2 * n) * 0.01], 1), dtype=torch.float32)
    bad = torch.tensor(rng.normal(size=(2 * n, 2)), dtype=torch.float32)
    reps = {("good", "x"): (good[:n], good[n:]), ("bad", "x"): (bad[:n], bad[n:])}
    specs = [FactorSpec("label", label[:n], label[n:], 3), FactorSpec("value", value[:n], value[n:]),
             FactorSpec("noise", noise[:n], noise[n:])]
    df = probe_representations(reps, specs, probe_steps=300, seed=0).set_index(
        ["key", "factor", "probe"])["score"]
    for probe in ("mlp", "linear"):
        assert df[("good", "label", probe)] > 0.95 and abs(df[("bad", "label", probe)]) < 0.2
        assert df[("good", "value", probe)] > 0.9 and df[("bad", "value", probe)] < 0.1
        assert df[("good", "noise", probe)] < 0.1


def test_settings_follow_the_profiles():
    assert set(IMAGE_TEXT_PROFILES) == set(PROFILES)
    assert image_text_profile("cpu") is IMAGE_TEXT_PROFILES["cpu"]
    assert image_text_profile().name == "smoke"  # conftest sets MMCL_PROFILE=smoke
    table = image_text_table()
    assert list(table.columns) == list(PROFILES) and "steps" in table.index
    paper = IMAGE_TEXT_PROFILES["paper"]
    assert (paper.tau, paper.lr, paper.steps, paper.batch_size) == (1.0, 1e-5, 100_000, 256)
    sizes = [scene_encoding_size(b) for b in named_selection_sweep().values()]
    assert sizes == [3, 3, 4, 5, 5, 6, 7]


@pytest.fixture(scope="module")
def scene_run(tmp_path_factory):
    torch.set_num_threads(1)
    return run_scene_sweeps(TINY, seed=0, device="cpu", progress=False,
                            cache_dir=tmp_path_factory.mktemp("scenes"))


def test_scene_sweeps_give_a_tidy_frame(scene_run):
    df = scene_run.scores
    assert list(df.columns) == COLUMNS
    # 13 distinct settings: "everything selected" and "nothing perturbed" are one model.
    assert len(scene_run.models) == 13 and scene_run.config["distinct_models"] == 13
    for sweep in ("selection", "perturbation"):
        part = df[df["sweep"] == sweep]
        assert part["column"].nunique() == 7 and part["setting"].nunique() == 7
        per_setting = part.groupby("setting").size()
        # 12 factors x 2 encoders x 2 probes, plus the template from z_t (2 probes).
        assert (per_setting == 12 * 2 * 2 + 2).all()
    assert set(df["factor"]) == set(SEMANTIC_FACTORS) | set(IMAGE_FACTORS) | {"template"}
    assert set(df.loc[df["factor"] == "template", "encoder"]) == {"t"}
    mcc = df[df["metric"] == "mcc"]
    assert set(mcc["factor"]) == {"shape", "x_pos", "y_pos", "template"}
    assert mcc["score"].between(-1, 1).all()
    assert df.loc[df["metric"] == "r2", "score"].between(0, 1).all()
    keys = ["sweep", "setting", "factor"]
    roles = df.drop_duplicates(keys).set_index(keys)["role"]
    assert roles[("selection", "{shape}", "x_pos")] == "omitted"
    assert roles[("selection", "{shape}", "shape")] == "unbiased"
    assert roles[("perturbation", "{x_pos..b_color}", "x_pos")] == "perturbed"
    assert roles[("perturbation", "∅", "rotation")] == "image-specific"
    full = df[(df["sweep"] == "selection") & (df["setting"] == "{shape..b_color}")]
    none = df[(df["sweep"] == "perturbation") & (df["setting"] == "∅")]
    np.testing.assert_array_equal(full["score"].to_numpy(), none["score"].to_numpy())
    assert scene_run.seconds["render"] >= 0 and scene_run.seconds["train"] > 0


def test_grids_and_paper_comparison(scene_run):
    grid = scene_score_grid(scene_run.scores, "selection", "x")
    assert list(grid.columns) == list(named_selection_sweep())
    assert grid.index[0] == "rotation (R²)" and "shape (MCC)" in grid.index
    assert "template (MCC)" in scene_score_grid(scene_run.scores, "perturbation", "t").index
    cmp = compare_to_paper_figure(scene_run.scores, "fig6", profile="smoke")
    assert len(cmp) == 2 * 8 * 7  # 2 panels x (7 semantics + m_x) x 7 columns
    paper = figure_values("fig6").set_index(["panel", "factor", "column"])["value"]
    row = cmp[(cmp["panel"] == "perturbation") & (cmp["factor"] == "s_pos") & (cmp["column"] == "c4")].iloc[0]
    assert row["paper"] == paper[("perturbation", "s_pos", "c4")] and row["setting"] == "{color..b_color}"
    np.testing.assert_allclose(cmp["difference"], cmp["ours"] - cmp["paper"])


def test_checks_flag_each_bar():
    good = {("a", "shape", "unbiased", "x"): 0.9, ("a", "x_pos", "omitted", "x"): 0.1,
            ("a", "scale", "image-specific", "x"): 0.05, ("a", "template", "text-specific", "t"): 0.02}
    assert image_text_checks(_scores_df(good))["met"].all()
    for key, bad in [(("a", "shape", "unbiased", "x"), 0.7), (("a", "x_pos", "omitted", "x"), 0.3),
                     (("a", "scale", "image-specific", "x"), 0.2),
                     (("a", "template", "text-specific", "t"), 0.4)]:
        checks = image_text_checks(_scores_df({**good, key: bad}))
        assert (~checks["met"]).sum() == 1, key
        assert checks.loc[~checks["met"], "worst"].iloc[0] == bad


def _scores_df(cells):
    return pd.DataFrame([dict(sweep="selection", setting=s, encoder=e, factor=f, role=r, probe="mlp",
                              score=v, seed=0) for (s, f, r, e), v in cells.items()])


SIZES = (4, 4, 2, 3, 3, 2, 2)  # 1,152 images, as in tests/test_mpi3d.py


def test_mpi3d_runs_on_a_synthetic_file(tmp_path, monkeypatch):
    monkeypatch.delenv("MMCL_MPI3D_PATH", raising=False)
    monkeypatch.setenv("MMCL_CACHE_DIR", str(tmp_path / "cache"))
    n = int(np.prod(SIZES))
    labels = mpi3d.mpi3d_factors(np.arange(n), SIZES)
    # Each factor value paints its own patch, so the pictures depend on every factor.
    images = np.zeros((n, 64, 64, 3), dtype=np.uint8)
    for k in range(len(SIZES)):
        images[:, 8 * k : 8 * k + 8, :, k % 3] = (labels[:, k, None, None] * 60 + 40).astype(np.uint8)
    path = tmp_path / mpi3d.MPI3D_FILENAME
    np.savez(path, images=images)
    with pytest.raises(mpi3d.MPI3DNotFoundError, match="download_mpi3d"):
        run_mpi3d_sweeps(tmp_path / "missing.npz", TINY, sizes=SIZES, device="cpu", progress=False)
    run = run_mpi3d_sweeps(path, TINY, sweeps=("selection",), sizes=SIZES, device="cpu", progress=False)
    df = run.scores
    assert list(df.columns) == COLUMNS and set(df["dataset"]) == {"mpi3d"}
    assert df["column"].nunique() == 5 and len(run.models) == 5
    assert set(df["factor"]) == set(mpi3d.MPI3D_FACTORS) | {"template"}
    assert (df["metric"] == "mcc").all() and df["score"].between(-1, 1).all()
    assert set(df.loc[df["factor"].isin(["hori", "vert"]), "role"]) == {"image-specific"}
    assert df.loc[(df["setting"] == "{color}") & (df["factor"] == "shape"), "role"].iloc[0] == "omitted"
    # Encoding size: number of unbiased semantics, at least 3.
    sizes = {label: s["encoding_size"] for label, s in run.config["sweeps"]["selection"].items()}
    assert list(sizes.values()) == [3, 3, 3, 4, 5]
    cmp = compare_to_paper_figure(df, "fig5", profile="smoke")
    assert set(cmp["panel"]) == {"selection_zx"} and len(cmp) == 7 * 5
