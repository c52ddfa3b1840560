"""Grading end to end on the course's real assignments."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import nbformat
import pytest

from autograder.assignments import graded_cells, list_assignments, tracks
from autograder.batch import grade_batch

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = re.compile(r"### BEGIN SOLUTION\n.*?### END SOLUTION", re.DOTALL)

pytestmark = pytest.mark.slow


def _break_last_part(notebook: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, str]:
    """Replace the solution of the answer cell just before the last test cell by a wrong one."""
    cells = notebook.cells
    tests = [i for i, c in enumerate(cells) if c.metadata.get("nbgrader", {}).get("grade")
             and c.cell_type == "code" and not c.metadata["nbgrader"].get("solution")]
    last_test = tests[-1]
    answer = max(i for i in range(last_test) if cells[i].cell_type == "code"
                 and cells[i].metadata.get("nbgrader", {}).get("solution"))
    broken = nbformat.from_dict(notebook)
    broken.cells[answer].source = SOLUTION.sub(
        "raise ValueError('a deliberately wrong answer')", broken.cells[answer].source)
    return broken, cells[last_test].metadata["nbgrader"]["grade_id"]


def _students(assignment: str) -> tuple[dict[str, dict[str, nbformat.NotebookNode]], dict[str, set[str]]]:
    """Submissions per student (file name -> notebook) and the parts each must lose.

    A plain assignment: students ``solution``, ``one_wrong`` and ``blank`` with every notebook.
    With tracks: those three students per track, each with that track's notebook only.
    """
    alternatives = tracks(ROOT, assignment)
    submissions: dict[str, dict[str, nbformat.NotebookNode]] = {}
    lost: dict[str, set[str]] = {}
    for source in sorted((ROOT / "solutions" / assignment).glob("*.ipynb")):
        suffix = f"-{source.stem}" if alternatives else ""
        solution = nbformat.read(source, 4)
        broken, part = _break_last_part(solution)
        blank = nbformat.read(ROOT / "notebooks" / assignment / source.name, 4)
        for student, notebook in (("solution", solution), ("one_wrong", broken), ("blank", blank)):
            submissions.setdefault(student + suffix, {})[source.name] = notebook
        lost.setdefault("one_wrong" + suffix, set()).add(part)
    return submissions, lost


@pytest.mark.parametrize("assignment", list_assignments(ROOT))
def test_solution_blank_and_one_wrong_part(tmp_path: Path, assignment: str) -> None:
    subs = tmp_path / "subs"
    submissions, lost = _students(assignment)
    for student, notebooks in submissions.items():
        (subs / student).mkdir(parents=True)
        for name, notebook in notebooks.items():
            nbformat.write(notebook, subs / student / name)
    rows = {r.student_id: r for r in grade_batch(ROOT, assignment, subs, tmp_path / "out")}
    assert set(rows) == set(submissions)
    assert all(r.status.startswith("graded") for r in rows.values()), {s: r.status for s, r in rows.items()}
    for student, row in rows.items():
        cells = [c for name in submissions[student] for c in graded_cells(ROOT / "solutions" / assignment / name)]
        auto = {c.grade_id: c.points for c in cells if c.kind == "autograded"}
        if student.startswith("solution"):
            assert {g: row.parts[g] for g in auto} == auto, student
            assert row.score == sum(auto.values())
        elif student.startswith("blank"):
            assert row.score == 0, student
        else:
            assert {g for g in auto if row.parts[g] != auto[g]} == lost[student], student
            assert row.score == sum(auto.values()) - sum(auto[g] for g in lost[student])
    with (tmp_path / "out" / "grades.csv").open() as handle:
        assert {r["student_id"] for r in csv.DictReader(handle)} == set(rows)
