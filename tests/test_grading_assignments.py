"""Grading end to end on the course's real assignments."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import nbformat
import pytest

from autograder.assignments import graded_cells, list_assignments
from autograder.grading import grade_batch

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


@pytest.mark.parametrize("assignment", list_assignments(ROOT))
def test_solution_blank_and_one_wrong_part(tmp_path: Path, assignment: str) -> None:
    subs = tmp_path / "subs"
    expected: dict[str, set[str]] = {}
    for source in sorted((ROOT / "solutions" / assignment).glob("*.ipynb")):
        solution = nbformat.read(source, 4)
        broken, lost = _break_last_part(solution)
        for student, notebook in (("solution", solution), ("one_wrong", broken),
                                  ("blank", nbformat.read(ROOT / "notebooks" / assignment / source.name, 4))):
            (subs / student).mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, subs / student / source.name)
        expected.setdefault("one_wrong", set()).add(lost)
    rows = {r.student_id: r for r in grade_batch(ROOT, assignment, subs, tmp_path / "out")}
    cells = [c for nb in sorted((ROOT / "solutions" / assignment).glob("*.ipynb")) for c in graded_cells(nb)]
    auto = {c.grade_id: c.points for c in cells if c.kind == "autograded"}

    assert all(rows[s].status.startswith("graded") for s in rows), {s: r.status for s, r in rows.items()}
    assert {g: rows["solution"].parts[g] for g in auto} == auto
    assert rows["solution"].score == sum(auto.values())
    assert rows["blank"].score == 0
    wrong = rows["one_wrong"]
    assert {g for g in auto if wrong.parts[g] != auto[g]} == expected["one_wrong"]
    assert wrong.score == sum(auto.values()) - sum(auto[g] for g in expected["one_wrong"])
    with (tmp_path / "out" / "grades.csv").open() as handle:
        assert {r["student_id"] for r in csv.DictReader(handle)} == set(rows)
