"""Release and grade the course's nbgrader assignments.

``python -m autograder release``   regenerate ``notebooks/`` from ``solutions/``;
``python -m autograder grade ...``  grade a folder of submissions into a gradebook,
                                    ``grades.csv`` and one feedback page per student.
"""
__version__ = "0.1.0"
