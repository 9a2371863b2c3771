"""The numerical study's encoders in the model store (:mod:`~mmcl_helpers.core.model_store`).

:func:`training_inputs` lists every input of one training request, :func:`training_cache_path`
names its file, :func:`trained_encoders` reads it from the store or trains and files it, and
:func:`load_cached_result` rebuilds a :class:`~mmcl_helpers.numerical.training.TrainResult` from a
file (any mismatch is a miss that warns). :func:`~mmcl_helpers.numerical.experiments.run_numerical`
uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from mmcl_helpers.core import model_store
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.profiles import Profile
from mmcl_helpers.numerical.simulation import MultimodalSimulation
from mmcl_helpers.numerical.training import TrainResult, build_encoders, train_mmcl

__all__ = ["KIND", "training_inputs", "training_cache_path", "load_cached_result", "trained_encoders"]

#: The model store's folder for the numerical encoders.
KIND = "numerical"


def training_inputs(
    settings: Sequence[CaptionBias], dependent: bool, n_image: int, n_text: int, profile: Profile,
    seed: int, encoding_sizes: list[int] | None, device: str,
) -> dict:
    """Every input of one :func:`~mmcl_helpers.numerical.training.train_mmcl` request, as JSON values
    (settings, latent model, profile, seed, encoding sizes, device type)."""
    return {
        "settings": [[sorted(b.selected), sorted(b.perturbed), b.p_perturb, b.n_semantic]
                     for b in settings],
        "dependent": dependent, "n_image": n_image, "n_text": n_text, "profile": asdict(profile),
        "seed": seed, "encoding_sizes": encoding_sizes, "device": torch.device(device).type,
    }


def training_cache_path(
    settings: Sequence[CaptionBias], dependent: bool, n_image: int, n_text: int, profile: Profile,
    seed: int, encoding_sizes: list[int] | None, device: str,
) -> Path:
    """Where :func:`run_numerical` keeps the encoders trained for exactly these inputs.

    The file name hashes :func:`training_inputs` with the store version, the torch version and a
    digest of the package's source (:func:`~mmcl_helpers.core.model_store.model_path`), so a changed
    input or a changed code never reads a stale model. The folder is ``$MMCL_CACHE_DIR`` (default
    ``~/.cache/mmcl_helpers``) ``/numerical``. The ``.pt`` file holds tensors only (read with
    ``weights_only=True``); the ``.json`` beside it holds the inputs, which must match on load.
    """
    return model_store.model_path(KIND, training_inputs(settings, dependent, n_image, n_text, profile,
                                                        seed, encoding_sizes, device))


def trained_encoders(
    sim: MultimodalSimulation, dependent: bool, n_image: int, n_text: int, profile: Profile, seed: int,
    encoding_sizes: list[int] | None, device: str, progress: bool | None = None,
    cache: bool | None = None,
) -> tuple[TrainResult, bool]:
    """The encoders of ``sim`` 's settings: from the model store, else trained and filed.

    Returns:
        ``(result, from_store)``.
    """
    inputs = training_inputs(sim.biases, dependent, n_image, n_text, profile, seed, encoding_sizes,
                             device)
    return model_store.fetch_or_train(
        KIND, inputs, lambda: train_mmcl(sim, profile, seed, encoding_sizes, device, progress),
        _pack, lambda tensors, meta: _result_from_tensors(tensors, meta, sim, profile, device),
        cache=cache, plan={"models": len(sim.biases), "steps": profile.steps})


def load_cached_result(path: Path, inputs: dict, sim: MultimodalSimulation, profile: Profile,
                       device: str) -> TrainResult | None:
    """The :class:`TrainResult` kept at ``path`` for ``inputs`` (:func:`training_inputs`), else None
    (a damaged or foreign file warns)."""
    return model_store.load_model(
        KIND, inputs, lambda tensors, meta: _result_from_tensors(tensors, meta, sim, profile, device),
        path)


def _pack(result: TrainResult) -> tuple[dict, dict]:
    return _result_tensors(result), {"seconds": result.seconds, "members": result.members,
                                     "config": result.config}


def _result_tensors(result: TrainResult) -> dict[str, torch.Tensor]:
    out = {"history": torch.from_numpy(np.ascontiguousarray(result.history))}
    for name, modules in (("f_x", result.f_x), ("f_t", result.f_t)):
        for g, module in enumerate(modules):
            out.update({f"{name}.{g}.{k}": t for k, t in module.state_dict().items()})
    return out


def _result_from_tensors(tensors: dict, meta: dict, sim: MultimodalSimulation, profile: Profile,
                         device: str) -> TrainResult:
    """Rebuild a cached :class:`TrainResult` (raises on any mismatch, which the caller treats as a miss)."""
    members = [(int(g), int(m)) for g, m in meta["members"]]
    sizes = [int(k) for k in meta["config"]["encoding_sizes"]]
    if len(members) != len(sim.biases) or len(sizes) != len(sim.biases):
        raise ValueError("the cached result is for another number of settings")
    f_x, f_t = [], []
    for g in range(max(gm[0] for gm in members) + 1):
        ks = sorted((k for k, gm in enumerate(members) if gm[0] == g), key=lambda k: members[k][1])
        fx, ft = build_encoders(sim.x_dim, [sim.t_dims[k] for k in ks], [sizes[k] for k in ks], profile)
        for name, module, out in (("f_x", fx, f_x), ("f_t", ft, f_t)):
            prefix = f"{name}.{g}."
            module.load_state_dict({k[len(prefix):]: t for k, t in tensors.items() if k.startswith(prefix)})
            out.append(module.to(device).train())
    history = tensors["history"].numpy()
    if history.shape != (profile.steps, len(sim.biases)):
        raise ValueError("the cached loss history has the wrong shape")
    return TrainResult(list(sim.biases), f_x, f_t, members, history, float(meta["seconds"]),
                       dict(meta["config"]))
