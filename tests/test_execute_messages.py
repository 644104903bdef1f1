"""What stopped a run, in words: each failure kind is a pure function, tested without a kernel."""

from __future__ import annotations

import nbformat

from grader.cells import CellRef, cell_ref, failing_line, first_line, student_cell, with_line
from grader.config import Limits, load_config
from grader.execute import (
    instrument, killed_message, lost_message, preamble_message, raised_message, startup_message, stopped_message,
    timeout_message,
)
from grader.hints import budget_assignments, budget_message, error_hint, mistake_hint
from grader.timeouts import rubric_limits

STUDENT = CellRef(None, 5, 3, 3, "for epoch in range(epochs):")
AT_LINE = with_line(STUDENT, "for epoch in range(epochs):\n    x = 1\n    loss.backward()\n", 3)
PREAMBLE, KERNEL = CellRef("preamble", None), CellRef(None, None)
CELL = 'code cell 3 (In [3], "for epoch in range(epochs):")'


def _notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# HW8"), nbformat.v4.new_code_cell("epochs = 5"),
                nbformat.v4.new_code_cell("# part 2\n\nx = 1"), nbformat.v4.new_code_cell("   "),
                nbformat.v4.new_code_cell("# only a comment")]
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.cells[2].execution_count = 41  # as the student saved it: this run's prompts replace it
    return nb


def test_cells_are_named_as_jupyter_shows_them() -> None:
    run_nb, budget_set = instrument(_notebook(), load_config(), 7)
    assert budget_set
    roles = [c.metadata.get("grader") for c in run_nb.cells]
    assert roles == ["preamble", None, None, "parameters", None, None, None, "probe"]
    assert [cell_ref(run_nb, i).label for i in range(len(run_nb.cells))] == [
        "the grader's preamble cell", "cell 1 (not a code cell)", 'code cell 1 (In [1], "epochs = 5")',
        "the grader's parameters cell", 'code cell 2 (In [2], "x = 1")',
        "code cell 3",  # empty: Jupyter gives it no prompt, and the next cell is In [3]
        'code cell 4 (In [3], "# only a comment")', "the grader's probe cell",
    ]
    assert cell_ref(run_nb, 4) == CellRef(None, 2, 2, 2, "x = 1")
    assert student_cell(run_nb, 2) == cell_ref(run_nb, 4)
    assert cell_ref(run_nb, None).label == "the kernel"
    assert run_nb.cells[3].source == "epochs = 7\nmake_animations = False"
    assert run_nb.cells[4].execution_count is None


def test_first_line_is_the_first_line_of_code() -> None:
    assert first_line("# YOUR CODE HERE\n\n  error = slayer.loss.SpikeTime()  \n") == "error = slayer.loss.SpikeTime()"
    assert first_line("# a comment only\n# and another") == "# a comment only"
    assert first_line("") == ""
    assert first_line("x = '" + "y" * 80 + "'") == "x = '" + "y" * 52 + "..."


def test_the_failing_line_comes_from_the_traceback() -> None:
    tb = ("\x1b[0;31mZeroDivisionError\x1b[0m  Traceback (most recent call last)\n"
          "Cell \x1b[0;32mIn[2], line 6\x1b[0m\n      5 y = 2\n----> 6 f(0)\n"
          "Cell In[2], line 2, in f(x)\n----> 2 return 1/x\n"
          "Cell In[1], line 9, in g()\n")
    assert failing_line(tb, 2) == 2  # the innermost frame in that cell
    assert failing_line(tb, 3) is None
    assert failing_line("", 2) is None
    assert AT_LINE.at == " at line 3 `loss.backward()`"
    assert with_line(STUDENT, "x = 1", None) == STUDENT
    assert with_line(STUDENT, "x = 1", 7).at == " at line 7"  # past the cell's end: no code to quote


def test_raised() -> None:
    assert raised_message(AT_LINE, "ValueError", "bad  value\n here", " (hint)") == \
        f"{CELL} raised ValueError at line 3 `loss.backward()`: bad value here (hint)"
    assert raised_message(STUDENT, "KeyboardInterrupt", "  ") == f"{CELL} raised KeyboardInterrupt"
    assert raised_message(PREAMBLE, "ImportError", "no grader") == \
        "the grader's preamble cell failed: ImportError: no grader"
    assert raised_message(STUDENT, "E", "x" * 400).endswith("x [...]")


def test_a_preamble_that_cannot_import_the_kit_says_so() -> None:
    kit = (" (the kernel cannot import the kit's own code: the sandbox or the kernel's PYTHONPATH does not show "
           "the kit's grader/ and solution/ packages)")
    assert preamble_message("ModuleNotFoundError", "No module named 'grader'") == \
        "the grader's preamble cell failed: ModuleNotFoundError: No module named 'grader'" + kit
    assert preamble_message("ModuleNotFoundError", "No module named 'solution.homework'") == \
        "the grader's preamble cell failed: ModuleNotFoundError: No module named 'solution.homework'" + kit
    assert preamble_message("ModuleNotFoundError", "No module named 'torch'") == \
        "the grader's preamble cell failed: ModuleNotFoundError: No module named 'torch'"


def test_stopped_timed_out_killed_startup_and_lost() -> None:
    limits = rubric_limits(Limits(cell_timeout_s=30, total_timeout_s=60))
    assert stopped_message(STUDENT, "the working directory grew past 1024 MiB") == \
        f"{CELL} was stopped: the grader killed the kernel: the working directory grew past 1024 MiB"
    assert timeout_message(STUDENT, False, limits) == \
        f"timed out: {CELL} ran past the per-cell limit (30 s per cell, 60 s in all)"
    assert timeout_message(STUDENT, True, limits) == \
        f"timed out: {CELL} ran past the notebook's time budget (30 s per cell, 60 s in all)"
    assert killed_message(KERNEL, "signal 9 (SIGKILL)") == "the kernel killed the kernel: signal 9 (SIGKILL)"
    assert killed_message(STUDENT, "exit status 3") == f"{CELL} killed the kernel: exit status 3"
    assert startup_message("Kernel died before replying", "") == \
        "the kernel could not start: Kernel died before replying"
    assert startup_message("Kernel died", "line one | bwrap: No permissions") == \
        "the kernel could not start: Kernel died (kernel log: line one | bwrap: No permissions)"
    assert lost_message("Kernel didn't respond") == "the grader lost the kernel: Kernel didn't respond"


def test_hints_for_known_mistakes() -> None:
    limits = Limits()
    export = error_hint("TypeError", "Object dtype dtype('O') has no native HDF5 equivalent", limits, True)
    assert export == (" (slayer's export_hdf5 writes what each block learns in its first forward pass: run the "
                      "network once (train it, or call net(input)) before net.export_hdf5)")
    whole = ("Weights only load failed. This file can still be loaded, to do so you have two options, do those "
             "steps only if you trust the source of the checkpoint. (1) In PyTorch 2.6, we changed the default "
             "value of the `weights_only` argument in `torch.load` from `False` to `True`.")
    assert error_hint("UnpicklingError", whole, limits, True) == (
        " (the grader's torch loads only weights: save the weights with torch.save(net.state_dict(), path) and "
        "load them with net.load_state_dict(torch.load(path)); torch.save(net, path) of the whole network loads "
        "only in older torch, such as the course environment's)")
    assert mistake_hint("AssertionError", "Torch not compiled with CUDA enabled") == (
        "the grading machine has no GPU: pick the device with "
        "torch.device('cuda' if torch.cuda.is_available() else 'cpu')")
    assert mistake_hint("RuntimeError", "Found no NVIDIA driver on your system.") == mistake_hint(
        "AssertionError", "Torch not compiled with CUDA enabled")
    assert mistake_hint("TypeError", "unsupported operand") == ""
    assert mistake_hint("UnpicklingError", "invalid load key, 'x'.") == ""
    assert error_hint("MemoryError", "", Limits(memory_mb=512), True) == \
        " (the kernel may use at most 512 MiB of memory)"
    assert error_hint("OSError", "[Errno 30] Read-only file system", limits, True) == \
        " (outside its working directory the sandbox is read-only)"
    assert error_hint("OSError", "[Errno 30] Read-only file system", limits, False) == ""
    assert error_hint("ValueError", "bad", limits, True) == ""


def _budget_notebook(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("epochs = 2000"), *(nbformat.v4.new_code_cell(s) for s in sources)]
    nb.cells[0].metadata["tags"] = ["parameters"]
    return nb


def test_a_budget_set_after_the_parameters_cell_is_found() -> None:
    nb = _budget_notebook(
        "net = Network()",
        "epochs = 2000\nfor epoch in range(epochs):\n    pass",
        "for epoch in range(epochs):\n    if epoch % 10 == 0:\n        epochs -= 1",
        "def train(epochs=3):\n    epochs = 4\n    return epochs",  # a function's own: not the budget
        "%time x = 1\nepochs: int = 5",  # IPython magics are skipped, annotations count
        "x = (\n",  # does not parse: the text is read
        "epochs = (\n",
        "if (epochs := 7):\n    pass",
        "print(epochs == 2000)",
    )
    assert budget_assignments(nb) == [2, 3, 5, 7, 8]
    assert budget_assignments(nbformat.v4.new_notebook()) == []
    no_tag = _budget_notebook("epochs = 3")
    no_tag.cells[0].metadata["tags"] = []
    assert budget_assignments(no_tag) == []  # no parameters cell: nothing to override
    run_nb, _ = instrument(_budget_notebook("epochs = 3"), load_config(), 20)
    assert [cell_ref(run_nb, i).label for i in budget_assignments(run_nb)] == \
        ['code cell 2 (In [2], "epochs = 3")']  # the grader's own injection is not the notebook's


def test_budget_messages() -> None:
    where = ['code cell 10 (In [10], "for epoch in range(epochs):")']
    fix = "Set epochs only in the cell tagged `parameters`: the grader sets it right after that cell"
    assert budget_message(where, None, 20) == (
        'code cell 10 (In [10], "for epoch in range(epochs):") sets `epochs` after the `parameters` cell, '
        f"which overrides the grader's budget of 20 epochs. {fix}")
    assert budget_message(where, 2000, 20) == (
        "the notebook trained 2000 epochs (Trained/loss.txt), not the grader's budget of 20: "
        f'code cell 10 (In [10], "for epoch in range(epochs):") sets `epochs` after the `parameters` cell. {fix}')
    assert budget_message([], 2000, 20) == (
        f"the notebook trained 2000 epochs (Trained/loss.txt), not the grader's budget of 20. {fix}")
    assert budget_message(["code cell 4", "code cell 6"], None, 50).startswith(
        "code cell 4 and code cell 6 set `epochs` after the `parameters` cell")


def test_saved_outputs_are_cleared_before_the_run() -> None:
    """A figure saved on the student's machine (in a cell that will not run, or an empty one) is not this run's."""
    nb = _notebook()
    saved = nbformat.v4.new_output("display_data", data={"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"})
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [saved, nbformat.v4.new_output("stream", name="stdout", text="Score: 100 / 100")]
    run, _ = instrument(nb, load_config(), 3)
    assert [c.outputs for c in run.cells if c.cell_type == "code"] == [[]] * 7  # 4 student, 3 grader cells
    assert nb.cells[1].outputs[0] is saved  # the submission itself is left as it was


def test_a_broken_kernel_protocol_is_the_notebooks_fault() -> None:
    from grader.execute import protocol_message

    assert protocol_message(STUDENT, KeyError("msg_id")) == (
        f"{CELL} broke the kernel's messages: the grader could not read what the kernel sent (KeyError: 'msg_id'); "
        "a notebook must not patch json, ipykernel or its session")
