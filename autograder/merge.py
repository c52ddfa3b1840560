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

from nbgrader.api import Gradebook, MissingEntry
from sqlalchemy.exc import SAWarning

# nbgrader's Gradebook.add_submission touches relationships of objects it has not added yet;
# SQLAlchemy warns about it on every submission, and nothing is lost (nbgrader's own bug).
warnings.filterwarnings("ignore", r"Object of type <Submitted\w+> not in session", SAWarning)


def _url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


@dataclass
class SubmissionRecord:
    """What nbgrader's gradebook holds for one submission: grades and comments by cell."""

    assignment: str
    student: str
    timestamp: datetime | None
    grades: list[tuple[str, str, float | None, float | None, float | None, bool]]
    comments: list[tuple[str, str, str | None, str | None]]
    penalties: dict[str, float | None] = field(default_factory=dict)  # notebook -> late submission penalty


def read_submission(db: Path, assignment: str, student: str) -> SubmissionRecord:
    with Gradebook(_url(db)) as gradebook:
        submitted = gradebook.find_submission(assignment, student)
        return SubmissionRecord(
            assignment, student, submitted.timestamp,
            grades=[(nb.name, g.name, g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade)
                    for nb in submitted.notebooks for g in nb.grades],
            comments=[(nb.name, c.name, c.auto_comment, c.manual_comment)
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
