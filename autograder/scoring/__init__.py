"""The scoring side: decides and records points, and never runs student code.

Modules here read what the execution side sends back as data (recorded values as JSON,
gradebook entries, autograded notebooks as files) and never import :mod:`autograder.execution`
or anything that starts a kernel or a process (``tests/test_layout.py`` checks that).
"""
