"""Helpers for the executable book *Negate or Embrace* (Cai et al., 2025).

The front door: ``from mmcl_helpers import ...`` gives the names a study needs, in the order a
student uses them (the book page "Using mmcl_helpers in your own work" has a recipe for each step):

1. **a biased dataset**: :class:`~mmcl_helpers.core.biases.CaptionBias` (which semantics captions select
   and perturb), :class:`~mmcl_helpers.numerical.latents.LatentModel`,
   :class:`~mmcl_helpers.numerical.simulation.MultimodalSimulation`,
   :func:`~mmcl_helpers.numerical.experiments.numerical_selection_sweep`,
   :func:`~mmcl_helpers.numerical.experiments.numerical_perturbation_sweep`;
2. **train**: :func:`~mmcl_helpers.numerical.training.train_mmcl`,
   :func:`~mmcl_helpers.core.losses.info_nce`, or
   train and probe in one call with :func:`~mmcl_helpers.numerical.experiments.run_numerical`;
3. **probe**: :func:`~mmcl_helpers.numerical.probes.linear_r2`, :func:`~mmcl_helpers.numerical.probes.mlp_r2`,
   :func:`~mmcl_helpers.numerical.experiments.score_grid`,
   :func:`~mmcl_helpers.numerical.experiments.theorem_pattern`;
4. **the scene study** (rendered images, real captions):
   :func:`~mmcl_helpers.core.profiles.image_text_profile`,
   :func:`~mmcl_helpers.image_text.sweeps.run_scene_sweeps`,
   :func:`~mmcl_helpers.image_text.sweep_reports.sweep_heatmaps`,
   :class:`~mmcl_helpers.datasets.policies.MentionPolicy`,
   :func:`~mmcl_helpers.practice.studies.run_policy_study`;

plus the compute profiles (:func:`~mmcl_helpers.core.profiles.active_profile`,
:func:`~mmcl_helpers.core.profiles.get_profile`, :class:`~mmcl_helpers.core.profiles.Profile`) and a
chapter's set-up (:func:`~mmcl_helpers.book_support.notebook.setup_notebook`). The names are imported on first
use, so ``import mmcl_helpers`` stays fast (no torch until a name needs it).

The package is laid out by pipeline; each subpackage's docstring lists its modules:

- :mod:`~mmcl_helpers.core` -- what every study shares: the paper's sets (biases), compute
  profiles, results and their bars, the loss, the paper's values, storage, validation, random
  streams;
- :mod:`~mmcl_helpers.datasets` -- rendered scenes, their captions and policies, MPI3D-complex;
- :mod:`~mmcl_helpers.numerical` -- the numerical study of chapters 1-4 (latents, mixing,
  simulation, encoders, training, probes, experiments, downstream, the proof's objects, the
  paper's programme);
- :mod:`~mmcl_helpers.image_text` -- the image-text study of chapter 5 (encoders, training,
  sweeps, their reports, suppression, the late pull);
- :mod:`~mmcl_helpers.practice` -- caption audits and the policy studies of chapter 6;
- :mod:`~mmcl_helpers.book_support` -- the chapters' set-up cell and cost tables;
- :mod:`~mmcl_helpers.cli` -- the ``mmcl`` command (``python -m mmcl_helpers``).
- :mod:`~mmcl_helpers.exercises` -- the book's exercises in tiers and the checkers a student
  calls on an answer (``check("ex-01-pairs", answer)``).

Imports run one way: ``core`` <- ``datasets`` <- ``numerical`` <- ``image_text`` <- ``practice``
<- ``book_support`` <- ``exercises`` <- ``cli`` (tests/test_pipeline.py checks that no arrow runs back).

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
    "Profile": "core.profiles",
    "active_profile": "core.profiles",
    "get_profile": "core.profiles",
    "setup_notebook": "book_support.notebook",
    # step 1: a biased dataset
    "CaptionBias": "core.biases",
    "InvalidIndexSetError": "core.biases",
    "LatentModel": "numerical.latents",
    "MultimodalSimulation": "numerical.simulation",
    "numerical_selection_sweep": "numerical.experiments",
    "numerical_perturbation_sweep": "numerical.experiments",
    # step 2: train
    "info_nce": "core.losses",
    "train_mmcl": "numerical.training",
    "run_numerical": "numerical.experiments",
    "NumericalRun": "numerical.experiments",
    # step 3: probe
    "linear_r2": "numerical.probes",
    "mlp_r2": "numerical.probes",
    "score_grid": "numerical.experiments",
    "theorem_pattern": "numerical.experiments",
    # the scene study
    "image_text_profile": "core.profiles",
    "run_scene_sweeps": "image_text.sweeps",
    "scene_setting": "image_text.sweeps",
    "sweep_heatmaps": "image_text.sweep_reports",
    "MentionPolicy": "datasets.policies",
    "run_policy_study": "practice.studies",
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
