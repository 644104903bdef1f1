"""`python -m grader check` (`nox -s check`): a student's own notebook, graded at a small budget, said quietly.

The notebook is graded exactly as an instructor grades it (the kit's batch code, one
worker; without bubblewrap if the laptop has none: it is the student's own code), into
a stable folder of its own (`hw8-check/<id>/` where the command runs, `check_id` naming the
notebook; or `--out`), so the feedback page is always there afterwards and checking another
notebook does not overwrite it. What the grader's own processes print (torch's CUDA
notice, lava-dl's Prophesee notice, warnings) goes to `OUT/_grader.log`, not to the
terminal; the student's own errors are not in that noise anyway: the kernel's output
goes to the executed notebook, and what stopped it to the execution check's message,
which the terminal shows with every other check.

Exit status: GRADED (0) whatever the score, USAGE (2) for a wrong command line (no such
notebook), NOT_GRADED (3) when the grading machine could not grade it.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Iterator

from grader.batch import LOG, output_to  # OUT/_grader.log: the grading workers write theirs there too
from grader.config import Config
from grader.results import TERMINAL_WIDTH
from grader.messages import duration  # one wording for the terminal and the notebook's clock
from solution import homework

GRADED, USAGE, NOT_GRADED = 0, 2, 3
EXIT_STATUSES = (f"exit status: {GRADED} graded (whatever the score), {USAGE} wrong command line (e.g. no such "
                 f"notebook), {NOT_GRADED} not graded (the grading machine could not grade it)")
DEFAULT_OUT = Path("hw8-check")
HANDOUT_STEM = Path(homework.NOTEBOOK).stem  # 'train': every student's notebook has this name
STOCK_RECORD = Path(__file__).resolve().parent / "student_timing.json"  # stock slayer in the notebook, its own clock


@contextlib.contextmanager
def quiet(log: Path) -> Iterator[None]:
    """Everything written to this process's stdout and stderr, and its children's, goes to `log`, then back.

    At the file-descriptor level (grader.batch.output_to, as the grading workers do), so that
    what native code, imported libraries and the worker processes print is caught too.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    saved = os.dup(1), os.dup(2)
    try:
        output_to(log)
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def check_id(notebook: Path) -> str:
    """The folder name of a notebook's check: its stem, or, for the handout's name that every student's
    notebook shares (train.ipynb), its folder's name before it (`assignment-train`, `hw8-p2-train`)."""
    path = Path(notebook).resolve()
    stem = path.stem if path.suffix else path.name
    if stem == HANDOUT_STEM and path.parent.name:
        stem = f"{path.parent.name}-{stem}"
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in stem).lstrip("._") or "notebook"


def default_out(notebook: Path) -> Path:
    """hw8-check/<check_id>/: one folder per notebook checked."""
    return DEFAULT_OUT / check_id(notebook)


def course_time(epochs: int, seconds_per_epoch: float, stock_seconds_per_epoch: float | None = None) -> str:
    """How long the course budget takes: the reference's measured speed, and stock lava-dl's when known."""
    line = (f"time: the course grades at {epochs} epochs, which the reference solution trains in about "
            f"{duration(epochs * seconds_per_epoch)} on the grading machine ({seconds_per_epoch:.3g} s per epoch "
            "with the grader's compiled kernels)")
    if stock_seconds_per_epoch:
        line += (f"; in your own Jupyter, lava-dl's stock kernels run: {stock_seconds_per_epoch:.3g} s per epoch on the "
                 f"kit's machine (one torch thread, the notebook's own clock), about "
                 f"{duration(epochs * stock_seconds_per_epoch)} for {epochs} epochs; the notebook prints your "
                 "machine's own figure after its first epochs")
    return line


def stock_seconds_per_epoch(record: Path = STOCK_RECORD) -> float | None:
    """Stock slayer's seconds per epoch, as the notebook's own clock measured it for the bundle; None if unknown."""
    try:
        value = json.loads(record.read_text())["s_per_epoch"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, (int, float)) and value > 0 else None


def _speed(config: Config, epochs: int) -> float | None:
    """Seconds per epoch of the reference on this kit: the course budget's calibration, else the check's."""
    from grader import calibration

    for budget in (config.budget.epochs, epochs):
        cal = calibration.load(budget, config.budget.seed)
        if cal is not None and cal.seconds_per_epoch > 0:
            return cal.seconds_per_epoch
    return None


def run_check(notebook: Path, out: Path | None, config: Config, epochs: int) -> int:
    """Grade `notebook` at `epochs` into `out` (None: `default_out`), print the checks, the score, the time and
    the page; exit status."""
    if not notebook.exists():
        print(f"error: no such notebook: {notebook}", file=sys.stderr)
        return USAGE
    out = Path(out if out is not None else default_out(notebook)).resolve()
    log = out / LOG
    log.unlink(missing_ok=True)
    print(f"checking {notebook} at {epochs} epochs (the course grades at {config.budget.epochs}); "
          f"the grader's own messages go to {log}", flush=True)
    failure = None
    with quiet(log):
        from grader import batch
        from grader.report import collect

        try:  # a student's own notebook on their own machine (which may have no bubblewrap)
            summary = batch.grade_batch([notebook], out, config, epochs, workers=1, progress=False, regrade=True,
                                        unsandboxed=True)
        except Exception as exc:  # the grading could not even start (a folder in use, a broken install)
            failure = f"{type(exc).__name__}: {exc}"
            with open(log, "a") as f:
                f.write(traceback.format_exc())
        else:
            with open(log, "a") as f:  # the grader's own story, for whoever fixes the machine
                f.writelines(f"grader error on {sid}:\n{error}\n" for sid, error in summary.errors.items())
            results = [r for r in collect(out) if r.submission_id in summary.graded]
            speed = _speed(config, epochs) if results and not results[0].is_grader_error else None
    if failure is not None:
        print(f"not graded (the grading could not start): {failure}")
        print(f"details: {log}")
        return NOT_GRADED
    if not results:
        print(f"not graded (grading machine error): no result was written; details: {log}")
        return NOT_GRADED
    (result,) = results
    print("\n".join(result.summary_lines()))
    page = out / result.submission_id / "feedback.html"
    if result.is_grader_error:
        print(f"details: {log} and {page}")
        return NOT_GRADED
    print(f"score at {epochs} epochs: {result.score:g} / {result.max_score:g}")
    if speed is not None:
        print("\n".join(textwrap.wrap(course_time(config.budget.epochs, speed, stock_seconds_per_epoch()),
                                     TERMINAL_WIDTH, subsequent_indent="      ", break_long_words=False)))
    print(f"feedback: {page}")
    return GRADED
