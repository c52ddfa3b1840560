"""Rewriting test cells: hidden tests record the student's values and compute no expected ones."""
from __future__ import annotations

from autograder.execution.test_rewrite import rewrite_test

HIDDEN = """from dlbook.checks import assert_close, hidden
assert_close(f(2), 4, name="f(2)")
### BEGIN HIDDEN TESTS
with hidden("f"):
    import reference_lib
    _x = make_input()
    _x.sort()
    _w = make_weights()
    _layer = reference_lib.Layer()
    _layer.build(_x.shape)
    _layer.set_weights([_w])
    _ref = reference_lib.tensor(_x)
    _out = (_ref * _w).sum()
    _out.backward()
    _cache = {}
    _cache["k"] = _ref.grad
    assert_close(f(_x, _w), _ref.grad)
    assert f(_x, 0) == _layer(_x)
### END HIDDEN TESTS
"""


def _hidden_part(source: str) -> str:
    rewritten, _ = rewrite_test(source, "nb", "test_f")
    return rewritten.split('with hidden')[1]


def test_visible_checks_are_recorded_and_still_asserted() -> None:
    rewritten, sites = rewrite_test(HIDDEN, "nb", "test_f")
    assert "__dlbook_rec__.check('test_f/0', f(2), 4, name='f(2)')" in rewritten
    assert set(sites) == {"test_f/0", "test_f/1", "test_f/2"}


def test_hidden_tests_record_the_student_values_only() -> None:
    hidden = _hidden_part(HIDDEN)
    assert "__dlbook_rec__.record('test_f/1', f(_x, _w))" in hidden
    assert "__dlbook_rec__.record('test_f/2', f(_x, 0))" in hidden


def test_no_expected_value_is_computed_in_the_student_kernel() -> None:
    hidden = _hidden_part(HIDDEN)
    # The reference library, the tensor and its gradient, and the layer that only received
    # method calls are all gone: student code cannot find them in its caller's frame.
    for gone in ("reference_lib", "_ref", "backward", "_out", "_layer", "_cache"):
        assert gone not in hidden, f"{gone} survived:\n{hidden}"


def test_what_builds_the_student_inputs_stays() -> None:
    hidden = _hidden_part(HIDDEN)
    for kept in ("_x = make_input()", "_x.sort()", "_w = make_weights()"):
        assert kept in hidden, f"{kept} was dropped:\n{hidden}"
