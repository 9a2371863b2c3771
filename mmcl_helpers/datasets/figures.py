"""Figures of example image-caption pairs, one row per bias setting (like the paper's Fig. 15)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np

from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.datasets.captions import scene_captions
from mmcl_helpers.datasets.scenes import render_scenes, sample_scene_latents

__all__ = ["pairs_figure", "scene_pairs_figure"]


def pairs_figure(
    images: np.ndarray,
    captions: Sequence[Sequence[str]],
    row_labels: Sequence[str],
    title: str = "",
    wrap: int = 28,
) -> plt.Figure:
    """Grid of images with their captions underneath, one row per setting.

    Args:
        images: uint8 images shown in every row, shape (K, H, W, 3).
        captions: ``captions[r][k]`` is image k's caption in row r; R rows.
        row_labels: R labels (e.g. the selected or perturbed set), shown left of each row.
        title: figure title.
        wrap: caption line width in characters.

    Returns:
        the figure.
    """
    n_rows, n_cols = len(captions), len(images)
    if len(row_labels) != n_rows or any(len(row) != n_cols for row in captions):
        raise ValueError(
            f"need one label per row ({n_rows} rows, got {len(row_labels)}) and one caption per "
            f"image ({n_cols} images) in every row."
        )
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(2.3 * n_cols + 1.2, 2.45 * n_rows),
                             squeeze=False)
    for r in range(n_rows):
        for k in range(n_cols):
            ax = axes[r, k]
            ax.imshow(images[k], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_xlabel(textwrap.fill(captions[r][k], wrap), fontsize=6.5)
        axes[r, 0].set_ylabel(row_labels[r], fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1, 0.97) if title else None)
    return fig


def scene_pairs_figure(
    settings: Mapping[str, CaptionBias],
    n_examples: int = 4,
    seed: int = 0,
    caption_seed: int = 0,
    title: str = "Rendered scenes and their captions",
) -> plt.Figure:
    """Example scenes with their captions under each setting (rows labelled by setting).

    Args:
        settings: label -> bias, e.g. :func:`~mmcl_helpers.datasets.naming.named_selection_sweep`.
        n_examples: scenes per row (the same scenes in every row).
        seed: scene seed; caption_seed: caption seed.
        title: figure title.
    """
    latents = sample_scene_latents(n_examples, seed)
    images = render_scenes(latents)
    captions = [scene_captions(latents, bias, caption_seed).text for bias in settings.values()]
    return pairs_figure(images, captions, list(settings), title)
