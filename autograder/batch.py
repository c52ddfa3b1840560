"""Grade a batch of submissions and write the gradebook, ``grades.csv`` and feedback pages.

The jobs (:mod:`autograder.execution.jobs`) run on ``workers`` local threads, or on a Dask
distributed cluster when a scheduler address is given.  Either way every result comes back
here as data and this process alone writes it into ``DIR/gradebook.db`` (nbgrader's
gradebook, the record that formgrader and ``nbgrader export`` read), so SQLite never sees
two writers.  A job that fails — a bug of ours, a lost Dask worker — costs only its row.
"""
from __future__ import annotations

import csv
import shutil
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import as_completed as futures_in_completion_order
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import nbformat
from nbgrader.api import Gradebook

from autograder.assignments import GradedCell, graded_cells, source_notebooks, tracks
from autograder.scoring.feedback import write_feedback
from autograder.execution.worker import forget_earlier_attempt
from autograder.scoring.score import GradeRow, Reference, empty_row, score
from autograder.execution.jobs import CourseSpec, Outcome, grade_job, reference_job, stop_workers
from autograder.scoring.gradebook import SubmissionRecord, write_submission
from autograder.execution.course_folder import CourseFolder
from autograder.limits import Limits
from autograder.submissions import Submission, discover, restore_grading_metadata
from autograder.execution import nbgrader_process as nbgrader_processes

TIMESTAMP_FILE = "timestamp.txt"
LATE_PENALTIES = ("none", "zero")  # nbgrader's LateSubmissionPlugin.penalty_method


def write_csv(rows: list[GradeRow], cells: list[GradedCell], path: Path) -> None:
    columns = ["student_id", "assignment", "score", "max_score",
               *[c.column for c in cells], "status"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            parts = ["" if row.parts.get(c.column) is None else f"{row.parts[c.column]:g}"
                     for c in cells]
            writer.writerow([row.student_id, row.assignment, f"{row.score:g}",
                             f"{row.max_score:g}", *parts, row.status])


def _publish(course: CourseFolder, row: GradeRow, record: SubmissionRecord | None,
             files_by_stage: dict[str, dict[str, bytes]]) -> Path:
    """Write a job's result into the main course folder and gradebook (the single writer)."""
    forget_earlier_attempt(course, row.assignment, row.student_id)
    if record is not None:
        write_submission(course.db_path, record)
    for stage, files in files_by_stage.items():
        folder = course.root / stage / row.student_id / row.assignment
        folder.mkdir(parents=True, exist_ok=True)
        for name, content in files.items():
            (folder / Path(name).name).write_bytes(content)
    return course.root / "autograded" / row.student_id / row.assignment


def _cancel_all(futures: Iterable[Future]) -> None:
    for future in futures:
        future.cancel()


class SchedulerUnavailable(RuntimeError):
    """``--scheduler`` names no reachable Dask scheduler."""


@dataclass
class _Runner:
    """Submits jobs to local threads or to a Dask cluster, and yields them as they finish."""

    submit: Callable[..., Any]
    completed: Callable[[Iterable[Any]], Iterator[Any]]
    cancel: Callable[[Iterable[Any]], Any]
    base: Path | None  # where slots live; None: each Dask worker's own folder
    spec: Any  # the CourseSpec, or its scattered Dask future


@contextmanager
def _runner(spec: CourseSpec, workers: int, scheduler: str | None, scratch: Path) -> Iterator[_Runner]:
    if scheduler is None:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            try:
                yield _Runner(pool.submit, futures_in_completion_order, _cancel_all, scratch, spec)
            finally:
                # Jobs still running (the batch ended early) finish before their workers go.
                pool.shutdown(wait=True, cancel_futures=True)
                stop_workers(spec.key())
                shutil.rmtree(scratch, ignore_errors=True)
        return
    from distributed import Client
    from distributed import as_completed as dask_in_completion_order

    try:
        client = Client(scheduler, set_as_default=False, timeout="30s")
    except (OSError, TimeoutError) as err:
        raise SchedulerUnavailable(f"cannot reach the Dask scheduler at {scheduler} ({err}); start one with "
                                   "`dask scheduler` and workers with `dask worker ADDRESS`") from err
    with client:
        # One copy of the course per Dask worker instead of one per job.
        shared = client.scatter(spec, broadcast=True, hash=False)

        def submit(fn: Callable[..., Any], *args: Any) -> Future:
            return client.submit(fn, *args, pure=False)

        def completed(futures: Iterable[Any]) -> Iterator[Any]:
            return iter(dask_in_completion_order(list(futures), loop=client.loop))

        try:
            yield _Runner(submit, completed, client.cancel, None, shared)
        finally:
            client.run(stop_workers, spec.key())


def grade_batch(root: Path, assignment: str, submissions_dir: Path, out_dir: Path,
                limits: Limits = Limits(), progress: Callable[[GradeRow], None] | None = None,
                workers: int = 1, scheduler: str | None = None,
                due_date: str | None = None, late_penalty: str = "none") -> list[GradeRow]:
    """Grade every submission in ``submissions_dir``; write the gradebook, CSV and feedback.

    ``workers`` submissions are graded at once on this machine, or, with ``scheduler`` (a
    Dask scheduler address), as many as the cluster's workers have threads.  ``limits`` says
    whether submissions run in the sandbox, and how long and with how much memory.

    ``due_date`` (nbgrader's format, e.g. ``2026-12-01 17:00:00 Europe/Berlin``) is the
    assignment's due date in the gradebook; a submission whose ``timestamp.txt`` is later is
    late, and ``late_penalty`` is nbgrader's ``LateSubmissionPlugin.penalty_method`` for it
    (``none``: only recorded; ``zero``: the notebook's score is the penalty).
    """
    if late_penalty not in LATE_PENALTIES:
        raise ValueError(f"late penalty {late_penalty!r}: nbgrader knows {', '.join(LATE_PENALTIES)}")
    due = _parse_due_date(due_date)
    notebooks = source_notebooks(root, assignment)
    alternatives = tracks(root, assignment)
    # With tracks a student submits one notebook: its cells are the columns and the maximum.
    cells = ([replace(cell, notebook="") for cell in graded_cells(notebooks[0])] if alternatives
             else [cell for nb in notebooks for cell in graded_cells(nb)])
    shared = {c.grade_id for c in cells if sum(o.grade_id == c.grade_id for o in cells) > 1}
    cells = [replace(c, qualified=True) if c.grade_id in shared else c for c in cells]  # one column each
    submissions = discover(submissions_dir, assignment, [nb.name for nb in notebooks], alternatives)
    workers = max(1, min(workers, len(submissions) or 1))
    # nbgrader processes for the local workers start importing now; the first generates the assignment.
    nbgrader_processes.prestart(workers if scheduler is None else 1)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        course = CourseFolder.create(out_dir / "course", out_dir / "gradebook.db",
                                     root / "solutions", assignment, limits)
        generator = nbgrader_processes.take()
        try:
            generator.generate_assignment(course.root, assignment)
        finally:
            nbgrader_processes.give_back(generator)
        if due is not None:
            with Gradebook(f"sqlite:///{course.db_path}") as gradebook:
                gradebook.update_or_create_assignment(assignment, duedate=due)
        spec = CourseSpec.of(course, assignment)
        # What the students received (nbgrader's release, checksums included): the metadata to restore.
        released = {path.name: nbformat.read(course.root / "release" / assignment / path.name, 4)
                    for path in notebooks}
        writer = _Writer(course, assignment, cells, out_dir, progress, due, late_penalty)
        with _runner(spec, workers, scheduler, out_dir / "workers") as run:
            rows = _grade_all(run, writer, submissions, released)
    finally:
        nbgrader_processes.stop_spares()
    ordered = [rows[i] for i in range(len(submissions))]
    write_csv(ordered, cells, out_dir / "grades.csv")
    return ordered


def _grade_all(run: _Runner, writer: "_Writer", submissions: list[Submission],
               released: dict[str, nbformat.NotebookNode]) -> dict[int, GradeRow]:
    """Submit every job, then record the results as they come (the reference first)."""
    rows: dict[int, GradeRow] = {}
    notes: dict[int, list[str]] = {}
    # The reference runs alongside the first submissions; their points are decided here,
    # in the writer, once it is known.
    reference_future = run.submit(reference_job, run.spec, run.base)
    futures = {}
    for index, submission in enumerate(submissions):
        if submission.problem:
            rows[index] = writer.finish(writer.empty(submission.student_id, submission.problem))
            continue
        files, notes[index] = _prepared(submission, released)
        futures[run.submit(grade_job, run.spec, run.base, submission.student_id, files)] = index
    reference: Reference | None = None
    waiting: list[Future] = []
    try:
        for future in run.completed([reference_future, *futures]):
            if future is reference_future:
                reference = future.result()  # ReferenceFailed ends the batch
                ready, waiting = waiting, []
            elif reference is None:
                waiting.append(future)
                continue
            else:
                ready = [future]
            for done in ready:
                index = futures[done]
                rows[index] = writer.scored(done, reference, submissions[index].student_id, notes[index])
    except BaseException:
        run.cancel(futures)
        raise
    return rows


class BadDueDate(ValueError):
    """``--due-date`` is not a date nbgrader reads."""


def _parse_due_date(text: str | None) -> datetime | None:
    """A due date in nbgrader's format as naive UTC (as its gradebook keeps it)."""
    if not text:
        return None
    from nbgrader.utils import parse_utc

    try:
        return parse_utc(text)
    except (ValueError, TypeError, OverflowError) as err:
        raise BadDueDate(f"due date {text!r} is not a date nbgrader reads (e.g. '2026-12-01 17:00:00 UTC'): {err}")


def _late(row: GradeRow, record: SubmissionRecord, due: datetime, method: str) -> None:
    """Apply nbgrader's late submission penalty (its own plugin) to a scored row and its record."""
    from nbgrader.plugins import LateSubmissionPlugin

    late = max(0.0, (record.timestamp - due).total_seconds()) if record.timestamp is not None else 0.0
    if late <= 0:
        return
    plugin = LateSubmissionPlugin(penalty_method=method)
    scores: dict[str, float] = {}
    for grade in record.grades:
        base = grade.manual if grade.manual is not None else grade.auto
        scores[grade.notebook] = scores.get(grade.notebook, 0.0) + (base or 0.0) + (grade.extra or 0.0)
    penalties = {notebook: plugin.late_submission_penalty(row.student_id, score, late)
                 for notebook, score in scores.items()}
    record.penalties = penalties
    total = sum(p for p in penalties.values() if p is not None)
    row.score -= total
    hours, minutes = divmod(int(late) // 60, 60)
    note = (f"late by {hours} h {minutes} min (submitted {record.timestamp:%Y-%m-%d %H:%M:%S} UTC, due "
            f"{due:%Y-%m-%d %H:%M:%S} UTC): " + (f"penalty {total:g} (late penalty '{method}')" if total
                                                 else f"no penalty (late penalty '{method}')"))
    row.notes.append(note)


def _prepared(submission: Submission, released: dict[str, nbformat.NotebookNode]
              ) -> tuple[dict[str, bytes], list[str]]:
    """The student's notebooks as sent to grading, with edited grading metadata undone."""
    files, notes = {}, list(submission.notes)
    for name, path in submission.files.items():
        files[name], undone, restored = restore_grading_metadata(path.read_bytes(), released[name])
        if undone:
            notes.append(f"edited grading metadata undone in {len(undone)} cell(s)")
        if restored:
            notes.append(f"missing locked cell(s) restored and run: {', '.join(restored)}")
    if submission.timestamp is not None:  # nbgrader's autograde reads it and records when it was submitted
        files[TIMESTAMP_FILE] = submission.timestamp.encode("utf-8")
    return files, notes


@dataclass
class _Writer:
    """The batch's single writer: decides each result's points and records them."""

    course: CourseFolder
    assignment: str
    cells: list[GradedCell]
    out_dir: Path
    progress: Callable[[GradeRow], None] | None
    due: datetime | None = None  # the assignment's due date (UTC), for timestamp.txt
    late_penalty: str = "none"

    def empty(self, student: str, problem: str) -> GradeRow:
        return empty_row(student, self.assignment, self.cells, problem)

    def scored(self, future: Any, reference: Reference, student: str, notes: list[str]) -> GradeRow:
        """Decide one finished job's points against ``reference`` and record them."""
        try:
            outcome: Outcome = future.result()
            row, record = score(outcome.execution, reference, self.assignment, self.cells, notes,
                                self.course.limits.sandbox)
            if record is not None and self.due is not None:
                _late(row, record, self.due, self.late_penalty)
            files = outcome.files
        except Exception as err:  # noqa: BLE001 - a bug of ours or a lost worker costs one row
            problem = f"internal error ({type(err).__name__}: {err})"
            row, record, files = self.empty(student, problem), None, {}
        return self.finish(row, record, files)

    def finish(self, row: GradeRow, record: SubmissionRecord | None = None,
               files: dict[str, dict[str, bytes]] | None = None) -> GradeRow:
        try:
            autograded = _publish(self.course, row, record, files or {})
            write_feedback(row, self.cells, autograded, self.out_dir / "feedback" / f"{row.student_id}.html")
        except Exception as err:  # noqa: BLE001 - one row's bookkeeping must not stop the batch
            row.graded, row.problem = False, f"internal error while recording the result ({err})"
            row.score, row.parts = 0.0, {c.column: 0.0 for c in self.cells}
        if self.progress:
            self.progress(row)
        return row
