"""Grading jobs that run alike in a local thread (``--workers``) and on a Dask worker (``--scheduler``).

A job carries what it needs as plain data — the assignment's source files, the gradebook
made by ``generate_assignment`` (:class:`CourseSpec`), the student's notebook bytes — and
returns plain data: the row, the gradebook entries, the autograded notebooks
(:class:`Outcome`).  A Dask worker on another machine therefore needs this package and
bubblewrap installed, but no course folder or repository; and only the batch's own process
ever writes the main gradebook.

Each process (the ``grade`` command, or a Dask worker) keeps a pool of :class:`Worker`
slots per course: a private course folder with a long-lived nbgrader process, made on first
use and reused by later jobs, so a submission pays neither a Python start nor a copy of
the course.  A thread takes a slot for the length of one job.
"""
from __future__ import annotations

import hashlib
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from autograder import reference_cache
from autograder.execution.worker import Worker, forget_earlier_attempt, run_reference, run_submission
from autograder.scoring.score import Execution, Reference
from autograder.execution.course_folder import CourseFolder
from autograder.limits import Limits

MAX_RETURNED_NOTEBOOK = 20 * 2**20  # an autograded notebook larger than this is not sent back


@dataclass(frozen=True)
class CourseSpec:
    """One assignment's course, as data: its source files and its generated gradebook."""

    assignment: str
    sources: tuple[tuple[str, bytes], ...]  # path under source/<assignment> → content
    gradebook: bytes
    limits: Limits  # how every job of the course runs (the course folder's)

    @classmethod
    def of(cls, course: CourseFolder, assignment: str) -> "CourseSpec":
        folder = course.root / "source" / assignment
        sources = tuple((p.relative_to(folder).as_posix(), p.read_bytes())
                        for p in sorted(folder.rglob("*")) if p.is_file())
        return cls(assignment, sources, course.db_path.read_bytes(), course.limits)

    def key(self) -> str:
        """Identifies the course's worker slots: jobs of the same course and limits share them."""
        limits = self.limits
        digest = hashlib.sha256(f"{self.assignment}\0{limits.sandbox}\0{limits.memory}\0{limits.cell_timeout}\0"
                                f"{limits.submission_timeout}".encode())
        for name, content in self.sources:
            digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
        digest.update(hashlib.sha256(self.gradebook).digest())
        return digest.hexdigest()

    def notebooks(self) -> dict[str, bytes]:
        return {name: content for name, content in self.sources if "/" not in name and name.endswith(".ipynb")}

    def materialise(self, root: Path) -> CourseFolder:
        """Write this course into the empty folder ``root`` (its nbgrader_config.py is the worker's)."""
        for name, content in self.sources:
            path = root / "source" / self.assignment / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        db_path = root.parent / f"{root.name}.gradebook.db"
        db_path.write_bytes(self.gradebook)
        return CourseFolder(root.resolve(), db_path.resolve(), self.limits)


_lock = threading.Lock()
_idle: dict[str, list[Worker]] = {}
_made: dict[str, list[Worker]] = {}


def _dask_worker_folder() -> Path:
    from distributed import get_worker

    return Path(get_worker().local_directory) / "dlbook-grading"


@contextmanager
def _slot(spec: CourseSpec, base: Path | None) -> Iterator[Worker]:
    """A worker slot of this process for ``spec``, made in ``base`` (a Dask worker's folder if None)."""
    key = spec.key()
    with _lock:
        idle = _idle.setdefault(key, [])
        worker = idle.pop() if idle else None
        number = len(_made.setdefault(key, []))
        if worker is None:
            _made[key].append(None)  # type: ignore[arg-type]  # reserves the number
    if worker is None:
        root = (base or _dask_worker_folder()) / f"{key[:12]}-{number}"
        shutil.rmtree(root, ignore_errors=True)
        worker = Worker.start(spec.materialise(root))
        with _lock:
            _made[key][number] = worker
    try:
        yield worker
    finally:
        with _lock:
            _idle[key].append(worker)


def stop_workers(key: str) -> int:
    """End this process's slots for the course ``key`` and delete their folders; returns how many."""
    with _lock:
        workers = [w for w in _made.pop(key, []) if w is not None]
        _idle.pop(key, None)
    errors = []
    for worker in workers:
        try:
            worker.stop()
        except Exception as err:  # noqa: BLE001 - stop the others (their processes, cgroups) first
            errors.append(err)
    if errors:
        raise errors[0]
    return len(workers)


def reference_job(spec: CourseSpec, base: Path | None) -> Reference:
    """Run the solution in a slot; raises :class:`~autograder.execution.worker.ReferenceFailed`."""
    # Kept between runs only when grading in the sandbox (see autograder/reference_cache.py).
    cache_key = reference_cache.key(spec.assignment, spec.sources, spec.limits) if spec.limits.sandbox else None
    with _slot(spec, base) as worker:
        return run_reference(worker, spec.assignment, spec.notebooks(), cache_key)


@dataclass
class Outcome:
    """What a grading job sends back to the batch's single writer (which decides the points)."""

    execution: Execution
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # stage → notebook name → content


def grade_job(spec: CourseSpec, base: Path | None, student: str, files: dict[str, bytes]) -> Outcome:
    """Run one student's notebooks in a slot and return what they recorded, as data."""
    with _slot(spec, base) as worker:
        try:
            execution = run_submission(worker, spec.assignment, student, files)
            if execution.record is None:
                return Outcome(execution)
            stages: dict[str, dict[str, bytes]] = {}
            for stage in ("submitted", "autograded"):
                folder = worker.course.root / stage / student / spec.assignment
                # Only the notebooks we graded: whatever else the student's code wrote stays behind.
                stages[stage] = {name: (folder / name).read_bytes() for name in files if (folder / name).is_file()
                                 and (folder / name).stat().st_size <= MAX_RETURNED_NOTEBOOK}
            return Outcome(execution, stages)
        finally:
            forget_earlier_attempt(worker.course, spec.assignment, student)  # the slot keeps nobody's work
