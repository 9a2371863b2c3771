"""Training and encoding the image-text models: f_x (images) and f_t (captions) on fixed pairs.

:func:`train_pair_encoders` trains one :class:`~mmcl_helpers.image_encoders.ImageEncoder` and one
:class:`~mmcl_helpers.image_encoders.TextEncoder` with symmetric InfoNCE (cosine similarity) in
the package's one training loop (:func:`~mmcl_helpers.training.adam_loop`);
:func:`encode_pairs` turns held-out pairs into representations for the probes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import validation as v
from .datasets.captions import build_vocab, encode_captions, tokenize
from .image_encoders import ImageEncoder, TextEncoder
from .losses import info_nce
from .profiles import ImageTextProfile
from .training import adam_loop, show_progress

__all__ = ["PairEncoders", "train_pair_encoders", "encode_pairs"]


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
    profile: ImageTextProfile,
    seed: int = 0,
    device: str | None = None,
    progress: bool | None = None,
    desc: str = "MMCL",
    check_every: int = 50,
    data_on_device: bool = True,
) -> PairEncoders:
    """Train f_x and f_t with symmetric InfoNCE (cosine similarity) on fixed image-caption pairs.

    Each epoch visits the pairs in a fresh random order (seeded), so a run is reproducible
    bit for bit on the same machine and thread count.

    Args:
        images: uint8 images, shape (N, 64, 64, 3).
        captions: N captions (pair i is ``images[i]``, ``captions[i]``).
        out_dim: encoding size of both encoders.
        profile: steps, batch size, learning rate, temperature, widths (see
            :class:`~mmcl_helpers.profiles.ImageTextProfile`).
        seed: seeds initialisation and batch order.
        device: ``"cuda"``/``"cpu"``; default CUDA when available.
        progress: tqdm bar; default on unless ``MMCL_PROGRESS=0``.
        desc: the bar's label.
        check_every: steps between NaN/inf checks of the loss (see
            :func:`~mmcl_helpers.training.adam_loop`).
        data_on_device: copy the images and tokens to ``device`` once, before training (the
            default), so a step gathers its batch on the device and moves nothing from the host.
            ``False`` keeps them on the host and copies each batch (two host-to-device copies a
            step), for a device with too little memory for the whole set (N x 12 KiB of images).

    Returns:
        :class:`PairEncoders` (in eval mode).

    Raises:
        NonFiniteLossError: the loss became NaN or infinite.
    """
    v.check_params("train_pair_encoders", out_dim=(out_dim, v.POSITIVE_INT),
                   profile=(profile, v.InstanceOf(ImageTextProfile)), seed=(seed, v.NONNEG_INT),
                   progress=(progress, [v.BOOLEAN, None]), check_every=(check_every, v.POSITIVE_INT),
                   captions=(captions, v.SequenceOf(v.InstanceOf(str))),
                   data_on_device=(data_on_device, v.BOOLEAN))
    if len(images) != len(captions) or len(images) < 2:
        raise ValueError(f"need at least 2 pairs and one caption per image, got {len(images)} "
                         f"images and {len(captions)} captions.")
    if not any(tokenize(t) for t in captions):
        raise ValueError(f"all {len(captions)} captions are empty (no words): the text encoder would "
                         "have nothing to learn from. Check the caption policy or the bias setting.")
    device = v.check_device(device, "train_pair_encoders")
    progress = show_progress() if progress is None else progress
    vocab = build_vocab(captions)
    max_len = max(1, max(len(tokenize(t)) for t in captions))
    tokens = encode_captions(list(captions), vocab, max_len)
    pixels = torch.from_numpy(np.ascontiguousarray(images))
    store = device if data_on_device else "cpu"
    pixels, tokens = pixels.to(store), tokens.to(store)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    f_x = ImageEncoder(out_dim, profile.widths, profile.hidden).to(device).train()
    f_t = TextEncoder(len(vocab), out_dim, profile.text_embed, profile.text_channels,
                      profile.hidden).to(device).train()
    params = list(f_x.parameters()) + list(f_t.parameters())
    n, b = len(images), min(profile.batch_size, len(images))

    def epoch_order() -> torch.Tensor:
        # Drawn on the host (the same batches on every device), moved once an epoch.
        return torch.randperm(n, generator=gen).to(store)

    order, pos = epoch_order(), 0

    def step_loss(step: int) -> torch.Tensor:
        nonlocal order, pos
        if pos + b > n:
            order, pos = epoch_order(), 0
        idx = order[pos : pos + b]
        pos += b
        x, t = pixels[idx], tokens[idx]
        if not data_on_device:  # host-resident pairs: each batch is copied over
            x, t = x.to(device), t.to(device)
        return info_nce(f_x(x), f_t(t), "cosine", profile.tau)

    start = time.perf_counter()
    history = adam_loop(
        params, step_loss, steps=profile.steps, lr=profile.lr, warmup=profile.warmup,
        grad_clip=profile.grad_clip, clip="global", fused=True, check_every=check_every,
        labels=[desc], desc=desc, progress=progress,
        hint=(f"try a lower learning rate (now {profile.lr}) or a higher temperature "
              f"(now {profile.tau})"),
    )[:, 0]
    return PairEncoders(f_x.eval(), f_t.eval(), vocab, max_len, history, time.perf_counter() - start)

@torch.no_grad()
def encode_pairs(
    model: PairEncoders,
    images: np.ndarray,
    captions: Sequence[str],
    batch: int = 500,
    unit: bool = True,
    device: str | torch.device | None = None,
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
        device: where the representations are returned; default the encoders' device, so the
            MLP probes that read them train there too (``"cpu"`` for a host copy).

    Returns:
        ``(z_hat_x, z_hat_t)``, float32 tensors of shape (N, encoding size) on ``device``.
    """
    v.check_params("encode_pairs", batch=(batch, v.POSITIVE_INT), unit=(unit, v.BOOLEAN))
    dev = next(model.f_x.parameters()).device
    out = dev if device is None else torch.device(v.check_device(str(device), "encode_pairs"))
    model.f_x.eval()
    model.f_t.eval()
    tokens = encode_captions(list(captions), model.vocab, model.max_len)
    zx, zt = [], []
    for lo in range(0, len(images), batch):
        part = torch.from_numpy(np.ascontiguousarray(images[lo : lo + batch]))
        zx.append(model.f_x(part.to(dev)).float().to(out))
        zt.append(model.f_t(tokens[lo : lo + batch].to(dev)).float().to(out))
    z_x, z_t = torch.cat(zx), torch.cat(zt)
    if unit:
        z_x, z_t = F.normalize(z_x, dim=1), F.normalize(z_t, dim=1)
    return z_x, z_t
