"""What a submission may use while it is graded: the grader's limits as one settings object.

The command line builds one :class:`Limits` (``grade --timeout --cell-timeout --memory-limit
--unsafe``, ``release --cell-timeout``); everything below takes it whole — the batch, the
course folders and the nbgrader settings written into them, the jobs sent to workers (local
or Dask), the workers and the reference-run cache — and reads the field it needs where it
is used.  The limits that are not settings (file size, open files, processes) are the
sandbox's own constants (:mod:`autograder.execution.sandbox`).
"""
from __future__ import annotations

from dataclasses import dataclass

GIB = 2**30


@dataclass(frozen=True)
class Limits:
    """How a submission is run: in the sandbox or not, and for how long and how much memory."""

    sandbox: bool = True  # kernels in bubblewrap (`grade --unsafe` turns it off, for tests of our own)
    cell_timeout: int = 120  # seconds one cell may run before it is interrupted
    submission_timeout: float = 900  # seconds one submission may take, all its notebooks together
    memory: int = 8 * GIB  # bytes of data per sandboxed process (and per submission, with a cgroup)

    def __post_init__(self) -> None:
        for name in ("cell_timeout", "submission_timeout", "memory"):
            if not getattr(self, name) > 0:  # NaN included
                raise BadLimits(f"the {name.replace('_', ' ')} must be positive, not {getattr(self, name)}")


class BadLimits(ValueError):
    """A limit that cannot be graded with (zero, negative)."""


DEFAULT = Limits()
