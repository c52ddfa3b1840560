"""Long-lived nbgrader processes: one nbgrader command per request.

Starting ``nbgrader autograde`` for every submission costs a Python start and the import of
nbgrader, nbconvert, SQLAlchemy and friends — longer than grading a small notebook.  So each
worker of a batch keeps one trusted process (:func:`serve`) that imports all that once and
then runs ``autograde`` (or ``generate_assignment``) request after request, one JSON line in,
one JSON line out.  A batch starts its processes ahead of time (:func:`prestart`), so they
import nbgrader while the batch prepares, and the first of them generates the assignment.

This process never runs student code itself: nbgrader starts a fresh (sandboxed) kernel for
every notebook, and the kernel's whole sandbox dies with this process (``--die-with-parent``).
:class:`NbgraderProcess` is the grader's side.  It enforces the per-submission time limit: a
submission that overruns it gets its process killed (process group and sandbox included) and
the next submission gets a new one, so a stuck notebook costs only its own row.
"""
from __future__ import annotations

import json
import logging
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

from traitlets.config.loader import PyFileConfigLoader

from autograder import nbgrader_reuse

# The parent reads answers from this file descriptor, not stdout: nothing that nbgrader or a
# library prints can be mistaken for an answer.
ANSWER_FD_ENV = "DLBOOK_WORKER_ANSWER_FD"
LOG_LIMIT = 20_000  # characters of nbgrader's log kept per request


def _convert(request: dict) -> dict:
    """Run one nbgrader converter in this process, as its command line would (``--force``)."""
    from nbgrader.converters import Autograde, GenerateAssignment
    from nbgrader.coursedir import CourseDirectory
    from nbgrader.utils import capture_log

    course_root = Path(request["course"])
    os.chdir(course_root)
    # Read when nbgrader looks for the kernelspec and puts the kernel's sockets.
    os.environ.update(request.get("env", {}))
    # The course folder's own nbgrader_config.py: the settings `nbgrader ...` would use there.
    config = PyFileConfigLoader("nbgrader_config.py", str(course_root)).load_config()
    coursedir = CourseDirectory(config=config)
    coursedir.assignment_id = request["assignment"]
    if request["command"] == "autograde":
        coursedir.student_id = request["student"]
        converter = Autograde(coursedir=coursedir, config=config)
        converter.create_student = True
    elif request["command"] == "generate_assignment":
        converter = GenerateAssignment(coursedir=coursedir, config=config)
    else:
        raise ValueError(f"unknown command {request['command']!r}")
    converter.force = True
    converter.log.setLevel(logging.WARNING)
    result = capture_log(converter)
    return {"success": bool(result["success"]),
            "log": (result.get("log", "") + result.get("error", ""))[-LOG_LIMIT:]}


def serve() -> None:
    """Answer nbgrader requests from stdin until it closes."""
    answers: IO[str] = os.fdopen(int(os.environ[ANSWER_FD_ENV]), "w", buffering=1)
    # Import the heavy part now: a process started ahead of time is ready when work arrives.
    import nbgrader.api
    import nbgrader.converters  # noqa: F401

    nbgrader_reuse.install()

    for line in sys.stdin:
        try:
            answer = _convert(json.loads(line))
        except Exception as err:  # noqa: BLE001 - report, keep serving the next request
            answer = {"success": False, "log": f"{type(err).__name__}: {err}"}
        answers.write(json.dumps(answer) + "\n")


class GenerateFailed(RuntimeError):
    """nbgrader could not generate the student version of an assignment (its log says why)."""


class NbgraderProcess:
    """The grader's handle on one :func:`serve` process, restarted after a time-out or crash."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self._answers: int | None = None
        self._buffer = b""
        self._log_dir: str | None = None
        self._stopping = threading.Lock()  # a batch that ends early may stop a process its job is using

    def start(self) -> "NbgraderProcess":
        """Start the process unless it runs; it imports nbgrader while the caller goes on."""
        if self.process is not None and self.process.poll() is None:
            return self
        self.stop()
        read_end, write_end = os.pipe()
        env = {**os.environ, ANSWER_FD_ENV: str(write_end)}
        # nbgrader runs `alembic` (gradebook migrations) from PATH: use this environment's.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        # nbgrader's and the kernels' own output (bounded in the sandbox by its file size limit).
        self._log_dir = tempfile.mkdtemp(prefix="dlbook-nbgrader-")
        with open(Path(self._log_dir) / "nbgrader.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "autograder.execution.nbgrader_process"],
                stdin=subprocess.PIPE, stdout=log, stderr=log, pass_fds=(write_end,), env=env, cwd=self._log_dir,
                start_new_session=True)
        os.close(write_end)
        self._answers, self._buffer = read_end, b""
        return self

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

    def _request(self, request: dict, timeout: float) -> subprocess.CompletedProcess:
        self.start()
        assert self.process is not None and self.process.stdin is not None
        command = [request["command"], request["assignment"]]
        try:
            self.process.stdin.write(json.dumps(request).encode() + b"\n")
            self.process.stdin.flush()
            answer = self._read_answer(time.monotonic() + timeout)
        except (BrokenPipeError, OSError) as err:
            answer = {"success": False, "log": f"the grading worker could not be reached ({err})"}
        if answer is None:
            self.stop()
            return subprocess.CompletedProcess(command, -9, "", f"timed out after {timeout:.0f} s")
        if not answer["success"]:
            self.stop()  # its state is unknown after a failure: the next request gets a new one
        return subprocess.CompletedProcess(command, 0 if answer["success"] else 1, "", answer["log"])

    def autograde(self, course_root: Path, env: dict[str, str], assignment: str, student: str,
                  timeout: float) -> subprocess.CompletedProcess:
        """``nbgrader autograde ASSIGNMENT --student STUDENT --force`` in ``course_root``, with ``env`` set."""
        return self._request({"command": "autograde", "course": str(course_root), "env": env,
                              "assignment": assignment, "student": student}, timeout)

    def generate_assignment(self, course_root: Path, assignment: str, timeout: float = 600) -> None:
        """``nbgrader generate_assignment ASSIGNMENT --force`` in ``course_root``; raises when it fails."""
        result = self._request({"command": "generate_assignment", "course": str(course_root),
                                "assignment": assignment}, timeout)
        if result.returncode != 0:
            raise GenerateFailed(f"nbgrader generate_assignment {assignment} failed:\n{result.stderr[-3000:]}")

    def stop(self) -> None:
        """End the process and everything it started (a kernel's sandbox dies with it)."""
        with self._stopping:
            self._stop()

    def _stop(self) -> None:
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
        if self._log_dir is not None:
            shutil.rmtree(self._log_dir, ignore_errors=True)
            self._log_dir = None


# Processes started ahead of need (:func:`prestart`), taken by the workers that come next.
_spares: list[NbgraderProcess] = []
_spares_lock = threading.Lock()


def prestart(count: int) -> None:
    """Have ``count`` spare processes started now, so they import nbgrader while the batch prepares."""
    with _spares_lock:
        _spares.extend(NbgraderProcess().start() for _ in range(count - len(_spares)))


def take() -> NbgraderProcess:
    """A started process: a spare if there is one, else a new one."""
    with _spares_lock:
        if _spares:
            return _spares.pop(0)
    return NbgraderProcess().start()


def give_back(process: NbgraderProcess) -> None:
    """Return a process taken with :func:`take` that another worker may use."""
    with _spares_lock:
        _spares.append(process)


def stop_spares() -> None:
    with _spares_lock:
        spares, _spares[:] = list(_spares), []
    for process in spares:
        process.stop()


if __name__ == "__main__":
    serve()
