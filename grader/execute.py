"""Run one notebook headlessly with nbclient, in a fresh working directory.

The grader adds three cells of its own: a preamble (seeds, one torch thread,
the accelerator) before the first cell, the budget after the cell tagged
`parameters` (papermill's convention), and a probe at the end that records
shapes and the notebook's own output. The probe runs even when a student
cell failed, so a notebook that raises half way still shows what it built.
"""

from __future__ import annotations

import copy
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from grader.config import Config
from grader.sandbox import kernel_manager

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DATA_FILES = ("input_hw.bs1", "output_hw.bs1")
GRADER_CELL = "grader"  # metadata key marking the cells the grader added


@dataclass
class Execution:
    workdir: Path
    notebook: nbformat.NotebookNode  # as executed, grader cells included
    completed: bool  # every student cell ran without error
    error: str | None = None
    failed_cell: int | None = None  # index among the submission's own cells
    budget_set: bool = False
    probe_ran: bool = False
    wall_s: float = 0.0
    cell_s: float = 0.0  # time inside the submission's own cells
    notes: list[str] = field(default_factory=list)


def prepare_workdir(workdir: Path) -> None:
    """A fresh folder holding pristine copies of the HW8 data, nothing else."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    for name in DATA_FILES:
        shutil.copyfile(DATA_DIR / name, workdir / name)


def _grader_cell(role: str, source: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source)
    cell.metadata[GRADER_CELL] = role
    cell.metadata["tags"] = ["injected-parameters"] if role == "parameters" else []
    return cell


def instrument(nb: nbformat.NotebookNode, config: Config, epochs: int) -> tuple[nbformat.NotebookNode, bool]:
    """The notebook the kernel runs; returns it and whether the budget could be injected."""
    nb = copy.deepcopy(nb)
    cells = list(nb.cells)
    for cell in cells:  # a student's own grader-looking metadata must not confuse us
        cell.metadata.pop(GRADER_CELL, None)
    budget = config.budget
    preamble = _grader_cell(
        "preamble",
        "import grader.probe as _grader_probe\n"
        f"_grader_probe.preamble(seed={budget.seed}, accelerate={budget.accelerate!r})",
    )
    params_at = next(
        (i for i, c in enumerate(cells) if c.cell_type == "code" and "parameters" in c.metadata.get("tags", [])),
        None,
    )
    if params_at is not None:
        cells.insert(params_at + 1, _grader_cell("parameters", f"epochs = {int(epochs)}\nmake_animations = False"))
    probe = _grader_cell("probe", "import grader.probe as _grader_probe\n_grader_probe.run(globals())")
    nb.cells = [preamble, *cells, probe]
    return nb, params_at is not None


def _kernel_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JPY_", "JUPYTER_"))}
    env.update(
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
        MPLBACKEND="Agg", PYTHONHASHSEED="0", PYDEVD_DISABLE_FILE_VALIDATION="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def _student_index(nb: nbformat.NotebookNode, index: int) -> int:
    return sum(1 for c in nb.cells[:index] if GRADER_CELL not in c.metadata)


def _clip_outputs(nb: nbformat.NotebookNode, max_chars: int) -> None:
    """Keep the executed notebook readable and small, whatever a cell printed."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and len(out.get("text", "")) > max_chars:
                out["text"] = out["text"][:max_chars] + f"\n[... output clipped at {max_chars} characters]\n"
            data = out.get("data", {})
            for mime, value in list(data.items()):
                if isinstance(value, str) and len(value) > max_chars:
                    data[mime] = value[:max_chars] if mime.startswith("text/") else ""


def execute(nb: nbformat.NotebookNode, workdir: Path, config: Config, epochs: int) -> Execution:
    """Run `nb` in `workdir` (already prepared) under the configured limits."""
    limits = config.limits
    run_nb, budget_set = instrument(nb, config, epochs)
    result = Execution(workdir=workdir, notebook=run_nb, completed=False, budget_set=budget_set)
    client = NotebookClient(
        run_nb,
        timeout=limits.cell_timeout_s,
        startup_timeout=limits.startup_timeout_s,
        kernel_name="python3",
        force_raise_errors=True,
        record_timing=True,
        allow_errors=False,
        km=kernel_manager(workdir, limits),
        resources={"metadata": {"path": str(workdir)}},
    )
    start = time.perf_counter()
    deadline = start + limits.total_timeout_s
    try:
        log = open(workdir / ".kernel" / "kernel.log", "wb")
        with log, client.setup_kernel(cwd=str(workdir), env=_kernel_env(), stdout=log, stderr=log):
            for index, cell in enumerate(run_nb.cells):
                role = cell.metadata.get(GRADER_CELL)
                if role == "probe":
                    continue
                remaining = deadline - time.perf_counter()
                client.timeout = int(max(1, min(limits.cell_timeout_s, remaining)))
                cell_start = time.perf_counter()
                try:
                    client.execute_cell(cell, index)
                except CellExecutionError as exc:
                    if role:
                        result.error = f"the grader's {role} cell failed: {exc.ename}: {exc.evalue}"
                    else:
                        result.failed_cell = _student_index(run_nb, index)
                        result.error = f"cell {result.failed_cell} raised {exc.ename}: {exc.evalue}"
                    break
                finally:
                    if not role:
                        result.cell_s += time.perf_counter() - cell_start
            else:
                result.completed = True
            client.timeout = 120
            try:
                client.execute_cell(run_nb.cells[-1], len(run_nb.cells) - 1)
                result.probe_ran = True
            except (CellExecutionError, CellTimeoutError) as exc:
                result.notes.append(f"probe failed: {exc}")
    except CellTimeoutError:
        which = "the notebook's time budget" if time.perf_counter() >= deadline - 1 else "the per-cell limit"
        result.error = (
            f"timed out: a cell ran past {which} "
            f"({limits.cell_timeout_s} s per cell, {limits.total_timeout_s} s in all)"
        )
    except DeadKernelError as exc:
        result.error = f"the kernel died (crash, os._exit, or a resource limit): {str(exc)[:200]}"
    except RuntimeError as exc:  # kernel failed to start, e.g. a sandbox problem
        result.error = f"the kernel could not run: {str(exc)[:300]}"
    result.wall_s = time.perf_counter() - start
    if result.error and result.failed_cell is None and not result.completed:
        result.failed_cell = next(
            (_student_index(run_nb, i) for i, c in enumerate(run_nb.cells)
             if GRADER_CELL not in c.metadata and c.cell_type == "code" and not c.get("execution_count")),
            None,
        )
    _clip_outputs(run_nb, limits.output_max_chars)
    return result
