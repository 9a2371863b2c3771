"""Training f_x and f_t with symmetric InfoNCE on freshly sampled pairs (plain PyTorch loop).

:func:`train_mmcl` trains one image encoder and one text encoder per bias setting of a
:class:`~mmcl_helpers.numerical.simulation.MultimodalSimulation`. All settings train together as one
ensemble (one loss per setting, summed, so their gradients never mix; clipping is per setting).
Under the ``paper`` encoder, whose widths depend on each input size, the ensemble pads every
layer to the widest member and masks the rest, and each setting initialises and perturbs from its
own generator (:func:`~mmcl_helpers.numerical.simulation.member_seed`): a setting trained in the ensemble
gets the numbers it gets trained alone, up to float rounding.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mmcl_helpers.core import validation as v
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.losses import info_nce
from mmcl_helpers.core.precision import precision_context
from mmcl_helpers.core.profiles import Profile, default_device
from mmcl_helpers.core.timing import timed
from mmcl_helpers.numerical.encoders import EnsembleMLP, paper_hidden_widths
from mmcl_helpers.numerical.simulation import MultimodalSimulation, member_seed

__all__ = [
    "NonFiniteLossError",
    "TrainResult",
    "train_mmcl",
    "build_encoders",
    "lr_lambda",
    "adam_loop",
    "show_progress",
    "compiled_or_eager",
]


class NonFiniteLossError(FloatingPointError):
    """The training loss became NaN or infinite."""


@dataclass
class TrainResult:
    """Trained encoders and their history.

    Attributes:
        biases: the settings, in member order.
        f_x, f_t: image and text encoders (one :class:`EnsembleMLP` per group of settings).
        members: for each setting, ``(group, member)`` locating its encoders.
        history: loss per step and setting, shape (steps, E).
        seconds: wall-clock training time.
        config: everything needed to re-run (profile fields, seed, sizes, device).
    """

    biases: list[CaptionBias]
    f_x: list[EnsembleMLP]
    f_t: list[EnsembleMLP]
    members: list[tuple[int, int]]
    history: np.ndarray
    seconds: float
    config: dict = field(default_factory=dict)

    @torch.no_grad()
    def encode(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Representations of images ``x`` (N, dx) and captions ``t`` (E, N, dt).

        Returns:
            ``(z_hat_x, z_hat_t)``, each a tensor of shape (E, N, max encoding size), zero past
            each setting's own encoding size.
        """
        # One forward pass per group: each member reads the images and its own setting's captions.
        z_x: list[torch.Tensor | None] = [None] * len(self.members)
        z_t: list[torch.Tensor | None] = [None] * len(self.members)
        for g, (fx, ft) in enumerate(zip(self.f_x, self.f_t)):
            ks = [k for k, (group, _) in enumerate(self.members) if group == g]
            dev = fx.in_mask.device
            out_x = fx.eval()(x.to(dev))
            out_t = ft.eval()(t[ks].to(dev)[:, :, : ft.in_mask.shape[-1]])
            for k in ks:
                m = self.members[k][1]
                z_x[k], z_t[k] = out_x[m], out_t[m]
        width = max(o.shape[-1] for o in z_x)
        pad = [nn.functional.pad(o, (0, width - o.shape[-1])) for o in z_x]
        pad_t = [nn.functional.pad(o, (0, width - o.shape[-1])) for o in z_t]
        return torch.stack(pad), torch.stack(pad_t)

    def encoding_sizes(self) -> list[int]:
        return [self.f_x[g].out_dims[m] for g, m in self.members]

    def represent(self, x: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """What the probes read: :meth:`encode`, as unit vectors when the run compared by cosine.

        Cosine similarity sees only each output's direction; its length is a free channel that no
        gradient targets, so whatever it holds (an image-specific factor, say) is not something
        the loss kept. The unit vector is the representation the loss shaped (chapter 5 measures
        what the length holds). Euclidean runs (the ``paper`` profile) are probed as they are.

        Returns:
            ``(z_hat_x, z_hat_t)``, each of shape (E, N, max encoding size), zero past each
            setting's own encoding size (normalising leaves the padding at zero).
        """
        z_x, z_t = self.encode(x, t)
        if self.config.get("similarity") != "cosine":
            return z_x, z_t
        return nn.functional.normalize(z_x, dim=-1), nn.functional.normalize(z_t, dim=-1)


def show_progress() -> bool:
    """Whether progress bars are on by default: unless ``MMCL_PROGRESS=0`` is set."""
    return os.environ.get("MMCL_PROGRESS", "1").strip() != "0"


def lr_lambda(step: int, total: int, warmup: float) -> float:
    """Learning-rate factor: linear warm-up, then cosine decay; constant when ``warmup`` is 0."""
    if warmup <= 0:
        return 1.0
    n_warm = max(1, int(warmup * total))
    if step < n_warm:
        return (step + 1) / n_warm
    progress = (step - n_warm) / max(1, total - n_warm)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def build_encoders(
    x_dim: int, t_dims: list[int], out_dims: list[int], profile: Profile,
    init_seeds: list[int] | None = None,
) -> tuple[EnsembleMLP, EnsembleMLP]:
    """Image and text encoders for a group of settings, sized by ``profile``.

    ``init_seeds`` (one per setting) gives each member its own generator: f_x's weights are drawn
    from it first, then f_t's, so a member starts exactly as it would built alone.
    """
    n = len(t_dims)
    gens = None if init_seeds is None else [torch.Generator().manual_seed(int(s)) for s in init_seeds]
    if profile.encoder == "paper":
        # Widths are multiples of each member's input size: one list of widths per member.
        hid_x, hid_t = [paper_hidden_widths(x_dim)] * n, [paper_hidden_widths(d) for d in t_dims]
        bn, slope = False, 0.01
    elif profile.encoder == "compact":
        hid_x = hid_t = [profile.hidden] * profile.depth
        bn, slope = True, 0.01
    else:
        raise ValueError(f"unknown encoder kind {profile.encoder!r}; use 'compact' or 'paper'.")
    f_x = EnsembleMLP([x_dim] * n, out_dims, hid_x, slope, bn, gens)
    f_t = EnsembleMLP(t_dims, out_dims, hid_t, slope, bn, gens)
    return f_x, f_t


def _per_member_clip(params: list[nn.Parameter], max_norm: float) -> None:
    # Parameters carry the member index first, so each member is clipped on its own norm, exactly
    # as if it were trained alone.
    # One concatenation and one norm for all of them (a handful of kernels instead of three per
    # parameter tensor; on a GPU each kernel launch costs more than these tiny reductions).
    grads = [p.grad for p in params if p.grad is not None]
    norm = torch.linalg.vector_norm(torch.cat([g.flatten(1) for g in grads], 1), dim=1)
    scale = (max_norm / (norm + 1e-6)).clamp(max=1.0)
    for g in grads:
        g.mul_(scale.view(-1, *([1] * (g.dim() - 1))))


def _adam(params: list[nn.Parameter], lr: float) -> torch.optim.Adam:
    # The fused kernel updates every parameter in one pass (CPU support arrived in torch 2.4);
    # older versions fall back to the default implementation.
    try:
        return torch.optim.Adam(params, lr=lr, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr)


def compiled_or_eager(fn: Callable) -> Callable:
    """``torch.compile(fn)``, falling back to ``fn`` itself (with a warning) if compiling fails.

    Compiling happens on the first call, so that is where a missing C++ compiler or an
    unsupported platform shows up; the fallback computes the same function, only more slowly.
    """
    compiled = torch.compile(fn, dynamic=False)
    chosen: list[Callable] = []

    def call(*args):
        if not chosen:
            try:
                out = compiled(*args)
            except Exception as err:  # noqa: BLE001 - any compiler failure means "run eagerly"
                warnings.warn(
                    f"torch.compile failed ({type(err).__name__}: {str(err)[:200]}); training "
                    "continues in eager mode (same model, slower). Set compile=False in the "
                    "profile to skip the attempt.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                chosen.append(fn)
                return fn(*args)
            chosen.append(compiled)
            return out
        return chosen[0](*args)

    return call


def _check_finite(history: torch.Tensor, lo: int, labels: Sequence[str] | None, hint: str,
                  desc: str) -> None:
    """Raise :class:`NonFiniteLossError` if ``history`` (steps lo.., E) holds a NaN or inf."""
    bad = ~torch.isfinite(history)
    if not bool(bad.any()):
        return
    rows, cols = torch.nonzero(bad, as_tuple=True)
    first = int(rows.min())
    members = sorted({int(c) for c, r in zip(cols, rows) if int(r) == first})
    names = [labels[c] if labels is not None else str(c) for c in members]
    values = history[first].cpu().tolist()
    hi = lo + history.shape[0] - 1
    raise NonFiniteLossError(
        f"the InfoNCE loss became non-finite in steps {lo}..{hi} ({desc}): {values} at step "
        f"{lo + first} for setting(s) {names}. Allowed are finite values only; {hint}."
    )


@timed("training")
def adam_loop(
    params: Sequence[nn.Parameter],
    step_losses: Callable[[int], torch.Tensor],
    *,
    steps: int,
    lr: float,
    warmup: float,
    grad_clip: float | None,
    clip: str = "per_member",
    schedule: str = "warmup_cosine",
    fused: bool = True,
    check_every: int = 50,
    labels: Sequence[str] | None = None,
    hint: str = "try a lower learning rate",
    desc: str = "MMCL",
    progress: bool | None = None,
) -> np.ndarray:
    """The one training loop of the package: Adam, warm-up + cosine schedule, clipping, history.

    Every model of the book (the numerical encoders of :func:`train_mmcl` and the image-text
    encoders of :func:`~mmcl_helpers.image_text.pair_training.train_pair_encoders`) trains here. The loss
    history stays on the device; it is tested for NaN/inf once every ``check_every`` steps (and
    at the end), so a GPU never waits for the host inside the loop.

    Args:
        params: the parameters to train.
        step_losses: ``step -> losses``; a scalar or one loss per ensemble member, shape (E,).
            Their sum is minimised.
        steps, lr, warmup: number of steps, peak learning rate, warm-up fraction (:func:`lr_lambda`).
        grad_clip: gradient 2-norm threshold (ignored when ``clip`` is ``"none"``).
        clip: ``"per_member"`` (each ensemble member on its own norm; parameters carry the
            member index first), ``"global"`` (one norm over all parameters) or ``"none"``.
        schedule: ``"warmup_cosine"`` (:func:`lr_lambda` with ``warmup``) or
            ``"cosine_annealing"`` (torch's ``CosineAnnealingLR`` over ``steps``, no warm-up;
            the MLP probes use it).
        fused: use the fused Adam kernel where available (same update, one pass).
        check_every: steps between finiteness checks (each one device sync).
        labels: one name per loss entry, for the error message.
        hint: what to try, appended to the error message.
        desc: progress bar label (and part of the error message).
        progress: tqdm bar; default on unless ``MMCL_PROGRESS=0``.

    Returns:
        the loss per step and member, float32 array of shape (steps, E) (E = 1 for a scalar loss).

    Raises:
        NonFiniteLossError: a loss became NaN or infinite (the message names the step range
            checked, the first bad step and the settings).
    """
    if clip not in ("per_member", "global", "none"):
        raise ValueError(f"clip must be 'per_member', 'global' or 'none', got {clip!r}.")
    if schedule not in ("warmup_cosine", "cosine_annealing"):
        raise ValueError(
            f"schedule must be 'warmup_cosine' or 'cosine_annealing', got {schedule!r}.")
    if int(check_every) < 1:
        raise ValueError(f"check_every must be a positive number of steps, got {check_every!r}.")
    progress = show_progress() if progress is None else progress
    opt = _adam(params, lr) if fused else torch.optim.Adam(params, lr=lr)
    if schedule == "warmup_cosine":
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_lambda(s, steps, warmup))
    else:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, steps))
    history: torch.Tensor | None = None
    lo = 0
    bar = tqdm(range(steps), desc=desc, disable=not progress, mininterval=1.0)
    for step in bar:
        losses = step_losses(step)
        flat = losses.detach().reshape(-1)
        if history is None:
            history = torch.zeros((steps, flat.numel()), dtype=torch.float32, device=flat.device)
        history[step] = flat
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        if clip == "per_member":
            _per_member_clip(params, grad_clip)
        elif clip == "global":
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        sched.step()
        if (step + 1) % check_every == 0 or step + 1 == steps:
            _check_finite(history[lo : step + 1], lo, labels, hint, desc)
            if progress:
                bar.set_postfix(loss=f"{float(history[step].mean()):.3f}")
            lo = step + 1
    bar.close()
    if history is None:
        return np.zeros((0, len(labels or [])), dtype=np.float32)
    return history.cpu().numpy()


@timed("training")
def train_mmcl(
    sim: MultimodalSimulation,
    profile: Profile,
    seed: int = 0,
    encoding_sizes: list[int] | None = None,
    device: str | None = None,
    progress: bool | None = None,
    check_every: int = 50,
) -> TrainResult:
    """Train f_x and f_t for every setting of ``sim``.

    Args:
        sim: the data-generating process and its bias settings (E of them).
        profile: steps, batch size, encoder, learning rate, similarity, temperature, clipping.
        seed: seeds initialisation and every training batch.
        encoding_sizes: output size per setting; default ``len(unbiased) + profile.extra_dims``.
        device: ``"cuda"``/``"cpu"``; default CUDA when available.
        progress: show a tqdm progress bar (works in notebooks and terminals); default on unless
            the environment variable ``MMCL_PROGRESS`` is ``0`` (the book build sets it).
        check_every: test the losses for NaN/inf every this many steps (one device sync each;
            see :func:`adam_loop`).

    Returns:
        a :class:`TrainResult`.

    Raises:
        NonFiniteLossError: the loss of some setting became NaN or infinite.
    """
    v.check_params("train_mmcl", sim=(sim, v.InstanceOf(MultimodalSimulation)),
                   profile=(profile, v.InstanceOf(Profile)), seed=(seed, v.NONNEG_INT),
                   encoding_sizes=(encoding_sizes, [v.SequenceOf(v.POSITIVE_INT), None]),
                   progress=(progress, [v.BOOLEAN, None]), check_every=(check_every, v.POSITIVE_INT))
    device = v.check_device(device, "train_mmcl")
    with precision_context(profile.precision, device or default_device()):
        return _train_mmcl(sim, profile, int(seed), encoding_sizes, device, progress, check_every)


def _train_mmcl(
    sim: MultimodalSimulation,
    profile: Profile,
    seed: int,
    encoding_sizes: list[int] | None,
    device: str | None,
    progress: bool | None,
    check_every: int,
) -> TrainResult:
    device = device or default_device()
    if progress is None:
        progress = show_progress()
    biases = sim.biases
    if encoding_sizes is None:
        encoding_sizes = [len(b.unbiased) + profile.extra_dims for b in biases]
    encoding_sizes = [int(k) for k in encoding_sizes]
    if len(encoding_sizes) != len(biases) or any(int(k) < 1 for k in encoding_sizes):
        raise ValueError(
            f"encoding_sizes must hold one positive size per setting ({len(biases)}), "
            f"got {encoding_sizes!r}."
        )
    groups = [list(range(len(biases)))]
    # The paper encoder: every setting initialises and perturbs from its own generator.
    own = profile.encoder == "paper"
    torch.manual_seed(seed)
    sim.to(device)
    f_x, f_t, members = [], [], [None] * len(biases)
    for gi, group in enumerate(groups):
        fx, ft = build_encoders(
            sim.x_dim, [sim.t_dims[k] for k in group], [encoding_sizes[k] for k in group], profile,
            [member_seed(seed, biases[k], "init") for k in group] if own else None,
        )
        f_x.append(fx.to(device))
        f_t.append(ft.to(device))
        for m, k in enumerate(group):
            members[k] = (gi, m)
    history = np.zeros((profile.steps, len(biases)), dtype=np.float32)
    gen = torch.Generator(device=device).manual_seed(seed)
    pgens = [torch.Generator(device=device).manual_seed(member_seed(seed, b, "perturb"))
             for b in biases] if own else None
    start = time.perf_counter()
    hint = (f"try a lower learning rate (now {profile.lr}), a higher temperature (now "
            f"{profile.tau}) or a smaller gradient clip (now {profile.grad_clip})")
    for gi, group in enumerate(groups):
        fx, ft = f_x[gi].train(), f_t[gi].train()
        params = list(fx.parameters()) + list(ft.parameters())
        t_width = ft.in_mask.shape[-1]

        def pair_losses(x: torch.Tensor, t: torch.Tensor, fx=fx, ft=ft) -> torch.Tensor:
            # bfloat16 autocast for the encoders only (profile.precision "bf16"); loss in float32.
            with torch.autocast(x.device.type, torch.bfloat16, enabled=profile.precision == "bf16"):
                z_x, z_t = fx(x), ft(t)
            return info_nce(z_x.float(), z_t.float(), profile.similarity, profile.tau)

        loss_fn = compiled_or_eager(pair_losses) if profile.compile else pair_losses

        def step_losses(step: int, group=group, loss_fn=loss_fn, t_width=t_width) -> torch.Tensor:
            batch = sim.sample(profile.batch_size, gen, pgens)
            return loss_fn(batch.x, batch.t[group][:, :, :t_width])

        history[:, group] = adam_loop(
            params, step_losses, steps=profile.steps, lr=profile.lr, warmup=profile.warmup,
            grad_clip=profile.grad_clip, clip="per_member", fused=True, check_every=check_every,
            labels=[biases[k].label for k in group], hint=hint,
            desc="MMCL" if len(groups) == 1 else f"MMCL {biases[group[0]].label}",
            progress=progress,
        )
    seconds = time.perf_counter() - start
    config = {
        "profile": profile.name,
        **{k: v for k, v in vars(profile).items() if k != "name"},
        "seed": seed,
        "device": str(device),
        "encoding_sizes": [int(k) for k in encoding_sizes],
        "settings": [
            {"selected": sorted(b.selected), "perturbed": sorted(b.perturbed),
             "p_perturb": b.p_perturb}
            for b in biases
        ],
    }
    return TrainResult(list(biases), f_x, f_t, members, history, seconds, config)
