"""The kernel side of tamper-proof grading: record values, never decide.

When the course grades a submission, its test cells are rewritten (see
``autograder/recorded_checks.py``) so that every checked value is *recorded* here, one
JSON line per value, instead of being compared in the student's kernel.  A trusted
process compares the lines with those the solution produced.  Nothing here needs to
be trusted: a student who replaces this module can write any line they like, but only
the right values earn points, and the expected values never reach their kernel.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

RECORDS_DIR_ENV = "DLBOOK_RECORDS_DIR"


def encode(value: Any) -> dict:
    """A JSON-safe form of a checked value: numbers as a float array, anything else as text."""
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return {"text": str(value)[:10_000]}
    flat = [v if math.isfinite(v) else str(v) for v in array.ravel().tolist()]
    return {"shape": list(array.shape), "data": flat}


class Recorder:
    """Appends ``{"site": ..., "value": ...}`` lines for one notebook."""

    def __init__(self, notebook: str) -> None:
        folder = os.environ.get(RECORDS_DIR_ENV, ".")
        self.path = os.path.join(folder, f".dlbook-records-{notebook}.jsonl")

    def _write(self, site: str, value: Any) -> None:
        try:
            entry = {"site": site, "value": encode(value)}
        except Exception as err:  # noqa: BLE001 - a value that cannot even be read is recorded as such
            entry = {"site": site, "value": {"text": f"<unreadable: {type(err).__name__}>"}}
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")

    def record(self, site: str, actual: Any) -> None:
        """A hidden check: only the student's value is recorded."""
        self._write(site, actual)

    def check(self, site: str, actual: Any, expected: Any, **options: Any) -> None:
        """A visible check: recorded, then asserted here too so the student sees the message."""
        self._write(site, actual)
        from dlbook.checks import assert_close

        assert_close(actual, expected, **options)

    def require(self, site: str, condition: Any, message: Any = None) -> None:
        """A visible ``assert``: the truth value is recorded and asserted."""
        self._write(site, bool(condition))
        if not condition:
            raise AssertionError(message) if message is not None else AssertionError()
