"""The Colab and student editions: plain Jupyter Markdown, the book's numbers, solutions folded or gone."""

import json
import re
import subprocess
import warnings
from pathlib import Path

import pytest
import yaml

from mmcl_helpers.book_support import notebook
from mmcl_helpers.book_support.editions import (
    EditionError,
    _Page,
    _render,
    build_editions,
    edition_sources,
    install_spec,
    load_context,
    raw_myst,
    write_book_config,
)

ROOT = Path(__file__).resolve().parents[1]
HEAD = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()


@pytest.fixture(scope="module")
def editions(tmp_path_factory):
    out = tmp_path_factory.mktemp("editions")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a working tree with uncommitted changes only warns
        build_editions(ROOT, out)
    return out


def _cells(path):
    return json.loads(Path(path).read_text())["cells"]


def _text(cell):
    return "".join(cell["source"])


def _solution_cells(src):
    """Indices of the cells from each solution-start to its solution-end (both included)."""
    cells, inside, found = _cells(src), False, []
    for i, cell in enumerate(cells):
        text = _text(cell)
        if cell["cell_type"] == "markdown" and "```{solution-start}" in text:
            inside = True
        if inside:
            found.append(i)
        if cell["cell_type"] == "markdown" and "```{solution-end}" in text:
            inside = False
    return found


SOURCES = edition_sources(ROOT)


def test_every_notebook_of_the_toc_has_both_editions_at_the_source_path(editions):
    names = {p.name for p in SOURCES}
    assert {"01_latent_model.ipynb", "06_practice.ipynb", "using_mmcl_helpers.ipynb",
            "appendix_paper_programme.ipynb", "syllabus.ipynb"} <= names and len(names) == 9
    for edition in ("colab", "student"):
        # The same path as in the repository under colab/ and student/: the Colab buttons'
        # path_to_book ("colab") plus the page's path.
        assert {p.name for p in (editions / edition / "book").glob("*.ipynb")} == names


def test_raw_myst_is_detected():
    for text in ["```{note}\nx\n```", ":::{admonition} T\nx\n:::", "see {cite}`cai2025negate`",
                 "{glue:text}`tau:.2f`", "{prf:ref}`thm-identifiability`", ":label: ex-1", "(sec-x)=",
                 "a {doc}`api` link"]:
        assert raw_myst(text), text
    assert raw_myst("plain `{shape}` code, $\\mathbf{s}$ and ```python\nx\n```") == []


@pytest.mark.parametrize("edition", ["colab", "student"])
def test_no_raw_myst_in_any_edition(editions, edition):
    for path in sorted((editions / edition / "book").glob("*.ipynb")):
        for cell in _cells(path):
            text = _text(cell)
            if cell["cell_type"] == "markdown" or "display_glued(" in text:
                assert raw_myst(text) == [], (path.name, cell["id"], raw_myst(text))
            for raw in ("{glue", "{cite", "{prf:"):
                assert raw not in text, (path.name, cell["id"], raw)


def test_the_install_cell_installs_the_generating_commit(editions):
    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    assert re.fullmatch(r"[0-9a-f]{40}", HEAD)
    for path in sorted(editions.glob("*/book/*.ipynb")):
        spec, found_url = install_spec(path)
        assert spec == f"mmcl_helpers @ git+{url}@{HEAD}" and found_url == url, path
        meta = json.loads(path.read_text())["metadata"]["mmcl_edition"]
        assert meta["commit"] == HEAD and meta["source"] == path.name


def test_the_student_edition_holds_no_solution_and_keeps_everything_else(editions):
    for src in SOURCES:
        cells = _cells(src)
        student = _cells(editions / "student" / "book" / src.name)
        student_text = "\n".join(_text(c) for c in student)
        solution = set(_solution_cells(src))
        n_exercises = sum(_text(c).count("```{exercise}") for c in cells if c["cell_type"] == "markdown")
        assert len(re.findall(r"^> \*\*Exercise \d+", student_text, flags=re.M)) == n_exercises, src.name
        assert "Solution to Exercise" not in student_text and "<details>" not in student_text, src.name
        outside = "\n".join(_text(c) for i, c in enumerate(cells) if i not in solution)
        for i in solution:  # every line of a solution that is not also elsewhere (an import, say)
            for line in _text(cells[i]).splitlines():
                line = line.strip()
                if len(line) > 25 and not line.startswith(("```", ":")) and line not in outside:
                    assert line not in student_text, (src.name, line)
        student_ids = {c["id"] for c in student}
        for i, cell in enumerate(cells):  # every code cell outside a solution (checker calls too)
            if cell["cell_type"] == "code" and i not in solution:
                assert cell["id"] in student_ids, (src.name, cell["id"])
        if solution:
            assert any("exercises" in _text(cells[i]) or cells[i]["cell_type"] == "markdown"
                       for i in range(len(cells)) if i not in solution)


def test_the_colab_edition_folds_every_solution(editions):
    for src in SOURCES:
        cells = _cells(src)
        colab = _cells(editions / "colab" / "book" / src.name)
        text = "\n".join(_text(c) for c in colab)
        n_exercises = sum(_text(c).count("```{exercise}") for c in cells if c["cell_type"] == "markdown")
        assert len(set(re.findall(r"<summary><b>Solution to Exercise (\d+)</b>", text))) == n_exercises
        by_id = {c["id"]: c for c in colab}
        for i in _solution_cells(src):
            if cells[i]["cell_type"] == "code":
                folded = by_id[cells[i]["id"]]
                assert folded["metadata"]["jupyter"]["source_hidden"] is True
                assert folded["metadata"]["cellView"] == "form"
                assert _text(folded).startswith("# @title Solution to Exercise ")


def test_numbers_run_through_the_book_as_sphinx_numbers_them(editions):
    numbers = []
    for src in SOURCES:
        text = "\n".join(_text(c) for c in _cells(editions / "colab" / "book" / src.name))
        numbers += [int(n) for n in re.findall(r"^> \*\*Exercise (\d+)", text, flags=re.M)]
    assert numbers == list(range(1, len(numbers) + 1)) and len(numbers) >= 12
    ch4 = "\n".join(_text(c) for c in _cells(editions / "colab" / "book" / "04_identifiability_proof.ipynb"))
    assert re.search(r"^\*\*Theorem 1 \(", ch4, flags=re.M)
    assert [int(n) for n in re.findall(r"^\*\*Assumption (\d+)", ch4, flags=re.M)] == [1, 2, 3, 4, 5]
    assert [int(n) for n in re.findall(r"^\*\*Corollary (\d+)", ch4, flags=re.M)] == [1, 2]
    assert [int(n) for n in re.findall(r"^\*\*Lemma (\d+)", ch4, flags=re.M)] == [1, 2]
    assert "**Proof.**" in ch4


def test_references_link_to_the_rendered_book_and_citations_read_author_year(editions):
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    base = config["html"]["baseurl"].rstrip("/")
    ch2 = "\n".join(_text(c) for c in _cells(editions / "colab" / "book" / "02_selection_bias.ipynb"))
    assert f"[Theorem 1]({base}/book/04_identifiability_proof.html#thm-identifiability)" in ch2
    # The sentence names the authors, so only the year follows; elsewhere (Author, year).
    assert re.search(r"Cai et al\.\s+\(2025\)", ch2) and "(Cai et al., 2025)" not in ch2
    ch5 = "\n".join(_text(c) for c in _cells(editions / "colab" / "book" / "05_image_text.ipynb"))
    assert "(Chen et al., 2021)" in ch5
    cells = _cells(editions / "colab" / "book" / "02_selection_bias.ipynb")
    refs = [c for c in cells if _text(c).startswith("## References")]
    assert len(refs) == 1 and "Negate or Embrace" in _text(refs[0])
    recipes = "\n".join(_text(c) for c in _cells(editions / "colab" / "book" / "using_mmcl_helpers.ipynb"))
    assert f"]({base}/book/api.html)" in recipes


def test_every_glued_value_is_shown_by_a_code_cell_with_the_same_fields(editions):
    for src in SOURCES:
        source = "\n".join(_text(c) for c in _cells(src) if c["cell_type"] == "markdown")
        used = re.findall(r"\{glue(?::\w*)?\}`([^`]+)`", source)
        shown = []
        for cell in _cells(editions / "colab" / "book" / src.name):
            if cell["cell_type"] == "code" and "display_glued(" in _text(cell):
                assert cell["metadata"]["jupyter"]["source_hidden"] is True
                shown += re.findall(r"\{\{([^{}]+)\}\}", _text(cell))
        assert sorted(shown) == sorted(u.strip() for u in used), src.name


def test_display_glued_fills_in_values_glued_later(monkeypatch):
    class Handle:
        def __init__(self):
            self.shown = []

        def update(self, obj):
            self.shown.append(obj.data)

    handle = Handle()
    import IPython.display

    def display(obj, display_id=None, **kwargs):
        if isinstance(obj, IPython.display.Markdown):
            handle.shown.append(obj.data)
        return handle

    monkeypatch.setattr(IPython.display, "display", display)
    monkeypatch.setattr(notebook, "GLUED", {"a": 0.123456})
    monkeypatch.setattr(notebook, "_WAITING", [])
    notebook.display_glued("a = {{a:.2f}}, b = {{b:,d}}, $\\mathbf{s}$")
    assert handle.shown == [f"a = 0.12, b = {notebook.PENDING_TEXT}, $\\mathbf{{s}}$"]
    notebook.glue("b", 12345)
    assert handle.shown[-1] == "a = 0.12, b = 12,345, $\\mathbf{s}$" and notebook._WAITING == []


def test_unknown_myst_is_an_error_not_raw_text():
    page = _Page(load_context(ROOT), "book/02_selection_bias")
    with pytest.raises(EditionError, match="directive"):
        _render(page, "```{glue:figure} fig\n```")
    with pytest.raises(EditionError, match="role"):
        _render(page, "see {eq}`eq-1`")
    with pytest.raises(EditionError, match="unknown label"):
        _render(page, "{prf:ref}`no-such-label`")
    with pytest.raises(EditionError, match="references.bib"):
        _render(page, "{cite}`no-such-key`")


def test_the_book_config_copy_points_the_colab_buttons_at_the_published_editions(tmp_path):
    out = tmp_path / "c.yml"
    write_book_config(ROOT, out, timeout=123, launch_ref="a" * 40, launch_path="colab")
    config = yaml.safe_load(out.read_text())
    original = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["timeout"] == 123
    assert config["repository"] == {**original["repository"], "branch": "a" * 40, "path_to_book": "colab"}
    assert config["launch_buttons"] == original["launch_buttons"]
    # What Jupyter Book 1 makes of it for a chapter (sphinx-book-theme's launch button):
    owner_repo = config["repository"]["url"].removeprefix("https://github.com/")
    repo = config["repository"]
    link = (f"{config['launch_buttons']['colab_url']}/github/{owner_repo}/blob/{repo['branch']}/"
            f"{repo['path_to_book']}/book/01_latent_model.ipynb")
    assert link.endswith(f"/blob/{'a' * 40}/colab/book/01_latent_model.ipynb")
    write_book_config(ROOT, out, timeout=5)
    assert yaml.safe_load(out.read_text())["repository"] == original["repository"]
