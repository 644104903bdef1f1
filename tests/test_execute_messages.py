"""What stopped a run, in words: each failure kind is a pure function, tested without a kernel."""

from __future__ import annotations

import nbformat

from grader.config import Limits
from grader.execute import (
    CellRef, cell_ref, instrument, killed_message, raised_message, startup_message, stopped_message,
    timeout_message,
)
from grader.config import load_config
from grader.timeouts import rubric_limits

STUDENT, PREAMBLE, KERNEL = CellRef(None, 3), CellRef("preamble", None), CellRef(None, None)


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# HW8"), nbformat.v4.new_code_cell("epochs = 5"),
                nbformat.v4.new_code_cell("x = 1")]
    nb.cells[1].metadata["tags"] = ["parameters"]
    return nb


def test_cells_are_named_among_the_submission_s_own_cells() -> None:
    run_nb, budget_set = instrument(_notebook(), load_config(), 7)
    assert budget_set
    roles = [c.metadata.get("grader") for c in run_nb.cells]
    assert roles == ["preamble", None, None, "parameters", None, "probe"]
    assert [cell_ref(run_nb, i).label for i in range(len(run_nb.cells))] == [
        "the grader's preamble cell", "cell 0", "cell 1", "the grader's parameters cell", "cell 2",
        "the grader's probe cell",
    ]
    assert cell_ref(run_nb, 4) == CellRef(None, 2)
    assert cell_ref(run_nb, None).label == "the kernel"
    assert run_nb.cells[3].source == "epochs = 7\nmake_animations = False"


def test_raised() -> None:
    assert raised_message(STUDENT, "ValueError", "bad  value\n here", " (hint)") == \
        "cell 3 raised ValueError: bad value here (hint)"
    assert raised_message(STUDENT, "KeyboardInterrupt", "  ") == "cell 3 raised KeyboardInterrupt"
    assert raised_message(PREAMBLE, "ImportError", "no grader") == \
        "the grader's preamble cell failed: ImportError: no grader"
    assert raised_message(STUDENT, "E", "x" * 400).endswith("x [...]")


def test_stopped_timed_out_killed_and_startup() -> None:
    limits = rubric_limits(Limits(cell_timeout_s=30, total_timeout_s=60))
    assert stopped_message(STUDENT, "the working directory grew past 1024 MiB") == \
        "cell 3 was stopped: the grader killed the kernel: the working directory grew past 1024 MiB"
    assert timeout_message(STUDENT, False, limits) == \
        "timed out: cell 3 ran past the per-cell limit (30 s per cell, 60 s in all)"
    assert timeout_message(STUDENT, True, limits) == \
        "timed out: cell 3 ran past the notebook's time budget (30 s per cell, 60 s in all)"
    assert killed_message(KERNEL, "signal 9 (SIGKILL)") == "the kernel killed the kernel: signal 9 (SIGKILL)"
    assert killed_message(STUDENT, "exit status 3") == "cell 3 killed the kernel: exit status 3"
    assert startup_message("Kernel died before replying", "") == \
        "the kernel could not run: Kernel died before replying"
    assert startup_message("Kernel died", "line one | bwrap: No permissions") == \
        "the kernel could not run: Kernel died (kernel log: line one | bwrap: No permissions)"
