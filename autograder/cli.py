"""Command line: ``python -m autograder release|grade|export``.

Only light modules are imported up front: ``grade`` starts its nbgrader processes first, so
they import nbgrader while this process imports the rest (about 1.5 s each).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from autograder import nbgrader_reuse
from autograder.execution import nbgrader_process as nbgrader_processes
from autograder.execution.cgroups import check_cgroups
from autograder.scoring.export import FORMATS
from autograder.execution.sandbox import check_sandbox
from autograder.limits import DEFAULT as DEFAULT_LIMITS
from autograder.limits import GIB, BadLimits, Limits

if TYPE_CHECKING:
    from autograder.scoring.score import GradeRow


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    parser.add_argument("--course", type=Path, default=None,
                        help="repository holding solutions/ (default: found from the current folder)")
    commands = parser.add_subparsers(dest="command", required=True)

    rel = commands.add_parser("release", help="regenerate notebooks/ from solutions/")
    rel.add_argument("assignments", nargs="*", help="assignment names (default: all)")
    rel.add_argument("--out", type=Path, help="release folder (default: notebooks/)")
    rel.add_argument("--no-check", action="store_true",
                     help="do not run the solutions to check how each graded cell will be graded")
    rel.add_argument("--cell-timeout", type=int, default=DEFAULT_LIMITS.cell_timeout, metavar="SECONDS",
                     help="the cell time limit the check runs the solution with (default %(default)s; use the "
                          "value you will grade with)")

    grade = commands.add_parser("grade", help="grade a folder of submissions")
    grade.add_argument("assignment", help="assignment name, e.g. 01-convolution")
    grade.add_argument("submissions", type=Path,
                       help="folder with one sub-folder per student id (or nbgrader's submitted/ layout)")
    grade.add_argument("--out", type=Path, required=True,
                       help="output folder: gradebook.db, grades.csv, feedback/")
    grade.add_argument("--timeout", type=float, default=DEFAULT_LIMITS.submission_timeout,
                       help="seconds allowed for one submission (default %(default)s)")
    grade.add_argument("--cell-timeout", type=int, default=DEFAULT_LIMITS.cell_timeout, metavar="SECONDS",
                       help="seconds one cell may run before it is interrupted; a kernel that ignores the "
                            "interrupt is restarted (default %(default)s)")
    grade.add_argument("--unsafe", action="store_true",
                       help="run student code without the bubblewrap sandbox (only for code you trust)")
    grade.add_argument("--workers", type=int, default=1,
                       help="submissions graded at once on this machine (default %(default)s)")
    grade.add_argument("--memory-limit", type=float, default=DEFAULT_LIMITS.memory / GIB, metavar="GIB",
                       help="memory one process of a submission may use, in GiB, and with cgroups all its "
                            "processes together (default %(default)g)")
    grade.add_argument("--due-date", metavar="DATE",
                       help="the assignment's due date, in nbgrader's format (e.g. "
                            "'2026-12-01 17:00:00 Europe/Berlin'); "
                            "a submission whose timestamp.txt (written by nbgrader submit) is later is late")
    grade.add_argument("--late-penalty", choices=("none", "zero"), default="none",
                       help="nbgrader's late submission penalty: none (lateness only recorded) or zero (a late "
                            "notebook scores 0) (default %(default)s)")
    grade.add_argument("--scheduler", metavar="ADDRESS",
                       help="grade on a Dask distributed cluster, e.g. tcp://10.0.0.5:8786; its workers "
                            "need this package and bubblewrap; results still land in --out")

    exp = commands.add_parser("export", help="grades from gradebooks as an LMS import file")
    exp.add_argument("gradebooks", type=Path, nargs="+",
                     help="gradebook.db files (or the --out folders of `grade` runs)")
    exp.add_argument("--format", choices=FORMATS, default="csv", dest="fmt")
    exp.add_argument("--output", type=Path, required=True, help="file to write")
    return parser


class _Progress:
    """One line per graded submission above a progress bar for the batch."""

    def __init__(self) -> None:
        from tqdm import tqdm

        self.bar = tqdm(unit="submission", desc="grading", dynamic_ncols=True)

    def __call__(self, row: GradeRow) -> None:
        self.bar.write(f"  {row.student_id}: {row.score:g}/{row.max_score:g}  {row.status}")
        self.bar.update()


def _check(root: Path, args: argparse.Namespace) -> int:
    """Run each released assignment's solution as ``grade`` would; say per graded cell how it fares."""
    from autograder.assignments import list_assignments
    from autograder.release import check_assignment

    problem = check_sandbox()
    if problem:
        print(f"note: checking without the sandbox ({problem}); the solutions are your own code")
    failed = 0
    for name in args.assignments or list_assignments(root):
        print(f"checking {name}: running the solution with its tests, as `grade` will")
        checks = check_assignment(root, name, Limits(sandbox=problem is None, cell_timeout=args.cell_timeout))
        for check in checks:
            print(f"  {check}")
        failed += sum(check.verdict == "PROBLEM" for check in checks)
        if any(check.verdict == "plain nbgrader" for check in checks):
            print(f"  note: {name} has test cells graded the plain nbgrader way: a student's code can make them "
                  "pass without solving; write them as described above for tamper-proof grading")
    if failed:
        print(f"error: {failed} graded cell(s) cannot be graded as they are (PROBLEM above); `grade` refuses "
              "the assignment until they pass", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "grade":
        nbgrader_processes.prestart(1 if args.scheduler else max(1, args.workers))
    try:
        return _run(args)
    finally:
        nbgrader_processes.stop_spares()


def _run(args: argparse.Namespace) -> int:
    from autograder.assignments import TrackMismatch, UnknownAssignment, assignment_dir, find_course_root
    from autograder.batch import BadDueDate, SchedulerUnavailable, grade_batch
    from autograder.scoring.export import export
    from autograder.execution.worker import ReferenceFailed
    from autograder.release import release

    nbgrader_reuse.install()  # this process opens gradebooks once or twice per submission
    root = find_course_root(args.course)
    try:
        if args.command == "release":
            for path in release(root, args.assignments or None, args.out):
                if path.is_file():
                    print(f"wrote {path.relative_to(root) if path.is_relative_to(root) else path}")
            return 0 if args.no_check else _check(root, args)
        if args.command == "export":
            books = [p / "gradebook.db" if p.is_dir() else p for p in args.gradebooks]
            count = export(books, args.fmt, args.output)
            print(f"wrote {args.output} ({args.fmt}, {count} student(s))")
            return 0
        assignment_dir(root, args.assignment)
        if args.due_date:
            from autograder.batch import _parse_due_date

            _parse_due_date(args.due_date)  # a clear error before anything runs
        if not args.submissions.is_dir():
            print(f"error: submissions folder {args.submissions} does not exist", file=sys.stderr)
            return 2
        problem = None if args.unsafe else check_sandbox()
        if problem:
            print(f"error: cannot grade safely: {problem}. Fix that, or pass --unsafe to run "
                  "student code unsandboxed as your own user.", file=sys.stderr)
            return 2
        if args.unsafe:
            print("WARNING: --unsafe: student code runs without a sandbox, as your user, with your files and network.")
        elif args.scheduler is None and (reason := check_cgroups()):  # Dask workers decide for themselves
            print(f"note: no cgroup limits ({reason}); limits are per process")
        print(f"grading {args.assignment} from {args.submissions} into {args.out}")
        progress = _Progress()
        limits = Limits(sandbox=not args.unsafe, cell_timeout=args.cell_timeout, submission_timeout=args.timeout,
                        memory=int(args.memory_limit * GIB))
        try:
            rows = grade_batch(root, args.assignment, args.submissions, args.out, limits, progress=progress,
                               workers=args.workers, scheduler=args.scheduler,
                               due_date=args.due_date, late_penalty=args.late_penalty)
        finally:  # an error below starts on a line of its own, not after the bar
            progress.bar.close()
        failed = sum(not row.graded for row in rows)
        print(f"done: {len(rows)} submission(s), {len(rows) - failed} graded, {failed} not graded; "
              f"see {args.out / 'grades.csv'}")
        return 0
    except (UnknownAssignment, TrackMismatch, ReferenceFailed, SchedulerUnavailable, FileNotFoundError,
            BadDueDate, BadLimits, nbgrader_processes.GenerateFailed) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
