"""Engines and checked schemas kept per process (autograder/nbgrader_reuse.py) change nothing nbgrader does."""
from __future__ import annotations

from pathlib import Path

import jsonschema
import nbformat
import pytest
from nbgrader.api import Gradebook
from nbgrader.preprocessors import CheckCellMetadata

from autograder import nbgrader_reuse

SCHEMA = {"type": "object", "properties": {"points": {"type": "number", "minimum": 0}},
          "required": ["points"], "additionalProperties": False}


@pytest.mark.parametrize("instance", [{"points": -1}, {}, {"points": 1, "extra": True}, {"points": "two"}])
def test_validate_raises_what_jsonschema_raises(instance: dict) -> None:
    with pytest.raises(jsonschema.ValidationError) as expected:
        jsonschema.validate(instance, SCHEMA)
    with pytest.raises(jsonschema.ValidationError) as ours:
        nbgrader_reuse.validate(instance, SCHEMA)
    assert (ours.value.message, list(ours.value.path)) == (expected.value.message, list(expected.value.path))


def test_validate_checks_a_schema_once(monkeypatch) -> None:
    checked = []
    original = jsonschema.Draft202012Validator.check_schema
    monkeypatch.setattr(jsonschema.Draft202012Validator, "check_schema",
                        classmethod(lambda cls, schema: checked.append(1) or original(schema)))
    schema = {**SCHEMA, "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "checked once"}
    for points in range(5):
        nbgrader_reuse.validate({"points": points}, schema)
    assert checked == [1]
    with pytest.raises(jsonschema.SchemaError):  # a broken schema is still refused
        nbgrader_reuse.validate({"points": 1}, {"type": "no such type"})


def _graded_cell(**nbgrader: object) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("assert True")
    cell.metadata.nbgrader = {"grade": True, "solution": False, "locked": True, "schema_version": 3,
                              "task": False, "grade_id": "test_a", "points": 1, **nbgrader}
    return cell


def test_nbgrader_still_refuses_bad_cell_metadata() -> None:
    nbgrader_reuse.install()
    good = nbformat.v4.new_notebook(cells=[_graded_cell()])
    CheckCellMetadata().preprocess(good, {})
    bad = nbformat.v4.new_notebook(cells=[_graded_cell(points="a lot")])
    with pytest.raises(jsonschema.ValidationError):
        CheckCellMetadata().preprocess(bad, {})


def test_one_engine_per_gradebook_and_nothing_kept_open(tmp_path: Path) -> None:
    nbgrader_reuse.install()  # also gives a new gradebook its schema revision without `alembic`
    url = f"sqlite:///{tmp_path / 'gradebook.db'}"
    assert nbgrader_reuse.shared_engine(url, echo=False) is nbgrader_reuse.shared_engine(url, echo=False)
    assert nbgrader_reuse.shared_engine(url) is not nbgrader_reuse.shared_engine(f"sqlite:///{tmp_path / 'other.db'}")
    with Gradebook(url) as gradebook:
        gradebook.add_student("ada")
    with Gradebook(url) as gradebook:  # reopened on the kept engine: sees what was committed
        assert [s.id for s in gradebook.students] == ["ada"]
        engine = gradebook.engine
    assert engine.pool.checkedout() == 0  # closing gave every connection back
    (tmp_path / "gradebook.db").unlink()  # a new gradebook at the same path starts empty
    with Gradebook(url) as gradebook:
        assert gradebook.students == []
        gradebook.add_student("grace")
        assert [s.id for s in gradebook.students] == ["grace"]
