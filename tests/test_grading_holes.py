"""Holes found by hostile submissions (issue 15): each case earns exactly what its code solves.

- a submission that searches everything it can read or list for the hidden tests, the
  solution or another student's work finds nothing;
- lines written to the records file outside a test cell's run, or by a test cell that then
  raises, earn nothing;
- an honest answer followed by an endless loop in the same cell is interrupted (the kernel
  gets the SIGINT), keeps its function and says "interrupted";
- deleted test cells, and test cells turned into markdown, are put back and run;
- a solution that fails its own hidden test stops the batch with a message naming the cell.
"""
from __future__ import annotations

import json
import re
import time

import nbformat
import pytest

from autograder.cli import main
from autograder.execution.sandbox import check_sandbox
from tests import tiny_course

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(check_sandbox() is not None, reason=f"no sandbox here: {check_sandbox()}")]

OTHER_MARKER = "other-student-" + "work-7d1e"  # in another student's notebook only

# Searches every path the kernel can list and every file it can read (files on read-only
# software mounts only if created or changed since the test began: everything secret is
# written by this test), its environment and every visible process's command line and
# environment, for the hidden tests' inputs and expected values, the hidden-test and
# solution markers, the solution's code and another student's work. The needles are
# built at run time, so this code (which the student's own notebook holds) matches none.
SNOOP = '''import os, stat
_NEEDLES = [s.encode() for s in ("-21" + ".5", "-43" + ".0)", "square(" + "-7)", "HIDDEN" + " TESTS",
                                 "BEGIN " + "SOLUTION", "return 2 " + "* x", "return x " + "* x",
                                 "other-student-" + "work-7d1e")]
_START = {start!r}
def _snoop():
    found, files, listed = [], 0, 0
    for key, value in os.environ.items():
        if any(n in (key + "=" + value).encode() for n in _NEEDLES):
            found.append("environment: " + key)
    for pid in os.listdir("/proc"):
        for name in ("cmdline", "environ") if pid.isdigit() else ():
            try:
                with open(f"/proc/{{pid}}/{{name}}", "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            if any(n in data for n in _NEEDLES):
                found.append(f"/proc/{{pid}}/{{name}}")
    for top, dirs, names in os.walk("/"):
        if top in ("/proc", "/sys", "/dev"):
            dirs[:] = []
            continue
        for name in names + dirs:
            listed += 1
            if any(n in name.encode() for n in _NEEDLES):
                found.append("listed: " + os.path.join(top, name))
        for name in names:
            path = os.path.join(top, name)
            try:
                info = os.lstat(path)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode) or info.st_size > 64 * 2**20:
                continue
            if max(info.st_mtime, info.st_ctime) < _START and not os.access(path, os.W_OK):
                continue
            try:
                with open(path, "rb") as handle:
                    data = handle.read()
            except OSError:
                continue
            files += 1
            if any(n in data for n in _NEEDLES):
                found.append(path)
    return found, files, listed
_found, _files, _listed = _snoop()
print("listed", _listed, "paths, read", _files, "files; found:", _found)
def double(x):
    return x + x if not _found and _listed > 1000 else 0
'''

# Lines for both sites of test_double (visible: double(3) = 6, hidden: double(-21.5) = -43),
# appended to the records file by an answer cell; `double` is never defined, so the test
# cell raises NameError.
FORGE = '''import json, os
def _forge():
    path = os.path.join(os.environ.get("DLBOOK_RECORDS_DIR", "."), ".dlbook-records-99-tiny.jsonl")
    with open(path, "a") as handle:
        for site, value in (("test_double/0", 6.0), ("test_double/1", -43.0)):
            handle.write(json.dumps({"site": site, "value": {"shape": [], "data": [value]}}) + "\\n")
'''
FORGED_BEFORE = FORGE + "_forge()\n"
# The same lines written while the test cell runs, by `double` itself, which then raises.
FORGED_DURING = FORGE + "def double(x):\n    _forge()\n    raise RuntimeError('no answer')\n"
# An honest answer, then a loop that a plain SIGINT stops (as it would in Jupyter).
LOOP = "def double(x):\n    return 2 * x\nwhile True:\n    pass\n"
# nbgrader's documented way to skip code while it grades.
NBGRADER_IDIOM = ("import os\nif not os.getenv('NBGRADER_EXECUTION'):\n    raise RuntimeError('only outside grading')\n"
                  "def double(x):\n    return 2 * x\n")


def _tests_as(notebook: nbformat.NotebookNode, how: str) -> nbformat.NotebookNode:
    """``notebook`` with its test cells deleted, or turned into markdown with or without their metadata."""
    copy = nbformat.from_dict(notebook)
    cells = []
    for cell in copy.cells:
        if not cell.metadata.get("nbgrader", {}).get("grade_id", "").startswith("test_"):
            cells.append(cell)
        elif how == "markdown":
            cells.append(nbformat.v4.new_markdown_cell(cell.source, metadata=cell.metadata))
        elif how == "markdown_plain":  # as pasted into a new markdown cell: no grading metadata
            cells.append(nbformat.v4.new_markdown_cell(cell.source))
    copy.cells = cells
    return copy


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("course")
    start = time.time() - 2
    solution = nbformat.read(tiny_course.make_course(root), 4)
    cases = {
        "snoop": tiny_course.with_answer(solution, "double", SNOOP.format(start=start)),
        "other": tiny_course.with_answer(solution, "square", f"# {OTHER_MARKER}\ndef square(x):\n    return x**2"),
        "forged_before": tiny_course.with_answer(solution, "double", FORGED_BEFORE),
        "forged_during": tiny_course.with_answer(solution, "double", FORGED_DURING),
        "loop": tiny_course.with_answer(solution, "double", LOOP),
        "deleted_tests": _tests_as(solution, "deleted"),
        "markdown_tests": _tests_as(solution, "markdown"),
        "markdown_plain_tests": _tests_as(solution, "markdown_plain"),
        "blank_written": tiny_course.with_answer(solution, "written", "YOUR ANSWER HERE"),
        "nbgrader_idiom": tiny_course.with_answer(solution, "double", NBGRADER_IDIOM),
    }
    return tiny_course.grade_cases(root, cases, "--workers", "2", "--timeout", "300", "--cell-timeout", "60")


def _outputs(graded: dict, student: str) -> str:
    path = graded["out"] / "course" / "autograded" / student / tiny_course.NAME / f"{tiny_course.NAME}.ipynb"
    notebook = nbformat.read(path, 4)
    return json.dumps([c.get("outputs", []) for c in notebook.cells])


def test_a_submission_finds_no_hidden_test_solution_or_other_work(graded) -> None:
    row = graded["rows"]["snoop"]
    assert graded["code"] == 0
    assert row["status"].startswith("graded"), row
    outputs = _outputs(graded, "snoop")
    listed = re.search(r"listed (\d+) paths", outputs)
    assert listed and int(listed.group(1)) > 1000, f"the search did not run through: {outputs[:3000]}"
    assert "found: []" in outputs, f"the sandbox exposes secrets: {outputs[:3000]}"
    assert (row["test_double"], row["test_square"]) == ("2", "3"), row
    assert graded["rows"]["other"]["score"] == "5"


@pytest.mark.parametrize("student", ["forged_before", "forged_during"])
def test_records_outside_a_clean_run_of_the_test_cell_earn_nothing(graded, student: str) -> None:
    row = graded["rows"][student]
    assert row["status"].startswith("graded"), row
    assert (row["test_double"], row["test_square"]) == ("0", "3"), row


def test_an_endless_loop_is_interrupted_and_the_answer_kept(graded) -> None:
    row = graded["rows"]["loop"]
    assert row["status"].startswith("graded"), row
    assert (row["test_double"], row["test_square"]) == ("2", "3"), row
    assert "cell double interrupted at the 60 s limit" in row["status"], row
    assert "ignored the interrupt" not in row["status"] and "restarted" not in row["status"], row
    page = (graded["out"] / "feedback" / "loop.html").read_text()
    assert "interrupted" in page and "ignored the interrupt" not in page


@pytest.mark.parametrize("student", ["deleted_tests", "markdown_tests", "markdown_plain_tests"])
def test_missing_test_cells_are_restored_and_run(graded, student: str) -> None:
    row = graded["rows"][student]
    assert row["status"].startswith("graded"), row
    assert (row["test_double"], row["test_square"], row["score"]) == ("2", "3", "5"), row
    if student != "markdown_tests":  # there the cell is still there, with its metadata: retyped
        assert "restored" in row["status"] and "test_double" in row["status"] and "test_square" in row["status"], row
    autograded = nbformat.read(graded["out"] / "course" / "autograded" / student / tiny_course.NAME
                               / f"{tiny_course.NAME}.ipynb", 4)
    order = [c.metadata.get("nbgrader", {}).get("grade_id") for c in autograded.cells
             if c.cell_type == "code" and c.metadata.get("nbgrader", {}).get("grade_id")]
    assert order == ["double", "test_double", "square", "test_square"], order


def test_a_written_answer_left_blank_is_no_response_as_in_the_gradebook(graded) -> None:
    from nbgrader.api import Gradebook

    row = graded["rows"]["blank_written"]
    assert (row["written"], row["score"]) == ("0", "5"), row
    assert "no response: written" in row["status"] and "awaiting manual grading" not in row["status"], row
    other = graded["rows"]["other"]
    assert other["written"] == "" and "awaiting manual grading: written" in other["status"]
    with Gradebook(f"sqlite:///{graded['out'] / 'gradebook.db'}") as gradebook:
        grade = gradebook.find_grade("written", tiny_course.NAME, tiny_course.NAME, "blank_written")
        assert (grade.score, grade.needs_manual_grade) == (0, False)


def test_nbgraders_execution_variable_is_set_in_the_sandbox(graded) -> None:
    row = graded["rows"]["nbgrader_idiom"]
    assert (row["test_double"], row["test_square"]) == ("2", "3"), row


def test_the_autograded_notebook_shows_the_instructors_tests(graded) -> None:
    """formgrader shows the autograded notebook: the tests as written, not their recording form."""
    path = graded["out"] / "course" / "autograded" / "other" / tiny_course.NAME / f"{tiny_course.NAME}.ipynb"
    cells = {c.metadata.get("nbgrader", {}).get("grade_id"): c.source for c in nbformat.read(path, 4).cells}
    assert cells["test_double"] == tiny_course.TESTS["test_double"][0]
    assert "__dlbook_rec__" not in path.read_text()


def test_nothing_secret_in_feedback_or_the_command_output(graded) -> None:
    for secret in ("-21.5", "-43", "square(-7)", "HIDDEN", "BEGIN SOLUTION", "return 2 * x"):
        assert secret not in graded["log"], f"the command's output reveals {secret!r}"
        for page in (graded["out"] / "feedback").glob("*.html"):
            assert secret not in page.read_text(), f"{page.name} reveals {secret!r}"


def test_a_solution_that_fails_its_hidden_test_stops_the_batch(tmp_path, capsys) -> None:
    """nbgrader's test-hidden-tests.ipynb: the solution is right on the visible input only."""
    source = tiny_course.make_course(tmp_path)
    solution = nbformat.read(source, 4)
    nbformat.write(tiny_course.with_answer(
        solution, "square", "def square(x):\n    ### BEGIN SOLUTION\n    return x * abs(x)\n    ### END SOLUTION"),
        source)
    for student, notebook in (("right", solution), ("wrong", nbformat.read(source, 4))):
        (tmp_path / "subs" / student).mkdir(parents=True)
        nbformat.write(notebook, tmp_path / "subs" / student / f"{tiny_course.NAME}.ipynb")
    out = tmp_path / "out"
    code = main(["--course", str(tmp_path), "grade", tiny_course.NAME, str(tmp_path / "subs"), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "fails its own tests, cell by cell:\n  99-tiny:test_square: a hidden check fails: square:" in err, err
    assert "test_double" not in err, err
    assert not (out / "grades.csv").exists()


def test_an_assignment_folder_named_as_in_nbgrader_is_found(tmp_path) -> None:
    from autograder.assignments import assignment_dir, list_assignments

    for folder in ("ps1", "01-convolution", ".hidden", "notes"):
        (tmp_path / "solutions" / folder).mkdir(parents=True)
    for folder in ("ps1", "01-convolution", ".hidden"):
        nbformat.write(tiny_course.source_notebook(), tmp_path / "solutions" / folder / "problem1.ipynb")
    assert list_assignments(tmp_path) == ["01-convolution", "ps1"]  # folders with a notebook only
    assert assignment_dir(tmp_path, "ps1") == tmp_path / "solutions" / "ps1"
