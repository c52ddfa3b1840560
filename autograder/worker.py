"""A long-lived nbgrader process per grading worker: one autograde per request.

Starting ``nbgrader autograde`` for every submission costs a Python start and the import of
nbgrader, nbconvert, SQLAlchemy and friends — longer than grading a small notebook.  So each
worker of a batch starts one trusted process (:func:`serve`) that imports all that once and
then autogrades submission after submission in its course folder, reading one JSON request
per line and answering one JSON line.

This process never runs student code itself: nbgrader starts a fresh (sandboxed) kernel for
every notebook, and the kernel's whole sandbox dies with this process (``--die-with-parent``).
:class:`AutogradeWorker` is the grader's side.  It enforces the per-submission time limit: a
submission that overruns it gets its worker killed (process group and sandbox included) and
the next submission gets a new worker, so a stuck notebook costs only its own row.
"""
from __future__ import annotations

import json
import logging
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

# The parent reads answers from this file descriptor, not stdout: nothing that nbgrader or a
# library prints can be mistaken for an answer.
ANSWER_FD_ENV = "DLBOOK_WORKER_ANSWER_FD"
LOG_LIMIT = 20_000  # characters of nbgrader's log kept per request


def _autograde(config: Config, assignment: str, student: str) -> dict:
    """Run nbgrader's Autograde converter in this process, as ``nbgrader autograde --force`` does."""
    from nbgrader.converters import Autograde
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = assignment
    coursedir.student_id = student
    converter = Autograde(coursedir=coursedir, config=config)
    converter.force = True
    converter.create_student = True
    converter.log.setLevel(logging.WARNING)
    result = capture_log(converter)
    return {"success": bool(result["success"]),
            "log": (result.get("log", "") + result.get("error", ""))[-LOG_LIMIT:]}


def serve(course_root: Path) -> None:
    """Answer autograde requests from stdin until it closes."""
    answers: IO[str] = os.fdopen(int(os.environ[ANSWER_FD_ENV]), "w", buffering=1)
    os.chdir(course_root)
    # The course folder's own nbgrader_config.py: the settings `nbgrader autograde` would use.
    config = PyFileConfigLoader("nbgrader_config.py", str(course_root)).load_config()
    for line in sys.stdin:
        request = json.loads(line)
        try:
            answer = _autograde(config, request["assignment"], request["student"])
        except Exception as err:  # noqa: BLE001 - report, keep serving the next submission
            answer = {"success": False, "log": f"{type(err).__name__}: {err}"}
        answers.write(json.dumps(answer) + "\n")


class AutogradeWorker:
    """The grader's handle on one :func:`serve` process, restarted after a time-out or crash."""

    def __init__(self, course_root: Path, env: dict[str, str]) -> None:
        self.course_root = course_root
        self.env = env
        self.process: subprocess.Popen | None = None
        self._answers: int | None = None
        self._buffer = b""

    def _start(self) -> None:
        read_end, write_end = os.pipe()
        env = {**os.environ, **self.env, ANSWER_FD_ENV: str(write_end)}
        # nbgrader runs `alembic` (gradebook migrations) from PATH: use this environment's.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        log = open(self.course_root / "worker.log", "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autograder.worker", str(self.course_root)],
            stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=(write_end,), env=env,
            cwd=self.course_root, start_new_session=True)
        log.close()
        os.close(write_end)
        self._answers, self._buffer = read_end, b""

    def _read_answer(self, deadline: float) -> dict | None:
        assert self._answers is not None
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self._answers], [], [], left)
            if ready:
                chunk = os.read(self._answers, 65536)
                if not chunk:  # the worker died (a crash of ours, or it was killed)
                    return {"success": False, "log": "the grading worker process ended unexpectedly"}
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return json.loads(line)

    def autograde(self, assignment: str, student: str, timeout: float) -> subprocess.CompletedProcess:
        """Autograde one submission; the result looks like that of ``nbgrader autograde``."""
        if self.process is None or self.process.poll() is not None:
            self.stop()
            self._start()
        assert self.process is not None and self.process.stdin is not None
        command = ["autograde", assignment, f"--student={student}"]
        try:
            self.process.stdin.write(json.dumps({"assignment": assignment, "student": student}).encode() + b"\n")
            self.process.stdin.flush()
            answer = self._read_answer(time.monotonic() + timeout)
        except (BrokenPipeError, OSError) as err:
            answer = {"success": False, "log": f"the grading worker could not be reached ({err})"}
        if answer is None:
            self.stop()
            return subprocess.CompletedProcess(command, -9, "", f"timed out after {timeout:.0f} s")
        if not answer["success"]:
            self.stop()  # its state is unknown after a failure: the next submission gets a new one
        return subprocess.CompletedProcess(command, 0 if answer["success"] else 1, "", answer["log"])

    def stop(self) -> None:
        """End the worker and everything it started (its kernel's sandbox dies with it)."""
        if self.process is not None:
            if self.process.poll() is None:
                try:
                    os.killpg(self.process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.process.wait()
            if self.process.stdin:
                self.process.stdin.close()
            self.process = None
        if self._answers is not None:
            os.close(self._answers)
            self._answers = None


if __name__ == "__main__":
    serve(Path(sys.argv[1]).resolve())
