"""What the chapters need beyond the studies: the set-up cell, cost tables, the editions, the profiler.

- :mod:`~mmcl_helpers.book_support.notebook` -- the set-up cell of every chapter;
- :mod:`~mmcl_helpers.book_support.costs` -- FLOPs and measured operations per step, cost tables;
- :mod:`~mmcl_helpers.book_support.editions` -- the Colab and student editions of the notebooks;
- :mod:`~mmcl_helpers.book_support.profile_book` -- where the time goes (``make profile-book``);
- :mod:`~mmcl_helpers.book_support.rebuild` -- a second ``make book`` that reuses the executed
  notebooks only when nothing they depend on changed.
"""
