"""The execution side of grading one submission: a grading worker runs it and sends back data.

A :class:`Worker` (one slot of :mod:`autograder.execution.jobs`) is a private nbgrader course
folder plus the long-lived nbgrader process that autogrades in it
(:mod:`autograder.execution.nbgrader_process`); the student's kernel runs in the sandbox.
The test cells only *record* values: :func:`run_submission` runs a student's notebooks and
returns what they recorded with nbgrader's gradebook entries (an
:class:`~autograder.scoring.score.Execution`), and :func:`run_reference` does the same for the
solution.  Nothing here decides points: :func:`autograder.scoring.score.score`, run by the
batch's writer, compares the values.  Batches, parallel and distributed, are :mod:`autograder.batch`.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path

import nbformat
from nbgrader.api import Gradebook, MissingEntry

from autograder.scoring.gradebook import read_submission
from autograder.execution.preprocessors import INTERRUPT_MARKER, RESTART_MARKER
from autograder.execution.cgroups import CgroupsUnavailable, WorkerCgroup, check_cgroups
from autograder import reference_cache
from autograder.execution.test_rewrite import RECORDABLE, UNREWRITTEN_RUNS, notebook_sites, plain_test_cells
from autograder.scoring.decide import decide
from autograder.scoring.score import Execution, Reference
from autograder.scoring.records import RECORDS_FOLDER, completed, read_records, records_path
from autograder.execution.sandbox import kernel_environment, write_kernelspec
from autograder.execution.nbgrader_process import NbgraderProcess
from autograder.execution.nbgrader_process import take as take_nbgrader_process
from dlbook.recording import RECORDS_DIR_ENV
from autograder.execution.course_folder import CourseFolder

REFERENCE_ID = "_reference-solution"  # not a valid student id, so never a real student
TESTS_AS_WRITTEN_ID = UNREWRITTEN_RUNS[0]  # the solution's run with the tests as written (idem)


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


class ReferenceFailed(RuntimeError):
    """The instructor's solution does not pass its own tests in the grading sandbox.

    ``problems`` says, for each failing test cell (``notebook:grade_id``), why.
    """

    def __init__(self, message: str, problems: dict[str, str] | None = None) -> None:
        self.problems = problems or {}
        super().__init__(message + "".join(f"\n  {cell}: {why}" for cell, why in self.problems.items()))


@dataclass
class Worker:
    """One grading worker: a private course folder and the nbgrader process that grades in it."""

    course: CourseFolder
    nbgrader: NbgraderProcess
    runtime_dir: Path  # the kernel's sockets and recorded values
    env: dict[str, str]  # set in the nbgrader process: where kernels, sockets and records are
    workdir: Path  # the sandboxed kernel's working folder, emptied for every notebook run
    cgroup: WorkerCgroup | None = None  # holds the sandbox of each submission, where cgroups can be made

    @classmethod
    def start(cls, course: CourseFolder) -> "Worker":
        """A worker grading in ``course`` with its limits (``course.limits``)."""
        # Unix socket paths are limited to about 100 bytes, so the sockets live in a short
        # private folder, not under a course folder that may be nested deeply.
        runtime_dir = Path(tempfile.mkdtemp(prefix="dlbook-grading-"))
        workdir = Path(tempfile.mkdtemp(prefix="dlbook-work-"))
        course = CourseFolder.configure(course.root, course.db_path, course.limits, runtime_dir)
        env = {RECORDS_DIR_ENV: str(runtime_dir)}
        cgroup = None
        if course.limits.sandbox:
            env.update(kernel_environment(course.root / "jupyter", runtime_dir))
            if check_cgroups() is None:
                try:
                    cgroup = WorkerCgroup.create(course.limits.memory)
                except CgroupsUnavailable:
                    pass  # the per-process limits still hold
        return cls(course, take_nbgrader_process(), runtime_dir, env, workdir, cgroup)

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


def _execute(worker: Worker, assignment: str, student: str, files: dict[str, bytes]
             ) -> tuple[subprocess.CompletedProcess, dict[str, dict[str, list[dict]]]]:
    """Autograde ``files`` as ``student``; return nbgrader's result and the recorded values.

    The values are those that :class:`~autograder.execution.preprocessors.BoundedExecute` (in the
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
    if course.limits.sandbox:
        # The kernel may write only in a private working folder of its own (and the runtime
        # folder holding its sockets and the values its test cells record).
        workdir = _new_workdir(worker, assignment)
        write_kernelspec(course.root / "jupyter", workdir, runtime_dir,
                         course.limits.memory, worker.cgroup.enter_command() if worker.cgroup else None)
    try:
        result = worker.nbgrader.autograde(course.root, worker.env, assignment, student,
                                           course.limits.submission_timeout)
    finally:
        if worker.cgroup is not None:  # nothing of this submission may run on into the next one
            worker.cgroup.kill_all()
        if workdir is not None:
            _remove_tree(workdir)
        _empty_folder(runtime_dir)
    records = {Path(name).stem: read_records(records_path(records_dir, Path(name).stem))
               for name in files if name.endswith(".ipynb")}
    return result, records


def _failing_tests(course: CourseFolder, assignment: str, student: str) -> list[tuple[str, str]]:
    """``(notebook, grade_id)`` of each code cell nbgrader gave less than full points."""
    with Gradebook(f"sqlite:///{course.db_path}") as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            return []
        return [(nb.name, g.name) for nb in submission.notebooks for g in nb.grades
                if g.cell_type == "code" and g.auto_score is not None and g.auto_score < g.max_score]


def _errors(cell: nbformat.NotebookNode) -> list[tuple[str, str]]:
    return [(str(o.get("ename")), str(o.get("evalue"))[:300]) for o in cell.get("outputs", [])
            if o.get("output_type") == "error"]


def describe_failure(notebook: nbformat.NotebookNode, grade_id: str, cell_timeout: float) -> str:
    """Why the test cell ``grade_id`` of an executed solution notebook failed, in the instructor's terms.

    Each cause gets its own message: the cell time limit, a kernel that died, ``dlbook`` not
    importable in the kernel, a failing check, an error raised before the checks (naming the
    answer cell that raised first, if one did), and a hint when the notebook skips code under
    nbgrader's ``NBGRADER_EXECUTION`` variable, which is set while grading.
    """
    cells = notebook.cells
    index = next((i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id), None)
    if index is None:
        return "the cell is missing from the executed notebook"
    errors = _errors(cells[index])
    if not errors:
        if cells[index].get("execution_count") is None and not cells[index].get("outputs"):
            return "it never ran: the notebook stopped before it (see the cells above it)"
        return "it ran without an error but scored less than full points (its output was read as partial credit)"
    ename, evalue = errors[-1]
    if any(name in ("CellTimeoutError", "KeyboardInterrupt") or (name == "KernelRestarted" and "ran past" in value)
           for name, value in errors):
        return (f"it ran past the {cell_timeout:g} s cell time limit: make the solution faster, or grade with a "
                "larger --cell-timeout")
    if ename == "KernelRestarted":
        return f"the kernel died while it ran ({evalue}): a crash or the memory limit (--memory-limit)"
    if ename in ("ModuleNotFoundError", "ImportError") and "dlbook" in evalue:
        return (f"`dlbook` is not importable in the grading kernel ({ename}: {evalue}): the kernel runs the Python "
                "environment of the grader; install the course package there (`pip install -e .`)")
    if ename == "HiddenTestFailure":  # dlbook.checks.hidden: a hidden check failed, details withheld
        message = f"a hidden check fails: {evalue}"
    elif ename == "AssertionError":
        message = f"a check fails (hidden tests included): AssertionError: {evalue}" if evalue else \
            "a check fails (hidden tests included): AssertionError"
    else:
        message = f"it raises {ename} before its checks complete: {evalue}"
        earlier = [(c.metadata.get("nbgrader", {}).get("grade_id") or f"number {i + 1}", _errors(c)[0])
                   for i, c in enumerate(cells[:index]) if c.cell_type == "code" and _errors(c)]
        if earlier:
            where, (first_name, first_value) = earlier[0]
            message += f"; the solution raised first in cell {where} ({first_name}: {first_value})"
    skipping = [c.source for c in cells if c.cell_type == "code" and "NBGRADER_EXECUTION" in c.source]
    missing = re.match(r"name '(\w+)' is not defined", evalue) if ename == "NameError" else None
    if skipping and (missing is None or any(missing.group(1) in source for source in skipping)):
        message += ("; note: the notebook reads NBGRADER_EXECUTION, which is 'autograde' while grading, so the "
                    "code it skips then does not run")
    return message


def _describe(course: CourseFolder, assignment: str, student: str,
              cells: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """``describe_failure`` for each ``(notebook, grade_id)`` of ``student``'s autograded notebooks."""
    found: dict[str, nbformat.NotebookNode | None] = {}
    described = {}
    for notebook, grade_id in cells:
        if notebook not in found:
            path = course.root / "autograded" / student / assignment / f"{notebook}.ipynb"
            try:
                found[notebook] = nbformat.read(path, 4)
            except (OSError, ValueError):
                found[notebook] = None
        executed = found[notebook]
        described[(notebook, grade_id)] = ("the notebook could not be executed" if executed is None
                                           else describe_failure(executed, grade_id, course.limits.cell_timeout))
    return described


def as_restored(course: CourseFolder, assignment: str, notebooks: dict[str, nbformat.NotebookNode]) -> None:
    """Give the test cells the source nbgrader restores when it grades (its gradebook's: autotests expanded)."""
    with Gradebook(f"sqlite:///{course.db_path}") as gradebook:
        for name, notebook in notebooks.items():
            for cell in notebook.cells:
                meta = cell.metadata.get("nbgrader", {})
                if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                    try:
                        cell.source = gradebook.find_source_cell(meta["grade_id"], name, assignment).source
                    except MissingEntry:
                        pass


def run_reference(worker: Worker, assignment: str, sources: dict[str, bytes],
                  cache_key: str | None = None) -> Reference:
    """Run the solution notebooks ``sources`` with their own tests in the sandbox; keep what they recorded.

    Twice: first with the tests as the instructor wrote them, expected values (hidden ones
    included) checked in the kernel as plain nbgrader would, so a solution that fails any of
    them stops grading instead of becoming the measure of right; then with the recording
    tests that students' notebooks run, whose values are the reference.  Test cells that
    cannot record (:func:`~autograder.execution.test_rewrite.plain_reason`) are graded the plain
    nbgrader way; they must pass in both runs.  Every failing cell is named with its own
    cause (:class:`ReferenceFailed`).  With ``cache_key`` a successful run is kept
    (:mod:`autograder.reference_cache`) and a kept one is used instead of running again.
    """
    notebooks = {Path(name).stem: nbformat.reads(content.decode("utf-8"), 4) for name, content in sources.items()}
    as_restored(worker.course, assignment, notebooks)
    if cache_key is not None:  # the tests as nbgrader restores them (autotests expanded) are part of the key
        cache_key = reference_cache.with_tests(cache_key, {nb: [c.source for c in notebook.cells]
                                                           for nb, notebook in notebooks.items()})
    sites = {nb: notebook_sites(notebook, nb) for nb, notebook in notebooks.items()}
    plain = {nb: plain_test_cells(notebook) for nb, notebook in notebooks.items()}
    if cache_key is not None and (cached := reference_cache.load(cache_key)) is not None:
        return Reference(cached, sites, plain)
    tests = {(nb, grade_id) for nb in notebooks for grade_id in [*sites[nb], *plain[nb]]}
    course = worker.course
    problems: dict[tuple[str, str], str] = {}
    result, _ = _execute(worker, assignment, TESTS_AS_WRITTEN_ID, sources)
    try:
        if result.returncode != 0:
            raise ReferenceFailed(f"the solution of {assignment} could not be run in the grading sandbox: "
                                  f"{_last_error_line(result.stderr)}")
        failing = [cell for cell in _failing_tests(course, assignment, TESTS_AS_WRITTEN_ID)
                   if cell in tests]  # a manually graded code answer is no test
        problems.update(_describe(course, assignment, TESTS_AS_WRITTEN_ID, failing))
    finally:
        forget_earlier_attempt(course, assignment, TESTS_AS_WRITTEN_ID)
    result, records = _execute(worker, assignment, REFERENCE_ID, sources)
    try:
        if result.returncode != 0:
            raise ReferenceFailed(f"the solution of {assignment} could not be run in the grading sandbox: "
                                  f"{_last_error_line(result.stderr)}")
        incomplete = [(nb, grade_id) for nb, grade_id in sorted(tests)
                      if not completed(records[nb], grade_id) and (nb, grade_id) not in problems]
        for cell, why in _describe(course, assignment, REFERENCE_ID, incomplete).items():
            problems[cell] = f"it passes as written but fails once its checks record values: {why}"
        for nb, cells in sites.items():
            for grade_id, cell_sites in cells.items():
                if (nb, grade_id) not in problems and not decide(cell_sites, records[nb], records[nb]):
                    problems[(nb, grade_id)] = (
                        "its checks never ran for the solution (an assert inside a branch or loop that did not "
                        f"execute), so there is no value to compare: tamper-proof grading needs {RECORDABLE} "
                        "that runs")
    finally:
        forget_earlier_attempt(course, assignment, REFERENCE_ID)
    if problems:
        raise ReferenceFailed(f"the solution of {assignment} fails its own tests, cell by cell:",
                              {f"{nb}:{grade_id}": why for (nb, grade_id), why in sorted(problems.items())})
    if cache_key is not None:
        reference_cache.store(cache_key, records)
    return Reference(records, sites, plain)


def run_submission(worker: Worker, assignment: str, student: str, files: dict[str, bytes]) -> Execution:
    """Autograde one student's notebooks ``files`` (name → content) in ``worker``; decide nothing yet."""
    result, records = _execute(worker, assignment, student, files)
    names = [Path(name).stem for name in files if name.endswith(".ipynb")]
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


