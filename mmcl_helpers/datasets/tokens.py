"""Tokenizing captions: word ids for the text encoder, word matches for the audit.

Two readings of a caption, for two jobs, kept side by side here:

- :func:`tokenize` (with :func:`build_vocab`, :func:`encode_captions`, :func:`decode_tokens`): the
  text encoder's input, lower-case words only;
- :func:`mention_tokens`: what :mod:`~mmcl_helpers.practice.audit` matches value words against; it keeps
  punctuation tokens, so that a match never runs across a comma or full stop.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import torch

__all__ = ["PAD", "UNK", "tokenize", "build_vocab", "encode_captions", "decode_tokens",
           "mention_tokens"]

PAD, UNK = "<pad>", "<unk>"
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def tokenize(text: str) -> list[str]:
    """Lower-case word tokens: letters and digits, keeping an inner apostrophe (``robin's``).

    Punctuation, slashes and spaces separate words and are dropped.
    """
    return _WORD.findall(text.lower())


def build_vocab(texts: Iterable[str], min_count: int = 1) -> dict[str, int]:
    """Word -> id, with ``<pad>`` = 0 and ``<unk>`` = 1, then words by frequency (ties by name).

    Args:
        texts: captions to count words in.
        min_count: words seen fewer times map to ``<unk>``.
    """
    counts = Counter(tok for t in texts for tok in tokenize(t))
    words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
    return {PAD: 0, UNK: 1, **{w: i + 2 for i, w in enumerate(words)}}


def encode_captions(texts: Sequence[str], vocab: Mapping[str, int], max_len: int) -> torch.Tensor:
    """Token ids of each caption, cut or padded (id 0) to ``max_len``.

    Args:
        texts: N captions.
        vocab: from :func:`build_vocab`; words not in it become ``<unk>``.
        max_len: L, tokens kept per caption.

    Returns:
        LongTensor of shape (N, L).

    Raises:
        ValueError: ``texts`` not a sequence of strings (the first non-string is named), a
            vocabulary not from :func:`build_vocab`, ``max_len`` not a positive integer.
    """
    if vocab.get(PAD) != 0 or UNK not in vocab:
        raise ValueError(f"vocab must map {PAD!r} to 0 and contain {UNK!r}; use build_vocab().")
    if isinstance(max_len, bool) or not isinstance(max_len, int) or max_len < 1:
        raise ValueError(f"max_len must be a positive integer, got {max_len!r}.")
    if isinstance(texts, (str, bytes)) or not hasattr(texts, "__len__") or not hasattr(texts, "__iter__"):
        raise ValueError(f"texts must be a sequence of caption strings (a list), got "
                         f"{type(texts).__name__} {texts!r:.60}.")
    bad = [(i, t) for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        i, t = bad[0]
        raise ValueError(f"texts must hold caption strings only; texts[{i}] is {t!r:.60} "
                         f"({type(t).__name__}), and {len(bad)} of {len(texts)} are not strings "
                         "(use '' for an empty caption).")
    out = torch.zeros(len(texts), max_len, dtype=torch.long)
    unk = vocab[UNK]
    for i, t in enumerate(texts):
        ids = [vocab.get(w, unk) for w in tokenize(t)[:max_len]]
        if ids:
            out[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return out


def decode_tokens(ids: torch.Tensor, vocab: Mapping[str, int]) -> list[str]:
    """Captions back from token ids (padding dropped), words joined by single spaces.

    Args:
        ids: LongTensor of shape (N, L).
        vocab: the vocabulary used to encode.
    """
    inverse = {i: w for w, i in vocab.items()}
    pad = vocab[PAD]
    return [" ".join(inverse[int(i)] for i in row if int(i) != pad) for row in ids]


_MENTION_TOKEN = re.compile(r"\w+(?:'\w+)*|[^\w\s-]")


def mention_tokens(text: str) -> tuple[str, ...]:
    """Word and punctuation tokens of ``text`` as the audit matches them.

    A token is a word (letters, digits, underscores, inner apostrophes) or one punctuation mark,
    lower-cased (a typographic apostrophe counts as ``'``); whitespace and hyphens separate
    tokens and are dropped.
    """
    return tuple(_MENTION_TOKEN.findall(text.lower().replace("\u2019", "'")))
