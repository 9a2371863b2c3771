"""The book's structure: commands, configuration, notebooks and workflows agree."""

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _yaml(path):
    return yaml.safe_load((ROOT / path).read_text())


def _toc_files():
    toc = _yaml("_toc.yml")
    files = [toc["root"]]
    for entry in toc.get("chapters", []):
        files.append(entry["file"])
    return files


def _notebooks():
    return sorted((ROOT / "book").glob("*.ipynb"))


def test_fixed_layout_exists():
    for name in ["book", "mmcl_helpers", "tests", "environment.yml", "_config.yml", "README.md",
                 "_toc.yml", "pyproject.toml", "Makefile", ".ci/run", "benchmarks",
                 "references.bib"]:
        assert (ROOT / name).exists(), name


def test_config_is_strict_and_offline():
    cfg = _yaml("_config.yml")
    assert cfg["execute"]["execute_notebooks"] in {"force", "cache"}
    assert cfg["execute"]["raise_on_error"] is True
    assert cfg["execute"]["timeout"] >= 600
    assert "sphinx-mathjax-offline" in cfg["sphinx"]["extra_extensions"]
    assert "intersphinx_mapping" not in cfg["sphinx"].get("config", {})
    assert cfg["launch_buttons"]["colab_url"] == "https://colab.research.google.com"
    assert cfg["repository"]["url"].startswith("https://github.com/")
    # The editions link cross-references to the rendered book, published on the repository's Pages.
    owner, repo = cfg["repository"]["url"].removeprefix("https://github.com/").split("/")
    assert cfg["html"]["baseurl"] == f"https://{owner}.github.io/{repo}/"


def test_every_notebook_is_in_the_toc_and_clean():
    toc = set(_toc_files())
    for nb_path in _notebooks():
        assert f"book/{nb_path.stem}" in toc, f"{nb_path.name} missing from _toc.yml"
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not cell["outputs"] and cell["execution_count"] is None, nb_path.name


def _package_version():
    """``__version__`` as written in mmcl_helpers/__init__.py (read, not imported: the one place)."""
    text = (ROOT / "mmcl_helpers" / "__init__.py").read_text()
    found = re.findall(r'^__version__ = "([^"]+)"$', text, flags=re.M)
    assert len(found) == 1, "mmcl_helpers/__init__.py must set __version__ exactly once"
    return found[0]


def test_the_version_number_lives_in_one_place():
    version = _package_version()
    assert re.fullmatch(r"\d+\.\d+\.\d+", version), version
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib needs Python 3.11; we support 3.10)
    project = pyproject.split("\n[project]\n", 1)[1].split("\n[", 1)[0]
    assert not re.search(r"^version\s*=", project, flags=re.M), "pyproject.toml must not repeat the version"
    assert re.search(r'^dynamic = \["version"\]$', pyproject, flags=re.M)
    assert re.search(r'^version = \{ attr = "mmcl_helpers.__version__" \}$', pyproject, flags=re.M)


def test_every_notebook_starts_with_the_colab_safe_setup_cell():
    url = _yaml("_config.yml")["repository"]["url"]
    # The source installs main, a ref that exists; the Colab and student editions replace it with the
    # full SHA of the commit they are generated from (tests/test_editions.py checks that), and the
    # published book's Colab buttons open those editions. No tag: nothing creates one.
    install = f'%pip install -q "mmcl_helpers @ git+{url}@main"'
    for nb_path in _notebooks():
        nb = json.loads(nb_path.read_text())
        first = next(c for c in nb["cells"] if c["cell_type"] == "code")
        src = "".join(first["source"])
        assert "import mmcl_helpers" in src, nb_path.name
        assert install in src, f"{nb_path.name}: the set-up cell must run {install!r}"
        assert src.count("%pip install") == 1, nb_path.name
        # The profile is one editable line; None leaves the choice to $MMCL_PROFILE (the tests use it).
        assert re.search(r"^PROFILE = None\b", src, flags=re.M), nb_path.name
        assert "setup_notebook(seed=0, profile=PROFILE)" in src, nb_path.name
        assert "hide-output" in first["metadata"].get("tags", []), nb_path.name


def test_install_lines_name_refs_that_exist():
    """README and notebooks install main (or, in the editions, a commit), never a version tag."""
    url = _yaml("_config.yml")["repository"]["url"]
    readme = (ROOT / "README.md").read_text()
    assert f'pip install "mmcl_helpers @ git+{url}@main"' in readme
    texts = [readme] + [p.read_text() for p in _notebooks()]
    for text in texts:
        assert not re.search(r"git\+\S+@v\d", text), "an install line names a version tag nothing creates"


def test_notebooks_do_not_hard_code_step_counts():
    pattern = re.compile(r"\b(steps|batch_size)\s*=\s*\d")
    for nb_path in _notebooks():
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert not pattern.search("".join(cell["source"])), nb_path.name


def test_workflows_call_the_same_make_targets_as_the_readme():
    readme = (ROOT / "README.md").read_text()
    assert "make book" in readme and "make test" in readme
    makefile = (ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-z-]+):", makefile, flags=re.M))
    assert {"book", "test"} <= targets
    runs = {}
    for wf in (ROOT / ".github" / "workflows").glob("*.yml"):
        doc = yaml.safe_load(wf.read_text())
        assert "jobs" in doc, wf.name
        for name, job in doc["jobs"].items():
            runs[name] = " ".join(step.get("run", "") for step in job.get("steps", []))
    assert any("make test" in r for r in runs.values()), "no workflow runs make test"
    gpu = [n for n, j in _all_jobs().items() if "gpu" in str(j.get("runs-on"))]
    assert gpu, "no job runs on a GPU runner"
    assert all("make book" in runs[n] for n in gpu)
    for r in runs.values():
        for target in re.findall(r"make (\w[\w-]*)", r):
            assert target in targets, f"workflow calls unknown target {target}"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci


def _all_jobs():
    jobs = {}
    for wf in (ROOT / ".github" / "workflows").glob("*.yml"):
        jobs.update(yaml.safe_load(wf.read_text())["jobs"])
    return jobs


def _chapters():
    return [p for p in _notebooks() if re.match(r"\d\d_", p.name)]


def test_every_chapter_has_objectives_exercises_with_solutions_and_takeaways():
    for nb_path in _chapters():
        cells = json.loads(nb_path.read_text())["cells"]
        text = ["".join(c["source"]) for c in cells]
        assert cells[1]["id"] == "objectives", f"{nb_path.name}: objectives right after the title"
        assert "Learning objectives" in text[1] and "Prerequisites" in text[1], nb_path.name
        # The takeaways close the chapter's text; only "What to try next" comes after them.
        assert cells[-2]["id"] == "takeaways" and text[-2].startswith("## Key takeaways"), nb_path.name
        assert cells[-1]["id"] == "try-next" and text[-1].startswith("## What to try next"), nb_path.name
        md = "\n".join(t for t, c in zip(text, cells) if c["cell_type"] == "markdown")
        labels = re.findall(r"```\{exercise\}[^\n]*\n:label: (\S+)", md)
        assert 3 <= len(labels) <= 5, f"{nb_path.name}: {len(labels)} exercises"
        for label in labels:
            gate = re.compile(r"```\{solution-start\} " + re.escape(label) + r"\n")
            starts = [i for i, t in enumerate(text) if gate.search(t)]
            assert len(starts) == 1, f"{nb_path.name}: exercise {label} needs one gated solution"
            assert ":class: dropdown" in text[starts[0]], f"{nb_path.name}: {label}: solution not hidden"
            end = next(i for i in range(starts[0] + 1, len(text)) if "```{solution-end}" in text[i])
            # The solution executes in the build: at least one code cell inside the gate.
            assert any(cells[i]["cell_type"] == "code" for i in range(starts[0] + 1, end)), label


def test_chapter_4_states_the_theorem_as_referable_blocks_used_elsewhere():
    def md_text(name):
        cells = json.loads((ROOT / "book" / name).read_text())["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")

    ch4 = md_text("04_identifiability_proof.ipynb")
    labels = dict(re.findall(r"```\{prf:(\w+)\}[^\n]*\n:label: (\S+)", ch4))
    kinds = {}
    for kind, label in re.findall(r"```\{prf:(\w+)\}[^\n]*\n:label: (\S+)", ch4):
        kinds.setdefault(kind, []).append(label)
    assert kinds.get("theorem") == ["thm-identifiability"], labels
    # Assumptions 3.1-3.3 with the densities split out, plus the encoders into the cube
    assert len(kinds.get("assumption", [])) == 5 and len(kinds.get("lemma", [])) == 2, kinds
    assert sorted(kinds.get("corollary", [])) == ["cor-perturbation", "cor-selection"], kinds
    assert "{prf:proof}" in ch4 and "Known gap" in ch4
    for name in ("02_selection_bias.ipynb", "03_perturbation_bias.ipynb"):
        assert "{prf:ref}`thm-identifiability`" in md_text(name), name
    for name in ("03_perturbation_bias.ipynb", "06_practice.ipynb"):
        assert "{prf:ref}`cor-perturbation`" in md_text(name), name


def test_the_readme_layout_table_lists_every_module():
    """Each module of the package appears in README's layout table, in the row of its folder."""
    import pkgutil

    import mmcl_helpers

    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"\| `(mmcl_helpers/[\w/]*)` \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    missing = []
    for info in pkgutil.walk_packages(mmcl_helpers.__path__, "mmcl_helpers."):
        parts = info.name.split(".")
        if info.ispkg:
            folder = "/".join(parts) + "/"
            if folder not in rows:
                missing.append(folder)
            continue
        folder = "/".join(parts[:-1]) + "/"
        if f"`{parts[-1]}`" not in rows.get(folder, "") and f"`{parts[-1]}.py`" not in rows.get(folder, ""):
            missing.append(info.name)
    assert missing == [], f"add these to README's layout table: {missing}"
