"""The execution side: everything that runs student code or drives a process that does.

Student notebooks run here, in sandboxed kernels (:mod:`.sandbox`, :mod:`.cgroups`) started by
long-lived nbgrader processes (:mod:`.nbgrader_process`) with the course's preprocessors
(:mod:`.preprocessors`, :mod:`.test_rewrite`), in private course folders (:mod:`.course_folder`)
held by grading workers (:mod:`.worker`) that run jobs locally or on Dask (:mod:`.jobs`).
What comes back from here is data only: the values test cells recorded and nbgrader's
gradebook entries.  Nothing here decides points; :mod:`autograder.scoring` does.
"""
