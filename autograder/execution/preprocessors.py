"""nbgrader preprocessors of the course's grading pipeline."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

import nbformat
from jupyter_core.utils import ensure_async, run_sync
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from nbgrader.utils import is_grade, is_solution
from traitlets import Float, Integer, Unicode

from autograder.scoring.records import completion_site, discard, records_path, take_cell_records
from dlbook.recording import RECORDS_DIR_ENV

ERROR_TEXT_LIMIT = 2_000  # characters kept of an error message or traceback line
# nbgrader's log line that tells the grader (not the student) a kernel was restarted.
RESTART_MARKER = "dlbook-grader: kernel restarted:"
# ... and that a cell was interrupted at the time limit, and the kernel went on.
INTERRUPT_MARKER = "dlbook-grader: cell interrupted:"


class StderrIsNotFailure(NbGraderPreprocessor):
    """Keep stderr output without letting it fail a test cell.

    nbgrader gives a test cell zero points when the cell wrote anything to stderr,
    so a correct answer that triggers a library warning would lose its marks.  Only
    an error (an exception) should fail a cell; stderr text is kept, relabelled as
    stdout with a marker, so the autograded notebook still shows it.
    """

    def preprocess_cell(
        self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
    ) -> tuple[NotebookNode, ResourcesDict]:
        if cell.cell_type == "code":
            for output in cell.outputs:
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
                    output["text"] = "[stderr] " + output.get("text", "")
        return cell, resources


class BoundedExecute(Execute):
    """nbgrader's ``Execute`` with bounded output, and a kernel restart instead of a lost notebook.

    Output: a kernel can print megabytes on a single line, or for the whole cell time limit;
    past ``output_limit`` bytes one note replaces the rest of the cell's output.  Errors are
    kept (shortened), so a failed cell still shows what failed.

    Restarts: a cell that overruns the time limit is interrupted, as in nbgrader (the sandboxed
    kernel gets an ``interrupt_request`` and sends itself SIGINT, see ``write_kernelspec``); a
    kernel that stops keeps what the cell defined before, as in Jupyter, and the log says
    "interrupted".  A kernel that does not answer within ``interrupt_grace`` seconds after that
    (SIGINT ignored, stuck in C code), or that died (``os._exit``, a segfault, the memory
    limit), is killed and started again; the code cells run so far, except test cells and the
    cells that timed out or caused a restart, run again silently to rebuild the state, and
    execution goes on with the next cell.  So one broken part costs that part, not every part
    after it.

    Records (see :mod:`autograder.execution.test_rewrite`): before a test cell runs, the kernel's
    records file is deleted; after it, the lines it wrote for that cell's sites are kept in
    ``records_dir`` (outside the sandbox) with a completion mark, but only if the cell ran to
    the end without an error.
    """

    output_limit = Integer(2_000_000, help="bytes of output kept per cell").tag(config=True)
    interrupt_grace = Float(5.0, help="seconds a kernel gets to stop after an interrupt").tag(config=True)
    max_restarts = Integer(3, help="kernel restarts per notebook before it stops").tag(config=True)
    records_dir = Unicode("", help="folder (out of the kernel's reach) for the values test cells "
                                   "recorded while they ran to the end").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: Any = None, km: Any = None) -> tuple[NotebookNode, Any]:
        self._replayable: list[int] = []  # cells to run again after a restart
        self._restarts = 0
        self._notebook = (resources or {}).get("unique_key", "")
        return super().preprocess(nb, resources, km)

    def on_cell_executed(self, **kwargs: Any) -> Any:
        reply = kwargs.get("execute_reply") or {}
        self._reply_status = reply.get("content", {}).get("status")
        return super().on_cell_executed(**kwargs)

    def _kernel_records(self) -> Path:
        """The file the kernel's recorder appends to (``dlbook.recording.Recorder``)."""
        return records_path(Path(os.environ.get(RECORDS_DIR_ENV, ".")), self._notebook)

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
                        ) -> tuple[NotebookNode, ResourcesDict]:
        self._bytes_used, self._truncated, self._timed_out = 0, False, False
        self._reply_status = None
        test = cell.cell_type == "code" and is_grade(cell) and not is_solution(cell)
        if test:
            discard(self._kernel_records())  # what was written before this cell ran does not count
        try:
            cell, resources = super().preprocess_cell(cell, resources, cell_index)
        except DeadKernelError:
            self._keep_records(cell, completed=False)
            self._restart(cell, cell_index, "the kernel died (a crash, os._exit or the memory limit)")
            return cell, self.resources
        except CellTimeoutError:  # interrupted, and no end of its output came either
            self._timed_out = True
            cell.outputs.append(nbformat.v4.new_output(
                "error", ename="CellTimeoutError", evalue=f"no result within {self.timeout} s",
                traceback=[f"CellTimeoutError: this cell ran past the {self.timeout} s limit"]))
        if test:
            errors = any(output.get("output_type") == "error" for output in cell.outputs)
            self._keep_records(cell, completed=not self._timed_out and self._reply_status == "ok" and not errors)
        where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"number {cell_index + 1}"
        if self._timed_out:
            if not run_sync(self._async_kernel_answers)():
                self._restart(cell, cell_index, f"a cell ran past the {self.timeout} s limit and ignored the interrupt")
            else:
                self.log.warning("%s cell %s interrupted at the %s s limit", INTERRUPT_MARKER, where, self.timeout)
        elif cell.cell_type == "code" and not test:
            self._replayable.append(cell_index)
        return cell, resources

    def _keep_records(self, cell: NotebookNode, completed: bool) -> None:
        """Move what a test cell recorded out of the kernel's reach; keep it only if the cell completed."""
        grade_id = cell.metadata["nbgrader"]["grade_id"]
        entries = take_cell_records(self._kernel_records(), grade_id)
        if not self.records_dir or not completed:
            return
        entries.append({"site": completion_site(grade_id), "value": {"text": "completed"}})
        folder = Path(self.records_dir)
        folder.mkdir(parents=True, exist_ok=True)
        with records_path(folder, self._notebook).open("a", encoding="utf-8") as handle:
            handle.write("".join(json.dumps(entry) + "\n" for entry in entries))

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None) -> None | dict[str, Any]:
        self._timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    async def _async_kernel_answers(self) -> bool:
        """Whether the kernel answers a request within the grace period (it is not stuck)."""
        assert self.kc is not None
        msg_id = self.kc.kernel_info()
        deadline = monotonic() + self.interrupt_grace
        while (left := deadline - monotonic()) > 0:
            try:
                reply = await ensure_async(self.kc.shell_channel.get_msg(timeout=left))
            except Empty:
                return False
            if reply["parent_header"].get("msg_id") == msg_id:
                return True
        return False

    def _restart(self, cell: NotebookNode, cell_index: int, why: str) -> None:
        self._restarts += 1
        if self._restarts > self.max_restarts:
            raise DeadKernelError(f"{why}; no restarts left ({self.max_restarts} used)")
        where = cell.metadata.get("nbgrader", {}).get("grade_id") or f"number {cell_index + 1}"
        self.log.warning("%s %s (in cell %s)", RESTART_MARKER, why, where)
        cell.outputs.append(nbformat.v4.new_output(
            "error", ename="KernelRestarted", evalue=why,
            traceback=[f"KernelRestarted: {why}; the grader restarted the kernel, ran the earlier "
                       "cells again and went on with the next cell"]))
        run_sync(self._async_restart)()

    async def _async_restart(self) -> None:
        assert self.km is not None and self.kc is not None
        self.kc.stop_channels()
        await ensure_async(self.km.restart_kernel(now=True))
        await self.async_start_new_kernel_client()
        for index in self._replayable:
            self._timed_out = False
            scratch = copy.deepcopy(self.nb.cells[index])  # outputs of the replay are thrown away
            await self.async_execute_cell(scratch, index, store_history=False)
            if self._timed_out:
                raise DeadKernelError("a cell timed out again while the grader replayed it after a restart")

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        content = msg.get("content", {})
        if msg.get("msg_type") == "error":
            content["evalue"] = str(content.get("evalue", ""))[:ERROR_TEXT_LIMIT]
            content["traceback"] = [str(line)[:ERROR_TEXT_LIMIT] for line in content.get("traceback", [])[-50:]]
        size = len(json.dumps(content, default=str))
        if self._bytes_used + size > self.output_limit and msg.get("msg_type") != "error":
            if not self._truncated:
                self._truncated = True
                outs.append(nbformat.v4.new_output(
                    "stream", name="stdout",
                    text=f"[grader: output truncated, more than {self.output_limit:,} bytes in this cell]\n"))
            return None
        self._bytes_used += size
        return super().output(outs, msg, display_id, cell_index)
