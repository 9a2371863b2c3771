"""Public contracts of the package: no private names across modules, one registry of random streams,
one spelling of each metric, no names kept for compatibility."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import torch

import mmcl_helpers
from mmcl_helpers.core import random_streams
from mmcl_helpers.core.results import MCC, R2
from mmcl_helpers.numerical.probes import FactorSpec, probe_representations

PACKAGE = Path(mmcl_helpers.__file__).parent
SOURCES = sorted(PACKAGE.rglob("*.py"))


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_module_imports_another_modules_private_name():
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        aliases = {}  # local name -> package module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mmcl_helpers"):
                for a in node.names:
                    if a.name.startswith("_") and node.module != _module(path):
                        found.append(f"{path.name}:{node.lineno} from {node.module} import {a.name}")
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith("mmcl_helpers"):
                        aliases[a.asname or a.name] = a.name
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                    and node.value.id in aliases and node.attr.startswith("_")
                    and not node.attr.startswith("__")):
                found.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    assert not found, "private names used across modules:\n" + "\n".join(found)


def test_random_stream_ids_are_distinct_and_named():
    taken: dict[int, str] = {}
    for name, (base, width) in random_streams.STREAMS.items():
        assert width >= 1
        for i in range(base, base + width):
            assert i not in taken, f"stream id {i} of {name!r} is also {taken[i]!r}'s"
            taken[i] = name
    assert random_streams.stream("perturb_value", 3) == random_streams.STREAMS["perturb_value"].base + 3
    for bad in (("no such stream", 0), ("caption_phrasing", 1), ("scene_factor", 12)):
        try:
            random_streams.stream(*bad)
        except ValueError:
            continue
        raise AssertionError(f"stream{bad} did not raise")


def test_every_hashed_draw_names_its_stream():
    """The stream argument of every hashed draw comes from the registry, never a bare number."""
    found = []
    for path in SOURCES:
        if path.name == "random_streams.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("hashed_uniform", "hashed_integers") and len(node.args) >= 3):
                arg = node.args[2]
                named = (isinstance(arg, ast.Call) and getattr(arg.func, "id", "") == "stream") or (
                    isinstance(arg, ast.Subscript) and getattr(arg.value, "id", "") == "_STREAMS")
                if not named:
                    found.append(f"{path.name}:{node.lineno}")
    assert not found, f"hashed draws with a stream id not from STREAMS: {found}"


def test_probe_tables_spell_metrics_one_way():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(40, 3, generator=gen), torch.randn(40, 3, generator=gen)
    specs = [FactorSpec("d", np.arange(40) % 2, np.arange(40) % 2, 2),
             FactorSpec("c", np.linspace(0, 1, 40), np.linspace(0, 1, 40))]
    table = probe_representations({("k", "x"): z}, specs, probe_steps=2)
    assert set(table["metric"]) == {R2, MCC} == {"r2", "mcc"}


def test_no_name_is_kept_for_compatibility():
    phrases = ("kept for compatibility", "for compatibility", "former name", "re-exported here")
    found = [f"{p.name}: {phrase}" for p in SOURCES for phrase in phrases if phrase in p.read_text()]
    assert not found, found
