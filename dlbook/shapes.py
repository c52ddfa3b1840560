"""A generated data set of shapes with known positions, for measuring where a network looks.

Every image holds one filled shape (a square, a circle or a triangle) of random size,
brightness and position on a noisy background with a few bright distractor specks.  Because
the generator knows where it drew the shape, every image comes with the object's mask and
its bounding box, so a saliency map (CAM, Grad-CAM) can be *scored*: the pointing game of
Zhang et al. (2016/2018) counts how often a map's maximum falls on the object.

Everything is drawn from one ``numpy.random.Generator`` seeded by ``seed``: the same
arguments always give the same arrays, on any machine.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

SHAPE_CLASSES: tuple[str, ...] = ("square", "circle", "triangle")


def _shape_mask(kind: str, size: int, top: int, left: int, extent: int, rng: np.random.Generator) -> np.ndarray:
    """A boolean ``(size, size)`` mask of one filled shape inside the square at (top, left)."""
    rows, cols = np.mgrid[0:size, 0:size]
    r, c = rows - top, cols - left  # coordinates relative to the shape's square
    inside = (r >= 0) & (r < extent) & (c >= 0) & (c < extent)
    if kind == "square":
        return inside
    if kind == "circle":
        centre = (extent - 1) / 2
        return inside & ((r - centre) ** 2 + (c - centre) ** 2 <= (extent / 2) ** 2)
    if kind == "triangle":
        # An isosceles triangle, apex at the top, pointing up or down at random.
        if rng.random() < 0.5:
            r = extent - 1 - r
        half_width = (r + 1) * (extent / 2) / extent
        return inside & (np.abs(c - (extent - 1) / 2) <= half_width)
    raise ValueError(f"unknown shape {kind!r}; choose from {SHAPE_CLASSES}")


def make_shapes(
    n: int,
    size: int = 32,
    seed: int = 0,
    classes: Sequence[str] = SHAPE_CLASSES,
    noise: float = 0.15,
    clutter: int = 3,
    min_extent: int | None = None,
    max_extent: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Draw ``n`` images of one shape each, with labels, bounding boxes and masks.

    Parameters
    ----------
    n: number of images.
    size: side length of the square images in pixels.
    seed: seed of the random generator; the same arguments give the same arrays.
    classes: the shape names to draw from, a subset of :data:`SHAPE_CLASSES`; label ``i``
        means ``classes[i]``.
    noise: standard deviation of the Gaussian background noise (the background's mean is a
        random grey level between 0.1 and 0.3 per image).
    clutter: number of small bright distractor specks (2×2 pixels, at random places, they
        may touch the shape) per image.
    min_extent, max_extent: smallest and largest side of a shape's square in pixels
        (defaults: ``size // 5`` and ``size // 2``).

    Returns
    -------
    images: float32 ``(n, size, size)`` in ``[0, 1]``.
    labels: int64 ``(n,)``, indices into ``classes``.
    boxes: int64 ``(n, 4)`` as ``(row0, col0, row1, col1)``, inclusive-exclusive: the
        tight bounding box of the shape's mask, ``mask[row0:row1, col0:col1]`` holds all of it.
    masks: bool ``(n, size, size)``, True on the shape's pixels.
    """
    unknown = [c for c in classes if c not in SHAPE_CLASSES]
    if unknown:
        raise ValueError(f"unknown shapes {unknown}; choose from {SHAPE_CLASSES}")
    lo = max(3, size // 5) if min_extent is None else min_extent
    hi = max(lo, size // 2) if max_extent is None else max_extent
    if not 1 <= lo <= hi <= size:
        raise ValueError(f"need 1 <= min_extent <= max_extent <= size, got {lo}, {hi}, {size}")
    rng = np.random.default_rng(seed)
    images = np.empty((n, size, size), dtype=np.float32)
    labels = rng.integers(0, len(classes), size=n).astype(np.int64)
    boxes = np.empty((n, 4), dtype=np.int64)
    masks = np.empty((n, size, size), dtype=bool)
    for i in range(n):
        extent = int(rng.integers(lo, hi + 1))
        top, left = (int(v) for v in rng.integers(0, size - extent + 1, size=2))
        mask = _shape_mask(classes[labels[i]], size, top, left, extent, rng)
        image = rng.uniform(0.1, 0.3) + noise * rng.standard_normal((size, size))
        for _ in range(clutter):
            r, c = rng.integers(0, size - 1, size=2)
            image[r:r + 2, c:c + 2] = rng.uniform(0.5, 0.9)
        image[mask] = rng.uniform(0.6, 1.0) + 0.5 * noise * rng.standard_normal(int(mask.sum()))
        rows, cols = np.nonzero(mask)
        boxes[i] = rows.min(), cols.min(), rows.max() + 1, cols.max() + 1
        images[i] = np.clip(image, 0.0, 1.0)
        masks[i] = mask
    return images, labels, boxes, masks


def pointing_game(heatmaps: np.ndarray, boxes: np.ndarray, tolerance: int = 0) -> float:
    """Share of heatmaps whose maximum lies inside the object's box (the pointing game).

    ``heatmaps`` is ``(n, H, W)`` at the images' resolution, ``boxes`` is ``(n, 4)`` as
    ``(row0, col0, row1, col1)`` inclusive-exclusive.  The maximum is ``np.argmax``'s: on a
    tie, the first position in row-major order.  ``tolerance`` widens every box by that
    many pixels on each side (Zhang et al. allow 15 pixels on ImageNet-sized images).
    """
    heatmaps = np.asarray(heatmaps)
    boxes = np.asarray(boxes)
    if heatmaps.ndim != 3 or boxes.shape != (len(heatmaps), 4):
        raise ValueError(f"expected heatmaps (n, H, W) and boxes (n, 4), got {heatmaps.shape} and {boxes.shape}")
    if len(heatmaps) == 0:
        raise ValueError("no heatmaps to score")
    flat = heatmaps.reshape(len(heatmaps), -1).argmax(axis=1)
    rows, cols = np.unravel_index(flat, heatmaps.shape[1:])
    hits = ((rows >= boxes[:, 0] - tolerance) & (rows < boxes[:, 2] + tolerance)
            & (cols >= boxes[:, 1] - tolerance) & (cols < boxes[:, 3] + tolerance))
    return float(hits.mean())
