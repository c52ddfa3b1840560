"""One book page becomes one notebook per framework."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from dlbook.notebooks import for_framework, is_notebook_page, output_name, split_book

PAGE = '''---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# A page

```{code-cell} ipython3
shared = 1
```

```{code-cell} ipython3
:tags: [pytorch]
import torch
```

```{code-cell} ipython3
:tags: [keras]
import keras
```

Both read this.

::::{tab-set}
:::{tab-item} PyTorch
:sync: pytorch
Torch-only words.
:::
:::{tab-item} Keras
:sync: keras
Keras-only words.
:::
::::

::::{tab-set}
:::{tab-item} Left
Not a framework tab.
:::
::::
'''


@pytest.fixture()
def book(tmp_path: Path) -> Path:
    (tmp_path / "book" / "01-demo").mkdir(parents=True)
    (tmp_path / "book" / "01-demo" / "index.md").write_text(PAGE)
    (tmp_path / "book" / "intro.md").write_text("# Plain text page\n")
    return tmp_path / "book"


def test_split_writes_one_notebook_per_framework(book: Path, tmp_path: Path) -> None:
    written = split_book(book, tmp_path / "out", requirement="course-helpers")
    assert sorted(p.name for p in written) == ["01-demo-keras.ipynb", "01-demo-pytorch.ipynb"]
    torch_nb = nbformat.read(tmp_path / "out" / "01-demo" / "01-demo-pytorch.ipynb", as_version=4)
    nbformat.validate(torch_nb)
    sources = "\n".join(cell.source for cell in torch_nb.cells)
    assert "import torch" in sources and "import keras" not in sources
    assert "shared = 1" in sources and "Both read this." in sources
    assert "Torch-only words." in sources and "Keras-only words." not in sources
    assert ":sync:" not in sources and "{tab-set}" in sources  # the non-framework tab set stays
    assert "course-helpers" in torch_nb.cells[0].source
    assert torch_nb.metadata["dlbook"] == {"framework": "pytorch"}


def test_plain_markdown_is_not_a_notebook(book: Path) -> None:
    assert not is_notebook_page(book / "intro.md")
    assert is_notebook_page(book / "01-demo" / "index.md")


def test_a_cell_with_two_framework_tags_is_rejected() -> None:
    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["pytorch", "keras"]})])
    with pytest.raises(ValueError, match="several frameworks"):
        for_framework(notebook, "pytorch")


def test_output_names_follow_the_chapter() -> None:
    assert output_name(Path("book/03-cam/index.md"), "keras") == "03-cam-keras.ipynb"
    assert output_name(Path("book/03-cam/gradcam.md"), "pytorch") == "gradcam-pytorch.ipynb"
