"""Work that nbgrader repeats on every notebook it grades, done once per process instead.

nbgrader was written for one command per process.  The grader keeps its processes for a
whole batch (:mod:`autograder.execution.nbgrader_process`, and the batch's own process, which
writes every result into the main gradebook), so three things nbgrader redoes each time are
worth keeping:

* **the gradebook schema's revision.**  nbgrader starts a new ``alembic`` process to read this
  constant whenever it creates a gradebook (about 2 s, as long as the rest of
  ``generate_assignment``); it is read once, in this process, instead.

* **a database engine per gradebook.**  ``nbgrader.api.Gradebook`` makes a new SQLAlchemy
  engine each time it is opened, about ten times per graded notebook, and a new engine starts
  with an empty statement cache, so every query was compiled again.  Closing a gradebook still
  disposes of the engine's connections, so no file stays open; only the engine is kept.
* **checked metadata schemas.**  ``CheckCellMetadata`` validates each graded cell's metadata
  with ``jsonschema.validate``, which checks the (fixed) schema itself before every cell.

None changes what nbgrader reads, writes or accepts.  :func:`install` applies them to the
process that calls it.
"""
from __future__ import annotations

import functools
import json
import threading
from types import SimpleNamespace
from typing import Any

_engines: dict[tuple[str, str], Any] = {}
_engines_lock = threading.Lock()


def shared_engine(url: str, **options: Any) -> Any:
    """``sqlalchemy.create_engine``, made once per database URL and options in this process."""
    from sqlalchemy import create_engine

    key = (url, repr(sorted(options.items())))
    with _engines_lock:
        if key not in _engines:
            _engines[key] = create_engine(url, **options)
        return _engines[key]


@functools.lru_cache(maxsize=None)
def alembic_head() -> str:
    """The gradebook schema's revision, what ``alembic heads`` prints first."""
    from alembic.script import ScriptDirectory
    from nbgrader.dbutil import ALEMBIC_DIR

    return ScriptDirectory(ALEMBIC_DIR).get_current_head()


@functools.lru_cache(maxsize=None)
def _checked_validator(schema_json: str) -> Any:
    import jsonschema

    schema = json.loads(schema_json)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    return validator_class(schema)


def validate(instance: Any, schema: dict) -> None:
    """``jsonschema.validate``: the same errors, with each schema checked once per process."""
    import jsonschema

    error = jsonschema.exceptions.best_match(
        _checked_validator(json.dumps(schema, sort_keys=True)).iter_errors(instance))
    if error is not None:
        raise error


def install() -> None:
    """Keep the schema revision, engines and checked schemas in this process (idempotent)."""
    import nbgrader.api
    import nbgrader.nbgraderformat.common

    nbgrader.api.get_alembic_version = alembic_head
    nbgrader.api.create_engine = shared_engine
    nbgrader.nbgraderformat.common.jsonschema = SimpleNamespace(validate=validate)
