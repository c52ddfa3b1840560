"""The trusted decision: a test cell passes when the student recorded the solution's values.

See :mod:`autograder.execution.test_rewrite` for how the test cells come to record them.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np



DEFAULT_TOLERANCE = (1e-5, 1e-6)  # dlbook.checks.assert_close's rtol, atol


EXACT = (0.0, 0.0)


@dataclass(frozen=True)
class Site:
    rtol: float
    atol: float


def _as_array(value: dict) -> np.ndarray | None:
    try:
        data = [float(v) for v in value["data"]]  # "nan"/"inf" strings become floats again
        return np.asarray(data, dtype=np.float64).reshape([int(d) for d in value["shape"]])
    except (KeyError, TypeError, ValueError, OverflowError):  # JSON integers can be too large for a float
        return None


def values_match(student: dict, reference: dict, site: Site) -> bool:
    if "text" in reference:
        return student.get("text") == reference["text"]
    want, got = _as_array(reference), _as_array(student)
    if want is None or got is None or want.shape != got.shape:
        return False
    if site.rtol == 0 and site.atol == 0:
        return bool(np.array_equal(got, want, equal_nan=True))
    finite = np.isfinite(want)
    if not np.array_equal(finite, np.isfinite(got)):
        return False
    return bool(np.allclose(got[finite], want[finite], rtol=site.rtol, atol=site.atol)
                and np.array_equal(got[~finite], want[~finite]))


def decide(sites: dict[str, Site], student: dict[str, list[dict]], reference: dict[str, list[dict]]) -> bool:
    """A test cell passes when the student recorded every reference value, in order, within tolerance."""
    if not any(reference.get(name) for name in sites):
        return False  # the solution recorded nothing here: never pass by default
    for name, site in sites.items():
        want, got = reference.get(name, []), student.get(name, [])
        if len(got) != len(want):
            return False
        if not all(values_match(g, w, site) for g, w in zip(got, want)):
            return False
    return True
