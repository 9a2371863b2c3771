"""What every study shares: the paper's sets, compute profiles, results, storage and checks.

- :mod:`~mmcl_helpers.core.biases` -- selected/perturbed index sets and the paper's theta/rho codes;
- :mod:`~mmcl_helpers.core.profiles` -- compute profiles (``MMCL_PROFILE``) and their sizes;
- :mod:`~mmcl_helpers.core.results` -- one result type and schema, a factor's role, the bars;
- :mod:`~mmcl_helpers.core.losses` -- symmetric InfoNCE and its alignment/entropy split;
- :mod:`~mmcl_helpers.core.paper` -- the paper's reported values (``paper_values/``);
- :mod:`~mmcl_helpers.core.plots` -- figures in the paper's layout (heatmaps, sweeps, curves);
- :mod:`~mmcl_helpers.core.storage` -- the cache folder, safe (tensors + JSON) caches, checksums;
- :mod:`~mmcl_helpers.core.model_store` -- the one store of trained models, and study plans;
- :mod:`~mmcl_helpers.core.validation` -- declarative argument checks that name the argument;
- :mod:`~mmcl_helpers.core.random_streams` -- hashed (counter-based) random numbers, stream ids;
- :mod:`~mmcl_helpers.core.dry_run` -- ``MMCL_DRY_RUN=1`` caps (a testing aid);
- :mod:`~mmcl_helpers.core.precision` -- the numeric precision of a training run;
- :mod:`~mmcl_helpers.core.timing` -- training, probing and data blocks, recorded for the profiler.

Nothing here imports another subpackage: every other part of the package builds on this one.
"""
