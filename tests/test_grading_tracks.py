"""Assignments with tracks (one notebook per framework): a student submits one of them."""
from __future__ import annotations

import csv

import nbformat
import pytest

from autograder.cli import main
from tests import tiny_course

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("course")
    sources = tiny_course.make_tracked_course(root)
    solution = {t: nbformat.read(p, 4) for t, p in sources.items()}
    subs = root / "subs"
    files = {
        "on_a": {f"{tiny_course.NAME}-a.ipynb": solution["a"]},
        "on_b_wrong_square": {f"{tiny_course.NAME}-b.ipynb": tiny_course.with_answer(
            solution["b"], "square", "def square(x):\n    return x + x")},
        "renamed_b": {"homework.ipynb": solution["b"]},
        "both": {f"{tiny_course.NAME}-a.ipynb": solution["a"], f"{tiny_course.NAME}-b.ipynb": solution["b"]},
    }
    for student, notebooks in files.items():
        (subs / student).mkdir(parents=True)
        for name, notebook in notebooks.items():
            nbformat.write(notebook, subs / student / name)
    out = root / "out"
    code = main(["--course", str(root), "grade", tiny_course.NAME, str(subs), "--out", str(out)])
    with (out / "grades.csv").open() as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"code": code, "rows": rows, "out": out}


def test_one_track_is_graded_out_of_one_track(graded) -> None:
    rows = graded["rows"]
    assert graded["code"] == 0
    assert list(rows["on_a"])[:7] == ["student_id", "assignment", "score", "max_score", "test_double",
                                       "test_square", "written"]
    assert (rows["on_a"]["score"], rows["on_a"]["max_score"]) == ("5", "6")
    assert "track a" in rows["on_a"]["status"]
    wrong = rows["on_b_wrong_square"]
    assert (wrong["score"], wrong["test_double"], wrong["test_square"]) == ("2", "2", "0"), wrong
    assert "track b" in wrong["status"]


def test_a_renamed_file_is_recognised_by_its_track_cells(graded) -> None:
    row = graded["rows"]["renamed_b"]
    assert row["score"] == "5" and "track b" in row["status"] and "homework.ipynb" in row["status"]


def test_two_tracks_at_once_is_refused_with_a_reason(graded) -> None:
    row = graded["rows"]["both"]
    assert row["status"].startswith("not graded") and "one track" in row["status"]


def test_export_counts_one_track(graded) -> None:
    target = graded["out"] / "canvas.csv"
    assert main(["export", str(graded["out"]), "--format", "canvas", "--output", str(target)]) == 0
    rows = list(csv.reader(target.open()))
    assert rows[1][-1] == "6"
    assert {r[0]: r[-1] for r in rows[2:]} == {"on_a": "5", "on_b_wrong_square": "2", "renamed_b": "5"}
