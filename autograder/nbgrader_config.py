"""The nbgrader settings the course grades with.

The grading command writes a ``nbgrader_config.py`` into its working course folder that
calls :func:`configure`, so nbgrader's own commands (``nbgrader formgrader``,
``nbgrader export``) run in that folder see the same settings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from autograder.limits import Limits


def configure(c: Any, course_root: Path | str, db_path: Path | str, limits: Limits = Limits(sandbox=False),
              runtime_dir: Path | str | None = None, course_id: str = "dlbook") -> None:
    """Fill an nbgrader/traitlets config object ``c`` for a course folder.

    With ``limits.sandbox`` notebooks run in the ``dlbook-sandbox`` kernel (see
    :mod:`autograder.execution.sandbox`), reached over IPC sockets instead of TCP.
    """
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, LimitOutput, SaveAutoGrades

    from autograder.execution.preprocessors import BoundedExecute, StderrIsNotFailure
    from autograder.execution.test_rewrite import RecordChecks, UndoRecordChecks

    c.CourseDirectory.root = str(course_root)
    c.CourseDirectory.course_id = course_id
    c.CourseDirectory.db_url = f"sqlite:///{Path(db_path).resolve()}"
    c.CourseDirectory.source_directory = "source"
    c.CourseDirectory.release_directory = "release"
    c.CourseDirectory.submitted_directory = "submitted"
    c.CourseDirectory.autograded_directory = "autograded"
    c.CourseDirectory.feedback_directory = "feedback"
    c.Execute.timeout = int(limits.cell_timeout)
    # A busy grading machine can take a while to start a kernel (TensorFlow, a sandbox).
    c.Execute.startup_timeout = 180
    c.Execute.interrupt_on_timeout = True
    # The kernel's state is thrown away once the notebook ran: kill it instead of waiting for
    # it to shut down (about 0.4 s a notebook, idle; its sandbox dies with it).
    c.Execute.shutdown_kernel = "immediate"
    c.Execute.allow_errors = True
    c.Execute.kernel_name = "python3"
    # Test cells' recorded values, once taken from the kernel (never inside the sandbox).
    from autograder.scoring.records import RECORDS_FOLDER

    c.BoundedExecute.records_dir = str(Path(course_root) / RECORDS_FOLDER)
    if limits.sandbox:
        from autograder.execution.sandbox import KERNEL_NAME

        c.Execute.kernel_name = KERNEL_NAME
        # Unix sockets at absolute paths in the worker's runtime folder (bound into the
        # sandbox); one kernel at a time per worker, so fixed names are safe.
        runtime = Path(runtime_dir) if runtime_dir else Path(course_root) / "runtime"
        c.KernelManager.transport = "ipc"
        c.KernelManager.ip = str(runtime / "kernel-ipc")
        c.KernelManager.connection_file = str(runtime / "kernel.json")
    # Releases come without solutions: a solution cell replaced by the stub raises.
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    # RecordChecks runs after nbgrader has restored the test cells from the gradebook: the
    # tests then record values, and the grader (not the kernel) decides what passed.
    # UndoRecordChecks puts the instructor's test code back for formgrader once they ran.
    c.Autograde.autograde_preprocessors = [
        RecordChecks, BoundedExecute, UndoRecordChecks, StderrIsNotFailure, ClearMetadataPreprocessor, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
    ]
    c.GenerateAssignment.create_assignment = True
