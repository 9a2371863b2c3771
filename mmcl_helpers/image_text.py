"""Image-caption experiments: train f_x and f_t on pairs, then probe what they learned (paper §5.2-5.3).

One code path serves both datasets of the paper's image-text studies:

- the rendered causal scenes of :mod:`~mmcl_helpers.datasets.scenes` (the book's analogue of
  Causal3DIdent): :func:`run_scene_sweeps`;
- the MPI3D-complex photographs of :mod:`~mmcl_helpers.datasets.mpi3d`, when the file is present:
  :func:`run_mpi3d_sweeps`.

Each bias setting trains one :class:`~mmcl_helpers.image_encoders.ImageEncoder` and one
:class:`~mmcl_helpers.image_encoders.TextEncoder` with symmetric InfoNCE (cosine similarity,
:func:`train_pair_encoders`) on a fixed set of image-caption pairs. Held-out pairs are encoded as
unit vectors (the loss sees only directions; :func:`norm_channel_table` shows what the discarded
length holds) and probed (:func:`probe_representations`): discrete factors by the Matthews
correlation coefficient (MCC) of a logistic-regression and an MLP classifier, continuous ones by
the R^2 of a linear and an MLP regression; the caption template (the text-specific factor) by MCC
from ẑ_t.

Sizes come from :data:`IMAGE_TEXT_PROFILES`, one row per compute profile of
:mod:`~mmcl_helpers.profiles` (the chapter never hard-codes a size). Why they differ from the
paper's (tau 1, Adam lr 1e-5, 100,000 steps of 256 pairs, ResNet-18): a CPU affords minutes, not
GPU-days. A temperature of 0.1 with Adam at lr 2e-3, warm-up and cosine decay trains the compact
encoders in about a thousand steps; with tau 1 and cosine similarity the loss barely moves in that
budget (the logits are confined to [-1, 1]).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.metrics import matthews_corrcoef
from tqdm.auto import tqdm

from .biases import CaptionBias
from .datasets.captions import (
    CaptionBatch,
    build_vocab,
    encode_captions,
    format_factor_set,
    perturbation_settings,
    scene_captions,
    selection_settings,
    tokenize,
)
from .datasets.scenes import DISCRETE_FACTORS, IMAGE_FACTORS, SEMANTIC_FACTORS, load_or_render
from .image_encoders import ImageEncoder, TextEncoder
from .losses import info_nce
from .probes import linear_mcc, linear_r2, mlp_classifier, mlp_r2
from .profiles import active_profile, default_device
from .training import NonFiniteLossError, lr_lambda, show_progress

__all__ = [
    "ImageTextSettings",
    "IMAGE_TEXT_PROFILES",
    "image_text_settings",
    "image_text_table",
    "SCENE_ENCODING_SIZES",
    "scene_encoding_size",
    "FactorSpec",
    "PairEncoders",
    "train_pair_encoders",
    "encode_pairs",
    "probe_representations",
    "ImageTextRun",
    "run_sweeps",
    "run_scene_sweeps",
    "run_mpi3d_sweeps",
    "norm_channel_table",
    "scene_score_grid",
    "sweep_heatmaps",
    "image_text_checks",
    "compare_to_paper_figure",
]


# ----------------------------------------------------------------------------------------------
# Sizes per compute profile


@dataclass(frozen=True)
class ImageTextSettings:
    """Sizes of the image-text experiments for one compute profile.

    Attributes:
        name: the profile name (``smoke``, ``cpu``, ``gpu``, ``paper``).
        n_train: image-caption pairs in the training set (rendered once, cached).
        n_probe_train, n_probe_test: held-out pairs to fit the probes on and to score them on.
        steps: Adam steps per trained pair of encoders.
        batch_size: pairs per step.
        lr: peak learning rate (after warm-up; cosine decay afterwards when ``warmup`` > 0).
        warmup: fraction of the steps spent warming up.
        tau: InfoNCE temperature (cosine similarity).
        widths: channels of the image encoder's stages.
        hidden: width of both heads' hidden layer.
        text_embed, text_channels: word embedding size and 1-D conv channels of the text encoder.
        grad_clip: gradient 2-norm clipping threshold.
        probe_steps: Adam steps of each MLP probe.
        seeds: independent training seeds per setting.
        mpi3d_train: MPI3D training images used (at most the paper's 44,720 train split).
    """

    name: str
    n_train: int
    n_probe_train: int
    n_probe_test: int
    steps: int
    batch_size: int
    lr: float
    warmup: float
    tau: float
    widths: tuple[int, ...]
    hidden: int
    text_embed: int
    text_channels: int
    grad_clip: float
    probe_steps: int
    seeds: int
    mpi3d_train: int

    def with_overrides(self, **changes) -> ImageTextSettings:
        """A copy with some fields replaced (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


#: The image-text sizes of each compute profile (the numerical chapters use ``profiles.PROFILES``).
IMAGE_TEXT_PROFILES: dict[str, ImageTextSettings] = {
    s.name: s
    for s in (
        ImageTextSettings("smoke", n_train=2000, n_probe_train=600, n_probe_test=600, steps=40,
                          batch_size=64, lr=2e-3, warmup=0.1, tau=0.1, widths=(8, 16, 32), hidden=64,
                          text_embed=16, text_channels=32, grad_clip=5.0, probe_steps=100, seeds=1,
                          mpi3d_train=2000),
        ImageTextSettings("cpu", n_train=20000, n_probe_train=4000, n_probe_test=4000, steps=1200,
                          batch_size=128, lr=2e-3, warmup=0.05, tau=0.1, widths=(16, 32, 64),
                          hidden=128, text_embed=32, text_channels=64, grad_clip=5.0, probe_steps=600,
                          seeds=1, mpi3d_train=20000),
        ImageTextSettings("gpu", n_train=80000, n_probe_train=10000, n_probe_test=10000, steps=10000,
                          batch_size=256, lr=1e-3, warmup=0.05, tau=0.1, widths=(32, 64, 128),
                          hidden=256, text_embed=64, text_channels=128, grad_clip=5.0,
                          probe_steps=2000, seeds=3, mpi3d_train=44720),
        ImageTextSettings("paper", n_train=80000, n_probe_train=10000, n_probe_test=10000,
                          steps=100_000, batch_size=256, lr=1e-5, warmup=0.0, tau=1.0,
                          widths=(64, 128, 256), hidden=512, text_embed=128, text_channels=256,
                          grad_clip=5.0, probe_steps=5000, seeds=3, mpi3d_train=44720),
    )
}


def image_text_settings(name: str | None = None) -> ImageTextSettings:
    """The image-text sizes of a profile: ``name``, else the active profile (``MMCL_PROFILE``)."""
    key = active_profile(name).name
    return IMAGE_TEXT_PROFILES[key]


def image_text_table() -> pd.DataFrame:
    """All image-text sizes side by side, one column per profile (the table the chapter prints)."""
    return pd.DataFrame({n: asdict(s) for n, s in IMAGE_TEXT_PROFILES.items()}).drop(index="name")


#: The paper's encoding sizes for the scenes, by the number of unbiased semantics (App. E); settings
#: with 1..7 unbiased factors get 3, 3, 4, 5, 5, 6, 7 dimensions.
SCENE_ENCODING_SIZES: dict[int, int] = {1: 3, 2: 3, 3: 4, 4: 5, 5: 5, 6: 6, 7: 7}


def scene_encoding_size(bias: CaptionBias) -> int:
    """Encoding size of a scene setting: :data:`SCENE_ENCODING_SIZES` of its unbiased count."""
    return SCENE_ENCODING_SIZES[len(bias.unbiased)]


# ----------------------------------------------------------------------------------------------
# Training


@dataclass
class PairEncoders:
    """A trained image encoder f_x and text encoder f_t.

    Attributes:
        f_x: :class:`ImageEncoder`; f_t: :class:`TextEncoder`.
        vocab: word -> token id used to encode the captions.
        max_len: tokens kept per caption.
        history: training loss per step, shape (steps,).
        seconds: wall-clock training time.
    """

    f_x: ImageEncoder
    f_t: TextEncoder
    vocab: dict[str, int]
    max_len: int
    history: np.ndarray
    seconds: float


def train_pair_encoders(
    images: np.ndarray,
    captions: Sequence[str],
    out_dim: int,
    settings: ImageTextSettings,
    seed: int = 0,
    device: str | None = None,
    progress: bool | None = None,
    desc: str = "MMCL",
) -> PairEncoders:
    """Train f_x and f_t with symmetric InfoNCE (cosine similarity) on fixed image-caption pairs.

    Each epoch visits the pairs in a fresh random order (seeded), so a run is reproducible
    bit for bit on the same machine and thread count.

    Args:
        images: uint8 images, shape (N, 64, 64, 3).
        captions: N captions (pair i is ``images[i]``, ``captions[i]``).
        out_dim: encoding size of both encoders.
        settings: steps, batch size, learning rate, temperature, widths (see
            :class:`ImageTextSettings`).
        seed: seeds initialisation and batch order.
        device: ``"cuda"``/``"cpu"``; default CUDA when available.
        progress: tqdm bar; default on unless ``MMCL_PROGRESS=0``.
        desc: the bar's label.

    Returns:
        :class:`PairEncoders` (in eval mode).

    Raises:
        NonFiniteLossError: the loss became NaN or infinite.
    """
    if len(images) != len(captions) or len(images) < 2:
        raise ValueError(f"need at least 2 pairs and one caption per image, got {len(images)} "
                         f"images and {len(captions)} captions.")
    device = device or default_device()
    progress = show_progress() if progress is None else progress
    vocab = build_vocab(captions)
    max_len = max(1, max(len(tokenize(t)) for t in captions))
    tokens = encode_captions(list(captions), vocab, max_len)
    pixels = torch.from_numpy(np.ascontiguousarray(images))
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    f_x = ImageEncoder(out_dim, settings.widths, settings.hidden).to(device).train()
    f_t = TextEncoder(len(vocab), out_dim, settings.text_embed, settings.text_channels,
                      settings.hidden).to(device).train()
    params = list(f_x.parameters()) + list(f_t.parameters())
    opt = torch.optim.Adam(params, lr=settings.lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_lambda(s, settings.steps, settings.warmup)
    )
    n, b = len(images), min(settings.batch_size, len(images))
    order, pos = torch.randperm(n, generator=gen), 0
    history = np.zeros(settings.steps, dtype=np.float32)
    start = time.perf_counter()
    bar = tqdm(range(settings.steps), desc=desc, disable=not progress, mininterval=1.0)
    for step in bar:
        if pos + b > n:
            order, pos = torch.randperm(n, generator=gen), 0
        idx = order[pos : pos + b]
        pos += b
        z_x = f_x(pixels[idx].to(device))
        z_t = f_t(tokens[idx].to(device))
        loss = info_nce(z_x, z_t, "cosine", settings.tau)
        if not torch.isfinite(loss):
            raise NonFiniteLossError(
                f"the InfoNCE loss became {float(loss.detach())} at step {step} ({desc}). Allowed are finite "
                f"values only; try a lower learning rate (now {settings.lr}) or a higher "
                f"temperature (now {settings.tau})."
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
        opt.step()
        sched.step()
        history[step] = float(loss.detach())
        if progress and step % 50 == 0:
            bar.set_postfix(loss=f"{history[step]:.3f}")
    bar.close()
    return PairEncoders(f_x.eval(), f_t.eval(), vocab, max_len, history, time.perf_counter() - start)


@torch.no_grad()
def encode_pairs(
    model: PairEncoders,
    images: np.ndarray,
    captions: Sequence[str],
    batch: int = 500,
    unit: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Representations of held-out pairs.

    By default each representation is scaled to unit length. The loss compares the two encoders
    by cosine similarity, so it sees only the direction of an output; its length is a free
    channel the loss neither uses nor clears, and a probe reading the raw output also reads
    whatever the untrained network happened to put there (chapter 5 measures this with
    :func:`norm_channel_table`).

    Args:
        model: trained encoders.
        images: uint8 images (N, 64, 64, 3) (a memory map is read batch by batch).
        captions: N captions (words unseen in training become ``<unk>``).
        batch: images encoded at a time.
        unit: return unit vectors (what the loss sees); ``False`` gives the raw outputs.

    Returns:
        ``(z_hat_x, z_hat_t)``, float32 CPU tensors of shape (N, encoding size).
    """
    dev = next(model.f_x.parameters()).device
    model.f_x.eval()
    model.f_t.eval()
    tokens = encode_captions(list(captions), model.vocab, model.max_len)
    zx, zt = [], []
    for lo in range(0, len(images), batch):
        part = torch.from_numpy(np.ascontiguousarray(images[lo : lo + batch]))
        zx.append(model.f_x(part.to(dev)).float().cpu())
        zt.append(model.f_t(tokens[lo : lo + batch].to(dev)).float().cpu())
    z_x, z_t = torch.cat(zx), torch.cat(zt)
    if unit:
        z_x, z_t = F.normalize(z_x, dim=1), F.normalize(z_t, dim=1)
    return z_x, z_t


# ----------------------------------------------------------------------------------------------
# Probing


@dataclass(frozen=True)
class FactorSpec:
    """A factor to probe for.

    Attributes:
        name: factor name (e.g. ``shape``, ``color``, ``rotation``, ``template``).
        train, test: its values on the probe-training and probe-test pairs, shape (N,) each.
        classes: number of classes of a discrete factor (scored by MCC); 0 for a continuous one
            (scored by R^2).
        encoders: which representations to probe (``"x"``, ``"t"``).
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    classes: int = 0
    encoders: tuple[str, ...] = ("x", "t")


def _pad(zs: Sequence[torch.Tensor]) -> tuple[torch.Tensor, list[int]]:
    width = max(z.shape[-1] for z in zs)
    dims = [z.shape[-1] for z in zs]
    return torch.stack([torch.nn.functional.pad(z, (0, width - z.shape[-1])) for z in zs]), dims


def probe_representations(
    reps: Mapping[tuple[str, str], tuple[torch.Tensor, torch.Tensor]],
    factors: Sequence[FactorSpec],
    probe_steps: int,
    seed: int = 1000,
    linear: bool = True,
) -> pd.DataFrame:
    """Score how well each factor can be read off each representation.

    All MLP probes of a call train together as one ensemble (one member per representation and
    discrete factor, one per representation for all continuous factors).

    Args:
        reps: ``(model key, encoder)`` -> ``(z_train, z_test)``, shapes (N_train, K) and
            (N_test, K); K may differ between representations.
        factors: what to probe for.
        probe_steps: Adam steps of the MLP probes.
        seed: probe seed (keep it different from the training seed).
        linear: also fit the linear probes (logistic / linear regression).

    Returns:
        tidy frame with columns key, encoder, factor, probe (``mlp``/``linear``), metric
        (``MCC``/``R2``), score. MCC lies in [-1, 1], R^2 is clipped to [0, 1].
    """
    rows: list[dict] = []
    keys = list(reps)
    discrete = [f for f in factors if f.classes > 0]
    continuous = [f for f in factors if f.classes == 0]
    # Discrete factors: one MLP classifier per (representation, factor).
    members = [(k, f) for k in keys for f in discrete if k[1] in f.encoders]
    if members:
        z_tr, dims = _pad([reps[k][0] for k, _ in members])
        z_te, _ = _pad([reps[k][1] for k, _ in members])
        y_tr = torch.stack([torch.as_tensor(np.asarray(f.train), dtype=torch.long) for _, f in members])
        predict = mlp_classifier(z_tr, y_tr, steps=probe_steps, seed=seed, in_dims=dims)
        pred = predict(z_te)
        for m, (k, f) in enumerate(members):
            score = float(matthews_corrcoef(np.asarray(f.test).astype(int), pred[m]))
            rows.append(dict(key=k[0], encoder=k[1], factor=f.name, probe="mlp", metric="MCC",
                             score=score))
            if linear:
                z_a, z_b = reps[k]
                score = linear_mcc(z_a, torch.as_tensor(np.asarray(f.train)), z_b,
                                   torch.as_tensor(np.asarray(f.test)))
                rows.append(dict(key=k[0], encoder=k[1], factor=f.name, probe="linear",
                                 metric="MCC", score=score))
    # Continuous factors: one MLP regression per representation for all of its factors.
    for enc in ("x", "t"):
        cols = [f for f in continuous if enc in f.encoders]
        ks = [k for k in keys if k[1] == enc]
        if not cols or not ks:
            continue
        y_tr = torch.as_tensor(np.stack([np.asarray(f.train, dtype=np.float64) for f in cols], 1))
        y_te = torch.as_tensor(np.stack([np.asarray(f.test, dtype=np.float64) for f in cols], 1))
        blocks = [slice(j, j + 1) for j in range(len(cols))]
        z_tr, dims = _pad([reps[k][0] for k in ks])
        z_te, _ = _pad([reps[k][1] for k in ks])
        scores = mlp_r2(z_tr, y_tr, z_te, y_te, blocks, steps=probe_steps, seed=seed, in_dims=dims)
        lin = linear_r2(z_tr, y_tr, z_te, y_te, blocks) if linear else None
        for m, k in enumerate(ks):
            for j, f in enumerate(cols):
                rows.append(dict(key=k[0], encoder=enc, factor=f.name, probe="mlp", metric="R2",
                                 score=float(scores[m, j])))
                if lin is not None:
                    rows.append(dict(key=k[0], encoder=enc, factor=f.name, probe="linear",
                                     metric="R2", score=float(lin[m, j])))
    return pd.DataFrame(rows, columns=["key", "encoder", "factor", "probe", "metric", "score"])


# ----------------------------------------------------------------------------------------------
# Sweeps


@dataclass
class ImageTextRun:
    """Scores and trained encoders of a sweep.

    Attributes:
        scores: tidy frame, columns dataset, sweep, column (1-based position in the sweep),
            setting (label), selected, perturbed, encoder (x/t), factor, role (unbiased, omitted,
            perturbed, image-specific, text-specific), probe (mlp/linear), metric (MCC/R2),
            score, seed.
        models: ``(setting key, seed)`` -> :class:`PairEncoders`.
        seconds: wall-clock time of each part (``render``, ``train``, ``probe``).
        config: the run's full configuration (saved by :meth:`save`).
        probe_data: the held-out splits, settings and factor classes, for re-probing the models
            (:func:`norm_channel_table`); not saved.
    """

    scores: pd.DataFrame
    models: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    # What re-probing needs (held-out splits, biases, classes); kept in memory, never saved.
    probe_data: dict = field(default_factory=dict, repr=False)

    def save(self, directory: str | Path) -> Path:
        """Write ``config.json`` and ``scores.csv`` into ``directory``; returns the directory."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(self.config, indent=2, default=str))
        self.scores.to_csv(out / "scores.csv", index=False)
        return out


@dataclass
class _Split:
    """Images, per-factor labels, and a caption function of one data split."""

    images: np.ndarray
    labels: dict[str, np.ndarray]
    caption: Callable[[CaptionBias, int], CaptionBatch]


def _bias_key(bias: CaptionBias) -> tuple:
    return (tuple(sorted(bias.selected)), tuple(sorted(bias.perturbed)), bias.p_perturb)


def _role(bias: CaptionBias, factor: str, semantics: Sequence[str]) -> str:
    if factor == "template":
        return "text-specific"
    if factor not in semantics:
        return "image-specific"
    return bias.role(list(semantics).index(factor) + 1)


def _encode_held_out(model: PairEncoders, key: tuple, bias: CaptionBias, seed: int,
                     splits: Mapping[str, _Split], reps: dict, phrasings: dict,
                     unit: bool = True) -> None:
    """Encode both held-out splits of one setting into ``reps`` and ``phrasings`` (in place)."""
    zs = {}
    for part in ("probe_train", "probe_test"):
        caps = splits[part].caption(bias, seed)
        zs[part] = encode_pairs(model, splits[part].images, caps.text, unit=unit)
        phrasings[(key, part)] = caps.phrasing
    reps[(key, "x")] = (zs["probe_train"][0], zs["probe_test"][0])
    reps[(key, "t")] = (zs["probe_train"][1], zs["probe_test"][1])


def _probe_held_out(reps: Mapping, phrasings: Mapping, keys: Sequence[tuple],
                    splits: Mapping[str, _Split], classes: Mapping[str, int], probe_steps: int,
                    seed: int, linear: bool = True) -> pd.DataFrame:
    """Probe every labelled factor, and each setting's caption template, from ``reps``."""
    specs = [FactorSpec(name, splits["probe_train"].labels[name], splits["probe_test"].labels[name],
                        classes.get(name, 0)) for name in splits["probe_train"].labels]
    frames = [probe_representations(reps, specs, probe_steps, seed=seed, linear=linear)]
    # The template is probed per setting (its captions' template draws are the labels).
    for key in keys:
        tr, te = phrasings[(key, "probe_train")], phrasings[(key, "probe_test")]
        spec = FactorSpec("template", tr, te, int(max(tr.max(), te.max())) + 1, encoders=("t",))
        frames.append(probe_representations({(key, "t"): reps[(key, "t")]}, [spec], probe_steps,
                                            seed=seed, linear=linear))
    return pd.concat(frames, ignore_index=True)


def run_sweeps(
    sweeps: Mapping[str, Mapping[str, CaptionBias]],
    splits: Mapping[str, _Split],
    semantics: Sequence[str],
    classes: Mapping[str, int],
    encoding_size: Callable[[CaptionBias], int],
    settings: ImageTextSettings,
    seed: int = 0,
    dataset: str = "",
    device: str | None = None,
    progress: bool | None = None,
) -> ImageTextRun:
    """Train and probe one pair of encoders per distinct setting of some sweeps.

    A setting that occurs in two sweeps (e.g. "everything selected" and "nothing perturbed") is
    trained once and reported in both.

    Args:
        sweeps: sweep name -> (setting label -> bias), in column order.
        splits: ``train``, ``probe_train`` and ``probe_test`` data.
        semantics: the dataset's semantic factors, in order.
        classes: number of classes of every discrete factor (semantic or image-specific); the
            factors of ``splits[...].labels`` not listed here are continuous.
        encoding_size: output size of the encoders of a setting.
        settings: sizes (see :data:`IMAGE_TEXT_PROFILES`).
        seed: first training seed (``settings.seeds`` seeds run); probes use ``seed + 1000``.
        dataset: name written into the scores.
        device, progress: as in :func:`train_pair_encoders`.

    Returns:
        :class:`ImageTextRun`.
    """
    distinct: dict[tuple, CaptionBias] = {}
    for sweep in sweeps.values():
        for bias in sweep.values():
            distinct.setdefault(_bias_key(bias), bias)
    seeds = list(range(seed, seed + settings.seeds))
    models, frames = {}, []
    t_train = t_probe = 0.0
    for s in seeds:
        reps, phrasings = {}, {}
        for key, bias in distinct.items():
            label = format_factor_set(bias.selected, semantics)
            if bias.perturbed:
                label += " / pert " + format_factor_set(bias.perturbed, semantics)
            t0 = time.perf_counter()
            train_caps = splits["train"].caption(bias, s)
            model = train_pair_encoders(splits["train"].images, train_caps.text, encoding_size(bias),
                                        settings, seed=s, device=device, progress=progress,
                                        desc=f"{dataset} {label}".strip())
            t1 = time.perf_counter()
            t_train += t1 - t0
            models[(key, s)] = model
            _encode_held_out(model, key, bias, s, splits, reps, phrasings)
            t_probe += time.perf_counter() - t1
        t0 = time.perf_counter()
        scores = _probe_held_out(reps, phrasings, list(distinct), splits, classes,
                                 settings.probe_steps, seed=s + 1000)
        t_probe += time.perf_counter() - t0
        for sweep_name, sweep in sweeps.items():
            for col, (label, bias) in enumerate(sweep.items(), start=1):
                part = scores[scores["key"] == _bias_key(bias)].drop(columns="key").copy()
                part.insert(0, "dataset", dataset)
                part.insert(1, "sweep", sweep_name)
                part.insert(2, "column", col)
                part.insert(3, "setting", label)
                part.insert(4, "selected", format_factor_set(bias.selected, semantics))
                part.insert(5, "perturbed", format_factor_set(bias.perturbed, semantics))
                part.insert(7, "role", [_role(bias, f, semantics) for f in part["factor"]])
                part["seed"] = s
                frames.append(part)
    table = pd.concat(frames, ignore_index=True)
    config = {
        "dataset": dataset,
        "settings": asdict(settings),
        "seeds": seeds,
        "probe_seed_offset": 1000,
        "device": device or default_device(),
        "sweeps": {name: {label: {"selected": sorted(b.selected), "perturbed": sorted(b.perturbed),
                                  "p_perturb": b.p_perturb, "encoding_size": encoding_size(b)}
                          for label, b in sweep.items()} for name, sweep in sweeps.items()},
        "distinct_models": len(distinct),
    }
    seconds = {"train": round(t_train, 1), "probe": round(t_probe, 1)}
    probe_data = {"splits": {p: splits[p] for p in ("probe_train", "probe_test")},
                  "sweeps": sweeps, "semantics": list(semantics), "classes": dict(classes),
                  "probe_steps": settings.probe_steps}
    return ImageTextRun(table, models, seconds, config, probe_data)


def run_scene_sweeps(
    settings: ImageTextSettings | None = None,
    seed: int = 0,
    sweeps: Sequence[str] = ("selection", "perturbation"),
    device: str | None = None,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
) -> ImageTextRun:
    """The selection and perturbation sweeps on the rendered scenes (the paper's Fig. 6 and 16).

    Renders (or loads from the cache) ``n_train + n_probe_train + n_probe_test`` scenes of
    dataset seed ``seed``; captions are drawn per setting with caption seed = training seed.

    Args:
        settings: sizes; default :func:`image_text_settings` of the active profile.
        seed: data seed and first training seed.
        sweeps: which of ``selection`` (7 settings) and ``perturbation`` (7 settings, most
            perturbed first) to run.
        device, progress: as in :func:`train_pair_encoders`.
        cache_dir: render cache folder (see :func:`~mmcl_helpers.datasets.scenes.load_or_render`).

    Returns:
        :class:`ImageTextRun`; its factors are the 7 semantics, the 5 image-specific factors of
        :data:`~mmcl_helpers.datasets.scenes.IMAGE_FACTORS` and ``template``.
    """
    settings = settings or image_text_settings()
    known = {"selection": selection_settings(), "perturbation": perturbation_settings()}
    unknown = sorted(set(sweeps) - set(known))
    if unknown:
        raise ValueError(f"unknown sweep(s) {unknown}; allowed are {sorted(known)}.")
    t0 = time.perf_counter()
    sizes = {"train": settings.n_train, "probe_train": settings.n_probe_train,
             "probe_test": settings.n_probe_test}
    splits, start = {}, 0
    for part, n in sizes.items():
        latents, images = load_or_render(n, seed=seed, start=start, cache_dir=cache_dir)
        start += n
        labels = {name: getattr(latents, name) for name in SEMANTIC_FACTORS + IMAGE_FACTORS}
        splits[part] = _Split(images, labels,
                              lambda bias, s, lat=latents: scene_captions(lat, bias, seed=s))
    render = time.perf_counter() - t0
    run = run_sweeps({name: known[name] for name in sweeps}, splits, SEMANTIC_FACTORS,
                     DISCRETE_FACTORS, scene_encoding_size, settings, seed, "scenes", device, progress)
    run.seconds = {"render": round(render, 1), **run.seconds}
    run.config["data_seed"] = seed
    return run


def norm_channel_table(run: ImageTextRun, settings: Sequence[str],
                       sweep: str = "selection") -> pd.DataFrame:
    """What the length of the raw outputs carries, for some settings of a run.

    The cosine loss sees only the direction of each output. This re-encodes the run's held-out
    pairs three ways and probes every factor with the MLP probes of the sweep: the raw output,
    the unit vector (what the book probes everywhere else) and the length alone (one number).

    Args:
        run: a run of :func:`run_sweeps` (or of a dataset's wrapper) from this session, with its
            models and ``probe_data``.
        settings: setting labels of ``sweep`` to probe, e.g. ``["{shape}"]``.
        sweep: the sweep those labels belong to.

    Returns:
        frame indexed by setting, encoder, factor and role, with the columns ``raw output``,
        ``unit vector`` and ``length only`` (MCC for discrete factors, R^2 for continuous ones;
        means over the run's seeds).

    Raises:
        ValueError: the run has no models or held-out data (e.g. it was loaded from disk), or a
            sweep or setting label is not in it.
    """
    data = run.probe_data
    if not run.models or not data:
        raise ValueError("this run has no trained models or held-out data to re-probe; "
                         "norm_channel_table needs a run made in this session.")
    if sweep not in data["sweeps"]:
        raise ValueError(f"sweep {sweep!r} is not in this run; it has {sorted(data['sweeps'])}.")
    known = data["sweeps"][sweep]
    missing = [lab for lab in settings if lab not in known]
    if missing:
        raise ValueError(f"setting(s) {missing} are not in the {sweep} sweep; allowed: "
                         f"{list(known)}.")
    modes = {"raw output": lambda z: z, "unit vector": lambda z: F.normalize(z, dim=1),
             "length only": lambda z: z.norm(dim=1, keepdim=True)}
    frames = []
    for seed in run.config["seeds"]:
        for label in settings:
            bias = known[label]
            key = _bias_key(bias)
            raw, phrasings = {}, {}
            _encode_held_out(run.models[(key, seed)], key, bias, seed, data["splits"], raw,
                             phrasings, unit=False)
            for mode, fn in modes.items():
                reps = {k: (fn(a), fn(b)) for k, (a, b) in raw.items()}
                sc = _probe_held_out(reps, phrasings, [key], data["splits"], data["classes"],
                                     data["probe_steps"], seed=seed + 1000, linear=False)
                sc["setting"], sc["mode"], sc["seed"] = label, mode, seed
                sc["role"] = [_role(bias, f, data["semantics"]) for f in sc["factor"]]
                frames.append(sc)
    table = pd.concat(frames, ignore_index=True)
    out = table.pivot_table(index=["setting", "encoder", "factor", "role"], columns="mode",
                            values="score", aggfunc="mean", sort=False)[list(modes)]
    out.columns.name = None
    return out


def run_mpi3d_sweeps(
    path: str | Path | None = None,
    settings: ImageTextSettings | None = None,
    seed: int = 0,
    sweeps: Sequence[str] = ("selection", "perturbation"),
    sizes: Sequence[int] | None = None,
    device: str | None = None,
    progress: bool | None = None,
) -> ImageTextRun:
    """The MPI3D-complex sweeps (the paper's Fig. 5): same training and probes as the scenes.

    Uses the paper's train/eval/test split (:func:`~mmcl_helpers.datasets.mpi3d.mpi3d_splits`):
    up to ``settings.mpi3d_train`` training images, probes fitted on the eval split (at most
    ``n_probe_train`` images) and scored on the test split (at most ``n_probe_test``).

    Args:
        path: the file; default :func:`~mmcl_helpers.datasets.mpi3d.find_mpi3d`.
        settings: sizes; default of the active profile.
        seed: split seed and first training seed.
        sweeps: ``selection`` (5 settings) and/or ``perturbation`` (5 settings, from ∅ to the
            most perturbed, as the paper numbers them).
        sizes: factor sizes (the real ones by default; the tests pass a tiny synthetic layout).
        device, progress: as in :func:`train_pair_encoders`.

    Returns:
        :class:`ImageTextRun` with every factor discrete (scored by MCC); ``hori`` and ``vert``
        are image-specific.

    Raises:
        MPI3DNotFoundError: no file (the message says how to get it).
    """
    from .datasets import mpi3d

    settings = settings or image_text_settings()
    sizes = tuple(sizes) if sizes is not None else mpi3d.MPI3D_SIZES
    known = {"selection": mpi3d.mpi3d_selection_settings(),
             "perturbation": mpi3d.mpi3d_perturbation_settings()}
    unknown = sorted(set(sweeps) - set(known))
    if unknown:
        raise ValueError(f"unknown sweep(s) {unknown}; allowed are {sorted(known)}.")
    t0 = time.perf_counter()
    images = mpi3d.load_mpi3d_images(path, sizes)
    split_idx = mpi3d.mpi3d_splits(seed, sizes)
    rng = np.random.default_rng(seed)
    caps = {"train": settings.mpi3d_train, "eval": settings.n_probe_train, "test": settings.n_probe_test}
    splits = {}
    for part, name in (("train", "train"), ("probe_train", "eval"), ("probe_test", "test")):
        idx = split_idx[name]
        if len(idx) > caps[name]:
            idx = np.sort(rng.choice(idx, caps[name], replace=False))
        labels_arr = mpi3d.mpi3d_factors(idx, sizes)
        labels = {f: labels_arr[:, k] for k, f in enumerate(mpi3d.MPI3D_FACTORS)}
        splits[part] = _Split(np.asarray(images[idx]), labels,
                              lambda bias, s, i=idx: mpi3d.mpi3d_captions(i, bias, seed=s, sizes=sizes))
    load = time.perf_counter() - t0
    classes = dict(zip(mpi3d.MPI3D_FACTORS, sizes))
    run = run_sweeps({name: known[name] for name in sweeps}, splits, mpi3d.MPI3D_SEMANTICS, classes,
                     lambda b: max(3, len(b.unbiased)), settings, seed, "mpi3d", device, progress)
    run.seconds = {"load": round(load, 1), **run.seconds}
    return run


# ----------------------------------------------------------------------------------------------
# Tables, checks and the comparison with the paper


def scene_score_grid(
    scores: pd.DataFrame, sweep: str, encoder: str = "x", probe: str = "mlp",
    factors: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Mean score over seeds as a factor x setting grid (rows labelled ``factor (metric)``).

    Args:
        scores: :attr:`ImageTextRun.scores`.
        sweep: ``selection`` or ``perturbation``.
        encoder, probe: which representation and probe.
        factors: row order (default: image-specific factors, then semantics, then ``template``,
            as they occur in ``scores``).
    """
    df = scores[(scores["sweep"] == sweep) & (scores["encoder"] == encoder) & (scores["probe"] == probe)]
    if df.empty:
        raise ValueError(f"no scores for sweep={sweep!r}, encoder={encoder!r}, probe={probe!r}.")
    if factors is None:
        present = list(dict.fromkeys(df["factor"]))
        roles = dict(zip(df["factor"], df["role"]))
        factors = ([f for f in present if roles[f] == "image-specific"]
                   + [f for f in present if roles[f] not in ("image-specific", "text-specific")]
                   + [f for f in present if roles[f] == "text-specific"])
    metric = dict(zip(df["factor"], df["metric"]))
    columns = list(dict.fromkeys(df.sort_values("column")["setting"]))
    grid = df.pivot_table(index="factor", columns="setting", values="score", aggfunc="mean")
    grid = grid.loc[[f for f in factors if f in grid.index], columns]
    grid.index = [f"{f} ({'R²' if metric[f] == 'R2' else 'MCC'})" for f in grid.index]
    grid.columns.name = None
    return grid


def sweep_heatmaps(
    scores: pd.DataFrame, encoder: str = "x", probe: str = "mlp", title: str = "",
    sweeps: Sequence[str] = ("selection", "perturbation"),
):
    """The two sweeps as stacked factor x setting heatmaps, laid out like the paper's Fig. 6 / 16.

    Args:
        scores: :attr:`ImageTextRun.scores`.
        encoder: ``"x"`` (Fig. 6) or ``"t"`` (Fig. 16).
        probe: ``"mlp"`` (the paper's figures) or ``"linear"``.
        title: figure title.
        sweeps: the panels, top to bottom.

    Returns:
        the matplotlib figure (one colour bar per panel, scale 0..1).
    """
    import matplotlib.pyplot as plt

    from .plots import score_heatmap

    xlabels = {"selection": "selected semantics (nothing perturbed)",
               "perturbation": "perturbed semantics (everything selected)"}
    grids = [scene_score_grid(scores, s, encoder, probe) for s in sweeps]
    rows = max(g.shape[0] for g in grids)
    width = max(g.shape[1] for g in grids)
    fig, axes = plt.subplots(len(grids), 1, figsize=(0.95 * width + 3.2, len(grids) * (0.36 * rows + 2.1)),
                             squeeze=False, constrained_layout=True)
    for ax, sweep, grid in zip(axes[:, 0], sweeps, grids):
        score_heatmap(grid, ax, f"{sweep} sweep, ẑ_{encoder}, {probe} probe", xlabels.get(sweep, sweep),
                      metric="MCC / R²")
        ax.tick_params(axis="x", rotation=30)
    if title:
        fig.suptitle(title)
    return fig


def image_text_checks(
    scores: pd.DataFrame,
    discrete: Sequence[str] = ("shape", "x_pos", "y_pos"),
    learned_bar: float = 0.8,
    discarded_bar: float = 0.2,
    image_bar: float = 0.1,
    template_bar: float = 0.1,
    probe: str = "mlp",
) -> pd.DataFrame:
    """The chapter's measured bars, each with its worst cell.

    Checks (all with the given probe, mean over seeds):

    1. every discrete factor of ``discrete`` has MCC >= ``learned_bar`` from ẑ_x wherever it is
       selected and not perturbed;
    2. ... MCC <= ``discarded_bar`` from ẑ_x wherever it is omitted or perturbed;
    3. every image-specific factor has R^2 (or MCC) <= ``image_bar`` from ẑ_x and ẑ_t everywhere;
    4. the caption template has MCC <= ``template_bar`` from ẑ_t everywhere.

    Returns:
        one row per check: check, bar, worst (value), where (setting and factor of the worst
        cell), met (bool).
    """
    df = scores[scores["probe"] == probe]
    keys = ["sweep", "setting", "encoder", "factor", "role"]
    df = df.groupby(keys, sort=False)["score"].mean().reset_index()
    disc = df[df["factor"].isin(discrete) & (df["encoder"] == "x")]
    checks = [
        (f"{', '.join(discrete)} from ẑ_x when selected and unperturbed: MCC >= {learned_bar}",
         disc[disc["role"] == "unbiased"], "min", learned_bar),
        (f"{', '.join(discrete)} from ẑ_x when omitted or perturbed: MCC <= {discarded_bar}",
         disc[disc["role"].isin(["omitted", "perturbed"])], "max", discarded_bar),
        (f"image-specific factors from ẑ_x and ẑ_t: score <= {image_bar}",
         df[df["role"] == "image-specific"], "max", image_bar),
        (f"caption template from ẑ_t: MCC <= {template_bar}",
         df[(df["role"] == "text-specific") & (df["encoder"] == "t")], "max", template_bar),
    ]
    rows = []
    for name, part, how, bar in checks:
        if part.empty:
            rows.append(dict(check=name, bar=bar, worst=math.nan, where="(no cells)", met=False))
            continue
        i = part["score"].idxmin() if how == "min" else part["score"].idxmax()
        worst = float(part.loc[i, "score"])
        cell = part.loc[i]
        where = f"{cell['sweep']} {cell['setting']}, {cell['factor']} (ẑ_{cell['encoder']})"
        met = worst >= bar if how == "min" else worst <= bar
        rows.append(dict(check=name, bar=bar, worst=round(worst, 3), where=where, met=bool(met)))
    return pd.DataFrame(rows)


#: The paper's rotations alpha, beta, gamma are compared with the largest image-specific score here.
_PAPER_IMAGE_FACTORS = ("alpha", "beta", "gamma")


def compare_to_paper_figure(
    scores: pd.DataFrame, figure: str, profile: str, encoder: str = "x", probe: str = "mlp"
) -> pd.DataFrame:
    """Every cell of the paper's Fig. 6 (scenes) or Fig. 5 (MPI3D) next to this run's mean.

    Columns are matched by position (c1 = first setting of the sweep, as the paper prints them).
    Fig. 6's rotations (alpha, beta, gamma, all 0 in the paper) are set beside the largest score of
    this run's image-specific factors, under the name ``m_x (max)``.

    Args:
        scores: :attr:`ImageTextRun.scores`.
        figure: ``"fig6"`` or ``"fig5"``.
        profile: the profile name of the run.
        encoder, probe: which of this run's scores to compare (the paper's figures are nonlinear).

    Returns:
        columns panel, factor, column, setting, paper, ours, difference, profile.
    """
    from .paper import figure_values

    paper = figure_values(figure)
    if figure == "fig6":
        if encoder != "x":
            raise ValueError("Fig. 6 shows ẑ_x only.")
        panel_of = {"selection": "selection", "perturbation": "perturbation"}
    elif figure == "fig5":
        panel_of = {"selection": f"selection_z{encoder}", "perturbation": f"perturbation_z{encoder}"}
    else:
        raise ValueError(f"figure must be 'fig6' or 'fig5', got {figure!r}.")
    df = scores[(scores["encoder"] == encoder) & (scores["probe"] == probe)].copy()
    df = df[df["sweep"].isin(panel_of)]
    df["panel"] = df["sweep"].map(panel_of)
    if figure == "fig5":
        # Fig. 5 prints its perturbation panel from the most perturbed setting to ∅.
        last = df.loc[df["sweep"] == "perturbation", "column"].max()
        pert = df["sweep"] == "perturbation"
        df.loc[pert, "column"] = last + 1 - df.loc[pert, "column"]
    df["column"] = "c" + df["column"].astype(str)
    mx = df["role"] == "image-specific"
    if figure == "fig6":
        df.loc[mx, "factor"] = "m_x (max)"
    grouped = df.groupby(["panel", "factor", "column", "setting", "seed"], sort=False)["score"]
    per_seed = grouped.max().reset_index()
    ours = per_seed.groupby(["panel", "factor", "column", "setting"], sort=False)["score"].mean()
    ours = ours.rename("ours").reset_index()
    paper = paper.copy()
    if figure == "fig6":
        paper = paper[paper["factor"].isin(_PAPER_IMAGE_FACTORS)].groupby(
            ["panel", "column"], sort=False)["value"].max().reset_index().assign(factor="m_x (max)").pipe(
            lambda m: pd.concat([m, paper[~paper["factor"].isin(_PAPER_IMAGE_FACTORS)]], ignore_index=True))
    paper = paper.rename(columns={"value": "paper"})
    merged = paper.merge(ours, on=["panel", "factor", "column"], how="inner")
    merged["difference"] = merged["ours"] - merged["paper"]
    merged["profile"] = profile
    return merged[["panel", "factor", "column", "setting", "paper", "ours", "difference", "profile"]]
