"""Grade one submission in a worker's course folder: run it, then decide what it earned.

A :class:`Worker` is a private nbgrader course folder plus the long-lived nbgrader process
that autogrades in it (:mod:`autograder.worker`); the student's kernel runs in the sandbox.
The test cells only *record* values: :func:`run_submission` runs a student's notebooks and
returns what they recorded with nbgrader's gradebook entries (an :class:`Execution`), and
:func:`score` — run by the batch's writer, never by a process that runs student code —
compares those values with what the solution recorded in :func:`run_reference` and sets
the points.  Batches, parallel and distributed, are :mod:`autograder.batch`.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from fnmatch import fnmatch
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from autograder.assignments import GradedCell
from autograder.merge import SubmissionRecord, read_submission
from autograder.preprocessors import INTERRUPT_MARKER, RESTART_MARKER
from autograder.cgroups import CgroupsUnavailable, WorkerCgroup, check_cgroups
from autograder.recorded_checks import (RECORDS_FOLDER, UNREWRITTEN_RUNS, Site, completed, decide, notebook_sites, read_records,
                                        records_path)
from autograder.sandbox import MEMORY_LIMIT, kernel_environment, write_kernelspec
from autograder.worker import NbgraderProcess
from autograder.worker import take as take_nbgrader_process
from dlbook.recording import RECORDS_DIR_ENV
from autograder.nbgrader_run import CourseFolder

REFERENCE_ID = "_reference-solution"  # not a valid student id, so never a real student
TESTS_AS_WRITTEN_ID = UNREWRITTEN_RUNS[0]  # the solution's run with the tests as written (idem)


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
    nbgrader: NbgraderProcess
    runtime_dir: Path  # the kernel's sockets and recorded values
    env: dict[str, str]  # set in the nbgrader process: where kernels, sockets and records are
    workdir: Path  # the sandboxed kernel's working folder, emptied for every notebook run
    memory_limit: int = MEMORY_LIMIT  # bytes per sandboxed process (and per submission, with a cgroup)
    cgroup: WorkerCgroup | None = None  # holds the sandbox of each submission, where cgroups can be made

    @classmethod
    def start(cls, course: CourseFolder, memory_limit: int = MEMORY_LIMIT) -> "Worker":
        # Unix socket paths are limited to about 100 bytes, so the sockets live in a short
        # private folder, not under a course folder that may be nested deeply.
        runtime_dir = Path(tempfile.mkdtemp(prefix="dlbook-grading-"))
        workdir = Path(tempfile.mkdtemp(prefix="dlbook-work-"))
        course = CourseFolder.configure(course.root, course.db_path, course.sandbox, runtime_dir, course.cell_timeout)
        env = {RECORDS_DIR_ENV: str(runtime_dir)}
        cgroup = None
        if course.sandbox:
            env.update(kernel_environment(course.root / "jupyter", runtime_dir))
            if check_cgroups() is None:
                try:
                    cgroup = WorkerCgroup.create(memory_limit)
                except CgroupsUnavailable:
                    pass  # the per-process limits still hold
        return cls(course, take_nbgrader_process(), runtime_dir, env, workdir, memory_limit, cgroup)

    def stop(self) -> None:
        """End the nbgrader process (and any kernel) and delete the worker's folders."""
        self.nbgrader.stop()
        if self.cgroup is not None:
            self.cgroup.remove()
        shutil.rmtree(self.runtime_dir, ignore_errors=True)
        shutil.rmtree(self.workdir, ignore_errors=True)
        shutil.rmtree(self.course.root, ignore_errors=True)
        self.course.db_path.unlink(missing_ok=True)


# nbgrader's default `CourseDirectory.ignore`: files it never copies into a student's folder.
_IGNORED = (".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback")


def _new_workdir(worker: Worker, assignment: str) -> Path:
    """A new, private working folder for one run's sandboxed kernel, with the assignment's public files.

    nbgrader executes a notebook in ``autograded/<student>/<assignment>/``, where the notebook
    being executed already holds the test cells restored from the gradebook, hidden tests
    included: the kernel must never see that folder.  It works in this one instead, which
    holds only what the release gave every student (the source folder's files other than
    notebooks, as nbgrader copies them) and is deleted after the run.
    """
    workdir = Path(tempfile.mkdtemp(prefix="run-", dir=worker.workdir))
    source = worker.course.root / "source" / assignment
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if (path.is_file() and path.suffix != ".ipynb"
                and not any(fnmatch(part, pattern) for part in relative.parts for pattern in _IGNORED)):
            (workdir / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, workdir / relative)
    return workdir


def _remove_tree(folder: Path) -> None:
    """Delete ``folder`` even where student code took away permissions inside it."""
    def allow_and_retry(function, path, _error) -> None:
        try:
            os.chmod(os.path.dirname(path), 0o700)
            if os.path.isdir(path) and not os.path.islink(path):
                os.chmod(path, 0o700)
            function(path)
        except OSError:
            pass
    shutil.rmtree(folder, onerror=allow_and_retry)


def _empty_folder(folder: Path) -> None:
    """Delete what ``folder`` holds (a former run's sockets, records or planted files)."""
    folder.mkdir(parents=True, exist_ok=True)
    for entry in folder.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            _remove_tree(entry)
        else:
            entry.unlink(missing_ok=True)


def _execute(worker: Worker, assignment: str, student: str, files: dict[str, bytes],
             timeout: float) -> tuple[subprocess.CompletedProcess, dict[str, dict[str, list[dict]]]]:
    """Autograde ``files`` as ``student``; return nbgrader's result and the recorded values.

    The values are those that :class:`~autograder.preprocessors.BoundedExecute` (in the
    nbgrader process) kept for each test cell that ran to the end, in a folder of the
    course that the kernel cannot see.
    """
    course = worker.course
    forget_earlier_attempt(course, assignment, student)
    target = course.root / "submitted" / student / assignment
    target.mkdir(parents=True)
    for name, content in files.items():
        (target / name).write_bytes(content)
    runtime_dir = worker.runtime_dir
    _empty_folder(runtime_dir)
    records_dir = course.root / RECORDS_FOLDER
    _empty_folder(records_dir)
    workdir = None
    if course.sandbox:
        # The kernel may write only in a private working folder of its own (and the runtime
        # folder holding its sockets and the values its test cells record).
        workdir = _new_workdir(worker, assignment)
        write_kernelspec(course.root / "jupyter", workdir, runtime_dir,
                         worker.memory_limit, worker.cgroup.enter_command() if worker.cgroup else None)
    try:
        result = worker.nbgrader.autograde(course.root, worker.env, assignment, student, timeout)
    finally:
        if worker.cgroup is not None:  # nothing of this submission may run on into the next one
            worker.cgroup.kill_all()
        if workdir is not None:
            _remove_tree(workdir)
        _empty_folder(runtime_dir)
    records = {Path(name).stem: read_records(records_path(records_dir, Path(name).stem)) for name in files}
    return result, records


def _failing_tests(course: CourseFolder, assignment: str, student: str) -> list[str]:
    """``notebook:grade_id (what it raised)`` for each test cell nbgrader gave less than full points."""
    with Gradebook(f"sqlite:///{course.db_path}") as gradebook:
        submission = gradebook.find_submission(assignment, student)
        failing = [(nb.name, g.name) for nb in submission.notebooks for g in nb.grades
                   if g.cell_type == "code" and g.auto_score is not None and g.auto_score < g.max_score]
    described = []
    for notebook, grade_id in failing:
        path = course.root / "autograded" / student / assignment / f"{notebook}.ipynb"
        errors = []
        try:
            cell = next(c for c in nbformat.read(path, 4).cells
                        if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
            errors = [f"{o.get('ename')}: {o.get('evalue')}"[:200] for o in cell.get("outputs", [])
                      if o.get("output_type") == "error"]
        except (OSError, StopIteration, ValueError):
            pass
        described.append(f"{notebook}:{grade_id}" + (f" ({errors[0]})" if errors else ""))
    return described


def run_reference(worker: Worker, assignment: str, sources: dict[str, bytes], timeout: float) -> Reference:
    """Run the solution notebooks ``sources`` with their own tests in the sandbox; keep what they recorded.

    Twice: first with the tests as the instructor wrote them, expected values (hidden ones
    included) checked in the kernel as plain nbgrader would, so a solution that fails any of
    them stops grading instead of becoming the measure of right; then with the recording
    tests that students' notebooks run, whose values are the reference.
    """
    sites = {Path(name).stem: notebook_sites(nbformat.reads(content.decode("utf-8"), 4), Path(name).stem)
             for name, content in sources.items()}
    course = worker.course
    result, _ = _execute(worker, assignment, TESTS_AS_WRITTEN_ID, sources, timeout)
    try:
        if result.returncode != 0:
            raise ReferenceFailed(f"the solution of {assignment} could not be run in the grading sandbox: "
                                  f"{_last_error_line(result.stderr)}")
        tests = {f"{nb}:{grade_id}" for nb, cells in sites.items() for grade_id in cells}
        failing = [f for f in _failing_tests(course, assignment, TESTS_AS_WRITTEN_ID)
                   if f.split(" (")[0] in tests]  # a manually graded code answer is no test
        if failing:
            raise ReferenceFailed(f"the solution of {assignment} fails its own tests: {', '.join(failing)}")
    finally:
        forget_earlier_attempt(course, assignment, TESTS_AS_WRITTEN_ID)
    result, records = _execute(worker, assignment, REFERENCE_ID, sources, timeout)
    try:
        if result.returncode != 0:
            raise ReferenceFailed(f"the solution of {assignment} could not be run in the grading sandbox: "
                                  f"{_last_error_line(result.stderr)}")
        failing = [f"{nb}:{grade_id}" for nb, cells in sites.items() for grade_id in cells
                   if not completed(records[nb], grade_id)]
        if failing:
            raise ReferenceFailed(f"the solution of {assignment} fails its own tests once they record values: "
                                  f"{', '.join(failing)} (see autograder/recorded_checks.py)")
        problems = [f"{nb}:{grade_id}" for nb, cells in sites.items() for grade_id, cell_sites in cells.items()
                    if not decide(cell_sites, records[nb], records[nb])]
        if problems:
            raise ReferenceFailed(f"the solution of {assignment} records no value in {', '.join(problems)}: "
                                  "each test cell needs at least one assert_close (or assert ... == ...)")
    finally:
        forget_earlier_attempt(course, assignment, REFERENCE_ID)
    return Reference(records, sites)


def empty_row(student: str, assignment: str, cells: list[GradedCell], status: str = "") -> GradeRow:
    return GradeRow(student, assignment, max_score=sum(c.points for c in cells),
                    parts={c.grade_id: 0.0 for c in cells}, status=status)


@dataclass
class Execution:
    """What running one student's notebooks produced, before anything is decided.

    Made in a worker; scored by the batch's writer (:func:`score`) once the reference run
    is known, so submissions need not wait for the reference.
    """

    student: str
    notebooks: list[str]  # names of the notebooks graded (stems)
    records: dict[str, dict[str, list[dict]]]  # notebook -> site -> values the student's code recorded
    record: SubmissionRecord | None  # nbgrader's gradebook entries; None when nothing could be graded
    notes: list[str] = field(default_factory=list)
    problem: str = ""  # why the submission could not be graded


def run_submission(worker: Worker, assignment: str, student: str, files: dict[str, bytes],
                   timeout: float) -> Execution:
    """Autograde one student's notebooks ``files`` (name → content) in ``worker``; decide nothing yet."""
    result, records = _execute(worker, assignment, student, files, timeout)
    names = [Path(name).stem for name in files]
    notes = []
    restarts = [line.split(RESTART_MARKER, 1)[1].strip() for line in result.stderr.splitlines()
                if RESTART_MARKER in line]
    if restarts:
        notes.append(f"kernel restarted {len(restarts)}x, first because {restarts[0]}")
    interrupts = [line.split(INTERRUPT_MARKER, 1)[1].strip() for line in result.stderr.splitlines()
                  if INTERRUPT_MARKER in line]
    if interrupts:
        notes.append("; ".join(interrupts[:3]) + (f" and {len(interrupts) - 3} more" if len(interrupts) > 3 else ""))
    if result.returncode != 0:
        if not any(records.values()):
            return Execution(student, names, records, None,
                             problem=f"nbgrader failed ({_last_error_line(result.stderr)})")
        # The notebook died part way (os._exit, a crash, a time-out): the values recorded
        # before that still count; the rest scores nothing.
        notes.append(f"the notebook stopped early ({_last_error_line(result.stderr)}); "
                     "parts after that point score 0")
    with Gradebook(f"sqlite:///{worker.course.db_path}") as gradebook:
        try:
            gradebook.find_submission(assignment, student)
        except MissingEntry:  # the kernel crashed and nbgrader kept nothing: start from its cells
            gradebook.update_or_create_student(student)
            gradebook.add_submission(assignment, student)
    return Execution(student, names, records, read_submission(worker.course.db_path, assignment, student), notes)


def _decided(record: SubmissionRecord, records: dict[str, dict[str, list[dict]]], reference: Reference,
             points: dict[str, float]) -> SubmissionRecord:
    """``record`` with the trusted pass/fail of every test cell in place of nbgrader's."""
    grades = []
    for notebook, name, auto, manual, extra, needs_manual in record.grades:
        cell_sites = reference.sites.get(notebook, {}).get(name)
        if cell_sites is not None and notebook in records:
            passed = (completed(records[notebook], name)
                      and decide(cell_sites, records[notebook], reference.records[notebook]))
            auto, needs_manual = (points[name] if passed else 0.0), False
        grades.append((notebook, name, auto, manual, extra, needs_manual))
    return replace(record, grades=grades)


def _grade_score(auto: float | None, manual: float | None, extra: float | None) -> float:
    """nbgrader's ``Grade.score``: the manual score wins over the automatic one; extra credit adds."""
    base = manual if manual is not None else auto
    return 0.0 if base is None else base + (extra or 0.0)


def score(execution: Execution, reference: Reference, assignment: str, cells: list[GradedCell],
          notes: list[str], sandbox: bool) -> tuple[GradeRow, SubmissionRecord | None]:
    """The row and the gradebook entries one execution earns against ``reference``."""
    row = empty_row(execution.student, assignment, cells)
    if execution.record is None:
        row.status = f"not graded: {execution.problem or 'nbgrader recorded no grades'}"
        return row, None
    record = _decided(execution.record, execution.records, reference, {c.grade_id: c.points for c in cells})
    # Only the notebooks the student submitted: with tracks, the other track's notebook
    # has the same grade ids (all zero) and must not shadow them.
    grades = {name: (auto, manual, extra, needs_manual) for notebook, name, auto, manual, extra, needs_manual
              in record.grades if notebook in execution.notebooks}
    unanswered = []
    for cell in cells:
        grade = grades.get(cell.grade_id)
        if grade is None or (cell.kind == "manual" and grade[1] is None and (grade[3] or grade[0] is None)):
            row.parts[cell.grade_id] = None  # not graded yet (written answers wait for a person)
        else:
            row.parts[cell.grade_id] = _grade_score(*grade[:3])
            if cell.kind == "manual" and grade[1] is None:
                # nbgrader found the answer as released ("No response" in formgrader): 0, nothing to wait for.
                unanswered.append(cell.grade_id)
    row.score = sum(v for v in row.parts.values() if v is not None)
    notes = [*notes, *execution.notes]
    pending = [c.grade_id for c in cells if row.parts[c.grade_id] is None]
    if not sandbox:
        notes.append("UNSANDBOXED: graded with --unsafe")
    if pending:
        notes.append(f"awaiting manual grading: {', '.join(pending)}")
    if unanswered:
        notes.append(f"no response: {', '.join(unanswered)}")
    row.status = "graded" + (f" ({'; '.join(notes)})" if notes else "")
    return row, record
