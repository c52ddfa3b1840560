"""One notebook per framework from one book page.

A book page holds PyTorch and Keras cells side by side (tagged ``pytorch`` /
``keras``).  Students, Colab and CI each want one framework at a time, so this
module writes, for every page, one notebook per framework with the other
framework's cells (and the other framework's prose tab items) dropped.

Usage::

    python -m dlbook.notebooks book _build/notebooks
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat

FRAMEWORKS: dict[str, str] = {"pytorch": "PyTorch", "keras": "Keras"}
ORIGIN_KEY = "dlbook_origin"

# A MyST tab set in prose: ``::::{tab-set}`` ... ``::::`` with ``:::{tab-item}`` children.
_TAB_SET = re.compile(r"^(?P<fence>:{3,}|`{3,})\{tab-set\}[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                      re.MULTILINE | re.DOTALL)
_TAB_ITEM = re.compile(r"^(?P<fence>:{3,}|`{3,})\{tab-item\}[^\n]*\n(?P<body>.*?)^(?P=fence)[ \t]*$",
                       re.MULTILINE | re.DOTALL)
_SYNC = re.compile(r"^:sync:\s*(\S+)\s*$", re.MULTILINE)
_OPTION = re.compile(r":[\w-]+:.*")


def _strip_options(body: str) -> str:
    """Drop a directive body's leading ``:option: value`` lines."""
    lines = body.strip("\n").split("\n")
    while lines and _OPTION.fullmatch(lines[0].strip()):
        lines.pop(0)
    return "\n".join(lines).strip("\n") + "\n"

INSTALL_CELL = '''\
# Run this first on Colab or any fresh environment: it installs the course's helper
# package when it is missing (and does nothing where it is installed).
import importlib.util, subprocess, sys
if importlib.util.find_spec("dlbook") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "{requirement}"], check=True)'''


def cell_framework(cell: nbformat.NotebookNode) -> str | None:
    """The framework a cell belongs to, or None for a cell shared by all."""
    tags = set(cell.get("metadata", {}).get("tags", []))
    found = [name for name in FRAMEWORKS if name in tags]
    if len(found) > 1:
        raise ValueError(f"a cell is tagged with several frameworks {found}: {cell.source[:60]!r}")
    return found[0] if found else None


def page_frameworks(notebook: nbformat.NotebookNode) -> list[str]:
    """Frameworks a page has cells for, in the canonical order."""
    used = {cell_framework(cell) for cell in notebook.cells}
    return [name for name in FRAMEWORKS if name in used]


def _keep_tab_item(markdown: str, framework: str) -> str:
    """Replace each framework tab set in ``markdown`` by the body of ``framework``'s item."""

    def replace(tab_set: re.Match) -> str:
        items = list(_TAB_ITEM.finditer(tab_set.group("body")))
        synced = {m.group(1) for item in items for m in [_SYNC.search(item.group("body"))] if m}
        if not synced & set(FRAMEWORKS):
            return tab_set.group(0)  # not a framework tab set: leave it alone
        for item in items:
            sync = _SYNC.search(item.group("body"))
            if sync and sync.group(1) == framework:
                return _strip_options(item.group("body"))
        return ""

    return _TAB_SET.sub(replace, markdown)


def for_framework(
    notebook: nbformat.NotebookNode, framework: str | None, requirement: str | None = None
) -> nbformat.NotebookNode:
    """A copy of ``notebook`` holding the shared cells and ``framework``'s cells only.

    ``framework=None`` is for a page without framework cells: every cell is kept.
    """
    if framework is not None and framework not in FRAMEWORKS:
        raise ValueError(f"unknown framework {framework!r}; use one of {', '.join(FRAMEWORKS)}")
    out = nbformat.v4.new_notebook(metadata=dict(notebook.metadata))
    out.metadata.pop("jupytext", None)
    out.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    if framework:
        out.metadata["dlbook"] = {"framework": framework}
    if requirement:
        out.cells.append(nbformat.v4.new_code_cell(INSTALL_CELL.format(requirement=requirement)))
    for origin, cell in enumerate(notebook.cells):
        owner = cell_framework(cell)
        if owner not in (None, framework):
            continue
        cell = nbformat.from_dict(dict(cell))
        # Where the cell sits in the page, so executed notebooks can be merged back (merge.py).
        cell.metadata[ORIGIN_KEY] = origin
        if cell.cell_type == "markdown" and framework:
            cell.source = _keep_tab_item(cell.source, framework)
        cell.pop("id", None)
        out.cells.append(cell)
    # Fresh cell ids keep nbformat's validator happy after cells were dropped.
    for index, cell in enumerate(out.cells):
        cell["id"] = f"cell-{index}"
    return out


def is_notebook_page(path: Path) -> bool:
    """True for pages that execute: ``.ipynb`` files and MyST text notebooks."""
    if path.suffix == ".ipynb":
        return True
    if path.suffix != ".md":
        return False
    head = path.read_text(encoding="utf-8")[:2000]
    return head.startswith("---") and "kernelspec:" in head.split("\n---", 1)[0]


def read_page(path: Path) -> nbformat.NotebookNode:
    return jupytext.read(path, fmt="ipynb" if path.suffix == ".ipynb" else "md:myst")


def output_name(page: Path, framework: str | None) -> str:
    """``01-convolution/index.md`` → ``01-convolution-pytorch.ipynb`` (named after the chapter)."""
    stem = page.parent.name if page.stem == "index" else page.stem
    return f"{stem}-{framework}.ipynb" if framework else f"{stem}.ipynb"


def split_page(page: Path, out_dir: Path, requirement: str | None = None) -> list[Path]:
    """Write ``page``'s per-framework notebooks into ``out_dir``; return their paths."""
    notebook = read_page(page)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for framework in page_frameworks(notebook) or [None]:
        result = for_framework(notebook, framework, requirement) if framework else notebook
        target = out_dir / output_name(page, framework)
        nbformat.write(result, target)
        written.append(target)
    return written


def split_book(book_dir: Path, out_dir: Path, requirement: str | None = None) -> list[Path]:
    """Split every notebook page under ``book_dir``, mirroring its chapter folders."""
    written = []
    for page in sorted(book_dir.rglob("*")):
        if "_build" in page.parts or page.name.startswith(".") or not page.is_file():
            continue
        if is_notebook_page(page):
            relative = page.parent.relative_to(book_dir)
            written += split_page(page, out_dir / relative, requirement)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("book", type=Path, help="folder of book pages (e.g. book)")
    parser.add_argument("out", type=Path, help="where to write the notebooks")
    parser.add_argument("--requirement", help="pip requirement for the install cell")
    args = parser.parse_args(argv)
    for path in split_book(args.book, args.out, args.requirement):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
