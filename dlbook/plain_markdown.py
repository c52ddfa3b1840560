"""MyST Markdown → plain (Jupyter) Markdown, for the notebooks readers download.

The book's prose uses a few MyST extensions that Jupyter and Colab show as raw text:
targets ``(label)=``, the ``{ref}``/``{doc}`` roles and admonition directives.  Glue roles
are filled in separately (:mod:`dlbook.glue`).  Only the constructs CONTRIBUTING.md allows
are converted; :func:`leftover_myst` finds any others so a test can fail on them.
"""
from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass

TARGET = re.compile(r"^\((?P<label>[\w.-]+)\)=[ \t]*\n", re.MULTILINE)
HEADING_AFTER_TARGET = re.compile(r"^\((?P<label>[\w.-]+)\)=[ \t]*\n+#+[ \t]+(?P<title>[^\n]+)", re.MULTILINE)
DIRECTIVE = re.compile(
    r"^(?P<fence>:{3,}|`{3,})\{(?P<name>[\w-]+)\}[ \t]*(?P<arg>[^\n]*)\n(?P<body>.*?)^(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL)
ROLE = re.compile(r"\{(?P<name>ref|doc)\}`(?P<body>[^`]+)`")
EXPLICIT_TITLE = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$", re.DOTALL)
OPTION = re.compile(r"^:[\w-]+:.*$")
ADMONITION_TITLES = {"note": "Note", "warning": "Warning", "tip": "Tip", "important": "Important",
                     "caution": "Caution", "hint": "Hint", "attention": "Attention",
                     "danger": "Danger", "error": "Error", "seealso": "See also"}
# Anything still looking like MyST after conversion: a role, a directive fence or a target.
LEFTOVER = re.compile(r"\{[\w:-]+\}`|^(?::{3,}|`{3,})\{|^\([\w.-]+\)=", re.MULTILINE)


@dataclass(frozen=True)
class SiteLinks:
    """Where ``{doc}`` and ``{ref}`` links point in a downloaded notebook (the published book)."""

    base_url: str
    docname: str                                  # the page being converted, e.g. book/03-cam/index
    labels: Mapping[str, tuple[str, str]]         # label -> (docname, title)

    def page(self, docname: str, anchor: str = "") -> str:
        return f"{self.base_url.rstrip('/')}/{docname}.html" + (f"#{anchor}" if anchor else "")


def labels_of(markdown: str, docname: str) -> dict[str, tuple[str, str]]:
    """The ``(label)=`` targets a page defines, with the heading that follows each."""
    return {m.group("label"): (docname, m.group("title").strip())
            for m in HEADING_AFTER_TARGET.finditer(markdown)}


def _role(match: re.Match, links: SiteLinks) -> str:
    body = match.group("body").strip()
    explicit = EXPLICIT_TITLE.match(body)
    title, target = (explicit.group("title"), explicit.group("target")) if explicit else ("", body)
    if match.group("name") == "doc":
        here = posixpath.dirname(links.docname)
        docname = posixpath.normpath(posixpath.join(here, target)) if not target.startswith("/") \
            else target.lstrip("/")
        return f"[{title or posixpath.basename(docname)}]({links.page(docname)})"
    docname, heading = links.labels.get(target, (links.docname, target))
    return f"[{title or heading}]({links.page(docname, target)})"


def _admonition(match: re.Match) -> str | None:
    name, arg = match.group("name"), match.group("arg").strip()
    if name == "admonition":
        title = arg or "Note"
    elif name in ADMONITION_TITLES:
        title = ADMONITION_TITLES[name]
    else:
        return None
    lines = match.group("body").strip("\n").split("\n")
    while lines and OPTION.match(lines[0].strip()):
        lines.pop(0)
    if name in ADMONITION_TITLES and arg:   # ``:::{note} text`` puts the first line on the fence
        lines.insert(0, arg)
    quoted = "\n".join(f"> {line}".rstrip() for line in [f"**{title}**", ""] + lines)
    return quoted


def to_plain_markdown(markdown: str, links: SiteLinks) -> str:
    """Convert one markdown cell's MyST source to plain Markdown."""
    def directive(match: re.Match) -> str:
        converted = _admonition(match)
        return match.group(0) if converted is None else converted

    previous = None
    while previous != markdown:   # nested directives: convert inner ones first, repeatedly
        previous, markdown = markdown, DIRECTIVE.sub(directive, markdown)
    markdown = TARGET.sub(lambda m: f'<a id="{m.group("label")}"></a>\n', markdown)
    return ROLE.sub(lambda m: _role(m, links), markdown)


def leftover_myst(markdown: str) -> list[str]:
    """MyST syntax that Jupyter would show as raw text (empty when the cell is clean)."""
    return [m.group(0) for m in LEFTOVER.finditer(markdown)]
