"""The quick/full run profile.

`full` is what the published book shows; `quick` shrinks epochs and subsets so a
page runs in about a minute on a 2-core CPU.  The profile comes from
``DLBOOK_PROFILE`` and defaults to ``quick`` when ``CI`` is set (so CI never
needs a page-specific branch) and to ``full`` otherwise.
"""
from __future__ import annotations

import os
from typing import TypeVar

T = TypeVar("T")
PROFILES = ("quick", "full")


def profile() -> str:
    """Return the active profile name, ``"quick"`` or ``"full"``."""
    value = os.environ.get("DLBOOK_PROFILE", "").strip().lower()
    if not value:
        return "quick" if os.environ.get("CI") else "full"
    if value not in PROFILES:
        raise ValueError(
            f"DLBOOK_PROFILE={value!r} is not a profile; use one of {', '.join(PROFILES)}."
        )
    return value


def by_profile(quick: T, full: T) -> T:
    """Pick the value for the active profile, e.g. ``epochs = by_profile(quick=1, full=10)``."""
    return quick if profile() == "quick" else full
