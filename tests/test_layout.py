"""The grader's trust boundary, as the file layout shows it, and its single definitions.

``autograder/execution/`` runs student code (sandboxed kernels, the nbgrader processes that
drive them, the workers and jobs).  ``autograder/scoring/`` decides and records points from
what comes back as data, and must never start a process or a kernel: a scoring module that
imported the execution side, or a process or kernel library, would blur the line the
layout promises.  Read from the source files: nothing is imported or run here.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "autograder"
SCORING = sorted((PACKAGE / "scoring").glob("*.py"))
# What starts or talks to processes and kernels: the execution side's business only.
FORBIDDEN = ("autograder.execution", "autograder.batch", "autograder.cli", "autograder.release",
             "subprocess", "multiprocessing", "nbclient", "jupyter_client", "ipykernel", "distributed",
             "nbgrader.preprocessors", "nbgrader.converters", "concurrent")
RUNS_CODE = {("os", "system"), ("os", "fork"), ("os", "execv"), ("os", "execvp"), ("os", "spawnv"),
             ("os", "popen"), ("pty", "spawn")}


def _imports(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the scoring package
                base = "autograder.scoring" + (f".{base}" if base else "") if node.level == 1 else \
                    "autograder" + (f".{base}" if base else "")
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return names


def test_there_is_a_scoring_side_and_an_execution_side() -> None:
    assert SCORING and sorted((PACKAGE / "execution").glob("*.py"))


@pytest.mark.parametrize("path", SCORING, ids=lambda p: p.name)
def test_scoring_modules_never_reach_for_a_process_or_kernel(path: Path) -> None:
    bad = [name for name in _imports(path) for prefix in FORBIDDEN if name == prefix or name.startswith(prefix + ".")]
    assert not bad, f"{path.name} imports {bad}: the scoring side never runs student code"
    calls = {(node.func.value.id, node.func.attr) for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and isinstance(node.func.value, ast.Name)}
    assert not calls & RUNS_CODE, f"{path.name} calls {calls & RUNS_CODE}"
    builtins = {node.func.id for node in ast.walk(ast.parse(path.read_text()))
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    assert not builtins & {"eval", "exec", "compile", "__import__"}, f"{path.name} evaluates code"


@pytest.mark.parametrize("literal", ["### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS", ".dlbook-records-",
                                     "a hidden test with other shapes or values fails"])
def test_each_shared_constant_is_written_once_in_the_grader(literal: str) -> None:
    found = [path.relative_to(PACKAGE).as_posix() for path in sorted(PACKAGE.rglob("*.py"))
             for _ in range(path.read_text().count(literal))]
    assert len(found) == 1, f"{literal!r} written in {found}: define it once and import it"
