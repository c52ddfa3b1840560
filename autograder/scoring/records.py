"""Records files: the values a test cell recorded, read as JSON data (never pickle, never code).

The student's kernel appends one JSON line per checked value to a file of its runtime folder;
the nbgrader process takes a test cell's own lines after the cell ran (:func:`take_cell_records`)
and keeps them, with a completion mark, in the worker's course folder (:data:`RECORDS_FOLDER`),
out of the sandbox's reach; :func:`read_records` reads them back for the decision.
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path



MAX_RECORD_BYTES = 64 * 2**20


RECORDS_FOLDER = "records"  # in a worker's course folder (never in the sandbox): the values kept


COMPLETED = "@completed"  # the site, in the kept values, that says a test cell ran to the end


def read_records(path: Path) -> dict[str, list[dict]]:
    """``{site: [values in order]}`` from a records file; unreadable lines are skipped."""
    records: dict[str, list[dict]] = {}
    if not path.is_file():
        return records
    with path.open("rb") as handle:
        raw = handle.read(MAX_RECORD_BYTES)
    for site, value in _parse_records(raw):
        records.setdefault(site, []).append(value)
    return records


def _parse_records(raw: bytes) -> Iterator[tuple[str, dict]]:
    """``(site, value)`` for every well-formed JSON line of a records file; others are skipped."""
    for line in raw.splitlines():
        try:
            entry = json.loads(line)
            site, value = entry["site"], entry["value"]
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(site, str) and isinstance(value, dict):
            yield site, value


def records_path(folder: Path, notebook: str) -> Path:
    return folder / f".dlbook-records-{notebook}.jsonl"


def completion_site(grade_id: str) -> str:
    return f"{grade_id}/{COMPLETED}"


def completed(records: dict[str, list[dict]], grade_id: str) -> bool:
    """Whether the test cell ``grade_id`` ran to the end without an error (see :func:`take_cell_records`)."""
    return bool(records.get(completion_site(grade_id)))


def discard(path: Path) -> None:
    """Delete a file the kernel may have written (never following a link it planted)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except IsADirectoryError:
        pass  # a folder planted by student code; no record can be written there


def take_cell_records(path: Path, grade_id: str) -> list[dict]:
    """The entries for ``grade_id``'s sites in the kernel's records file ``path``, which is deleted.

    The file is the student's: it is opened without following links and read only if it is a
    regular file (not a pipe that would block), at most ``MAX_RECORD_BYTES``.
    """
    try:
        handle = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        discard(path)
        return []
    try:
        raw = os.read(handle, MAX_RECORD_BYTES) if stat.S_ISREG(os.fstat(handle).st_mode) else b""
    finally:
        os.close(handle)
        discard(path)
    return [{"site": site, "value": value} for site, value in _parse_records(raw)
            if site.startswith(f"{grade_id}/") and site != completion_site(grade_id)]
