"""Grade one submission in a worker's course folder: run it, then decide what it earned.

A :class:`Worker` is a private nbgrader course folder plus the long-lived nbgrader process
that autogrades in it (:mod:`autograder.worker`); the student's kernel runs in the sandbox.
The test cells only *record* values; :func:`grade_submission` compares them with the
values the solution recorded in :func:`run_reference` and writes the points into the
worker's gradebook.  Batches, parallel and distributed, are :mod:`autograder.batch`.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from autograder.assignments import GradedCell
from autograder.cgroups import CgroupsUnavailable, WorkerCgroup, check_cgroups
from autograder.recorded_checks import Site, decide, notebook_sites, read_records, records_path
from autograder.sandbox import MEMORY_LIMIT, kernel_environment, write_kernelspec
from autograder.worker import AutogradeWorker
from dlbook.recording import RECORDS_DIR_ENV
from autograder.nbgrader_run import CourseFolder

SUBMISSION_TIMEOUT_S = 900
REFERENCE_ID = "_reference-solution"  # not a valid student id, so never a real student


@dataclass
class GradeRow:
    student_id: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    parts: dict[str, float | None] = field(default_factory=dict)
    status: str = ""


# nbgrader's summary lines say only that something failed; the cause is the line before.
_GENERIC = ("Please see the the above traceback", "There was an error processing", "NbGraderException")


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines()
             if line.strip() and not any(generic in line for generic in _GENERIC)]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1][:300]


def _scores_from_gradebook(course: CourseFolder, assignment: str, student: str,
                           cells: list[GradedCell], notebooks: set[str]) -> dict[str, float | None]:
    with Gradebook(f"sqlite:///{course.db_path}") as gradebook:
        submission = gradebook.find_submission(assignment, student)
        # Only the notebooks the student submitted: with tracks, the other track's
        # notebook has the same grade ids (all zero) and must not shadow them.
        grades = {grade.name: grade for nb in submission.notebooks if nb.name in notebooks
                  for grade in nb.grades}
    parts: dict[str, float | None] = {}
    for cell in cells:
        grade = grades.get(cell.grade_id)
        if grade is None or (cell.kind == "manual" and grade.manual_score is None):
            parts[cell.grade_id] = None  # not graded yet (written answers wait for a person)
        else:
            parts[cell.grade_id] = float(grade.score)
    return parts


def forget_earlier_attempt(course: CourseFolder, assignment: str, student: str) -> None:
    """Regrading starts clean: a failed run must not leave an earlier run's scores behind."""
    for stage in ("submitted", "autograded"):
        shutil.rmtree(course.root / stage / student / assignment, ignore_errors=True)
    with Gradebook(f"sqlite:///{course.db_path}") as gradebook:
        try:
            gradebook.remove_submission(assignment, student)
        except MissingEntry:
            pass


@dataclass
class Reference:
    """What the solution recorded in the reference run, and each test cell's recording sites."""

    records: dict[str, dict[str, list[dict]]]  # notebook -> site -> values
    sites: dict[str, dict[str, dict[str, Site]]]  # notebook -> test grade id -> sites


class ReferenceFailed(RuntimeError):
    """The instructor's solution does not pass its own tests in the grading sandbox."""


@dataclass
class Worker:
    """One grading worker: a private course folder and the nbgrader process that grades in it."""

    course: CourseFolder
    autograder: AutogradeWorker
    runtime_dir: Path  # the kernel's sockets and recorded values
    memory_limit: int = MEMORY_LIMIT  # bytes per sandboxed process (and per submission, with a cgroup)
    cgroup: WorkerCgroup | None = None  # holds the sandbox of each submission, where cgroups can be made

    @classmethod
    def start(cls, course: CourseFolder, memory_limit: int = MEMORY_LIMIT) -> "Worker":
        # Unix socket paths are limited to about 100 bytes, so the sockets live in a short
        # private folder, not under a course folder that may be nested deeply.
        runtime_dir = Path(tempfile.mkdtemp(prefix="dlbook-grading-"))
        course = CourseFolder.configure(course.root, course.db_path, course.sandbox, runtime_dir)
        env = {RECORDS_DIR_ENV: str(runtime_dir)}
        cgroup = None
        if course.sandbox:
            env.update(kernel_environment(course.root / "jupyter", runtime_dir))
            if check_cgroups() is None:
                try:
                    cgroup = WorkerCgroup.create(memory_limit)
                except CgroupsUnavailable:
                    pass  # the per-process limits still hold
        return cls(course, AutogradeWorker(course.root, env), runtime_dir, memory_limit, cgroup)

    def stop(self) -> None:
        """End the nbgrader process (and any kernel) and delete the worker's folders."""
        self.autograder.stop()
        if self.cgroup is not None:
            self.cgroup.remove()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        shutil.rmtree(self.course.root, ignore_errors=True)
        self.course.db_path.unlink(missing_ok=True)


def _execute(worker: Worker, assignment: str, student: str, files: dict[str, bytes],
             timeout: float) -> tuple[subprocess.CompletedProcess, dict[str, dict[str, list[dict]]]]:
    """Autograde ``files`` as ``student``; return nbgrader's result and the recorded values."""
    course = worker.course
    forget_earlier_attempt(course, assignment, student)
    target = course.root / "submitted" / student / assignment
    target.mkdir(parents=True)
    for name, content in files.items():
        (target / name).write_bytes(content)
    runtime_dir = worker.runtime_dir
    for stale in runtime_dir.glob(".dlbook-records-*.jsonl"):
        stale.unlink()
    if course.sandbox:
        # The kernel may write only where nbgrader executes this student's notebook (and the
        # runtime folder holding its sockets and records).
        write_kernelspec(course.root / "jupyter", course.root / "autograded" / student / assignment, runtime_dir,
                         worker.memory_limit, worker.cgroup.enter_command() if worker.cgroup else None)
    try:
        result = worker.autograder.autograde(assignment, student, timeout)
    finally:
        if worker.cgroup is not None:  # nothing of this submission may run on into the next one
            worker.cgroup.kill_all()
    records = {Path(name).stem: read_records(records_path(runtime_dir, Path(name).stem)) for name in files}
    return result, records


def run_reference(worker: Worker, assignment: str, sources: dict[str, bytes], timeout: float) -> Reference:
    """Run the solution notebooks ``sources`` with their own tests in the sandbox; keep what they recorded."""
    sites = {Path(name).stem: notebook_sites(nbformat.reads(content.decode("utf-8"), 4), Path(name).stem)
             for name, content in sources.items()}
    course = worker.course
    result, records = _execute(worker, assignment, REFERENCE_ID, sources, timeout)
    try:
        if result.returncode != 0:
            raise ReferenceFailed(f"the solution of {assignment} could not be run in the grading sandbox: "
                                  f"{_last_error_line(result.stderr)}")
        problems = [f"{nb}:{grade_id}" for nb, cells in sites.items() for grade_id, cell_sites in cells.items()
                    if not decide(cell_sites, records[nb], records[nb])]
        if problems:
            raise ReferenceFailed(f"the solution of {assignment} records no value in {', '.join(problems)}: "
                                  "each test cell needs at least one assert_close (or assert ... == ...)")
        with Gradebook(f"sqlite:///{course.db_path}") as gradebook:
            submission = gradebook.find_submission(assignment, REFERENCE_ID)
            failing = [f"{nb.name}:{g.name}" for nb in submission.notebooks for g in nb.grades
                       if g.cell_type == "code" and g.auto_score is not None and g.auto_score < g.max_score]
        if failing:
            raise ReferenceFailed(f"the solution of {assignment} fails its own tests: {', '.join(failing)}")
    finally:
        forget_earlier_attempt(course, assignment, REFERENCE_ID)
    return Reference(records, sites)


def _apply_decisions(course: CourseFolder, assignment: str, student: str, reference: Reference,
                     records: dict[str, dict[str, list[dict]]]) -> None:
    """Write the trusted pass/fail of every test cell into the gradebook, replacing nbgrader's."""
    with Gradebook(f"sqlite:///{course.db_path}") as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:  # the kernel crashed and nbgrader kept nothing: start from its cells
            gradebook.update_or_create_student(student)
            submission = gradebook.add_submission(assignment, student)
        for notebook in submission.notebooks:
            if notebook.name not in records:
                continue
            for grade in notebook.grades:
                cell_sites = reference.sites[notebook.name].get(grade.name)
                if cell_sites is None:
                    continue
                passed = decide(cell_sites, records[notebook.name], reference.records[notebook.name])
                grade.auto_score = grade.max_score if passed else 0.0
                grade.needs_manual_grade = False
        gradebook.db.commit()


def empty_row(student: str, assignment: str, cells: list[GradedCell], status: str = "") -> GradeRow:
    return GradeRow(student, assignment, max_score=sum(c.points for c in cells),
                    parts={c.grade_id: 0.0 for c in cells}, status=status)


def grade_submission(worker: Worker, assignment: str, student: str, files: dict[str, bytes], notes: list[str],
                     cells: list[GradedCell], timeout: float, reference: Reference) -> GradeRow:
    """Autograde one student's notebooks ``files`` (name → content) and score them against ``reference``."""
    row = empty_row(student, assignment, cells)
    course = worker.course
    result, records = _execute(worker, assignment, student, files, timeout)
    notes = list(notes)
    if result.returncode != 0:
        if not any(records.values()):
            row.status = f"not graded: nbgrader failed ({_last_error_line(result.stderr)})"
            return row
        # The notebook died part way (os._exit, a crash, a time-out): the values recorded
        # before that still count; the rest scores nothing.
        notes.append(f"the notebook stopped early ({_last_error_line(result.stderr)}); "
                     "parts after that point score 0")
    _apply_decisions(course, assignment, student, reference, records)
    try:
        row.parts = _scores_from_gradebook(course, assignment, student, cells, {Path(name).stem for name in files})
    except MissingEntry:
        row.status = "not graded: nbgrader recorded no grades"
        return row
    row.score = sum(v for v in row.parts.values() if v is not None)
    pending = [c.grade_id for c in cells if row.parts[c.grade_id] is None]
    if not course.sandbox:
        notes.append("UNSANDBOXED: graded with --unsafe")
    if pending:
        notes.append(f"awaiting manual grading: {', '.join(pending)}")
    row.status = "graded" + (f" ({'; '.join(notes)})" if notes else "")
    return row
