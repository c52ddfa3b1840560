"""Numbers on heat-map cells stay readable."""
from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from dlbook.heatmap import annotated_heatmap, contrast_ratio, kernel_gallery, text_colour  # noqa: E402


def test_text_colour_reads_on_light_and_dark_cells() -> None:
    assert text_colour((1.0, 1.0, 1.0)) == "black"
    assert text_colour((0.4, 0.0, 0.12)) == "white"  # RdBu_r's darkest red
    assert text_colour((0.02, 0.19, 0.38)) == "white"  # RdBu_r's darkest blue
    assert contrast_ratio((0, 0, 0), (1, 1, 1)) == 21.0


def test_every_value_contrasts_with_its_cell() -> None:
    matrix = np.array([[-8.0, -3.0, 0.0], [1.0, 4.0, 10.0]])
    fig = annotated_heatmap(matrix, title="t")
    ax = fig.axes[0]
    image = ax.images[0]
    texts = ax.texts
    assert [t.get_text() for t in texts] == ["-8", "-3", "0", "1", "4", "10"]
    for text, value in zip(texts, matrix.ravel()):
        cell = image.cmap(image.norm(value))
        colour = matplotlib.colors.to_rgb(text.get_color())
        assert contrast_ratio(cell, colour) >= 4.5, (value, text.get_color())
    assert len(fig.axes) == 2  # the colour bar
    plt.close(fig)


def test_kernel_gallery_annotates_small_kernels_only() -> None:
    fig = kernel_gallery([np.full((5, 5), 0.04), np.ones((7, 7))], ["box", "big"], ncols=2)
    kernel_axes = [ax for ax in fig.axes if ax.get_title()]
    assert [len(ax.texts) for ax in kernel_axes] == [25, 0]
    assert all(t.get_color() == "white" for t in kernel_axes[0].texts)  # a uniform kernel is its darkest colour
    plt.close(fig)


def test_hide_zeros_leaves_zero_cells_blank() -> None:
    fig = annotated_heatmap(np.array([[0.0, 2.0], [-1.0, 0.0]]), hide_zeros=True, colorbar=False)
    assert [t.get_text() for t in fig.axes[0].texts] == ["2", "-1"]
    plt.close(fig)
