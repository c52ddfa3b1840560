"""The assertion helpers that assignment tests use."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from dlbook.checks import HiddenTestFailure, assert_close, hidden, to_numpy


def test_to_numpy_accepts_every_framework() -> None:
    tf = pytest.importorskip("tensorflow")
    expected = np.array([[1.0, 2.0]])
    for value in ([[1, 2]], torch.tensor([[1.0, 2.0]], requires_grad=True), tf.constant([[1.0, 2.0]])):
        np.testing.assert_array_equal(to_numpy(value), expected)


def test_assert_close_passes_within_tolerance() -> None:
    assert_close(np.array([1.0, 2.0]) + 1e-9, [1, 2])


def test_assert_close_names_the_worst_value() -> None:
    worst = r"out: 1 of 4 values differ; the worst at index \(1, 0\) is 9, expected 3"
    with pytest.raises(AssertionError, match=worst):
        assert_close([[1, 2], [9, 4]], [[1, 2], [3, 4]], name="out")


def test_assert_close_reports_shape_none_and_nan() -> None:
    with pytest.raises(AssertionError, match=r"shape \(3,\), expected \(2,\)"):
        assert_close([1, 2, 3], [1, 2])
    with pytest.raises(AssertionError, match="forget to `return`"):
        assert_close(None, [1])
    with pytest.raises(AssertionError, match="NaN"):
        assert_close([np.nan], [1.0])
    with pytest.raises(AssertionError, match="expected numbers"):
        assert_close({"a": 1}, [1.0])


def test_hidden_hides_the_details() -> None:
    with pytest.raises(HiddenTestFailure) as info, hidden("conv2d"):
        assert_close([123.456], [654.321], name="secret")
    message = str(info.value)
    assert "conv2d" in message and "123" not in message and "654" not in message
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_hidden_passes_quietly() -> None:
    with hidden("part"):
        assert_close([1.0], [1.0])
