"""The rendered scenes for the caption audit: their vocabulary and the table to audit.

:func:`scene_vocabulary` lists the words the scene captions use for each factor;
:func:`scene_audit_frame` puts the word a faithful caption would use beside each caption. Both
feed :func:`~mmcl_helpers.practice.audit.audit_captions` (chapter 6).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from mmcl_helpers.datasets.captions import (
    BACKGROUND_PALETTE,
    OBJECT_PALETTE,
    S_POS_WORDS,
    SPOTLIGHT_PALETTE,
    X_WORDS,
    Y_WORDS,
    nearest_color_names,
    s_pos_words,
)
from mmcl_helpers.datasets.perturbation import CaptionBatch
from mmcl_helpers.datasets.scenes import (
    BACKGROUND_SV,
    OBJECT_SV,
    SHAPE_NAMES,
    SPOTLIGHT_SV,
    SceneLatents,
    hue_to_rgb,
)
from mmcl_helpers.datasets.vocabulary import AuditInputError, vocabulary_from_names

__all__ = ["scene_vocabulary", "scene_audit_frame"]


def scene_vocabulary() -> dict[str, dict[str, list[str]]]:
    """Vocabulary of the rendered scenes' captions (:func:`~mmcl_helpers.datasets.captions.scene_captions`).

    Keys are :data:`~mmcl_helpers.datasets.scenes.SEMANTIC_FACTORS`; values are the words the
    captions use, which are also the annotated values of :func:`scene_audit_frame`: shape names,
    ``X_WORDS``, ``Y_WORDS``, ``S_POS_WORDS``, and palette colour names.

    The three colour factors are named from overlapping palettes (all ten object colours are also
    CSS4 spotlight names, nine are XKCD background names, and 49 names are shared by the spotlight
    and background palettes), so a bare colour word cannot say which factor it describes. The
    vocabulary therefore qualifies each colour by the noun it precedes in every caption: object
    colour ``"{colour} {shape}"`` or ``"{colour} object"``, spotlight ``"{colour} spotlight"``,
    background ``"{colour} background"``.
    """
    return {
        "shape": vocabulary_from_names(SHAPE_NAMES),
        "x_pos": vocabulary_from_names(X_WORDS),
        "y_pos": vocabulary_from_names(Y_WORDS),
        "s_pos": vocabulary_from_names(S_POS_WORDS),
        "color": vocabulary_from_names(
            OBJECT_PALETTE, [f"{{}} {shape}" for shape in SHAPE_NAMES] + ["{} object"]
        ),
        "s_color": vocabulary_from_names(SPOTLIGHT_PALETTE, ["{} spotlight"]),
        "b_color": vocabulary_from_names(BACKGROUND_PALETTE, ["{} background"]),
    }


def scene_audit_frame(latents: SceneLatents, captions: CaptionBatch | Sequence[str]) -> pd.DataFrame:
    """Table to audit for a batch of scenes: the true word of each factor beside the caption.

    Args:
        latents: N scenes.
        captions: their N captions (a :class:`~mmcl_helpers.datasets.perturbation.CaptionBatch` or
            strings).

    Returns:
        DataFrame indexed by the scenes' ``index``, with one column per semantic factor (the word a
        faithful caption would use: shape name, column/row word, spotlight-position word, nearest
        palette colour name) and ``caption``. Audit it with :func:`scene_vocabulary`.
    """
    text = captions.text if isinstance(captions, CaptionBatch) else list(captions)
    if len(text) != len(latents):
        raise AuditInputError(f"got {len(text)} captions for {len(latents)} scenes; give one per scene.")
    words = {
        "shape": np.asarray(SHAPE_NAMES, dtype=object)[latents.shape],
        "x_pos": np.asarray(X_WORDS, dtype=object)[latents.x_pos],
        "y_pos": np.asarray(Y_WORDS, dtype=object)[latents.y_pos],
        "s_pos": s_pos_words(latents.s_pos),
        "color": nearest_color_names(hue_to_rgb(latents.color, OBJECT_SV), OBJECT_PALETTE),
        "s_color": nearest_color_names(hue_to_rgb(latents.s_color, SPOTLIGHT_SV), SPOTLIGHT_PALETTE),
        "b_color": nearest_color_names(hue_to_rgb(latents.b_color, BACKGROUND_SV), BACKGROUND_PALETTE),
    }
    frame = pd.DataFrame(words, index=pd.Index(latents.index, name="index"))
    frame["caption"] = text
    return frame
