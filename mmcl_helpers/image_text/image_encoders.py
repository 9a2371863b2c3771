"""Encoders for images and captions: a compact ResNet-style CNN and a word-level 1-D conv net.

The paper (App. D, E) uses a ResNet-18 image encoder and a convolutional text encoder over
one-hot word tokens. Both are too slow to train on a CPU in minutes, so the book uses smaller
networks of the same kind, written in plain PyTorch (torchvision is not a dependency):

- :class:`ImageEncoder` (``f_x``): a stride-2 stem, then stages of one residual block each, every
  stage halving the resolution; the final feature map is flattened (so that the object's
  position survives, which a global average pool over a small map would blur) and a two-layer
  head maps it to the encoding. Input: uint8 or float images of shape (N, 64, 64, 3) or
  (N, 3, 64, 64).
- :class:`TextEncoder` (``f_t``): token ids -> embeddings -> two 1-D convolutions -> a max-pool
  over the words that are not padding -> a two-layer head.

Both return shape (N, encoding size).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmcl_helpers.core import validation as val

__all__ = ["ResidualBlock", "ImageEncoder", "TextEncoder", "images_to_tensor"]


def images_to_tensor(images: torch.Tensor) -> torch.Tensor:
    """Float images in [0, 1], shape (N, 3, H, W), from uint8 or float (N, H, W, 3) or (N, 3, H, W).

    uint8 input is scaled by 1/255; float input is taken as already in [0, 1]. Channels-last
    input (last dimension 3) is permuted to channels-first.
    """
    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, H, W, 3) or (N, 3, H, W), got {tuple(images.shape)}.")
    x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
    if x.shape[-1] == 3 and x.shape[1] != 3:
        x = x.permute(0, 3, 1, 2)
    return x


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a skip connection (a ResNet "basic block").

    Args:
        c_in, c_out: channels in and out.
        stride: stride of the first convolution (2 halves the resolution); the skip path uses a
            strided 1x1 convolution whenever the shape changes.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.skip = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, c_in, H, W) -> (N, c_out, H / stride, W / stride)."""
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.skip(x))


class ImageEncoder(nn.Module):
    """Compact ResNet-style image encoder f_x.

    Args:
        out_dim: encoding size (the number of unbiased semantics, at least 3 in the paper).
        widths: channels of each stage (one residual block per stage, each of stride 2); the stem
            has ``widths[0]`` channels and stride 2.
        hidden: width of the head's hidden layer.
        image_size: input height and width (the final map is ``image_size / 2**(1 + stages)``,
            twice that with ``first_stride=1``).
        first_stride: stride of the first stage, 2 (the default) or 1. With 1 the first stage
            keeps the stem's resolution (32x32 for 64-pixel images), as a ResNet-18's first stage
            does; fine silhouette differences (a hexagon from a circle) survive it, at about
            twice the cost of a step.
    """

    def __init__(
        self,
        out_dim: int,
        widths: Sequence[int] = (16, 32, 64),
        hidden: int = 128,
        image_size: int = 64,
        first_stride: int = 2,
    ) -> None:
        super().__init__()
        val.check_params("ImageEncoder", out_dim=(out_dim, val.POSITIVE_INT),
                         widths=(widths, val.SequenceOf(val.POSITIVE_INT)), hidden=(hidden, val.POSITIVE_INT),
                         image_size=(image_size, val.POSITIVE_INT),
                         first_stride=(first_stride, val.Options(int, (1, 2))))
        if out_dim < 1 or not widths:
            raise ValueError(f"need out_dim >= 1 and at least one stage, got {out_dim}, {widths}.")
        final = image_size // 2 ** (len(widths) + (first_stride == 2))
        if final < 1:
            raise ValueError(f"{len(widths)} stages shrink a {image_size}px image to nothing.")
        self.out_dim = int(out_dim)
        self.image_size = int(image_size)
        self.stem = nn.Sequential(
            nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        blocks, c = [], widths[0]
        for k, w in enumerate(widths):
            blocks.append(ResidualBlock(c, w, stride=first_stride if k == 0 else 2))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c * final * final, hidden), nn.ReLU(), nn.Linear(hidden, out_dim)
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (N, 64, 64, 3) uint8/float or (N, 3, 64, 64) -> encodings (N, out_dim)."""
        x = images_to_tensor(images)
        if tuple(x.shape[1:]) != (3, self.image_size, self.image_size):
            raise ValueError(
                f"ImageEncoder takes RGB images of {self.image_size}x{self.image_size} pixels, shape "
                f"(N, {self.image_size}, {self.image_size}, 3) or (N, 3, {self.image_size}, "
                f"{self.image_size}); got shape {tuple(images.shape)}."
            )
        x = x.contiguous(memory_format=torch.channels_last)
        return self.head(self.blocks(self.stem(x)))


class TextEncoder(nn.Module):
    """Word-level convolutional text encoder f_t.

    Args:
        vocab_size: number of token ids (id 0 is padding and is ignored by the pooling).
        out_dim: encoding size.
        embed: embedding size.
        channels: channels of the two 1-D convolutions (kernel 3).
        hidden: width of the head's hidden layer.
    """

    def __init__(
        self, vocab_size: int, out_dim: int, embed: int = 32, channels: int = 64, hidden: int = 128
    ) -> None:
        super().__init__()
        val.check_params("TextEncoder", vocab_size=(vocab_size, val.Interval(val.Integral, 2, None)),
                         out_dim=(out_dim, val.POSITIVE_INT), embed=(embed, val.POSITIVE_INT),
                         channels=(channels, val.POSITIVE_INT), hidden=(hidden, val.POSITIVE_INT))
        if vocab_size < 2 or out_dim < 1:
            raise ValueError(f"need vocab_size >= 2 and out_dim >= 1, got {vocab_size}, {out_dim}.")
        self.out_dim = int(out_dim)
        self.embedding = nn.Embedding(vocab_size, embed, padding_idx=0)
        self.conv1 = nn.Conv1d(embed, channels, 3, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, padding=1)
        self.head = nn.Sequential(nn.Linear(channels, hidden), nn.ReLU(), nn.Linear(hidden, out_dim))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token ids (N, L) -> encodings (N, out_dim); a caption of padding only gives the bias."""
        mask = (tokens != 0).unsqueeze(1)  # (N, 1, L)
        h = self.embedding(tokens).transpose(1, 2)  # (N, embed, L)
        h = F.relu(self.conv1(h))
        h = F.relu(self.conv2(h))
        h = h.masked_fill(~mask, float("-inf")).amax(-1)  # (N, channels)
        h = torch.where(torch.isfinite(h), h, torch.zeros_like(h))
        return self.head(h)
