"""Image-caption datasets of the paper's experiments beyond the simulation.

- :mod:`~mmcl_helpers.datasets.scenes` -- rendered causal scenes (a CPU analogue of
  Causal3DIdent): latents from the causal graph, a numpy/Pillow renderer and an on-disk cache;
- :mod:`~mmcl_helpers.datasets.captions` -- settings by factor name, scene captions with
  selection and perturbation bias, and a word tokenizer;
- :mod:`~mmcl_helpers.datasets.mpi3d` -- the MPI3D-complex photographs: finding, downloading and
  checking the file, factor labels, splits and captions;
- :mod:`~mmcl_helpers.datasets.figures` -- example image-caption pairs per setting.
"""
