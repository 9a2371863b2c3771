"""The package's front door (``from mmcl_helpers import ...``) and its API reference agree."""

import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import mmcl_helpers

ROOT = Path(__file__).resolve().parents[1]
API_PAGES = [ROOT / "book" / "api.md", *sorted((ROOT / "book" / "api").glob("*.md"))]


def test_every_front_door_name_resolves_to_its_defining_module():
    names = [n for n in mmcl_helpers.__all__ if n != "__version__"]
    assert 15 <= len(names) <= 25, len(names)
    assert len(set(names)) == len(names)
    for name in names:
        obj = getattr(mmcl_helpers, name)
        module = mmcl_helpers._FRONT_DOOR[name]
        assert obj is getattr(importlib.import_module(f"mmcl_helpers.{module}"), name), name


def test_an_unknown_name_raises_attribute_error_naming_it():
    try:
        mmcl_helpers.no_such_helper  # noqa: B018
    except AttributeError as err:
        assert "no_such_helper" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_package_does_not_import_torch():
    code = "import sys, mmcl_helpers; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "False"


def test_the_api_page_lists_every_front_door_name_at_its_module():
    text = (ROOT / "book" / "api.md").read_text()
    for name, module in mmcl_helpers._FRONT_DOOR.items():
        assert f"~mmcl_helpers.{module}.{name}`" in text, f"{name} missing from book/api.md"


def test_every_module_is_documented_in_the_api_reference():
    text = "\n".join(p.read_text() for p in API_PAGES)
    documented = set(re.findall(r"\.\. automodule:: (mmcl_helpers[\w.]*)", text))
    modules = {"mmcl_helpers"} | {
        m.name for m in pkgutil.walk_packages(mmcl_helpers.__path__, "mmcl_helpers.")
        if not m.name.endswith("__main__")
    }
    assert modules - documented == set(), "add these modules to a page in book/api/"
    assert documented - modules == set(), "these documented modules no longer exist"


def test_the_package_docstring_lists_every_top_level_module():
    doc = mmcl_helpers.__doc__
    for m in pkgutil.iter_modules(mmcl_helpers.__path__):
        if m.name != "__main__":
            assert f":mod:`~mmcl_helpers.{m.name}`" in doc, m.name
