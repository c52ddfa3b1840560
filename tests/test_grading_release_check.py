"""``release`` checks an assignment cell by cell, each cause of trouble in its own words (issue 15).

An assignment folder named as in nbgrader (``ps1``) holds one cell per cause: a solution
that raises before its assert, one past the cell time limit, one that nbgrader's
``NBGRADER_EXECUTION`` idiom skips while grading, ``dlbook`` not importable, a check that
never runs; and cells that are no problem: a try/except test (graded the plain nbgrader
way, and said so), a manually graded code answer (not a test), a tamper-proof test.  A
second assignment (``ps2``) has only good cells, one of them a try/except test: ``grade``
takes it, grades that cell as nbgrader would and says so in the row, and reuses the
solution's run from ``release``.
"""
from __future__ import annotations

import contextlib
import csv
import io
import os

import nbformat
import pytest

from autograder.cli import main
from autograder.execution.worker import describe_failure
from autograder.execution.sandbox import check_sandbox

# (answer, test) per part; None: no answer cell.  The solution regions are what students do not get.
PARTS = {
    "raises_first": ("### BEGIN SOLUTION\ntotal = sum(range(5)) / 0\n### END SOLUTION", "assert total == 10"),
    "raises_in_test": ("def half(n):\n    ### BEGIN SOLUTION\n    raise ValueError('not written yet')\n"
                       "    ### END SOLUTION", "assert half(4) == 2"),
    "slow": ("def slow():\n    ### BEGIN SOLUTION\n    import time\n    time.sleep(60)\n    return 1\n"
             "    ### END SOLUTION", "assert slow() == 1"),
    "idiom": ("import os\n### BEGIN SOLUTION\nif not os.getenv('NBGRADER_EXECUTION'):\n    def trained():\n"
              "        return 3\n### END SOLUTION", "assert trained() == 3"),
    "never_checks": ("def flag():\n    ### BEGIN SOLUTION\n    return False\n    ### END SOLUTION",
                     "if flag():\n    assert flag() == True"),
    "try_except": ("def checked(x):\n    ### BEGIN SOLUTION\n    if x < 0:\n        raise ValueError(x)\n"
                   "    return x\n    ### END SOLUTION",
                   "try:\n    checked(-1)\nexcept ValueError:\n    pass\nelse:\n"
                   "    raise AssertionError('checked(-1) must raise ValueError')"),
    "good": ("def double(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION",
             "from dlbook.checks import assert_close, hidden\nassert_close(double(3), 6)\n"
             "### BEGIN HIDDEN TESTS\nwith hidden('double'):\n    assert_close(double(-5), -10)\n"
             "### END HIDDEN TESTS"),
    "no_dlbook": ("import sys\n### BEGIN SOLUTION\n"
                  "for _name in [m for m in sys.modules if m.split('.')[0] == 'dlbook'] + ['dlbook']:\n"
                  "    sys.modules[_name] = None  # as where dlbook is not installed\n### END SOLUTION",
                  "from dlbook.checks import assert_close\nassert_close(1, 1)"),
}


def _meta(grade_id: str, *, grade: bool, solution: bool, points: float | None = None) -> dict:
    meta = {"grade": grade, "grade_id": grade_id, "locked": not solution, "schema_version": 3, "solution": solution}
    if points is not None:
        meta["points"] = points
    return {"nbgrader": meta}


def _notebook(parts: list[str], manual_code: bool = False) -> nbformat.NotebookNode:
    cells = []
    for part in parts:
        answer, test = PARTS[part]
        cells.append(nbformat.v4.new_code_cell(answer, metadata=_meta(part, grade=False, solution=True)))
        cells.append(nbformat.v4.new_code_cell(test, metadata=_meta(f"test_{part}", grade=True, solution=False,
                                                                    points=1)))
    if manual_code:  # a code answer that a person grades: nbgrader's "manually graded answer"
        cells.append(nbformat.v4.new_code_cell("### BEGIN SOLUTION\nquux = 42\n### END SOLUTION",
                                               metadata=_meta("quux", grade=True, solution=True, points=2)))
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return notebook


def _run(*argv: str) -> tuple[int, str]:
    log = io.StringIO()
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        code = main(list(argv))
    return code, log.getvalue()


def _error_cell(source: str, ename: str, evalue: str, grade_id: str = "t") -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, metadata=_meta(grade_id, grade=True, solution=False, points=1))
    cell.outputs = [nbformat.v4.new_output("error", ename=ename, evalue=evalue, traceback=[])]
    cell.execution_count = 1
    return cell


@pytest.mark.parametrize("ename, evalue, expected", [
    ("CellTimeoutError", "no result within 7 s", "it ran past the 7 s cell time limit"),
    ("KeyboardInterrupt", "", "it ran past the 7 s cell time limit"),
    ("KernelRestarted", "the kernel died (a crash, os._exit or the memory limit)", "the kernel died while it ran"),
    ("ModuleNotFoundError", "No module named 'dlbook'", "`dlbook` is not importable in the grading kernel"),
    ("AssertionError", "double(-5) is wrong", "a check fails (hidden tests included): AssertionError: double(-5)"),
    ("ValueError", "not written yet", "it raises ValueError before its checks complete: not written yet"),
    ("HiddenTestFailure", "double: a hidden test fails", "a hidden check fails: double: a hidden test fails"),
])
def test_each_cause_has_its_own_message(ename: str, evalue: str, expected: str) -> None:
    notebook = nbformat.v4.new_notebook(cells=[_error_cell("assert f() == 1", ename, evalue)])
    assert describe_failure(notebook, "t", 7).startswith(expected)
    assert "NBGRADER_EXECUTION" not in describe_failure(notebook, "t", 7)


def test_an_answer_that_raised_first_and_the_grading_variable_are_named() -> None:
    answer = nbformat.v4.new_code_cell("import os\nif not os.getenv('NBGRADER_EXECUTION'):\n    x = 1 / 0",
                                       metadata=_meta("answer", grade=False, solution=True))
    answer.outputs = [nbformat.v4.new_output("error", ename="ZeroDivisionError", evalue="division by zero",
                                             traceback=[])]
    test = _error_cell("assert x == 1", "NameError", "name 'x' is not defined")
    notebook = nbformat.v4.new_notebook(cells=[answer, test])
    message = describe_failure(notebook, "t", 7)
    assert "raises NameError" in message and "raised first in cell answer (ZeroDivisionError" in message
    assert "NBGRADER_EXECUTION, which is 'autograde' while grading" in message


def test_a_cell_that_never_ran_and_one_read_as_partial_credit() -> None:
    never = nbformat.v4.new_code_cell("assert f() == 1", metadata=_meta("t", grade=True, solution=False, points=1))
    assert "never ran" in describe_failure(nbformat.v4.new_notebook(cells=[never]), "t", 7)
    never.execution_count, never.outputs = 1, [nbformat.v4.new_output("execute_result", data={"text/plain": "0.5"})]
    assert "partial credit" in describe_failure(nbformat.v4.new_notebook(cells=[never]), "t", 7)


sandboxed = pytest.mark.skipif(check_sandbox() is not None, reason=f"no sandbox here: {check_sandbox()}")


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("course")
    cache = tmp_path_factory.mktemp("cache")
    previous = os.environ.get("DLBOOK_GRADER_CACHE")
    os.environ["DLBOOK_GRADER_CACHE"] = str(cache)
    for name, notebook in (("ps1", _notebook(list(PARTS), manual_code=True)),
                           ("ps2", _notebook(["try_except", "good"], manual_code=True))):
        (root / "solutions" / name).mkdir(parents=True)
        nbformat.write(notebook, root / "solutions" / name / "problem1.ipynb")
    try:
        yield {"root": root, "cache": cache}
    finally:
        if previous is None:
            os.environ.pop("DLBOOK_GRADER_CACHE", None)
        else:
            os.environ["DLBOOK_GRADER_CACHE"] = previous


def _lines(log: str) -> dict[str, str]:
    """``{notebook:grade_id: what release said}`` from the check's lines."""
    return {line.strip().split(": ", 1)[0]: line.strip().split(": ", 1)[1]
            for line in log.splitlines() if line.startswith("  problem1:")}


@pytest.mark.slow
@sandboxed
def test_release_says_per_cell_what_is_wrong(course) -> None:
    code, log = _run("--course", str(course["root"]), "release", "ps1", "--cell-timeout", "5")
    assert code == 1, log
    said = _lines(log)
    expected = {
        "test_raises_first": "PROBLEM: it raises NameError before its checks complete: name 'total' is not defined; "
                             "the solution raised first in cell raises_first (ZeroDivisionError",
        "test_raises_in_test": "PROBLEM: it raises ValueError before its checks complete: not written yet",
        "test_slow": "PROBLEM: it ran past the 5 s cell time limit",
        "test_idiom": "PROBLEM: it raises NameError before its checks complete: name 'trained' is not defined",
        "test_never_checks": "PROBLEM: its checks never ran for the solution",
        "test_try_except": "plain nbgrader: no error: full points, decided in the student's kernel, so not "
                           "tamper-proof, because it checks with try/except",
        "test_good": "tamper-proof: 2 recorded check(s), hidden tests included",
        "test_no_dlbook": "PROBLEM: `dlbook` is not importable in the grading kernel",
        "quux": "manual: manually graded code answer",
    }
    for grade_id, start in expected.items():
        assert said.get(f"problem1:{grade_id}", "").startswith(start), (grade_id, log)
    assert "NBGRADER_EXECUTION" in said["problem1:test_idiom"]
    assert not any("NBGRADER_EXECUTION" in said[f"problem1:{c}"] for c in ("test_slow", "test_raises_first"))
    assert "6 graded cell(s) cannot be graded" in log
    assert (course["root"] / "notebooks" / "ps1" / "problem1.ipynb").is_file()  # released all the same
    assert not list(course["cache"].glob("reference-*.json"))  # a failing solution is never kept

    # `grade` refuses with the same messages, cell by cell.
    (course["root"] / "subs" / "s1").mkdir(parents=True)
    nbformat.write(_notebook(list(PARTS)), course["root"] / "subs" / "s1" / "problem1.ipynb")
    code, log = _run("--course", str(course["root"]), "grade", "ps1", str(course["root"] / "subs"),
                     "--out", str(course["root"] / "out1"), "--cell-timeout", "5")
    assert code == 2 and "fails its own tests, cell by cell:" in log, log
    assert "problem1:test_slow: it ran past the 5 s cell time limit" in log
    assert "problem1:test_no_dlbook: `dlbook` is not importable" in log
    assert "quux" not in log and "test_good" not in log and "test_try_except" not in log


@pytest.mark.slow
@sandboxed
def test_a_plain_nbgrader_test_is_graded_as_nbgrader_does_and_release_is_reused(course, monkeypatch) -> None:
    import autograder.execution.worker as grading

    root = course["root"]
    code, log = _run("--course", str(root), "release", "ps2")
    assert code == 0, log
    assert "note: ps2 has test cells graded the plain nbgrader way" in log
    assert len(list(course["cache"].glob("reference-*.json"))) == 1
    solution = nbformat.read(root / "solutions" / "ps2" / "problem1.ipynb", 4)
    wrong = nbformat.from_dict(solution)
    wrong.cells[0].source = "def checked(x):\n    return x"
    blank = nbformat.read(root / "notebooks" / "ps2" / "problem1.ipynb", 4)
    cases = {"right": solution, "no_raise": wrong, "blank": blank}
    for student, notebook in cases.items():
        (root / "subs2" / student).mkdir(parents=True)
        nbformat.write(notebook, root / "subs2" / student / "problem1.ipynb")
    solution_runs = []
    execute = grading._execute

    def counting(worker, assignment, student, files):
        if student in (grading.REFERENCE_ID, grading.TESTS_AS_WRITTEN_ID):
            solution_runs.append(student)
        return execute(worker, assignment, student, files)

    monkeypatch.setattr(grading, "_execute", counting)
    code, log = _run("--course", str(root), "grade", "ps2", str(root / "subs2"), "--out", str(root / "out2"),
                     "--workers", "2")
    assert code == 0, log
    assert solution_runs == [], "grade ran the solution again although release had checked it"
    with (root / "out2" / "grades.csv").open() as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    assert [(rows[s]["test_try_except"], rows[s]["test_good"]) for s in ("right", "no_raise", "blank")] == [
        ("1", "1"), ("0", "1"), ("0", "0")], rows
    plain = "graded the plain nbgrader way (no error: full points; not tamper-proof): test_try_except"
    assert plain in rows["right"]["status"]
    assert "test_good" not in rows["right"]["status"]
