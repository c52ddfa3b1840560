"""Grade nbgrader's own test notebooks with plain nbgrader and with ``python -m autograder grade``.

Usage: python benchmarks/nbgrader_corpus.py [--files DIR] [--only NAME ...]

``DIR`` is ``nbgrader/tests/apps/files`` of nbgrader (default: the installed nbgrader's copy).
Each case repeats a test of nbgrader's ``tests/apps/test_nbgrader_autograde.py``: the same
source notebook, the same submissions, the same settings; its documented outcome is written
next to it.  Each case is graded twice, in a fresh course folder each time:

1. plain nbgrader (``nbgrader generate_assignment`` and ``nbgrader autograde``, nbgrader's
   default settings plus the case's own, as its test sets them);
2. ``python -m autograder grade`` (sandbox on; a case's ``Execute.timeout`` becomes
   ``--cell-timeout``), the assignment folder ``solutions/ps1`` holding the case's source.

It prints a Markdown table: case, student, nbgrader's documented outcome, plain nbgrader's
result, ours (``score/max``; "+ manual" where a written answer waits for a person).  Nothing
is asserted here; ``tests/test_grading_nbgrader_corpus.py`` checks the cases that matter.
"""
from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def installed_corpus() -> Path | None:
    try:
        import nbgrader
    except ImportError:
        return None
    folder = Path(nbgrader.__file__).parent / "tests" / "apps" / "files"
    return folder if folder.is_dir() else None


@dataclass
class Case:
    name: str  # what nbgrader's test is called
    source: dict[str, str]  # notebook name in ps1 -> corpus file
    students: dict[str, dict[str, str]]  # student -> notebook name -> corpus file ("@release" for the release)
    expected: dict[str, str]  # student -> nbgrader's documented outcome
    config: list[str] = field(default_factory=list)  # lines for nbgrader_config.py (as the test writes them)
    cell_timeout: int | None = None
    # path in ps1 ("../../x": in the course folder) -> corpus file
    extra_files: dict[str, str] = field(default_factory=dict)


STUB = 'c.ClearSolutions.code_stub = dict(python="# YOUR CODE HERE")'
BASIC = {"foo": {"p1.ipynb": "submitted-unchanged.ipynb"}, "bar": {"p1.ipynb": "submitted-changed.ipynb"}}
CASES = [
    Case("test_grade", {"p1.ipynb": "submitted-unchanged.ipynb"}, BASIC,
         {"foo": "1/7", "bar": "2/7 + manual"}),
    Case("test_grade, source that passes its tests", {"p1.ipynb": "submitted-changed.ipynb"}, BASIC,
         {"foo": "1/7", "bar": "2/7 + manual"}),
    Case("test_showtraceback_exploit", {"p1.ipynb": "submitted-changed.ipynb"},
         {**BASIC, "spam": {"p1.ipynb": "submitted-cheat-attempt.ipynb"},
          "eggs": {"p1.ipynb": "submitted-cheat-attempt-alternative.ipynb"}},
         {"foo": "1/7", "bar": "2/7 + manual", "spam": "1/7 + manual", "eggs": "1/7 + manual"}),
    Case("test_grade_autotest", {"p1.ipynb": "autotest-simple.ipynb"},
         {"foo": {"p1.ipynb": "autotest-simple-unchanged.ipynb"}, "bar": {"p1.ipynb": "autotest-simple-changed.ipynb"}},
         {"foo": "0/1", "bar": "1/1"}, extra_files={"../../autotests.yml": "autotests.yml"}),
    Case("test_grade_hashed_autotest", {"p1.ipynb": "autotest-hashed.ipynb"},
         {"foo": {"p1.ipynb": "autotest-hashed-unchanged.ipynb"}, "bar": {"p1.ipynb": "autotest-hashed-changed.ipynb"}},
         {"foo": "0/1", "bar": "1/1"}, extra_files={"../../autotests.yml": "autotests.yml"}),
    Case("test_grade_complex_autotest", {"p1.ipynb": "autotest-multi.ipynb"},
         {"foo": {"p1.ipynb": "autotest-multi-unchanged.ipynb"}, "bar": {"p1.ipynb": "autotest-multi-changed.ipynb"}},
         {"foo": "0/4", "bar": "3/4"}, extra_files={"../../autotests.yml": "autotests.yml"}),
    Case("test_hidden_tests_autotest", {"p1.ipynb": "autotest-hidden.ipynb"},
         {"foo": {"p1.ipynb": "autotest-hidden-unchanged.ipynb"},
          "bar": {"p1.ipynb": "autotest-hidden-changed-wrong.ipynb"},
          "baz": {"p1.ipynb": "autotest-hidden-changed-right.ipynb"}},
         {"foo": "0", "bar": "0", "baz": "1"}, config=[STUB], extra_files={"../../autotests.yml": "autotests.yml"}),
    Case("test_hidden_tests_single_notebook", {"p1.ipynb": "test-hidden-tests.ipynb"},
         {"foo": {"p1.ipynb": "@release"}}, {"foo": "1.5 (the solution fails its own hidden tests)"}, config=[STUB],
         extra_files={"jupyter.png": "jupyter.png"}),
    Case("test_grade_missing_notebook", {"p1.ipynb": "submitted-changed.ipynb", "p2.ipynb": "submitted-changed.ipynb"},
         {"foo": {"p1.ipynb": "submitted-changed.ipynb"}}, {"foo": "p2 scores 0, not waiting for manual grading"}),
    Case("test_grade_with_validating_envvar", {"p1.ipynb": "validating-environment-variable.ipynb"},
         {"foo": {"p1.ipynb": "validating-environment-variable.ipynb"}}, {"foo": "0/1"}),
    Case("test_autograde_timeout (default limit)", {"p1.ipynb": "timeout.ipynb"},
         {"foo": {"p1.ipynb": "timeout.ipynb"}}, {"foo": "1/1"}),
    Case("test_autograde_timeout (Execute.timeout=2)", {"p1.ipynb": "timeout.ipynb"},
         {"bar": {"p1.ipynb": "timeout.ipynb"}}, {"bar": "0/1"}, config=["c.Execute.timeout = 2"], cell_timeout=2),
    Case("test_infinite_loop (Execute.timeout=1)", {"p1.ipynb": "infinite-loop.ipynb"},
         {"foo": {"p1.ipynb": "infinite-loop.ipynb"}}, {"foo": "graded (an autograded notebook)"},
         config=["c.Execute.timeout = 1"], cell_timeout=1),
    Case("test_side_effects", {"p1.ipynb": "side-effects.ipynb"}, {"foo": {"p1.ipynb": "side-effects.ipynb"}},
         {"foo": "graded; side-effect.txt in autograded/, not in submitted/"}),
    Case("open_relative_file (nbgrader's validate test)", {"p1.ipynb": "open_relative_file.ipynb"},
         {"foo": {"p1.ipynb": "open_relative_file.ipynb"}}, {"foo": "10/10 (data.txt is found)"},
         extra_files={"data.txt": "data.txt"}),
]

STOCK_CONFIG = """c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db!r}
c.CourseDirectory.course_id = "corpus"
"""


def _nbgrader(course: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])}
    return subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, capture_output=True, text=True,
                          timeout=timeout, env=env)


def _place(case: Case, files: Path, assignment_dir: Path) -> None:
    assignment_dir.mkdir(parents=True, exist_ok=True)
    for name, corpus in case.source.items():
        shutil.copyfile(files / corpus, assignment_dir / name)
    for name, corpus in case.extra_files.items():
        shutil.copyfile(files / corpus, (assignment_dir / name).resolve())


def _scores(db: Path, students: list[str]) -> dict[str, str]:
    from nbgrader.api import Gradebook, MissingEntry

    found = {}
    with Gradebook(f"sqlite:///{db}") as gradebook:
        for student in students:
            try:
                sub = gradebook.find_submission("ps1", student)
            except MissingEntry:
                found[student] = "not graded"
                continue
            parts = [f"{sub.score:g}/{sub.max_score:g}" + (" + manual" if sub.needs_manual_grade else "")]
            if len(sub.notebooks) > 1:
                parts.append(", ".join(f"{nb.name} {nb.score:g}" + (" + manual" if nb.needs_manual_grade else "")
                                       for nb in sub.notebooks))
            found[student] = "; ".join(parts)
    return found


def plain(case: Case, files: Path, work: Path) -> tuple[dict[str, str], Path]:
    course = work / "plain"
    _place(case, files, course / "source" / "ps1")
    (course / "nbgrader_config.py").write_text(
        STOCK_CONFIG.format(root=str(course), db=f"sqlite:///{course / 'gradebook.db'}")
        + "\n".join(case.config) + "\n")
    generated = _nbgrader(course, "generate_assignment", "ps1", "--force")
    if generated.returncode != 0:
        return {s: f"generate_assignment failed: {generated.stderr.strip().splitlines()[-1][:120]}"
                for s in case.students}, course
    for student, notebooks in case.students.items():
        folder = course / "submitted" / student / "ps1"
        folder.mkdir(parents=True)
        for name, corpus in notebooks.items():
            origin = course / "release" / "ps1" / name if corpus == "@release" else files / corpus
            shutil.copyfile(origin, folder / name)
    _nbgrader(course, "autograde", "ps1", "--force")
    found = _scores(course / "gradebook.db", list(case.students))
    if case.name == "test_side_effects":
        found = {s: v + ("; side-effect.txt in autograded/" if (course / "autograded" / s / "ps1" / "side-effect.txt")
                         .is_file() else "; no side-effect.txt") for s, v in found.items()}
    return found, course


def ours(case: Case, files: Path, work: Path, release_from: Path) -> dict[str, str]:
    root = work / "ours"
    _place(case, files, root / "solutions" / "ps1")
    subs = root / "subs"
    for student, notebooks in case.students.items():
        folder = subs / student / "ps1"
        folder.mkdir(parents=True)
        for name, corpus in notebooks.items():
            shutil.copyfile(release_from / "release" / "ps1" / name if corpus == "@release" else files / corpus,
                            folder / name)
    command = [sys.executable, "-m", "autograder", "--course", str(root), "grade", "ps1", str(subs),
               "--out", str(root / "out"), "--workers", "2"]
    if case.cell_timeout:
        command += ["--cell-timeout", str(case.cell_timeout)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=ROOT,
                            env={**os.environ, "DLBOOK_GRADER_CACHE": str(work / "cache"),
                                 "TQDM_DISABLE": "1"})  # no progress bar in the reason quoted
    if result.returncode != 0:
        lines = [line.strip() for line in result.stderr.strip().splitlines() if line.strip()]
        reason = "; ".join(lines[-4:]).replace("|", "/")[:400]
        return {s: f"refused (exit {result.returncode}): {reason}" for s in case.students}
    with (root / "out" / "grades.csv").open() as handle:
        rows = {row["student_id"]: row for row in csv.DictReader(handle)}
    found = {}
    for student in case.students:
        row = rows.get(student)
        if row is None:
            found[student] = "no row"
            continue
        manual = " + manual" if "awaiting manual grading" in row["status"] else ""
        parts = {k: v for k, v in row.items() if k not in ("student_id", "assignment", "score", "max_score", "status")}
        notes = row["status"][len("graded"):].strip(" ()") if row["status"].startswith("graded") else row["status"]
        found[student] = (f"{row['score']}/{row['max_score']}{manual}"
                          + f" [{', '.join(f'{k} {v or chr(8212)}' for k, v in parts.items())}]"
                          + (f"; {notes}" if notes else "")).replace("|", "/")
        if case.name == "test_side_effects":
            stray = list((root / "out" / "course" / "autograded" / student / "ps1").glob("side-effect.txt"))
            found[student] += "; side-effect.txt in autograded/" if stray else "; side-effect.txt stays in the sandbox"
    return found


def run(files: Path, only: list[str] | None = None, echo: bool = False) -> list[tuple[str, str, str, str, str]]:
    """The table's rows; with ``echo`` each case's rows are printed as soon as it is graded."""
    table = []
    names = {case.name for case in CASES}  # a name given in full picks that case only
    for case in CASES:
        if only and not any(o == case.name or (o not in names and o in case.name) for o in only):
            continue
        with tempfile.TemporaryDirectory(prefix="nbgrader-corpus-") as tmp:
            work = Path(tmp)
            theirs, course = plain(case, files, work)
            ours_found = ours(case, files, work, course)
        rows = [(case.name, student, case.expected[student], theirs[student], ours_found[student])
                for student in case.students]
        table += rows
        if echo:
            print("\n".join(f"| {' | '.join(row)} |" for row in rows), flush=True)
    return table


def markdown(table: list[tuple[str, str, str, str, str]]) -> str:
    lines = ["| nbgrader test (corpus notebook) | student | nbgrader's documented outcome | plain nbgrader | ours |",
             "| --- | --- | --- | --- | --- |"]
    lines += [f"| {' | '.join(row)} |" for row in table]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=Path, default=installed_corpus(),
                        help="nbgrader/tests/apps/files (default: the installed nbgrader's)")
    parser.add_argument("--only", nargs="*", help="cases named so, or whose name contains one of these")
    args = parser.parse_args()
    if args.files is None or not args.files.is_dir():
        sys.exit("no nbgrader test corpus found: pass --files nbgrader/tests/apps/files")
    print(markdown([]), flush=True)
    run(args.files, args.only, echo=True)


if __name__ == "__main__":
    main()
