"""Annotated heat maps whose numbers stay readable on every cell colour.

Each number is written in black or white, whichever contrasts more with its own cell
(WCAG relative luminance), so a value on a dark red or dark blue cell is never black on
dark.  A colour bar says what the colours mean.
"""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from dlbook.checks import to_numpy


def relative_luminance(rgba: Sequence[float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour with channels in [0, 1]."""
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in rgba[:3]]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """WCAG contrast ratio of two colours, from 1 (none) to 21 (black on white)."""
    la, lb = sorted((relative_luminance(a), relative_luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def text_colour(background: Sequence[float]) -> str:
    """'black' or 'white', whichever reads better on ``background`` (ratio at least 4.5)."""
    on_black = contrast_ratio(background, (0.0, 0.0, 0.0))
    on_white = contrast_ratio(background, (1.0, 1.0, 1.0))
    return "black" if on_black >= on_white else "white"


def annotated_heatmap(matrix: Any, *, ax: plt.Axes | None = None, title: str | None = None,
                      fmt: str = "{:g}", cmap: str = "RdBu_r", limit: float | None = None,
                      colorbar: bool = True, fontsize: float = 9, grid: bool = True,
                      hide_zeros: bool = False) -> Figure:
    """A small matrix as a heat map centred on zero, every value written in a readable colour
    (``hide_zeros`` leaves zero cells blank, for sparse matrices)."""
    matrix = to_numpy(matrix)
    if matrix.ndim != 2:
        raise ValueError(f"annotated_heatmap draws a 2-D matrix, got shape {matrix.shape}")
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.6 * matrix.shape[1] + 1.4, 0.6 * matrix.shape[0] + 0.6))
    fig = ax.figure
    limit = float(limit if limit is not None else np.abs(matrix).max()) or 1.0
    image = ax.imshow(matrix, cmap=cmap, vmin=-limit, vmax=limit)
    for (r, c), v in np.ndenumerate(matrix):
        if hide_zeros and v == 0:
            continue
        ax.text(c, r, fmt.format(v), ha="center", va="center", fontsize=fontsize,
                color=text_colour(image.cmap(image.norm(v))))
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_yticks(range(matrix.shape[0]))
    if grid:  # thin white lines between cells, so cells can be counted
        ax.set_xticks(np.arange(matrix.shape[1] + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(matrix.shape[0] + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="white", linewidth=1)
        ax.tick_params(which="minor", length=0)
    if title:
        ax.set_title(title, fontsize=10)
    if colorbar:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return fig


def kernel_gallery(kernels: Sequence[Any], titles: Sequence[str], *, ncols: int = 5,
                   size: float = 2.4, fmt: str = "{:.2g}", max_annotated: int = 25) -> Figure:
    """Kernels side by side, each on its own zero-centred scale with a colour bar; kernels of
    at most ``max_annotated`` entries get their values written in (readably)."""
    nrows = -(-len(kernels) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat[len(kernels):]:
        ax.axis("off")
    for ax, kernel, title in zip(axes.flat, kernels, titles):
        kernel = to_numpy(kernel)
        if kernel.size <= max_annotated:
            annotated_heatmap(kernel, ax=ax, title=title, fmt=fmt, fontsize=8)
        else:
            limit = float(np.abs(kernel).max()) or 1.0
            image = ax.imshow(kernel, cmap="RdBu_r", vmin=-limit, vmax=limit)
            fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
            ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig
