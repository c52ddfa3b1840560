"""Small helpers shared by every page and assignment of the course.

Pages import this package for the same few things: pick a device, seed every
random generator, size a run for the quick or full profile, load offline data
and draw the usual figures.
"""
import os

# TensorFlow's C++ start-up logging is noise on a page; pages import dlbook first.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from dlbook.profile import by_profile, profile  # noqa: E402
from dlbook.runtime import device, seed_everything  # noqa: E402
from dlbook import progress  # noqa: E402

__all__ = ["by_profile", "device", "profile", "progress", "seed_everything"]
__version__ = "0.1.0"
