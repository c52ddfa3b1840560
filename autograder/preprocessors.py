"""nbgrader preprocessors of the course's grading pipeline."""
from __future__ import annotations

import json
from typing import Any

import nbformat
from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Integer

ERROR_TEXT_LIMIT = 2_000  # characters kept of an error message or traceback line


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
    """nbgrader's ``Execute``, keeping at most ``output_limit`` bytes of output per cell.

    A kernel can print megabytes on a single line, or for the whole cell time limit; the
    grader must not hold all of it in memory and write it into the autograded notebook and
    the feedback.  Past the limit, one note replaces the rest of the cell's output.  Errors
    are kept (shortened), so a failed cell still shows what failed.
    """

    output_limit = Integer(2_000_000, help="bytes of output kept per cell").tag(config=True)

    def preprocess_cell(self, cell: NotebookNode, resources: ResourcesDict, cell_index: int
                        ) -> tuple[NotebookNode, ResourcesDict]:
        self._bytes_used, self._truncated = 0, False
        return super().preprocess_cell(cell, resources, cell_index)

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
