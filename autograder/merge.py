"""Copy one student's graded submission from a worker's gradebook into the main one.

Parallel and distributed grading give every worker its own course folder and SQLite
gradebook, so no two processes ever write the same database.  The batch's single writer
(the ``grade`` command itself) then copies each finished submission into the main
gradebook with nbgrader's own API, which keeps formgrader and nbgrader's commands working.
"""
from __future__ import annotations

from pathlib import Path

from nbgrader.api import Gradebook, MissingEntry


def _url(path: Path) -> str:
    return f"sqlite:///{Path(path).resolve()}"


def copy_submission(source_db: Path, target_db: Path, assignment: str, student: str) -> None:
    """Replace ``student``'s submission of ``assignment`` in ``target_db`` by the one in ``source_db``."""
    with Gradebook(_url(source_db)) as source:
        submitted = source.find_submission(assignment, student)
        timestamp = submitted.timestamp
        grades = [(nb.name, g.name, g.auto_score, g.manual_score, g.extra_credit, g.needs_manual_grade)
                  for nb in submitted.notebooks for g in nb.grades]
        comments = [(nb.name, c.name, c.auto_comment, c.manual_comment)
                    for nb in submitted.notebooks for c in nb.comments]
    with Gradebook(_url(target_db)) as target:
        try:
            target.remove_submission(assignment, student)
        except MissingEntry:
            pass
        target.update_or_create_student(student)
        target.add_submission(assignment, student, timestamp=timestamp)
        for notebook, name, auto, manual, extra, needs_manual in grades:
            grade = target.find_grade(name, notebook, assignment, student)
            grade.auto_score, grade.manual_score, grade.extra_credit = auto, manual, extra
            grade.needs_manual_grade = needs_manual
        for notebook, name, auto, manual in comments:
            comment = target.find_comment(name, notebook, assignment, student)
            comment.auto_comment, comment.manual_comment = auto, manual
        target.db.commit()
