"""pyproject.toml and environment.yml must pin the same versions."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PIN = re.compile(r"^([A-Za-z0-9_.\-]+)(\[[^\]]*\])?==(\S+)$")


def _pins(requirements: list[str]) -> dict[str, str]:
    pins = {}
    for requirement in requirements:
        match = PIN.match(requirement.strip())
        if match:
            pins[match.group(1).lower().replace("_", "-")] = match.group(3)
    return pins


def pyproject_pins() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    # keras-gpu is the alternative to tensorflow-cpu; conda lists the CPU build.
    chosen = [r for name, reqs in extras.items() if name != "keras-gpu" for r in reqs]
    return _pins(project["dependencies"] + chosen)


def environment_pins() -> dict[str, str]:
    lines = (ROOT / "environment.yml").read_text().splitlines()
    start = lines.index("  - pip:")
    return _pins([line.strip()[2:] for line in lines[start + 1:] if line.strip().startswith("- ")])


def test_every_dependency_is_pinned() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for reqs in project["optional-dependencies"].values() for r in reqs]
    loose = [r for r in project["dependencies"] + extras
             if "==" not in r and not r.startswith("deep-learning-course")]
    assert not loose, f"unpinned requirements in pyproject.toml: {loose}"


def test_environment_matches_pyproject() -> None:
    ours, conda = pyproject_pins(), environment_pins()
    assert ours, "no pins found in pyproject.toml"
    differ = {name: (ours.get(name), conda.get(name))
              for name in ours.keys() | conda.keys() if ours.get(name) != conda.get(name)}
    assert not differ, f"pins differ (pyproject, environment.yml): {differ}"


@pytest.mark.parametrize("name", ["jupyter-book", "torch", "nbgrader", "nbval", "keras"])
def test_key_packages_pinned(name: str) -> None:
    assert name in pyproject_pins()
