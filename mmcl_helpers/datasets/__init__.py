"""Image-caption datasets of the paper's experiments beyond the simulation.

- :mod:`~mmcl_helpers.datasets.scenes` -- rendered causal scenes (a CPU analogue of
  Causal3DIdent): latents from the causal graph, a numpy/Pillow renderer and an on-disk cache;
- :mod:`~mmcl_helpers.datasets.naming` -- caption settings written with factor names, converted
  in one place to a :class:`~mmcl_helpers.core.biases.CaptionBias`;
- :mod:`~mmcl_helpers.datasets.perturbation` -- what a caption reports: the selected factors,
  with perturbed ones resampled (any dataset);
- :mod:`~mmcl_helpers.datasets.captions` -- scene captions with selection and perturbation bias;
- :mod:`~mmcl_helpers.datasets.tokens` -- word ids for the text encoder, word matches for the audit;
- :mod:`~mmcl_helpers.datasets.vocabulary` -- the words a caption may use for each factor value;
- :mod:`~mmcl_helpers.datasets.policies` -- caption policies: mention rates and wrong mentions;
- :mod:`~mmcl_helpers.datasets.scene_audit` -- the scenes' vocabulary and table for the audit;
- :mod:`~mmcl_helpers.datasets.splits` -- :class:`~mmcl_helpers.datasets.splits.Split`, what a
  dataset adapter hands to the image-text sweeps;
- :mod:`~mmcl_helpers.datasets.mpi3d` -- the MPI3D-complex photographs: finding, downloading and
  checking the file, factor labels, splits and captions;
- :mod:`~mmcl_helpers.datasets.mpi3d_synthetic` -- a small synthetic MPI3D file with the real
  layout (dry runs and tests);
- :mod:`~mmcl_helpers.datasets.figures` -- example image-caption pairs per setting.
"""
