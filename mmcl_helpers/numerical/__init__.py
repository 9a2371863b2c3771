"""The numerical study (chapters 1-4): latents -> mixing -> pairs -> encoders -> training -> probes.

- :mod:`~mmcl_helpers.numerical.latents` -- the latent blocks s, m_x, m_t and caption perturbation;
- :mod:`~mmcl_helpers.numerical.mixing` -- invertible mixing functions g_x, g_t;
- :mod:`~mmcl_helpers.numerical.simulation` -- image-caption pairs for several bias settings;
- :mod:`~mmcl_helpers.numerical.encoders` -- MLP encoders f_x, f_t (trainable side by side);
- :mod:`~mmcl_helpers.numerical.training` -- the training loop (also used by the image-text study);
- :mod:`~mmcl_helpers.numerical.training_cache` -- which cache file holds trained encoders;
- :mod:`~mmcl_helpers.numerical.probes` -- R^2 and MCC probes (also used by the image-text study);
- :mod:`~mmcl_helpers.numerical.experiments` -- settings in, tidy score table out;
- :mod:`~mmcl_helpers.numerical.downstream` -- regression and classification on frozen codes;
- :mod:`~mmcl_helpers.numerical.identifiability` -- the proof's objects: Darmois codes, entropies;
- :mod:`~mmcl_helpers.numerical.programme` -- the paper's programme as resumable jobs (``sweep``).
"""
