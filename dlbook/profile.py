"""The quick/full run profile.

`full` is what the published book shows; `quick` shrinks epochs and subsets so a
page runs in about a minute on a 2-core CPU.  The rule, in order:

1. ``DLBOOK_PROFILE=quick`` or ``full`` when it is set;
2. ``quick`` when ``CI`` is set (CI machines have no GPU unless a job says so);
3. ``full`` when an NVIDIA GPU is visible (``/proc/driver/nvidia/gpus`` or ``/dev/nvidia0``);
4. ``quick`` otherwise: a laptop without a GPU would need hours for the full book.

No framework is imported to decide (that would cost seconds on every import of dlbook).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
PROFILES = ("quick", "full")
NVIDIA_MARKERS = (Path("/proc/driver/nvidia/gpus"), Path("/dev/nvidia0"))


def nvidia_gpu_visible() -> bool:
    """True when the NVIDIA driver shows a GPU to this machine (no framework imported)."""
    gpus, device_node = NVIDIA_MARKERS
    return (gpus.is_dir() and any(gpus.iterdir())) or device_node.exists()


def profile() -> str:
    """Return the active profile name, ``"quick"`` or ``"full"`` (see the module's rule)."""
    value = os.environ.get("DLBOOK_PROFILE", "").strip().lower()
    if value:
        if value not in PROFILES:
            raise ValueError(
                f"DLBOOK_PROFILE={value!r} is not a profile; use one of {', '.join(PROFILES)}."
            )
        return value
    if os.environ.get("CI"):
        return "quick"
    return "full" if nvidia_gpu_visible() else "quick"


def by_profile(quick: T, full: T) -> T:
    """Pick the value for the active profile, e.g. ``epochs = by_profile(quick=1, full=10)``."""
    return quick if profile() == "quick" else full
