"""Grade a batch of submissions with nbgrader and write ``grades.csv``.

Each submission is autograded in its own nbgrader child process with a time limit, so a
broken or hostile notebook costs only its own row.  nbgrader's gradebook (``DIR/gradebook.db``)
stays the record: the CSV and the feedback pages are read back from it.
"""
from __future__ import annotations

import csv
import queue
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from autograder.assignments import GradedCell, graded_cells, source_notebooks, tracks
from autograder.feedback import write_feedback
from autograder.merge import copy_submission
from autograder.recorded_checks import Site, decide, notebook_sites, read_records, records_path
from autograder.sandbox import kernel_environment, write_kernelspec
from dlbook.recording import RECORDS_DIR_ENV
from autograder.nbgrader_run import CourseFolder
from autograder.submissions import Submission, discover

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


def _last_error_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
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


def _forget_earlier_attempt(course: CourseFolder, assignment: str, student: str) -> None:
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


def _execute(course: CourseFolder, assignment: str, student: str, files: dict[str, Path],
             timeout: float) -> tuple[subprocess.CompletedProcess, dict[str, dict[str, list[dict]]]]:
    """Autograde ``files`` as ``student``; return nbgrader's result and the recorded values."""
    _forget_earlier_attempt(course, assignment, student)
    target = course.root / "submitted" / student / assignment
    target.mkdir(parents=True)
    for name, path in files.items():
        shutil.copyfile(path, target / name)
    runtime_dir = course.root / "runtime"
    runtime_dir.mkdir(exist_ok=True)
    for stale in runtime_dir.glob(".dlbook-records-*.jsonl"):
        stale.unlink()
    env = {RECORDS_DIR_ENV: str(runtime_dir)}
    if course.sandbox:
        # The kernel may write only where nbgrader executes this student's notebook (and the
        # runtime folder holding its sockets and records).
        jupyter_dir = course.root / "jupyter"
        write_kernelspec(jupyter_dir, course.root / "autograded" / student / assignment, runtime_dir)
        env.update(kernel_environment(jupyter_dir, runtime_dir))
    result = course.run("autograde", assignment, f"--student={student}", "--force", timeout=timeout, env=env)
    records = {Path(name).stem: read_records(records_path(runtime_dir, Path(name).stem)) for name in files}
    return result, records


def run_reference(course: CourseFolder, root: Path, assignment: str, timeout: float) -> Reference:
    """Run the solution's own tests in the sandbox and keep what they recorded."""
    sources = {p.name: p for p in source_notebooks(root, assignment)}
    sites = {Path(name).stem: notebook_sites(nbformat.read(path, 4), Path(name).stem)
             for name, path in sources.items()}
    result, records = _execute(course, assignment, REFERENCE_ID, sources, timeout)
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
        _forget_earlier_attempt(course, assignment, REFERENCE_ID)
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


def _grade_one(course: CourseFolder, assignment: str, submission: Submission,
               cells: list[GradedCell], timeout: float, reference: Reference) -> GradeRow:
    row = GradeRow(submission.student_id, assignment,
                   max_score=sum(c.points for c in cells),
                   parts={c.grade_id: 0.0 for c in cells})
    if submission.problem:
        row.status = f"not graded: {submission.problem}"
        return row
    result, records = _execute(course, assignment, submission.student_id, submission.files, timeout)
    notes = list(submission.notes)
    if result.returncode != 0:
        if not any(records.values()):
            row.status = f"not graded: nbgrader failed ({_last_error_line(result.stderr)})"
            return row
        # The notebook died part way (os._exit, a crash, a time-out): the values recorded
        # before that still count; the rest scores nothing.
        notes.append(f"the notebook stopped early ({_last_error_line(result.stderr)}); "
                     "parts after that point score 0")
    _apply_decisions(course, assignment, submission.student_id, reference, records)
    try:
        row.parts = _scores_from_gradebook(course, assignment, submission.student_id, cells,
                                           {Path(name).stem for name in submission.files})
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


def write_csv(rows: list[GradeRow], cells: list[GradedCell], path: Path) -> None:
    columns = ["student_id", "assignment", "score", "max_score",
               *[c.grade_id for c in cells], "status"]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            parts = ["" if row.parts.get(c.grade_id) is None else f"{row.parts[c.grade_id]:g}"
                     for c in cells]
            writer.writerow([row.student_id, row.assignment, f"{row.score:g}",
                             f"{row.max_score:g}", *parts, row.status])


def _publish(main: CourseFolder, worker: CourseFolder, assignment: str, row: GradeRow) -> Path:
    """Bring a worker's result into the main course folder and gradebook (the single writer)."""
    _forget_earlier_attempt(main, assignment, row.student_id)
    if row.status.startswith("graded"):
        copy_submission(worker.db_path, main.db_path, assignment, row.student_id)
        for stage in ("submitted", "autograded"):
            folder = worker.root / stage / row.student_id / assignment
            if folder.is_dir():  # nbgrader deletes the autograded copy of a notebook that crashed
                shutil.copytree(folder, main.root / stage / row.student_id / assignment)
    return main.root / "autograded" / row.student_id / assignment


def grade_batch(root: Path, assignment: str, submissions_dir: Path, out_dir: Path,
                timeout: float = SUBMISSION_TIMEOUT_S, progress: Callable[[GradeRow], None] | None = None,
                workers: int = 1, sandbox: bool = True) -> list[GradeRow]:
    """Grade every submission in ``submissions_dir``; write the gradebook, CSV and feedback.

    ``workers`` submissions are graded at once, each worker in its own course folder with its
    own gradebook; finished submissions are copied into ``out_dir/gradebook.db`` by this
    process only, so SQLite never sees two writers.
    """
    notebooks = source_notebooks(root, assignment)
    alternatives = tracks(root, assignment)
    # With tracks a student submits one notebook: its cells are the columns and the maximum.
    cells = [cell for nb in (notebooks[:1] if alternatives else notebooks) for cell in graded_cells(nb)]
    out_dir.mkdir(parents=True, exist_ok=True)
    course = CourseFolder.create(out_dir / "course", out_dir / "gradebook.db",
                                 root / "solutions", assignment, sandbox)
    course.generate_assignment(assignment)
    submissions = discover(submissions_dir, assignment, [nb.name for nb in notebooks], alternatives)
    workers = max(1, min(workers, len(submissions) or 1))
    free: queue.Queue[CourseFolder] = queue.Queue()
    for k in range(workers):
        scratch = out_dir / "workers" / str(k)
        shutil.rmtree(scratch, ignore_errors=True)
        free.put(course.clone(scratch / "course", scratch / "gradebook.db", assignment))

    first = free.get()
    try:
        reference = run_reference(first, root, assignment, timeout)
    finally:
        free.put(first)

    def job(submission: Submission) -> tuple[GradeRow, CourseFolder]:
        worker = free.get()
        try:
            return _grade_one(worker, assignment, submission, cells, timeout, reference), worker
        except Exception:
            free.put(worker)
            raise

    rows: dict[int, GradeRow] = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(job, s): i for i, s in enumerate(submissions)}
        for future in as_completed(futures):
            index = futures[future]
            submission = submissions[index]
            try:
                row, worker = future.result()
            except Exception as err:  # a bug of ours must not lose the rest of the batch
                row, worker = GradeRow(submission.student_id, assignment,
                                       max_score=sum(c.points for c in cells),
                                       status=f"not graded: internal error ({err})"), None
            try:
                autograded = _publish(course, worker, assignment, row) if worker else None
                write_feedback(row, cells, autograded or course.root / "autograded" / row.student_id / assignment,
                               out_dir / "feedback" / f"{row.student_id}.html")
            except Exception as err:  # noqa: BLE001 - one row's bookkeeping must not stop the batch
                row.status = f"not graded: internal error while recording the result ({err})"
                row.score, row.parts = 0.0, {c.grade_id: 0.0 for c in cells}
            finally:
                if worker:
                    free.put(worker)  # always: a worker that is not returned would stall the batch
            rows[index] = row
            if progress:
                progress(row)
    shutil.rmtree(out_dir / "workers", ignore_errors=True)
    ordered = [rows[i] for i in range(len(submissions))]
    write_csv(ordered, cells, out_dir / "grades.csv")
    return ordered
