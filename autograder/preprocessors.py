"""nbgrader preprocessors of the course's grading pipeline."""
from __future__ import annotations

from nbconvert.exporters.exporter import ResourcesDict
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor


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
