"""``python -m autograder release``: write ``notebooks/`` from ``solutions/``."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from autograder.assignments import assignment_dir, list_assignments
from autograder.nbgrader_run import CourseFolder
from autograder.worker import NbgraderProcess


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
