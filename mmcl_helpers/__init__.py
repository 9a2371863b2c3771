"""Helpers for the executable book *Negate or Embrace* (Cai et al., 2025).

Modules, one concern each:

- :mod:`~mmcl_helpers.profiles` -- compute profiles (``MMCL_PROFILE``);
- :mod:`~mmcl_helpers.biases` -- selected/perturbed index sets and the paper's theta/rho codes;
- :mod:`~mmcl_helpers.latents` -- the latent blocks s, m_x, m_t and caption perturbation;
- :mod:`~mmcl_helpers.mixing` -- invertible mixing functions g_x, g_t;
- :mod:`~mmcl_helpers.simulation` -- image-caption pairs for several bias settings;
- :mod:`~mmcl_helpers.encoders` -- MLP encoders f_x, f_t (trainable side by side);
- :mod:`~mmcl_helpers.losses` -- symmetric InfoNCE and its alignment/entropy split;
- :mod:`~mmcl_helpers.training` -- the training loop;
- :mod:`~mmcl_helpers.probes` -- R^2 and MCC probes;
- :mod:`~mmcl_helpers.experiments` -- settings in, tidy score table out;
- :mod:`~mmcl_helpers.plots` -- figures in the paper's layout;
- :mod:`~mmcl_helpers.paper` -- the paper's reported values, for comparison tables.

The glossary from the paper's notation to these names is in ``book/glossary.md``.
"""

from .biases import CaptionBias, InvalidIndexSetError
from .profiles import active_profile, get_profile

__version__ = "0.1.0"
__all__ = ["CaptionBias", "InvalidIndexSetError", "active_profile", "get_profile", "__version__"]
