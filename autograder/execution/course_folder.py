"""A course folder of our own making, where nbgrader keeps its state for one worker or run.

nbgrader keeps its state in a course folder (``source/``, ``release/``, ``submitted/``,
``autograded/``) next to a SQLite gradebook.  The repository's ``solutions/`` is copied
into such a folder instead of being used in place, so nothing nbgrader writes can land in
the repository; its ``nbgrader_config.py`` calls :func:`autograder.nbgrader_config.configure`.
Grading runs nbgrader in long-lived processes (:mod:`autograder.execution.nbgrader_process`);
:meth:`CourseFolder.run`, nbgrader's own command line as a child process with a time limit,
is what the throughput benchmark compares against.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from autograder.limits import Limits

CONFIG_TEMPLATE = '''\
# Written by the course autograder; see autograder/nbgrader_config.py.
from autograder.limits import Limits
from autograder.nbgrader_config import configure
configure(get_config(), {root!r}, {db!r}, {limits!r}, runtime_dir={runtime!r})
'''


@dataclass
class CourseFolder:
    root: Path
    db_path: Path
    limits: Limits = Limits(sandbox=False)  # how its notebooks run (written into its nbgrader_config.py)

    @classmethod
    def create(cls, root: Path, db_path: Path, solutions: Path, assignment: str,
               limits: Limits = Limits(sandbox=False)) -> "CourseFolder":
        """Make ``root`` a course folder whose source is a copy of ``solutions/<assignment>``."""
        source = root / "source" / assignment
        if source.exists():
            shutil.rmtree(source)
        shutil.copytree(solutions / assignment, source,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"))
        # nbgrader's autotest templates live in the course folder, next to source/ (here: next to solutions/).
        if (solutions.parent / "autotests.yml").is_file():
            shutil.copyfile(solutions.parent / "autotests.yml", root / "autotests.yml")
        return cls.configure(root, db_path, limits)

    @classmethod
    def configure(cls, root: Path, db_path: Path, limits: Limits = Limits(sandbox=False),
                  runtime_dir: Path | None = None) -> "CourseFolder":
        """Write ``root``'s nbgrader_config.py (its ``source/`` is the caller's business).

        ``runtime_dir`` holds a sandboxed kernel's sockets (default ``root/runtime``).
        """
        root.mkdir(parents=True, exist_ok=True)
        (root / "nbgrader_config.py").write_text(CONFIG_TEMPLATE.format(
            root=str(root.resolve()), db=str(db_path.resolve()), limits=limits,
            runtime=str(runtime_dir) if runtime_dir else None))
        return cls(root.resolve(), db_path.resolve(), limits)

    def run(self, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run ``nbgrader ARGS`` in this folder; never raises for nbgrader's own failures."""
        command = [sys.executable, "-m", "nbgrader", *args, "--log-level=WARN"]
        env = {**os.environ, **(env or {})}
        # nbgrader runs `alembic` (gradebook migrations) from PATH: use this environment's,
        # also when the virtual environment was not activated (`make test` does not).
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        try:
            return subprocess.run(command, cwd=self.root, capture_output=True, text=True,
                                  timeout=timeout, stdin=subprocess.DEVNULL, env=env)
        except subprocess.TimeoutExpired as err:
            return subprocess.CompletedProcess(command, returncode=-9,
                                               stdout=str(err.stdout or ""),
                                               stderr=f"timed out after {timeout:.0f} s")
