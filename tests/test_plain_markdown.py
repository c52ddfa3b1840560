"""MyST prose becomes plain Markdown in the downloaded notebooks."""
from __future__ import annotations

from dlbook.plain_markdown import SiteLinks, labels_of, leftover_myst, to_plain_markdown

LINKS = SiteLinks("https://example.org/book/", "book/03-cam/index",
                  {"sec-shapes": ("book/02-shapes/index", "Shapes and parameters")})


def test_targets_roles_and_admonitions_become_plain_markdown() -> None:
    source = ("(sec-cam)=\n# CAM\n\n"
              "See {ref}`sec-shapes` and {doc}`the assignment <../../notebooks/03-cam/03-cam-keras>`.\n\n"
              ":::{admonition} Common mistake\n:class: warning\nText **here**.\n:::\n\n"
              "```{note}\nA note.\n```\n")
    plain = to_plain_markdown(source, LINKS)
    assert leftover_myst(plain) == []
    assert '<a id="sec-cam"></a>' in plain
    assert "[Shapes and parameters](https://example.org/book/book/02-shapes/index.html#sec-shapes)" in plain
    assert "[the assignment](https://example.org/book/notebooks/03-cam/03-cam-keras.html)" in plain
    assert "> **Common mistake**\n>\n> Text **here**." in plain
    assert "> **Note**\n>\n> A note." in plain


def test_labels_know_their_heading() -> None:
    assert labels_of("(sec-x)=\n## The X\n", "book/x") == {"sec-x": ("book/x", "The X")}


def test_unknown_myst_is_reported() -> None:
    assert leftover_myst("{cite}`paper` and\n```{figure} a.png\n```") == ["{cite}`", "```{"]
