"""Image-text sweeps: train one pair of encoders per caption setting, probe what they learned.

One code path serves both datasets of the paper's image-text studies (§5.2-5.3): the rendered
causal scenes of :mod:`~mmcl_helpers.datasets.scenes` (the book's analogue of Causal3DIdent,
:func:`run_scene_sweeps`) and the MPI3D-complex photographs of
:mod:`~mmcl_helpers.datasets.mpi3d` when the file is present (:func:`run_mpi3d_sweeps`). Each
adapter turns its dataset into :class:`~mmcl_helpers.datasets.splits.Split` s and calls
:func:`run_sweeps`, which trains (:func:`~mmcl_helpers.image_text.pair_training.train_pair_encoders`),
encodes held-out pairs as unit vectors and probes them
(:func:`~mmcl_helpers.numerical.probes.probe_representations`): discrete factors by MCC, continuous ones by
R^2, the caption template by MCC from ẑ_t. :func:`norm_channel_table` shows what the discarded
length of the raw outputs holds. Sizes come from
:data:`~mmcl_helpers.core.profiles.IMAGE_TEXT_PROFILES`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from mmcl_helpers.core import model_store
from mmcl_helpers.core import validation as v
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.model_store import PlannedTraining, merge_plans
from mmcl_helpers.core.profiles import ImageTextProfile, default_device, image_text_profile
from mmcl_helpers.core.results import StudyResult, factor_role, warn_unlearned
from mmcl_helpers.core.timing import timed
from mmcl_helpers.datasets.captions import scene_captions
from mmcl_helpers.datasets.naming import (
    bias_from_names,
    format_factor_set,
    named_perturbation_sweep,
    named_selection_sweep,
)
from mmcl_helpers.datasets.scenes import (
    DISCRETE_FACTORS,
    IMAGE_FACTORS,
    SEMANTIC_FACTORS,
    SceneLatents,
    load_or_render,
    scene_encoding_size,
)
from mmcl_helpers.datasets.splits import Split
from mmcl_helpers.image_text.pair_training import PairEncoders, encode_pairs, train_pair_encoders
from mmcl_helpers.numerical.probes import FactorSpec, probe_representations

__all__ = [
    "combined_seconds",
    "setting_key",
    "KEY_SCENE_COLUMNS",
    "ImageTextRun",
    "run_sweeps",
    "run_scene_sweeps",
    "scene_sweep_settings",
    "scene_sweep_plan",
    "sweep_plan",
    "run_mpi3d_sweeps",
    "mpi3d_sweep_plan",
    "norm_channel_table",
    "scene_setting",
    "scene_splits",
    "scene_parts",
]


#: The columns a profile with ``scene_columns="key"`` trains: {shape} and everything selected
#: (the ends of the selection sweep) with the columns where crowding out starts, and the most
#: perturbed, a middle and the unperturbed end of the perturbation sweep.
KEY_SCENE_COLUMNS: dict[str, tuple[str, ...]] = {
    "selection": ("{shape}", "{shape, x_pos}", "{shape..y_pos}", "{shape..s_pos}", "{shape..b_color}"),
    "perturbation": ("{x_pos..b_color}", "{color..b_color}", "∅"),
}


@dataclass
class ImageTextRun(StudyResult):
    """Scores and trained encoders of a sweep.

    Attributes:
        scores: long table (:data:`~mmcl_helpers.core.results.SCORE_COLUMNS`), columns dataset,
            sweep, column (1-based position in the sweep), setting (label), selected, perturbed,
            seed, encoder (x/t), factor, role (unbiased, omitted, perturbed, image-specific,
            text-specific), probe (mlp/linear), metric (``mcc``/``r2``), score.
        models: ``(setting key, seed)`` -> :class:`PairEncoders`.
        seconds: wall-clock time of each part (``render``, ``train``, ``probe``).
        config: the run's full configuration (saved by :meth:`save`).
        probe_data: the held-out splits, settings and factor classes, for re-probing the models
            (:func:`norm_channel_table`); not saved.
    """

    models: dict = field(default_factory=dict)
    seconds: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    # What re-probing needs (held-out splits, biases, classes); kept in memory, never saved.
    probe_data: dict = field(default_factory=dict, repr=False)

    def trained_like(self, profile: ImageTextProfile, seed: int, setting: str | None = None) -> bool:
        """Whether this run's models are the ones ``profile`` would train from data seed ``seed``
        (the profile's own batches, not the i.i.d. baseline), and, given ``setting``, whether it
        holds that column: a comparison can then reuse its scores instead of training again."""
        return (self.config.get("profile") == asdict(profile) and self.config.get("data_seed") == seed
                and not self.config.get("iid_batches", False)
                and (setting is None or bool((self.scores["setting"] == setting).any())))


def combined_seconds(runs: Sequence[ImageTextRun], start: float, reused: int) -> dict[str, float]:
    """Render, train and probe seconds summed over ``runs``, the ``total`` since ``start``
    (a ``time.perf_counter()`` value) and how many settings were ``reused`` from other runs."""
    seconds: dict[str, float] = {k: round(sum(r.seconds[k] for r in runs), 1)
                                 for k in ("render", "train", "probe")}
    seconds["total"] = round(time.perf_counter() - start, 1)
    seconds["reused"] = reused
    return seconds


def setting_key(bias: CaptionBias) -> tuple:
    """What makes two settings the same model: ``(selected, perturbed, p_perturb)``, sorted."""
    return (tuple(sorted(bias.selected)), tuple(sorted(bias.perturbed)), bias.p_perturb)


def _encode_held_out(model: PairEncoders, key: tuple, bias: CaptionBias, seed: int,
                     splits: Mapping[str, Split], reps: dict, phrasings: dict,
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
                    splits: Mapping[str, Split], classes: Mapping[str, int], probe_steps: int,
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


def _probed_models(models: Mapping[tuple, PairEncoders], biases: Mapping[tuple, CaptionBias], seed: int,
                   splits: Mapping[str, Split], classes: Mapping[str, int], probe_steps: int) -> pd.DataFrame:
    """The probe table of some trained models (one per setting key), from the model store if there.

    The probes are trained models too: they are filed under the models' store keys, a digest of
    the held-out data (images, labels, each setting's captions) and the probe settings, so a
    repeated sweep neither encodes the held-out pairs nor trains the probes again.
    """
    keys = list(models)
    held_out = []
    for part in ("probe_train", "probe_test"):
        caps = [splits[part].caption(biases[key], seed) for key in keys]
        held_out.append((splits[part].images, splits[part].labels,
                         [(c.text, np.asarray(c.phrasing)) for c in caps]))
    inputs = {"models": [models[key].store_key for key in keys],
              "held_out": model_store.input_digest(held_out), "classes": dict(classes),
              "probe_steps": probe_steps, "seed": seed + 1000}

    @timed("probing")  # encoding the held-out pairs is part of probing them
    def probe() -> pd.DataFrame:
        reps, phrasings = {}, {}
        for key in keys:
            _encode_held_out(models[key], key, biases[key], seed, splits, reps, phrasings)
        return _probe_held_out(reps, phrasings, keys, splits, classes, probe_steps, seed=seed + 1000)

    def pack(frame: pd.DataFrame) -> tuple[dict, dict]:
        data = {c: frame[c].tolist() for c in frame.columns if c != "score"}
        data["key"] = [keys.index(k) for k in data["key"]]
        return {"score": torch.tensor(frame["score"].to_numpy(np.float64))}, {
            "columns": list(frame.columns), "data": data}

    def unpack(tensors: dict, meta: dict) -> pd.DataFrame:
        data = dict(meta["data"])
        data["key"] = [keys[i] for i in data["key"]]
        data["score"] = tensors["score"].numpy().tolist()
        return pd.DataFrame(data, columns=meta["columns"])

    return model_store.fetch_or_train("probes", inputs, probe, pack, unpack,
                                      plan={"models": "probes", "steps": probe_steps})[0]


def run_sweeps(
    sweeps: Mapping[str, Mapping[str, CaptionBias]],
    splits: Mapping[str, Split],
    semantics: Sequence[str],
    classes: Mapping[str, int],
    encoding_size: Callable[[CaptionBias], int],
    profile: ImageTextProfile,
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
        profile: sizes (see :data:`~mmcl_helpers.core.profiles.IMAGE_TEXT_PROFILES`).
        seed: first training seed (``profile.seeds`` seeds run); probes use ``seed + 1000``.
        dataset: name written into the scores.
        device, progress: as in :func:`train_pair_encoders`.

    Returns:
        :class:`ImageTextRun`.
    """
    distinct: dict[tuple, CaptionBias] = {}
    for sweep in sweeps.values():
        for bias in sweep.values():
            distinct.setdefault(setting_key(bias), bias)
    seeds = list(range(seed, seed + profile.seeds))
    models, frames = {}, []
    t_train = t_probe = 0.0
    for s in seeds:
        for key, bias in distinct.items():
            label = format_factor_set(bias.selected, semantics)
            if bias.perturbed:
                label += " / pert " + format_factor_set(bias.perturbed, semantics)
            t0 = time.perf_counter()
            train_caps = splits["train"].caption(bias, s)
            models[(key, s)] = train_pair_encoders(
                splits["train"].images, train_caps.text, encoding_size(bias),
                profile.for_setting(len(bias.unbiased)), seed=s, device=device, progress=progress,
                desc=f"{dataset} {label}".strip(), groups=splits["train"].groups,
                statements=train_caps.statement)
            t_train += time.perf_counter() - t0
        t0 = time.perf_counter()
        scores = _probed_models({key: models[(key, s)] for key in distinct}, distinct, s, splits, classes,
                                profile.probe_steps)
        t_probe += time.perf_counter() - t0
        for sweep_name, sweep in sweeps.items():
            for col, (label, bias) in enumerate(sweep.items(), start=1):
                part = scores[scores["key"] == setting_key(bias)].drop(columns="key").copy()
                part.insert(0, "dataset", dataset)
                part.insert(1, "sweep", sweep_name)
                part.insert(2, "column", col)
                part.insert(3, "setting", label)
                part.insert(4, "selected", format_factor_set(bias.selected, semantics))
                part.insert(5, "perturbed", format_factor_set(bias.perturbed, semantics))
                part.insert(6, "seed", s)
                part.insert(9, "role", [factor_role(bias, f, semantics) for f in part["factor"]])
                frames.append(part)
    table = pd.concat(frames, ignore_index=True)
    # A factor the captions select and never perturb that ends unlearned contradicts the theorem's
    # prediction: say so, naming it (each model once, though a setting may sit in two sweeps).
    warn_unlearned(table.drop_duplicates(["setting", "seed", "encoder", "factor", "probe"]),
                   f"{dataset or 'image-text'} sweeps", stacklevel=2)
    config = {
        "dataset": dataset,
        "profile": asdict(profile),
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
                  "probe_steps": profile.probe_steps}
    return ImageTextRun(table, models, seconds, config, probe_data)


def run_scene_sweeps(
    profile: ImageTextProfile | None = None,
    seed: int = 0,
    sweeps: Sequence[str] = ("selection", "perturbation"),
    device: str | None = None,
    progress: bool | None = None,
    cache_dir: str | Path | None = None,
    settings: Mapping[str, Mapping[str, CaptionBias]] | None = None,
    iid_batches: bool = False,
) -> ImageTextRun:
    """The selection and perturbation sweeps on the rendered scenes (the paper's Fig. 6 and 16).

    Renders (or loads from the cache) ``n_train + n_probe_train + n_probe_test`` scenes of
    dataset seed ``seed``; captions are drawn per setting with caption seed = training seed.

    Args:
        profile: sizes; default :func:`~mmcl_helpers.core.profiles.image_text_profile` of the active
            profile.
        seed: data seed and first training seed.
        sweeps: which of ``selection`` (7 settings) and ``perturbation`` (7 settings, most
            perturbed first) to run; a profile with ``scene_columns="key"`` keeps only the
            columns of :data:`KEY_SCENE_COLUMNS`.
        device, progress: as in :func:`train_pair_encoders`.
        cache_dir: render cache folder (see :func:`~mmcl_helpers.datasets.scenes.load_or_render`).
        settings: sweeps of your own (name -> setting label -> bias, e.g. from
            :func:`~mmcl_helpers.datasets.naming.bias_from_names`), run with the same data,
            training and probes instead of ``sweeps``.
        iid_batches: draw every batch i.i.d. from the same training scenes, ignoring the
            profile's contrast groups (the paper's batches; chapter 5's feature-suppression
            baseline: same pictures, same steps, only the batch composition differs).

    Returns:
        :class:`ImageTextRun`; its factors are the 7 semantics, the 5 image-specific factors of
        :data:`~mmcl_helpers.datasets.scenes.IMAGE_FACTORS` and ``template``.
    """
    v.check_params("run_scene_sweeps", profile=(profile, [v.InstanceOf(ImageTextProfile), None]),
                   seed=(seed, v.NONNEG_INT), progress=(progress, [v.BOOLEAN, None]),
                   iid_batches=(iid_batches, v.BOOLEAN))
    device = v.check_device(device, "run_scene_sweeps")
    profile = profile or image_text_profile()
    chosen = scene_sweep_settings(profile, sweeps, settings)
    t0 = time.perf_counter()
    splits = scene_splits(profile, seed, cache_dir)
    if iid_batches:
        splits["train"] = replace(splits["train"], groups=None)
    render = time.perf_counter() - t0
    run = run_sweeps(chosen, splits, SEMANTIC_FACTORS,
                     DISCRETE_FACTORS, partial(scene_encoding_size, dims_per_factor=profile.dims_per_factor),
                     profile, seed, "scenes", device, progress)
    run.seconds = {"render": round(render, 1), **run.seconds}
    run.config["data_seed"] = seed
    run.config["iid_batches"] = iid_batches
    return run


def scene_sweep_settings(
    profile: ImageTextProfile, sweeps: Sequence[str] = ("selection", "perturbation"),
    settings: Mapping[str, Mapping[str, CaptionBias]] | None = None,
) -> dict[str, dict[str, CaptionBias]]:
    """The sweeps :func:`run_scene_sweeps` runs for these arguments: name -> (label -> setting).

    Raises:
        ValueError: an unknown sweep name, or ``settings`` that are not scene settings.
    """
    known = {"selection": named_selection_sweep(), "perturbation": named_perturbation_sweep()}
    if profile.scene_columns == "key":
        known = {name: {k: b for k, b in sweep.items() if k in KEY_SCENE_COLUMNS[name]}
                 for name, sweep in known.items()}
    if settings is not None:
        bad = [b for sweep in settings.values() for b in sweep.values()
               if not isinstance(b, CaptionBias) or b.n_semantic != len(SEMANTIC_FACTORS)]
        if not settings or bad or not all(settings.values()):
            raise ValueError("settings must map sweep names to non-empty {label: CaptionBias} "
                             f"over the {len(SEMANTIC_FACTORS)} scene semantics; got {settings!r}.")
        known, sweeps = {k: dict(v) for k, v in settings.items()}, list(settings)
    unknown = sorted(set(sweeps) - set(known))
    if unknown:
        raise ValueError(f"unknown sweep(s) {unknown}; allowed are {sorted(known)}.")
    return {name: known[name] for name in sweeps}


def sweep_plan(sweeps: Mapping[str, Mapping[str, CaptionBias]], profile: ImageTextProfile
               ) -> list[PlannedTraining]:
    """What :func:`run_sweeps` trains for ``sweeps``: one pair of encoders per distinct setting and
    seed (``profile.seeds``), each with the sizes ``profile.for_setting`` gives it."""
    distinct = {setting_key(b): b for sweep in sweeps.values() for b in sweep.values()}
    return merge_plans([PlannedTraining("image_text", 1, profile.seeds, profile.steps,
                                        profile.for_setting(len(b.unbiased))) for b in distinct.values()])


def scene_sweep_plan(
    profile: ImageTextProfile | None = None, sweeps: Sequence[str] = ("selection", "perturbation"),
    settings: Mapping[str, Mapping[str, CaptionBias]] | None = None,
) -> list[PlannedTraining]:
    """What :func:`run_scene_sweeps` with these arguments trains (:func:`sweep_plan`)."""
    profile = profile or image_text_profile()
    return sweep_plan(scene_sweep_settings(profile, sweeps, settings), profile)


def scene_parts(profile: ImageTextProfile, seed: int = 0, cache_dir: str | Path | None = None,
                ) -> tuple[dict[str, tuple[SceneLatents, np.ndarray]], np.ndarray | None]:
    """The scenes behind :func:`scene_splits`: ``{part: (latents, images)}`` and the groups.

    Chapter 6's policy study reads its scenes here too, so both chapters train on the same
    pictures with the same contrast groups.

    Returns:
        ``({"train": ..., "probe_train": ..., "probe_test": ...}, groups)``; images (N, 64, 64, 3)
        uint8, groups (G, group_size) indices into the training part, or ``None`` when
        ``profile.group_fraction`` is 0.
    """
    g = profile.group_size
    n_grouped = g * int(round(profile.group_fraction * profile.n_train / g))
    n_grouped = min(n_grouped, g * ((profile.n_train - 1) // g))  # keep one independent scene
    sizes = {"train": profile.n_train - n_grouped, "probe_train": profile.n_probe_train,
             "probe_test": profile.n_probe_test}
    parts, start = {}, 0
    for part, n in sizes.items():
        parts[part] = load_or_render(n, seed=seed, start=start, cache_dir=cache_dir)
        start += n_grouped if part == "train" else 0
        start += n
    groups = None
    if n_grouped:
        # Indices after every independent scene, so no caption draw is shared with them.
        lat_g, img_g = load_or_render(n_grouped, seed=seed, start=start, cache_dir=cache_dir,
                                      group_size=g, shape_share=profile.group_shape_share)
        lat, img = parts["train"]
        groups = len(lat) + np.arange(n_grouped).reshape(-1, g)
        lat = SceneLatents(**{k: np.concatenate([a, lat_g.as_dict()[k]])
                              for k, a in lat.as_dict().items()})
        parts["train"] = (lat, np.concatenate([img, img_g]))
    return parts, groups


def scene_splits(profile: ImageTextProfile, seed: int = 0,
                 cache_dir: str | Path | None = None) -> dict[str, Split]:
    """The training and probe splits of the scene sweeps (rendered, or read from the cache).

    The probe splits are ``n_probe_train`` and ``n_probe_test`` independent scenes. The training
    split holds ``n_train`` scenes: independent ones first, then, when ``profile.group_fraction``
    > 0, about that share of ``n_train`` in contrast groups of ``profile.group_size`` scenes that
    share every factor but the shape (:func:`~mmcl_helpers.datasets.scenes.sample_shape_groups`;
    ``Split.groups`` indexes them). Each scene, grouped or not, is on its own a draw from the
    causal graph, so a uniform batch over the training split is still an i.i.d.-like batch.

    Args:
        profile: sizes and the grouping.
        seed: data seed.
        cache_dir: as in :func:`~mmcl_helpers.datasets.scenes.load_or_render`.

    Returns:
        ``{"train": Split, "probe_train": Split, "probe_test": Split}``.
    """
    parts, groups = scene_parts(profile, seed, cache_dir)
    splits = {}
    for part, (latents, images) in parts.items():
        labels = {name: getattr(latents, name) for name in SEMANTIC_FACTORS + IMAGE_FACTORS}
        splits[part] = Split(images, labels,
                             lambda bias, s, lat=latents: scene_captions(lat, bias, seed=s),
                             groups=groups if part == "train" else None)
    return splits


def run_mpi3d_sweeps(
    path: str | Path | None = None,
    profile: ImageTextProfile | None = None,
    seed: int = 0,
    sweeps: Sequence[str] = ("selection", "perturbation"),
    sizes: Sequence[int] | None = None,
    device: str | None = None,
    progress: bool | None = None,
) -> ImageTextRun:
    """The MPI3D-complex sweeps (the paper's Fig. 5): same training and probes as the scenes.

    Uses the paper's train/eval/test split (:func:`~mmcl_helpers.datasets.mpi3d.mpi3d_splits`):
    up to ``profile.mpi3d_train`` training images, probes fitted on the eval split (at most
    ``n_probe_train`` images) and scored on the test split (at most ``n_probe_test``).

    Args:
        path: the file; default :func:`~mmcl_helpers.datasets.mpi3d.find_mpi3d`.
        profile: sizes; default of the active profile.
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
    from mmcl_helpers.datasets import mpi3d

    v.check_params("run_mpi3d_sweeps", profile=(profile, [v.InstanceOf(ImageTextProfile), None]),
                   seed=(seed, v.NONNEG_INT), progress=(progress, [v.BOOLEAN, None]))
    device = v.check_device(device, "run_mpi3d_sweeps")
    profile = profile or image_text_profile()
    from mmcl_helpers.datasets.mpi3d_synthetic import mpi3d_sizes

    sizes = tuple(sizes) if sizes is not None else mpi3d_sizes()  # the synthetic file's in a dry run
    chosen = _mpi3d_sweeps(sweeps)
    t0 = time.perf_counter()
    images = mpi3d.load_mpi3d_images(path, sizes)
    split_idx = mpi3d.mpi3d_splits(seed, sizes)
    rng = np.random.default_rng(seed)
    caps = {"train": profile.mpi3d_train, "eval": profile.n_probe_train, "test": profile.n_probe_test}
    splits = {}
    for part, name in (("train", "train"), ("probe_train", "eval"), ("probe_test", "test")):
        idx = split_idx[name]
        if len(idx) > caps[name]:
            idx = np.sort(rng.choice(idx, caps[name], replace=False))
        labels_arr = mpi3d.mpi3d_factors(idx, sizes)
        labels = {f: labels_arr[:, k] for k, f in enumerate(mpi3d.MPI3D_FACTORS)}
        splits[part] = Split(np.asarray(images[idx]), labels,
                              lambda bias, s, i=idx: mpi3d.mpi3d_captions(i, bias, seed=s, sizes=sizes))
    load = time.perf_counter() - t0
    classes = dict(zip(mpi3d.MPI3D_FACTORS, sizes))
    run = run_sweeps(chosen, splits, mpi3d.MPI3D_SEMANTICS, classes,
                     lambda b: max(3, len(b.unbiased)), profile, seed, "mpi3d", device, progress)
    run.seconds = {"load": round(load, 1), **run.seconds}
    return run


def _mpi3d_sweeps(sweeps: Sequence[str]) -> dict[str, dict[str, CaptionBias]]:
    from mmcl_helpers.datasets import mpi3d

    known = {"selection": mpi3d.mpi3d_selection_sweep(), "perturbation": mpi3d.mpi3d_perturbation_sweep()}
    unknown = sorted(set(sweeps) - set(known))
    if unknown:
        raise ValueError(f"unknown sweep(s) {unknown}; allowed are {sorted(known)}.")
    return {name: known[name] for name in sweeps}


def mpi3d_sweep_plan(profile: ImageTextProfile | None = None,
                     sweeps: Sequence[str] = ("selection", "perturbation")) -> list[PlannedTraining]:
    """What :func:`run_mpi3d_sweeps` with these arguments trains (:func:`sweep_plan`)."""
    return sweep_plan(_mpi3d_sweeps(sweeps), profile or image_text_profile())


def norm_channel_table(run: ImageTextRun, labels: Sequence[str],
                       sweep: str = "selection") -> pd.DataFrame:
    """What the length of the raw outputs carries, for some settings of a run.

    The cosine loss sees only the direction of each output. This re-encodes the run's held-out
    pairs three ways and probes every factor with the MLP probes of the sweep: the raw output,
    the unit vector (what the book probes everywhere else) and the length alone (one number).

    Args:
        run: a run of :func:`run_sweeps` (or of a dataset's wrapper) from this session, with its
            models and ``probe_data``.
        labels: setting labels of ``sweep`` to probe, e.g. ``["{shape}"]``.
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
    missing = [lab for lab in labels if lab not in known]
    if missing:
        raise ValueError(f"setting(s) {missing} are not in the {sweep} sweep; allowed: "
                         f"{list(known)}.")
    modes = {"raw output": lambda z: z, "unit vector": lambda z: F.normalize(z, dim=1),
             "length only": lambda z: z.norm(dim=1, keepdim=True)}
    frames = []
    for seed in run.config["seeds"]:
        for label in labels:
            bias = known[label]
            key = setting_key(bias)
            raw, phrasings = {}, {}
            _encode_held_out(run.models[(key, seed)], key, bias, seed, data["splits"], raw,
                             phrasings, unit=False)
            for mode, fn in modes.items():
                reps = {k: (fn(a), fn(b)) for k, (a, b) in raw.items()}
                sc = _probe_held_out(reps, phrasings, [key], data["splits"], data["classes"],
                                     data["probe_steps"], seed=seed + 1000, linear=False)
                sc["setting"], sc["mode"], sc["seed"] = label, mode, seed
                sc["role"] = [factor_role(bias, f, data["semantics"]) for f in sc["factor"]]
                frames.append(sc)
    table = pd.concat(frames, ignore_index=True)
    out = table.pivot_table(index=["setting", "encoder", "factor", "role"], columns="mode",
                            values="score", aggfunc="mean", sort=False)[list(modes)]
    out.columns.name = None
    return out


def scene_setting(
    selected: Sequence[str],
    perturbed: Sequence[str] = (),
    profile: ImageTextProfile | None = None,
    seed: int = 0,
    device: str | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Train and probe one captioning setting of chapter 5's scenes, with the chapter's recipe.

    The same data, encoders, training and probes as :func:`run_scene_sweeps` (it is that call
    with a one-setting sweep), for one training seed: ``seed`` is the data, caption and training
    seed and ``profile.seeds`` is not used. For a setting that chapter 5 also trains, the models and
    the linear probe scores are the chapter's first seed's; the MLP probes of one call train as
    one ensemble, so their scores differ from the chapter's by the probe initialisation (a few
    hundredths at the smoke profile).

    Args:
        selected: scene factors the captions describe, e.g. ``["shape", "x_pos"]``.
        perturbed: the selected factors they may misreport (resampled with the chapter's
            probability, :data:`~mmcl_helpers.datasets.naming.SCENE_P_PERTURB`).
        profile: sizes; default the active profile's.
        seed: data seed and training seed.
        device, progress: as in :func:`train_pair_encoders`.

    Returns:
        long-form frame with the columns ``encoder`` (``x``/``t``), ``factor`` (the semantics, the
        image-specific factors and ``template``), ``probe`` (``linear``/``mlp``), ``metric``
        (``mcc`` for discrete factors, ``r2`` for continuous ones) and ``score``.

    Raises:
        ~mmcl_helpers.datasets.naming.UnknownFactorError: a name that is not a scene factor (or
            a repeated one).
        InvalidIndexSetError: an empty selection, or ``perturbed`` not a proper subset of it.
    """
    bias = bias_from_names(selected, perturbed)
    profile = (profile or image_text_profile()).with_overrides(seeds=1)
    run = run_scene_sweeps(profile, seed, device=device, progress=progress,
                           settings={"setting": {format_factor_set(bias.selected, SEMANTIC_FACTORS): bias}})
    order = {f: i for i, f in enumerate([*SEMANTIC_FACTORS, *IMAGE_FACTORS, "template"])}
    out = run.scores[["encoder", "factor", "probe", "metric", "score"]].copy()
    rank = {"factor": order, "encoder": {"x": 0, "t": 1}, "probe": {"linear": 0, "mlp": 1}}
    out = out.sort_values(["encoder", "factor", "probe"], key=lambda c: c.map(rank[c.name]))
    return out.reset_index(drop=True)
