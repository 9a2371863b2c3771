"""The one type a dataset adapter hands to the image-text sweeps: a :class:`Split`.

A new dataset needs one adapter that returns ``{"train": Split, "probe_train": Split,
"probe_test": Split}`` (see :func:`~mmcl_helpers.image_text.sweeps.run_scene_sweeps` and
:func:`~mmcl_helpers.image_text.sweeps.run_mpi3d_sweeps`) and passes it to
:func:`~mmcl_helpers.image_text.sweeps.run_sweeps`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.datasets.perturbation import CaptionBatch

__all__ = ["Split", "SPLIT_PARTS"]

#: The parts a sweep needs (training pairs, pairs to fit the probes on, pairs to score them on).
SPLIT_PARTS: tuple[str, ...] = ("train", "probe_train", "probe_test")


@dataclass
class Split:
    """Images, per-factor labels and a caption function of one data split.

    Attributes:
        images: uint8 images, shape (N, 64, 64, 3) (a memory map is fine).
        labels: factor name -> its values, shape (N,) each (integers for discrete factors).
        caption: ``(bias, seed) -> CaptionBatch``: the N captions of this split under a setting.
        groups: contrast groups of a training split, shape (G, g): row k holds the indices of g
            samples that share every factor but one (the batch sampler of
            :func:`~mmcl_helpers.image_text.pair_training.train_pair_encoders` keeps them together);
            ``None`` for a split without groups.
    """

    images: np.ndarray
    labels: dict[str, np.ndarray]
    caption: Callable[[CaptionBias, int], CaptionBatch]
    groups: np.ndarray | None = None
