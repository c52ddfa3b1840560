"""Resource attacks and tampered notebooks: bounded, graded for what they solve, nothing left behind."""
from __future__ import annotations


import nbformat
import pytest

from autograder.execution.sandbox import check_sandbox
from tests import tiny_course

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(check_sandbox() is not None, reason=f"no sandbox here: {check_sandbox()}")]

STORM_MARKER = "600.4242"  # `sleep 600.4242`: easy to find if one survived
SQUARE_IF_NO_MEMORY = ("try:\n    hoard = bytearray(3 * 2**30)  # more than --memory-limit 1\n"
                       "    def square(x):\n        return 0  # the sandbox let it allocate\n"
                       "except MemoryError:\n    def square(x):\n        return x * x\n")
FLOOD = "def double(x):\n    return 2 * x\nprint('x' * 30_000_000)\n"
STORM = ("import subprocess\nfor _ in range(100):\n"
         f"    subprocess.Popen(['sleep', '{STORM_MARKER}'], start_new_session=True)\n"
         "def double(x):\n    return 2 * x\n")

# Writing more than the file size limit (256 MiB) must fail; then `double` is right.
DISK = ("try:\n    with open('big.bin', 'wb') as handle:\n        for _ in range(300):\n"
        "            handle.write(bytes(2**20))\n    def double(x):\n        return 0\n"
        "except OSError:\n    def double(x):\n        return 2 * x\n")
SEGFAULT = "def double(x):\n    return 2 * x\nimport ctypes\nctypes.string_at(0)\n"
SLOW = "import time\ntime.sleep(3)  # slow but within the limits\ndef double(x):\n    return 2 * x\n"


def _foreign_kernel(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Right answers in a notebook that claims to need another kernel."""
    notebook = nbformat.from_dict(solution)
    notebook.metadata["kernelspec"] = {"name": "ir", "language": "R", "display_name": "R"}
    notebook.metadata["language_info"] = {"name": "R"}
    return notebook


def _cell(notebook: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    return next(c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def _tampered(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Wrong `double`; its test emptied, unlocked, made a solution cell worth 100, with a fake passing output."""
    notebook = tiny_course.with_answer(solution, "double", "def double(x):\n    return 0")
    test = _cell(notebook, "test_double")
    test.source = "pass"
    test.metadata["nbgrader"].update(points=100, locked=False, solution=True)
    test.outputs = [nbformat.v4.new_output("stream", name="stdout", text="all tests passed\n")]
    test.execution_count = 1
    return notebook


def _deleted_test(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Wrong `square` and its test cell deleted."""
    notebook = tiny_course.with_answer(solution, "square", "def square(x):\n    return 0")
    notebook.cells = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "test_square"]
    return notebook


def _retyped(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Wrong `double`; its test cell turned into markdown so it would never run."""
    notebook = tiny_course.with_answer(solution, "double", "def double(x):\n    return 0")
    cells = notebook.cells
    index = cells.index(_cell(notebook, "test_double"))
    cells[index] = nbformat.v4.new_markdown_cell(cells[index].source, metadata=cells[index].metadata)
    return notebook


def _duplicated_test(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Right answers; the `test_square` cell appears twice, the copy emptied."""
    notebook = nbformat.from_dict(solution)
    copy = nbformat.from_dict(_cell(notebook, "test_square"))
    copy.source = "pass"
    notebook.cells.append(copy)
    return notebook


def _renamed_ids(solution: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Wrong `double`, whose test cell claims another grade id (and would escape its check)."""
    notebook = tiny_course.with_answer(solution, "double", "def double(x):\n    return 0")
    _cell(notebook, "test_double").metadata["nbgrader"]["grade_id"] = "test_bonus"
    return notebook


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("course")
    solution = nbformat.read(tiny_course.make_course(root), 4)
    cases = {
        "memory": tiny_course.with_answer(solution, "square", SQUARE_IF_NO_MEMORY),
        "flood": tiny_course.with_answer(solution, "double", FLOOD),
        "storm": tiny_course.with_answer(solution, "double", STORM),
        "tampered": _tampered(solution),
        "deleted_test": _deleted_test(solution),
        "retyped_test": _retyped(solution),
        "duplicated_test": _duplicated_test(solution),
        "renamed_ids": _renamed_ids(solution),
        "disk": tiny_course.with_answer(solution, "double", DISK),
        "segfault": tiny_course.with_answer(solution, "double", SEGFAULT),
        "slow": tiny_course.with_answer(solution, "double", SLOW),
        "foreign_kernel": _foreign_kernel(solution),
    }
    return tiny_course.grade_cases(root, cases, "--workers", "2", "--timeout", "120", "--memory-limit", "1")


@pytest.mark.parametrize(("student", "double", "square"), [
    ("memory", "2", "3"),  # the 3 GiB allocation failed, so the honest branch ran
    ("flood", "2", "3"),
    ("storm", "2", "3"),
    ("tampered", "0", "3"),
    ("deleted_test", "2", "0"),
    ("retyped_test", "0", "3"),
    ("duplicated_test", "2", "3"),
    ("renamed_ids", "0", "3"),
    ("disk", "2", "3"),
    ("segfault", "0", "3"),  # the kernel crashed in `double`'s cell, was restarted, `square` still counts
    ("slow", "2", "3"),
    ("foreign_kernel", "2", "3"),
])
def test_each_earns_exactly_what_it_solved(graded, student: str, double: str, square: str) -> None:
    assert graded["code"] == 0
    row = graded["rows"][student]
    assert row["status"].startswith("graded"), row
    assert (row["test_double"], row["test_square"]) == (double, square), row
    assert row["max_score"] == "6" and row["score"] == str(int(double) + int(square)), row


def test_a_flood_of_output_is_truncated_not_kept(graded) -> None:
    notebook = graded["out"] / "course" / "autograded" / "flood" / tiny_course.NAME / f"{tiny_course.NAME}.ipynb"
    assert notebook.is_file()
    assert notebook.stat().st_size < 3_000_000, "the autograded notebook kept the whole flood"
    assert "output truncated" in notebook.read_text()
    assert (graded["out"] / "feedback" / "flood.html").stat().st_size < 100_000


def test_no_process_of_the_storm_survives(graded) -> None:
    survivors = tiny_course.processes_with(STORM_MARKER)
    assert not survivors, f"{len(survivors)} background processes of a submission outlived grading"


def test_a_segfault_is_reported_as_a_restart(graded) -> None:
    assert "kernel restarted 1x" in graded["rows"]["segfault"]["status"]


def test_nothing_secret_in_the_command_output_or_the_csv(graded) -> None:
    csv_text = (graded["out"] / "grades.csv").read_text()
    assert "done: 12 submission(s)" in graded["log"]  # the output was captured, so its check means something
    for secret in ("-21.5", "-43", "square(-7)", "HIDDEN", "BEGIN SOLUTION", "return 2 * x"):
        assert secret not in graded["log"], f"the command's output reveals {secret!r}"
        assert secret not in csv_text, f"grades.csv reveals {secret!r}"
