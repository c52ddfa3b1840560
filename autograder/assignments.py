"""Where the course's assignments live and what their source notebooks contain."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# The instructor marks the hidden part of a test cell with these (nbgrader's own markers).
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
# Any folder name nbgrader takes as an assignment id (the course's `NN-name`, nbgrader's `ps1`).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class UnknownAssignment(ValueError):
    """The instructor named an assignment that has no folder in ``solutions/``."""


def find_course_root(start: Path | None = None) -> Path:
    """The repository holding ``solutions/``: ``start`` or a parent of it, else this package's."""
    for folder in [start or Path.cwd(), *(start or Path.cwd()).resolve().parents]:
        if (folder / "solutions").is_dir():
            return folder.resolve()
    return PACKAGE_ROOT


def list_assignments(root: Path) -> list[str]:
    """The folders of ``solutions/`` that hold a notebook: the assignments."""
    return sorted(p.name for p in (root / "solutions").iterdir()
                  if p.is_dir() and _NAME.match(p.name) and any(p.glob("*.ipynb")))


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
    notebook: str = ""  # the notebook (stem) it belongs to; "" where any track's notebook may hold it
    qualified: bool = False  # its column is "notebook:grade_id" (another notebook uses the same id)

    @property
    def column(self) -> str:
        """Its column in grades.csv and key in a row's parts."""
        return f"{self.notebook}:{self.grade_id}" if self.qualified else self.grade_id


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
            notebook=notebook_path.stem,
        ))
    return cells


def source_notebooks(root: Path, name: str) -> list[Path]:
    return sorted(assignment_dir(root, name).glob("*.ipynb"))


class TrackMismatch(ValueError):
    """The tracks of an assignment do not grade the same parts for the same points."""


def tracks(root: Path, name: str) -> dict[str, Path]:
    """Alternative notebooks of an assignment: ``{track: path}``, or ``{}`` for a plain one.

    An assignment whose folder holds two or more notebooks named ``<name>-<track>.ipynb``
    (``03-cam-pytorch.ipynb``, ``03-cam-keras.ipynb``) offers tracks: a student submits one of
    them, and every track must have the same graded cells (ids and points), so one set of
    columns and one maximum serve the whole class.
    """
    found = {p.stem[len(name) + 1:]: p for p in source_notebooks(root, name) if p.stem.startswith(name + "-")}
    if len(found) < 2:
        return {}
    reference = None
    for track, path in sorted(found.items()):
        cells = [(c.grade_id, c.points) for c in graded_cells(path)]
        if reference is not None and cells != reference[1]:
            raise TrackMismatch(f"tracks {reference[0]} and {track} of {name} grade different parts or points: "
                                f"{reference[1]} vs {cells}")
        reference = reference or (track, cells)
    return found


def track_signatures(path: Path) -> set[str]:
    """Sources of the locked cells that only this track has (used to recognise a renamed file)."""
    notebook = nbformat.read(path, as_version=4)
    return {c.source for c in notebook.cells if c.metadata.get("nbgrader", {}).get("locked")}
