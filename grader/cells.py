"""How the grader's messages name a notebook's cells: as Jupyter shows them to the student.

A student knows a cell by its `In [n]` prompt and its first line, not by its
position among all cells (markdown included). So a student cell is named by
its code-cell number (1-based among the submission's code cells), the prompt
it gets when the notebook runs top to bottom (Jupyter skips empty cells, so
the two can differ), its first line, and, when a traceback shows it, the
failing line:

    code cell 5 (In [5], "for epoch in range(epochs):") raised RuntimeError at line 7 `loss.backward()`: ...

The grader's own cells (preamble, parameters, probe) are named as such. The
runner keeps its own cells out of the kernel's history, so the executed
notebook and IPython's tracebacks ("Cell In[5], line 7") show the student's
cells under the same prompts as the messages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import nbformat

GRADER_CELL = "grader"  # metadata key marking the cells the grader added
SKIP_TAG = "skip-execution"  # nbclient's default: a cell so tagged is not run
FIRST_LINE_CHARS = 60
CODE_LINE_CHARS = 80
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _clip(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def first_line(source: str) -> str:
    """The line a student recognises a cell by: its first line of code (a comment only when it has none)."""
    lines = [line.strip() for line in source.splitlines() if line.strip()]
    code = [line for line in lines if not line.startswith("#")]
    return _clip((code or lines or [""])[0], FIRST_LINE_CHARS)


def runs(cell: nbformat.NotebookNode) -> bool:
    """Whether a top-to-bottom run executes the cell (nbclient and Jupyter skip empty code cells)."""
    return (cell.get("cell_type") == "code" and bool(cell.get("source", "").strip())
            and SKIP_TAG not in cell.get("metadata", {}).get("tags", []))


@dataclass(frozen=True)
class CellRef:
    """A cell of the instrumented notebook as the student's messages name it."""

    role: str | None  # the grader's own cell ("preamble", "parameters", "probe"), or None
    student_index: int | None  # index among the submission's own cells (markdown included), for a student cell
    number: int | None = None  # code-cell number, 1-based among the submission's code cells
    prompt: int | None = None  # its In [n] when the notebook runs top to bottom; None if it never runs
    first: str = ""  # its first line (first_line)
    line: int | None = None  # the failing line (1-based in the cell), from the traceback
    code: str = ""  # that line's code

    @property
    def label(self) -> str:
        """The cell, without the failing line: `code cell 5 (In [5], "for epoch in range(epochs):")`."""
        if self.role:
            return f"the grader's {self.role} cell"
        if self.student_index is None:
            return "the kernel"
        if self.number is None:  # not a code cell (only an index can say which)
            return f"cell {self.student_index + 1} (not a code cell)"
        said = [f"In [{self.prompt}]"] if self.prompt is not None else []
        if self.first:
            said.append(f'"{self.first}"')
        return f"code cell {self.number}" + (f" ({', '.join(said)})" if said else "")

    @property
    def at(self) -> str:
        """Where in the cell, when the traceback says: ` at line 7 `loss.backward()``, else ''."""
        if self.line is None:
            return ""
        return f" at line {self.line}" + (f" `{self.code}`" if self.code else "")


def failing_line(traceback: str, execution_count: int) -> int | None:
    """The innermost line of cell In [execution_count] in an IPython traceback ("Cell In[5], line 7"), or None."""
    found = re.findall(rf"Cell In\[{int(execution_count)}\], line (\d+)", _ANSI.sub("", traceback or ""))
    return int(found[-1]) if found else None


def student_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indices (in `nb`) of the submission's own cells, in order."""
    return [i for i, c in enumerate(nb.cells) if GRADER_CELL not in c.get("metadata", {})]


def cell_ref(nb: nbformat.NotebookNode, index: int | None) -> CellRef:
    """The cell at `index` of `nb` (grader cells included); None: the kernel itself."""
    if index is None:
        return CellRef(None, None)
    cell = nb.cells[index]
    role = cell.get("metadata", {}).get(GRADER_CELL)
    if role:
        return CellRef(role, None)
    own = [c for c in nb.cells[:index + 1] if GRADER_CELL not in c.get("metadata", {})]
    student_index = len(own) - 1
    if cell.get("cell_type") != "code":
        return CellRef(None, student_index)
    number = sum(c.get("cell_type") == "code" for c in own)
    prompt = sum(runs(c) for c in own) if runs(cell) else None
    return CellRef(None, student_index, number, prompt, first_line(cell.get("source", "")))


def student_cell(nb: nbformat.NotebookNode, student_index: int) -> CellRef:
    """The submission's own cell number `student_index` (0-based among its cells, markdown included)."""
    return cell_ref(nb, student_cells(nb)[student_index])


def with_line(ref: CellRef, source: str, line: int | None) -> CellRef:
    """`ref` naming line `line` of `source` (the cell's own text) as the failing one."""
    if line is None:
        return ref
    lines = source.splitlines()
    code = _clip(lines[line - 1], CODE_LINE_CHARS) if 0 < line <= len(lines) else ""
    return CellRef(ref.role, ref.student_index, ref.number, ref.prompt, ref.first, line, code)


__all__ = ["CellRef", "GRADER_CELL", "cell_ref", "failing_line", "first_line", "runs",
           "student_cell", "student_cells", "with_line"]
