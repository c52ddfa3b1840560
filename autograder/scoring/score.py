"""What a submission earned: its execution scored against the reference run, as a row.

Run by the batch's single writer, never by a process that runs student code: the execution
side (:mod:`autograder.execution.worker`) sends back an :class:`Execution` as data, and
:func:`score` decides each test cell from the recorded values (:mod:`.decide`) and sets the
points that go to the gradebook (:mod:`.gradebook`), ``grades.csv`` and the feedback page.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from autograder.assignments import GradedCell
from autograder.scoring.decide import Site, decide
from autograder.scoring.gradebook import SubmissionRecord
from autograder.scoring.records import completed
@dataclass
class GradeRow:
    student_id: str
    assignment: str
    score: float = 0.0
    max_score: float = 0.0
    parts: dict[str, float | None] = field(default_factory=dict)
    graded: bool = False  # False: nothing could be graded, see ``problem``
    notes: list[str] = field(default_factory=list)  # what the instructor should know about a graded row
    problem: str = ""  # why the row could not be graded

    @property
    def status(self) -> str:
        """The row's status column: ``graded`` with its notes, or ``not graded: <problem>``."""
        if not self.graded:
            return f"not graded: {self.problem}"
        return "graded" + (f" ({'; '.join(self.notes)})" if self.notes else "")


@dataclass
class Reference:
    """What the solution recorded in the reference run, and each test cell's recording sites."""

    records: dict[str, dict[str, list[dict]]]  # notebook -> site -> values
    sites: dict[str, dict[str, dict[str, Site]]]  # notebook -> test grade id -> sites
    # notebook -> test grade id -> why: test cells that record nothing, graded the plain nbgrader way
    plain: dict[str, dict[str, str]] = field(default_factory=dict)


def empty_row(student: str, assignment: str, cells: list[GradedCell], problem: str = "") -> GradeRow:
    return GradeRow(student, assignment, max_score=sum(c.points for c in cells),
                    parts={c.column: 0.0 for c in cells}, problem=problem)


@dataclass
class Execution:
    """What running one student's notebooks produced, before anything is decided.

    Made in a worker; scored by the batch's writer (:func:`score`) once the reference run
    is known, so submissions need not wait for the reference.
    """

    student: str
    notebooks: list[str]  # names of the notebooks graded (stems)
    records: dict[str, dict[str, list[dict]]]  # notebook -> site -> values the student's code recorded
    record: SubmissionRecord | None  # nbgrader's gradebook entries; None when nothing could be graded
    notes: list[str] = field(default_factory=list)
    problem: str = ""  # why the submission could not be graded


def _decided(record: SubmissionRecord, records: dict[str, dict[str, list[dict]]], reference: Reference,
             points: dict[str, float]) -> SubmissionRecord:
    """``record`` with the trusted pass/fail of every test cell in place of nbgrader's."""
    grades = []
    for grade in record.grades:
        cell_sites = reference.sites.get(grade.notebook, {}).get(grade.name)
        if cell_sites is not None and grade.notebook in records:
            student = records[grade.notebook]
            passed = (completed(student, grade.name)
                      and decide(cell_sites, student, reference.records[grade.notebook]))
            grade = grade._replace(auto=points[grade.name] if passed else 0.0, needs_manual=False)
        grades.append(grade)
    return replace(record, grades=grades)


def _grade_score(auto: float | None, manual: float | None, extra: float | None) -> float:
    """nbgrader's ``Grade.score``: the manual score wins over the automatic one; extra credit adds."""
    base = manual if manual is not None else auto
    return 0.0 if base is None else base + (extra or 0.0)


def score(execution: Execution, reference: Reference, assignment: str, cells: list[GradedCell],
          notes: list[str], sandbox: bool) -> tuple[GradeRow, SubmissionRecord | None]:
    """The row and the gradebook entries one execution earns against ``reference``."""
    row = empty_row(execution.student, assignment, cells)
    if execution.record is None:
        row.problem = execution.problem or "nbgrader recorded no grades"
        return row, None
    record = _decided(execution.record, execution.records, reference, {c.grade_id: c.points for c in cells})
    # Only the notebooks the student submitted: with tracks, the other track's notebook
    # has the same grade ids (all zero) and must not shadow them.
    grades = {(grade.notebook, grade.name): grade for grade in record.grades if grade.notebook in execution.notebooks}
    by_name = {name: grade for (_notebook, name), grade in grades.items()}  # a track's cells: any submitted notebook
    unanswered = []
    for cell in cells:
        grade = grades.get((cell.notebook, cell.grade_id)) if cell.notebook else by_name.get(cell.grade_id)
        if cell.notebook and cell.notebook not in execution.notebooks:
            row.parts[cell.column] = 0.0  # its notebook was not submitted (see the row's notes)
        elif grade is None or (cell.kind == "manual" and grade.manual is None
                               and (grade.needs_manual or grade.auto is None)):
            row.parts[cell.column] = None  # not graded yet (written answers wait for a person)
        else:
            row.parts[cell.column] = _grade_score(grade.auto, grade.manual, grade.extra)
            if cell.kind == "manual" and grade.manual is None:
                # nbgrader found the answer as released ("No response" in formgrader): 0, nothing to wait for.
                unanswered.append(cell.column)
    row.score = sum(v for v in row.parts.values() if v is not None)
    notes = [*notes, *execution.notes]
    plain = [grade_id for nb in execution.notebooks for grade_id in reference.plain.get(nb, {})]
    if plain:
        notes.append(f"graded the plain nbgrader way (no error: full points; not tamper-proof): {', '.join(plain)}")
    pending = [c.column for c in cells if row.parts[c.column] is None]
    if not sandbox:
        notes.append("UNSANDBOXED: graded with --unsafe")
    if pending:
        notes.append(f"awaiting manual grading: {', '.join(pending)}")
    if unanswered:
        notes.append(f"no response: {', '.join(unanswered)}")
    row.graded, row.notes = True, notes
    return row, record
