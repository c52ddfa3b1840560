"""What the solution recorded, kept from one run of it to the next (``release`` checks, then ``grade``).

Running the solution — once with the tests as written, once with the recording tests — is
part of checking an assignment (``release``) and of every batch (``grade``).  Its outcome
depends only on the solution's files, the grader's code and the software installed, so a
successful reference run is stored under a key made of all three, and a later batch of
the same assignment reuses it instead of running the solution twice again.  A changed
solution, a changed grader or a changed package gives another key: the solution runs again.

The cache is a folder of the instructor's (``$DLBOOK_GRADER_CACHE``, else
``~/.cache/dlbook-autograder``), which no sandboxed kernel can see.  It is used only when
grading in the sandbox: unsandboxed student code could write into it.  Failures are never
stored, so a broken solution is reported every time.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

from autograder.limits import Limits

CACHE_ENV = "DLBOOK_GRADER_CACHE"
_FORMAT = 1
# Kernel settings that change what the solution computes (see autograder/execution/sandbox.py).
_ENVIRONMENT = ("DLBOOK_PROFILE", "CI", "CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS")


def cache_dir() -> Path:
    configured = os.environ.get(CACHE_ENV)
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dlbook-autograder"


@functools.lru_cache(maxsize=1)
def grader_version() -> str:
    """A hash of the grading code (this package, ``dlbook``'s recorder) and the installed software."""
    import dlbook

    digest = hashlib.sha256(f"{_FORMAT}\0{sys.version}\0{sys.prefix}".encode())
    packages = [Path(__file__).resolve().parent, Path(dlbook.__file__).resolve().parent]
    for package in packages:
        for path in sorted(package.rglob("*.py")):  # the execution/ and scoring/ sides included
            digest.update(path.relative_to(package).as_posix().encode() + b"\0" + path.read_bytes())
    # The installed distributions as their metadata folders name them (name and version).
    installed = sorted({entry for folder in sys.path if os.path.isdir(folder)
                        for entry in os.listdir(folder) if entry.endswith((".dist-info", ".egg-info"))})
    digest.update(json.dumps(installed).encode())
    return digest.hexdigest()


def key(assignment: str, sources: tuple[tuple[str, bytes], ...], limits: Limits) -> str:
    """The cache key of an assignment's reference run: its files, the grader, the kernel's limits.

    The submission time limit is not part of it: a run that finished within one limit
    recorded the same values as under another.
    """
    digest = hashlib.sha256(f"{assignment}\0{limits.cell_timeout}\0{limits.memory}\0{grader_version()}".encode())
    for name in _ENVIRONMENT:
        digest.update(f"{name}={os.environ.get(name)}\0".encode())
    digest.update(",".join(sorted(str(p) for p in Path("/dev").glob("nvidia*"))).encode())
    for name, content in sorted(sources):
        digest.update(name.encode() + b"\0" + hashlib.sha256(content).digest())
    return digest.hexdigest()


def with_tests(cache_key: str, sources: dict[str, list[str]]) -> str:
    """``cache_key`` extended by the notebooks' cell sources as they run (test cells as nbgrader restores them)."""
    return hashlib.sha256(cache_key.encode() + json.dumps(sources, sort_keys=True).encode()).hexdigest()


def _path(cache_key: str) -> Path:
    return cache_dir() / f"reference-{cache_key}.json"


def load(cache_key: str) -> dict[str, dict[str, list[dict]]] | None:
    """The records of a stored reference run, or None."""
    try:
        data = json.loads(_path(cache_key).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("key") != cache_key or not isinstance(data.get("records"), dict):
        return None
    return data["records"]


def store(cache_key: str, records: dict[str, dict[str, list[dict]]]) -> None:
    """Keep a successful reference run's records (atomically; a cache that cannot be written is skipped)."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp", encoding="utf-8") as handle:
            json.dump({"key": cache_key, "records": records}, handle)
        os.replace(handle.name, _path(cache_key))
    except OSError:
        pass
