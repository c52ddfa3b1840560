"""The trusted decision on in-memory records: values_match, decide and the records files.

No kernel and no nbgrader run here: the values are made with the kernel side's own encoder
(``dlbook.recording.encode``), as a test cell would record them, and compared as the
batch's writer compares them.  Property-based where a rule holds for every array.
"""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from autograder.scoring.decide import DEFAULT_TOLERANCE, EXACT, Site, decide, values_match
from autograder.scoring.records import completed, completion_site, read_records, records_path, take_cell_records
from dlbook.recording import Recorder, encode

CLOSE = Site(*DEFAULT_TOLERANCE)  # an assert_close site
SAME = Site(*EXACT)  # an `assert actual == expected` site
NAN, INF = float("nan"), float("inf")

# Loaded machines make single examples slow; the properties are what matters, not their speed.
relaxed = settings(deadline=None, max_examples=60)
finite_arrays = hnp.arrays(np.float64, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
                           elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False))


def _match(student, reference, site: Site = CLOSE) -> bool:
    return values_match(encode(student), encode(reference), site)


# ------------------------------------------------------------------ values_match

@relaxed
@given(finite_arrays, st.sampled_from([CLOSE, SAME, Site(0.1, 0.0)]))
def test_a_value_matches_itself_at_every_tolerance(x: np.ndarray, site: Site) -> None:
    assert values_match(encode(x), encode(x), site)


@relaxed
@given(finite_arrays)
def test_a_value_with_another_shape_never_matches(x: np.ndarray) -> None:
    for shape in [(x.size,), (1, x.size), (x.size, 1)]:
        if shape != x.shape:  # the same numbers, laid out otherwise
            assert not values_match(encode(x.reshape(shape)), encode(x), CLOSE)
            assert not values_match(encode(x.reshape(shape)), encode(x), SAME)


@pytest.mark.parametrize("student, reference", [
    (np.zeros((2, 3)), np.zeros((3, 2))),
    (np.zeros(6), np.zeros((2, 3))),
    (np.float64(1.0), np.array([1.0])),  # a scalar is not a one-element vector
    (np.zeros((0,)), np.zeros((0, 1))),
])
def test_shapes_must_agree_even_when_the_values_do(student, reference) -> None:
    assert not _match(student, reference) and not _match(student, reference, SAME)


@relaxed
@given(hnp.arrays(np.int64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.integers(-100, 100)),
       st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.float16, np.float32, np.float64]))
def test_the_dtype_does_not_matter_only_the_values(x: np.ndarray, dtype) -> None:
    # assert_close compares as float64 too: an int32 answer to a float32 reference is right.
    assert values_match(encode(x.astype(dtype)), encode(x.astype(np.float64)), SAME)
    assert values_match(encode(x.astype(dtype)), encode(x.astype(np.float32)), CLOSE)


def test_booleans_are_numbers_as_in_assert() -> None:
    assert _match(True, 1.0, SAME) and _match(np.array([True, False]), [1, 0], SAME)
    assert not _match(True, 0.0, SAME)


@relaxed
@given(finite_arrays.filter(lambda x: x.size > 0), st.data())
def test_within_the_tolerance_passes_and_beyond_fails(x: np.ndarray, data) -> None:
    rtol, atol = DEFAULT_TOLERANCE
    index = data.draw(st.integers(0, x.size - 1))
    near, far = x.copy().ravel(), x.copy().ravel()
    near[index] += (atol + rtol * abs(near[index])) / 2
    far[index] += 2 * (atol + rtol * abs(far[index])) + 1e-3
    assert values_match(encode(near.reshape(x.shape)), encode(x), CLOSE)
    assert not values_match(encode(far.reshape(x.shape)), encode(x), CLOSE)
    assert not values_match(encode(near.reshape(x.shape)), encode(x), SAME) or near[index] == x.ravel()[index]


def test_nan_never_matches_a_number_at_a_tolerance_site() -> None:
    assert not _match([1.0, NAN], [1.0, 2.0])
    assert not _match([1.0, 2.0], [1.0, NAN])
    # The solution's run with the tests as written rejects NaN at an assert_close site
    # (assert_close refuses it), so a reference NaN is never there to match.
    assert not _match([NAN], [NAN])


def test_nan_at_an_exact_site_matches_nan_at_the_same_place_only() -> None:
    assert _match([1.0, NAN], [1.0, NAN], SAME)
    assert not _match([NAN, 1.0], [1.0, NAN], SAME)
    assert not _match([1.0, 2.0], [1.0, NAN], SAME)


@pytest.mark.parametrize("site", [CLOSE, SAME])
def test_infinities_match_only_themselves_in_place(site: Site) -> None:
    assert _match([INF, -INF, 1.0], [INF, -INF, 1.0], site)
    assert not _match([-INF, 1.0], [INF, 1.0], site)
    assert not _match([1e308, 1.0], [INF, 1.0], site)  # near infinity is not infinity
    assert not _match([INF, 1.0], [1.0, INF], site)  # same values, other places
    assert not _match([INF, 1.0], [1e308, 1.0], site)


def test_text_values_compare_as_text() -> None:
    assert values_match({"text": "ok"}, {"text": "ok"}, SAME)
    assert not values_match({"text": "OK"}, {"text": "ok"}, SAME)
    assert not values_match(encode(1.0), {"text": "1.0"}, SAME)  # a number is no text
    assert not values_match({"text": "1.0"}, encode(1.0), CLOSE)  # and text is no number


@pytest.mark.parametrize("student", [
    {}, {"shape": [2]}, {"data": [1, 2]}, {"shape": [3], "data": [1, 2]}, {"shape": 2, "data": [1, 2]},
    {"shape": [2], "data": None}, {"shape": [2], "data": [{"a": 1}, 2]}, {"shape": [2], "data": ["x", 2]},
    {"shape": [None], "data": [1, 2]}, {"shape": [2], "data": 12},
])
def test_a_malformed_student_value_fails_without_raising(student: dict) -> None:
    assert not values_match(student, encode([1.0, 2.0]), CLOSE)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=12)


@relaxed
@given(st.dictionaries(st.sampled_from(["shape", "data", "text"]), json_values))
@example({"shape": [1], "data": [10**400]})  # JSON holds integers no float can: a value, not a crash
@example({"shape": [10**400], "data": [1.0]})
def test_any_json_a_student_writes_is_decided_without_raising(student: dict) -> None:
    # The records file is the student's: whatever JSON object a line holds, the writer decides.
    for reference, site in ((encode([1.0, 2.0]), CLOSE), (encode(True), SAME), ({"text": "ok"}, SAME)):
        assert values_match(student, reference, site) in (True, False)


# ------------------------------------------------------------------ decide

def _records(**sites: list) -> dict[str, list[dict]]:
    return {name.replace("_", "/"): [encode(v) for v in values] for name, values in sites.items()}


def test_decide_needs_every_value_in_order() -> None:
    sites = {"t/0": CLOSE, "t/1": SAME}
    reference = _records(t_0=[1.0, 2.0], t_1=[True])
    assert decide(sites, _records(t_0=[1.0, 2.0], t_1=[True]), reference)
    assert not decide(sites, _records(t_0=[2.0, 1.0], t_1=[True]), reference)  # order
    assert not decide(sites, _records(t_0=[1.0], t_1=[True]), reference)  # one missing
    assert not decide(sites, _records(t_0=[1.0, 2.0, 3.0], t_1=[True]), reference)  # one more
    assert not decide(sites, _records(t_0=[1.0, 2.0]), reference)  # a site never reached
    assert not decide(sites, _records(t_0=[1.0, 2.0], t_1=[False]), reference)


@relaxed
@given(st.lists(st.floats(-1e3, 1e3), min_size=2, max_size=6, unique=True))
def test_decide_is_order_sensitive_for_any_distinct_values(values: list[float]) -> None:
    reference = {"t/0": [encode(v) for v in values]}
    assert decide({"t/0": CLOSE}, reference, reference)
    assert not decide({"t/0": SAME}, {"t/0": [encode(v) for v in reversed(values)]}, reference)


def test_decide_never_passes_where_the_solution_recorded_nothing() -> None:
    assert not decide({"t/0": CLOSE}, {}, {})
    assert not decide({}, {}, {})
    assert not decide({"t/0": CLOSE}, _records(t_0=[1.0]), {"t/0": []})


def test_what_other_cells_recorded_does_not_count() -> None:
    reference = _records(t_0=[1.0])
    assert decide({"t/0": CLOSE}, {**_records(t_0=[1.0]), "u/0": [encode(5.0)]}, reference)
    assert not decide({"t/0": CLOSE}, _records(u_0=[1.0]), reference)


# ------------------------------------------------------------------ records files

def test_the_kernel_writes_where_the_grader_reads(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DLBOOK_RECORDS_DIR", str(tmp_path))
    Recorder("nb").record("t/0", [1.0, NAN])
    assert os.path.samefile(Recorder("nb").path, records_path(tmp_path, "nb"))
    assert read_records(records_path(tmp_path, "nb")) == {"t/0": [{"shape": [2], "data": [1.0, "nan"]}]}


def test_read_records_skips_what_is_not_a_record(tmp_path) -> None:
    path = tmp_path / "r.jsonl"
    lines = ['{"site": "t/0", "value": {"shape": [], "data": [1.0]}}', "not json", "[1, 2]", '{"site": "t/0"}',
             '{"site": 7, "value": {}}', '{"site": "t/0", "value": [1]}', '{"site": "t/0", "value": {"text": "b"}}']
    path.write_text("\n".join(lines) + "\n")
    assert read_records(path) == {"t/0": [{"shape": [], "data": [1.0]}, {"text": "b"}]}
    assert read_records(tmp_path / "missing.jsonl") == {}


def test_read_records_reads_at_most_the_limit(tmp_path, monkeypatch) -> None:
    from autograder.scoring import records

    path = tmp_path / "r.jsonl"
    line = json.dumps({"site": "t/0", "value": {"text": "x"}}) + "\n"
    path.write_text(line * 10)
    monkeypatch.setattr(records, "MAX_RECORD_BYTES", len(line) * 3)
    assert len(read_records(path)["t/0"]) == 3


def test_take_cell_records_keeps_the_cells_own_sites_and_deletes_the_file(tmp_path) -> None:
    path = tmp_path / "r.jsonl"
    entries = [{"site": "t/0", "value": encode(1.0)}, {"site": "u/0", "value": encode(2.0)},
               {"site": completion_site("t"), "value": {"text": "completed"}},  # forged by the kernel
               {"site": "t/1", "value": encode(3.0)}, {"site": "tt/0", "value": encode(4.0)}]
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    assert take_cell_records(path, "t") == [entries[0], entries[3]]
    assert not path.exists()
    assert not completed({"t/0": [encode(1.0)]}, "t") and completed({completion_site("t"): [{}]}, "t")


def test_take_cell_records_follows_no_link_and_reads_no_pipe(tmp_path) -> None:
    secret = tmp_path / "secret.jsonl"
    secret.write_text(json.dumps({"site": "t/0", "value": encode(1.0)}) + "\n")
    link = tmp_path / "link.jsonl"
    link.symlink_to(secret)
    assert take_cell_records(link, "t") == [] and not link.is_symlink() and secret.exists()
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)  # opening it for reading would block without O_NONBLOCK
    assert take_cell_records(fifo, "t") == [] and not fifo.exists()
    folder = tmp_path / "folder.jsonl"
    folder.mkdir()
    assert take_cell_records(folder, "t") == [] and folder.is_dir()


def test_encode_keeps_nan_and_inf_as_text_json_can_hold() -> None:
    value = encode([NAN, INF, -INF, 1.5])
    assert json.loads(json.dumps(value, allow_nan=False)) == value
    assert value["data"][:3] == ["nan", "inf", "-inf"] and math.isclose(value["data"][3], 1.5)
