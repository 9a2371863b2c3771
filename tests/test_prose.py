"""The book's prose holds no result typed by hand.

Every run-dependent number in a chapter is glued from the code of that build (myst-nb ``glue``);
paper values are quoted from ``mmcl_helpers.core.paper``. This test reads every markdown cell of every
notebook in ``book/`` (and every ``book/*.md`` page) and fails on a number that looks like a typed
result.

The rule, applied to prose only (after removing code fences, inline code and roles such as
``{glue:text}`...``` or ``{cite}`...```, display and inline math, HTML comments and directive
option lines):

* a decimal number with two or more decimals (``0.79``, ``0.125``), or
* a hedged decimal or percentage (``about 0.3``, ``≈ 0.8``, ``up to 0.1``, ``roughly 40%``),

is flagged unless the sentence that holds it attributes it to the paper: it names "paper",
"Cai et al." or cites ``cai2025negate`` (the citation role is looked for before roles are removed).
Settings of the paper quoted in prose (such as a perturbation probability) therefore say where
they come from, and anything else is glued. Software versions ("Python 3.10") and file sizes
("5.6 GB") are not results and are skipped. Integers are not checked at all: profile facts (steps,
batch, seeds) are glued, but this rule cannot tell them from counts that never change.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_FENCE = re.compile(r"^(```+|~~~+)(.*?)$.*?^\1\s*$", re.M | re.S)
_ROLE = re.compile(r"\{[\w:.-]+\}`[^`]*`")
_CODE = re.compile(r"``.+?``|`[^`\n]+`")
_DISPLAY_MATH = re.compile(r"\$\$.*?\$\$", re.S)
_INLINE_MATH = re.compile(r"(?<!\\)\$(?!\$).+?(?<!\\)\$", re.S)
_PAREN_MATH = re.compile(r"\\\(.*?\\\)|\\\[.*?\\\]", re.S)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_OPTION = re.compile(r"^\s*:[\w-]+:.*$", re.M)
_DIRECTIVE = re.compile(r"^\s*(:::+|```+)\s*(\{[\w:-]+\})?.*$", re.M)

_DECIMAL = re.compile(r"(?<![\w.])\d+\.\d{2,}(?![\w.]*\d)")
_HEDGED = re.compile(
    r"(?:about|around|roughly|approximately|nearly|almost|up to|≈|~)\s*"
    r"(?:\d+\.\d+|\d+\s?%)", re.I)
_ATTRIBUTION = re.compile(r"paper|cai et al|cai2025negate", re.I)
# Not results: software versions and file sizes.
_NOT_A_RESULT = re.compile(r"(?:python|version|v)\s?$|^\s?(?:[kmgt]i?b)\b", re.I)
# A sentence ends at . ! ? followed by white space, except after common abbreviations.
_SENTENCE_END = re.compile(
    r"(?<!\bFig)(?<!\bEq)(?<!\bApp)(?<!\bCor)(?<!\bAsm)(?<!\bThm)(?<!\bSec)(?<!\bal)(?<!\be\.g)"
    r"(?<!\bi\.e)(?<!\bvs)[.!?](?=\s)")


@dataclass(frozen=True)
class Finding:
    """One suspicious number: where it is, the number, and its sentence."""

    where: str
    number: str
    sentence: str


def prose_of(markdown: str) -> str:
    """The prose of a markdown source: code, math, roles, comments and directive lines removed.

    Fences whose info string is a directive (```` ```{admonition} ````) keep their body, which is
    prose; plain code fences (```` ```python ````) are dropped whole.
    """

    def fence(m: re.Match) -> str:
        info = m.group(2).strip()
        if info.startswith("{") and not info.startswith(("{code", "{code-cell")):
            body = m.group(0).split("\n", 1)[1] if "\n" in m.group(0) else ""
            return body.rsplit("\n", 1)[0]
        return "\n"

    text = _FENCE.sub(fence, markdown)
    text = _COMMENT.sub(" ", text)
    text = _DISPLAY_MATH.sub(" ", text)
    text = _PAREN_MATH.sub(" ", text)
    text = _INLINE_MATH.sub(" ", text)
    text = _OPTION.sub(" ", text)
    text = _DIRECTIVE.sub(lambda m: " " + (m.group(0).split("}", 1)[-1] if "}" in m.group(0) else ""),
                          text)
    return text


def sentences(markdown: str) -> list[str]:
    """Sentences of the prose (paragraphs and table rows split first), citations marked."""
    # Keep the fact that a sentence cites the paper before roles are removed.
    marked = markdown.replace("{cite}`cai2025negate`", " CITES-cai2025negate ")
    marked = _ROLE.sub(" ", marked)
    text = _CODE.sub(" ", prose_of(marked))
    out = []
    for block in re.split(r"\n\s*\n|\n(?=\s*\|)|\n(?=\s*[-*] )|\n(?=\s*\d+\. )", text):
        for piece in _SENTENCE_END.split(block):
            piece = " ".join(piece.split())
            if piece:
                out.append(piece)
    return out


def hand_typed(markdown: str, where: str = "") -> list[Finding]:
    """Numbers in ``markdown`` that the rule above flags."""
    found = []
    for sentence in sentences(markdown):
        if _ATTRIBUTION.search(sentence):
            continue
        spans: list[tuple[int, int]] = []
        for pattern in (_HEDGED, _DECIMAL):
            for m in pattern.finditer(sentence):
                before, after = sentence[:m.start()], sentence[m.end():]
                inside = any(a <= m.start() < b for a, b in spans)
                if inside or _NOT_A_RESULT.search(before[-8:]) or _NOT_A_RESULT.search(after[:5]):
                    continue
                spans.append(m.span())
                found.append(Finding(where, m.group(0), sentence))
    return found


def markdown_sources(root: Path) -> list[tuple[str, str]]:
    """(location, markdown) for every markdown cell of ``root/book/*.ipynb`` and ``book/*.md``."""
    sources = []
    for path in sorted((root / "book").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        for i, cell in enumerate(nb["cells"]):
            if cell["cell_type"] == "markdown":
                sources.append((f"{path.name}[{i}] ({cell.get('id')})", "".join(cell["source"])))
    for path in sorted((root / "book").glob("*.md")):
        sources.append((path.name, path.read_text()))
    return sources


def find_hand_typed(root: Path = ROOT) -> list[Finding]:
    """Every flagged number in the book under ``root``."""
    return [f for where, md in markdown_sources(root) for f in hand_typed(md, where)]


# --- the rule itself -------------------------------------------------------------------------

def test_rule_flags_typed_results():
    md = ("Only four extra output dimensions lifted them (to about 0.79). "
          "The residue is about 0.1 to 0.2, and roughly 40% of the variance.")
    numbers = [f.number for f in hand_typed(md)]
    assert "about 0.79" in numbers
    assert any(n.startswith("about 0.1") for n in numbers)
    assert any(n.startswith("roughly 40") for n in numbers)


def test_rule_ignores_math_code_glue_and_paper_values():
    md = (
        "The fold gives $\\log 2 - 1 \\approx -0.307$ nats.\n\n"
        "$$R^2 = 0.25 + 0.5u$$\n\n"
        "The run reaches {glue:text}`worst_r2:.2f`, see `threshold=0.15`.\n\n"
        "The paper's shape row dips to 0.82. Cai et al. {cite}`cai2025negate` report 0.97.\n\n"
        "```python\nx = 0.123\n```\n"
    )
    assert hand_typed(md) == []


def test_rule_reads_admonition_bodies_but_not_code_fences():
    md = "```{admonition} Note\n:class: note\nThe loss fell to 0.42.\n```\n"
    assert [f.number for f in hand_typed(md)] == ["0.42"]
    assert hand_typed("```text\nloss 0.42\n```\n") == []


def test_versions_and_file_sizes_are_not_results():
    assert hand_typed("Needs Python 3.10 or newer; the file (about 5.6 GB) is large.") == []


def test_attribution_is_per_sentence():
    md = "The paper reports 0.88. This run gets 0.74."
    assert [(f.number, f.sentence) for f in hand_typed(md)] == [("0.74", "This run gets 0.74.")]


def test_abbreviations_do_not_end_a_sentence():
    md = "These are the values read off the paper's Fig. 6 (0.40 and 0.79)."
    assert hand_typed(md) == []


# --- the book --------------------------------------------------------------------------------

def test_the_book_has_markdown_to_check():
    sources = markdown_sources(ROOT)
    assert sum(1 for where, _ in sources if ".ipynb" in where) >= 50


def test_no_hand_typed_results_in_the_book():
    found = find_hand_typed(ROOT)
    lines = [f"{f.where}: {f.number!r} in: {f.sentence[:160]}" for f in found]
    assert not found, "hand-typed numbers (glue them, or attribute them to the paper):\n" + "\n".join(lines)


def test_notebook_glue_stores_plain_python_values():
    import numpy as np

    from mmcl_helpers.book_support.notebook import GLUED, glue

    # Nothing is returned: a cell ending with glue(...) must not print the value on the page.
    assert glue("prose_test_value", np.float64(0.25)) is None
    assert GLUED["prose_test_value"] == 0.25
    assert type(GLUED["prose_test_value"]) is float  # "{glue:text}`k:.2f`" needs a plain float
    with pytest.raises(TypeError, match="non-empty"):
        glue("", 1)


def test_notebooks_glue_through_the_package_so_nothing_shows_on_the_page():
    # myst-nb's own glue() displays the value by default: chapter 3 once printed seven stray
    # numbers on its rendered page. The package's glue never displays.
    for path in sorted((ROOT / "book").glob("*.ipynb")):
        source = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"]
                           if c["cell_type"] == "code")
        assert "from myst_nb import glue" not in source, path.name


# --- markup that renders -----------------------------------------------------------------------

_BACKTICK_FENCE = re.compile(r"^(`{3,})([^`\n]*)$", re.M)


def backtick_fences_with_backticks(markdown: str) -> list[str]:
    """Lines that open a backtick fence whose info string holds a backtick: CommonMark does not
    read them as a fence, so a directive such as an admonition renders as raw text."""
    return [line for line in markdown.splitlines()
            if line.startswith("```") and "`" in line.lstrip("`") and not _BACKTICK_FENCE.match(line)]


def test_fence_rule():
    assert backtick_fences_with_backticks("```{admonition} What the `paper` column is\n```") == [
        "```{admonition} What the `paper` column is"]
    fine = "```{admonition} What the paper column is\n```\n```python\n```"
    assert backtick_fences_with_backticks(fine) == []


def test_no_directive_title_holds_a_backtick():
    bad = [f"{where}: {line}" for where, md in markdown_sources(ROOT)
           for line in backtick_fences_with_backticks(md)]
    assert not bad, "a backtick in a fence's info string breaks the fence:\n" + "\n".join(bad)
