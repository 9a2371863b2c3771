"""What the chapters need beyond the studies: the set-up cell, cost tables and the editions.

- :mod:`~mmcl_helpers.book_support.notebook` -- the set-up cell of every chapter;
- :mod:`~mmcl_helpers.book_support.costs` -- FLOPs and measured operations per step, cost tables;
- :mod:`~mmcl_helpers.book_support.editions` -- the Colab and student editions of the notebooks.
"""
