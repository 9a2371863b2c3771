"""Resolve short cross-references to the package's own objects in its docstrings.

The docstrings of ``mmcl_helpers`` name objects of sibling modules by their short name
(``:class:`CaptionBias``` inside ``simulation.py``), which reads well in the source and in
``help()``. Sphinx only looks such a name up in the current module. This hook, run only for
references Sphinx could not resolve, looks the name up among everything documented under
``mmcl_helpers`` and links it when exactly ONE object has that name. A name that matches nothing,
or more than one object, stays unresolved, so a broken reference to our own code still fails a
strict (``-W -n``) build.
"""

from __future__ import annotations

import importlib

from sphinx.util.nodes import make_refnode


def _lookup(path: str):
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _canonical(matches: list[str]) -> list[str]:
    # One object documented at several paths (a name re-exported for compatibility): link to the
    # module that defines it. Different objects that share a name stay ambiguous (unresolved).
    objs = [_lookup(m) for m in matches]
    if any(o is None or o is not objs[0] for o in objs):
        return matches
    home = getattr(objs[0], "__module__", None)
    defined = [m for m in matches if m.rpartition(".")[0] == home]
    return defined[:1] if defined else sorted(matches, key=len)[:1]


def _resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "").lstrip(".~")
    if not target or target.startswith("mmcl_helpers."):
        return None  # fully qualified names must be right as written
    objects = env.get_domain("py").objects
    matches = [name for name in objects
               if name.startswith("mmcl_helpers.") and name.endswith("." + target)]
    if len(matches) > 1:
        matches = _canonical(matches)
    if len(matches) != 1:
        return None
    entry = objects[matches[0]]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode,
                        matches[0])


def setup(app):
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
