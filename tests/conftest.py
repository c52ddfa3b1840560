"""Shared fixtures: the repository root and the built book."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def built_book() -> Path:
    """Build the book as `make book` does (-W --keep-going; execution is cached per framework).

    ``DLBOOK_TEST_SITE=_build/html`` tests an already built site instead (while writing pages).
    """
    if os.environ.get("DLBOOK_TEST_SITE"):
        return Path(os.environ["DLBOOK_TEST_SITE"]).resolve()
    result = subprocess.run(
        [sys.executable, "-m", "dlbook.build", "--", "-W", "--keep-going"],
        cwd=ROOT, capture_output=True, text=True, timeout=3000,
    )
    log = result.stdout + result.stderr
    assert result.returncode == 0, f"the book build failed:\n{log[-6000:]}"
    return ROOT / "_build" / "html"
