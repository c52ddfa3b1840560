"""The grading command on a tiny assignment: scores, CSV, feedback and bad input."""
from __future__ import annotations

import csv
from pathlib import Path

import nbformat
import pytest

from autograder.cli import main
from tests import tiny_course

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("course")
    source = tiny_course.make_course(root)
    assert main(["--course", str(root), "release"]) == 0
    release = nbformat.read(root / "notebooks" / tiny_course.NAME / f"{tiny_course.NAME}.ipynb", 4)
    solution = nbformat.read(source, 4)
    subs = root / "subs"
    cases = {
        "solved": solution,
        "blank": release,
        "one_wrong": tiny_course.with_answer(solution, "square", "def square(x):\n    return x + x"),
        "only_visible": tiny_course.with_answer(
            solution, "double", "def double(x):\n    return 6 if x == 3 else 0"),
        "edited_tests": _without_tests(tiny_course.with_answer(release, "double", "def double(x):\n    return 2*x")),
    }
    for student, notebook in cases.items():
        (subs / student).mkdir(parents=True)
        nbformat.write(notebook, subs / student / f"{tiny_course.NAME}.ipynb")
    (subs / "renamed").mkdir()
    nbformat.write(solution, subs / "renamed" / "my work (final).ipynb")
    (subs / "broken").mkdir()
    (subs / "broken" / f"{tiny_course.NAME}.ipynb").write_text('{"cells": [ this is not json')
    (subs / "empty").mkdir()
    out = root / "out"
    code = main(["--course", str(root), "grade", tiny_course.NAME, str(subs), "--out", str(out)])
    with (out / "grades.csv").open() as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    return {"code": code, "rows": rows, "out": out, "root": root}


def _without_tests(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A student who replaced the test cells by `pass` (the grader must restore them)."""
    copy = nbformat.from_dict(notebook)
    for cell in copy.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id", "").startswith("test_"):
            cell.source = "pass"
    return copy


def test_batch_completes_with_exit_code_zero(graded) -> None:
    assert graded["code"] == 0
    assert set(graded["rows"]) == {"solved", "blank", "one_wrong", "only_visible", "edited_tests",
                                   "renamed", "broken", "empty"}


def test_csv_columns(graded) -> None:
    header = list(next(iter(graded["rows"].values())).keys())
    assert header == ["student_id", "assignment", "score", "max_score",
                      "test_double", "test_square", "written", "status"]


@pytest.mark.parametrize(("student", "score", "double", "square"), [
    ("solved", 5, 2, 3),        # full autograded marks, despite a warning on stderr
    ("blank", 0, 0, 0),
    ("one_wrong", 2, 2, 0),     # exactly the broken part's 3 points lost
    ("only_visible", 3, 0, 3),  # hard-coding the visible example fails the hidden test
    ("edited_tests", 2, 2, 0),  # tests restored from the gradebook
    ("renamed", 5, 2, 3),
    ("broken", 0, 0, 0),
    ("empty", 0, 0, 0),
])
def test_scores(graded, student, score, double, square) -> None:
    row = graded["rows"][student]
    assert (float(row["score"]), float(row["test_double"]), float(row["test_square"])) == (score, double, square), row
    assert row["max_score"] == "6"


def test_status_says_why(graded) -> None:
    rows = graded["rows"]
    assert rows["solved"]["status"] == "graded (awaiting manual grading: written)"
    assert rows["solved"]["written"] == ""
    assert "not a valid notebook file (JSON error" in rows["broken"]["status"]
    assert rows["empty"]["status"] == f"not graded: no notebook found (expected {tiny_course.NAME}.ipynb)"
    assert "graded my work (final).ipynb as 99-tiny.ipynb" in rows["renamed"]["status"]


def test_feedback_shows_visible_messages_but_no_hidden_test(graded) -> None:
    feedback = graded["out"] / "feedback"
    assert sorted(p.stem for p in feedback.glob("*.html")) == sorted(graded["rows"])
    one_wrong = (feedback / "one_wrong.html").read_text()
    assert "square(3): 1 of 1 values differ" in one_wrong and "expected 9" in one_wrong
    only_visible = (feedback / "only_visible.html").read_text()
    assert "a hidden test with other shapes or values fails" in only_visible
    assert "not answered yet" in (feedback / "blank.html").read_text()
    for page in feedback.glob("*.html"):
        text = page.read_text()
        for secret in ("-21.5", "-43", "square(-7)", "HIDDEN", "BEGIN SOLUTION", "return 2 * x"):
            assert secret not in text, f"{page.name} reveals {secret!r}"


def test_unknown_assignment_is_one_clear_error(graded, capsys, tmp_path) -> None:
    code = main(["--course", str(graded["root"]), "grade", "42-nope", str(tmp_path), "--out", str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "unknown assignment '42-nope'" in err and "99-tiny" in err


def test_release_has_no_solution(graded) -> None:
    released = (graded["root"] / "notebooks" / tiny_course.NAME / f"{tiny_course.NAME}.ipynb").read_text()
    for secret in ("BEGIN SOLUTION", "HIDDEN", "return 2 * x", "-21.5", "Doubling is linear"):
        assert secret not in released
    assert "raise NotImplementedError()" in released and "YOUR ANSWER HERE" in released


def _export(graded, fmt: str) -> list[list[str]]:
    target = graded["out"] / f"export-{fmt}.csv"
    assert main(["export", str(graded["out"]), "--format", fmt, "--output", str(target)]) == 0
    with target.open(encoding="utf-8-sig") as handle:
        return list(csv.reader(handle))


def test_export_csv_matches_the_gradebook(graded) -> None:
    rows = _export(graded, "csv")
    assert rows[0] == ["student_id", tiny_course.NAME, "total", "max_total"]
    scores = {r[0]: r[1] for r in rows[1:]}
    assert scores["solved"] == "5" and scores["blank"] == "0" and scores["one_wrong"] == "2"
    assert {r[3] for r in rows[1:]} == {"6"}  # 5 autograded points + 1 written
    assert "broken" not in scores  # never reached the gradebook; grades.csv says why


def test_export_moodle_and_canvas_layouts(graded) -> None:
    moodle = _export(graded, "moodle")
    assert moodle[0] == ["ID number", tiny_course.NAME]
    assert ["solved", "5"] in moodle
    canvas = _export(graded, "canvas")
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", tiny_course.NAME]
    assert canvas[1] == ["Points Possible", "", "", "", "", "6"]
    assert ["renamed", "", "renamed", "renamed", "", "5"] in canvas


def test_export_without_a_gradebook_is_a_clear_error(tmp_path: Path, capsys) -> None:
    assert main(["export", str(tmp_path), "--output", str(tmp_path / "x.csv")]) == 2
    assert "no gradebook at" in capsys.readouterr().err


def _assert_same_as_serial(graded, out: Path) -> None:
    """``out`` holds the same grades as the serial run, in one gradebook and one course folder."""
    from nbgrader.api import Gradebook

    with (out / "grades.csv").open() as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert rows == graded["rows"]
    with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gradebook:
        stored = {s.student.id: s.score for s in gradebook.find_assignment(tiny_course.NAME).submissions}
    graded_ok = {s: float(r["score"]) for s, r in rows.items() if r["status"].startswith("graded")}
    assert stored == graded_ok
    assert not (out / "workers").exists()
    for student in graded_ok:  # formgrader finds the autograded notebooks in the main course folder
        assert list((out / "course" / "autograded" / student / tiny_course.NAME).glob("*.ipynb"))


def test_two_workers_give_the_same_grades_and_one_gradebook(graded) -> None:
    out = graded["root"] / "out-parallel"
    code = main(["--course", str(graded["root"]), "grade", tiny_course.NAME, str(graded["root"] / "subs"),
                 "--out", str(out), "--workers", "2"])
    assert code == 0
    _assert_same_as_serial(graded, out)


def test_a_dask_cluster_gives_the_same_grades_and_one_gradebook(graded) -> None:
    distributed = pytest.importorskip("distributed")
    out = graded["root"] / "out-dask"
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster:
        code = main(["--course", str(graded["root"]), "grade", tiny_course.NAME, str(graded["root"] / "subs"),
                     "--out", str(out), "--scheduler", cluster.scheduler_address])
        with distributed.Client(cluster) as client:
            left = client.run(lambda dask_worker: [str(p) for p in Path(dask_worker.local_directory)
                                                   .glob("dlbook-grading/*/")])
    assert code == 0
    _assert_same_as_serial(graded, out)
    assert not any(left.values()), f"grading folders left on the Dask workers: {left}"

def test_a_solution_that_fails_its_own_tests_stops_the_batch(tmp_path: Path, capsys) -> None:
    source = tiny_course.make_course(tmp_path)
    solution = nbformat.read(source, 4)
    nbformat.write(tiny_course.with_answer(solution, "square", "def square(x):\n    return x * x + 1"), source)
    for student in ("a", "b", "c", "d"):
        (tmp_path / "subs" / student).mkdir(parents=True)
        nbformat.write(solution, tmp_path / "subs" / student / f"{tiny_course.NAME}.ipynb")
    out = tmp_path / "out"
    code = main(["--course", str(tmp_path), "grade", tiny_course.NAME, str(tmp_path / "subs"), "--out", str(out),
                 "--workers", "2"])
    assert code == 2
    err = capsys.readouterr().err
    assert "fails its own tests, cell by cell:\n  99-tiny:test_square: a check fails" in err, err
    assert "test_double" not in err
    assert not (out / "grades.csv").exists()  # no grades from a broken reference
