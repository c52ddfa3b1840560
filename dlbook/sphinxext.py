"""Sphinx extension: PyTorch | Keras tabs from per-framework executions, offline, with downloads.

The pages it renders were executed by ``python -m dlbook.build``, once per framework, and
merged into one notebook per page (:mod:`dlbook.merge`).  This extension

- puts every run of consecutive framework cells (tagged ``pytorch`` / ``keras``) into a
  sphinx-design tab set, and shows a shared cell whose outputs differ between the frameworks
  (``dlbook_variant`` cells) with its source once and its outputs in synced tabs;
- renders ``{dlbook-value}`` (a glued value per framework) so that only the value of the
  framework the reader selected is visible (``dlbook.js`` follows the tab choice);
- serves MathJax from the site (the ``sphinx-mathjax-offline`` package) and nothing from a CDN;
- points the download and Colab buttons at the executed per-framework notebooks or, on an
  assignment page, at the assignment notebook.
"""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.errors import ConfigError
from sphinx.util import logging
from sphinx.util.fileutil import copy_asset
from sphinx_design.shared import create_component

from dlbook import __version__
from dlbook.build import MANIFEST, MARKER
from dlbook.glue import VALUE_ROLE, parse_value_role
from dlbook.merge import VARIANT_KEY
from dlbook.notebooks import FRAMEWORKS, cell_framework

LOGGER = logging.getLogger(__name__)
SYNC_GROUP = "tab"  # the group sphinx-design gives `:sync:` tab items, so prose tabs follow too
MATHJAX_PACKAGE = "sphinx-mathjax-offline"


def _cell_metadata(node: nodes.Node) -> dict | None:
    if isinstance(node, nodes.container) and node.get("nb_element") == "cell_code":
        return node.get("cell_metadata", {})
    return None


def _framework_of(node: nodes.Node) -> str | None:
    metadata = _cell_metadata(node)
    if metadata is None or metadata.get(VARIANT_KEY):
        return None
    return cell_framework({"metadata": metadata, "source": ""})


def _variant_of(node: nodes.Node) -> str | None:
    metadata = _cell_metadata(node)
    return metadata.get(VARIANT_KEY) if metadata else None


def _tab_set(members_by_framework: dict[str, list[nodes.Node]]) -> nodes.container:
    tab_set = create_component("tab-set", classes=["sd-tab-set", "dlbook-framework-tabs"])
    for framework, label in FRAMEWORKS.items():
        members = members_by_framework.get(framework)
        if not members:
            continue
        title = nodes.rubric(label, label, classes=["sd-tab-label"])
        title["sync_group"], title["sync_id"] = SYNC_GROUP, framework
        content = create_component("tab-content", classes=["sd-tab-content"], children=members)
        item = create_component("tab-item", classes=["sd-tab-item"], selected=False,
                                children=[title, content])
        tab_set += item
    return tab_set


def _grouped(run: list[tuple[str, nodes.Node]]) -> dict[str, list[nodes.Node]]:
    grouped: dict[str, list[nodes.Node]] = {}
    for owner, cell in run:
        grouped.setdefault(owner, []).append(cell)
    return grouped


def _shared_cell_with_tabbed_outputs(run: list[tuple[str, nodes.Node]]) -> nodes.Node:
    """One shared cell: its source once, then each framework's outputs in a tab."""
    cell = run[0][1]
    outputs: dict[str, list[nodes.Node]] = {}
    for framework, variant in run:
        found = [c for c in variant.children if c.get("nb_element") == "cell_code_output"]
        outputs[framework] = found or [nodes.paragraph(text="(no output)")]
    cell.children = [c for c in cell.children if c.get("nb_element") != "cell_code_output"]
    tabs = _tab_set(outputs)
    tabs["classes"].append("dlbook-output-tabs")
    cell += tabs
    return cell


def group_framework_cells(app: Sphinx, doctree: nodes.document) -> None:
    """Tab sets for framework cells and for the per-framework outputs of shared cells."""
    used: set[str] = set()
    parents = {cell.parent for cell in doctree.findall(nodes.container)
               if _framework_of(cell) or _variant_of(cell)}
    for parent in parents:
        children: list[nodes.Node] = []
        run: list[tuple[str, nodes.Node]] = []
        kind = None
        for child in list(parent.children) + [None]:
            framework, variant = (_framework_of(child), _variant_of(child)) if child is not None else (None, None)
            this_kind = "cells" if framework else "variant" if variant else None
            # A variant run ends when its framework comes round again (the next shared cell).
            ends = run and (this_kind != kind or (kind == "variant" and variant in dict(run)))
            if ends:
                children.append(_tab_set(_grouped(run)) if kind == "cells"
                                else _shared_cell_with_tabbed_outputs(run))
                run = []
            if this_kind:
                run.append((framework or variant, child))
                used.add(framework or variant)
                kind = this_kind
            elif child is not None:
                children.append(child)
        parent.children = []
        parent.extend(children)
    app.env.metadata[app.env.docname]["dlbook_frameworks"] = [f for f in FRAMEWORKS if f in used]


ALT_TEXT_LIMIT = 300


def _caption_after(cell: nodes.Node) -> str | None:
    """The prose right after a figure's cell (the book's captions sit there), other cells skipped."""
    sibling = cell.next_node(descend=False, siblings=True)
    while sibling is not None and isinstance(sibling, nodes.container):
        sibling = sibling.next_node(descend=False, siblings=True)
    if isinstance(sibling, nodes.paragraph):
        text = " ".join(sibling.astext().split())
        return re.sub(r"^Figure\s*[:.]\s*", "", text)  # the alt text names it a figure already
    return None


def describe_figures(app: Sphinx, doctree: nodes.document) -> None:
    """Alt text for images a code cell drew: its caption, instead of the image's file path."""
    for image in doctree.findall(nodes.image):
        if image.get("alt") and image["alt"] != image.get("uri"):
            continue
        cell = image
        while cell.parent is not None and not isinstance(cell.parent, (nodes.section, nodes.document)):
            cell = cell.parent
        if cell is image:
            continue
        caption = _caption_after(cell)
        framework = _framework_of(cell) or _variant_of(cell)
        prefix = f"Figure ({FRAMEWORKS.get(framework, framework)} run)" if framework else "Figure"
        if caption and len(caption) > ALT_TEXT_LIMIT:
            caption = caption[:ALT_TEXT_LIMIT].rsplit(" ", 1)[0] + " …"
        image["alt"] = f"{prefix}: {caption}" if caption else f"{prefix} drawn by the code cell above"


def value_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """``{dlbook-value}`{"pytorch": "0.81", "keras": "0.83"}``: the selected framework's value."""
    try:
        values = parse_value_role(text)
    except ValueError as exc:
        message = inliner.reporter.error(f"bad {VALUE_ROLE} payload: {exc}", line=lineno)
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    if set(values) == {"all"}:
        return [nodes.inline(values["all"], values["all"], classes=["dlbook-value"])], []
    parts = [nodes.inline(value, value, classes=["dlbook-only", f"dlbook-only-{framework}"])
             for framework, value in values.items()]
    return [nodes.inline("", "", *parts, classes=["dlbook-value"])], []


def _manifest(app: Sphinx) -> dict[str, dict[str, str]]:
    path = Path(app.srcdir) / MANIFEST
    return json.loads(path.read_text()) if path.is_file() else {}


def _github_parts(app: Sphinx) -> tuple[str, str] | None:
    url = app.config.html_theme_options.get("repository_url", "")
    if "github.com/" not in url:
        return None
    org, repo = url.split("github.com/", 1)[1].strip("/").split("/")[:2]
    return org, repo


def _label(kind: str) -> str:
    return FRAMEWORKS.get(kind, "assignment" if kind == "assignment" else "notebook")


def add_download_buttons(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Download and Colab buttons for the page's real notebooks; none pointing at sources."""
    if "header_buttons" not in context:
        return
    downloads = app.env.dlbook_manifest.get(pagename, {})
    launch = app.config.html_theme_options.get("launch_buttons", {})
    colab_url = launch.get("colab_url", "").rstrip("/")
    github = _github_parts(app)
    branch = app.config.dlbook_notebook_branch
    for group in context["header_buttons"]:
        buttons = group.get("buttons")
        if buttons is None:
            continue
        if group.get("label") == "launch-buttons":
            # The theme's buttons open the page's source, which Colab and Binder cannot run.
            buttons[:] = [b for b in buttons if b.get("text") not in ("Colab", "Binder")]
            if colab_url and github:
                for kind, path in downloads.items():
                    buttons.append({
                        "type": "link", "text": f"Colab ({_label(kind)})",
                        "tooltip": f"Open the {_label(kind)} notebook in Colab",
                        "icon": "_static/images/logo_colab.png",
                        "url": f"{colab_url}/github/{github[0]}/{github[1]}/blob/{branch}/{path}",
                    })
        elif group.get("label") == "download-buttons":
            buttons[:] = [b for b in buttons if "_sources/" not in str(b.get("url", ""))]
            for kind, path in reversed(list(downloads.items())):
                buttons.insert(0, {
                    "type": "link", "text": f".ipynb ({_label(kind)})",
                    "tooltip": f"Download the {_label(kind)} notebook",
                    "icon": "fas fa-code", "url": context["pathto"](path, 1),
                    "label": f"download-{kind}-notebook",
                })
    context["header_buttons"] = [g for g in context["header_buttons"]
                                 if g.get("buttons") is None or g["buttons"]]


def _check_staged(app: Sphinx) -> None:
    if not (Path(app.srcdir) / MARKER).is_file():
        raise ConfigError("build the book with `make book` (python -m dlbook.build): it executes "
                          "every page once per framework before Jupyter Book renders them")
    app.env.dlbook_manifest = _manifest(app)
    app.config.html_static_path.append(str(Path(__file__).parent / "static"))


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    """Serve MathJax 3 from the site's ``_static/mathjax`` (no CDN)."""
    if exception is not None or app.builder.format != "html":
        return
    spec = importlib.util.find_spec(MATHJAX_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(f"install {MATHJAX_PACKAGE} (pinned in pyproject.toml): MathJax is served "
                          "from the site so that formulas render offline")
    source = Path(next(iter(spec.submodule_search_locations))) / "static" / "mathjax"
    copy_asset(str(source), str(Path(app.outdir) / "_static" / "mathjax"))
    (Path(app.outdir) / ".nojekyll").touch()


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx_design")
    app.connect("builder-inited", _check_staged)
    app.add_css_file("dlbook.css")
    app.add_js_file("dlbook.js")
    app.add_config_value("dlbook_notebook_branch", "gh-pages", "html")
    app.add_config_value("dlbook_notebook_requirement", "", "html")
    app.add_role(VALUE_ROLE, value_role)
    app.connect("doctree-read", describe_figures, priority=400)  # before cells move into tabs
    app.connect("doctree-read", group_framework_cells)
    app.connect("html-page-context", add_download_buttons, priority=600)
    app.connect("build-finished", copy_mathjax)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
