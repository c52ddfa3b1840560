"""notebooks/ is exactly a fresh release of solutions/ and holds no solution or hidden test."""
from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from autograder.assignments import list_assignments
from autograder.release import release

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENTS = list_assignments(ROOT)
REGION = re.compile(r"### BEGIN (SOLUTION|HIDDEN TESTS)\n(.*?)### END \1", re.DOTALL)


def test_there_are_assignments() -> None:
    assert ASSIGNMENTS, "solutions/ holds no assignment"


@pytest.fixture(scope="module")
def fresh(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("release")
    release(ROOT, ASSIGNMENTS, out)
    return out


@pytest.mark.slow  # nbgrader generate_assignment for every assignment
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_notebooks_are_a_fresh_release(fresh: Path, assignment: str) -> None:
    committed = sorted(p.relative_to(ROOT / "notebooks")
                       for p in (ROOT / "notebooks" / assignment).rglob("*") if p.is_file())
    generated = sorted(p.relative_to(fresh) for p in (fresh / assignment).rglob("*") if p.is_file())
    assert committed == generated, "run `python -m autograder release` and commit notebooks/"
    for relative in generated:
        ours, theirs = (ROOT / "notebooks" / relative), (fresh / relative)
        if relative.suffix == ".ipynb":
            assert json.loads(ours.read_text()) == json.loads(theirs.read_text()), (
                f"notebooks/{relative} is stale: run `python -m autograder release`")
        else:
            assert ours.read_bytes() == theirs.read_bytes()


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_contains_no_solution_or_hidden_test(assignment: str) -> None:
    for source in (ROOT / "solutions" / assignment).glob("*.ipynb"):
        released = (ROOT / "notebooks" / assignment / source.name).read_text()
        assert "BEGIN SOLUTION" not in released and "HIDDEN TESTS" not in released
        secrets = [line.strip() for cell in nbformat.read(source, 4).cells
                   for match in REGION.finditer(cell.source)
                   for line in match.group(2).splitlines()]
        # Lines long enough to be specific (not `return out` or `pass`) must not appear.
        leaked = [line for line in secrets if len(line) > 24 and line in released]
        assert not leaked, f"notebooks/{assignment}/{source.name} contains solution lines: {leaked[:3]}"


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_assignment_shape(assignment: str) -> None:
    """Each assignment: at least five autograded parts with hidden tests, one written answer."""
    from autograder.assignments import graded_cells

    cells = [c for nb in (ROOT / "solutions" / assignment).glob("*.ipynb") for c in graded_cells(nb)]
    auto = [c for c in cells if c.kind == "autograded"]
    assert len(auto) >= 5, f"{assignment} has {len(auto)} autograded parts"
    assert all(c.has_hidden_tests for c in auto), [c.grade_id for c in auto if not c.has_hidden_tests]
    assert any(c.kind == "manual" for c in cells), f"{assignment} has no written answer"
    for nb in (ROOT / "solutions" / assignment).glob("*.ipynb"):
        for cell in nbformat.read(nb, 4).cells:
            for match in REGION.finditer(cell.source):
                if match.group(1) == "HIDDEN TESTS":
                    first = match.group(2).strip().splitlines()[0]
                    assert first.startswith("with hidden("), (
                        "hidden tests must run inside `with hidden(...)` so failures reveal nothing")
