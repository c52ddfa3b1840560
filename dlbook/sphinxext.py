"""Sphinx extension: PyTorch | Keras tabs built from executed cells, and per-framework notebooks.

MyST-NB cannot execute code cells that sit inside a ``tab-set`` directive, so a page
keeps its framework cells at the top level, tagged ``pytorch`` or ``keras``.  After
MyST-NB has turned each executed cell (source and outputs) into a container node,
:func:`group_framework_cells` moves every run of consecutive tagged cells into a
sphinx-design tab set.  The tabs therefore show exactly the cells that ran, outputs
included, and they sync with every other framework tab on the site.

It also writes each page's per-framework notebooks into ``_notebooks/`` of the HTML
output and points the page's Colab and download buttons at them.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging
from sphinx_design.shared import create_component

from dlbook import __version__
from dlbook.notebooks import FRAMEWORKS, cell_framework, output_name, split_page

LOGGER = logging.getLogger(__name__)
SYNC_GROUP = "tab"  # the group sphinx-design gives `:sync:` tab items, so prose tabs follow too
NOTEBOOK_DIR = "_notebooks"


def _framework_of(node: nodes.Node) -> str | None:
    if not (isinstance(node, nodes.container) and node.get("nb_element") == "cell_code"):
        return None
    return cell_framework({"metadata": node.get("cell_metadata", {}), "source": ""})


def _tab_set(cells: list[tuple[str, nodes.Node]]) -> nodes.container:
    tab_set = create_component("tab-set", classes=["sd-tab-set", "dlbook-framework-tabs"])
    for framework, label in FRAMEWORKS.items():
        members = [cell for owner, cell in cells if owner == framework]
        if not members:
            continue
        title = nodes.rubric(label, label, classes=["sd-tab-label"])
        title["sync_group"], title["sync_id"] = SYNC_GROUP, framework
        content = create_component("tab-content", classes=["sd-tab-content"], children=members)
        item = create_component("tab-item", classes=["sd-tab-item"], selected=False,
                                children=[title, content])
        tab_set += item
    return tab_set


def group_framework_cells(app: Sphinx, doctree: nodes.document) -> None:
    """Wrap each run of consecutive framework-tagged code cells in a tab set."""
    used: set[str] = set()
    parents = {cell.parent for cell in doctree.findall(nodes.container) if _framework_of(cell)}
    for parent in parents:
        children, run = [], []
        for child in list(parent.children) + [None]:
            owner = _framework_of(child) if child is not None else None
            if owner:
                run.append((owner, child))
                used.add(owner)
                continue
            if run:
                children.append(_tab_set(run))
                run = []
            if child is not None:
                children.append(child)
        parent.children = []
        parent.extend(children)
    docname = app.env.docname
    app.env.metadata[docname]["dlbook_frameworks"] = [f for f in FRAMEWORKS if f in used]


def _notebook_url(pagename: str, framework: str | None) -> str:
    page = Path(pagename)
    name = output_name(page.with_suffix(".md"), framework)
    return f"{NOTEBOOK_DIR}/{page.parent.as_posix()}/{name}".replace("/./", "/")


def _github_parts(app: Sphinx) -> tuple[str, str] | None:
    url = app.config.html_theme_options.get("repository_url", "")
    if "github.com/" not in url:
        return None
    org, repo = url.split("github.com/", 1)[1].strip("/").split("/")[:2]
    return org, repo


def add_framework_buttons(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Point Colab and download buttons at the per-framework notebooks of this page."""
    frameworks = app.env.metadata.get(pagename, {}).get("dlbook_frameworks")
    if not frameworks or "header_buttons" not in context:
        return
    launch = app.config.html_theme_options.get("launch_buttons", {})
    colab_url = launch.get("colab_url", "").rstrip("/")
    github = _github_parts(app)
    branch = app.config.dlbook_notebook_branch
    for group in context["header_buttons"]:
        buttons = group.get("buttons")
        if buttons is None:
            continue
        if group.get("label") == "launch-buttons":
            # The theme's Colab button would open the page's MyST source, which Colab cannot read.
            buttons[:] = [b for b in buttons if b.get("text") != "Colab"]
            if colab_url and github:
                for framework in frameworks:
                    url = f"{colab_url}/github/{github[0]}/{github[1]}/blob/{branch}/" \
                          f"{_notebook_url(pagename, framework)}"
                    buttons.append({
                        "type": "link", "text": f"Colab ({FRAMEWORKS[framework]})",
                        "tooltip": f"Open the {FRAMEWORKS[framework]} notebook in Colab",
                        "icon": "_static/images/logo_colab.png", "url": url,
                    })
        elif group.get("label") == "download-buttons":
            buttons[:] = [b for b in buttons if not str(b.get("text", "")).endswith((".md", ".ipynb"))]
            for framework in reversed(frameworks):
                buttons.insert(0, {
                    "type": "link", "text": f".ipynb ({FRAMEWORKS[framework]})",
                    "tooltip": f"Download the {FRAMEWORKS[framework]} notebook",
                    "icon": "fas fa-code",
                    "url": context["pathto"](_notebook_url(pagename, framework), 1),
                    "label": f"download-{framework}-notebook",
                })


def write_framework_notebooks(app: Sphinx, exception: Exception | None) -> None:
    """Write every notebook page's per-framework notebooks into the HTML output."""
    if exception is not None or app.builder.format != "html":
        return
    out_root = Path(app.outdir) / NOTEBOOK_DIR
    requirement = app.config.dlbook_notebook_requirement or None
    for docname, metadata in app.env.metadata.items():
        if not metadata.get("dlbook_frameworks"):
            continue
        source = Path(app.env.doc2path(docname))
        split_page(source, out_root / Path(docname).parent, requirement)
    (Path(app.outdir) / ".nojekyll").touch()


def _add_static(app: Sphinx) -> None:
    app.config.html_static_path.append(str(Path(__file__).parent / "static"))


def setup(app: Sphinx) -> dict[str, Any]:
    app.setup_extension("sphinx_design")
    app.connect("builder-inited", _add_static)
    app.add_css_file("dlbook.css")
    app.add_config_value("dlbook_notebook_branch", "gh-pages", "html")
    app.add_config_value("dlbook_notebook_requirement", "", "html")
    app.connect("doctree-read", group_framework_cells)
    app.connect("html-page-context", add_framework_buttons, priority=600)
    app.connect("build-finished", write_framework_notebooks)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}
