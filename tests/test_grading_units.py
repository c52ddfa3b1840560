"""The grader's trusted steps on in-memory notebooks, as nbgrader's tests/preprocessors do.

Each test builds its notebook with nbformat (the tiny course's source, edited) and calls one
step: checking a submitted file, undoing edited grading metadata, the stderr rule, scoring
an execution against the reference, the feedback page and the LMS export rows.  Nothing here
starts a kernel, nbgrader or a sandbox.
"""
from __future__ import annotations

import html
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from nbgrader.utils import determine_grade

from autograder import submissions
from autograder.assignments import GradedCell
from autograder.scoring.export import GradeTable, _max_score, export_rows
from autograder.scoring.feedback import HIDDEN_FAILED, write_feedback
from autograder.scoring.score import Execution, Reference, score
from autograder.scoring.gradebook import GradeEntry, SubmissionRecord
from autograder.execution.preprocessors import StderrIsNotFailure
from autograder.scoring.decide import Site
from autograder.scoring.records import completion_site
from autograder.submissions import check_notebook, restore_grading_metadata
from dlbook.checks import HiddenTestFailure, hidden
from dlbook.recording import encode
from tests import tiny_course


def _grade_ids(notebook: nbformat.NotebookNode) -> list[str | None]:
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in notebook.cells]


def _cell(notebook: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _restore(student: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, list[str], list[str]]:
    content, undone, restored = restore_grading_metadata(nbformat.writes(student).encode(),
                                                         tiny_course.source_notebook())
    return nbformat.reads(content.decode(), 4), undone, restored


# ------------------------------------------------------------------ check_notebook

@pytest.mark.parametrize("content, why", [
    (b"", "is empty (0 bytes)"),
    (b"\xff\xfe\x00binary", "is not a text file"),
    (b'{"cells": [\n  1,\n', "is not a valid notebook file (JSON error at line 3"),
    (b"[1, 2]", "is JSON but not a Jupyter notebook (no 'cells')"),
    (b'{"metadata": {}}', "is JSON but not a Jupyter notebook (no 'cells')"),
    (b'{"cells": 3, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}', "is not a valid notebook: "),
    (b'{"cells": [{"cell_type": "code"}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}',
     "is not a valid notebook: "),
])
def test_check_notebook_says_what_is_wrong(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "answer.ipynb"
    path.write_bytes(content)
    message = check_notebook(path)
    assert message is not None and message.startswith(f"answer.ipynb {why}"), message


def test_check_notebook_refuses_missing_and_oversized_files(tmp_path: Path, monkeypatch) -> None:
    assert check_notebook(tmp_path / "gone.ipynb").startswith("cannot read gone.ipynb")
    path = tmp_path / "big.ipynb"
    nbformat.write(tiny_course.source_notebook(), path)
    assert check_notebook(path) is None
    monkeypatch.setattr(submissions, "MAX_NOTEBOOK_BYTES", path.stat().st_size - 1)
    assert "over the" in check_notebook(path)


# ------------------------------------------------------------------ restore_grading_metadata

def test_an_untouched_notebook_comes_back_as_it_was() -> None:
    student = tiny_course.with_answer(tiny_course.source_notebook(), "double", "def double(x):\n    return x + x")
    restored, undone, put_back = _restore(student)
    assert (undone, put_back) == ([], [])
    assert [c.source for c in restored.cells] == [c.source for c in student.cells]
    assert [c.metadata for c in restored.cells] == [c.metadata for c in student.cells]


def test_edited_flags_and_points_are_undone_and_the_code_kept() -> None:
    student = tiny_course.with_answer(tiny_course.source_notebook(), "double", "def double(x):\n    return x + x")
    _cell(student, "test_double").metadata["nbgrader"].update(points=200, locked=False)
    _cell(student, "double").metadata["nbgrader"]["solution"] = False
    restored, undone, _ = _restore(student)
    assert undone == ["double: metadata restored", "test_double: metadata restored"]
    assert _cell(restored, "test_double").metadata["nbgrader"]["points"] == 2
    assert _cell(restored, "double").metadata["nbgrader"]["solution"] is True
    assert _cell(restored, "double").source == "def double(x):\n    return x + x"


def test_bookkeeping_that_nbgrader_recomputes_is_no_edit() -> None:
    student = tiny_course.source_notebook()
    _cell(student, "test_double").metadata["nbgrader"].update(checksum="abc", cell_type="code")
    assert _restore(student)[1] == []


def test_a_locked_cell_turned_into_markdown_is_code_again() -> None:
    student = tiny_course.source_notebook()
    index = _grade_ids(student).index("test_square")
    student.cells[index] = new_markdown_cell(student.cells[index].source, metadata=student.cells[index].metadata)
    restored, undone, _ = _restore(student)
    assert undone == ["test_square: metadata restored"]
    assert restored.cells[index].cell_type == "code" and restored.cells[index].source == student.cells[index].source


def test_repeated_and_unknown_grade_ids_become_plain_cells() -> None:
    student = tiny_course.source_notebook()
    copy = nbformat.from_dict(_cell(student, "double"))
    copy["id"] = "a-copy"
    student.cells.append(copy)
    student.cells.append(new_code_cell("1", metadata={"nbgrader": {"grade_id": "made_up", "grade": True,
                                                                   "points": 99, "solution": False}}))
    restored, undone, _ = _restore(student)
    count = len(student.cells)
    assert undone == [f"cell {count - 1}: nbgrader metadata removed (unknown or repeated id)",
                      f"cell {count}: nbgrader metadata removed (unknown or repeated id)"]
    assert "nbgrader" not in restored.cells[-1].metadata and "nbgrader" not in restored.cells[-2].metadata
    assert _grade_ids(restored).count("double") == 1


def test_deleted_locked_cells_are_put_back_after_their_answer() -> None:
    source = tiny_course.source_notebook()
    student = nbformat.from_dict(source)
    student.cells = [c for c in student.cells
                     if c.metadata["nbgrader"]["grade_id"] not in ("test_double", "intro")]
    restored, undone, put_back = _restore(student)
    assert undone == [] and put_back == ["test_double"]  # code cells that will run; the markdown one too
    assert _grade_ids(restored) == _grade_ids(source)
    test = _cell(restored, "test_double")
    assert test.source == _cell(source, "test_double").source and test.outputs == []
    ids = [c.get("id") for c in restored.cells]
    assert len(set(ids)) == len(ids) and all(ids)  # nbformat 4.5 notebooks give every cell an id
    nbformat.validate(restored)


# ------------------------------------------------------------------ the stderr rule

def _test_cell(*outputs: nbformat.NotebookNode) -> nbformat.NotebookNode:
    cell = new_code_cell("check()", metadata={"nbgrader": {"grade": True, "grade_id": "t", "points": 2,
                                                           "solution": False, "locked": True}})
    cell.outputs = list(outputs)
    return cell


def _after_rule(cell: nbformat.NotebookNode) -> nbformat.NotebookNode:
    notebook = new_notebook(cells=[cell])
    StderrIsNotFailure().preprocess(notebook, {})
    return notebook.cells[0]


def test_text_on_stderr_costs_no_points_and_stays_visible() -> None:
    warned = _test_cell(new_output("stream", name="stderr", text="UserWarning: slow\n"))
    assert determine_grade(warned)[0] == 0  # nbgrader alone: a warning fails the test
    kept = _after_rule(warned)
    assert determine_grade(kept) == (2, 2)
    assert kept.outputs[0]["name"] == "stdout" and kept.outputs[0]["text"] == "[stderr] UserWarning: slow\n"


def test_an_error_still_fails_after_the_stderr_rule() -> None:
    failed = _after_rule(_test_cell(new_output("stream", name="stderr", text="warning\n"),
                                    new_output("error", ename="AssertionError", evalue="no", traceback=[])))
    assert determine_grade(failed)[0] == 0


# ------------------------------------------------------------------ score: the writer's decision

CELLS = [GradedCell("test_double", 2.0, "autograded", True), GradedCell("test_square", 3.0, "autograded", True),
         GradedCell("written", 1.0, "manual", False)]
NB = tiny_course.NAME
REFERENCE = Reference(
    records={NB: {"test_double/0": [encode(6.0)], "test_square/0": [encode(9.0)],
                  completion_site("test_double"): [{"text": "completed"}],
                  completion_site("test_square"): [{"text": "completed"}]}},
    sites={NB: {"test_double": {"test_double/0": Site(1e-5, 1e-6)},
                "test_square": {"test_square/0": Site(1e-5, 1e-6)}}})


def _execution(records: dict, written: tuple, notes: list[str] | None = None) -> Execution:
    # nbgrader's own view (full points everywhere): the decision must not take it.
    grades = [GradeEntry(NB, "test_double", 2.0, None, None, False),
              GradeEntry(NB, "test_square", 3.0, None, None, False),
              GradeEntry(NB, "written", *written)]
    record = SubmissionRecord(NB, "s1", None, grades=grades, comments=[])
    return Execution("s1", [NB], {NB: records}, record, notes=notes or [])


def _student(double: float, square: float, completed: tuple[str, ...] = ("test_double", "test_square")) -> dict:
    return {"test_double/0": [encode(double)], "test_square/0": [encode(square)],
            **{completion_site(g): [{"text": "completed"}] for g in completed}}


def test_score_takes_the_recorded_decision_not_nbgraders() -> None:
    row, record = score(_execution(_student(6.0, 10.0), (None, 1.0, None, False)), REFERENCE, NB, CELLS, [], True)
    assert row.parts == {"test_double": 2.0, "test_square": 0.0, "written": 1.0}
    assert (row.score, row.max_score, row.status) == (3.0, 6.0, "graded")
    assert record.grades[:2] == [(NB, "test_double", 2.0, None, None, False),
                                 (NB, "test_square", 0.0, None, None, False)]


def test_a_test_cell_that_did_not_complete_scores_nothing() -> None:
    execution = _execution(_student(6.0, 9.0, completed=("test_square",)), (None, 1.0, None, False))
    row, _ = score(execution, REFERENCE, NB, CELLS, [], True)
    assert row.parts["test_double"] == 0.0 and row.parts["test_square"] == 3.0


def test_status_notes_in_their_order() -> None:
    execution = _execution(_student(6.0, 9.0), (None, None, None, True), notes=["kernel restarted 1x, first because x"])
    row, _ = score(execution, REFERENCE, NB, CELLS, ["track a"], False)
    assert row.parts["written"] is None and row.score == 5.0
    assert row.status == ("graded (track a; kernel restarted 1x, first because x; UNSANDBOXED: graded with --unsafe; "
                          "awaiting manual grading: written)")


def test_a_written_answer_left_as_released_is_no_response() -> None:
    row, _ = score(_execution(_student(6.0, 9.0), (0.0, None, None, False)), REFERENCE, NB, CELLS, [], True)
    assert row.parts["written"] == 0.0 and row.status == "graded (no response: written)"


def test_an_execution_without_gradebook_entries_is_not_graded() -> None:
    execution = Execution("s1", [NB], {}, None, problem="nbgrader failed (boom)")
    row, record = score(execution, REFERENCE, NB, CELLS, ["ignored"], True)
    assert record is None and row.status == "not graded: nbgrader failed (boom)"
    assert row.parts == {"test_double": 0.0, "test_square": 0.0, "written": 0.0} and row.max_score == 6.0


def test_a_notebook_not_submitted_scores_zero_and_the_others_count(tmp_path) -> None:
    """As nbgrader (test_grade_missing_notebook): the notebooks that are there are graded, a missing one scores 0."""
    from dataclasses import replace

    from autograder.submissions import discover

    (tmp_path / "s1").mkdir()
    nbformat.write(tiny_course.source_notebook(), tmp_path / "s1" / "p1.ipynb")
    (found,) = discover(tmp_path, "ps1", ["p1.ipynb", "p2.ipynb"])
    assert (found.problem, list(found.files)) == (None, ["p1.ipynb"])
    assert found.notes == ["p2.ipynb not submitted: its parts score 0"]
    cells = [replace(c, notebook=NB) for c in CELLS] + [GradedCell("test_other", 4.0, "autograded", True, "p2"),
                                                        GradedCell("essay", 2.0, "manual", False, "p2")]
    row, _ = score(_execution(_student(6.0, 9.0), (None, 1.0, None, False)), REFERENCE, NB, cells, found.notes, True)
    assert row.parts == {"test_double": 2.0, "test_square": 3.0, "written": 1.0, "test_other": 0.0, "essay": 0.0}
    assert (row.score, row.max_score) == (6.0, 12.0) and "p2.ipynb not submitted: its parts score 0" in row.status


def test_notebooks_sharing_grade_ids_get_a_column_each() -> None:
    """nbgrader's test_grade_missing_notebook grades two notebooks with the same ids: one column per notebook and id."""
    from dataclasses import replace

    cells = [replace(c, notebook=NB, qualified=c.grade_id == "test_double") for c in CELLS]
    cells.append(GradedCell("test_double", 2.0, "autograded", True, "p2", qualified=True))
    execution = _execution(_student(6.0, 9.0), (None, 1.0, None, False))
    execution.record.grades.append(GradeEntry("p2", "test_double", 0.0, None, None, False))
    execution.notebooks.append("p2")
    row, _ = score(execution, REFERENCE, NB, cells, [], True)
    assert row.parts == {f"{NB}:test_double": 2.0, "test_square": 3.0, "written": 1.0, "p2:test_double": 0.0}
    assert row.score == 6.0


# ------------------------------------------------------------------ the feedback page

def _autograded(tmp_path: Path, error: tuple[str, str] | None) -> Path:
    notebook = tiny_course.source_notebook()
    if error:
        _cell(notebook, "test_double").outputs = [new_output("error", ename=error[0], evalue=error[1], traceback=[])]
    folder = tmp_path / "autograded"
    folder.mkdir()
    nbformat.write(notebook, folder / f"{NB}.ipynb")
    return folder


@pytest.mark.parametrize("error, shown", [
    (("AssertionError", "double(3) is 5, expected 6"), "AssertionError: double(3) is 5, expected 6"),
    (("NotImplementedError", ""), "not answered yet"),
    (None, HIDDEN_FAILED),  # no visible error: the hidden values were wrong
])
def test_a_failed_test_shows_its_visible_message_or_the_hidden_one(tmp_path: Path, error, shown: str) -> None:
    row, _ = score(_execution(_student(0.0, 9.0), (None, 1.0, None, False)), REFERENCE, NB, CELLS, [], True)
    page = tmp_path / "page.html"
    write_feedback(row, CELLS, _autograded(tmp_path, error), page)
    text = page.read_text()
    assert html.escape(shown) in text and "0 / 2" in text and "3 / 3" in text


def test_a_row_that_was_not_graded_shows_no_cell_message(tmp_path: Path) -> None:
    row, _ = score(Execution("s1", [NB], {}, None, problem="nbgrader failed"), REFERENCE, NB, CELLS, [], True)
    page = tmp_path / "page.html"
    write_feedback(row, CELLS, _autograded(tmp_path, ("AssertionError", "a message")), page)
    assert "a message" not in page.read_text() and "not graded: nbgrader failed" in page.read_text()


def test_the_page_says_for_a_hidden_failure_what_the_kernel_said() -> None:
    with pytest.raises(HiddenTestFailure) as info, hidden("double"):
        raise AssertionError("secret -43")
    assert str(info.value) == f"double: {HIDDEN_FAILED}"


# ------------------------------------------------------------------ export rows

TABLE = GradeTable(max_scores={"02-b": 10.0, "01-a": 5.0},
                   scores={"zoe": {"01-a": 4.5}, "ann": {"01-a": 5.0, "02-b": 7.25}})


def test_csv_rows_sum_what_each_student_has() -> None:
    assert export_rows(TABLE, "csv") == [["student_id", "01-a", "02-b", "total", "max_total"],
                                         ["ann", "5", "7.25", "12.25", "15"],
                                         ["zoe", "4.5", "", "4.5", "15"]]


def test_moodle_rows_map_users_by_id_number() -> None:
    assert export_rows(TABLE, "moodle") == [["ID number", "01-a", "02-b"], ["ann", "5", "7.25"], ["zoe", "4.5", ""]]


def test_canvas_rows_have_points_possible_and_sis_ids() -> None:
    rows = export_rows(TABLE, "canvas")
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "01-a", "02-b"]
    assert rows[1] == ["Points Possible", "", "", "", "", "5", "10"]
    assert rows[2:] == [["ann", "", "ann", "ann", "", "5", "7.25"], ["zoe", "", "zoe", "zoe", "", "4.5", ""]]


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown export format 'xlsx'"):
        export_rows(TABLE, "xlsx")


def test_an_assignment_with_tracks_counts_one_track() -> None:
    def assignment(*notebooks: tuple[str, float]) -> SimpleNamespace:
        return SimpleNamespace(name="03-cam", max_score=sum(m for _, m in notebooks),
                               notebooks=[SimpleNamespace(name=n, max_score=m) for n, m in notebooks])

    assert _max_score(assignment(("03-cam-pytorch", 6.0), ("03-cam-keras", 6.0))) == 6.0
    assert _max_score(assignment(("03-cam", 6.0), ("extra", 2.0))) == 8.0
    assert _max_score(assignment(("03-cam-pytorch", 6.0))) == 6.0
