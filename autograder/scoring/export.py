"""Export grades from nbgrader gradebooks in the formats LMSs import as they are.

The gradebook stays the record (manual grades entered in formgrader are included): each
``grade --out DIR`` run leaves ``DIR/gradebook.db``; ``export`` reads one or several of them
and writes one row per student with one column per assignment.

* ``csv``: ``student_id`` then one column per assignment (points) and ``total``/``max_total``.
* ``moodle``: Moodle's "Import grades → CSV file": an ``ID number`` column to map users by,
  one column per grade item (named after the assignment) — map them on the import page.
* ``canvas``: Canvas's gradebook import: ``Student, ID, SIS User ID, SIS Login ID, Section``
  followed by one column per assignment and a ``Points Possible`` row; students are matched
  by SIS User ID (the course's student id); unknown assignment columns create assignments.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

FORMATS = ("csv", "moodle", "canvas")


@dataclass
class GradeTable:
    """Scores per student and assignment, and the maximum score of each assignment."""

    max_scores: dict[str, float] = field(default_factory=dict)
    scores: dict[str, dict[str, float]] = field(default_factory=dict)


def read_gradebooks(paths: Iterable[Path]) -> GradeTable:
    """Collect every submission's total score (autograded + manual) from the gradebooks."""
    table = GradeTable()
    for path in paths:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no gradebook at {path}: pass the gradebook.db a `grade --out DIR` run wrote")
        from nbgrader.api import Gradebook  # imported here: the command line lists FORMATS quickly

        with Gradebook(f"sqlite:///{Path(path).resolve()}") as gradebook:
            for assignment in gradebook.assignments:
                table.max_scores[assignment.name] = _max_score(assignment)
                for submission in assignment.submissions:
                    # net of the late penalty, as nbgrader's own export
                    table.scores.setdefault(submission.student.id, {})[assignment.name] = (
                        float(submission.score) - float(submission.late_submission_penalty or 0))
    return table


def _max_score(assignment) -> float:
    """An assignment's maximum; with tracks (``<name>-<track>`` notebooks) a student does one."""
    notebooks = list(assignment.notebooks)
    if len(notebooks) >= 2 and all(nb.name.startswith(assignment.name + "-") for nb in notebooks):
        return float(max(nb.max_score for nb in notebooks))
    return float(assignment.max_score)


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def export_rows(table: GradeTable, fmt: str) -> list[list[str]]:
    """The rows (header first) of the export in format ``fmt``."""
    assignments = sorted(table.max_scores)
    students = sorted(table.scores)
    if fmt == "csv":
        rows = [["student_id", *assignments, "total", "max_total"]]
        for student in students:
            got = table.scores[student]
            rows.append([student, *[_number(got.get(a)) for a in assignments],
                         _number(sum(got.values())), _number(sum(table.max_scores.values()))])
        return rows
    if fmt == "moodle":
        rows = [["ID number", *assignments]]
        rows += [[s, *[_number(table.scores[s].get(a)) for a in assignments]] for s in students]
        return rows
    if fmt == "canvas":
        fixed = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
        rows = [fixed + assignments,
                ["Points Possible", "", "", "", "", *[_number(table.max_scores[a]) for a in assignments]]]
        rows += [[s, "", s, s, "", *[_number(table.scores[s].get(a)) for a in assignments]] for s in students]
        return rows
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def export(gradebooks: Iterable[Path], fmt: str, output: Path) -> int:
    """Write the export file; return the number of students in it."""
    table = read_gradebooks(gradebooks)
    rows = export_rows(table, fmt)
    output.parent.mkdir(parents=True, exist_ok=True)
    # utf-8-sig: Excel and Moodle read the BOM as "this is UTF-8" (names may not be ASCII).
    with output.open("w", newline="", encoding="utf-8-sig" if fmt == "moodle" else "utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return len(table.scores)
