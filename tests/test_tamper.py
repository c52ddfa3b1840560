"""Attacks on the pass/fail decision: each must earn exactly what the student's code solves."""
from __future__ import annotations


import nbformat
import pytest

from autograder.execution.sandbox import check_sandbox
from tests import tiny_course

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(check_sandbox() is not None, reason=f"no sandbox here: {check_sandbox()}")]

WRONG_DOUBLE = "def double(x):\n    return 0"
ATTACKS = {
    # Make every assertion a no-op (nbgrader alone gives full marks for this).
    "patched_assert": "import dlbook.checks\ndlbook.checks.assert_close = lambda *a, **k: None\n" + WRONG_DOUBLE,
    # Rewrite every later cell that mentions a test into `pass` before IPython runs it.
    "input_transformer": ("def _skip(lines):\n    text = ''.join(lines)\n"
                          "    return ['pass\\n'] if 'double(' in text and 'def double' not in text else lines\n"
                          "get_ipython().input_transformers_post.append(_skip)\n" + WRONG_DOUBLE),
    # Swallow every error IPython would show, so no test cell ever fails visibly.
    "swallow_errors": ("ip = get_ipython()\nip.showtraceback = lambda *a, **k: None\n"
                       "ip.set_custom_exc((BaseException,), lambda *a, **k: None)\n" + WRONG_DOUBLE),
    # An object equal to everything, near anything, convertible to any array the recorder asks for.
    "liar": ("import numpy as np\nclass Liar(float):\n    def __eq__(self, other): return True\n"
             "    def __ne__(self, other): return False\n    def __lt__(self, other): return True\n"
             "    def __le__(self, other): return True\n    def __abs__(self): return 0.0\n"
             "    def __float__(self): return 6.0\n    def __array__(self, *a, **k): return np.zeros(())\n"
             "def double(x):\n    return Liar(0)"),
    # Run `pass` instead of any cell that calls `double` (IPython's run_cell, both versions).
    "patched_run_cell": ("ip = get_ipython()\n_run, _run_async = ip.run_cell, ip.run_cell_async\n"
                         "def _skip(cell):\n"
                         "    return 'pass' if 'double(' in cell and 'def double' not in cell else cell\n"
                         "ip.run_cell = lambda cell, *a, **k: _run(_skip(cell), *a, **k)\n"
                         "ip.run_cell_async = lambda cell, *a, **k: _run_async(_skip(cell), *a, **k)\n" + WRONG_DOUBLE),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("course")
    solution = nbformat.read(tiny_course.make_course(root), 4)
    cases = {name: tiny_course.with_answer(solution, "double", code) for name, code in ATTACKS.items()}
    # Dies in the middle of a test (only on the hidden input): the kernel is restarted, the
    # earlier cells run again (so `_factor` exists) and the next part is graded as usual.
    cases["exits_early"] = tiny_course.with_answer(
        tiny_course.with_answer(solution, "double", "import os\n_factor = 1\ndef double(x):\n"
                                                    "    if x == -21.5:\n        os._exit(3)\n    return 2 * x"),
        "square", "def square(x):\n    return x * x * _factor")
    # Ignores interrupts and never finishes: killed after the cell limit and the grace period,
    # restarted, and the next part still counts.
    cases["stuck"] = tiny_course.with_answer(
        solution, "double", "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\n"
                            "def double(x):\n    return 2 * x\nwhile True:\n    pass")
    return tiny_course.grade_cases(root, cases, "--workers", "2", "--timeout", "60", "--cell-timeout", "3")


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_attack_earns_only_the_honest_part(graded, attack: str) -> None:
    row = graded["rows"][attack]
    assert graded["code"] == 0
    assert row["status"].startswith("graded"), row
    assert (row["test_double"], row["test_square"], row["score"]) == ("0", "3", "3"), row


def test_a_crash_costs_only_the_part_that_crashed(graded) -> None:
    row = graded["rows"]["exits_early"]
    assert row["status"].startswith("graded") and "kernel restarted 1x" in row["status"], row
    assert (row["test_double"], row["test_square"], row["score"]) == ("0", "3", "3"), row


def test_a_stuck_cell_is_killed_and_the_notebook_goes_on(graded) -> None:
    row = graded["rows"]["stuck"]
    assert row["status"].startswith("graded") and "ignored the interrupt" in row["status"], row
    assert (row["test_double"], row["test_square"], row["score"]) == ("0", "3", "3"), row
    leftovers = tiny_course.processes_with(str(graded["out"]))
    assert not leftovers, "a process of the stuck submission survived"
    page = (graded["out"] / "feedback" / "stuck.html").read_text()
    assert "kernel restarted 1x" in page and "(in cell double)" in page


SECRETS = ("-21.5", "-43", "square(-7)", "49", "HIDDEN", "return 2 * x")  # the hidden tests' inputs and answers


def test_nothing_secret_in_feedback_or_logs(graded) -> None:
    students = set(graded["rows"])
    pages = {page.stem: page.read_text() for page in (graded["out"] / "feedback").glob("*.html")}
    assert students and set(pages) == students, "every student gets a feedback page"
    # What the grader says about each submission: the row's status (also on the page) and the
    # line the command printed for it (paths and the progress bar's timings are no secret).
    said = {student: [row["status"], *[line for line in graded["log"].splitlines()
                                       if line.startswith(f"  {student}: ")]]
            for student, row in graded["rows"].items()}
    for student in students:
        for secret in SECRETS:
            assert secret not in pages[student], f"{student}'s page reveals {secret!r}"
            assert not any(secret in line for line in said[student]), f"the log on {student} reveals {secret!r}"
