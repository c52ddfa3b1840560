"""Find numbers typed by hand into a page's prose.

The book promises that every number it states comes from code on the page (glued). This
module lists the digits left in a page's markdown once everything that may legitimately hold
digits is taken out: glue and value roles, math, code quotes, link targets, years, citations,
versions after a software name and numbers right after a reference word ("chapter 3"). What
remains must be glued, written as a word, or listed with a reason in an allowlist of phrases
(``tests/prose_literals.yml``).

    python -m dlbook.prose_numbers book/01-convolution/index.md
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from dlbook.notebooks import read_page

__all__ = ["Literal", "literals_in_markdown", "literals_in_page", "main"]

# Removed before looking for digits: each match may hold digits that are not stated results.
_REMOVED = [
    re.compile(r"```.*?```", re.S),                       # fenced blocks (directives with code)
    re.compile(r"\$\$.*?\$\$", re.S),                     # display math
    re.compile(r"(?<![\\$])\$[^$\n]+?\$"),               # inline math
    re.compile(r"\{[\w:-]+\}`[^`]*`"),                    # roles: glue, dlbook-value, ref, doc
    re.compile(r"``[^`]*?[A-Za-z_][^`]*?``"),             # double-backtick code quotes
    re.compile(r"`[^`]*?[A-Za-z_][^`]*?`"),               # code quotes holding a name
    re.compile(r"\]\([^)]*\)"),                           # link targets
    re.compile(r"<[^>\n]*>"),                             # autolinks, html anchors
    re.compile(r"https?://\S+"),
    re.compile(r"^\s*:[\w-]+:.*$", re.M),                 # directive options (:class:, :sync:)
    re.compile(r"^\(.*\)=\s*$", re.M),                    # targets
    re.compile(r"^\s*\d+[.)](?=\s)", re.M),                # numbered list items
    re.compile(r"arXiv:\s*\d{4}\.\d{4,5}", re.I),
    # citations: a parenthesis or bracket that names a year
    re.compile(r"\([^()\n]*\b(?:19|20)\d\d[a-z]?\b[^()\n]*\)"),
    re.compile(r"\[[^\[\]\n]*\b(?:19|20)\d\d[a-z]?\b[^\[\]\n]*\]"),
]

_REFERENCE_WORDS = (r"chapters?|sections?|assignments?|parts?|exercises?|steps?|figures?|"
                    r"equations?|eq\.|seeds?|questions?|pages?|pp\.|vol\.|no\.|issue")
_SOFTWARE = (r"Keras|TensorFlow|PyTorch|torch|Python|NumPy|SciPy|Jupyter Book|Jupyter|MyST|"
             r"nbgrader|Sphinx|MathJax|CUDA|scikit-learn|scikit-image|Matplotlib|gensim|Debian")
_ALLOWED_NUMBERS = [
    re.compile(rf"(?i)\b(?:{_REFERENCE_WORDS})\s+\d+(?:[.\u2013-]\d+)*"),
    re.compile(rf"\b(?:{_SOFTWARE})\s+v?\d+(?:\.\d+)*(?:\.x)?"),
    re.compile(r"\bv?\d+\.\d+\.\d+\w*"),                  # versions such as 3.2.2
    re.compile(r"(?<![\d.,])(?:19|20)\d\d(?!\d|[.,]\d|\s*%)"),  # years
]
# A number: digits with optional decimals or thousands separators, not part of a name
# (VGG16, float32, 2D, conv2d, SHA-256 and LeNet-5 keep their digits).
_NUMBER = re.compile(r"(?<![\w.])(?<![A-Za-z]-)(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?![\w])")


@dataclass(frozen=True)
class Literal:
    """One hand-typed number: where it is and the line it sits in."""

    page: str
    cell: int
    number: str
    line: str

    def __str__(self) -> str:
        return f"{self.page} (markdown cell {self.cell}): {self.number!r} in: {self.line.strip()}"


def _blank(match: re.Match) -> str:
    # Keep line structure so reported lines stay recognisable.
    return re.sub(r"[^\n]", " ", match.group(0))


def literals_in_markdown(markdown: str, allowed_phrases: Iterable[str] = ()) -> list[tuple[str, str]]:
    """(number, line) for every digit run in ``markdown`` that nothing allows."""
    original_lines = markdown.splitlines()
    text = markdown
    for phrase in sorted(allowed_phrases, key=len, reverse=True):
        text = text.replace(phrase, " " * len(phrase))
    for pattern in _REMOVED + _ALLOWED_NUMBERS:
        text = pattern.sub(_blank, text)
    found = []
    for number, (line, original) in ((m.group(0), _line_of(text, m.start())) for m in _NUMBER.finditer(text)):
        found.append((number.rstrip(","), original_lines[line] if line < len(original_lines) else original))
    return found


def _line_of(text: str, index: int) -> tuple[int, str]:
    line = text.count("\n", 0, index)
    return line, text.splitlines()[line]


def literals_in_page(path: Path, allowed_phrases: Iterable[str] = (), name: str | None = None) -> list[Literal]:
    """Every hand-typed number in the markdown cells of one book page."""
    phrases = list(allowed_phrases)
    notebook = read_page(path)
    literals = []
    for index, cell in enumerate(notebook.cells):
        if cell.cell_type != "markdown":
            continue
        for number, line in literals_in_markdown(cell.source, phrases):
            literals.append(Literal(name or str(path), index, number, line))
    return literals


def unused_phrases(path: Path, allowed_phrases: Iterable[str]) -> list[str]:
    """Allowlisted phrases that no longer occur in the page (stale entries)."""
    text = "\n".join(c.source for c in read_page(path).cells if c.cell_type == "markdown")
    return [p for p in allowed_phrases if p not in text]


def load_allowlist(path: Path) -> Mapping[str, Mapping[str, str]]:
    """``{page: {phrase: reason}}`` from the YAML allowlist (empty when the file is absent)."""
    import yaml

    if not path.exists():
        return {}
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="+", type=Path)
    parser.add_argument("--allowlist", type=Path, default=Path("tests/prose_literals.yml"))
    args = parser.parse_args(argv)
    allowlist = load_allowlist(args.allowlist)
    found = []
    for page in args.pages:
        found += literals_in_page(page, (allowlist.get(page.as_posix()) or {}).keys(), page.as_posix())
    for literal in found:
        print(literal)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
