"""Find each student's notebook in a submissions folder and check it can be graded.

Accepted layouts (one sub-folder per student id):

- ``SUBMISSIONS/<student>/<notebook>.ipynb``
- ``SUBMISSIONS/<student>/<assignment>/<notebook>.ipynb``
- ``SUBMISSIONS/submitted/<student>/<assignment>/<notebook>.ipynb`` (nbgrader's own)

Student files are untrusted and often broken: every problem becomes a message for that
student's row, never an exception that stops the batch.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat.corpus.words import generate_corpus_id

from autograder.assignments import track_signatures

STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@+-]{0,99}$")
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


@dataclass
class Submission:
    student_id: str
    files: dict[str, Path] = field(default_factory=dict)  # expected notebook name -> file
    notes: list[str] = field(default_factory=list)  # harmless fixes we made (e.g. a rename)
    problem: str | None = None  # why it cannot be graded at all
    timestamp: str | None = None  # nbgrader's timestamp.txt next to the notebook (when it was submitted)


MAX_TIMESTAMP_BYTES = 1000


def read_timestamp(folder: Path, submission: Submission) -> None:
    """Take nbgrader's ``timestamp.txt`` from a submission folder, if it holds a date nbgrader reads.

    nbgrader's ``submit`` writes it and ``autograde`` reads it (``2015-02-02 15:58:23.948203
    America/Los_Angeles``); with the assignment's due date it decides how late a submission is.
    """
    from nbgrader.utils import parse_utc

    path = folder / "timestamp.txt"
    if not path.is_file() or path.is_symlink():
        return
    try:
        text = path.read_bytes()[:MAX_TIMESTAMP_BYTES].decode("utf-8").strip()
        if text:
            parse_utc(text)
            submission.timestamp = text
            return
        submission.notes.append("timestamp.txt is empty: ignored")
    except (OSError, UnicodeDecodeError, ValueError, TypeError, OverflowError):
        submission.notes.append("timestamp.txt holds no date nbgrader reads: ignored")


def _student_folders(base: Path) -> list[Path]:
    nested = base / "submitted"
    if nested.is_dir():
        base = nested
    return sorted(p for p in base.iterdir() if not p.name.startswith("."))


def _pick_notebooks(folder: Path, expected: list[str], submission: Submission) -> None:
    # Symbolic links could point at files outside the submission: never follow them.
    found = sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.is_symlink())
    by_name = {p.name: p for p in found}
    for name in expected:
        if name in by_name:
            submission.files[name] = by_name[name]
        elif len(expected) == 1 and len(found) == 1:
            submission.files[name] = found[0]
            submission.notes.append(f"graded {found[0].name} as {name}")
        elif not found:
            submission.problem = f"no notebook found (expected {name})"
        elif len(expected) > 1 and any(other in by_name for other in expected):
            # As nbgrader: the notebooks that are there are graded; the missing one scores 0.
            submission.notes.append(f"{name} not submitted: its parts score 0")
        else:
            submission.problem = (f"{len(found)} notebooks ({', '.join(sorted(by_name))}) "
                                  f"and none is named {name}")


def check_notebook(path: Path) -> str | None:
    """Why ``path`` cannot be graded, or None when it is a readable notebook."""
    try:
        size = path.stat().st_size
    except OSError as err:
        return f"cannot read {path.name}: {err.strerror}"
    if size == 0:
        return f"{path.name} is empty (0 bytes)"
    if size > MAX_NOTEBOOK_BYTES:
        return f"{path.name} is {size / 2**20:.0f} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit"
    try:
        raw = json.loads(path.read_bytes())
    except UnicodeDecodeError:
        return f"{path.name} is not a text file (is it a notebook?)"
    except json.JSONDecodeError as err:
        return f"{path.name} is not a valid notebook file (JSON error at line {err.lineno}: {err.msg})"
    if not isinstance(raw, dict) or "cells" not in raw:
        return f"{path.name} is JSON but not a Jupyter notebook (no 'cells')"
    try:
        notebook = nbformat.reads(json.dumps(raw), as_version=4)
        nbformat.validate(notebook)
    except Exception as err:  # noqa: BLE001 - nbformat raises many types for bad files
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"{path.name} is not a valid notebook: {first[:200]}"
    return None


def _pick_track(folder: Path, tracks: dict[str, Path], submission: Submission) -> None:
    """Match a folder to exactly one track notebook (by name, else by its locked cells)."""
    found = sorted(p for p in folder.glob("*.ipynb") if p.is_file() and not p.is_symlink())
    named = [p for p in found if p.name in {t.name for t in tracks.values()}]
    if len(named) > 1:
        submission.problem = (f"notebooks of several tracks ({', '.join(p.name for p in named)}): "
                              "submit the one track you worked on")
        return
    if named:
        submission.files[named[0].name] = named[0]
    elif len(found) == 1 and check_notebook(found[0]) is None:
        # A renamed file: recognise the track by the locked cells only one track has.
        signatures = {name: track_signatures(path) for name, path in tracks.items()}
        common = set.intersection(*signatures.values())
        theirs = {c.source for c in nbformat.read(found[0], 4).cells}
        matches = [name for name, sig in signatures.items() if (sig - common) & theirs]
        if len(matches) != 1:
            submission.problem = (f"{found[0].name}: cannot tell which track it is; name it "
                                  f"{' or '.join(p.name for p in tracks.values())}")
            return
        name = tracks[matches[0]].name
        submission.files[name] = found[0]
        submission.notes.append(f"graded {found[0].name} as {name}")
    else:
        expected = " or ".join(p.name for p in tracks.values())
        submission.problem = (f"no notebook found (expected {expected})" if not found else
                              f"{len(found)} notebooks and none is named {expected}")
    for name in submission.files:
        submission.notes.append(f"track {next(t for t, p in tracks.items() if p.name == name)}")


def discover(submissions_dir: Path, assignment: str, expected: list[str],
             tracks: dict[str, Path] | None = None) -> list[Submission]:
    """One :class:`Submission` per student folder, each checked and matched to ``expected``.

    With ``tracks`` (alternative notebooks), each student must submit exactly one of them.
    """
    result = []
    for entry in _student_folders(submissions_dir):
        if not entry.is_dir():
            continue
        submission = Submission(student_id=entry.name)
        if not STUDENT_ID.match(entry.name):
            submission.student_id = re.sub(r"[^A-Za-z0-9_.@+-]", "_", entry.name)[:100] or "_"
            submission.problem = f"folder name {entry.name!r} is not a valid student id"
            result.append(submission)
            continue
        folder = entry / assignment if (entry / assignment).is_dir() else entry
        if tracks:
            _pick_track(folder, tracks, submission)
        else:
            _pick_notebooks(folder, expected, submission)
        for path in submission.files.values():
            submission.problem = submission.problem or check_notebook(path)
        read_timestamp(folder, submission)
        result.append(submission)
    return result


def _without_bookkeeping(meta: dict) -> dict:
    # nbgrader adds and recomputes these itself; their absence (a notebook made from the
    # instructor's source, as in tests) is not an edit.
    return {key: value for key, value in meta.items() if key not in ("checksum", "cell_type")}


def restore_grading_metadata(content: bytes, source: nbformat.NotebookNode) -> tuple[bytes, list[str], list[str]]:
    """Undo edits to the nbgrader metadata of a (checked) student notebook.

    Returns the notebook, what was undone, and the grade ids of the locked cells put back.

    nbgrader restores the source and points of a test cell from its gradebook, but a cell
    whose ``solution``/``locked`` flags were changed makes its checksum check fail and the
    whole notebook ungradable, so one edited flag would cost every part.  Here every cell
    that carries a grade id of the assignment gets the instructor's metadata back (and, for
    locked cells, the instructor's cell type); a second cell with the same id, or a cell with
    an id the assignment does not have, becomes a plain cell.  The student's code is kept.

    A locked cell of the release (a test cell, a read-only setup cell) that the notebook no
    longer has — deleted, or pasted into a new cell without its metadata — is put back where
    the release has it: right after the nearest cell before it in the release that the
    notebook still has (the answer cell a test belongs to).  nbgrader then restores its source
    and runs it, so a student who deleted a test loses nothing the code earns.
    """
    notebook = nbformat.reads(content.decode("utf-8"), as_version=4)
    originals = {c.metadata["nbgrader"]["grade_id"]: c for c in source.cells
                 if c.metadata.get("nbgrader", {}).get("grade_id")}
    seen: set[str] = set()
    undone: list[str] = []
    for index, cell in enumerate(notebook.cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if not isinstance(meta, dict):
            continue
        grade_id = meta.get("grade_id")
        original = originals.get(grade_id) if isinstance(grade_id, str) and grade_id not in seen else None
        if original is None:
            del cell.metadata["nbgrader"]
            undone.append(f"cell {index + 1}: nbgrader metadata removed (unknown or repeated id)")
            continue
        seen.add(grade_id)
        wanted = original.metadata["nbgrader"]
        retype = wanted.get("locked") and cell.cell_type != original.cell_type
        if _without_bookkeeping(meta) != _without_bookkeeping(wanted) or retype:
            undone.append(f"{grade_id}: metadata restored")
        if retype:
            make = nbformat.v4.new_code_cell if original.cell_type == "code" else nbformat.v4.new_markdown_cell
            cell = notebook.cells[index] = make(cell.source, metadata=cell.metadata)
        cell.metadata["nbgrader"] = dict(wanted)
    restored = _put_back_missing_locked_cells(notebook, source, seen)
    return nbformat.writes(notebook).encode("utf-8"), undone, restored


def _put_back_missing_locked_cells(notebook: nbformat.NotebookNode, source: nbformat.NotebookNode,
                                   present: set[str]) -> list[str]:
    """Insert the release's locked cells missing from ``notebook``; return their grade ids."""
    restored: list[str] = []
    anchor: str | None = None  # the grade id of the latest released cell the notebook has
    for original in source.cells:
        grade_id = original.metadata.get("nbgrader", {}).get("grade_id")
        if not grade_id:
            continue
        if grade_id not in present and original.metadata["nbgrader"].get("locked"):
            position = 0
            if anchor is not None:
                position = next(i for i, c in enumerate(notebook.cells)
                                if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == anchor) + 1
            copy = nbformat.from_dict(original)
            if copy.cell_type == "code":
                copy.outputs, copy.execution_count = [], None
            copy.pop("id", None)
            if notebook.get("nbformat_minor", 0) >= 5:  # the format gives every cell an id
                copy["id"] = generate_corpus_id()
            notebook.cells.insert(position, copy)
            present.add(grade_id)
            if original.cell_type == "code":
                restored.append(grade_id)
        if grade_id in present:
            anchor = grade_id
    return restored
