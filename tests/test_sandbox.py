"""The grading sandbox: student code reaches no secret file, no network, and leaves no process."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import nbformat
import pytest

from autograder.cli import main
from autograder.execution.sandbox import check_sandbox
from tests import tiny_course

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(check_sandbox() is not None, reason=f"no sandbox here: {check_sandbox()}")]

MARKER = "dlbook-sandbox-test-orphan"

# `double` is right only if the attack works, so a sandbox that holds gives 0 for that part.
STEAL = '''import os, socket
def double(x):
    stolen = []
    for path in {secrets!r}:
        try:
            with open(path, "rb") as handle:
                handle.read(1)
            stolen.append(path)
        except OSError:
            pass
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=2).close()
        stolen.append("network")
    except OSError:
        pass
    try:  # may succeed inside the sandbox's private tmpfs; the host file must not appear
        with open({outside!r}, "w") as handle:
            handle.write("written from a submission")
    except OSError:
        pass
    return 2 * x if stolen else 0'''

ORPHAN = '''import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", "{marker}"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
def double(x):
    return 2 * x'''

# The grading kernel is started without ipykernel's debugger (autograder.execution.sandbox.
# KERNEL_LAUNCHER) but must behave as `python -m ipykernel_launcher`: a module in the working
# folder imports.  `double` is right only if both hold.
LOCAL_MODULE = '''import pathlib, sys
pathlib.Path("helper_module.py").write_text("def twice(x):\\n    return 2 * x\\n")
from helper_module import twice
def double(x):
    return twice(x) if sys.modules.get("debugpy") is None else 0'''


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("course")
    source = tiny_course.make_course(root)
    out = root / "out"
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    secrets = [str(source), str(out / "gradebook.db"), str(out / "course" / "source" / tiny_course.NAME / source.name),
               str(Path.home() / ".bashrc"), str(Path(__file__))]
    outside = str(root / "written-by-student.txt")
    solution = nbformat.read(source, 4)
    cases = {
        "thief": tiny_course.with_answer(solution, "double", STEAL.format(
            secrets=secrets, port=listener.getsockname()[1], outside=outside)),
        "orphan": tiny_course.with_answer(solution, "double", ORPHAN.format(marker=MARKER)),
        "local_module": tiny_course.with_answer(solution, "double", LOCAL_MODULE),
    }
    graded = tiny_course.grade_cases(root, cases)
    listener.close()
    return {**graded, "outside": Path(outside)}


def test_no_file_network_or_write_outside_the_submission(graded) -> None:
    assert graded["code"] == 0
    thief = graded["rows"]["thief"]
    assert thief["status"].startswith("graded"), thief
    assert float(thief["test_double"]) == 0 and float(thief["test_square"]) == 3, thief
    assert not graded["outside"].exists()


def test_no_process_outlives_grading(graded) -> None:
    orphan = graded["rows"]["orphan"]
    assert float(orphan["test_double"]) == 2, orphan  # honest code still runs (subprocesses allowed)
    leftovers = tiny_course.processes_with(MARKER)
    for pid in leftovers:  # clean up before failing, so one failure does not leak into other tests
        os.kill(pid, 9)
    assert not leftovers, f"processes started by a submission survived grading: {leftovers}"


def test_the_kernel_imports_from_its_folder_and_loads_no_debugger(graded) -> None:
    row = graded["rows"]["local_module"]
    assert float(row["test_double"]) == 2, row


def test_refuses_without_sandbox_unless_unsafe(tmp_path: Path, monkeypatch, capsys) -> None:
    import autograder.cli as cli

    tiny_course.make_course(tmp_path)
    (tmp_path / "subs").mkdir()
    monkeypatch.setattr(cli, "check_sandbox", lambda: "bubblewrap is not installed")
    assert main(["--course", str(tmp_path), "grade", tiny_course.NAME, str(tmp_path / "subs"),
                 "--out", str(tmp_path / "out")]) == 2
    assert "--unsafe" in capsys.readouterr().err
