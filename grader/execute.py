"""Run one notebook headlessly with nbclient, in a fresh working directory.

The grader adds three cells of its own: a preamble (seeds, one torch thread,
the accelerator) before the first cell, the budget after the cell tagged
`parameters` (papermill's convention), and a probe at the end that records
shapes and the notebook's own output. The probe runs even when a student
cell failed, so a notebook that raises half way still shows what it built.

Whatever stops a run is said in words the student can act on: the cell as
Jupyter shows it (`grader.cells`), and which limit (timeout, memory,
processes, disk), crash (exit status, signal) or known mistake
(`grader.hints`) stopped it. What is the grading machine's fault (a kernel
that cannot start, the grader's own preamble failing) is not the student's:
it is recorded as `Execution.grader_fault`, and the submission is not
graded. The kernel is always shut down and its leftovers ended
(`sandbox.reap`), and no cell's output can grow the grader's memory past
`limits.output_max_chars`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from grader.cells import GRADER_CELL, CellRef, cell_ref, failing_line, with_line
from grader.config import Config, Limits
from grader.hints import budget_assignments, error_hint
from grader.sandbox import RUN_TOKEN, Watchdog, describe_exit, kernel_manager, mount_workdir, reap, unmount_under
from grader.timeouts import TimeLimits, rubric_limits
from solution import homework, numerics

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DATA_FILES = homework.DATA_FILES
PROBE_MODULE = "grader.probe"  # what the grader's preamble and probe import in the kernel
KIT_PACKAGES = ("grader", "solution")  # the kit's packages: a kernel that cannot import them is the machine's fault


@dataclass
class Execution:
    workdir: Path
    notebook: nbformat.NotebookNode  # as executed, grader cells included
    completed: bool  # every student cell ran without error
    error: str | None = None
    failed_cell: int | None = None  # index among the submission's own cells (markdown included)
    grader_fault: str | None = None  # the grading machine, not the notebook, stopped the run: not graded
    epochs: int | None = None  # the budget injected after the `parameters` cell
    budget_set: bool = False
    budget_overrides: list[str] = field(default_factory=list)  # cells that set the budget after the injection
    probe_ran: bool = False
    wall_s: float = 0.0
    cell_s: float = 0.0  # time inside the submission's own cells and the grader's preamble
    notes: list[str] = field(default_factory=list)
    clipped_output: dict[str, int] = field(default_factory=dict)  # student cell (its label) -> characters printed


def prepare_workdir(workdir: Path, limits: Limits | None = None) -> None:
    """A fresh folder holding pristine copies of the HW8 data and the notebook's checks, nothing else.

    With `limits`, as root, the folder is a tmpfs of the disk limit's size (`sandbox.mount_workdir`):
    `release_workdir` unmounts and deletes it.
    """
    from grader.handout import CHECK_FILES

    release_workdir(workdir)
    workdir.mkdir(parents=True)
    if limits is not None:
        mount_workdir(workdir, limits)
    for name in DATA_FILES:
        shutil.copyfile(DATA_DIR / name, workdir / name)
    for name, source in CHECK_FILES.items():  # the notebook's `import hw8_check` (never trusted)
        (workdir / name).parent.mkdir(exist_ok=True)
        shutil.copyfile(source, workdir / name)


def release_workdir(workdir: Path) -> None:
    """Unmount the working directory's tmpfs, if any, and delete the folder."""
    unmount_under(workdir)
    if workdir.exists():
        shutil.rmtree(workdir, ignore_errors=True)


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
        if cell.cell_type == "code":  # prompts and outputs are this run's: a cell that never runs shows none
            cell.execution_count = None
            cell.outputs = []  # a figure saved on the student's machine (a cell skipped, empty) is not this run's
    budget = config.budget
    preamble = _grader_cell(
        "preamble",
        f"import {PROBE_MODULE} as _grader_probe\n"
        f"_grader_probe.preamble(seed={budget.seed}, accelerate={budget.accelerate!r})",
    )
    params_at = next(
        (i for i, c in enumerate(cells)
         if c.cell_type == "code" and homework.PARAMETERS_TAG in c.metadata.get("tags", [])),
        None,
    )
    if params_at is not None:
        cells.insert(params_at + 1, _grader_cell("parameters", f"{homework.BUDGET_VARIABLE} = {int(epochs)}\nmake_animations = False"))
    probe = _grader_cell("probe", f"import {PROBE_MODULE} as _grader_probe\n_grader_probe.run(globals())")
    nb.cells = [preamble, *cells, probe]
    return nb, params_at is not None


KERNEL_ENV = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES", "HOME")


def _kernel_env() -> dict[str, str]:
    """What the kernel needs of the grader's environment, and nothing else (no tokens, no keys)."""
    env = {k: v for k, v in os.environ.items()
           if k in KERNEL_ENV or k.startswith(("LC_", "S2S_", "NUMBA_"))}
    env.update(
        OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
        # matplotlib's inline backend (ipykernel's own default; headless like Agg): a figure a
        # cell shows is kept in the executed notebook as image/png (grader/figure.py)
        MPLBACKEND="module://matplotlib_inline.backend_inline", PYTHONHASHSEED="0", PYDEVD_DISABLE_FILE_VALIDATION="1",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(numerics.environment())  # the kit's numerical mode, set before the kernel loads torch
    return env


def _student_index(nb: nbformat.NotebookNode, index: int) -> int:
    return sum(1 for c in nb.cells[:index] if GRADER_CELL not in c.metadata)


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + " [...]"


# A figure a cell shows is not "printed": images have their own allowance, a figure of up to
# IMAGE_MAX_BYTES per cell (grader/figure.py shows the last one) and IMAGES_MAX_CHARS in all.
IMAGE_MAX_BYTES = 2 * 2**20
IMAGE_MAX_CHARS = 4 * (IMAGE_MAX_BYTES // 3 + 1)  # the same as base64
IMAGES_MAX_CHARS = 8 * IMAGE_MAX_CHARS


def _is_image(mime: str) -> bool:
    return mime.startswith("image/")


def _size(value: object) -> int:
    return len(value) if isinstance(value, str) else len(json.dumps(value))


def _chars(content: dict) -> int:
    """Characters an output message prints: its text and every data payload but images."""
    n = len(content.get("text", "") or "")
    for mime, value in (content.get("data") or {}).items():
        n += 0 if _is_image(mime) else _size(value)
    return n


METADATA_MAX_CHARS = 10_000  # an output's metadata (a figure's size): larger is dropped
STORING = ("stream", "display_data", "execute_result", "update_display_data")  # kinds that keep output
JSON_MIME = re.compile(r"application/(.*\+)?json")  # nbformat's schema: any JSON there, a string elsewhere
KNOWN = (*STORING, "error", "status", "clear_output", "execute_input")  # the rest is dropped unread


def _json_size(value: object) -> int | None:
    """Characters of `value` as JSON, or None when it is not plain JSON (or nests too deep)."""
    try:
        return len(json.dumps(value))
    except (TypeError, ValueError, RecursionError):
        return None


def well_formed(msg: object) -> dict | None:
    """The IOPub message with every field nbclient reads of the right type, or None: dropped.

    A kernel can send anything on its IOPub socket (a `text` that is a number, a
    `data` that is a list, a `transient` that is a string): what nbclient would
    trip on, or store without bound, never reaches it. Widget messages (comm_*)
    are dropped too: grading needs no widget, and their state would be kept
    without limit. Mutates and returns `msg`.
    """
    if not isinstance(msg, dict) or not isinstance(msg.get("msg_type"), str):
        return None
    kind, content = msg["msg_type"], msg.get("content")
    if kind not in KNOWN or not isinstance(content, dict):
        return None
    if not isinstance(msg.get("header"), dict) or not isinstance(msg.get("parent_header"), dict):
        return None
    if kind == "status":
        return msg if isinstance(content.get("execution_state"), str) else None
    msg["header"]["msg_type"] = kind  # what nbformat's output_from_msg reads: the kind checked here
    count = content.get("execution_count")
    if "execution_count" in content or kind == "execute_result":
        content["execution_count"] = count if type(count) is int and count >= 0 else None
    transient = content.get("transient")
    if transient is not None and not (isinstance(transient, dict)
                                      and isinstance(transient.get("display_id", ""), str)):
        content.pop("transient")
    if kind == "stream":
        return msg if content.get("name") in ("stdout", "stderr") and isinstance(content.get("text"), str) else None
    if kind == "clear_output":
        content["wait"] = content.get("wait") is True
        return msg
    if kind == "error":
        content["ename"] = str(content.get("ename", ""))[:200]
        traceback = content.get("traceback")
        content["traceback"] = [str(t) for t in traceback[-20:]] if isinstance(traceback, list) else []
        content["evalue"] = str(content.get("evalue", ""))
        return msg
    if kind in ("display_data", "execute_result", "update_display_data"):
        data, metadata = content.get("data"), content.get("metadata", {})
        if not isinstance(data, dict):
            return None
        content["data"] = {mime: value for mime, value in data.items()
                           if isinstance(mime, str) and (
                               (isinstance(value, str) and not JSON_MIME.fullmatch(mime))
                               or (JSON_MIME.fullmatch(mime) and _json_size(value) is not None))}
        size = _json_size(metadata) if isinstance(metadata, dict) else None
        content["metadata"] = metadata if size is not None and size <= METADATA_MAX_CHARS else {}
    return msg


class _CappedClient(NotebookClient):
    """An nbclient that stops storing a cell's output past `max_chars`: a print loop cannot fill the grader's memory.

    Every IOPub message is type-checked first (`well_formed`): a malformed one is
    dropped, never an exception in the grader. Every kind that stores output is
    capped: a stream, a display, a result, and an update of an earlier display
    (`update_display_data`, or a display reusing a display_id), which nbclient
    would otherwise write into the earlier output uncapped.
    Errors are always kept, in short, so the executed notebook still shows why a cell failed.
    Images (a figure the cell shows) count apart: up to IMAGE_MAX_CHARS a cell and
    IMAGES_MAX_CHARS in all are kept, whatever the cell printed; past that they are not.
    """

    max_chars: int = 200_000
    _CAPPED = "_s2s_capped"  # set on a message already charged (an update of a display, capped before nbclient)

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("store_widget_state", False)
        super().__init__(*args, **kwargs)
        self.printed: dict[int, int] = {}  # cell index -> characters the cell sent (images apart)
        self.drawn: dict[int, int] = {}  # cell index -> characters of the images the cell showed
        self.images_kept = 0  # characters of images kept, all cells together

    def _images(self, content: dict, cell_index: int) -> dict:
        """The message's image payloads, taken out of it; {} past the cell's or the notebook's allowance."""
        data = content.get("data") or {}
        images = {mime: data.pop(mime) for mime in [m for m in data if _is_image(m)]}
        size = sum(map(_size, images.values()))
        if not size:
            return images
        self.drawn[cell_index] = self.drawn.get(cell_index, 0) + size
        if self.drawn[cell_index] > IMAGE_MAX_CHARS or self.images_kept + size > IMAGES_MAX_CHARS:
            return {}
        self.images_kept += size
        return images

    def process_message(self, msg, cell, cell_index):  # type: ignore[override]
        msg = well_formed(msg)
        if msg is None:
            return None
        content = msg["content"]
        display_id = (content.get("transient") or {}).get("display_id")
        if msg["msg_type"] == "update_display_data" or (display_id and msg["msg_type"] in STORING):
            # nbclient copies these into earlier outputs before (or instead of) output(): cap them first
            if not self._cap(content, cell_index):
                content["data"] = {}
            msg[self._CAPPED] = True
        return super().process_message(msg, cell, cell_index)

    def _cap(self, content: dict, cell_index: int) -> bool:
        """Charge the message to its cell and cut it to what is left; False when nothing of it is kept."""
        images = self._images(content, cell_index)
        used = self.printed.get(cell_index, 0)
        size = _chars(content)
        self.printed[cell_index] = used + size
        room = self.max_chars - used
        if size > room:
            if room <= 0 and not images:
                return False
            room = max(room, 0)
            if "text" in content:
                content["text"] = content["text"][:room]
            if "data" in content:
                content["data"] = {k: v[:room] for k, v in content["data"].items()
                                   if isinstance(v, str) and k.startswith("text/")}
        if images:
            content["data"] = {**content.get("data", {}), **images}
        return True

    def output(self, outs, msg, display_id, cell_index):  # type: ignore[override]
        if msg.pop(self._CAPPED, False):
            return super().output(outs, msg, display_id, cell_index)
        msg = well_formed(msg)  # output() is also reached without process_message (an output widget's hook)
        if msg is None:
            return None
        content = msg["content"]
        if msg.get("msg_type") == "error":
            content["evalue"] = str(content.get("evalue", ""))[:2000]
            content["traceback"] = [str(t)[:2000] for t in (content.get("traceback") or [])[-20:]]
            return super().output(outs, msg, display_id, cell_index)
        if not self._cap(content, cell_index):
            return None
        return super().output(outs, msg, display_id, cell_index)


def _clip_outputs(nb: nbformat.NotebookNode, max_chars: int, printed: dict[int, int] | None = None) -> None:
    """Keep the executed notebook readable and small, whatever a cell printed."""
    for index, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream" and len(out.get("text", "")) > max_chars:
                out["text"] = out["text"][:max_chars] + f"\n[... output clipped at {max_chars} characters]\n"
            data = out.get("data", {})
            for mime, value in list(data.items()):
                if isinstance(value, str) and len(value) > (IMAGE_MAX_CHARS if _is_image(mime) else max_chars):
                    data[mime] = value[:max_chars] if mime.startswith("text/") else ""
        sent = (printed or {}).get(index, 0)
        if sent > max_chars and cell.cell_type == "code":
            cell.outputs.append(nbformat.v4.new_output(
                "stream", name="stderr",
                text=f"\n[grader: this cell printed {sent} characters; the first {max_chars} are kept]\n",
            ))


def clipped_cells(nb: nbformat.NotebookNode, printed: dict[int, int], max_chars: int) -> dict[str, int]:
    """{student cell (grader.cells label): characters printed} for the cells whose output was clipped."""
    return {cell_ref(nb, i).label: n for i, n in sorted(printed.items())
            if n > max_chars and GRADER_CELL not in nb.cells[i].metadata}


def _log_tail(workdir: Path, lines: int = 5) -> str:
    try:
        with open(workdir / ".kernel" / "kernel.log", "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4000))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return ""
    return " | ".join(line.strip() for line in text.splitlines()[-lines:] if line.strip())


# --- what stopped a run, in words: pure functions, each testable without a kernel ---------------


def raised_message(cell: CellRef, ename: str, evalue: str, hint: str = "") -> str:
    """A cell's own exception: the cell, the failing line when known, the exception, a hint."""
    if cell.role:
        return f"{cell.label} failed: {ename}: {_short(evalue)}"
    said = f": {_short(evalue)}" if str(evalue).strip() else ""
    return f"{cell.label} raised {ename}{cell.at}{said}{hint}"


def preamble_message(ename: str, evalue: str) -> str:
    """The grader's own first cell failed: the kernel cannot grade (never the notebook's fault)."""
    message = raised_message(CellRef("preamble", None), ename, evalue)
    missing = re.match(r"No module named '([\w.]+)'", str(evalue or ""))
    if ename == "ModuleNotFoundError" and missing and missing.group(1).split(".")[0] in KIT_PACKAGES:
        message += (" (the kernel cannot import the kit's own code: the sandbox or the kernel's PYTHONPATH "
                    "does not show the kit's grader/ and solution/ packages)")
    return message


def stopped_message(cell: CellRef, reason: str) -> str:
    """The watchdog ended the kernel (disk, files, processes)."""
    return f"{cell.label} was stopped: the grader killed the kernel: {reason}"


def protocol_message(cell: CellRef, exc: BaseException) -> str:
    """The kernel sent a message the grader cannot read (a notebook that patched json or the kernel's session)."""
    return (f"{cell.label} broke the kernel's messages: the grader could not read what the kernel sent "
            f"({type(exc).__name__}: {_short(exc, 120)}); a notebook must not patch json, ipykernel or its session")


def timeout_message(cell: CellRef, past_total: bool, limits: TimeLimits) -> str:
    over = "the notebook's time budget" if past_total else "the per-cell limit"
    return f"timed out: {cell.label} ran past {over} ({limits.describe()})"


def killed_message(cell: CellRef, exit_description: str) -> str:
    """The kernel died under a cell (a signal, an exit status, a limit)."""
    return f"{cell.label} killed the kernel: {exit_description}"


def startup_message(error: str, log_tail: str) -> str:
    """The kernel never ran (e.g. a sandbox problem): the grading machine's fault."""
    return f"the kernel could not start: {_short(error)}" + (f" (kernel log: {_short(log_tail)})" if log_tail else "")


def lost_message(error: str) -> str:
    """The grader lost its kernel mid-run for a reason of its own (not a cell's exception, timeout or crash)."""
    return f"the grader lost the kernel: {_short(error)}"


# --- the runner ---------------------------------------------------------------------------------


@dataclass
class _Run:
    """One execution's moving parts."""

    nb: nbformat.NotebookNode
    client: "_CappedClient"
    km: Any
    watchdog: Watchdog
    limits: Limits
    times: TimeLimits
    sandboxed: bool
    deadline: float
    result: Execution

    def fail(self, index: int | None, message: str) -> None:
        """What stopped the run at cell `index`; in the grader's preamble, before any of the
        notebook's code ran, that is the grading machine's fault."""
        self.result.error = message
        ref = cell_ref(self.nb, index)
        self.result.failed_cell = ref.student_index
        if ref.role == "preamble":
            self.result.grader_fault = message

    def run_cell(self, cell: nbformat.NotebookNode, index: int) -> None:
        """One cell; the grader's own keep no prompt, so the student's get Jupyter's In [n] (grader.cells)."""
        if GRADER_CELL in cell.metadata:
            try:
                self.client.execute_cell(cell, index, store_history=False)
            finally:
                cell.execution_count = None
        else:
            self.client.execute_cell(cell, index)

    def timeout(self, floor: int, cap: int) -> int:
        return int(max(floor, min(cap, self.deadline - time.perf_counter())))

    def stop_reason(self) -> str | None:
        """Why the watchdog ended the kernel, checking once more first (a fork bomb's EAGAIN is a symptom)."""
        if not self.watchdog.reason and (reason := self.watchdog.check()):
            self.watchdog.stop_kernel(reason)
        return self.watchdog.reason

    def cells(self) -> bool:
        """Every cell but the probe, in order; returns whether the kernel is still there for the probe."""
        for index, cell in enumerate(self.nb.cells):
            role = cell.metadata.get(GRADER_CELL)
            if role == "probe":
                continue
            ref = cell_ref(self.nb, index)
            self.client.timeout = self.timeout(1, self.times.cell_s)
            started = time.perf_counter()
            try:
                self.run_cell(cell, index)
            except CellExecutionError as exc:
                if reason := self.stop_reason():
                    self.fail(index, stopped_message(ref, reason))
                    return False
                if role == "preamble":
                    self.fail(index, preamble_message(exc.ename, exc.evalue))
                    return False
                ref = with_line(ref, cell.source, failing_line(exc.traceback, cell.get("execution_count")))
                hint = error_hint(exc.ename, exc.evalue, self.limits, self.sandboxed)
                self.fail(index, raised_message(ref, exc.ename, exc.evalue, hint))
                return True
            except CellTimeoutError:
                past_total = time.perf_counter() >= self.deadline - 1
                self.fail(index, stopped_message(ref, self.watchdog.reason) if self.watchdog.reason
                          else timeout_message(ref, past_total, self.times))
                return False
            except DeadKernelError:
                self.dead(index)
                return False
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
                # Raised while reading the kernel's messages (jupyter_client's deserialize, nbclient):
                # every byte of them is the notebook's, so this is its fault, said as such.
                if role == "preamble":
                    raise
                self.fail(index, protocol_message(ref, exc))
                return False
            finally:
                # The preamble counts as the notebook's time: its imports (torch, slayer)
                # are the ones the notebook's first cell would otherwise pay for.
                if role != "parameters":
                    self.result.cell_s += time.perf_counter() - started
        self.result.completed = True
        return True

    def dead(self, index: int) -> None:
        status = _wait_exit(self.km)
        ref = cell_ref(self.nb, index)
        self.fail(index, stopped_message(ref, self.watchdog.reason) if self.watchdog.reason
                  else killed_message(ref, describe_exit(status, self.km.sandbox, self.limits)))

    def probe(self) -> None:
        """The grader's probe, even after a student cell failed: it shows what the notebook built."""
        index = len(self.nb.cells) - 1
        self.client.timeout = self.timeout(10, min(120, self.times.cell_s))
        try:
            self.run_cell(self.nb.cells[index], index)
            self.result.probe_ran = True
        except (CellExecutionError, CellTimeoutError, KeyError, TypeError, ValueError, AttributeError,
                IndexError) as exc:
            self.result.notes.append(f"probe failed: {_short(exc)}")
        except DeadKernelError:
            self.dead(index)


def execute(nb: nbformat.NotebookNode, workdir: Path, config: Config, epochs: int,
            times: TimeLimits | None = None) -> Execution:
    """Run `nb` in `workdir` (already prepared) under the configured limits (`times`: the budget's)."""
    limits = config.limits
    times = times or rubric_limits(limits)
    run_nb, budget_set = instrument(nb, config, epochs)
    result = Execution(workdir=workdir, notebook=run_nb, completed=False, epochs=int(epochs), budget_set=budget_set,
                       budget_overrides=[cell_ref(run_nb, i).label for i in budget_assignments(run_nb)])
    km = kernel_manager(workdir, limits)
    env = _kernel_env()
    km.run_token = env[RUN_TOKEN] = secrets.token_hex(8)  # reap ends what carries it, whatever its session
    if km.sandbox.bwrap is None and km.sandbox.uid is not None:  # its own uid: its home and temp folder are its own
        env.update(HOME=str(workdir), TMPDIR=str(workdir / ".tmp"), MPLCONFIGDIR=str(workdir / ".matplotlib"))
    client = _CappedClient(
        run_nb,
        timeout=times.cell_s,
        startup_timeout=limits.startup_timeout_s,
        kernel_name="python3",
        force_raise_errors=True,
        record_timing=True,
        allow_errors=False,
        shutdown_kernel="immediate",
        km=km,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.max_chars = limits.output_max_chars
    watchdog = Watchdog(km, workdir, limits)
    start = time.perf_counter()
    run = _Run(run_nb, client, km, watchdog, limits, times, km.sandbox.bwrap is not None,
               start + times.total_s, result)
    started = False
    try:
        with open(workdir / ".kernel" / "kernel.log", "wb") as log, client.setup_kernel(
            # cleanup_kc: we pass our own km, and nbclient only shuts down kernels it created itself.
            cwd=str(workdir), env=env, stdout=log, stderr=log, cleanup_kc=True,
        ):
            started = True
            watchdog.start()
            if run.cells():
                run.probe()
    except RuntimeError as exc:  # the kernel failed to start (e.g. the sandbox), or nbclient lost it
        log_tail = _log_tail(workdir)
        result.error = result.grader_fault = (lost_message(str(exc)) if started
                                              else startup_message(str(exc), log_tail))
    finally:
        watchdog.stop()
        reap(km)
    result.wall_s = time.perf_counter() - start
    if result.error and result.failed_cell is None and not result.completed:
        result.failed_cell = next(
            (_student_index(run_nb, i) for i, c in enumerate(run_nb.cells)
             if GRADER_CELL not in c.metadata and c.cell_type == "code" and not c.get("execution_count")),
            None,
        )
    result.clipped_output = clipped_cells(run_nb, client.printed, limits.output_max_chars)
    _clip_outputs(run_nb, limits.output_max_chars, client.printed)
    return result


def _wait_exit(km, seconds: float = 5.0) -> int | None:
    """The dead kernel's exit status (it may take a moment to be reaped)."""
    end = time.perf_counter() + seconds
    while True:
        status = km.exit_status()
        if status is not None or time.perf_counter() > end:
            return status
        time.sleep(0.05)
