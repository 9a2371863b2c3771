"""Helpers for the executable book *Negate or Embrace* (Cai et al., 2025).

The front door: ``from mmcl_helpers import ...`` gives the names a study needs, in the order a
student uses them (the book page "Using mmcl_helpers in your own work" has a recipe for each step):

1. **a biased dataset**: :class:`~mmcl_helpers.biases.CaptionBias` (which semantics captions select
   and perturb), :class:`~mmcl_helpers.latents.LatentModel`,
   :class:`~mmcl_helpers.simulation.MultimodalSimulation`,
   :func:`~mmcl_helpers.experiments.selection_sweep`,
   :func:`~mmcl_helpers.experiments.perturbation_sweep`;
2. **train**: :func:`~mmcl_helpers.training.train_mmcl`, :func:`~mmcl_helpers.losses.info_nce`, or
   train and probe in one call with :func:`~mmcl_helpers.experiments.run_numerical`;
3. **probe**: :func:`~mmcl_helpers.probes.linear_r2`, :func:`~mmcl_helpers.probes.mlp_r2`,
   :func:`~mmcl_helpers.experiments.score_grid`, :func:`~mmcl_helpers.experiments.theorem_pattern`;
4. **the scene study** (rendered images, real captions):
   :func:`~mmcl_helpers.image_text.image_text_settings`,
   :func:`~mmcl_helpers.image_text.run_scene_sweeps`,
   :func:`~mmcl_helpers.image_text.sweep_heatmaps`,
   :class:`~mmcl_helpers.datasets.policies.MentionPolicy`,
   :func:`~mmcl_helpers.practice.run_policy_study`;

plus the compute profiles (:func:`~mmcl_helpers.profiles.active_profile`,
:func:`~mmcl_helpers.profiles.get_profile`, :class:`~mmcl_helpers.profiles.Profile`) and a
chapter's set-up (:func:`~mmcl_helpers.notebook.setup_notebook`). The names are imported on first
use, so ``import mmcl_helpers`` stays fast (no torch until a name needs it).

Modules, one concern each:

- :mod:`~mmcl_helpers.profiles` -- compute profiles (``MMCL_PROFILE``);
- :mod:`~mmcl_helpers.notebook` -- the set-up cell of every chapter;
- :mod:`~mmcl_helpers.biases` -- selected/perturbed index sets and the paper's theta/rho codes;
- :mod:`~mmcl_helpers.latents` -- the latent blocks s, m_x, m_t and caption perturbation;
- :mod:`~mmcl_helpers.mixing` -- invertible mixing functions g_x, g_t;
- :mod:`~mmcl_helpers.simulation` -- image-caption pairs for several bias settings;
- :mod:`~mmcl_helpers.encoders` -- MLP encoders f_x, f_t (trainable side by side);
- :mod:`~mmcl_helpers.losses` -- symmetric InfoNCE and its alignment/entropy split;
- :mod:`~mmcl_helpers.training` -- the training loop;
- :mod:`~mmcl_helpers.probes` -- R^2 and MCC probes;
- :mod:`~mmcl_helpers.experiments` -- settings in, tidy score table out;
- :mod:`~mmcl_helpers.downstream` -- regression and classification on frozen representations;
- :mod:`~mmcl_helpers.identifiability` -- the proof's objects: Darmois codes, entropy estimators,
  Eq. (2);
- :mod:`~mmcl_helpers.image_encoders` -- the convolutional image and text encoders;
- :mod:`~mmcl_helpers.image_text` -- image-text sizes, training and probing on scenes and MPI3D;
- :mod:`~mmcl_helpers.datasets` -- rendered scenes, their captions and policies, MPI3D-complex;
- :mod:`~mmcl_helpers.audit` -- auditing captions before training;
- :mod:`~mmcl_helpers.practice` -- the practitioner's studies of chapter 6;
- :mod:`~mmcl_helpers.plots` -- figures in the paper's layout;
- :mod:`~mmcl_helpers.paper` -- the paper's reported values, for comparison tables;
- :mod:`~mmcl_helpers.cli` -- the ``mmcl`` command;
- :mod:`~mmcl_helpers.results` -- one result type and schema, a factor's role, the learned/discarded bars;
- :mod:`~mmcl_helpers.pair_training` -- training and encoding the image-text models;
- :mod:`~mmcl_helpers.sweeps` -- image-text sweeps and their dataset adapters (scenes, MPI3D);
- :mod:`~mmcl_helpers.sweep_reports` -- score grids, heatmaps and checks of image-text sweeps;
- :mod:`~mmcl_helpers.suppression` -- feature suppression: i.i.d. batches against contrast groups (chapter 5);
- :mod:`~mmcl_helpers.alignment` -- the late alignment weight against the paper's loss (chapter 5);
- :mod:`~mmcl_helpers.programme` -- the paper's numerical programme as resumable jobs (``sweep`` command);
- :mod:`~mmcl_helpers.validation` -- declarative argument checks with errors that name the argument;
- :mod:`~mmcl_helpers.training_cache` -- which cache file holds the numerical study's encoders;
- :mod:`~mmcl_helpers.storage` -- the cache folder and safe (tensors + JSON) caches, checksums;
- :mod:`~mmcl_helpers.dry_run` -- ``MMCL_DRY_RUN=1`` caps (a testing aid);
- :mod:`~mmcl_helpers.precision` -- the numeric precision of a training run (`Profile.precision`);
- :mod:`~mmcl_helpers.costs` -- FLOPs and measured operations per training step, and the cost tables;
- :mod:`~mmcl_helpers.utils` -- hashed random numbers.

The glossary from the paper's notation to these names is in ``book/glossary.md``.
"""

from __future__ import annotations

import importlib
from typing import Any

# The one version number of the book and the package: pyproject.toml reads it from here, and every
# chapter's Colab set-up cell installs the tag ``v<__version__>`` (tests/test_repository.py checks).
__version__ = "0.1.0"

#: Front-door name -> the module that defines it (imported lazily by :func:`__getattr__`).
_FRONT_DOOR: dict[str, str] = {
    # compute profiles and the set-up cell
    "Profile": "profiles",
    "active_profile": "profiles",
    "get_profile": "profiles",
    "setup_notebook": "notebook",
    # step 1: a biased dataset
    "CaptionBias": "biases",
    "InvalidIndexSetError": "biases",
    "LatentModel": "latents",
    "MultimodalSimulation": "simulation",
    "selection_sweep": "experiments",
    "perturbation_sweep": "experiments",
    # step 2: train
    "info_nce": "losses",
    "train_mmcl": "training",
    "run_numerical": "experiments",
    "NumericalRun": "experiments",
    # step 3: probe
    "linear_r2": "probes",
    "mlp_r2": "probes",
    "score_grid": "experiments",
    "theorem_pattern": "experiments",
    # the scene study
    "image_text_settings": "image_text",
    "run_scene_sweeps": "image_text",
    "scene_setting": "sweeps",
    "sweep_heatmaps": "image_text",
    "MentionPolicy": "datasets.policies",
    "run_policy_study": "practice",
}

__all__ = [*_FRONT_DOOR, "__version__"]


def __getattr__(name: str) -> Any:
    """Import a front-door name from its module on first use (PEP 562)."""
    module = _FRONT_DOOR.get(name)
    if module is None:
        raise AttributeError(f"module 'mmcl_helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_FRONT_DOOR})
