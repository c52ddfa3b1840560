"""Per-framework runs merged into one page: outputs, glue, run line (in-memory notebooks)."""
from __future__ import annotations

import nbformat
import pytest

from dlbook import glue
from dlbook.execute import Execution, clean_outputs
from dlbook.merge import VARIANT_KEY, merge
from dlbook.notebooks import for_framework

new_code, new_md = nbformat.v4.new_code_cell, nbformat.v4.new_markdown_cell


def _page() -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[
        new_md("# Title\n\nAccuracy {glue:text}`acc:.2f`, size {glue:}`n`."),
        new_code("import numpy as np"),
        new_code("model = 'torch'", metadata={"tags": ["pytorch"]}),
        new_code("model = 'keras'", metadata={"tags": ["keras"]}),
        new_code("print(model)"),
        new_code("print('same')"),
        new_md("::::{tab-set}\n:::{tab-item} PyTorch\n:sync: pytorch\nT {glue:text}`only_torch`\n:::\n"
               ":::{tab-item} Keras\n:sync: keras\nK {glue:text}`only_keras`\n:::\n::::"),
    ])


def _stream(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name="stdout", text=text)


def _glued(name: str, value: str) -> nbformat.NotebookNode:
    prefix = "application/papermill.record/"
    return nbformat.v4.new_output("display_data", data={prefix + "text/plain": value},
                                  metadata={"scrapbook": {"name": name, "mime_prefix": prefix}})


def _run(framework: str, acc: str) -> Execution:
    notebook = for_framework(_page(), framework)
    for cell in notebook.cells:
        if cell.source == "print(model)":
            cell.outputs = [_stream(f"{framework}\n"), _glued("acc", acc), _glued("n", "'3'"),
                            _glued(f"only_{'torch' if framework == 'pytorch' else 'keras'}", "1")]
        elif cell.source == "print('same')":
            cell.outputs = [_stream("same\n")]
    return Execution(notebook, {"profile": "quick", "device": "CPU (2 cores)", "python": "3.11"}, 2.0, False)


def test_shared_cell_outputs_kept_per_framework_only_when_they_differ() -> None:
    merged = merge(_page(), {"pytorch": _run("pytorch", "0.5"), "keras": _run("keras", "0.75")})
    printed = [c for c in merged.cells if c.cell_type == "code" and c.source == "print(model)"]
    assert [c.metadata[VARIANT_KEY] for c in printed] == ["pytorch", "keras"]
    assert [c.outputs[0]["text"] for c in printed] == ["pytorch\n", "keras\n"]
    assert all(len(c.outputs) == 1 for c in printed), "hidden glue outputs must not be shown"
    same = [c for c in merged.cells if c.cell_type == "code" and c.source == "print('same')"]
    assert len(same) == 1 and VARIANT_KEY not in same[0].metadata
    tagged = [c.source for c in merged.cells if "tags" in c.metadata]
    assert tagged == ["model = 'torch'", "model = 'keras'"]


def test_glue_values_per_framework_and_the_run_line() -> None:
    merged = merge(_page(), {"pytorch": _run("pytorch", "0.5"), "keras": _run("keras", "0.75")})
    first = merged.cells[0].source
    assert '{dlbook-value}`{"pytorch": "0.50", "keras": "0.75"}`' in first
    assert '{dlbook-value}`{"all": "3"}`' in first
    assert "dlbook-run-info" in first and "PyTorch run: quick profile" in first
    tabs = merged.cells[-1].source
    assert '{"all": "1"}' in tabs and "{glue" not in tabs   # each tab only needs its own value


def test_prose_quoting_a_value_one_framework_lacks_fails() -> None:
    page = _page()
    page.cells.append(new_md("Both frameworks read {glue:text}`only_torch`."))
    with pytest.raises(glue.GlueError, match="only_torch.*Keras notebook"):
        merge(page, {"pytorch": _run("pytorch", "0.5"), "keras": _run("keras", "0.75")})


def test_clean_outputs_drops_stderr_widgets_and_build_paths() -> None:
    notebook = nbformat.v4.new_notebook(cells=[new_code("x", outputs=[
        nbformat.v4.new_output("stream", name="stderr", text="TensorFlow banner\n"),
        _stream("epoch 1: 10%\repoch 1: 100%\nsaved in /home/ann/course/file\n"),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "0%|  | 0/94"}),
    ])])
    clean_outputs(notebook, {"/home/ann/course": "<course>"})
    assert [o["text"] for o in notebook.cells[0].outputs] == ["epoch 1: 100%\nsaved in <course>/file\n"]


def test_numpy_scalars_format_like_numbers() -> None:
    assert glue.format_value("np.float64(0.66212)", ".2f") == "0.66"
    with pytest.raises(glue.GlueError, match="'x'.*cannot show"):
        glue.lookup({"x": "'text'"}, "x", ".2f", "PyTorch notebook")
