"""The nbgrader settings the course grades with.

The grading command writes a ``nbgrader_config.py`` into its working course folder that
calls :func:`configure`, so nbgrader's own commands (``nbgrader formgrader``,
``nbgrader export``) run in that folder see the same settings.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

# Limits for one cell and one notebook; hardened limits belong to the sandbox.
CELL_TIMEOUT_S = 120


def configure(c: Any, course_root: Path | str, db_path: Path | str, course_id: str = "dlbook") -> None:
    """Fill an nbgrader/traitlets config object ``c`` for a course folder."""
    from nbconvert.preprocessors import ClearMetadataPreprocessor
    from nbgrader.preprocessors import (
        AssignLatePenalties, CheckCellMetadata, Execute, LimitOutput, SaveAutoGrades,
    )

    from autograder.preprocessors import StderrIsNotFailure

    c.CourseDirectory.root = str(course_root)
    c.CourseDirectory.course_id = course_id
    c.CourseDirectory.db_url = f"sqlite:///{Path(db_path).resolve()}"
    c.CourseDirectory.source_directory = "source"
    c.CourseDirectory.release_directory = "release"
    c.CourseDirectory.submitted_directory = "submitted"
    c.CourseDirectory.autograded_directory = "autograded"
    c.CourseDirectory.feedback_directory = "feedback"
    c.Execute.timeout = CELL_TIMEOUT_S
    c.Execute.interrupt_on_timeout = True
    c.Execute.allow_errors = True
    c.Execute.kernel_name = "python3"
    # Releases come without solutions: a solution cell replaced by the stub raises.
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.ClearSolutions.text_stub = "YOUR ANSWER HERE"
    c.Autograde.autograde_preprocessors = [
        Execute, StderrIsNotFailure, ClearMetadataPreprocessor, LimitOutput,
        SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
    ]
    c.GenerateAssignment.create_assignment = True
