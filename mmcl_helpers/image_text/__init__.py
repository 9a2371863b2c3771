"""The image-text study (chapter 5): scenes or MPI3D -> conv/text encoders -> training -> probes.

- :mod:`~mmcl_helpers.image_text.image_encoders` -- the convolutional image and text encoders;
- :mod:`~mmcl_helpers.image_text.pair_training` -- training and encoding image-text models;
- :mod:`~mmcl_helpers.image_text.sweeps` -- sweeps and their dataset adapters (scenes, MPI3D);
- :mod:`~mmcl_helpers.image_text.sweep_reports` -- score grids, heatmaps and checks of sweeps;
- :mod:`~mmcl_helpers.image_text.suppression` -- i.i.d. batches against contrast groups;
- :mod:`~mmcl_helpers.image_text.alignment` -- the late alignment weight against Eq. 1;
- :mod:`~mmcl_helpers.image_text.heldout` -- the recipe on caption settings nobody tuned on.
"""
