"""Scene captions: settings by name, what captions say and never say, perturbation, tokenizer."""

import re

import numpy as np
import pytest
import torch

from mmcl_helpers.core.biases import InvalidIndexSetError
from mmcl_helpers.datasets.captions import (
    BACKGROUND_PALETTE,
    N_PHRASINGS,
    OBJECT_PALETTE,
    S_POS_WORDS,
    SPOTLIGHT_PALETTE,
    X_WORDS,
    Y_WORDS,
    nearest_color_names,
    s_pos_words,
    scene_captions,
)
from mmcl_helpers.datasets.naming import (
    UnknownFactorError,
    bias_from_names,
    format_factor_set,
    named_perturbation_sweep,
    named_selection_sweep,
)
from mmcl_helpers.datasets.scenes import (
    BACKGROUND_SV,
    OBJECT_SV,
    SEMANTIC_FACTORS,
    SHAPE_NAMES,
    hue_to_rgb,
    sample_scene_latents,
)
from mmcl_helpers.datasets.tokens import (
    PAD,
    UNK,
    build_vocab,
    decode_tokens,
    encode_captions,
    tokenize,
)

LAT = sample_scene_latents(400, seed=0)

# Words that only the given discrete factor ever uses.
FACTOR_WORDS = {
    "shape": set(SHAPE_NAMES),
    "x_pos": set(X_WORDS),
    "y_pos": set(Y_WORDS),
    "s_pos": set(S_POS_WORDS),
}


def _true_words(lat, j):
    return {
        "shape": SHAPE_NAMES[lat.shape[j]],
        "x_pos": X_WORDS[lat.x_pos[j]],
        "y_pos": Y_WORDS[lat.y_pos[j]],
        "s_pos": s_pos_words(lat.s_pos[j : j + 1])[0],
        "color": nearest_color_names(hue_to_rgb(lat.color[j : j + 1], OBJECT_SV), OBJECT_PALETTE)[0],
    }


def test_settings_are_named_by_their_sets():
    sel = named_selection_sweep()
    assert list(sel) == ["{shape}", "{shape, x_pos}", "{shape..y_pos}", "{shape..s_pos}",
                         "{shape..color}", "{shape..s_color}", "{shape..b_color}"]
    for k, bias in enumerate(sel.values(), start=1):
        assert bias.selected == frozenset(range(1, k + 1)) and not bias.perturbed
    pert = named_perturbation_sweep()
    assert list(pert) == ["{x_pos..b_color}", "{y_pos..b_color}", "{s_pos..b_color}", "{color..b_color}",
                          "{s_color, b_color}", "{b_color}", "∅"]
    for bias in pert.values():
        assert bias.selected == frozenset(range(1, 8))
    assert list(named_perturbation_sweep(most_perturbed_first=False))[0] == "∅"
    assert format_factor_set({1, 3, 4, 5, 7}, SEMANTIC_FACTORS) == "{shape, y_pos..color, b_color}"


def test_bias_from_names_rejects_bad_sets_clearly():
    with pytest.raises(UnknownFactorError, match=r"unknown factor name\(s\) \['hue'\].*allowed"):
        bias_from_names({"shape", "hue"})
    with pytest.raises(UnknownFactorError, match="string"):
        bias_from_names("shape")
    with pytest.raises(InvalidIndexSetError, match=r"perturbed holds \['color'\]"):
        bias_from_names({"shape"}, {"color"})
    with pytest.raises(InvalidIndexSetError, match="proper"):
        bias_from_names({"shape", "color"}, {"shape", "color"})
    with pytest.raises(InvalidIndexSetError, match="empty"):
        bias_from_names(set())
    with pytest.raises(InvalidIndexSetError, match="p_perturb"):
        bias_from_names({"shape", "color"}, {"color"}, p_perturb=1.5)


@pytest.mark.parametrize("label", list(named_selection_sweep()))
def test_selected_factors_appear_and_omitted_never_do(label):
    bias = named_selection_sweep()[label]
    chosen = {SEMANTIC_FACTORS[i - 1] for i in bias.selected}
    batch = scene_captions(LAT, bias, seed=1)
    assert len(batch) == len(LAT) and set(batch.reported) == chosen
    for j, text in enumerate(batch.text):
        words = set(tokenize(text))
        truth = _true_words(LAT, j)
        for name, vocab in FACTOR_WORDS.items():
            if name in chosen:
                assert truth[name] in words, (name, text)
            else:
                assert not words & vocab, (name, text)
        if "color" in chosen:
            assert f"{truth['color']} {truth['shape']}" in text
        assert ("spotlight" in words) == bool(chosen & {"s_pos", "s_color"}), text
        assert ("background" in words) == ("b_color" in chosen), text
    # Omitted factors cannot change the caption at all.
    omitted = [n for n in SEMANTIC_FACTORS if n not in chosen]
    if omitted:
        rng = np.random.default_rng(0)
        changed = LAT.replace(**{
            n: rng.integers(0, 3, len(LAT)) if n in ("x_pos", "y_pos") else rng.random(len(LAT))
            for n in omitted if n != "shape"
        })
        assert scene_captions(changed, bias, seed=1).text == batch.text


def test_phrasings_are_the_text_specific_factor():
    bias = named_selection_sweep()["{shape..b_color}"]
    batch = scene_captions(LAT, bias, seed=1)
    assert set(np.unique(batch.phrasing)) == set(range(N_PHRASINGS))
    # Same scene, different phrasing -> different text, same content words.
    single = scene_captions(LAT.replace(shape=0, x_pos=0, y_pos=0, s_pos=0.0, color=0.0, s_color=0.0,
                                        b_color=0.0), bias, seed=1)
    assert len(set(single.text)) == N_PHRASINGS
    assert scene_captions(LAT, bias, seed=1).text == batch.text
    assert scene_captions(LAT[10:20], bias, seed=1).text == batch.text[10:20]


def test_colour_names_come_from_the_right_palettes():
    bias = named_selection_sweep()["{shape..b_color}"]
    batch = scene_captions(LAT, bias, seed=1)
    for j, text in enumerate(batch.text):
        light = re.search(r"\ban? (\S+) spotlight", text).group(1)
        back = nearest_color_names(hue_to_rgb(LAT.b_color[j : j + 1], BACKGROUND_SV), BACKGROUND_PALETTE)
        assert light in SPOTLIGHT_PALETTE and back[0] in BACKGROUND_PALETTE, text
        assert re.search(rf"\ban? {re.escape(back[0])} background", text), text
        assert _true_words(LAT, j)["color"] in OBJECT_PALETTE
    names = nearest_color_names(np.array([[1.0, 0, 0], [0, 0, 1.0], [0.5, 0.5, 0.5]]), SPOTLIGHT_PALETTE)
    assert list(names) == ["red", "blue", "gray"]
    reds = nearest_color_names(hue_to_rgb(np.array([0.0]), OBJECT_SV), OBJECT_PALETTE)
    assert reds[0] == "red"
    assert list(s_pos_words(np.array([0.0, 0.3, 0.5, 0.7, 1.0]))) == list(S_POS_WORDS)


@pytest.mark.parametrize("p", [1.0, 0.5, 0.0])
def test_perturbation_rate_matches_the_setting(p):
    lat = sample_scene_latents(4000, seed=2)
    bias = named_perturbation_sweep(p_perturb=p)["{x_pos..b_color}"]
    batch = scene_captions(lat, bias, seed=3)
    assert set(batch.resampled) == set(SEMANTIC_FACTORS[1:])
    assert "shape" not in batch.resampled
    np.testing.assert_array_equal(batch.reported["shape"], lat.shape)
    for name, mask in batch.resampled.items():
        assert abs(mask.mean() - p) < 0.03, name
        np.testing.assert_array_equal(batch.reported[name][~mask], getattr(lat, name)[~mask])
    # Discrete factors: a resample lands on another value 2/3 of the time; continuous: always.
    assert abs((batch.reported["x_pos"] != lat.x_pos).mean() - p * 2 / 3) < 0.03
    changed = batch.reported["color"] != lat.color
    assert abs(changed.mean() - p) < 0.03
    if p == 1.0:  # fully resampled values carry no information about the truth
        assert abs(np.corrcoef(batch.reported["color"], lat.color)[0, 1]) < 0.06
        assert abs(batch.reported["s_pos"].mean() - 0.5) < 0.02


def test_tokenizer_round_trip_and_padding():
    texts = scene_captions(LAT[:50], named_selection_sweep()["{shape..b_color}"], seed=0).text
    texts = texts + ["A robin's egg blue/green background!"]
    assert tokenize(texts[-1]) == ["a", "robin's", "egg", "blue", "green", "background"]
    vocab = build_vocab(texts)
    assert vocab[PAD] == 0 and vocab[UNK] == 1 and len(set(vocab.values())) == len(vocab)
    max_len = max(len(tokenize(t)) for t in texts)
    ids = encode_captions(texts, vocab, max_len)
    assert ids.dtype == torch.long and ids.shape == (len(texts), max_len)
    assert decode_tokens(ids, vocab) == [" ".join(tokenize(t)) for t in texts]
    short = encode_captions(["a circle", "an unseenword"], vocab, 4)
    assert short[0, 2:].tolist() == [0, 0] and short[1, 1].item() == vocab[UNK]
    assert encode_captions(texts, vocab, 3).shape == (len(texts), 3)
    with pytest.raises(ValueError, match="max_len"):
        encode_captions(texts, vocab, 0)
    with pytest.raises(ValueError, match="build_vocab"):
        encode_captions(texts, {"a": 0}, 5)
