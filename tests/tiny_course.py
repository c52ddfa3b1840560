"""A two-part nbgrader assignment written by the tests, small enough to grade in seconds."""
from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path

import nbformat

NAME = "99-tiny"


def _meta(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


ANSWERS = {
    "double": "def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
    "square": "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
}
TESTS = {
    "test_double": ("from dlbook.checks import assert_close, hidden\n"
                    "assert_close(double(3), 6, name='double(3)')\n"
                    "### BEGIN HIDDEN TESTS\nwith hidden('double'):\n"
                    "    assert_close(double(-21.5), -43.0)\n### END HIDDEN TESTS", 2),
    "test_square": ("from dlbook.checks import assert_close, hidden\n"
                    "import warnings\nwarnings.warn('an honest warning on stderr')\n"
                    "assert_close(square(3), 9, name='square(3)')\n"
                    "### BEGIN HIDDEN TESTS\nwith hidden('square'):\n"
                    "    assert_close(square(-7), 49)\n### END HIDDEN TESTS", 3),
}


def source_notebook(track: str | None = None) -> nbformat.NotebookNode:
    cells = [nbformat.v4.new_markdown_cell("# Tiny assignment", metadata=_meta(
        "intro", grade=False, solution=False, locked=True))]
    if track:  # a locked cell only this track has
        cells.append(nbformat.v4.new_code_cell(f"TRACK = {track!r}", metadata=_meta(
            "track", grade=False, solution=False, locked=True)))
    for part, test in (("double", "test_double"), ("square", "test_square")):
        cells.append(nbformat.v4.new_code_cell(ANSWERS[part], metadata=_meta(
            part, grade=False, solution=True, locked=False)))
        source, points = TESTS[test]
        cells.append(nbformat.v4.new_code_cell(source, metadata=_meta(
            test, grade=True, solution=False, locked=True, points=points)))
    cells.append(nbformat.v4.new_markdown_cell(
        "### BEGIN SOLUTION\nDoubling is linear.\n### END SOLUTION", metadata=_meta(
            "written", grade=True, solution=True, locked=False, points=1)))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return notebook


def make_course(root: Path) -> Path:
    """A course folder with ``solutions/99-tiny/99-tiny.ipynb``; returns the notebook path."""
    folder = root / "solutions" / NAME
    folder.mkdir(parents=True)
    path = folder / f"{NAME}.ipynb"
    nbformat.write(source_notebook(), path)
    return path


def make_tracked_course(root: Path, tracks: tuple[str, ...] = ("a", "b")) -> dict[str, Path]:
    """A course whose ``99-tiny`` offers tracks: ``99-tiny-a.ipynb``, ``99-tiny-b.ipynb``."""
    folder = root / "solutions" / NAME
    folder.mkdir(parents=True)
    paths = {}
    for track in tracks:
        paths[track] = folder / f"{NAME}-{track}.ipynb"
        nbformat.write(source_notebook(track), paths[track])
    return paths


def with_answer(notebook: nbformat.NotebookNode, grade_id: str, code: str) -> nbformat.NotebookNode:
    """A copy of ``notebook`` whose answer cell ``grade_id`` holds ``code``."""
    copy = nbformat.from_dict(notebook)
    for cell in copy.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == grade_id:
            cell.source = code
            return copy
    raise KeyError(grade_id)


def grade_cases(root: Path, cases: dict[str, nbformat.NotebookNode], *options: str) -> dict:
    """Submit each case as the notebook of the student it is named after and grade them all.

    ``options`` go to ``grade`` (``--workers 2`` ...).  Returns the exit ``code``, the
    ``rows`` of grades.csv by student id, the ``out`` folder and what the command printed (``log``).
    """
    from autograder.cli import main

    subs = root / "subs"
    for student, notebook in cases.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(notebook, subs / student / f"{NAME}.ipynb")
    out = root / "out"
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        code = main(["--course", str(root), "grade", NAME, str(subs), "--out", str(out), *options])
    with (out / "grades.csv").open() as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"code": code, "rows": rows, "out": out, "log": log.getvalue()}


def processes_with(marker: str) -> list[int]:
    """Process ids whose command line contains ``marker`` (to find what a submission left running)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker in (entry / "cmdline").read_bytes().decode(errors="ignore"):
                found.append(int(entry.name))
        except OSError:
            continue  # the process ended while we looked
    return found
