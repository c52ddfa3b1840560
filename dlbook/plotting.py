"""The figures every chapter draws: image grids, kernels, feature maps, matrices, curves.

Each function returns the matplotlib ``Figure`` (a page shows it by being the last
expression of a cell, or with ``plt.show()``) and accepts NumPy arrays or tensors.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from dlbook.checks import to_numpy
from dlbook.heatmap import annotated_heatmap, kernel_gallery


def _grid(count: int, ncols: int, size: float) -> tuple[Figure, np.ndarray]:
    ncols = max(1, min(ncols, count))
    nrows = math.ceil(count / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows), squeeze=False)
    for ax in axes.flat[count:]:
        ax.axis("off")
    return fig, axes


def _as_image(value: Any) -> np.ndarray:
    """An (H, W) or (H, W, 3) array; channel-first (C, H, W) tensors are moved to the end."""
    image = to_numpy(value)
    if image.ndim == 3 and image.shape[0] in (1, 3) and image.shape[-1] not in (1, 3):
        image = np.moveaxis(image, 0, -1)
    return image[..., 0] if image.ndim == 3 and image.shape[-1] == 1 else image


def show_images(images: Sequence[Any], titles: Sequence[str] | None = None, *, ncols: int = 8,
                cmap: str = "gray", size: float = 1.6, suptitle: str | None = None) -> Figure:
    """A grid of images (grey or RGB), with optional titles."""
    fig, axes = _grid(len(images), ncols, size)
    for i, (ax, image) in enumerate(zip(axes.flat, images)):
        image = _as_image(image)
        ax.imshow(np.clip(image, 0, 1) if image.ndim == 3 else image, cmap=None if image.ndim == 3 else cmap)
        ax.set_xticks([])
        ax.set_yticks([])
        if titles is not None:
            ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    fig.tight_layout()
    return fig


def show_kernels(kernels: Sequence[Any], titles: Sequence[str] | None = None, *, ncols: int = 8,
                 size: float = 1.6, annotate: bool | None = None) -> Figure:
    """Kernels on a diverging colour scale centred on zero; small ones get their values written in
    (drawn by :func:`dlbook.heatmap.kernel_gallery`, which keeps the numbers readable)."""
    max_annotated = {True: np.inf, False: 0, None: 25}[annotate]
    return kernel_gallery(kernels, list(titles) if titles is not None else [""] * len(kernels),
                          ncols=min(ncols, len(kernels)), size=size, max_annotated=max_annotated)


def show_feature_maps(maps: Any, *, channels_last: bool = False, ncols: int = 8, size: float = 1.4,
                      title: str | None = None, cmap: str = "viridis", limit: int = 32) -> Figure:
    """The first ``limit`` channels of one layer's output, a batch allowed (its first image is shown).

    PyTorch gives (C, H, W); pass ``channels_last=True`` for Keras' (H, W, C).
    """
    maps = to_numpy(maps)
    if maps.ndim == 4:
        maps = maps[0]  # the first image of a batch
    if channels_last:
        maps = np.moveaxis(maps, -1, 0)
    maps = maps[:limit]
    fig, axes = _grid(len(maps), ncols, size)
    for i, (ax, fmap) in enumerate(zip(axes.flat, maps)):
        ax.imshow(fmap, cmap=cmap)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"channel {i}", fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def show_matrix(matrix: Any, *, title: str | None = None, fmt: str = "{:g}", cmap: str = "RdBu_r",
                ax: plt.Axes | None = None) -> Figure:
    """A small matrix drawn as a heat map with every value written in its cell (readably)."""
    return annotated_heatmap(matrix, ax=ax, title=title, fmt=fmt, cmap=cmap)


def plot_history(history: Mapping[str, Sequence[float]] | Any, *, title: str | None = None) -> Figure:
    """Training curves from a ``dlbook.training.History``, a Keras ``History`` or a dict.

    Metrics named ``x`` and ``val_x`` share one panel; one panel per metric.
    """
    logs = getattr(history, "history", history)
    names = [k for k in logs if not k.startswith("val_")]
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for key, label in ((name, "train"), (f"val_{name}", "validation")):
            if key in logs and len(logs[key]):
                epochs = np.arange(1, len(logs[key]) + 1)
                ax.plot(epochs, logs[key], marker="o", label=label)
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(name)
        ax.legend()
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix_plot(y_true: Any, y_pred: Any, classes: Sequence[str], *,
                          normalize: bool = True, title: str | None = None) -> Figure:
    """A confusion matrix (rows: true class, columns: predicted), normalised per row by default."""
    y_true, y_pred = to_numpy(y_true).astype(int), to_numpy(y_pred).astype(int)
    n = len(classes)
    counts = np.zeros((n, n), dtype=np.int64)
    np.add.at(counts, (y_true, y_pred), 1)
    shown = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1) if normalize else counts
    fig, ax = plt.subplots(figsize=(0.55 * n + 2, 0.55 * n + 1.5))
    ax.imshow(shown, cmap="Blues", vmin=0)
    for (r, c), v in np.ndenumerate(shown):
        if counts[r, c]:
            ax.text(c, r, f"{v:.2f}" if normalize else str(v), ha="center", va="center", fontsize=7,
                    color="white" if v > 0.6 * shown.max() else "black")
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {np.trace(counts) / max(counts.sum(), 1):.1%}")
    fig.tight_layout()
    return fig
