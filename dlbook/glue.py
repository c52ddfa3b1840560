"""Glued values, read from executed notebooks and written into prose, per framework.

A page glues numbers with ``myst_nb.glue`` and quotes them in prose with
``{glue:text}`key:fmt``` (or ``{glue:}`key```).  Each framework's notebook is executed
on its own, so a key can hold a different value in each.  This module collects the values
from an executed notebook and substitutes them into Markdown: one value for a framework's
own notebook, or a ``{dlbook-value}`` role carrying every framework's value for the HTML
page, which shows the value of the framework the reader has selected.
"""
from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

import nbformat

# ``{glue}`key```, ``{glue:}`key```, ``{glue:text}`key:fmt``` (MyST-NB's inline glue roles).
GLUE_ROLE = re.compile(r"\{glue(?::text|:)?\}`(?P<body>[^`]+)`")
VALUE_ROLE = "dlbook-value"


class GlueError(KeyError):
    """A prose reference to a glue key that a notebook does not define."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


def collect(notebook: nbformat.NotebookNode) -> dict[str, str]:
    """``{key: text/plain}`` of every value glued in an executed notebook."""
    values = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            scrapbook = output.get("metadata", {}).get("scrapbook", {})
            mime = scrapbook.get("mime_prefix", "") + "text/plain"
            if scrapbook.get("name") and mime in output.get("data", {}):
                values[scrapbook["name"]] = output["data"][mime]
    return values


def is_hidden_glue_output(output: Mapping) -> bool:
    """True for the invisible output ``glue(..., display=False)`` leaves in a notebook."""
    return bool(output.get("metadata", {}).get("scrapbook", {}).get("mime_prefix"))


# NumPy 2 scalars print as ``np.float64(0.5)``; the number inside is what a page glued.
NUMPY_SCALAR = re.compile(r"^np\.\w+\((?P<value>[^()]*)\)$")


def format_value(raw: str, spec: str) -> str:
    """Format glued ``text/plain`` as MyST-NB's ``glue:text`` role does."""
    from myst_nb.core.variables import format_plain_text

    scalar = NUMPY_SCALAR.match(raw.strip())
    return format_plain_text(scalar.group("value") if scalar else raw, spec)


def _split(body: str) -> tuple[str, str]:
    key, _, spec = body.partition(":")
    return key.strip(), spec.strip()


def substitute(markdown: str, render: Callable[[str, str], str]) -> str:
    """Replace every glue role in ``markdown`` by ``render(key, format_spec)``."""
    return GLUE_ROLE.sub(lambda m: render(*_split(m.group("body"))), markdown)


def lookup(values: Mapping[str, str], key: str, spec: str, where: str) -> str:
    if key not in values:
        raise GlueError(f"the prose quotes glue key {key!r}, which the {where} does not glue")
    try:
        return format_value(values[key], spec)
    except (TypeError, ValueError) as exc:
        raise GlueError(f"glue key {key!r} of the {where} holds {values[key]!r}, which the "
                        f"format {spec!r} cannot show ({exc})") from None


def value_role(per_framework: Mapping[str, str]) -> str:
    """A ``{dlbook-value}`` role: one value per framework, or plain text when all agree."""
    distinct = set(per_framework.values())
    if len(distinct) == 1:
        per_framework = {"all": distinct.pop()}
    payload = json.dumps(dict(per_framework), ensure_ascii=True).replace("`", "\\u0060")
    return f"{{{VALUE_ROLE}}}`{payload}`"


def parse_value_role(content: str) -> dict[str, str]:
    """The inverse of :func:`value_role`'s payload."""
    return json.loads(content)
