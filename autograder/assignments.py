"""Where the course's assignments live and what their source notebooks contain."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
_NAME = re.compile(r"^[0-9]{2}-[a-z0-9-]+$")


class UnknownAssignment(ValueError):
    """The instructor named an assignment that has no folder in ``solutions/``."""


def find_course_root(start: Path | None = None) -> Path:
    """The repository holding ``solutions/``: ``start`` or a parent of it, else this package's."""
    for folder in [start or Path.cwd(), *(start or Path.cwd()).resolve().parents]:
        if (folder / "solutions").is_dir():
            return folder.resolve()
    return PACKAGE_ROOT


def list_assignments(root: Path) -> list[str]:
    return sorted(p.name for p in (root / "solutions").iterdir() if p.is_dir() and _NAME.match(p.name))


def assignment_dir(root: Path, name: str) -> Path:
    known = list_assignments(root)
    if name not in known:
        raise UnknownAssignment(
            f"unknown assignment {name!r}: there is no folder solutions/{name}/ in {root}. "
            f"Known assignments: {', '.join(known) or 'none'}."
        )
    return root / "solutions" / name


@dataclass(frozen=True)
class GradedCell:
    grade_id: str
    points: float
    kind: str  # "autograded" for tests, "manual" for written answers
    has_hidden_tests: bool


def graded_cells(notebook_path: Path) -> list[GradedCell]:
    """The graded cells of a source notebook, in notebook order."""
    notebook = nbformat.read(notebook_path, as_version=4)
    cells = []
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade"):
            continue
        manual = bool(meta.get("solution")) or cell.cell_type == "markdown"
        cells.append(GradedCell(
            grade_id=meta["grade_id"],
            points=float(meta.get("points", 0)),
            kind="manual" if manual else "autograded",
            has_hidden_tests=HIDDEN_BEGIN in cell.source,
        ))
    return cells


def source_notebooks(root: Path, name: str) -> list[Path]:
    return sorted(assignment_dir(root, name).glob("*.ipynb"))
