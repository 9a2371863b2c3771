"""Vocabularies for the caption audit: the words a caption may use for each value of a factor.

:func:`vocabulary_from_names` builds one for values that are their own names (colour names);
:mod:`~mmcl_helpers.datasets.scene_audit` builds the scenes' vocabulary from it. Both
:mod:`~mmcl_helpers.practice.audit` and the dataset adapters import from here, so datasets never import
the audit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["AuditInputError", "vocabulary_from_names"]


class AuditInputError(ValueError):
    """Raised for a caption table, vocabulary or thresholds that cannot be audited."""


def vocabulary_from_names(names: Iterable[str], templates: Sequence[str] = ("{}",)) -> dict[str, list[str]]:
    """Vocabulary of an attribute whose values are their own names (e.g. colour names).

    Args:
        names: the values, each a word or phrase (``"sea green"``).
        templates: phrases each name is found in, ``"{}"`` standing for the name; e.g.
            ``("{} background",)`` counts ``"red"`` only when it qualifies a background.

    Returns:
        name -> ``[template.format(name) for template in templates]``.
    """
    if isinstance(names, str):
        raise AuditInputError(f"names must be a collection of names such as [{names!r}], got a string.")
    if isinstance(templates, str) or not templates or any("{}" not in t for t in templates):
        raise AuditInputError(
            f"templates must be a non-empty list of strings holding '{{}}', e.g. ['{{}}'], got {templates!r}."
        )
    return {name: [t.format(name) for t in templates] for name in names}
