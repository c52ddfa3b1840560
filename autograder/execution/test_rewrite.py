"""Tamper-proof test decisions, the execution half: test cells rewritten to record values.

The comparison is the scoring side's (:mod:`autograder.scoring.decide`, on the records that
:mod:`autograder.scoring.records` reads); this module only rewrites the instructor's test cells
inside the nbgrader process that drives the student's kernel.

nbgrader decides that a test passed when its cell raised no error in the student's own
kernel, which the student's code controls (patched assertion helpers, IPython hooks,
objects that lie in ``==``).  Here the decision is taken elsewhere:

1. Before execution (:class:`RecordChecks`, an nbgrader preprocessor running in the grader,
   outside the sandbox) every test cell is rewritten:

   * a *visible* ``assert_close(actual, expected, ...)`` becomes ``check(site, actual,
     expected, ...)``: the actual value is recorded and still asserted, so the student sees
     the usual message; a visible ``assert cond, msg`` records ``bool(cond)`` and asserts it;
   * in the *hidden* block, ``assert_close(actual, expected)`` becomes ``record(site, actual)``
     and ``assert actual == expected`` becomes ``record(site, actual)``: the expected side is
     dropped, then every statement whose result is no longer used (the reference computations)
     is removed, with the statements that only prepare them (``_ref.backward()``, method
     calls on a reference layer), so no expected value is computed in the student's kernel,
     where student code could read it from its caller's frame.  Values a hidden test needs
     for its *inputs* or its control flow stay (the same rewritten test runs on the solution,
     so both runs see the same inputs).

2. The kernel appends the recorded values as JSON lines (``dlbook.recording``) to a file
   outside the notebook's folder; JSON, never pickle, so reading it cannot run code.  The
   grader (:class:`~autograder.execution.preprocessors.BoundedExecute`) deletes that file before each
   test cell runs and takes it after: only lines written while the cell ran, for that cell's
   own sites, are kept (:func:`take_cell_records`), and only if the cell ran to the end
   without an error (the kernel's reply says ``ok``, no error output, no time-out or crash);
   those go, with a completion mark, to a file in the worker's course folder, which the
   sandbox cannot see.  What an answer cell writes into the file earns nothing, and neither
   does a test cell that raised.  (Student code that runs *while* the test cell runs can still
   write lines, but only values the student already knows: what it could return anyway.)

3. The same rewritten tests run on the instructor's solution in its own sandbox (the
   *reference run*).  A test cell passes when every value it recorded for the solution was
   recorded, in the same order, by the student, within the check's tolerances
   (:func:`decide`).  Only that decision is written to the gradebook.  The solution is
   also run once with the tests exactly as the instructor wrote them, expected values
   included (:func:`RecordChecks` leaves them alone for that run): a solution that fails one,
   hidden ones included, stops grading (``autograder.execution.worker.run_reference``), so the
   recording never takes a wrong solution's value as the right one.

A lying object can only make the recorder store numbers the student already knows;
patching anything in the kernel can only change what the student's own records say.
"""
from __future__ import annotations

import ast
import functools
from collections import Counter

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor

from autograder.assignments import HIDDEN_BEGIN, HIDDEN_END
from autograder.scoring.decide import DEFAULT_TOLERANCE, EXACT, Site

RECORDER = "__dlbook_rec__"
# Runs of the solution whose test cells are left as the instructor wrote them (see execution/worker.py).
UNREWRITTEN_RUNS = ("_reference-tests",)
ORIGINAL_SOURCES = "dlbook_test_sources"  # key in nbconvert's resources: cell index -> source as restored


def _is_assert_close(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and (
        (isinstance(node.func, ast.Name) and node.func.id == "assert_close")
        or (isinstance(node.func, ast.Attribute) and node.func.attr == "assert_close"))


def _tolerance(call: ast.Call) -> tuple[float, float]:
    rtol, atol = DEFAULT_TOLERANCE
    for keyword in call.keywords:
        if keyword.arg in ("rtol", "atol"):
            try:
                value = float(ast.literal_eval(keyword.value))
            except (ValueError, TypeError, SyntaxError):
                continue  # a computed tolerance: keep the default
            rtol, atol = (value, atol) if keyword.arg == "rtol" else (rtol, value)
    return rtol, atol


def _recorder_call(method: str, args: list[ast.expr], keywords: list[ast.keyword] | None = None) -> ast.Call:
    return ast.Call(func=ast.Attribute(value=ast.Name(RECORDER, ast.Load()), attr=method, ctx=ast.Load()),
                    args=args, keywords=keywords or [])


class _Rewriter(ast.NodeTransformer):
    def __init__(self, prefix: str, hidden: bool, sites: dict[str, Site]) -> None:
        self.prefix, self.hidden, self.sites = prefix, hidden, sites

    def _site(self, tolerance: tuple[float, float]) -> ast.Constant:
        name = f"{self.prefix}{len(self.sites)}"
        self.sites[name] = Site(*tolerance)
        return ast.Constant(name)

    def visit_Call(self, node: ast.Call) -> ast.AST:
        self.generic_visit(node)
        if not _is_assert_close(node) or not node.args:
            return node
        site = self._site(_tolerance(node))
        if self.hidden:
            return _recorder_call("record", [site, node.args[0]])
        options = [k for k in node.keywords if k.arg in ("name", "rtol", "atol")]
        return _recorder_call("check", [site, *node.args[:2]], options)

    def visit_Assert(self, node: ast.Assert) -> ast.AST:
        self.generic_visit(node)
        test = node.test
        if self.hidden:
            if isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq):
                value = test.left  # `actual == expected`: keep the actual side only
            else:
                value = ast.Call(func=ast.Name("bool", ast.Load()), args=[test], keywords=[])
            return ast.Expr(_recorder_call("record", [self._site(EXACT), value]))
        args = [self._site(EXACT), test] + ([node.msg] if node.msg is not None else [])
        return ast.Expr(_recorder_call("require", args))


def _bound_names(statement: ast.stmt) -> set[str] | None:
    """Names a removable statement binds, or None when it must stay (it may have other effects)."""
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    if isinstance(statement, (ast.FunctionDef, ast.ClassDef)):
        return {statement.name}
    if isinstance(statement, (ast.Assign, ast.AnnAssign)):
        targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
        names: set[str] = set()
        for target in targets:
            for node in ast.walk(target):
                if isinstance(node, ast.Name):
                    names.add(node.id)
                elif isinstance(node, (ast.Attribute, ast.Subscript)):
                    return None  # writes into an object: keep
        return names
    return None


def _loads(node: ast.AST) -> Counter[str]:
    return Counter(n.id for n in ast.walk(node) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load))


def _bound_in(tree: ast.AST) -> set[str]:
    """Every name the block binds itself (its reference data, among others)."""
    names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)}
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)):
            names |= _bound_names(node) or set()
    return names


def _receiver(statement: ast.stmt) -> str | None:
    """``R`` for an expression statement ``R.method(...)``."""
    if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Call):
        func = statement.value.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            return func.value.id
    return None


def _only_prepares_dropped_values(statement: ast.stmt, own: set[str], loads: Counter[str],
                                  receivers: Counter[str]) -> bool:
    """Whether a statement with effects only serves expected values that are gone.

    Such a statement works on a name the block binds itself and that nothing else reads
    (``_ref_out.backward()``, ``_ref[0] = 1``), or calls methods on an object that nothing
    but such calls use (``_layer.build(...)``, ``_layer.set_weights(...)``).  A call that
    records, or one that touches only values other statements use, stays.
    """
    if not isinstance(statement, (ast.Expr, ast.Assign, ast.AugAssign, ast.AnnAssign)):
        return False
    if not isinstance(statement, ast.Expr) and _bound_names(statement) is not None:
        return False  # binds plain names: removed once nothing reads them (see _drop_unused)
    here = _loads(statement)
    if RECORDER in here:
        return False
    receiver = _receiver(statement)
    if receiver in own and loads[receiver] == receivers[receiver]:
        return True
    return any(name in own and loads[name] == count for name, count in here.items())


def _drop_unused(tree: ast.Module) -> None:
    """Remove what only computes expected values: statements that bind names nothing reads
    any more, and statements that only prepare such values (repeat to a fixed point)."""
    own = _bound_in(tree)
    while True:
        loads = _loads(tree)
        receivers = Counter(r for node in ast.walk(tree) if isinstance(node, ast.stmt) and (r := _receiver(node)))
        changed = False
        for node in ast.walk(tree):
            for field in ("body", "orelse", "finalbody"):
                block = getattr(node, field, None)
                if not isinstance(block, list) or not block or not isinstance(block[0], ast.stmt):
                    continue
                kept = [s for s in block if not _only_prepares_dropped_values(s, own, loads, receivers)
                        and ((names := _bound_names(s)) is None or names & set(loads))]
                if len(kept) != len(block):
                    changed = True
                    block[:] = kept or [ast.Pass()]
        if not changed:
            return


def _rewrite(source: str, prefix: str, hidden: bool, sites: dict[str, Site]) -> str:
    tree = _Rewriter(prefix, hidden, sites).visit(ast.parse(source))
    if hidden:
        _drop_unused(tree)
    return ast.unparse(ast.fix_missing_locations(tree))


def rewrite_test(source: str, notebook: str, grade_id: str) -> tuple[str, dict[str, Site]]:
    """The recording version of a test cell and its sites (name -> tolerance)."""
    rewritten, sites = _rewrite_cell(source, notebook, grade_id)
    return rewritten, dict(sites)


# A worker's nbgrader process rewrites the same test cells for every submission (parsing,
# rewriting and unparsing them takes about 60 ms a notebook): once per process is enough.
@functools.lru_cache(maxsize=1024)
def _rewrite_cell(source: str, notebook: str, grade_id: str) -> tuple[str, tuple[tuple[str, Site], ...]]:
    sites: dict[str, Site] = {}
    prefix = f"{grade_id}/"
    visible, _, rest = source.partition(HIDDEN_BEGIN)
    hidden, _, after = rest.partition(HIDDEN_END)
    parts = [f"from dlbook.recording import Recorder as _DlbookRecorder\n"
             f"{RECORDER} = _DlbookRecorder({notebook!r})",
             _rewrite(visible, prefix, False, sites)]
    if hidden.strip():
        parts.append(_rewrite(hidden, prefix, True, sites))
    if after.strip():
        parts.append(_rewrite(after, prefix, False, sites))
    return "\n".join(parts), tuple(sites.items())


def _is_test_cell(cell: NotebookNode) -> bool:
    meta = cell.metadata.get("nbgrader", {})
    return cell.cell_type == "code" and bool(meta.get("grade")) and not meta.get("solution")


# What a test cell needs to be graded tamper-proof (said by `release` and in the rows).
RECORDABLE = "an `assert_close(actual, expected)` or `assert actual == expected` (or `assert condition`)"


@functools.lru_cache(maxsize=1024)
def plain_reason(source: str) -> str | None:
    """Why a test cell cannot record values (then it is graded the plain nbgrader way), or None.

    A cell records values when it holds at least one ``assert_close(...)`` or ``assert``:
    those are what the rewriting turns into recordings.  A cell that decides by raising
    itself (``try: f(0) except ValueError: pass else: raise AssertionError``) or checks with
    a helper of its own leaves nothing to record; nbgrader's rule (no error: full points)
    is then the only one there is, and it is decided in the student's own kernel.
    """
    try:
        tree = ast.parse(source.replace(HIDDEN_BEGIN, "").replace(HIDDEN_END, ""))
    except SyntaxError as err:
        return f"its code cannot be parsed ({err.msg}, line {err.lineno})"
    if any(_is_assert_close(node) and node.args for node in ast.walk(tree)) or any(
            isinstance(node, ast.Assert) for node in ast.walk(tree)):
        return None
    if any(isinstance(node, ast.Try) for node in ast.walk(tree)):
        return ("it checks with try/except and raises itself, with no assert: the recording has no value to "
                f"compare; tamper-proof grading needs {RECORDABLE}")
    return ("it has no assert or assert_close: the recording has no value to compare; "
            f"tamper-proof grading needs {RECORDABLE}")


def plain_test_cells(notebook: NotebookNode) -> dict[str, str]:
    """``{grade_id: why}`` for the test cells of a (source) notebook that record nothing (see :func:`plain_reason`)."""
    return {cell.metadata["nbgrader"]["grade_id"]: why for cell in notebook.cells
            if _is_test_cell(cell) and (why := plain_reason(cell.source)) is not None}


def notebook_sites(notebook: NotebookNode, name: str) -> dict[str, dict[str, Site]]:
    """``{grade_id: sites}`` for every test cell of a (source) notebook that records values."""
    return {(grade_id := cell.metadata["nbgrader"]["grade_id"]): rewrite_test(cell.source, name, grade_id)[1]
            for cell in notebook.cells if _is_test_cell(cell) and plain_reason(cell.source) is None}


class RecordChecks(NbGraderPreprocessor):
    """Rewrite the (already restored) test cells so that they record instead of decide.

    Not for the runs named in ``UNREWRITTEN_RUNS``: there the solution meets the tests as the
    instructor wrote them, expected values included.
    """

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        if resources.get("nbgrader", {}).get("student") in UNREWRITTEN_RUNS:
            return nb, resources
        name = resources["unique_key"]
        originals = resources.setdefault(ORIGINAL_SOURCES, {})
        for index, cell in enumerate(nb.cells):
            if _is_test_cell(cell) and plain_reason(cell.source) is None:  # others run as written
                originals[index] = cell.source
                cell.source, _ = rewrite_test(cell.source, name, cell.metadata["nbgrader"]["grade_id"])
        return nb, resources


class UndoRecordChecks(NbGraderPreprocessor):
    """After execution, give the test cells the instructor's source back (what formgrader shows)."""

    def preprocess(self, nb: NotebookNode, resources: ResourcesDict) -> tuple[NotebookNode, ResourcesDict]:
        for index, source in resources.pop(ORIGINAL_SOURCES, {}).items():
            nb.cells[index].source = source
        return nb, resources


__all__ = ["HIDDEN_BEGIN", "HIDDEN_END", "RECORDABLE", "RecordChecks",
           "UndoRecordChecks", "notebook_sites", "plain_reason", "plain_test_cells",
           "rewrite_test"]
