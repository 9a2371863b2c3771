"""Image-caption experiments (paper §5.2-5.3): one import for chapter 5's names.

Kept for compatibility: the code lives in modules of one concern each, and this module only
re-exports their names under the path chapters and users already import:

- sizes: :mod:`~mmcl_helpers.profiles` (:data:`IMAGE_TEXT_PROFILES`, :func:`image_text_profile`);
- training and encoding: :mod:`~mmcl_helpers.pair_training`;
- probing: :mod:`~mmcl_helpers.probes` (:func:`probe_representations`, :class:`FactorSpec`);
- sweeps and dataset adapters: :mod:`~mmcl_helpers.sweeps` (splits are
  :class:`~mmcl_helpers.datasets.splits.Split`);
- reading the scores: :mod:`~mmcl_helpers.sweep_reports`.
"""

from __future__ import annotations

from .datasets.scenes import SCENE_ENCODING_SIZES, scene_encoding_size
from .datasets.splits import Split
from .pair_training import PairEncoders, encode_pairs, train_pair_encoders
from .probes import FactorSpec, probe_representations
from .profiles import (
    IMAGE_TEXT_PROFILES,
    ImageTextProfile,
    ImageTextSettings,
    image_text_departures,
    image_text_profile,
    image_text_settings,
    image_text_table,
)
from .results import factor_role
from .sweep_reports import compare_to_paper_figure, image_text_checks, scene_score_grid, sweep_heatmaps
from .sweeps import (
    ImageTextRun,
    _bias_key,  # noqa: F401 - kept for compatibility (tests import it here)
    norm_channel_table,
    run_mpi3d_sweeps,
    run_scene_sweeps,
    run_sweeps,
)

#: Kept for compatibility: the former private name of :class:`~mmcl_helpers.datasets.splits.Split`.
_Split = Split
#: Kept for compatibility: the former private name of :func:`~mmcl_helpers.results.factor_role`.
_role = factor_role

__all__ = [
    "ImageTextProfile",
    "ImageTextSettings",
    "IMAGE_TEXT_PROFILES",
    "image_text_profile",
    "image_text_settings",
    "image_text_table",
    "image_text_departures",
    "SCENE_ENCODING_SIZES",
    "scene_encoding_size",
    "FactorSpec",
    "PairEncoders",
    "Split",
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
