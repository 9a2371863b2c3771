"""What the chapters need beyond the studies: the set-up cell, figures and cost tables.

- :mod:`~mmcl_helpers.book_support.notebook` -- the set-up cell of every chapter;
- :mod:`~mmcl_helpers.book_support.plots` -- figures in the paper's layout;
- :mod:`~mmcl_helpers.book_support.costs` -- FLOPs and measured operations per step, cost tables;
- :mod:`~mmcl_helpers.book_support.editions` -- the Colab and student editions of the notebooks.
"""
