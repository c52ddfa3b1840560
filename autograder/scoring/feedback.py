"""One feedback page per student: parts, points and the visible tests' messages.

Nothing here may reveal a hidden test: the page is built from the gradebook's points
and, for a failed test cell, the exception's type and message only — never a cell's
source, a traceback or printed output.  Hidden tests raise ``HiddenTestFailure`` with a
fixed message (see ``dlbook.checks.hidden``), so their inputs and expected values never
reach an exception message either.
"""
from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import nbformat

from autograder.assignments import GradedCell

if TYPE_CHECKING:
    from autograder.scoring.score import GradeRow

MAX_MESSAGE = 600
NOT_ANSWERED = "NotImplementedError"
HIDDEN_FAILED = ("the visible tests pass but a hidden test with other shapes or values fails. "
                 "Check your code for cases the visible tests do not cover.")


def cell_messages(autograded_dir: Path) -> dict[str, str]:
    """grade_id → 'ExceptionType: message' for each test cell that raised."""
    messages: dict[str, str] = {}
    for path in sorted(autograded_dir.glob("*.ipynb")) if autograded_dir.is_dir() else []:
        try:
            notebook = nbformat.read(path, as_version=4)
        except Exception:  # noqa: BLE001 - a damaged notebook simply has no messages
            continue
        for cell in notebook.cells:
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
            errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
            if grade_id and errors:
                name, value = str(errors[0].get("ename", "Error")), str(errors[0].get("evalue", ""))
                if name == NOT_ANSWERED:
                    messages[grade_id] = "not answered yet (the code still raises NotImplementedError)"
                else:
                    text = f"{name}: {value}" if value else name
                    messages[grade_id] = text[:MAX_MESSAGE] + ("…" if len(text) > MAX_MESSAGE else "")
    return messages


def _row_html(cell: GradedCell, score: float | None, message: str | None) -> str:
    if score is None:
        result = "awaiting manual grading"
    elif score >= cell.points:
        result = "passed" if cell.kind == "autograded" else "graded"
    else:
        result = "failed" if cell.kind == "autograded" else "graded"
    points = "–" if score is None else f"{score:g}"
    if result == "failed" and not message:
        # No error in the visible part: the grader's comparison of hidden values failed.
        message = HIDDEN_FAILED
    detail = f"<div class='msg'>{html.escape(message)}</div>" if message and result == "failed" else ""
    return (f"<tr class='{result.split()[0]}'><td><code>{html.escape(cell.grade_id)}</code></td>"
            f"<td>{cell.kind}</td><td>{points} / {cell.points:g}</td><td>{result}{detail}</td></tr>")


PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Feedback: {assignment}, {student}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; }}
table {{ border-collapse: collapse; width: 100%; }}
td, th {{ border-bottom: 1px solid #ddd; padding: .45rem; text-align: left; vertical-align: top; }}
tr.passed td:last-child {{ color: #0a6b2d; }} tr.failed td:last-child {{ color: #a4161a; }}
.msg {{ color: #333; font-family: ui-monospace, monospace; font-size: .9em; white-space: pre-wrap; }}
.status {{ background: #f4f4f4; padding: .6rem; border-radius: .3rem; }}
</style></head><body>
<h1>Assignment {assignment}</h1>
<p>Student <strong>{student}</strong> — score <strong>{score:g} / {max_score:g}</strong></p>
<p class="status">Status: {status}</p>
<table><thead><tr><th>part</th><th>graded</th><th>points</th><th>result</th></tr></thead>
<tbody>
{rows}
</tbody></table>
<p>Hidden tests check your code on other shapes and values; when one fails, this page says
only that it failed. Written answers are graded by hand and count once graded.</p>
</body></html>
"""


def write_feedback(row: "GradeRow", cells: list[GradedCell], autograded_dir: Path, path: Path) -> None:
    messages = cell_messages(autograded_dir) if row.graded else {}
    rows = "\n".join(_row_html(c, row.parts.get(c.column), messages.get(c.grade_id)) for c in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(PAGE.format(
        assignment=html.escape(row.assignment), student=html.escape(row.student_id),
        score=row.score, max_score=row.max_score, status=html.escape(row.status), rows=rows,
    ), encoding="utf-8")
