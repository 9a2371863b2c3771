"""What a chapter costs: measured work per training step, times steps and models (estimates).

Two numbers decide the time of a training step of these small models (issue 16):

- **FLOPs**: matrix-product and convolution FLOPs of one step, forward and backward, counted by
  ``torch.utils.flop_counter.FlopCounterMode`` on the ``meta`` device (shapes only, nothing is
  computed, so the ``paper`` sizes cost nothing to count);
- **operations dispatched**: the aten operations one step of the real training loop runs, from
  ``torch.profiler`` on the CPU, measured as the difference between a 2k-step and a k-step run
  divided by k (k = 2, after one warm-up run; so set-up is not counted). On a GPU each such
  operation launches at least one kernel, and for networks this small the fixed cost per launch,
  not the arithmetic, dominates.

:func:`chapter_costs` multiplies them by the steps and models each chapter trains and turns them
into minutes with :data:`DEVICES`, an assumed achieved throughput and a fixed cost per operation
for each device a profile is meant for. These are *estimates*: they leave out the probes,
data generation and rendering, and assume eager mode (``cpu`` compiles, which fuses operations,
so its estimate is an upper bound). ``benchmarks/bench_step_cost.py`` prints the measured inputs,
with the host reads per step (the device-to-host synchronisations on a GPU).

:func:`step_flops` counts the FLOPs of one step of the paper's encoders and Euclidean InfoNCE loss
from the layer widths alone (the paper programme's arithmetic): a dense layer of ``a -> b`` costs
``2 a b`` FLOPs per sample forward and twice that backward, so ``6 a b`` per sample and step;
element-wise work (activations, masks, the optimiser) is left out, a few per cent at these widths.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from mmcl_helpers.core.model_store import PlannedTraining, merge_plans
from mmcl_helpers.core.profiles import PROFILES, Profile
from mmcl_helpers.numerical.encoders import paper_hidden_widths

__all__ = ["StepCost", "Device", "DEVICES", "PROFILE_DEVICE", "TrainingPlan", "count_host_reads",
           "numerical_plan", "numerical_step_cost", "image_text_step_cost", "chapter_plans",
           "chapter_workload", "chapter_costs", "chapter_cost", "mlp_macs", "step_flops"]


@dataclass(frozen=True)
class StepCost:
    """Work of one training step: ``flops`` (matmul and conv, forward + backward), ``ops``
    (aten operations dispatched) and ``host_reads`` (values copied back to the host)."""

    flops: float
    ops: float
    host_reads: float


@dataclass(frozen=True)
class Device:
    """An assumed device: achieved float32 throughput and fixed cost per dispatched operation."""

    name: str
    flops_per_s: float
    seconds_per_op: float

    def seconds(self, cost: StepCost, steps: int) -> float:
        """Estimated seconds of ``steps`` steps of ``cost``."""
        return steps * (cost.flops / self.flops_per_s + cost.ops * self.seconds_per_op)


#: Assumed device speeds (not measurements) -- a 2-core CPU at 40 GFLOP/s and 8 µs per eager
#: operation; a T4 at half its 8.1 TFLOP/s float32 peak and 12 µs per operation (launch plus
#: PyTorch's host-side overhead, which bounds these small kernels); an H200 at 30 TFLOP/s float32
#: and 8 µs per operation.
DEVICES: dict[str, Device] = {
    "cpu": Device("2-core CPU", 40e9, 8e-6),
    "t4": Device("T4 GPU", 4e12, 12e-6),
    "h200": Device("H200 GPU", 30e12, 8e-6),
}
#: The device each profile is sized for.
PROFILE_DEVICE: dict[str, str] = {"smoke": "cpu", "cpu": "cpu", "colab": "t4", "gpu": "t4", "paper": "h200"}


_READS = ("cpu", "item", "tolist", "numpy", "__bool__", "__float__", "__int__")


@contextlib.contextmanager
def count_host_reads() -> Iterator[dict[str, int]]:
    """Count calls of the tensor methods that copy a value to the host (syncs on a GPU).

    ``.cpu()``, ``.item()``, ``.tolist()``, ``.numpy()``, ``bool()``, ``float()`` and ``int()`` of a
    tensor are counted while the block runs, on any device (on a CPU they are cheap, on a GPU
    each one waits for every queued kernel). A ``.numpy()`` right after ``.cpu()`` counts twice,
    and reads of tensors that stay on the host even in a GPU run (Adam's step counters, for
    example) are counted too, so on a CPU run this is an upper bound on the GPU's syncs.
    """
    counts = {name: 0 for name in _READS}
    originals = {name: getattr(torch.Tensor, name) for name in _READS}

    def wrap(name: str, fn: Callable) -> Callable:
        def counted(self, *args, **kwargs):
            counts[name] += 1
            return fn(self, *args, **kwargs)
        return counted

    for name, fn in originals.items():
        setattr(torch.Tensor, name, wrap(name, fn))
    try:
        yield counts
    finally:
        for name, fn in originals.items():
            setattr(torch.Tensor, name, fn)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2 (the profiler's C++ start/stop lines would land in the page)."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def _ops_and_reads(run: Callable[[int], None], k: int) -> tuple[float, float]:
    """Per-step aten operations and host reads of ``run(steps)``: (run(2k) - run(k)) / k."""
    from torch.profiler import ProfilerActivity, profile

    def measure(steps: int) -> tuple[int, int]:
        with _quiet_stderr(), count_host_reads() as reads, profile(activities=[ProfilerActivity.CPU]) as prof:
            run(steps)
        ops = sum(1 for e in prof.events() if e.name.startswith("aten::") and not any(
            c.name.startswith("aten::") for c in e.cpu_children))
        return ops, sum(reads.values())

    run(1)  # warm-up: one-time set-up (e.g. per-device copies of constants) is not per step
    (o1, r1), (o2, r2) = measure(k), measure(2 * k)
    return (o2 - o1) / k, (r2 - r1) / k


def mlp_macs(in_dim: int, hidden: Sequence[int], out_dim: int) -> int:
    """Multiply-accumulates of one sample through a dense MLP ``in_dim -> hidden... -> out_dim``."""
    widths = [int(in_dim), *[int(h) for h in hidden], int(out_dim)]
    return sum(a * b for a, b in zip(widths[:-1], widths[1:]))


def step_flops(
    x_dim: int, t_dims: Sequence[int], out_dims: Sequence[int], batch: int, padded: bool = False
) -> dict[str, float]:
    """FLOPs of one training step of the paper's encoders for a group of settings.

    Args:
        x_dim: image size; t_dims: caption size per setting; out_dims: encoding size per setting.
        batch: pairs per step.
        padded: count what an ensemble computes (every text encoder at the largest caption's
            widths) instead of what the settings need.

    Returns:
        ``encoders`` (6 x MACs x batch, both encoders of every setting), ``loss`` (the B x B x K
        similarity product, forward and backward: 6 B^2 K per setting), and ``total``.
    """
    if len(t_dims) != len(out_dims):
        raise ValueError(f"t_dims and out_dims differ in length: {len(t_dims)} vs {len(out_dims)}.")
    widest = max(t_dims)
    enc = loss = 0.0
    for d, k in zip(t_dims, out_dims):
        dt = widest if padded else d
        kk = max(out_dims) if padded else k
        enc += 6.0 * batch * (mlp_macs(x_dim, paper_hidden_widths(x_dim), kk)
                              + mlp_macs(dt, paper_hidden_widths(dt), kk))
        loss += 6.0 * batch * batch * kk
    return {"encoders": enc, "loss": loss, "total": enc + loss}


def _flops(step: Callable[[], torch.Tensor]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step().sum().backward()
    return float(counter.get_total_flops())


@functools.lru_cache(maxsize=8)
def _simulation(n_settings: int):
    from mmcl_helpers.numerical.experiments import numerical_selection_sweep
    from mmcl_helpers.numerical.latents import LatentModel
    from mmcl_helpers.numerical.simulation import MultimodalSimulation

    biases = (numerical_selection_sweep(10) * 2)[:n_settings]
    return MultimodalSimulation(LatentModel(10, 5, 5, seed=0), biases, seed=0)


def numerical_step_cost(profile: Profile, n_members: int, x_dim: int = 15, t_dim: int = 15,
                        out_dim: int = 6, ops_batch: int = 16) -> StepCost:
    """One step of :func:`~mmcl_helpers.numerical.training.train_mmcl` for ``n_members`` settings.

    FLOPs at the profile's batch size (on ``meta``); operations and host reads from the real loop
    at ``ops_batch`` pairs (the count of operations does not depend on the batch size). Under the
    ``paper`` encoder each setting is its own group, so the cost is ``n_members`` single groups.
    """
    from mmcl_helpers.core.losses import info_nce
    from mmcl_helpers.numerical.training import build_encoders, train_mmcl

    per_group = 1 if profile.encoder == "paper" else n_members
    groups = n_members // per_group
    with torch.device("meta"):
        f_x, f_t = build_encoders(x_dim, [t_dim] * per_group, [out_dim] * per_group, profile)
        x = torch.empty(profile.batch_size, x_dim)
        t = torch.empty(per_group, profile.batch_size, t_dim)
    flops = _flops(lambda: info_nce(f_x(x), f_t(t), profile.similarity, profile.tau))
    sim = _simulation(per_group)
    small = profile.with_overrides(batch_size=ops_batch, compile=False)

    def run(steps: int) -> None:
        train_mmcl(sim, small.with_overrides(steps=steps), seed=0, device="cpu", progress=False)

    ops, reads = _ops_and_reads(run, 2)
    return StepCost(flops * groups, ops * groups, reads * groups)


def image_text_step_cost(settings, out_dim: int = 7, ops_batch: int = 8) -> StepCost:
    """One step of :func:`~mmcl_helpers.image_text.pair_training.train_pair_encoders` at ``settings``'
    sizes."""
    from mmcl_helpers.core.losses import info_nce
    from mmcl_helpers.datasets.captions import scene_captions
    from mmcl_helpers.datasets.naming import named_selection_sweep
    from mmcl_helpers.datasets.scenes import render_scenes, sample_scene_latents
    from mmcl_helpers.image_text.image_encoders import ImageEncoder, TextEncoder
    from mmcl_helpers.image_text.pair_training import train_pair_encoders

    lat = sample_scene_latents(2 * ops_batch, seed=0)
    caps = scene_captions(lat, named_selection_sweep()["{shape..y_pos}"], seed=0)
    images = render_scenes(lat)
    vocab, length = 200, max(len(c.split()) for c in caps.text) + 1
    with torch.device("meta"):
        f_x = ImageEncoder(out_dim, settings.widths, settings.hidden, first_stride=settings.first_stride)
        f_t = TextEncoder(vocab, out_dim, settings.text_embed, settings.text_channels, settings.hidden)
        img = torch.empty(settings.batch_size, 64, 64, 3, dtype=torch.uint8)
        tok = torch.zeros(settings.batch_size, length, dtype=torch.long)
    flops = _flops(lambda: info_nce(f_x(img), f_t(tok), "cosine", settings.tau))
    small = settings.with_overrides(batch_size=ops_batch)

    def run(steps: int) -> None:
        train_pair_encoders(images, caps.text, out_dim, small.with_overrides(steps=steps), seed=0,
                            device="cpu", progress=False, statements=caps.statement)

    ops, reads = _ops_and_reads(run, 2)
    return StepCost(flops, ops, reads)


def chapter_plans(profile: Profile, image_text) -> dict[str, list[PlannedTraining]]:
    """What each chapter trains, read from the studies' own plan functions.

    Each chapter's study calls are priced by the plan function of the study it calls, with the
    chapter's arguments (settings, policies, seeds): chapter 2 trains the 10-setting selection
    sweep plus the over-sized [3] model, and the dependent sweep at the profile's stride
    (:func:`~mmcl_helpers.numerical.experiments.numerical_training_plan`); chapter 3 the
    perturbation sweep plus the combined setting, both ways, and chapter 2's first run again
    unless it is cached; chapter 4 one model; chapter 5 the scene sweeps
    (:func:`~mmcl_helpers.image_text.sweeps.scene_sweep_plan`), the feature-suppression and
    late-pull comparisons reusing the sweeps' models
    (:func:`~mmcl_helpers.image_text.suppression.suppression_plan`,
    :func:`~mmcl_helpers.image_text.alignment.alignment_plan`) and, with MPI3D-complex, its sweeps
    (:func:`~mmcl_helpers.image_text.sweeps.mpi3d_sweep_plan`); chapter 6 its three shift
    policies over at least three seeds and its six rate policies over one, at the sizes of
    :func:`~mmcl_helpers.practice.studies.policy_profile`, one architecture per study
    (:func:`~mmcl_helpers.practice.studies.policy_study_plan`, which picks it with
    :func:`~mmcl_helpers.practice.studies.study_architecture` as the study does).
    """
    from mmcl_helpers.core.biases import CaptionBias
    from mmcl_helpers.datasets.policies import MentionPolicy
    from mmcl_helpers.image_text.alignment import alignment_plan
    from mmcl_helpers.image_text.suppression import suppression_plan
    from mmcl_helpers.image_text.sweeps import mpi3d_sweep_plan, scene_sweep_plan
    from mmcl_helpers.numerical.experiments import (
        dependent_columns,
        numerical_perturbation_sweep,
        numerical_selection_sweep,
        numerical_training_plan,
    )
    from mmcl_helpers.practice.studies import policy_profile, policy_study_plan

    seeds = list(range(profile.seeds))
    selection, perturbation = numerical_selection_sweep(10), numerical_perturbation_sweep(10, 0.75)
    wrong_size = CaptionBias(selected={1, 2, 3}, n_semantic=10)
    combined = CaptionBias(selected=range(1, 9), perturbed={1, 2}, n_semantic=10)
    # The chapters' dependent sweeps: every dependent_stride-th column and the last.
    dep_selection = dependent_columns(selection, profile.dependent_stride)
    dep_perturbation = dependent_columns(perturbation, profile.dependent_stride)
    ch2_first = numerical_training_plan([*selection, wrong_size], profile, seeds)
    # Chapter 6's policies (their carried factors set the sizes) and seeds.
    base = {"shape": MentionPolicy(), "x_pos": MentionPolicy(), "y_pos": MentionPolicy()}
    shift = {"describe": {**base, "b_color": MentionPolicy()}, "omit": dict(base),
             "misreport": {**base, "b_color": MentionPolicy(resample=1.0)}}
    rate = {str(q): {"shape": MentionPolicy(), "x_pos": MentionPolicy(mention=q),
                     "y_pos": MentionPolicy(resample=r)}
            for q, r in zip([0.0, 0.1, 0.25, 0.5, 0.75, 1.0], [1.0, 0.75, 0.5, 0.25, 0.1, 0.0])}
    sizes = policy_profile(image_text)
    return {
        "1 latent model": [],
        "2 selection bias": ch2_first + numerical_training_plan(dep_selection, profile, seeds),
        "3 perturbation bias": numerical_training_plan([*perturbation, combined], profile, seeds)
        + numerical_training_plan([*dep_perturbation, combined], profile, seeds),
        "3, if chapter 2 is not cached": ch2_first,
        "4 identifiability proof": numerical_training_plan([combined], profile, 0),
        "5 image-text (scenes)": merge_plans(
            scene_sweep_plan(image_text), suppression_plan(image_text, reuse_sweeps=True),
            alignment_plan(image_text, reuse_sweeps=True) if image_text.align_weight != 1 else []),
        "5 image-text (MPI3D)": mpi3d_sweep_plan(image_text),
        "6 practice": merge_plans(policy_study_plan(shift, range(max(3, image_text.seeds)), sizes),
                                  policy_study_plan(rate, 0, sizes)),
    }


def chapter_workload(profile: Profile, image_text) -> dict[str, list[tuple[str, int, int, int]]]:
    """:func:`chapter_plans` as the priced workload: chapter -> [(kind, settings per run, runs, steps)].

    ``kind`` is ``"numerical"`` (``settings`` trained side by side in one call), ``"image-text"``
    (one pair of encoders per run, at the profile's first stage) or ``"image-text, stride 2"``
    (those that :meth:`~mmcl_helpers.core.profiles.ImageTextProfile.for_setting` trains at stride 2).
    """
    out = {}
    for row, plan in chapter_plans(profile, image_text).items():
        jobs: list[tuple[str, int, int, int]] = [(p.kind, p.models, p.runs, p.steps) for p in plan
                                                  if p.kind == "numerical"]
        runs: dict[tuple[str, int], int] = {}
        for p in plan:
            if p.kind == "image_text":
                kind = ("image-text" if p.profile.first_stride == image_text.first_stride
                        else "image-text, stride 2")
                runs[(kind, p.steps)] = runs.get((kind, p.steps), 0) + p.runs
        jobs += [(kind, 1, n, steps) for (kind, steps), n in sorted(runs.items())]
        out[row] = jobs
    return out


def _of_chapter(row: str, chapter: int | None) -> bool:
    return chapter is None or row.startswith((f"{chapter} ", f"{chapter},"))


def chapter_costs(profiles: list[str] | None = None, chapter: int | None = None) -> pd.DataFrame:
    """Estimated training minutes per chapter (rows) and profile (columns), from measured step costs.

    Each profile is priced on :data:`PROFILE_DEVICE`'s device. The step costs are measured
    (operations on a small real batch, FLOPs on ``meta``; a few seconds each) and kept in the
    cache folder, keyed by the package's source, so a later call (e.g. a chapter after the
    introduction in one build) reads them back. ``chapter`` keeps only that chapter's rows (and
    measures only what they need).
    """
    from mmcl_helpers.core.profiles import IMAGE_TEXT_PROFILES

    names = list(profiles or PROFILES)
    table = {}
    for name in names:
        prof, it = PROFILES[name], IMAGE_TEXT_PROFILES[name]
        device = DEVICES[PROFILE_DEVICE[name]]
        memo: dict[tuple, StepCost] = {}
        column = {}
        for row, jobs in chapter_workload(prof, it).items():
            if not _of_chapter(row, chapter):
                continue
            seconds = 0.0
            for kind, members, runs, steps in jobs:
                key = (kind, members)
                if key not in memo:
                    memo[key] = _stored_step_cost(kind, prof, it, members)
                seconds += runs * device.seconds(memo[key], steps)
            column[row] = seconds / 60.0
        table[f"{name} ({device.name})"] = column
    return pd.DataFrame(table).round(1)


def _stored_step_cost(kind: str, prof: Profile, image_text, members: int) -> StepCost:
    """:func:`numerical_step_cost` or :func:`image_text_step_cost`, read from the cache if there."""
    from mmcl_helpers.core import storage
    if kind == "image-text, stride 2":
        image_text = image_text.with_overrides(first_stride=2)
    config = {"kind": kind, "members": members, "torch": torch.__version__,
              "source": storage.source_digest(),
              "sizes": vars(prof) if kind == "numerical" else vars(image_text)}
    folder = storage.cache_folder("costs") if storage.cache_enabled() else None
    path = None
    if folder is not None:
        name = hashlib.sha256(json.dumps(config, sort_keys=True, default=str).encode()).hexdigest()
        path = folder / f"{name[:24]}.npz"
        hit = storage.load_arrays(path, config)
        if hit is not None and hit.get("cost", np.zeros(0)).shape == (3,):
            return StepCost(*(float(x) for x in hit["cost"]))
    cost = (numerical_step_cost(prof, members) if kind == "numerical"
            else image_text_step_cost(image_text))
    if path is not None:
        storage.save_arrays(path, {"cost": np.array([cost.flops, cost.ops, cost.host_reads])}, config)
    return cost


def chapter_cost(chapter: int, profiles: list[str] | None = None) -> pd.DataFrame:
    """The rows of :func:`chapter_costs` for one chapter (estimated training minutes per profile).

    Chapter 3 has a second row (what it adds when chapter 2's encoders are not cached) and
    chapter 5 one for MPI3D-complex (when the dataset is present).

    Raises:
        ValueError: ``chapter`` is not one of the book's chapters 1..6.
    """
    if isinstance(chapter, bool) or not isinstance(chapter, int) or not 1 <= chapter <= 6:
        raise ValueError(f"chapter must be an int from 1 to 6, got {chapter!r}.")
    return chapter_costs(profiles, chapter)


@dataclass(frozen=True)
class TrainingPlan:
    """What a chapter is about to train: ``models`` per seed, ``steps`` each, which seeds are cached.

    ``minutes`` estimates the training still to do on ``device`` (see :func:`chapter_costs`).
    ``str()`` is the sentence a chapter prints before it starts.
    """

    what: str
    models: int
    steps: int
    cached: tuple[bool, ...]
    minutes: float
    device: str

    def __str__(self) -> str:
        n = len(self.cached)
        if all(self.cached):
            return f"{self.what}: found in the cache for all {n} seed(s), so it is loaded, not trained."
        todo = n - sum(self.cached)
        when = f"{self.minutes:.1f}" if self.minutes < 10 else f"{self.minutes:.0f}"
        return (f"{self.what}: {todo} of {n} seed(s) not in the cache, so this chapter trains them itself "
                f"({self.models} models x {self.steps:,} steps per seed), estimated at {when} min on a "
                f"{self.device} (from FLOPs and operations per step; see the introduction's cost table). "
                "Run that chapter first in the same runtime to load them instead.")


def numerical_plan(what: str, settings, profile: Profile, seeds, encoding_sizes=None,
                   dependent: bool = False, n_image: int = 5, n_text: int = 5,
                   device: str = "cpu") -> TrainingPlan:
    """The :class:`TrainingPlan` of a :func:`~mmcl_helpers.numerical.experiments.run_numerical` call.

    Takes the same arguments as that call; looks the encoders up in its cache
    (:func:`~mmcl_helpers.numerical.training_cache.training_cache_path`) without loading them.
    """
    from mmcl_helpers.core.storage import cache_enabled
    from mmcl_helpers.numerical.training_cache import training_cache_path

    settings = list(settings)
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    cached = tuple(cache_enabled() and training_cache_path(
        settings, dependent, n_image, n_text, profile, s, encoding_sizes, device).exists() for s in seeds)
    todo = len(seeds) - sum(cached)
    dev = DEVICES[PROFILE_DEVICE.get(profile.name, "cpu")]
    minutes = 0.0
    if todo:
        cost = numerical_step_cost(profile, len(settings), x_dim=settings[0].n_semantic + n_image,
                                   t_dim=settings[0].n_semantic + n_text)
        minutes = todo * dev.seconds(cost, profile.steps) / 60.0
    return TrainingPlan(what, len(settings), profile.steps, cached, minutes, dev.name)
