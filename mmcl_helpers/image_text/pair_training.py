"""Training and encoding the image-text models: f_x (images) and f_t (captions) on fixed pairs.

:func:`train_pair_encoders` trains one :class:`~mmcl_helpers.image_text.image_encoders.ImageEncoder` and one
:class:`~mmcl_helpers.image_text.image_encoders.TextEncoder` with symmetric InfoNCE (cosine similarity) in
the package's one training loop (:func:`~mmcl_helpers.numerical.training.adam_loop`);
:func:`encode_pairs` turns held-out pairs into representations for the probes.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from mmcl_helpers.core import model_store
from mmcl_helpers.core import validation as v
from mmcl_helpers.core.losses import info_nce, text_uniformity
from mmcl_helpers.core.profiles import ImageTextProfile
from mmcl_helpers.datasets.tokens import build_vocab, encode_captions, tokenize
from mmcl_helpers.image_text.image_encoders import ImageEncoder, TextEncoder
from mmcl_helpers.numerical.training import adam_loop, show_progress

__all__ = ["KIND", "PairEncoders", "BatchSampler", "NotLearningWarning", "STUCK_BAND", "MIN_STEPS",
           "loss_stuck_at_chance", "outside_groups", "warmup_exclude", "train_pair_encoders", "encode_pairs"]

#: The model store's folder for the image-text encoders.
KIND = "image_text"


class NotLearningWarning(UserWarning):
    """Training finished with its loss frozen at the chance level: the encoders learned nothing."""


#: Width of the band, as a fraction of ln B, that a frozen loss stays in (see :func:`loss_stuck_at_chance`).
STUCK_BAND = 0.05
#: Steps after the first 10% that a run needs before it is judged.
MIN_STEPS = 10


def loss_stuck_at_chance(history: np.ndarray, batch: int, profile: ImageTextProfile,
                         statements: np.ndarray | None = None) -> str | None:
    """Why a run's loss says it did not learn (``None`` when it moved).

    An encoder pair that learned nothing (collapsed or random outputs) scores InfoNCE's chance
    level: ln B for a batch of B pairs, or, where the captions that state the same as a pair's own
    are masked out of its negatives (``profile.false_negatives == "mask"``), about
    ``sum_k p_k ln(B - (B - 1) p_k)`` for statements of frequencies ``p_k``. The run is reported as
    not learning when, after its first 10% of steps (or after the group warm-up, ``group_warmup``,
    if that is longer), the loss stays within ``STUCK_BAND * ln B``
    of one value in each phase of the loss (before and after ``align_from``, where the alignment
    weight changes) and the first phase sits within 5% of the chance level. Runs of fewer than
    :data:`MIN_STEPS` steps after the first 10% are not judged.

    Args:
        history: loss per step, shape (steps,).
        batch: B, pairs per batch.
        profile: the run's profile (its ``align_from``, ``align_weight``, ``steps``, ``false_negatives``).
        statements: what each training caption states, shape (N,) (used when masking).
    """
    h = np.asarray(history, dtype=float)
    chance, skip = math.log(batch), max(1, math.ceil(0.1 * len(h)))
    if statements is not None and profile.false_negatives == "mask":
        _, counts = np.unique(np.asarray(statements), return_counts=True)
        p = counts / counts.sum()
        level = float((p * np.log(np.maximum(1.0, batch - (batch - 1) * p))).sum())
    else:
        level = chance
    # The group warm-up contrasts inside groups only: its loss has another chance level, so the
    # judgement starts after it.
    skip = max(skip, math.ceil(profile.group_warmup * len(h)))
    switch = len(h) if profile.align_weight == 1 else math.ceil(profile.align_from * profile.steps)
    phases = [part for part in (h[skip:max(skip, switch)], h[max(skip, switch):]) if len(part) >= 3]
    if not phases or len(h) - skip < MIN_STEPS or not np.isfinite(h).all():
        return None  # too short to tell (a phase of fewer than 3 steps is not judged)
    first = phases[0] if switch - skip >= 3 else None
    if any(np.ptp(part) > STUCK_BAND * chance for part in phases):
        return None
    if first is not None and abs(first.mean() - level) > 0.05 * chance:
        return None
    level = ", then ".join(f"{part.mean():.3f}" for part in phases)
    return (f"the training loss stayed at {level} from step {skip + 1} to step {len(h)} (chance "
            f"level ln B = {chance:.3f} for B = {batch} pairs): the encoders did not learn")


@dataclass
class PairEncoders:
    """A trained image encoder f_x and text encoder f_t.

    Attributes:
        f_x: :class:`ImageEncoder`; f_t: :class:`TextEncoder`.
        vocab: word -> token id used to encode the captions.
        max_len: tokens kept per caption.
        history: InfoNCE loss per step, shape (steps,) (without the ``text_uniformity`` term).
        seconds: wall-clock training time.
        store_key: digest of every input of training (the model's name in the model store).
    """

    f_x: ImageEncoder
    f_t: TextEncoder
    vocab: dict[str, int]
    max_len: int
    history: np.ndarray
    seconds: float
    store_key: str = ""


def _check_statements(statements, n: int, profile: ImageTextProfile) -> torch.Tensor | None:
    """Statement ids as a tensor when the profile masks false negatives, else ``None``."""
    if profile.false_negatives != "mask":
        return None
    if statements is None:
        raise ValueError("profile.false_negatives is 'mask' but no statements were given: pass "
                         "statements= (CaptionBatch.statement) or use a profile with 'keep'.")
    arr = np.asarray(statements)
    if arr.shape != (n,) or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"statements must be {n} integer ids, one per pair; got dtype {arr.dtype} "
                         f"and shape {arr.shape}.")
    return torch.from_numpy(arr.astype(np.int64))


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
    groups: np.ndarray | None = None,
    statements: np.ndarray | None = None,
    cache: bool | None = None,
) -> PairEncoders:
    """Train f_x and f_t with symmetric InfoNCE (cosine similarity) on fixed image-caption pairs.

    The model is filed in the model store (:mod:`~mmcl_helpers.core.model_store`, kind
    ``image_text``) under a digest of every input (images, captions, groups, statements, encoding
    size, profile, seed, device type); the same call again reads it back instead of training.

    Each epoch visits the pairs in a fresh random order (seeded), so a run is reproducible
    bit for bit on the same machine and thread count.

    Args:
        images: uint8 images, shape (N, 64, 64, 3).
        captions: N captions (pair i is ``images[i]``, ``captions[i]``).
        out_dim: encoding size of both encoders.
        profile: steps, batch size, learning rate, temperature, widths (see
            :class:`~mmcl_helpers.core.profiles.ImageTextProfile`).
        seed: seeds initialisation and batch order.
        device: ``"cuda"``/``"cpu"``; default CUDA when available.
        progress: tqdm bar; default on unless ``MMCL_PROGRESS=0``.
        desc: the bar's label.
        check_every: steps between NaN/inf checks of the loss (see
            :func:`~mmcl_helpers.numerical.training.adam_loop`).
        data_on_device: copy the images and tokens to ``device`` once, before training (the
            default), so a step gathers its batch on the device and moves nothing from the host.
            ``False`` keeps them on the host and copies each batch (two host-to-device copies a
            step), for a device with too little memory for the whole set (N x 12 KiB of images).
        groups: contrast groups, shape (G, g): each row holds the indices of g pairs whose images
            share every factor but the shape. With ``profile.group_fraction`` > 0 each batch
            takes :meth:`~mmcl_helpers.core.profiles.ImageTextProfile.groups_per_batch` whole groups
            and fills up with pairs from outside the groups (:class:`BatchSampler`); ``None``
            (or a fraction of 0) gives the paper's i.i.d. batches over all N pairs.
        statements: what each caption states, shape (N,) ints (equal ids: the same statement in
            any phrasing, :attr:`~mmcl_helpers.datasets.perturbation.CaptionBatch.statement`).
            Needed when ``profile.false_negatives == "mask"``: a pair's negatives then leave out
            the captions (and their images) that state the same as its own.
        cache: use the model store; default on unless ``MMCL_CACHE=0``.

    Returns:
        :class:`PairEncoders` (in eval mode).

    Raises:
        NonFiniteLossError: the loss became NaN or infinite.

    Warns:
        NotLearningWarning: the loss stayed at its chance level (about ln B) for the whole run
            (:func:`loss_stuck_at_chance`); the encoders are returned, but they learned nothing.
    """
    v.check_params("train_pair_encoders", out_dim=(out_dim, v.POSITIVE_INT),
                   profile=(profile, v.InstanceOf(ImageTextProfile)), seed=(seed, v.NONNEG_INT),
                   progress=(progress, [v.BOOLEAN, None]), check_every=(check_every, v.POSITIVE_INT),
                   captions=(captions, v.SequenceOf(v.InstanceOf(str))),
                   data_on_device=(data_on_device, v.BOOLEAN), cache=(cache, [v.BOOLEAN, None]))
    n, b = len(images), min(profile.batch_size, len(images))
    if len(images) != len(captions) or len(images) < 2:
        raise ValueError(f"need at least 2 pairs and one caption per image, got {len(images)} "
                         f"images and {len(captions)} captions.")
    if not any(tokenize(t) for t in captions):
        raise ValueError(f"all {len(captions)} captions are empty (no words): the text encoder would "
                         "have nothing to learn from. Check the caption policy or the bias setting.")
    device = v.check_device(device, "train_pair_encoders")
    groups = _check_groups(groups, n, b, profile)
    same = _check_statements(statements, n, profile)
    progress = show_progress() if progress is None else progress
    digest = model_store.input_digest
    inputs = {"images": digest(images), "captions": digest(list(captions)),
              "groups": None if groups is None else digest(groups),
              "statements": None if statements is None else digest(np.asarray(statements)),
              "out_dim": out_dim, "profile": asdict(profile), "seed": seed,
              "device": torch.device(device).type}
    model, _ = model_store.fetch_or_train(
        KIND, inputs,
        lambda: _train(images, captions, out_dim, profile, seed, device, progress, desc, check_every,
                       data_on_device, groups, same),
        _pack, lambda tensors, meta: _unpack(tensors, meta, out_dim, profile, device), cache=cache,
        plan={"models": 1, "steps": profile.steps, "first_stride": profile.first_stride, "n_train": n})
    model.store_key = model_store.input_digest(inputs)
    # Judged on the loss history, so a stored model that never learned is reported as well.
    stuck = loss_stuck_at_chance(model.history, b, profile, statements)
    if stuck:
        warnings.warn(f"train_pair_encoders ({desc}): {stuck}; try a lower learning rate (now "
                      f"{profile.lr}) or more steps (now {profile.steps}).", NotLearningWarning,
                      stacklevel=2)
    return model


def _pack(model: PairEncoders) -> tuple[dict, dict]:
    tensors = {f"{name}.{k}": t for name, net in (("f_x", model.f_x), ("f_t", model.f_t))
               for k, t in net.state_dict().items()}
    tensors["history"] = torch.from_numpy(np.ascontiguousarray(model.history))
    return tensors, {"vocab": model.vocab, "max_len": model.max_len, "seconds": model.seconds}


def _unpack(tensors: dict, meta: dict, out_dim: int, profile: ImageTextProfile, device: str) -> PairEncoders:
    vocab = {str(w): int(i) for w, i in meta["vocab"].items()}
    f_x = ImageEncoder(out_dim, profile.widths, profile.hidden, first_stride=profile.first_stride)
    f_t = TextEncoder(len(vocab), out_dim, profile.text_embed, profile.text_channels, profile.hidden)
    for name, net in (("f_x", f_x), ("f_t", f_t)):
        net.load_state_dict({k[len(name) + 1:]: t for k, t in tensors.items() if k.startswith(name + ".")})
    history = tensors["history"].numpy()
    if history.shape != (profile.steps,):
        raise ValueError(f"the stored loss history has shape {history.shape}, not ({profile.steps},)")
    return PairEncoders(f_x.to(device).eval(), f_t.to(device).eval(), vocab, int(meta["max_len"]), history,
                        float(meta["seconds"]))


def _train(images, captions, out_dim, profile, seed, device, progress, desc, check_every, data_on_device,
           groups, same) -> PairEncoders:
    """The training of :func:`train_pair_encoders` (its arguments checked)."""
    n, b = len(images), min(profile.batch_size, len(images))
    vocab = build_vocab(captions)
    max_len = max(1, max(len(tokenize(t)) for t in captions))
    tokens = encode_captions(list(captions), vocab, max_len)
    pixels = torch.from_numpy(np.ascontiguousarray(images))
    store = device if data_on_device else "cpu"
    pixels, tokens = pixels.to(store), tokens.to(store)
    if same is not None:
        same = same.to(store)
    off_diagonal = ~torch.eye(b, dtype=torch.bool, device=device)
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    f_x = ImageEncoder(out_dim, profile.widths, profile.hidden,
                       first_stride=profile.first_stride).to(device).train()
    f_t = TextEncoder(len(vocab), out_dim, profile.text_embed, profile.text_channels,
                      profile.hidden).to(device).train()
    params = list(f_x.parameters()) + list(f_t.parameters())
    sampler = BatchSampler(n, b, gen, store, groups if profile.group_fraction > 0 else None,
                           profile.groups_per_batch())

    outside = (None if sampler.groups is None
               else outside_groups(sampler.k, sampler.groups.shape[1], b, device))

    def step_loss(step: int) -> torch.Tensor:
        idx = sampler.next()
        x, t = pixels[idx], tokens[idx]
        if not data_on_device:  # host-resident pairs: each batch is copied over
            x, t = x.to(device), t.to(device)
        exclude = None
        if same is not None:
            s = same[idx].to(device)
            exclude = (s[:, None] == s[None, :]) & off_diagonal
        same_statement = exclude
        if outside is not None and profile.contrasts_in_groups_only(step):
            exclude = warmup_exclude(exclude, outside)
        z_x, z_t = f_x(x), f_t(t)
        loss = info_nce(z_x, z_t, "cosine", profile.tau, exclude, profile.align_weight_at(step))
        if profile.text_uniformity > 0:
            # Two entries, summed by adam_loop: the history keeps InfoNCE's part apart, so a run
            # stuck at InfoNCE's chance level is still recognised (loss_stuck_at_chance).
            if profile.spreads_captions(step):
                spread = profile.text_uniformity * text_uniformity(z_t, profile.tau, same_statement)
            else:
                spread = loss.new_zeros(())
            return torch.stack([loss, spread])
        return loss

    start = time.perf_counter()
    history = adam_loop(
        params, step_loss, steps=profile.steps, lr=profile.lr, warmup=profile.warmup,
        grad_clip=profile.grad_clip, clip="global", fused=True, check_every=check_every,
        labels=[desc] + ([f"{desc} (caption spread)"] if profile.text_uniformity > 0 else []),
        desc=desc, progress=progress,
        hint=(f"try a lower learning rate (now {profile.lr}) or a higher temperature "
              f"(now {profile.tau})"),
    )[:, 0]
    return PairEncoders(f_x.eval(), f_t.eval(), vocab, max_len, history, time.perf_counter() - start)


def warmup_exclude(exclude: torch.Tensor | None, outside: torch.Tensor) -> torch.Tensor:
    """The negatives left out in a step of the group warm-up, shape (b, b) bool.

    Normally ``exclude | outside``: each grouped pair keeps only the members of its group that state
    something else. When no grouped pair of the batch has such a member left (the captions do not
    state the factor the groups vary, so every group's captions say the same thing), the warm-up
    has nothing to contrast, and without this rule its steps would carry no InfoNCE gradient at
    all; the step then contrasts over the whole batch, with ``exclude`` alone. Decided on the
    device, without a host sync.

    Args:
        exclude: the false-negative mask (True: same statement), or None; outside:
            :func:`outside_groups`.
    """
    b = outside.shape[0]
    base = exclude if exclude is not None else torch.zeros_like(outside)
    within = base | outside
    off_diagonal = ~torch.eye(b, dtype=torch.bool, device=outside.device)
    has_negative = (~within & off_diagonal).any()
    return torch.where(has_negative, within, base)


def outside_groups(k: int, g: int, b: int, device: str | torch.device = "cpu") -> torch.Tensor:
    """Pairs of a batch that lie in different contrast groups, shape (b, b) bool.

    A :class:`BatchSampler` batch holds ``k`` groups of ``g`` pairs, group by group, then ``b - k *
    g`` i.i.d. pairs; each i.i.d. pair counts as a group of its own. Left out of the negatives
    (``exclude`` of :func:`~mmcl_helpers.core.losses.info_nce`), this mask leaves each grouped pair
    only its group's other members, and an i.i.d. pair none (its term of the loss is then 0).
    """
    if not (k >= 0 and g >= 1 and b >= k * g):
        raise ValueError(f"need k >= 0 groups of g >= 1 pairs in a batch of b >= k * g; got k={k}, "
                         f"g={g}, b={b}.")
    gid = torch.cat([torch.arange(k).repeat_interleave(g), k + torch.arange(b - k * g)]).to(device)
    return gid[:, None] != gid[None, :]


def _check_groups(groups: np.ndarray | None, n: int, b: int,
                  profile: ImageTextProfile) -> np.ndarray | None:
    """``groups`` as an int64 array (G, g) after checking it against the pairs and the profile."""
    if groups is None:
        return None
    arr = np.asarray(groups)
    if arr.ndim != 2 or arr.shape[1] < 2 or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"groups must be an integer array of shape (G, g) with g >= 2, got shape "
                         f"{arr.shape} and dtype {arr.dtype}.")
    if arr.size and (arr.min() < 0 or arr.max() >= n or len(np.unique(arr)) != arr.size):
        raise ValueError(f"groups must hold distinct pair indices in 0..{n - 1}; got values in "
                         f"{arr.min()}..{arr.max()} ({arr.size - len(np.unique(arr))} repeated).")
    if profile.group_fraction > 0:
        k = profile.groups_per_batch()
        if k * arr.shape[1] > b or k > len(arr) or n - arr.size < b - k * arr.shape[1]:
            raise ValueError(f"profile.group_fraction={profile.group_fraction} asks for {k} groups "
                             f"of {arr.shape[1]} in a batch of {b}; there are {len(arr)} groups and "
                             f"{n - arr.size} pairs outside them.")
    return arr.astype(np.int64)


class BatchSampler:
    """Batches of pair indices: i.i.d. epochs, or contrast groups mixed with i.i.d. pairs.

    Without groups each epoch visits the N pairs in a fresh random order (the paper's i.i.d.
    batches). With groups (G, g) and ``k`` groups per batch, a batch is ``k`` whole groups (an
    epoch over the groups) followed by ``b - k * g`` pairs from outside them (an epoch over those).
    Orders are drawn on the host with ``gen`` (the same batches on every device) and moved to
    ``store`` once an epoch.

    Args:
        n: number of pairs; b: batch size; gen: the seeded generator; store: device of the indices.
        groups: contrast groups or ``None``; k: groups per batch.
    """

    def __init__(self, n: int, b: int, gen: torch.Generator, store: str,
                 groups: np.ndarray | None = None, k: int = 0) -> None:
        self.gen, self.store = gen, store
        if groups is None or k == 0:
            self.groups, self.k = None, 0
            self.singles = torch.arange(n)
        else:
            self.groups, self.k = torch.as_tensor(groups, dtype=torch.int64), int(k)
            inside = torch.zeros(n, dtype=torch.bool)
            inside[self.groups.reshape(-1)] = True
            self.singles = torch.nonzero(~inside).reshape(-1)
        self.n_single = b - self.k * (0 if self.groups is None else self.groups.shape[1])
        self._single = self._order(self.singles)
        self._group = None if self.groups is None else self._order(self.groups)

    def _order(self, items: torch.Tensor) -> list:
        # [items in a fresh random order (on store), position]
        return [items[torch.randperm(len(items), generator=self.gen)].to(self.store), 0]

    def _take(self, state: list, items: torch.Tensor, m: int) -> tuple[list, torch.Tensor]:
        if state[1] + m > len(items):
            state = self._order(items)
        out = state[0][state[1] : state[1] + m]
        state[1] += m
        return state, out

    def next(self) -> torch.Tensor:
        """The next batch's pair indices, shape (b,), on ``store``."""
        self._single, single = self._take(self._single, self.singles, self.n_single)
        if self.groups is None:
            return single
        self._group, grouped = self._take(self._group, self.groups, self.k)
        return torch.cat([grouped.reshape(-1), single])


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
