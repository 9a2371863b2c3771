"""Image-caption pairs of the numerical study: latents -> (x, t) for one or several bias settings.

An image is ``x = g_x(s, m_x)``. A caption under bias setting k is
``t_k = g_t^(k)(s~_{selected_k}, m_t)``, where ``s~`` carries the perturbations of setting k.
Several settings share the same latents and the same image mixing, so they can be trained side
by side (:mod:`mmcl_helpers.numerical.training`); each setting has its own text mixing, seeded by the setting
itself so that it does not depend on which other settings are run with it.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from mmcl_helpers.core import validation as val
from mmcl_helpers.core.biases import CaptionBias
from mmcl_helpers.core.timing import timed
from mmcl_helpers.numerical.latents import LatentModel, Latents, perturb
from mmcl_helpers.numerical.mixing import InvertibleMLP

__all__ = ["PairBatch", "MultimodalSimulation", "member_seed"]


@dataclass
class PairBatch:
    """A batch of image-caption pairs for E bias settings.

    Attributes:
        latents: the shared latents (s, m_x, m_t), each (N, ·).
        x: images, shape (N, n_semantic + n_image), shared by all settings.
        t: captions, shape ``(E, N, max_k len(selected_k) + n_text)``, zero-padded per setting.
        s_tilde: semantics as each caption reports them, shape (E, N, n_semantic).
    """

    latents: Latents
    x: torch.Tensor
    t: torch.Tensor
    s_tilde: torch.Tensor


def _setting_seed(seed: int, bias: CaptionBias) -> int:
    key = f"{seed}|{sorted(bias.selected)}|{bias.n_semantic}".encode()
    return zlib.crc32(key)


def member_seed(seed: int, bias: CaptionBias, purpose: str) -> int:
    """A seed for one setting's own randomness (``purpose``: e.g. ``"init"``, ``"perturb"``).

    Derived from the run's seed and the whole setting (selected, perturbed, probability), never
    from the setting's position in a sweep: a setting trained inside an ensemble draws exactly
    what it draws when trained alone.
    """
    key = (f"{purpose}|{seed}|{sorted(bias.selected)}|{sorted(bias.perturbed)}|{bias.p_perturb}|"
           f"{bias.n_semantic}")
    return zlib.crc32(key.encode())


class MultimodalSimulation:
    """The generative process of the numerical study for a list of bias settings.

    Args:
        model: latent covariances (its ``n_semantic`` must match the biases').
        biases: one :class:`CaptionBias` per setting to generate captions for.
        seed: seeds the mixing functions.
        mixing_layers: depth of g_x and g_t (paper: 3).
    """

    def __init__(
        self,
        model: LatentModel,
        biases: Sequence[CaptionBias],
        seed: int = 0,
        mixing_layers: int = 3,
    ) -> None:
        val.check_params("MultimodalSimulation", model=(model, val.InstanceOf(LatentModel)),
                         seed=(seed, val.NONNEG_INT), mixing_layers=(mixing_layers, val.POSITIVE_INT))
        biases = list(biases)
        if not biases:
            raise ValueError("biases is empty: give at least one CaptionBias setting.")
        for b in biases:
            if not isinstance(b, CaptionBias):
                raise TypeError(f"expected CaptionBias settings, got {type(b).__name__}.")
            if b.n_semantic != model.n_semantic:
                raise ValueError(
                    f"setting {b.label} is defined for {b.n_semantic} semantics but the latent "
                    f"model has {model.n_semantic}."
                )
        self.model, self.biases, self.seed = model, biases, int(seed)
        self.g_x = InvertibleMLP(model.n_semantic + model.n_image, mixing_layers, seed=seed)
        self.g_t = [
            InvertibleMLP(len(b.selected) + model.n_text, mixing_layers, seed=_setting_seed(seed, b))
            for b in biases
        ]
        self.x_dim = model.n_semantic + model.n_image
        self.t_dims = [len(b.selected) + model.n_text for b in biases]

    def to(self, device: torch.device | str) -> MultimodalSimulation:
        self.g_x.to(device)
        for g in self.g_t:
            g.to(device)
        return self

    @timed("data")
    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator,
        perturb_generators: Sequence[torch.Generator] | None = None,
    ) -> PairBatch:
        """Draw ``n`` pairs per setting on the generator's device.

        ``generator`` draws the shared latents. ``perturb_generators`` (one per setting, e.g.
        seeded by :func:`member_seed`) draw each setting's perturbations from its own stream, so
        that a setting's captions do not depend on which settings are sampled with it; by default
        ``generator`` draws them too, setting after setting.
        """
        if perturb_generators is not None and len(perturb_generators) != len(self.biases):
            raise ValueError(
                f"perturb_generators must hold one generator per setting ({len(self.biases)}), "
                f"got {len(perturb_generators)}."
            )
        lat = self.model.sample(n, generator)
        x = self.g_x(torch.cat([lat.s, lat.m_x], dim=1))
        t = torch.zeros(len(self.biases), n, max(self.t_dims), device=x.device)
        s_tilde = torch.empty(len(self.biases), n, self.model.n_semantic, device=x.device)
        for k, (bias, g_t) in enumerate(zip(self.biases, self.g_t)):
            g = generator if perturb_generators is None else perturb_generators[k]
            s_tilde[k], _ = perturb(lat.s, bias, self.model, g)
            sel = [i - 1 for i in sorted(bias.selected)]
            t[k, :, : self.t_dims[k]] = g_t(torch.cat([s_tilde[k][:, sel], lat.m_t], dim=1))
        return PairBatch(latents=lat, x=x, t=t, s_tilde=s_tilde)
