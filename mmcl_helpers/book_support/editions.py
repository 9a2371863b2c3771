"""The book's notebooks for readers without Sphinx: a Colab edition and a student edition.

``book/*.ipynb`` stay the single source. :func:`build_editions` writes, for every notebook of
``_toc.yml``, ``<out>/colab/book/<name>.ipynb`` and ``<out>/student/book/<name>.ipynb`` (the
``book/`` folder keeps the source's paths, so the rendered book's Colab buttons can point into the
published editions with ``repository.path_to_book: colab``):

- **Colab edition**: plain Jupyter Markdown. Admonitions become block quotes with their titles;
  exercises and theorem-like blocks keep the book's numbers (Sphinx numbers each kind in one
  sequence over the whole book, in table-of-contents order); each solution (the cells from a
  ``solution-start`` to its ``solution-end``) is folded: its text in ``<details>``, its code
  cells collapsed; citations read (Author, year) with a reference list at the end (from
  ``references.bib``); cross-references link to the rendered book's pages (``html.baseurl`` of
  ``_config.yml``). A paragraph with glued values becomes a small code cell that shows it with
  the values of the reader's own run (:func:`~mmcl_helpers.book_support.notebook.display_glued`).
- **Student edition**: the same without the solutions (text and code); exercises and every other
  cell stay.

The first code cell of every edition installs ``mmcl_helpers`` from the repository address in
``_config.yml`` at the full SHA of the commit the editions were generated from (the source cells
install ``@main``). A tree with uncommitted changes to tracked files still generates (with a
warning: the install cell's commit is not what the notebooks were made from); ``--require-clean``
refuses it, and the GPU workflow and ``colab-check`` use that.

Command line (from the repository root)::

    python -m mmcl_helpers.book_support.editions build [--out _build/editions] [--require-clean]
    python -m mmcl_helpers.book_support.editions colab-check [--venv .colab-check]
    python -m mmcl_helpers.book_support.editions book-config --out .book-config.yml \\
        [--timeout SECONDS] [--launch-ref REF --launch-path PATH] [--execute-notebooks cache]

``colab-check`` creates a fresh virtual environment, runs each Colab edition's own install
command with the repository address replaced by ``$MMCL_INSTALL_URL`` (default
``git+file://localhost<this checkout>``; pip 23 rejects ``git+file:///...``, whose host is
empty), and executes every Colab edition there at the ``smoke`` profile, from a folder outside
the checkout, with an empty cache.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["EditionError", "BookContext", "load_context", "raw_myst", "convert_notebook",
           "build_editions", "install_spec", "colab_check", "write_book_config", "main"]

#: The one environment variable that replaces the repository address in ``colab-check``.
INSTALL_URL_VARIABLE = "MMCL_INSTALL_URL"

_INSTALL = re.compile(r'%pip install -q "mmcl_helpers @ git\+(?P<url>[^"@]+)@(?P<ref>[^"]+)"')
_OPEN = re.compile(r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[^}\s]+)\}[ \t]*(?P<arg>.*?)[ \t]*$")
_CODE_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})")
_OPTION = re.compile(r"^:([\w-]+):[ \t]*(.*)$")
_ROLE = re.compile(r"(?<![\w`])\{(?P<role>[A-Za-z][\w:+-]*)\}`(?P<content>[^`]+)`")
_TARGET = re.compile(r"^\((?P<label>[^()\s]+)\)=[ \t]*$", re.M)
_EXPLICIT = re.compile(r"^(?P<text>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
_ADMONITIONS = {"admonition", "note", "tip", "hint", "important", "warning", "caution", "attention",
                "danger", "error", "seealso"}
_PRF_UNNUMBERED = {"proof"}
_CITE_PAREN = {"cite", "cite:p", "cite:ps", "cite:alp", "cite:alps"}
_CITE_TEXT = {"cite:t", "cite:ts", "cite:ct", "cite:cts"}
_PY_ROLES = {"func", "class", "mod", "meth", "attr", "data", "obj", "exc", "const"}
_GLUE_ROLES = {"glue", "glue:", "glue:text", "glue:any", "glue:md"}


class EditionError(ValueError):
    """The source holds something the editions cannot express (named with its notebook and cell)."""


# ----------------------------------------------------------------------------------------------
# Reading the book: configuration, numbers, labels, references


@dataclass
class _Label:
    docname: str
    kind: str | None  # "Exercise", "Theorem", ... (None: a section target)
    number: int | None
    title: str


@dataclass
class BookContext:
    """What converting a notebook needs from the rest of the book.

    Attributes:
        root: the repository root.
        repo_url: ``repository.url`` of ``_config.yml``.
        baseurl: the rendered book's address (``html.baseurl``), ending in ``/``.
        commit: full SHA of ``HEAD``; dirty: tracked files differ from it.
        labels: label -> where it lives, its kind, number and title.
        titles: docname -> first heading.
        numbers: (docname, kind) -> the numbers of that kind on that page, in order.
        bib: citation key -> fields (``author``, ``year``, ``title``, venue fields).
    """

    root: Path
    repo_url: str
    baseurl: str
    commit: str
    dirty: bool
    labels: dict[str, _Label] = field(default_factory=dict)
    titles: dict[str, str] = field(default_factory=dict)
    numbers: dict[tuple[str, str], list[int | None]] = field(default_factory=dict)
    bib: dict[str, dict[str, str]] = field(default_factory=dict)


def _yaml(path: Path) -> dict:
    import yaml

    return yaml.safe_load(path.read_text())


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True)
    if done.returncode != 0:
        raise EditionError(f"git {' '.join(args)} failed in {root}: {done.stderr.strip()}")
    return done.stdout.strip()


def book_baseurl(config: dict) -> str:
    """The rendered book's address: ``html.baseurl`` of ``_config.yml``, ending in ``/``."""
    url = (config.get("html") or {}).get("baseurl")
    if not url:
        raise EditionError("_config.yml has no html.baseurl: the editions link to the rendered book's "
                           "pages there (e.g. https://OWNER.github.io/REPO/).")
    return url.rstrip("/") + "/"


def toc_docnames(root: Path) -> list[str]:
    """Every page of ``_toc.yml``, in the book's order (root first, sections after their parent)."""
    toc = _yaml(root / "_toc.yml")
    names = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                names.append(entry["file"])
            walk(entry.get("sections"))
            for part in entry.get("parts", []) or []:
                walk(part.get("chapters"))

    walk(toc.get("chapters"))
    for part in toc.get("parts", []) or []:
        walk(part.get("chapters"))
    return names


def _doc_path(root: Path, docname: str) -> Path:
    for suffix in (".ipynb", ".md"):
        if (root / f"{docname}{suffix}").exists():
            return root / f"{docname}{suffix}"
    raise EditionError(f"_toc.yml names {docname!r}, but neither {docname}.ipynb nor .md exists.")


def _markdown_of(path: Path) -> list[str]:
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        return ["".join(c["source"]) for c in cells if c["cell_type"] == "markdown"]
    return [path.read_text()]


@dataclass
class _Directive:
    name: str
    arg: str
    options: dict[str, str]
    body: str


def _closes(line: str, char: str, n: int) -> bool:
    """Whether ``line`` closes a fence of ``n`` times ``char`` (at least as many, nothing else)."""
    stripped = line.rstrip()
    return len(stripped) >= n and stripped == char * len(stripped)


def _split_directives(text: str) -> list[str | _Directive]:
    """Text pieces and directives (MyST fences ```` ```{name} ```` or ``:::{name}``), in order;
    plain code fences are kept in the text untouched."""
    lines = text.split("\n")
    out: list[str | _Directive] = []
    buf: list[str] = []
    i = 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
        if m is None:
            code = _CODE_FENCE.match(lines[i])
            if code:
                char, n = code["fence"][0], len(code["fence"])
                j = next((k for k in range(i + 1, len(lines)) if _closes(lines[k], char, n)), len(lines) - 1)
                buf.extend(lines[i:j + 1])
                i = j + 1
                continue
            buf.append(lines[i])
            i += 1
            continue
        char, n = m["fence"][0], len(m["fence"])
        j = next((k for k in range(i + 1, len(lines)) if _closes(lines[k], char, n)), len(lines))
        body = lines[i + 1:j]
        options: dict[str, str] = {}
        while body and _OPTION.match(body[0]):
            key, value = _OPTION.match(body[0]).groups()
            options[key] = value
            body = body[1:]
        if buf:
            out.append("\n".join(buf))
            buf = []
        out.append(_Directive(m["name"], m["arg"], options, "\n".join(body).strip("\n")))
        i = j + 1
    if buf:
        out.append("\n".join(buf))
    return out


def _walk_directives(text: str) -> Iterator[_Directive]:
    """Every directive in ``text``, nested ones included, in reading order."""
    for piece in _split_directives(text):
        if isinstance(piece, _Directive):
            yield piece
            yield from _walk_directives(piece.body)


def _kind(name: str) -> str | None:
    """The numbered kind a directive belongs to (its own Sphinx counter), or None."""
    if name == "exercise":
        return "Exercise"
    if name.startswith("prf:") and name != "prf:ref" and name[4:] not in _PRF_UNNUMBERED:
        return name[4:].capitalize()
    return None


def _first_heading(texts: list[str]) -> str:
    for text in texts:
        m = re.search(r"^#\s+(.+?)\s*$", text, re.M)
        if m:
            return m.group(1)
    return ""


def load_context(root: str | Path) -> BookContext:
    """Read ``_config.yml``, ``_toc.yml``, every page's labels and numbers, ``references.bib``, and
    the commit (``git rev-parse HEAD``; ``dirty`` when tracked files changed since)."""
    root = Path(root).resolve()
    config = _yaml(root / "_config.yml")
    ctx = BookContext(root=root, repo_url=config["repository"]["url"].rstrip("/"),
                      baseurl=book_baseurl(config), commit=_git(root, "rev-parse", "HEAD"),
                      dirty=bool(_git(root, "status", "--porcelain", "--untracked-files=no")))
    counters: dict[str, int] = {}
    for docname in toc_docnames(root):
        texts = _markdown_of(_doc_path(root, docname))
        ctx.titles[docname] = _first_heading(texts)
        for text in texts:
            for m in _TARGET.finditer(text):
                after = re.search(r"^#+\s+(.+?)\s*$", text[m.end():], re.M)
                ctx.labels[m["label"]] = _Label(docname, None, None, after.group(1) if after else m["label"])
            for d in _walk_directives(text):
                kind = _kind(d.name)
                number = None
                if kind and "nonumber" not in d.options:
                    counters[kind] = counters.get(kind, 0) + 1
                    number = counters[kind]
                if kind:
                    ctx.numbers.setdefault((docname, kind), []).append(number)
                if "label" in d.options:
                    ctx.labels[d.options["label"]] = _Label(docname, kind, number, d.arg)
    ctx.bib = read_bib(root / "references.bib") if (root / "references.bib").exists() else {}
    return ctx


def read_bib(path: Path) -> dict[str, dict[str, str]]:
    """``references.bib`` as key -> fields, with pybtex when it is installed, else a small reader
    (entries ``@type{key, field = {value} | "value" | number, ...}``)."""
    try:
        from pybtex.database import parse_file
    except ImportError:
        return _read_bib_plain(path.read_text())
    data = parse_file(str(path), bib_format="bibtex")
    entries = {}
    for key, entry in data.entries.items():
        fields = {k.lower(): str(v) for k, v in entry.fields.items()}
        people = entry.persons.get("author", [])
        fields["author"] = " and ".join(
            " ".join(p.first_names + p.middle_names + p.prelast_names + p.last_names) for p in people)
        fields["_last"] = json.dumps([" ".join(p.prelast_names + p.last_names) for p in people])
        entries[key] = fields
    return entries


def _read_bib_plain(text: str) -> dict[str, dict[str, str]]:
    entries = {}
    for m in re.finditer(r"@\w+\s*\{\s*([^,\s]+)\s*,", text):
        depth, i = 1, m.end()
        while depth and i < len(text):
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        body, fields = text[m.end():i - 1], {}
        for f in re.finditer(r"(\w+)\s*=\s*(\{(?:[^{}]|\{[^{}]*\})*\}|\"[^\"]*\"|\d+)", body):
            fields[f.group(1).lower()] = f.group(2).strip('{}"').replace("{", "").replace("}", "")
        people = [a.strip() for a in fields.get("author", "").split(" and ") if a.strip()]
        fields["_last"] = json.dumps([a.split(",")[0].strip() if "," in a else a.split()[-1]
                                      for a in people])
        entries[m.group(1)] = fields
    return entries


#: LaTeX accent commands -> Unicode combining marks (\\"u -> ü, \\'e -> é, \\c{c} -> ç, ...).
_ACCENTS = {'"': "\u0308", "'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", "=": "\u0304",
            ".": "\u0307", "c": "\u0327", "u": "\u0306", "v": "\u030c", "H": "\u030b"}


def _clean_tex(text: str) -> str:
    """BibTeX text as plain Unicode: accents composed, braces dropped, ``--`` as an en dash."""
    import unicodedata

    text = re.sub(r"\\([\"'`^~=.]|[cuvH](?=[{\s]))\s*\{?\\?([A-Za-z])\}?",
                  lambda m: unicodedata.normalize("NFC", m.group(2) + _ACCENTS[m.group(1)]), text)
    text = text.replace("\\ss", "ß").replace("\\&", "&").replace("{", "").replace("}", "")
    return re.sub(r"\s+", " ", text.replace("--", "–")).strip()


def _authors_short(fields: dict[str, str]) -> str:
    last = [_clean_tex(n) for n in json.loads(fields["_last"])]
    if len(last) == 1:
        return last[0]
    if len(last) == 2:
        return f"{last[0]} and {last[1]}"
    return f"{last[0]} et al." if last else "Anonymous"


def reference_line(fields: dict[str, str]) -> str:
    """One entry of the reference list: authors (year). Title. Venue."""
    venue = next((fields[k] for k in ("journal", "booktitle", "publisher", "howpublished", "school")
                  if k in fields), "")
    authors = _clean_tex(fields.get("author", "")).replace(" and ", ", ")
    line = f"{authors} ({fields.get('year', 'n.d.')}). {_clean_tex(fields.get('title', ''))}."
    if venue:
        line += f" *{_clean_tex(venue)}*."
    return line


# ----------------------------------------------------------------------------------------------
# Converting MyST to Jupyter Markdown


@dataclass
class _Page:
    """Conversion state of one notebook."""

    ctx: BookContext
    docname: str
    where: str = ""
    cited: list[str] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)

    def next_number(self, kind: str) -> int | None:
        index = self.seen.get(kind, 0)
        self.seen[kind] = index + 1
        return self.ctx.numbers[(self.docname, kind)][index]

    def fail(self, what: str) -> EditionError:
        return EditionError(f"{self.docname} ({self.where}): {what}")


def _url(page: _Page, docname: str, anchor: str | None = None) -> str:
    return f"{page.ctx.baseurl}{docname}.html" + (f"#{anchor}" if anchor else "")


def _resolve_doc(page: _Page, target: str) -> str:
    target = target.removesuffix(".md").removesuffix(".ipynb")
    if target.startswith("/"):
        return target.lstrip("/")
    folder = page.docname.rsplit("/", 1)[0] if "/" in page.docname else ""
    return os.path.normpath(os.path.join(folder, target)).replace(os.sep, "/")


def _cite(page: _Page, role: str, content: str, before: str = "") -> str:
    """``(Author, year; ...)``, ``Author (year)`` for the textual forms, and only ``(year)`` where
    the sentence names the author right before the citation ("Cai et al. (2025)")."""
    keys = [k.strip() for k in content.split(",") if k.strip()]
    if len(keys) == 1 and role in _CITE_PAREN and keys[0] in page.ctx.bib:
        fields = page.ctx.bib[keys[0]]
        if re.sub(r"\s+", " ", before).rstrip().endswith(_authors_short(fields)):
            if keys[0] not in page.cited:
                page.cited.append(keys[0])
            return f"({fields.get('year', 'n.d.')})"
    parts = []
    for key in keys:
        if key not in page.ctx.bib:
            raise page.fail(f"citation key {key!r} is not in references.bib")
        if key not in page.cited:
            page.cited.append(key)
        fields = page.ctx.bib[key]
        who, year = _authors_short(fields), fields.get("year", "n.d.")
        parts.append(f"{who} ({year})" if role in _CITE_TEXT else f"{who}, {year}")
    if role in _CITE_TEXT:
        return ", ".join(parts)
    return "(" + "; ".join(parts) + ")"


def _role(page: _Page, m: re.Match) -> str:
    role, content = m["role"], m["content"]
    explicit = _EXPLICIT.match(content)
    text, target = (explicit["text"], explicit["target"]) if explicit else (None, content)
    if role in _GLUE_ROLES:
        if "::" in content:
            raise page.fail(f"glue from another page ({content!r}) has no value in this kernel")
        return "{{" + content.strip() + "}}"
    if role in _CITE_PAREN | _CITE_TEXT:
        return _cite(page, role, content, m.string[:m.start()])
    if role in ("prf:ref", "ref", "numref"):
        label = page.ctx.labels.get(target)
        if label is None:
            raise page.fail(f"{{{role}}} to the unknown label {target!r}")
        default = f"{label.kind} {label.number}" if label.number else label.title
        if text and role == "numref":
            text = text.replace("%s", str(label.number)).replace("{number}", str(label.number))
        return f"[{text or default}]({_url(page, label.docname, target)})"
    if role == "doc":
        docname = _resolve_doc(page, target)
        if docname not in page.ctx.titles:
            raise page.fail(f"{{doc}} to {target!r}, which is not a page of _toc.yml")
        return f"[{text or page.ctx.titles[docname]}]({_url(page, docname)})"
    if role == "math":
        return f"${content}$"
    if role in ("term", "abbr"):
        return text or target
    name = role.split(":")[-1]
    if role.startswith("py:") or name in _PY_ROLES:
        shown = text or (target[1:].rsplit(".", 1)[-1] if target.startswith("~") else target)
        return f"`{shown}`"
    raise page.fail(f"the role {{{role}}} has no Jupyter form in the editions")


def _inline(page: _Page, text: str) -> str:
    """Roles replaced, targets and MyST comments removed; fenced code left as it is."""
    out, prose, inside = [], [], None

    def flush() -> None:
        if prose:  # roles may follow a line break (e.g. "Cai et al.\n{cite}`key`")
            out.append(_ROLE.sub(lambda m: _role(page, m), "\n".join(prose)))
            prose.clear()

    for line in text.split("\n"):
        fence = _CODE_FENCE.match(line)
        if inside is not None:
            out.append(line)
            if fence and _closes(line.strip(), inside[0], len(inside)):
                inside = None
            continue
        if fence:
            flush()
            inside = fence["fence"]
            out.append(line)
            continue
        if _TARGET.fullmatch(line) or line.startswith("% ") or line.strip() in ("%", "+++"):
            continue
        prose.append(line)
    flush()
    return "\n".join(out)


def _quote(title: str, body: str) -> str:
    lines = [f"**{title}**", ""] + body.split("\n")
    return "\n".join(("> " + line) if line.strip() else ">" for line in lines)


def _details(summary: str, body: str) -> str:
    return f"<details>\n<summary><b>{summary}</b></summary>\n\n{body.strip()}\n\n</details>"


def _directive(page: _Page, d: _Directive) -> str:
    body = _render(page, d.body) if d.body else ""
    name = d.name
    if name in _ADMONITIONS:
        title = _render(page, d.arg) if (name == "admonition" and d.arg) else name.capitalize()
        if name != "admonition" and d.arg:  # e.g. ```{note} text on the first line
            body = _render(page, d.arg) + ("\n\n" + body if body else "")
        if "dropdown" in d.options.get("class", ""):
            return _details(title, body)
        return _quote(title, body)
    if name == "exercise":
        number = page.next_number("Exercise")
        head = f"Exercise {number}" if number else "Exercise"
        return _quote(f"{head} ({_render(page, d.arg)})" if d.arg else head, body)
    if name == "solution":
        label = page.ctx.labels.get(d.arg.strip())
        ref = f" to Exercise {label.number}" if label and label.number else ""
        return _details(f"Solution{ref}", body)
    if name in ("solution-start", "solution-end"):
        raise page.fail(f"{{{name}}} must open its own cell (the solution gate)")
    if name.startswith("prf:") and name != "prf:ref":
        kind = name[4:]
        if kind in _PRF_UNNUMBERED:
            return f"**{kind.capitalize()}.** " + body + "\n\n∎"
        number = page.next_number(kind.capitalize())
        head = f"{kind.capitalize()} {number}" if number else kind.capitalize()
        if d.arg:
            head += f" ({_render(page, d.arg)})"
        return f"**{head}.**\n\n{body}"
    if name in ("code-block", "code", "sourcecode"):
        return f"```{d.arg}\n{d.body}\n```"
    if name == "math":
        return f"$$\n{d.body}\n$$"
    if name in ("margin", "sidebar", "epigraph", "pull-quote"):
        return _quote(d.arg or "Aside", body)
    if name == "dropdown":
        return _details(_render(page, d.arg) or "More", body)
    raise page.fail(f"the directive {{{name}}} has no Jupyter form in the editions")


def _render(page: _Page, text: str) -> str:
    """MyST Markdown -> Jupyter Markdown (glued values left as ``{{name:format}}`` fields)."""
    pieces = []
    for piece in _split_directives(text):
        pieces.append(_directive(page, piece) if isinstance(piece, _Directive) else _inline(page, piece))
    return "\n\n".join(p.strip("\n") for p in pieces if p.strip())


#: Anything of MyST that Jupyter would show raw: directive fences, roles, option lines, targets.
_RAW_MYST = [
    (re.compile(r"^\s*(`{3,}|:{3,})\{", re.M), "a directive fence"),
    (re.compile(r"(?<![\w`])\{[A-Za-z][\w:+-]*\}`"), "a role"),
    (re.compile(r"\{glue|\{cite|\{prf:"), "a glue, cite or prf construct"),
    (re.compile(r"^:label:", re.M), "a :label: option line"),
    (re.compile(r"^\([^()\s]+\)=\s*$", re.M), "a (target)= line"),
]


def raw_myst(text: str) -> list[str]:
    """What MyST syntax ``text`` still holds (empty: none), as short descriptions with the match."""
    return [f"{what}: {m.group(0)!r}" for pattern, what in _RAW_MYST for m in pattern.finditer(text)]


# ----------------------------------------------------------------------------------------------
# Notebooks


def _blocks(text: str) -> list[str]:
    """Top-level Markdown blocks (blank-line separated; code fences, $$ math and HTML blocks whole)."""
    blocks, buf, fence, math, html = [], [], None, False, 0
    for line in text.split("\n"):
        stripped = line.strip()
        if fence is None and not math and not html and not stripped:
            if buf:
                blocks.append("\n".join(buf))
                buf = []
            continue
        buf.append(line)
        code = _CODE_FENCE.match(stripped)
        if fence is None and not math and code:
            fence = code["fence"]
        elif fence is not None and _closes(stripped, fence[0], len(fence)):
            fence = None
        elif fence is None and stripped.count("$$") % 2 == 1:
            math = not math
        elif fence is None:
            html += stripped.count("<details") - stripped.count("</details>")
    if buf:
        blocks.append("\n".join(buf))
    return blocks


def _glue_code(text: str) -> str:
    if '"""' in text or text.endswith("\\"):
        raise EditionError(f"a run-dependent paragraph cannot be quoted: {text[:80]!r}")
    return ("# @title\n"
            "# A run-dependent paragraph of the book, shown with this run's values.\n"
            "from mmcl_helpers.book_support.notebook import display_glued\n\n"
            f'display_glued(r"""{text}""")')


def _cells_for_markdown(nbformat, text: str, cell_id: str, whole: bool = False) -> list:
    """Markdown cells, with each block that holds a glued value as a code cell that displays it."""
    if "{{" not in text:
        return [nbformat.v4.new_markdown_cell(text, id=cell_id)] if text.strip() else []
    groups: list[tuple[bool, str]] = []
    for block in [text] if whole else _blocks(text):
        glued = "{{" in block
        if glued and not whole:  # a heading right above the paragraph stays Markdown
            lines = block.split("\n")
            k = 0
            while k < len(lines) and lines[k].startswith("#"):
                k += 1
            if k:
                groups.append((False, "\n".join(lines[:k])))
                block = "\n".join(lines[k:])
        if groups and groups[-1][0] == glued and not glued:
            groups[-1] = (False, groups[-1][1] + "\n\n" + block)
        else:
            groups.append((glued, block))
    cells = []
    for n, (glued, block) in enumerate(groups):
        new_id = f"{cell_id}-{n}"[:64]
        if glued:
            cell = nbformat.v4.new_code_cell(_glue_code(block), id=new_id)
            cell.metadata.update({"cellView": "form", "jupyter": {"source_hidden": True},
                                  "tags": ["remove-input", "run-dependent-text"]})
            cells.append(cell)
        else:
            cells.append(nbformat.v4.new_markdown_cell(block, id=new_id))
    return cells


def _install_cell(page: _Page, source: str) -> str:
    found = list(_INSTALL.finditer(source))
    if len(found) != 1:
        raise page.fail('the first code cell must hold one %pip install -q "mmcl_helpers @ git+URL@REF"')
    m = found[0]
    if m["url"].rstrip("/") != page.ctx.repo_url:
        raise page.fail(f"the set-up cell installs from {m['url']}, _config.yml names {page.ctx.repo_url}")
    return source[:m.start("ref")] + page.ctx.commit + source[m.end("ref"):]


def convert_notebook(path: str | Path, ctx: BookContext, edition: str) -> Any:
    """One source notebook as the ``"colab"`` or ``"student"`` edition (an nbformat ``NotebookNode``).

    Raises:
        EditionError: an unknown edition, or MyST the editions cannot express (named with the cell).
    """
    import nbformat

    if edition not in ("colab", "student"):
        raise EditionError(f"edition must be 'colab' or 'student', got {edition!r}.")
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    docname = path.resolve().relative_to(ctx.root).with_suffix("").as_posix()
    page = _Page(ctx, docname)
    cells, solution, first_code = [], None, True
    for cell in nb.cells:
        page.where = f"cell {cell.get('id')}"
        src = cell.source
        if cell.cell_type == "markdown":
            pieces = _split_directives(src)
            lead = next((p for p in pieces if isinstance(p, _Directive) or p.strip()), None)
            head = lead if isinstance(lead, _Directive) else None
            if head is not None and head.name == "solution-start":
                label = ctx.labels.get(head.arg.strip())
                if label is None or label.kind != "Exercise":
                    raise page.fail(f"solution-start names {head.arg!r}, not an exercise label")
                solution = f"Solution to Exercise {label.number}"
                rest = re.sub(r"^[\s\S]*?^(`{3,}|:{3,})[ \t]*$", "", src, count=1, flags=re.M)
                text = _render(page, rest)
                if edition == "colab" and text.strip():
                    cells += _cells_for_markdown(nbformat, _details(solution, text), cell.id, whole=True)
                continue
            if head is not None and head.name == "solution-end":
                if solution is None:
                    raise page.fail("solution-end without a solution-start")
                solution = None
                rest = re.sub(r"^[\s\S]*?^(`{3,}|:{3,})[ \t]*$", "", src, count=1, flags=re.M)
                if rest.strip():
                    cells += _cells_for_markdown(nbformat, _render(page, rest), cell.id)
                continue
            text = _render(page, src)
            if solution is not None:
                if edition == "colab" and text.strip():
                    cells += _cells_for_markdown(nbformat, _details(solution, text), cell.id, whole=True)
                continue
            cells += _cells_for_markdown(nbformat, text, cell.id)
            continue
        if cell.cell_type != "code":
            cells.append(copy.deepcopy(cell))
            continue
        new = nbformat.v4.new_code_cell(src, id=cell.id, metadata=copy.deepcopy(cell.metadata))
        if first_code:
            new.source = _install_cell(page, src)
            first_code = False
            # A run-dependent paragraph above the set-up cell needs the package: it moves below.
            early = [c for c in cells if c.cell_type == "code"]
            cells = [c for c in cells if c.cell_type != "code"] + [new] + early
            continue
        if solution is not None:
            if edition == "student":
                continue
            new.source = f"# @title {solution} (code)\n" + new.source
            new.metadata.update({"cellView": "form", "jupyter": {"source_hidden": True}})
        cells.append(new)
    if solution is not None:
        raise page.fail("a solution-start has no solution-end")
    if page.cited:
        refs = "\n".join(f"- {reference_line(ctx.bib[k])}" for k in
                         sorted(page.cited, key=lambda k: _authors_short(ctx.bib[k])))
        cells.append(nbformat.v4.new_markdown_cell("## References\n\n" + refs, id="edition-references"))
    note = (f"*{'Colab' if edition == 'colab' else 'Student'} edition* of "
            f"[this page of the rendered book]({_url(page, docname)}), generated from commit "
            f"`{ctx.commit[:12]}`; the first code cell installs `mmcl_helpers` at that commit.")
    if edition == "student":
        note += " The exercises are here; their solutions are not (they are in the Colab edition)."
    # Right under the page's title (the title cell is split there), else first.
    title_at = next((i for i, c in enumerate(cells) if c.cell_type == "markdown"), None)
    note_cell = nbformat.v4.new_markdown_cell("> " + note, id="edition-note")
    if title_at is not None and cells[title_at].source.startswith("# "):
        title, _, rest = cells[title_at].source.partition("\n")
        cells[title_at].source = title
        tail = [nbformat.v4.new_markdown_cell(rest.strip("\n"), id=f"{cells[title_at].id}-body"[:64])]
        cells[title_at + 1:title_at + 1] = [note_cell] + (tail if rest.strip() else [])
    else:
        cells.insert(0, note_cell)
    out = nbformat.v4.new_notebook(cells=cells, metadata=copy.deepcopy(nb.metadata))
    out.metadata["mmcl_edition"] = {"edition": edition, "source": path.name, "commit": ctx.commit,
                                    "dirty": ctx.dirty}
    for cell in out.cells:
        problems = raw_myst(cell.source) if cell.cell_type == "markdown" else []
        if cell.cell_type == "code" and "display_glued(" in cell.source:
            problems = raw_myst(cell.source)
        if problems:
            raise EditionError(f"{docname}: raw MyST left in cell {cell.id}: {problems}")
    nbformat.validate(out)
    return out


def edition_sources(root: str | Path) -> list[Path]:
    """The notebooks of ``_toc.yml`` (the syllabus, chapters, the recipes page, the appendix), in order."""
    root = Path(root)
    return [root / f"{d}.ipynb" for d in toc_docnames(root) if (root / f"{d}.ipynb").exists()]


def build_editions(root: str | Path = ".", out: str | Path | None = None,
                   require_clean: bool = False) -> list[Path]:
    """Write ``<out>/colab/book/*.ipynb`` and ``<out>/student/book/*.ipynb`` (``out`` defaults to
    ``<root>/_build/editions``); returns the paths written.

    Raises:
        EditionError: ``require_clean`` and tracked files differ from ``HEAD``, or the source holds
            MyST the editions cannot express.
    """
    import nbformat

    ctx = load_context(root)
    if ctx.dirty:
        message = (f"tracked files differ from HEAD ({ctx.commit[:12]}); the editions' install cells "
                   "install HEAD, not this working tree. Commit first.")
        if require_clean:
            raise EditionError(message)
        warnings.warn(message, stacklevel=2)
    out = Path(out) if out is not None else ctx.root / "_build" / "editions"
    written = []
    for edition in ("colab", "student"):
        folder = out / edition
        if folder.exists():
            shutil.rmtree(folder)
        for src in edition_sources(ctx.root):
            nb = convert_notebook(src, ctx, edition)
            target = folder / src.relative_to(ctx.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, target)
            written.append(target)
    return written


# ----------------------------------------------------------------------------------------------
# Checking the Colab editions in a fresh environment


def install_spec(nb_path: str | Path) -> tuple[str, str]:
    """The ``mmcl_helpers @ git+URL@REF`` that an edition's first code cell installs, and its URL."""
    cells = json.loads(Path(nb_path).read_text())["cells"]
    first = next(c for c in cells if c["cell_type"] == "code")
    found = list(_INSTALL.finditer("".join(first["source"])))
    if len(found) != 1:
        raise EditionError(f"{nb_path}: the first code cell holds {len(found)} install commands, not 1.")
    m = found[0]
    return m.group(0).split('"')[1], m["url"]


_RUNNER = r'''
import json, os, sys, time
import nbformat
from nbclient import NotebookClient
venv, workdir, out, *paths = sys.argv[1:]
probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
    "import sys, mmcl_helpers; print(sys.prefix); print(mmcl_helpers.__file__)")])
NotebookClient(probe, kernel_name="python3", resources={"metadata": {"path": workdir}}).execute()
prefix, where = probe.cells[0].outputs[0]["text"].split()
if os.path.realpath(prefix) != os.path.realpath(venv) or not os.path.realpath(where).startswith(
        os.path.realpath(venv)):
    sys.exit(f"the kernel runs {prefix} with mmcl_helpers from {where}, not the fresh environment {venv}")
for path in paths:
    start = time.time()
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", timeout=900,
                   resources={"metadata": {"path": workdir}}).execute()
    nbformat.write(nb, os.path.join(out, os.path.basename(path)))
    print(f"{os.path.basename(path)}: executed in {time.time() - start:.0f} s", flush=True)
'''


def _run(cmd: list[str], **kwargs) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kwargs)


def colab_check(root: str | Path = ".", editions: str | Path | None = None,
                venv: str | Path | None = None, torch_spec: str = "torch==2.13.0",
                torch_index: str | None = None, profile: str = "smoke") -> list[Path]:
    """Install each Colab edition's package into a fresh environment and execute every edition there.

    The environment (default ``<root>/.colab-check/venv``) is created anew; torch is installed
    first (``torch_spec``, from ``torch_index`` when given, as the Makefile does), then the
    editions' own install target with the repository address replaced by ``$MMCL_INSTALL_URL``
    (default ``git+file://localhost<root>``), then what Colab provides around a notebook
    (ipykernel, nbclient, ipywidgets). Each edition runs at ``profile`` from an empty folder
    outside the checkout with an empty cache; the executed notebooks go to
    ``.colab-check/executed/``.

    An install or a notebook that fails ends the check with subprocess's ``CalledProcessError``.

    Raises:
        EditionError: the tree has uncommitted changes, the editions disagree on what they
            install, or a displayed run-dependent paragraph never received its values.
    """
    ctx = load_context(root)
    if ctx.dirty:
        raise EditionError(f"colab-check installs commit {ctx.commit[:12]}, but tracked files differ "
                           "from it: commit (or stash) first, so that what runs is what you have.")
    editions = Path(editions) if editions else ctx.root / "_build" / "editions"
    notebooks = sorted((editions / "colab" / "book").glob("*.ipynb"))
    if not notebooks:
        raise EditionError(f"no Colab editions under {editions / 'colab' / 'book'}: run `make editions`.")
    specs = {install_spec(p) for p in notebooks}
    if len(specs) != 1:
        raise EditionError(f"the Colab editions install different things: {sorted(specs)}")
    ((spec, url),) = specs
    if not spec.endswith("@" + ctx.commit):
        raise EditionError(f"the editions install {spec!r}, not HEAD ({ctx.commit}): run `make editions`.")
    local = os.environ.get(INSTALL_URL_VARIABLE) or f"git+file://localhost{ctx.root}"
    spec = spec.replace(f"git+{url}", local)
    base = ctx.root / ".colab-check"
    venv = Path(venv) if venv else base / "venv"
    executed = base / "executed"
    for folder in (venv, executed):
        if folder.exists():
            shutil.rmtree(folder)
    executed.mkdir(parents=True)
    _run([sys.executable, "-m", "venv", str(venv)])
    py = str(venv / "bin" / "python")
    pip = [py, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    _run(pip + [torch_spec] + (["--index-url", torch_index] if torch_index else []))
    _run(pip + [spec])
    _run(pip + ["ipykernel", "nbclient", "ipywidgets"])  # what Colab provides around a notebook
    _run([py, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
         stdout=subprocess.DEVNULL)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "JUPYTER"))}
    env.update({"MMCL_PROFILE": profile, "MMCL_PROGRESS": "0",
                "JUPYTER_PATH": str(venv / "share" / "jupyter"),
                "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"})
    with tempfile.TemporaryDirectory(prefix="colab-check-") as tmp:
        work, cache = Path(tmp) / "content", Path(tmp) / "cache"
        work.mkdir()
        env["MMCL_CACHE_DIR"] = str(cache)
        script = Path(tmp) / "runner.py"
        script.write_text(_RUNNER)
        _run([py, str(script), str(venv), str(work), str(executed), *map(str, notebooks)], env=env, cwd=work)
    from mmcl_helpers.book_support.notebook import PENDING_TEXT

    results = sorted(executed.glob("*.ipynb"))
    for path in results:
        text = path.read_text()
        if PENDING_TEXT in text:
            raise EditionError(f"{path.name}: a run-dependent paragraph still shows {PENDING_TEXT!r} "
                               "after the whole notebook ran (a value it needs was never glued).")
    return results


# ----------------------------------------------------------------------------------------------
# The book's build configuration


def write_book_config(root: str | Path, out: str | Path, timeout: int | None = None,
                      launch_ref: str | None = None, launch_path: str | None = None,
                      execute_notebooks: str | None = None) -> dict:
    """A copy of ``_config.yml`` with the per-cell ``timeout``, the launch buttons' ref and/or the
    execution mode changed.

    ``execute_notebooks="cache"`` is what ``make book`` builds with: jupyter-cache keeps executed
    outputs, and :mod:`~mmcl_helpers.book_support.rebuild` empties it whenever anything besides the
    code cells that decides them changed.

    With ``launch_ref`` (a commit of the published editions), ``repository.branch`` becomes that
    ref and ``repository.path_to_book`` becomes ``launch_path``: Jupyter Book 1 builds each page's
    Colab button as ``{colab_url}/github/{owner}/{repo}/blob/{branch}/{path_to_book}/{page}.ipynb``,
    so the buttons open ``<launch_path>/book/<page>.ipynb`` at that commit. Returns the config.
    """
    import yaml

    config = _yaml(Path(root) / "_config.yml")
    if timeout is not None:
        config["execute"]["timeout"] = int(timeout)
    if execute_notebooks is not None:
        if execute_notebooks not in ("force", "cache", "off"):
            raise EditionError(f"execute_notebooks must be 'force', 'cache' or 'off'; got "
                               f"{execute_notebooks!r}.")
        config["execute"]["execute_notebooks"] = execute_notebooks
    if launch_ref:
        if not launch_path:
            raise EditionError("launch_ref needs launch_path (the editions' folder on that ref, "
                               "e.g. 'colab').")
        config["repository"]["branch"] = launch_ref
        config["repository"]["path_to_book"] = launch_path
    with open(out, "w") as fh:
        yaml.safe_dump(config, fh, sort_keys=False, allow_unicode=True)
    return config


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module's description)."""
    parser = argparse.ArgumentParser(prog="python -m mmcl_helpers.book_support.editions",
                                     description="Colab and student editions of the book's notebooks.")
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write _build/editions/{colab,student}/book/*.ipynb")
    b.add_argument("--root", default=".")
    b.add_argument("--out", default=None)
    b.add_argument("--require-clean", action="store_true", help="refuse a tree with uncommitted changes")
    c = sub.add_parser("colab-check", help="install and execute every Colab edition in a fresh venv")
    c.add_argument("--root", default=".")
    c.add_argument("--venv", default=None)
    c.add_argument("--torch", default="torch==2.13.0")
    c.add_argument("--torch-index", default=None)
    c.add_argument("--profile", default="smoke")
    k = sub.add_parser("book-config", help="write a copy of _config.yml with build-time changes")
    k.add_argument("--root", default=".")
    k.add_argument("--out", required=True)
    k.add_argument("--timeout", type=int, default=None)
    k.add_argument("--launch-ref", default=None)
    k.add_argument("--launch-path", default=None)
    k.add_argument("--execute-notebooks", default=None, help="force, cache or off")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            paths = build_editions(args.root, args.out, args.require_clean)
            print(f"wrote {len(paths)} notebooks under {paths[0].parents[2] if paths else args.out}")
        elif args.command == "colab-check":
            done = colab_check(args.root, venv=args.venv, torch_spec=args.torch,
                               torch_index=args.torch_index, profile=args.profile)
            print(f"colab-check: {len(done)} Colab editions installed and executed at {args.profile}")
        else:
            write_book_config(args.root, args.out, args.timeout, args.launch_ref, args.launch_path,
                              args.execute_notebooks)
    except EditionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except subprocess.CalledProcessError as err:
        print(f"error: {' '.join(map(str, err.cmd))} failed (exit status {err.returncode})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
