"""The book build on a tiny book: per-framework kernels, cache keyed by profile, failures stick."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from dlbook.build import Book, stage

HEADER = "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n" \
         "kernelspec:\n  display_name: Python 3\n  language: python\n  name: python3\n---\n"
PAGE = HEADER + '''# A page

```{code-cell} ipython3
from myst_nb import glue
```

```{code-cell} ipython3
:tags: [pytorch]
who = "pytorch"
```

```{code-cell} ipython3
:tags: [keras]
who = "keras"
```

```{code-cell} ipython3
import os, sys
print(who, os.environ["DLBOOK_PROFILE"], "keras" in sys.modules or "torch" in sys.modules)
glue("who", who, display=False)
{failure}
```

Run by {glue:text}`who`.
'''


def _book(root: Path, failure: str = "") -> Book:
    (root / "book" / "p").mkdir(parents=True)
    (root / "_config.yml").write_text("title: t\nsphinx:\n  config:\n    html_baseurl: https://example.org/\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/p/index\n")
    (root / "book" / "intro.md").write_text("# Intro\n")
    (root / "book" / "p" / "index.md").write_text(PAGE.replace("{failure}", failure))
    return Book.load(root)


@pytest.mark.slow
def test_each_framework_runs_in_its_own_kernel_and_is_cached_per_profile(tmp_path: Path) -> None:
    book = _book(tmp_path)
    staging = tmp_path / "_build" / "src"
    first = {r.docname: r for r in stage(book, staging, "quick")}["book/p/index"]
    assert first.error is None and {cached for _, cached in first.timings.values()} == {False}
    merged = nbformat.read(staging / "book" / "p" / "index.ipynb", as_version=4)
    printed = [c for c in merged.cells if c.cell_type == "code" and c.source.startswith("import os")]
    assert [c.outputs[0]["text"] for c in printed] == ["pytorch quick False\n", "keras quick False\n"]
    assert '"pytorch": "pytorch", "keras": "keras"' in merged.cells[-1].source
    download = staging / "_extra" / "_notebooks" / "book" / "p" / "p-keras.ipynb"
    assert "Run by keras." in nbformat.read(download, as_version=4).cells[-1].source
    again = {r.docname: r for r in stage(book, staging, "quick")}["book/p/index"]
    assert {cached for _, cached in again.timings.values()} == {True}
    other_profile = {r.docname: r for r in stage(book, staging, "full")}["book/p/index"]
    assert {cached for _, cached in other_profile.timings.values()} == {False}


@pytest.mark.slow
def test_a_failed_page_is_not_cached_and_fails_every_build(tmp_path: Path) -> None:
    book = _book(tmp_path, failure="raise RuntimeError('broken page')")
    staging = tmp_path / "_build" / "src"
    for _ in range(2):
        result = {r.docname: r for r in stage(book, staging, "quick")}["book/p/index"]
        assert result.error and "broken page" in result.error
        assert not (staging / "book" / "p" / "index.ipynb").exists()
    assert not list((tmp_path / "_build" / ".dlbook-cache").rglob("*.ipynb"))
