"""What the chapters need beyond the studies: the set-up cell and cost tables (figures live in
:mod:`~mmcl_helpers.core.plots`).

- :mod:`~mmcl_helpers.book_support.notebook` -- the set-up cell of every chapter;
- :mod:`~mmcl_helpers.book_support.costs` -- FLOPs and measured operations per step, cost tables.
"""
