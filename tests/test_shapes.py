"""The generated shapes data set and the pointing game."""
from __future__ import annotations

import numpy as np
import pytest

from dlbook.shapes import SHAPE_CLASSES, make_shapes, pointing_game


def test_types_and_ranges() -> None:
    images, labels, boxes, masks = make_shapes(50, size=32, seed=1)
    assert images.shape == (50, 32, 32) and images.dtype == np.float32
    assert labels.shape == (50,) and labels.dtype == np.int64
    assert boxes.shape == (50, 4) and np.issubdtype(boxes.dtype, np.integer)
    assert masks.shape == (50, 32, 32) and masks.dtype == bool
    assert images.min() >= 0.0 and images.max() <= 1.0
    assert set(np.unique(labels)) <= set(range(len(SHAPE_CLASSES)))
    assert len(np.unique(labels)) == len(SHAPE_CLASSES)  # 50 draws hit every class


def test_deterministic_for_a_seed() -> None:
    first, second = make_shapes(20, seed=3), make_shapes(20, seed=3)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)
    other = make_shapes(20, seed=4)
    assert not np.array_equal(first[0], other[0])


def test_boxes_are_tight_around_the_mask() -> None:
    images, labels, boxes, masks = make_shapes(100, size=28, seed=0)
    for box, mask in zip(boxes, masks):
        r0, c0, r1, c1 = box
        assert 0 <= r0 < r1 <= 28 and 0 <= c0 < c1 <= 28
        inside = np.zeros_like(mask)
        inside[r0:r1, c0:c1] = True
        assert mask.sum() > 0 and not (mask & ~inside).any(), "mask pixels outside the box"
        # tight: every border row and column of the box touches the mask
        assert mask[r0].any() and mask[r1 - 1].any() and mask[:, c0].any() and mask[:, c1 - 1].any()


def test_shape_is_brighter_than_background_on_average() -> None:
    images, _, _, masks = make_shapes(30, seed=2)
    assert all(img[m].mean() > img[~m].mean() + 0.2 for img, m in zip(images, masks))


def test_subset_of_classes_and_bad_names() -> None:
    _, labels, _, _ = make_shapes(30, classes=("circle", "square"), seed=5)
    assert set(np.unique(labels)) == {0, 1}
    with pytest.raises(ValueError):
        make_shapes(3, classes=("hexagon",))


def test_pointing_game_known_fractions() -> None:
    boxes = np.array([[2, 2, 5, 5]] * 4)
    maps = np.zeros((4, 8, 8))
    maps[0, 3, 3] = 1.0      # inside
    maps[1, 4, 4] = 1.0      # inside: last row/col of the box (exclusive end is 5)
    maps[2, 5, 5] = 1.0      # outside: on the exclusive end
    maps[3, 0, 7] = 1.0      # outside
    assert pointing_game(maps, boxes) == 0.5
    assert pointing_game(maps[:2], boxes[:2]) == 1.0
    assert pointing_game(maps[2:], boxes[2:]) == 0.0
    assert pointing_game(maps[1:], boxes[1:]) == pytest.approx(1 / 3)
    # a tolerance of one pixel takes in the point on the exclusive end, not the far corner
    assert pointing_game(maps, boxes, tolerance=1) == 0.75


def test_pointing_game_ties_take_the_first_maximum() -> None:
    maps = np.ones((1, 6, 6))  # a flat map: argmax is (0, 0)
    assert pointing_game(maps, np.array([[0, 0, 1, 1]])) == 1.0
    assert pointing_game(maps, np.array([[1, 1, 6, 6]])) == 0.0


def test_pointing_game_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError):
        pointing_game(np.zeros((2, 4, 4)), np.zeros((3, 4)))
