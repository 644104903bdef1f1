"""Known mistakes, recognised from what a run shows, each with the fix in a few words.

Pure functions of plain values: which limit of the sandbox an exception comes
from (`error_hint`), the mistakes students make with slayer and torch
(`mistake_hint`), and a notebook that sets the epoch budget itself, past the
grader's injection (`budget_assignments`, `budget_message`).
"""

from __future__ import annotations

import ast
import re
from dataclasses import asdict

import nbformat

from grader import messages
from grader.cells import GRADER_CELL
from grader.config import Limits
from solution import homework

# errno (as `[Errno N]` in a message) -> what the sandbox did; filled in with the limits.
ERRNO_HINTS = {
    27: "each file the notebook writes is limited to {file_size_mb} MiB",
    30: "outside its working directory the sandbox is read-only",
    13: "the sandbox lets a notebook write only in its working directory",
    1: "the notebook runs as an unprivileged user",
    28: "the working directory may hold at most {disk_mb} MiB",
    11: "the sandbox allows {processes} processes and threads",
    101: "the sandbox has no network",
    111: "the sandbox has no network",
    -2: "the sandbox has no network",
    -3: "the sandbox has no network",
}

# The notebook's own checks (hw8_check) print these too: one text, in grader/messages.py.
EXPORT_BEFORE_FORWARD, WHOLE_MODEL_SAVED = messages.EXPORT_BEFORE_FORWARD, messages.WHOLE_MODEL_SAVED
NO_GPU = (
    "the grading machine has no GPU: pick the device with "
    "torch.device('cuda' if torch.cuda.is_available() else 'cpu')"
)


def limit_hint(ename: str, evalue: str, limits: Limits, sandboxed: bool) -> str:
    """Which of the sandbox's limits an exception comes from, in a few words, or ''."""
    if ename == "MemoryError":
        return f"the kernel may use at most {limits.memory_mb} MiB of memory"
    match = re.search(r"\[Errno (-?\d+)\]", evalue or "")
    if not match:
        return ""
    errno_ = int(match.group(1))
    if errno_ in (101, 111, -2, -3, 13, 1, 30) and not sandboxed:
        return ""  # without bubblewrap these are the machine's own answers
    if errno_ == 11 and ename != "BlockingIOError":
        return ""
    hint = ERRNO_HINTS.get(errno_)
    return hint.format(**asdict(limits)) if hint else ""


def mistake_hint(ename: str, evalue: str) -> str:
    """The fix for a known mistake this exception shows, or ''."""
    evalue = evalue or ""
    if ename == "TypeError" and "has no native HDF5 equivalent" in evalue:
        return EXPORT_BEFORE_FORWARD
    if ename == "UnpicklingError" and ("Weights only load failed" in evalue or "weights_only" in evalue):
        return WHOLE_MODEL_SAVED
    if ("Found no NVIDIA driver" in evalue or "Torch not compiled with CUDA enabled" in evalue
            or ename == "RuntimeError" and "CUDA driver" in evalue):
        return NO_GPU
    return ""


def error_hint(ename: str, evalue: str, limits: Limits, sandboxed: bool) -> str:
    """What the student can do about a cell's exception, as ` (…)` after its message, or ''."""
    hints = [h for h in (limit_hint(ename, evalue, limits, sandboxed), mistake_hint(ename, evalue)) if h]
    return f" ({'; '.join(hints)})" if hints else ""


# --- the budget, set past the grader's injection ------------------------------------------------


def _assigns(tree: ast.AST, name: str) -> bool:
    """Whether module-level code of `tree` (not a function or class body) assigns `name`."""
    stack = list(ast.iter_child_nodes(tree))
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)):
            continue
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = list(node.targets)
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and getattr(node, "value", None) is not None:
            targets = [node.target]
        elif isinstance(node, ast.NamedExpr):
            targets = [node.target]
        for target in targets:
            if any(isinstance(n, ast.Name) and n.id == name for n in ast.walk(target)):
                return True
        stack.extend(ast.iter_child_nodes(node))
    return False


def _source_assigns(source: str, name: str) -> bool:
    # IPython lines (%magic, !shell) are not Python: left out before parsing
    python = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())
    try:
        return _assigns(ast.parse(python), name)
    except SyntaxError:  # a cell that does not parse: the plain text says it
        return re.search(rf"(?m)^\s*{re.escape(name)}\s*(?:[-+*/%]|//|\*\*)?=(?!=)", python) is not None


def budget_assignments(nb: nbformat.NotebookNode, parameters_tag: str = homework.PARAMETERS_TAG,
                       name: str = homework.BUDGET_VARIABLE) -> list[int]:
    """Indices (in `nb`) of the submission's code cells after the `parameters` cell that assign the budget.

    The grader sets the budget right after that cell; an assignment later in the
    notebook (the handout's `epochs = 2000` beside the training loop) undoes it.
    The grader's own cells (an instrumented notebook's) are not the notebook's.
    """
    cells = nb.cells
    at = next((i for i, c in enumerate(cells)
               if c.get("cell_type") == "code" and parameters_tag in c.get("metadata", {}).get("tags", [])), None)
    if at is None:
        return []
    return [i for i in range(at + 1, len(cells))
            if cells[i].get("cell_type") == "code" and GRADER_CELL not in cells[i].get("metadata", {})
            and _source_assigns(cells[i].get("source", ""), name)]


def budget_message(where: list[str], trained: int | None, budget: int,
                   name: str = homework.BUDGET_VARIABLE) -> str:
    """The budget was set in the notebook past the grader's injection: what it did, where, and the fix.

    `where`: labels of the cells that assign it after the `parameters` cell; `trained`: the epochs
    Trained/loss.txt records, when that is more than `budget` (None otherwise).
    """
    sets = f"{' and '.join(where)} set{'s' if len(where) == 1 else ''} `{name}` after the `parameters` cell"
    if trained is not None:
        said = f"the notebook trained {trained} epochs ({homework.LOSS_LOG}), not the grader's budget of {budget}"
        said += f": {sets}" if where else ""
    else:
        said = f"{sets}, which overrides the grader's budget of {budget} epochs"
    return f"{said}. Set {name} only in the cell tagged `parameters`: the grader sets it right after that cell"


# A run counts as far longer than the budget's training past SLOW_FACTOR x the reference's + SLOW_MARGIN_S:
# room for a slower grading machine (Gradescope's 0.5 vCPU runs 2x slower), plots and imports.
SLOW_FACTOR = 4.0
SLOW_MARGIN_S = 120.0


def slow_run_flag(cell_s: float, reference_s: float, budget: int) -> str:
    """The instructor's note when the grader's clock says the notebook trained far past its budget."""
    return (f"ran {cell_s / reference_s:.0f}x as long as the reference's training at {budget} epochs "
            f"({cell_s:.0f} s against {reference_s:.0f} s, accelerated both): more epochs than the budget?")


def budget_flag(where: list[str], trained: int | None, budget: int) -> str:
    """The instructor's short form of budget_message."""
    said = [f"{trained} epochs trained, budget {budget}"] if trained is not None else [f"budget {budget}"]
    said += [f"set in {' and '.join(where)}"] if where else []
    return f"budget overridden in the notebook ({'; '.join(said)})"


__all__ = ["ERRNO_HINTS", "EXPORT_BEFORE_FORWARD", "NO_GPU", "SLOW_FACTOR", "SLOW_MARGIN_S", "WHOLE_MODEL_SAVED",
           "budget_assignments", "budget_flag", "budget_message", "error_hint", "limit_hint", "mistake_hint",
           "slow_run_flag"]
