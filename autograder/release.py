"""``python -m autograder release``: write ``notebooks/`` from ``solutions/``, then check each assignment.

The check (:func:`check_assignment`) runs the solution in the grading sandbox as ``grade``
would, and says for every graded cell how it will be graded or what is wrong with it, each
cause in its own words (:func:`autograder.execution.worker.describe_failure`), so an instructor learns
it now rather than from the first ``grade``.  A successful check is kept
(:mod:`autograder.reference_cache`): ``grade`` then does not run the solution again.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat

from autograder.assignments import assignment_dir, list_assignments, source_notebooks
from autograder.execution.course_folder import CourseFolder
from autograder.limits import Limits
from autograder.execution.nbgrader_process import NbgraderProcess


def release_to(root: Path, assignment: str, target: Path, nbgrader: NbgraderProcess) -> list[Path]:
    """Generate the student version of ``assignment`` into ``target`` (replacing it) with ``nbgrader``."""
    assignment_dir(root, assignment)  # a clear error for an unknown name
    with tempfile.TemporaryDirectory(prefix="dlbook-release-") as scratch:
        scratch_path = Path(scratch)
        course = CourseFolder.create(scratch_path / "course", scratch_path / "gradebook.db",
                                     root / "solutions", assignment)
        nbgrader.generate_assignment(course.root, assignment)
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(course.root / "release" / assignment, target)
    return sorted(target.rglob("*"))


def release(root: Path, assignments: list[str] | None = None, out: Path | None = None) -> list[Path]:
    """Release the named assignments (all by default) into ``out`` (default ``root/notebooks``)."""
    out = out or root / "notebooks"
    written = []
    nbgrader = NbgraderProcess().start()  # one nbgrader start for every assignment
    try:
        for name in assignments or list_assignments(root):
            written += release_to(root, name, out / name, nbgrader)
    finally:
        nbgrader.stop()
    return written


@dataclass(frozen=True)
class CellCheck:
    """How one graded cell of an assignment will be graded, or what is wrong with it."""

    cell: str  # notebook:grade_id
    verdict: str  # "tamper-proof", "plain nbgrader", "manual", or "PROBLEM"
    detail: str

    def __str__(self) -> str:
        return f"{self.cell}: {self.verdict}: {self.detail}"


def _cell_kinds(notebook: nbformat.NotebookNode, name: str) -> list[tuple[str, str, str]]:
    """``(grade_id, verdict, detail)`` for each graded cell of a source notebook (tests as nbgrader restores them)."""
    from autograder.assignments import HIDDEN_BEGIN
    from autograder.execution.test_rewrite import plain_reason, rewrite_test

    kinds = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade"):
            continue
        grade_id = meta["grade_id"]
        if cell.cell_type == "markdown":
            kinds.append((grade_id, "manual", "written answer, graded by a person in formgrader"))
        elif meta.get("solution"):
            kinds.append((grade_id, "manual", "manually graded code answer: graded by a person in formgrader, "
                                              "not run as a test"))
        elif (why := plain_reason(cell.source)) is not None:
            kinds.append((grade_id, "plain nbgrader", f"no error: full points, decided in the student's kernel, "
                                                      f"so not tamper-proof, because {why}"))
        else:
            sites = rewrite_test(cell.source, name, grade_id)[1]
            hidden = ", hidden tests included" if HIDDEN_BEGIN in cell.source else ""
            kinds.append((grade_id, "tamper-proof", f"{len(sites)} recorded check(s){hidden}"))
    return kinds


def check_assignment(root: Path, assignment: str, limits: Limits = Limits()) -> list[CellCheck]:
    """Run ``assignment``'s solution as ``grade`` would, with ``limits``; say how each graded cell fares."""
    from autograder.execution.worker import ReferenceFailed, as_restored
    from autograder.execution.jobs import CourseSpec, reference_job, stop_workers

    problems: dict[str, str] = {}
    notebooks = {path.stem: nbformat.read(path, 4) for path in source_notebooks(root, assignment)}
    with tempfile.TemporaryDirectory(prefix="dlbook-check-") as scratch:
        scratch_path = Path(scratch)
        course = CourseFolder.create(scratch_path / "course", scratch_path / "gradebook.db",
                                     root / "solutions", assignment, limits)
        nbgrader = NbgraderProcess().start()
        try:
            nbgrader.generate_assignment(course.root, assignment)
        finally:
            nbgrader.stop()
        as_restored(course, assignment, notebooks)  # autotests expanded, as grading will run them
        spec = CourseSpec.of(course, assignment)
        try:
            reference_job(spec, scratch_path / "workers")
        except ReferenceFailed as failed:
            problems = failed.problems or {assignment: str(failed)}
        finally:
            stop_workers(spec.key())
    checks = []
    for name, notebook in notebooks.items():
        for grade_id, verdict, detail in _cell_kinds(notebook, name):
            cell = f"{name}:{grade_id}"
            checks.append(CellCheck(cell, "PROBLEM", problems.pop(cell)) if cell in problems
                          else CellCheck(cell, verdict, detail))
    checks += [CellCheck(cell, "PROBLEM", why) for cell, why in problems.items()]  # the assignment as a whole
    return checks
