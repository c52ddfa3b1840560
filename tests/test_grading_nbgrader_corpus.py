"""nbgrader's own test notebooks (``nbgrader/tests/apps/files``), graded by ``grade`` (issue 15).

The notebooks are read from the installed nbgrader's copy (skipped where it is absent; none
is committed here).  Each case repeats a test of nbgrader's ``test_nbgrader_autograde.py``
through ``benchmarks/nbgrader_corpus.py``, which also prints the whole table (nbgrader's
documented outcome, plain nbgrader's result, ours): ``autograder/NBGRADER_CORPUS.md``.
"""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import pytest

from autograder.execution.sandbox import check_sandbox

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import nbgrader_corpus  # noqa: E402

FILES = nbgrader_corpus.installed_corpus()
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(FILES is None, reason="nbgrader's test notebooks are not installed"),
              pytest.mark.skipif(check_sandbox() is not None, reason=f"no sandbox here: {check_sandbox()}")]
CASES = {case.name: case for case in nbgrader_corpus.CASES}


def _ours(name: str, tmp_path: Path, **changes) -> dict[str, str]:
    case = replace(CASES[name], **changes)
    assert FILES is not None
    return nbgrader_corpus.ours(case, FILES, tmp_path, release_from=tmp_path / "unused")


def test_the_showtraceback_exploit_earns_what_nbgrader_gives(tmp_path) -> None:
    """As documented: 1/7, 2/7 and 1/7 for both cheat attempts; a print-only test graded as nbgrader does."""
    found = _ours("test_showtraceback_exploit", tmp_path)
    score = {student: text.split(" ", 1)[0] for student, text in found.items()}
    assert score == {"foo": "1/7", "bar": "2/7", "spam": "1/7", "eggs": "1/7"}, found
    for student in ("bar", "spam", "eggs"):  # written answers and the manually graded code wait for a person
        assert "+ manual" in found[student] and "awaiting manual grading: baz, quux" in found[student], found
    assert "+ manual" not in found["foo"] and "no response: baz" in found["foo"], found
    # `print("Success!")` checks nothing: graded the plain nbgrader way, and the row says so.
    assert all("graded the plain nbgrader way (no error: full points; not tamper-proof): foo" in text
               for text in found.values()), found


def test_a_solution_that_fails_its_hidden_tests_is_refused_cell_by_cell(tmp_path) -> None:
    """nbgrader's test-hidden-tests.ipynb: its solution passes the visible tests only (nbgrader gives 1.5/3).

    Stricter than nbgrader, on purpose: a solution that fails its own tests cannot say what is right."""
    # The batch stops before any student's notebook runs: the solution itself stands in for one.
    found = _ours("test_hidden_tests_single_notebook", tmp_path,
                  students={"foo": {"p1.ipynb": "test-hidden-tests.ipynb"}})
    text = found["foo"]
    assert text.startswith("refused (exit 2)") and "fails its own tests, cell by cell" in text, text
    assert "p1:correct_squares: a check fails (hidden tests included): AssertionError" in text, text
