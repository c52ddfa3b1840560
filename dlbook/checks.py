"""Assertions used by assignment tests.

Tests compare *values*: results are turned into NumPy arrays first, so the same
test serves a NumPy, a PyTorch and a Keras answer.  Messages say what differs
(shape, how many values, the worst one) so a student knows where to look.

Hidden tests run inside :func:`hidden`, which replaces whatever went wrong with
a message that reveals nothing about the hidden inputs or expected values.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator

import numpy as np


class HiddenTestFailure(AssertionError):
    """Raised for a failed hidden test; carries no detail on purpose."""


def to_numpy(value: Any) -> np.ndarray:
    """Convert a NumPy/PyTorch/TensorFlow value (or nested lists) to a float64 array."""
    if hasattr(value, "detach"):  # torch.Tensor, possibly requiring grad or on a GPU
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tf.Tensor / Variable
        value = value.numpy()
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise AssertionError(
            f"expected numbers (an array or tensor), got {type(value).__name__}: {err}"
        ) from None


def assert_close(
    actual: Any, expected: Any, *, name: str = "result", rtol: float = 1e-5, atol: float = 1e-6
) -> None:
    """Assert that ``actual`` has ``expected``'s shape and values within the tolerances."""
    if actual is None:
        raise AssertionError(f"{name} is None: did the function forget to `return` its result?")
    got, want = to_numpy(actual), to_numpy(expected)
    if got.shape != want.shape:
        raise AssertionError(f"{name} has shape {got.shape}, expected {want.shape}")
    if not np.all(np.isfinite(got)):
        raise AssertionError(f"{name} contains NaN or infinite values")
    close = np.isclose(got, want, rtol=rtol, atol=atol)
    if close.all():
        return
    error = np.abs(got - want)
    worst = np.unravel_index(int(np.argmax(np.where(close, -1, error))), got.shape)
    raise AssertionError(
        f"{name}: {int((~close).sum())} of {got.size} values differ; the worst at index "
        f"{tuple(int(i) for i in worst)} is {got[worst]:.6g}, expected {want[worst]:.6g} "
        f"(rtol={rtol:g}, atol={atol:g})"
    )


@contextlib.contextmanager
def hidden(part: str) -> Iterator[None]:
    """Run hidden tests; any failure becomes a detail-free :class:`HiddenTestFailure`."""
    try:
        yield
    except Exception:  # noqa: BLE001 - every failure is reported the same way on purpose
        failure = HiddenTestFailure(
            f"{part}: the visible tests pass but a hidden test with other shapes or values "
            "fails. Check your code for cases the visible tests do not cover."
        )
    else:
        return
    raise failure from None
