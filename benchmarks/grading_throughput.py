"""Submissions per minute: plain `nbgrader autograde` against `python -m autograder grade`.

Usage: python benchmarks/grading_throughput.py [--assignment 01-convolution] [--count 30]

Builds a batch of ``count`` submissions of a real assignment (solutions, blank releases and
solutions with one part broken, in turn), then times, on the same batch and machine:

1. plain nbgrader: one ``nbgrader autograde ASSIGNMENT`` over the whole batch (serial,
   unsandboxed, nbgrader's own settings: only the course folder and gradebook are set), so the
   hidden tests compute their expected values in every student's kernel;
2. the same with the course's nbgrader settings (``autograder/nbgrader_config.py``: the
   recording test cells, bounded output, kernel restarts), still serial and unsandboxed;
3. ``grade`` with the sandbox on, ``--workers 1``;
4. ``grade`` with the sandbox on, ``--workers 2``.

The ratios are against (1).  As an instructor would, the benchmark first releases the
assignment with ``python -m autograder release`` (untimed, like nbgrader's
``generate_assignment`` in (1)): that checks the solution against its tests in the sandbox
and keeps its run (``autograder/reference_cache.py``, here in a temporary cache folder), so
the timed ``grade`` runs reuse it instead of running the solution again.

It prints one line per run and the ratios; nothing is asserted (timings vary by machine).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from autograder.execution.course_folder import CourseFolder  # noqa: E402

PLAIN = "plain nbgrader (serial, unsandboxed)"
SOLUTION = re.compile(r"### BEGIN SOLUTION\n.*?### END SOLUTION", re.DOTALL)


def make_batch(assignment: str, count: int, target: Path) -> None:
    source = next((ROOT / "solutions" / assignment).glob("*.ipynb"))
    solution = nbformat.read(source, 4)
    blank = nbformat.read(ROOT / "notebooks" / assignment / source.name, 4)
    answers = [i for i, c in enumerate(solution.cells) if c.cell_type == "code" and "BEGIN SOLUTION" in c.source]
    for k in range(count):
        kind = k % 3
        notebook = solution if kind == 0 else blank if kind == 1 else nbformat.from_dict(solution)
        if kind == 2:
            cell = notebook.cells[answers[k % len(answers)]]
            cell.source = SOLUTION.sub("raise ValueError('broken on purpose')", cell.source)
        folder = target / f"student{k:03d}"
        folder.mkdir(parents=True)
        nbformat.write(notebook, folder / source.name)


STOCK_CONFIG = """c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = {db!r}
c.CourseDirectory.course_id = "dlbook"
"""


def plain_nbgrader(assignment: str, batch: Path, work: Path, stock: bool) -> float:
    course = CourseFolder.create(work / "course", work / "gradebook.db", ROOT / "solutions", assignment)
    if stock:
        (course.root / "nbgrader_config.py").write_text(
            STOCK_CONFIG.format(root=str(course.root), db=f"sqlite:///{course.db_path}"))
    generated = course.run("generate_assignment", assignment, "--force")  # nbgrader's own command
    if generated.returncode != 0:
        raise RuntimeError(f"nbgrader generate_assignment {assignment} failed:\n{generated.stderr[-3000:]}")
    for student in batch.iterdir():
        shutil.copytree(student, course.root / "submitted" / student.name / assignment)
    start = time.perf_counter()
    result = course.run("autograde", assignment, timeout=3600)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        print(result.stderr[-2000:])
    return elapsed


def release(assignment: str, out: Path, env: dict[str, str]) -> None:
    """The instructor's release (untimed): it checks the solution and keeps its run for `grade`."""
    subprocess.run([sys.executable, "-m", "autograder", "--course", str(ROOT), "release", assignment,
                    "--out", str(out)], check=True, stdout=subprocess.DEVNULL, env=env)


def ours(assignment: str, batch: Path, out: Path, workers: int, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "autograder", "--course", str(ROOT), "grade", assignment, str(batch),
                    "--out", str(out), "--workers", str(workers)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="01-convolution")
    parser.add_argument("--count", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        batch = Path(tmp) / "batch"
        make_batch(args.assignment, args.count, batch)
        runs = {PLAIN: plain_nbgrader(args.assignment, batch, Path(tmp) / "plain", stock=True),
                "nbgrader + course settings (serial)": plain_nbgrader(args.assignment, batch, Path(tmp) / "course",
                                                                      stock=False)}
        env = {**os.environ, "DLBOOK_GRADER_CACHE": str(Path(tmp) / "cache")}
        release(args.assignment, Path(tmp) / "released", env)
        for workers in (1, 2):
            runs[f"autograder grade, sandbox, {workers} worker(s)"] = ours(
                args.assignment, batch, Path(tmp) / f"ours{workers}", workers, env)
    base = args.count / runs[PLAIN] * 60
    print(f"{args.count} submissions of {args.assignment}:")
    for name, seconds in runs.items():
        rate = args.count / seconds * 60
        print(f"  {name:44s} {seconds:7.1f} s  {rate:6.1f} submissions/min  {rate / base:4.2f}x plain nbgrader")


if __name__ == "__main__":
    main()
