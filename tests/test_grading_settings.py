"""The grader's limits as one settings object: from the command line to nbgrader's config.

No kernel, nbgrader process or sandbox starts here: the command line's ``grade_batch`` and
``check_assignment`` are replaced by stand-ins that keep what they were given.
"""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from traitlets.config.loader import PyFileConfigLoader

import autograder.cli as cli
from autograder import reference_cache
from autograder.execution.course_folder import CourseFolder
from autograder.execution.jobs import CourseSpec
from autograder.limits import GIB, BadLimits, Limits
from tests import tiny_course


@pytest.mark.parametrize("field", ["cell_timeout", "submission_timeout", "memory"])
@pytest.mark.parametrize("value", [0, -1, math.nan])
def test_a_limit_that_cannot_be_graded_with_is_refused(field: str, value: float) -> None:
    with pytest.raises(BadLimits, match=field.replace("_", " ")):
        Limits(**{field: value})


def test_the_command_line_builds_one_limits_object(tmp_path: Path, monkeypatch, capsys) -> None:
    tiny_course.make_course(tmp_path)
    (tmp_path / "subs").mkdir()
    given = {}

    def grade_batch(root, assignment, submissions, out, limits, **kwargs):
        given["limits"] = limits
        return []

    monkeypatch.setattr(cli, "check_sandbox", lambda: None)
    monkeypatch.setattr("autograder.batch.grade_batch", grade_batch)
    assert cli.main(["--course", str(tmp_path), "grade", tiny_course.NAME, str(tmp_path / "subs"), "--out",
                     str(tmp_path / "out"), "--timeout", "300", "--cell-timeout", "7", "--memory-limit", "1.5"]) == 0
    assert given["limits"] == Limits(sandbox=True, cell_timeout=7, submission_timeout=300, memory=int(1.5 * GIB))

    assert cli.main(["--course", str(tmp_path), "grade", tiny_course.NAME, str(tmp_path / "subs"), "--out",
                     str(tmp_path / "out"), "--unsafe"]) == 0
    assert given["limits"] == Limits(sandbox=False)

    assert cli.main(["--course", str(tmp_path), "grade", tiny_course.NAME, str(tmp_path / "subs"), "--out",
                     str(tmp_path / "out"), "--cell-timeout", "0"]) == 2
    assert "error: the cell timeout must be positive, not 0" in capsys.readouterr().err


def test_release_checks_with_the_cell_limit_it_was_given(tmp_path: Path, monkeypatch) -> None:
    tiny_course.make_course(tmp_path)
    given = []
    monkeypatch.setattr(cli, "check_sandbox", lambda: None)
    monkeypatch.setattr("autograder.release.check_assignment", lambda root, name, limits: given.append(limits) or [])
    assert cli.main(["--course", str(tmp_path), "release", "--out", str(tmp_path / "released"),
                     "--cell-timeout", "9"]) == 0
    assert given == [Limits(sandbox=True, cell_timeout=9)]


def test_a_course_folder_writes_its_limits_into_nbgrader_config(tmp_path: Path) -> None:
    """nbgrader's own commands in the folder (formgrader, export) see the limits grading used."""
    limits = Limits(sandbox=True, cell_timeout=17, submission_timeout=60, memory=3 * GIB)
    course = CourseFolder.configure(tmp_path / "course", tmp_path / "gradebook.db", limits, tmp_path / "runtime")
    assert course.limits == limits
    config = PyFileConfigLoader("nbgrader_config.py", str(course.root)).load_config()
    assert config.Execute.timeout == 17
    assert config.Execute.kernel_name == "dlbook-sandbox"
    assert config.KernelManager.connection_file == str(tmp_path / "runtime" / "kernel.json")

    plain = CourseFolder.configure(tmp_path / "plain", tmp_path / "plain.db", Limits(sandbox=False, cell_timeout=5))
    config = PyFileConfigLoader("nbgrader_config.py", str(plain.root)).load_config()
    assert (config.Execute.timeout, config.Execute.kernel_name) == (5, "python3")


def test_jobs_and_the_reference_cache_follow_the_limits(tmp_path: Path) -> None:
    """Jobs with other limits get other worker slots; the reference run is redone for another cell or memory limit."""
    tiny_course.make_course(tmp_path)
    course = CourseFolder.create(tmp_path / "course", tmp_path / "gradebook.db", tmp_path / "solutions",
                                 tiny_course.NAME, Limits())
    (tmp_path / "gradebook.db").write_bytes(b"")
    spec = CourseSpec.of(course, tiny_course.NAME)
    assert spec.limits == Limits()
    keys = {spec.key()}
    for other in (Limits(sandbox=False), Limits(cell_timeout=5), Limits(memory=GIB), Limits(submission_timeout=60)):
        keys.add(CourseSpec(spec.assignment, spec.sources, spec.gradebook, other).key())
    assert len(keys) == 5

    def cache_key(limits: Limits) -> str:
        return reference_cache.key(spec.assignment, spec.sources, limits)

    assert cache_key(Limits(cell_timeout=5)) != cache_key(Limits()) != cache_key(Limits(memory=GIB))
    # a run that finished within one submission limit recorded what it would under another
    assert cache_key(Limits(submission_timeout=60)) == cache_key(Limits())
