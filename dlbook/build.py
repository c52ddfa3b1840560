"""Build the book: execute every page once per framework, merge, then run Jupyter Book.

Usage (what ``make book`` runs)::

    python -m dlbook.build [--profile quick|full] [-- extra jupyter-book flags]

1. Each page of ``_toc.yml`` that is a MyST notebook is split into one notebook per
   framework (:mod:`dlbook.notebooks`); each is executed in its own kernel and cached by
   code, framework and profile (:mod:`dlbook.execute`).
2. The runs are merged into one notebook per page (:mod:`dlbook.merge`) and written with the
   rest of the book into a staging folder, ``_build/src``, that Jupyter Book renders without
   executing anything.  Pages that did not change are not rewritten, so Sphinx re-reads only
   what changed.
3. The downloadable notebooks (the executed per-framework notebooks with plain Markdown, and
   the assignments) go to ``_notebooks/`` of the site.

A page whose execution fails is removed from the staging folder and the build exits non-zero;
as failures are never cached, every later build fails too until the page is fixed.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import yaml

from dlbook import glue
from dlbook.execute import Execution, ExecutionCache, ExecutionFailed, cache_key, executed
from dlbook.merge import framework_markdown, merge, visible_outputs
from dlbook.notebooks import (FRAMEWORKS, INSTALL_CELL, ORIGIN_KEY, for_framework, is_notebook_page,
                              output_name, page_frameworks, read_page)
from dlbook.plain_markdown import SiteLinks, labels_of, to_plain_markdown
from dlbook.profile import PROFILES, nvidia_gpu_visible, profile as active_profile

STAGING = Path("_build/src")
CACHE = Path("_build/.dlbook-cache")
EXTRA = "_extra"              # html_extra_path of the staged book: copied to the site's root
NOTEBOOK_DIR = "_notebooks"   # where downloads live on the site
MANIFEST = "_dlbook_pages.json"
MARKER = ".dlbook-staged"
CELL_TIMEOUT_S = 1800


def toc_files(entries: dict | list) -> list[str]:
    """Every ``file`` in a ``_toc.yml`` structure (parts, chapters, sections), in reading order."""
    found: list[str] = []
    for entry in entries if isinstance(entries, list) else [entries]:
        if "file" in entry:
            found.append(entry["file"])
        for key in ("parts", "chapters", "sections"):
            found += toc_files(entry.get(key, []))
    return found


@dataclass
class Book:
    root: Path
    config: dict
    docnames: list[str]

    @classmethod
    def load(cls, root: Path) -> "Book":
        config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
        toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
        return cls(root, config, [toc["root"]] + toc_files(toc))

    def source(self, docname: str) -> Path:
        for suffix in (".md", ".ipynb"):
            if (self.root / f"{docname}{suffix}").is_file():
                return self.root / f"{docname}{suffix}"
        raise FileNotFoundError(f"_toc.yml names {docname}, but there is no {docname}.md or .ipynb")

    @property
    def site_url(self) -> str:
        return self.config.get("sphinx", {}).get("config", {}).get("html_baseurl", "").rstrip("/")

    @property
    def requirement(self) -> str:
        return self.config.get("sphinx", {}).get("config", {}).get("dlbook_notebook_requirement", "")


@dataclass
class PageResult:
    docname: str
    downloads: dict[str, str] = field(default_factory=dict)   # framework or "assignment" -> site path
    timings: dict[str, tuple[float, bool]] = field(default_factory=dict)
    error: str | None = None


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def _write_notebook(path: Path, notebook: nbformat.NotebookNode) -> None:
    _write_if_changed(path, nbformat.writes(notebook) + "\n")


def download_notebook(run_notebook: nbformat.NotebookNode, framework: str | None, links: SiteLinks,
                      requirement: str) -> nbformat.NotebookNode:
    """An executed run as a reader downloads it: plain Markdown, glue filled in, no build metadata."""
    values = glue.collect(run_notebook)
    where = f"{FRAMEWORKS[framework]} notebook" if framework else "notebook"
    out = nbformat.from_dict(json.loads(json.dumps(run_notebook)))
    out.metadata.pop("dlbook_execution", None)
    for cell in out.cells:
        cell.metadata.pop(ORIGIN_KEY, None)
        if cell.cell_type == "markdown":
            cell.source = to_plain_markdown(framework_markdown(cell.source, values, where), links)
        elif cell.cell_type == "code":
            cell.outputs = visible_outputs(cell)
    if requirement:
        out.cells.insert(0, nbformat.v4.new_code_cell(INSTALL_CELL.format(requirement=requirement)))
    for index, cell in enumerate(out.cells):
        cell["id"] = f"cell-{index}"
    return out


@dataclass
class Unit:
    """One framework's notebook of one page: the build's unit of execution."""
    docname: str
    framework: str | None
    notebook: nbformat.NotebookNode
    workdir: Path

    @property
    def key(self) -> tuple[str, str]:
        return self.docname, self.framework or "all"

    @property
    def label(self) -> str:
        return f"{self.docname} ({FRAMEWORKS.get(self.framework, 'all cells')})"


def _run_unit(unit: Unit, cache_folder: Path, profile: str, root: Path) -> tuple[Execution | None, str | None, float]:
    """Execute one unit (in a worker process); return (run, error, seconds)."""
    start = time.perf_counter()
    try:
        run = executed(unit.notebook, ExecutionCache(cache_folder), page_id=unit.docname,
                       framework=unit.key[1], profile=profile, workdir=unit.workdir,
                       timeout=CELL_TIMEOUT_S, root=root, label=unit.label)
    except ExecutionFailed as exc:
        return None, str(exc), time.perf_counter() - start
    return run, None, time.perf_counter() - start


def default_jobs() -> int:
    """Kernels run at once: one per two CPU cores' worth of work, one on a GPU machine.

    Small networks do not use many cores well; on a 2-core machine two kernels with one
    thread each finish sooner than one kernel with two threads that wait on each other.
    """
    if nvidia_gpu_visible():
        return 1
    return max(1, min(2, os.cpu_count() or 1))


def limit_threads(jobs: int) -> None:
    """Share the cores between the kernels (unless the caller has set thread counts)."""
    threads = str(max(1, (os.cpu_count() or 1) // jobs))
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TF_NUM_INTRAOP_THREADS"):
        os.environ.setdefault(name, threads)
    os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1" if jobs > 1 else threads)


def run_units(units: list[Unit], cache: ExecutionCache, profile: str, root: Path,
              jobs: int) -> dict[tuple[str, str], tuple[Execution | None, str | None]]:
    """Every unit's execution (from the cache, or run ``jobs`` at a time), in toc order."""
    results: dict[tuple[str, str], tuple[Execution | None, str | None]] = {}
    pending = []
    for unit in units:
        hit = cache.get(unit.docname, unit.key[1], profile, cache_key(unit.notebook, unit.key[1], profile))
        if hit is not None:
            results[unit.key] = (hit, None)
            print(f"  {unit.label}: cached", flush=True)
        else:
            pending.append(unit)
    if not pending:
        return results
    limit_threads(jobs)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(_run_unit, unit, cache.folder, profile, root): unit for unit in pending}
        for future in as_completed(futures):
            unit = futures[future]
            run, error, seconds = future.result()
            results[unit.key] = (run, error)
            status = f"FAILED after {seconds:.0f} s" if error else f"executed in {seconds:.0f} s"
            print(f"  {unit.label}: {status}", flush=True)
    return results


def page_units(book: Book, docname: str) -> list[Unit]:
    source = book.source(docname)
    if not is_notebook_page(source) or docname.startswith("notebooks/"):
        return []
    page = read_page(source)
    return [Unit(docname, fw, for_framework(page, fw), source.parent)
            for fw in page_frameworks(page) or [None]]


def build_page(book: Book, docname: str, runs_by_key: dict, staging: Path, labels: dict) -> PageResult:
    result = PageResult(docname)
    source = book.source(docname)
    target_dir = (staging / docname).parent
    site_dir = Path(NOTEBOOK_DIR) / Path(docname).parent
    if not is_notebook_page(source) or docname.startswith("notebooks/"):
        shutil.copyfile(source, staging / f"{docname}{source.suffix}")
        if source.suffix == ".ipynb":   # an assignment, as students receive it
            download = site_dir / source.name
            shutil.copyfile(source, staging / EXTRA / download)
            result.downloads["assignment"] = download.as_posix()
        return result
    try:
        return _merge_page(book, docname, runs_by_key, staging, labels, result)
    except glue.GlueError as exc:
        (target_dir / f"{Path(docname).name}.ipynb").unlink(missing_ok=True)
        result.error = f"{docname}: {exc}"
        return result


def _merge_page(book: Book, docname: str, runs_by_key: dict, staging: Path, labels: dict,
                result: PageResult) -> PageResult:
    source = book.source(docname)
    target_dir = (staging / docname).parent
    site_dir = Path(NOTEBOOK_DIR) / Path(docname).parent
    page = read_page(source)
    links = SiteLinks(book.site_url, docname, labels)
    runs = {}
    for framework in page_frameworks(page) or [None]:
        run, error = runs_by_key[(docname, framework or "all")]
        if error:
            (target_dir / f"{Path(docname).name}.ipynb").unlink(missing_ok=True)
            result.error = error
            return result
        result.timings[framework or "all"] = (run.seconds, run.cached)
        runs[framework] = run
        name = output_name(source, framework)
        _write_notebook(staging / EXTRA / site_dir / name,
                        download_notebook(run.notebook, framework, links, book.requirement))
        result.downloads[framework or "all"] = (site_dir / name).as_posix()
    _write_notebook(target_dir / f"{Path(docname).name}.ipynb", merge(page, runs))
    return result


def staged_config(book: Book) -> dict:
    """The book's configuration for rendering already-executed pages, fully offline."""
    config = json.loads(json.dumps(book.config))
    config.setdefault("execute", {})["execute_notebooks"] = "off"
    sphinx = config.setdefault("sphinx", {}).setdefault("config", {})
    sphinx["html_extra_path"] = [EXTRA]
    sphinx["nb_ipywidgets_js"] = {}           # no require.js or widget manager from a CDN
    sphinx["mathjax_path"] = "mathjax/tex-chtml.js"   # served from the site (dlbook.sphinxext)
    return config


def stage(book: Book, staging: Path, profile: str, jobs: int | None = None) -> list[PageResult]:
    staging.mkdir(parents=True, exist_ok=True)
    (staging / MARKER).write_text("staged by python -m dlbook.build\n")
    _write_if_changed(staging / "_config.yml", yaml.safe_dump(staged_config(book), sort_keys=False))
    shutil.copyfile(book.root / "_toc.yml", staging / "_toc.yml")
    labels: dict = {}
    for docname in book.docnames:
        source = book.source(docname)
        if source.suffix == ".md":
            labels.update(labels_of(source.read_text(encoding="utf-8"), docname))
        (staging / EXTRA / NOTEBOOK_DIR / docname).parent.mkdir(parents=True, exist_ok=True)
        (staging / docname).parent.mkdir(parents=True, exist_ok=True)
    cache = ExecutionCache(book.root / CACHE)
    units = [unit for docname in book.docnames for unit in page_units(book, docname)]
    runs = run_units(units, cache, profile, book.root, jobs or default_jobs())
    results = []
    for docname in book.docnames:
        result = build_page(book, docname, runs, staging, labels)
        if result.error:
            print(f"FAILED {result.error}", file=sys.stderr, flush=True)
        results.append(result)
    manifest = {r.docname: r.downloads for r in results if r.downloads}
    _write_if_changed(staging / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=PROFILES, help="default: dlbook.profile()'s rule")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--stage-only", action="store_true", help="execute and stage, do not render")
    parser.add_argument("--jobs", type=int, help="kernels at once (default: 2 on a CPU machine, 1 with a GPU)")
    parser.add_argument("jupyter_book_args", nargs="*", help="passed to jupyter-book build")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    profile = args.profile or active_profile()
    print(f"Building the book in the {profile} profile", flush=True)
    book = Book.load(root)
    staging = root / STAGING
    results = stage(book, staging, profile, args.jobs)
    failed = [r for r in results if r.error]
    if failed:
        print(f"{len(failed)} page(s) failed: " + ", ".join(r.docname for r in failed), file=sys.stderr)
        return 1
    if args.stage_only:
        return 0
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    command = [str(jupyter_book), "build", str(staging), "--builder", "html",
               "--path-output", str(root), *args.jupyter_book_args]
    return subprocess.call(command, cwd=root)


if __name__ == "__main__":
    sys.exit(main())
