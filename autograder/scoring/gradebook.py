"""Move one student's graded submission from a worker's gradebook into the main one.

Parallel and distributed grading give every worker its own course folder and SQLite
gradebook, so no two processes ever write the same database.  A worker reads the finished
submission out of its gradebook as plain data (:func:`read_submission`); the batch's single
writer (the ``grade`` command itself) writes it into the main gradebook with nbgrader's own
API (:func:`write_submission`), which keeps formgrader and nbgrader's commands working.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

# nbgrader's Gradebook.add_submission touches relationships of objects it has not added yet;
# SQLAlchemy warns about it on every submission, and nothing is lost (nbgrader's own bug).
warnings.filterwarnings("ignore", r"Object of type <Submitted\w+> not in session", SAWarning)


def _url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


class GradeEntry(NamedTuple):
    """One graded cell of a submission, as nbgrader's ``Grade`` holds it."""

    notebook: str
    name: str  # the cell's grade id
    auto: float | None  # auto_score
    manual: float | None  # manual_score (wins over auto when set)
    extra: float | None  # extra_credit
    needs_manual: bool  # needs_manual_grade


class CommentEntry(NamedTuple):
    """One comment of a submission, as nbgrader's ``Comment`` holds it."""

    notebook: str
    name: str
    auto: str | None
    manual: str | None


@dataclass
class SubmissionRecord:
    """What nbgrader's gradebook holds for one submission: grades and comments by cell."""

    assignment: str
    student: str
    timestamp: datetime | None
    grades: list[GradeEntry]
    comments: list[CommentEntry]
    penalties: dict[str, float | None] = field(default_factory=dict)  # notebook -> late submission penalty


def read_submission(db: Path, assignment: str, student: str) -> SubmissionRecord:
    with Gradebook(_url(db)) as gradebook:
        submitted = gradebook.find_submission(assignment, student)
        return SubmissionRecord(
            assignment, student, submitted.timestamp,
            grades=[GradeEntry(nb.name, g.name, g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade)
                    for nb in submitted.notebooks for g in nb.grades],
            comments=[CommentEntry(nb.name, c.name, c.auto_comment, c.manual_comment)
                      for nb in submitted.notebooks for c in nb.comments])


def write_submission(db: Path, record: SubmissionRecord) -> None:
    """Replace the student's submission in ``db`` by ``record``."""
    assignment, student = record.assignment, record.student
    with Gradebook(_url(db)) as target:
        try:
            target.remove_submission(assignment, student)
        except MissingEntry:
            pass
        target.update_or_create_student(student)
        target.add_submission(assignment, student, timestamp=record.timestamp)
        for notebook, name, auto, manual, extra, needs_manual in record.grades:
            grade = target.find_grade(name, notebook, assignment, student)
            grade.auto_score, grade.manual_score, grade.extra_credit = auto, manual, extra
            grade.needs_manual_grade = needs_manual
        for notebook, name, auto, manual in record.comments:
            comment = target.find_comment(name, notebook, assignment, student)
            comment.auto_comment, comment.manual_comment = auto, manual
        for notebook, penalty in record.penalties.items():
            target.find_submission_notebook(notebook, assignment, student).late_submission_penalty = penalty
        target.db.commit()
