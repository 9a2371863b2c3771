"""Caption policies in practice (chapter 6): audit captions, then train and compare policies.

- :mod:`~mmcl_helpers.practice.audit` -- auditing captions before training;
- :mod:`~mmcl_helpers.practice.studies` -- the practitioner's studies (policies, rates, shift).
"""
