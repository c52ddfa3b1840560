"""nbgrader's ``timestamp.txt`` and the due date: late submissions as nbgrader treats them (issue 15)."""
from __future__ import annotations

import csv
from datetime import datetime

import nbformat
import pytest

from autograder.batch import _late, _parse_due_date
from autograder.scoring.score import GradeRow
from autograder.scoring.gradebook import GradeEntry, SubmissionRecord
from autograder.execution.sandbox import check_sandbox
from tests import tiny_course

DUE = "2015-02-02 14:58:23.948203 America/Los_Angeles"  # nbgrader's own test's due date
ONE_HOUR_LATE = "2015-02-02 15:58:23.948203 America/Los_Angeles"
ON_TIME = "2015-02-01 14:58:23.948203 America/Los_Angeles"


def _record(timestamp: datetime | None) -> SubmissionRecord:
    return SubmissionRecord("a", "s", timestamp, grades=[GradeEntry("nb", "t1", 2.0, None, None, False),
                                                         GradeEntry("nb", "t2", 0.0, 1.5, None, False)], comments=[])


@pytest.mark.parametrize("method, score, penalty, said", [
    ("none", 3.5, None, "no penalty (late penalty 'none')"),
    ("zero", 0.0, 3.5, "penalty 3.5 (late penalty 'zero')"),
])
def test_a_late_submission_gets_nbgraders_penalty(method: str, score: float, penalty: float | None, said: str) -> None:
    due = _parse_due_date(DUE)
    row, record = GradeRow("s", "a", 3.5, 5, graded=True), _record(_parse_due_date(ONE_HOUR_LATE))
    _late(row, record, due, method)
    assert (row.score, record.penalties) == (score, {"nb": penalty})
    assert row.status == ("graded (late by 1 h 0 min (submitted 2015-02-02 23:58:23 UTC, due 2015-02-02 22:58:23 UTC): "
                          f"{said})")


def test_on_time_or_without_a_timestamp_is_not_late() -> None:
    due = _parse_due_date(DUE)
    for timestamp in (_parse_due_date(ON_TIME), None):
        row, record = GradeRow("s", "a", 3.5, 5, graded=True, notes=["x"]), _record(timestamp)
        _late(row, record, due, "zero")
        assert (row.score, row.status, record.penalties) == (3.5, "graded (x)", {})


@pytest.mark.slow
@pytest.mark.skipif(check_sandbox() is not None, reason=f"no sandbox here: {check_sandbox()}")
def test_timestamp_txt_makes_a_submission_late(tmp_path) -> None:
    from nbgrader.api import Gradebook

    from autograder.cli import main

    solution = nbformat.read(tiny_course.make_course(tmp_path), 4)
    subs = tmp_path / "subs"
    stamps = {"on_time": ON_TIME, "late": ONE_HOUR_LATE, "no_stamp": None, "bad_stamp": "next tuesday-ish"}
    for student, stamp in stamps.items():
        folder = subs / student / tiny_course.NAME  # nbgrader's layout: <student>/<assignment>/
        folder.mkdir(parents=True)
        nbformat.write(solution, folder / f"{tiny_course.NAME}.ipynb")
        if stamp is not None:
            (folder / "timestamp.txt").write_text(stamp + "\n")
    out = tmp_path / "out"
    code = main(["--course", str(tmp_path), "grade", tiny_course.NAME, str(subs), "--out", str(out),
                 "--due-date", DUE, "--late-penalty", "zero"])
    assert code == 0
    with (out / "grades.csv").open() as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    scores = {s: rows[s]["score"] for s in stamps}
    assert scores == {"on_time": "5", "late": "0", "no_stamp": "5", "bad_stamp": "5"}, rows
    assert "late by 1 h 0 min" in rows["late"]["status"] and "penalty 5 (late penalty 'zero')" in rows["late"]["status"]
    assert "late" not in rows["on_time"]["status"]
    assert "timestamp.txt holds no date nbgrader reads: ignored" in rows["bad_stamp"]["status"]
    assert "late by 1 h 0 min" in (out / "feedback" / "late.html").read_text()
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gradebook:
        late = gradebook.find_submission(tiny_course.NAME, "late")
        assert (late.total_seconds_late, late.late_submission_penalty) == (3600, 5)
        assert gradebook.find_submission(tiny_course.NAME, "on_time").total_seconds_late == 0
    assert (out / "course" / "autograded" / "late" / tiny_course.NAME / "timestamp.txt").read_text().startswith("2015")
    assert main(["export", str(out), "--format", "csv", "--output", str(tmp_path / "grades.csv")]) == 0
    exported = (tmp_path / "grades.csv").read_text()
    assert "late,0,0,6" in exported.splitlines() and "on_time,5,5,6" in exported.splitlines(), exported
