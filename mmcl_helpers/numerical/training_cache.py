"""The numerical study's training cache: which file holds the encoders of one training request.

:func:`training_cache_path` names the file by a hash of every input of training; the weights are
stored as tensors plus a JSON record by :mod:`~mmcl_helpers.core.storage`, and
``_load_cached_result`` rebuilds a :class:`~mmcl_helpers.numerical.training.TrainResult` from them (any
mismatch is a cache miss that warns). :func:`~mmcl_helpers.numerical.experiments.run_numerical` uses it.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from mmcl_helpers.core import storage
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.profiles import Profile
from mmcl_helpers.numerical.simulation import MultimodalSimulation
from mmcl_helpers.numerical.training import TrainResult, build_encoders

__all__ = ["TRAINING_VERSION", "training_cache_path"]

# Part of every cache key: bump it whenever a change to the code alters what training produces.
TRAINING_VERSION = 2


def training_cache_path(
    settings: Sequence[CaptionBias], dependent: bool, n_image: int, n_text: int, profile: Profile,
    seed: int, encoding_sizes: list[int] | None, device: str,
) -> Path:
    """Where :func:`run_numerical` keeps the encoders trained for exactly these inputs.

    The file name hashes every input of training (settings, latent model, profile, seed, encoding
    sizes, device type, torch version, :data:`TRAINING_VERSION` and a digest of the package's
    source, :func:`~mmcl_helpers.core.storage.source_digest`), so a changed input or a changed code
    never reads a stale model. The folder is ``$MMCL_CACHE_DIR`` (default
    ``~/.cache/mmcl_helpers``) ``/numerical``. The ``.pt`` file holds tensors only (read with
    ``weights_only=True``); the ``.json`` beside it holds the inputs, which must match on load.
    """
    payload = json.dumps(_training_request(settings, dependent, n_image, n_text, profile, seed,
                                           encoding_sizes, device), sort_keys=True)
    key = hashlib.sha256(payload.encode()).hexdigest()[:20]
    return storage.default_cache_dir() / "numerical" / f"mmcl-{key}.pt"


def _training_request(settings, dependent, n_image, n_text, profile, seed, encoding_sizes, device) -> dict:
    return {
        "version": TRAINING_VERSION, "torch": torch.__version__, "source": storage.source_digest(),
        "settings": [[sorted(b.selected), sorted(b.perturbed), b.p_perturb, b.n_semantic]
                     for b in settings],
        "dependent": dependent, "n_image": n_image, "n_text": n_text, "profile": asdict(profile),
        "seed": seed, "encoding_sizes": encoding_sizes, "device": torch.device(device).type,
    }


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


def _load_cached_result(path: Path, request: dict, sim: MultimodalSimulation, profile: Profile,
                        device: str) -> TrainResult | None:
    loaded = storage.load_weights(path, request)
    if loaded is None:
        return None
    try:
        return _result_from_tensors(*loaded, sim, profile, device)
    except Exception as err:  # noqa: BLE001 - a file that does not fit the request is a miss
        warnings.warn(f"ignoring the cache file {path} (it does not fit these settings: "
                      f"{type(err).__name__}: {str(err)[:120]}); training again.", storage.CacheWarning,
                      stacklevel=3)
        return None
