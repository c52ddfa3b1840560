"""Release and grade the course's nbgrader assignments.

``python -m autograder release``   regenerate ``notebooks/`` from ``solutions/``;
``python -m autograder grade ...``  grade a folder of submissions into a gradebook,
                                    ``grades.csv`` and one feedback page per student.
"""
__version__ = "0.1.0"

import sys

# nbformat imports jsonschema, which, when the optional `rfc3987_syntax` is installed (Jupyter
# pulls it in), builds an IRI grammar at import time: 0.7 s of CPU in every grading process,
# for a format check that nbformat's notebook schema never asks for.  Marking the module
# missing makes jsonschema skip that check, as it does where the package is not installed.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
