"""Small helpers shared by every page and assignment of the course.

Pages import this package for the same few things: pick a device, seed every
random generator, size a run for the quick or full profile, load offline data
and draw the usual figures.
"""
from dlbook.profile import by_profile, profile
from dlbook.runtime import device, seed_everything

__all__ = ["by_profile", "device", "profile", "seed_everything"]
__version__ = "0.1.0"
