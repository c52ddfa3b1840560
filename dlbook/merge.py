"""One HTML page from a page's per-framework executions.

Each framework's notebook of a page is executed on its own (:mod:`dlbook.execute`); this
module puts the page back together, as d2lbook's ``merge_tab_notebooks`` does, by each
cell's position in the page (``dlbook_origin``):

- a framework's own cells come from that framework's run (the Sphinx extension puts them in
  the PyTorch | Keras tabs);
- a shared cell appears once when every run printed the same outputs, and otherwise once per
  framework, marked ``dlbook_variant`` so the extension shows its source once and its outputs
  in synced tabs;
- glued values in prose become a ``{dlbook-value}`` role holding each framework's value
  (inside a framework's prose tab, only that framework's value);
- a line under the title says what produced the outputs (profile, device, versions, time).
"""
from __future__ import annotations

import json
import re
from collections.abc import Mapping

import nbformat

from dlbook import glue
from dlbook.execute import Execution
from dlbook.notebooks import _SYNC, _TAB_ITEM, _TAB_SET, FRAMEWORKS, ORIGIN_KEY, cell_framework

VARIANT_KEY = "dlbook_variant"
FIRST_HEADING = re.compile(r"^# .*$", re.MULTILINE)


def _values_role(values: Mapping[str, Mapping[str, str]], where: Mapping[str, str]):
    def render(key: str, spec: str) -> str:
        return glue.value_role({fw: glue.lookup(values[fw], key, spec, where[fw]) for fw in values})
    return render


def merged_markdown(markdown: str, values: Mapping[str, Mapping[str, str]],
                    where: Mapping[str, str]) -> str:
    """Resolve glue roles: a framework's prose tab gets its own value, other prose all values."""

    def tab_item(item: re.Match) -> str:
        sync = _SYNC.search(item.group("body"))
        framework = sync.group(1) if sync else None
        if framework not in values:
            return item.group(0)
        own = {framework: values[framework]}
        return glue.substitute(item.group(0), _values_role(own, where))

    def tab_set(match: re.Match) -> str:
        return _TAB_ITEM.sub(tab_item, match.group(0))

    markdown = _TAB_SET.sub(tab_set, markdown)
    return glue.substitute(markdown, _values_role(values, where))


def framework_markdown(markdown: str, values: Mapping[str, str], where: str) -> str:
    """Resolve glue roles with one run's values (a downloaded, single-framework notebook)."""
    return glue.substitute(markdown, lambda key, spec: glue.lookup(values, key, spec, where))


def visible_outputs(cell: nbformat.NotebookNode) -> list:
    outputs = [o for o in cell.get("outputs", []) if not glue.is_hidden_glue_output(o)]
    for output in outputs:
        if "execution_count" in output:
            output["execution_count"] = None
    return outputs


def _same(outputs: Mapping[str, list]) -> bool:
    return len({json.dumps(o, sort_keys=True) for o in outputs.values()}) <= 1


def run_info(framework: str | None, run: Execution) -> str:
    """One line on what produced a run's outputs."""
    report = dict(run.report)
    parts = [f"{report.pop('profile')} profile", report.pop("device")]
    python = report.pop("python", None)
    parts += [f"{name} {version}" for name, version in report.items()]
    if python:
        parts.append(f"Python {python}")
    parts.append(f"executed in {run.seconds:.0f} s")
    who = f"{FRAMEWORKS[framework]} run" if framework else "Outputs"
    return f"{who}: " + " · ".join(parts)


def _info_block(runs: Mapping[str | None, Execution]) -> str:
    lines = {fw or "all": run_info(fw, run) for fw, run in runs.items()}
    if len(lines) == 1:   # one run: visible whatever tab the reader picked
        lines = {"all": next(iter(lines.values()))}
    return f"\n\n:::{{container}} dlbook-run-info\n{glue.value_role(lines)}\n:::\n"


def _with_info(markdown: str, block: str) -> str:
    heading = FIRST_HEADING.search(markdown)
    if heading is None:
        return block.lstrip("\n") + "\n" + markdown
    return markdown[:heading.end()] + block + markdown[heading.end():]


def merge(page: nbformat.NotebookNode, runs: Mapping[str | None, Execution]) -> nbformat.NotebookNode:
    """The page as one notebook with every run's outputs (see the module docstring).

    ``runs`` maps a framework to its execution; a page without framework cells has one run
    under ``None``.
    """
    frameworks = [fw for fw in runs if fw]
    by_origin = {fw: {c.metadata[ORIGIN_KEY]: c for c in run.notebook.cells if ORIGIN_KEY in c.metadata}
                 for fw, run in runs.items()}
    values = {fw or "all": glue.collect(run.notebook) for fw, run in runs.items()}
    where = {fw or "all": f"{FRAMEWORKS[fw]} notebook" if fw else "notebook" for fw in runs}
    kernelspec = page.metadata.get("kernelspec") or {"display_name": "Python 3", "language": "python",
                                                     "name": "python3"}
    out = nbformat.v4.new_notebook(metadata={"kernelspec": kernelspec, "language_info": {"name": "python"}})
    info_added = False
    for origin, cell in enumerate(page.cells):
        if cell.cell_type == "markdown":
            source = merged_markdown(cell.source, values, where)
            if not info_added:
                source, info_added = _with_info(source, _info_block(runs)), True
            out.cells.append(nbformat.v4.new_markdown_cell(source, metadata=dict(cell.metadata)))
            continue
        if cell.cell_type != "code":
            out.cells.append(nbformat.from_dict(dict(cell)))
            continue
        owner = cell_framework(cell)
        if owner is not None:
            if owner in by_origin:
                out.cells.append(_without_origin(by_origin[owner][origin], visible_outputs))
            continue
        copies = {fw: by_origin[fw][origin] for fw in runs}
        outputs = {fw: visible_outputs(c) for fw, c in copies.items()}
        if _same(outputs) or not frameworks:
            out.cells.append(_without_origin(next(iter(copies.values())), visible_outputs))
            continue
        for fw in frameworks:
            variant = _without_origin(copies[fw], visible_outputs)
            variant.metadata[VARIANT_KEY] = fw
            out.cells.append(variant)
    for index, cell in enumerate(out.cells):
        cell["id"] = f"cell-{index}"
    return out


def _without_origin(cell: nbformat.NotebookNode, outputs) -> nbformat.NotebookNode:
    copy = nbformat.from_dict(json.loads(json.dumps(cell)))
    copy.metadata.pop(ORIGIN_KEY, None)
    copy.outputs = outputs(copy)
    return copy
