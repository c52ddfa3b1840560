"""Execute one framework's notebook of a page in its own kernel, with a cache.

The cache key covers everything that can change the outputs: the notebook's code, the
framework, the profile, the source of the ``dlbook`` helpers and the installed versions of
the numerical packages.  So a page executed in the quick profile is never shown in a full
build (or the other way round), and a failed execution is never cached: the next build runs
the page again and fails again until it is fixed.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat


REPORT_CELL = "import json as _j, dlbook.runtime as _r; print(_j.dumps(_r.run_report()))"
VERSIONED = ("numpy", "scipy", "matplotlib", "torch", "tensorflow", "tensorflow-cpu", "keras")
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
PACKAGE_DIR = Path(__file__).resolve().parent
# dlbook modules that build the book but that no page imports: they cannot change an output.
BUILD_TOOLING = {"build", "execute", "merge", "glue", "plain_markdown", "sphinxext", "notebooks"}


class ExecutionFailed(RuntimeError):
    """A cell raised (or timed out); the message names the page, framework and cell."""


@dataclass
class Execution:
    notebook: nbformat.NotebookNode
    report: dict[str, str]        # profile, device, versions (dlbook.runtime.run_report)
    seconds: float
    cached: bool


def _installed_versions() -> str:
    found = []
    for name in VERSIONED:
        try:
            found.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return ";".join(found)


def cache_key(notebook: nbformat.NotebookNode, framework: str, profile: str) -> str:
    digest = hashlib.sha256()
    for part in (framework, profile, _installed_versions()):
        digest.update(part.encode() + b"\0")
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode() + b"\0")
    for module in sorted(PACKAGE_DIR.rglob("*.py")):
        if module.stem not in BUILD_TOOLING:
            digest.update(module.read_bytes())
    return digest.hexdigest()


def _clean_stream(text: str) -> str:
    """What a terminal would show: text before a carriage return on the same line is gone."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def scrub_paths(text: str, replacements: dict[str, str]) -> str:
    for private, public in replacements.items():
        text = text.replace(private, public)
    return text


def clean_outputs(notebook: nbformat.NotebookNode, replacements: dict[str, str]) -> None:
    """Make executed outputs fit for a static page: no stderr noise, widgets or build paths."""
    notebook.metadata.pop("widgets", None)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        cell.metadata.pop("execution", None)
        kept = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                if output.name == "stderr":
                    continue   # framework start-up banners and warnings; errors fail the build
                output.text = scrub_paths(_clean_stream(output.text), replacements)
                if not output.text.strip():
                    continue
            elif output.output_type in ("display_data", "execute_result"):
                if WIDGET_MIME in output.data:
                    continue   # its text/plain is a stale snapshot (e.g. a progress bar at 0 %)
                if "text/plain" in output.data:
                    output.data["text/plain"] = scrub_paths(output.data["text/plain"], replacements)
            kept.append(output)
        cell.outputs = kept


def private_paths(root: Path) -> dict[str, str]:
    """Paths of the build machine that must not appear on a page, and what replaces them."""
    paths = {str(root.resolve()): "<course>"}
    home = os.path.expanduser("~")
    if home not in ("/", "~"):
        paths[home] = "~"
    return paths


def _error_summary(exc: Exception) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))
    return text[-3000:]


def execute(notebook: nbformat.NotebookNode, *, workdir: Path, framework: str, profile: str,
            timeout: int, root: Path, label: str, kernel_log: Path | None = None) -> Execution:
    """Execute ``notebook`` in a fresh kernel in ``workdir``; raise :class:`ExecutionFailed`.

    The kernel process's own stderr (C++ library logs, not cell output) goes to ``kernel_log``.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    run = nbformat.from_dict(json.loads(json.dumps(notebook)))
    run.cells.append(nbformat.v4.new_code_cell(REPORT_CELL))
    environment = {"DLBOOK_PROFILE": profile, "DLBOOK_PROGRESS": "text", "PYTHONHASHSEED": "0"}
    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)   # the kernel inherits the build's environment
    start = time.perf_counter()
    if kernel_log is not None:
        kernel_log.parent.mkdir(parents=True, exist_ok=True)
    log = open(kernel_log, "w") if kernel_log is not None else None   # noqa: SIM115
    try:
        NotebookClient(run, timeout=timeout, kernel_name="python3", record_timing=False,
                       resources={"metadata": {"path": str(workdir)}}).execute(
            **({"stdout": log, "stderr": log} if log else {}))
    except (CellExecutionError, CellTimeoutError) as exc:
        raise ExecutionFailed(f"{label}: a cell failed in the {profile} profile\n"
                              f"{_error_summary(exc)}") from None
    except DeadKernelError as exc:
        raise ExecutionFailed(f"{label}: the kernel died in the {profile} profile ({exc}); "
                              f"its log: {kernel_log}") from None
    finally:
        if log is not None:
            log.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    seconds = time.perf_counter() - start
    report_cell = run.cells.pop()
    lines = [o.text for o in report_cell.outputs if o.output_type == "stream" and o.name == "stdout"]
    report = json.loads("".join(lines).strip().splitlines()[-1])
    clean_outputs(run, private_paths(root))
    return Execution(run, report, seconds, cached=False)


class ExecutionCache:
    """Executed notebooks under ``folder``, one entry per page, framework and profile."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, page_id: str, framework: str, profile: str) -> Path:
        return self.folder / page_id / f"{framework}-{profile}.ipynb"

    def get(self, page_id: str, framework: str, profile: str, key: str) -> Execution | None:
        path = self._path(page_id, framework, profile)
        if not path.is_file():
            return None
        stored = nbformat.read(path, as_version=4)
        info = stored.metadata.get("dlbook_execution", {})
        if info.get("key") != key:
            return None
        return Execution(stored, info["report"], info["seconds"], cached=True)

    def put(self, page_id: str, framework: str, profile: str, key: str, result: Execution) -> None:
        path = self._path(page_id, framework, profile)
        path.parent.mkdir(parents=True, exist_ok=True)
        stored = nbformat.from_dict(json.loads(json.dumps(result.notebook)))
        stored.metadata["dlbook_execution"] = {"key": key, "report": result.report,
                                               "seconds": round(result.seconds, 1)}
        tmp = path.with_suffix(".tmp")
        nbformat.write(stored, tmp)
        tmp.replace(path)

    def forget(self, page_id: str, framework: str, profile: str) -> None:
        self._path(page_id, framework, profile).unlink(missing_ok=True)


def executed(notebook: nbformat.NotebookNode, cache: ExecutionCache, *, page_id: str,
             framework: str, profile: str, **run_options) -> Execution:
    """The executed notebook from the cache, or executed now (and cached when it succeeds)."""
    key = cache_key(notebook, framework, profile)
    hit = cache.get(page_id, framework, profile, key)
    if hit is not None:
        return hit
    cache.forget(page_id, framework, profile)
    log = cache.folder / page_id / f"{framework}-{profile}.kernel.log"
    result = execute(notebook, framework=framework, profile=profile, kernel_log=log, **run_options)
    cache.put(page_id, framework, profile, key, result)
    return result


__all__ = ["Execution", "ExecutionCache", "ExecutionFailed", "executed"]
