"""Grade many submissions: N local workers or a Dask cluster, resumable, never losing a result.

Each submission is one task. The task builds the submission's folder whole
under OUT/_tmp/<id> (results.json written last) and swaps it in as OUT/<id>
(`report.publish`), so OUT/<id> is always one complete grading or absent.
The gradebook is rebuilt from the per-submission results.json at the end.

A re-run skips every submission already graded with the same notebook hash,
configuration, budget, calibration and kit version (`regrade=True` forces);
results of grader errors are never trusted, so a re-run retries them. A
batch that was killed leaves only OUT/_tmp and OUT/_work behind, which the
next batch deletes before it starts: nothing half-written is ever trusted.

Local workers are one fresh spawned process per submission (at most
`workers` at a time): a process that dies (a crash, the OOM killer, a
notebook that kills its parent when there is no sandbox) or runs past its
time limit costs only that submission, which gets a result saying so. The
worker processes die with the batch (PR_SET_PDEATHSIG), and their kernels
with them. With `scheduler`, the same tasks go to a Dask cluster; OUT must
then be on a filesystem shared by this machine and every worker, and every
worker must run the kit's environment: both are checked before and during
the batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import os
import secrets
import shutil
import signal
import socket
import sys
import threading
import time
import warnings
import traceback
from dataclasses import dataclass
from multiprocessing import connection as mp_connection
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable, Iterator

from grader import calibration, overview, report, timeouts
from grader.timeouts import TimeLimits
from grader.config import Config
from grader.execute import release_workdir
from grader.grade import KIT_VERSION, WORK, grade_submission, preload
from grader.results import ERROR_FINGERPRINT, GradeResult, GraderFault, grader_error_result
from grader.sandbox import SandboxUnavailable, bwrap_path, unmount_under, why_no_sandbox
from grader.submission import Submission, discover
from solution import numerics

STAGE = "_tmp"  # OUT/_tmp/<id>: a submission's folder while it is built; OUT/_tmp/<WORK>/<id>: its run
LOG = "_grader.log"  # what the grading processes print (torch's CUDA notice, lava-dl's Prophesee notice); "_": no id starts so
INTAKE = "_intake"
MARKER = ".s2s-batch"  # this batch's token: a worker that cannot read it does not share OUT
LOCK = ".s2s-batch.lock"
TIMEOUT_MARGIN_S = 900  # a worker's wall-clock limit: the notebook's limits plus this (evaluation, reports)
TASKS_PER_WORKER = 50  # a local worker process is replaced after this many submissions


@dataclass(frozen=True)
class BatchContext:
    """What every task of one batch shares, wherever it runs (pickled to workers and Dask)."""

    out_dir: str  # absolute: workers elsewhere resolve it the same way
    config: Config
    epochs: int
    calibration: calibration.Calibration
    token: str | None = None  # this batch's MARKER content: a worker that cannot read it does not share OUT
    kit_version: str | None = None  # the batch's kit: a worker on another one refuses
    unsandboxed: bool = False  # run without bubblewrap where it is missing (trusted code only)
    times: TimeLimits | None = None  # the budget's time limits, measured once here, not in every worker
    regrade: bool = False  # --regrade: a grading that replaces an identical one says it was asked for

    @property
    def out(self) -> Path:
        return Path(self.out_dir)


class BatchError(RuntimeError):
    """The batch cannot start (folder in use, workers that cannot see it); the message says why."""


@dataclass
class BatchSummary:
    graded: list[str]
    skipped: list[str]
    errors: dict[str, str]
    gradebook: Path
    calibration: str = ""  # which calibration graded the batch, and why (one sentence)


def default_workers() -> int:
    """The cores this process may run on (a container's or a job's share, not the machine's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


# --- what a re-run trusts ----------------------------------------------------------------


def already_graded(sub: Submission, out_dir: Path, config: Config, epochs: int,
                   cal: calibration.Calibration | None = None) -> bool:
    """True when OUT/<id>/results.json is a grading of this very notebook under this very setup.

    Same notebook bytes, rubric/limits/budget (the config fingerprint), epoch
    budget and kit version; with `cal`, the same reference figures too. A
    grader-error result, or a file that does not parse, is never trusted.
    """
    path = Path(out_dir) / sub.id / report.RESULTS
    if not path.is_file():
        return False
    try:
        result = report.read_results(path)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    same = (
        result.submission_id == sub.id
        and result.notebook_sha256 == sub.sha256
        and result.config_fingerprint == config.fingerprint()
        and result.kit_version == KIT_VERSION
        and result.epochs == epochs
    )
    if same and cal is not None:
        reference = result.measurements.get("reference")
        same = (
            isinstance(reference, dict)
            and reference.get("loss") == cal.loss
            and result.measurements.get("silent_loss") == cal.silent_loss
        )
    return same


def previous_result(sub: Submission, out_dir: Path) -> GradeResult | None:
    """The grading that OUT/<id> holds now (a new one will replace it and say what changed), if it parses."""
    try:
        result = report.read_results(Path(out_dir) / sub.id / report.RESULTS)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if result.submission_id == sub.id else None


def _landed(sub: Submission, out_dir: Path, error: bool) -> bool:
    """Whether OUT/<id>/results.json holds this notebook's result (an error result when `error`)."""
    try:
        result = report.read_results(out_dir / sub.id / report.RESULTS)
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return result.notebook_sha256 == sub.sha256 and result.is_grader_error == error


# --- one submission, wherever it runs ------------------------------------------------------


def _grader_error(sub: Submission, out_dir: Path | str, config: Config, epochs: int, error: str,
                  reason: str | None = None) -> None:
    """Record a failure of the grader itself as a result with no score, so the batch goes on, it shows,
    and the next run retries it. `reason`: one line saying what failed (default: the error's last line);
    `error`: the whole story (a traceback), kept for the instructor."""
    out_dir = Path(out_dir)
    lines = error.strip().splitlines() or ["unknown error"]
    result = grader_error_result(sub.id, sub.sha256, epochs, reason or lines[-1][:300], error, KIT_VERSION)
    staged = out_dir / STAGE / sub.id
    shutil.rmtree(staged, ignore_errors=True)
    release_workdir(out_dir / STAGE / WORK / sub.id)
    staged.mkdir(parents=True)
    report.write_error_feedback(result, staged / report.FEEDBACK)
    report.write_results(result, staged / report.RESULTS)
    report.publish(staged, out_dir / sub.id)


def fault_reason(exc: BaseException) -> str:
    """One line on what failed: a GraderFault's own words, or the grader's exception."""
    if isinstance(exc, GraderFault):
        return str(exc)
    return f"internal error in the grader: {type(exc).__name__}: {exc}"


class WorkerMismatch(RuntimeError):
    """This worker cannot grade for this batch (another kit version, or OUT not shared)."""


def _check_worker(out_dir: Path, token: str | None, kit_version: str | None) -> None:
    host = socket.gethostname()
    if kit_version is not None and kit_version != KIT_VERSION:
        raise WorkerMismatch(
            f"worker on {host} runs kit {KIT_VERSION}, the batch kit {kit_version}: "
            "every worker needs the kit's environment (the same slayer-s2s-kit install)"
        )
    if token is not None:
        try:
            seen = (out_dir / MARKER).read_text().strip()
        except OSError:
            seen = None
        if seen != token:
            raise WorkerMismatch(
                f"worker on {host} does not see the batch's output folder {out_dir} "
                f"(no {MARKER} with this batch's token): the output folder must be on a "
                "filesystem shared by the machine that runs the batch and every worker"
            )


def grade_task(sub: Submission, ctx: BatchContext) -> tuple[str, float | None, str | None]:
    """One submission, in whichever process or cluster worker runs it: (id, score, error); no score on error.

    Never raises for a grading problem: a grader error becomes an error result
    (except when OUT cannot be written from here; the batch records that one).
    """
    import torch  # grader/__init__ has pinned the numerical mode (one thread included)

    torch.set_num_threads(1)
    preload()  # before the first kernel: what grades is what the kit shipped
    out = ctx.out
    try:
        _check_worker(out, ctx.token, ctx.kit_version)
    except WorkerMismatch as exc:
        return sub.id, None, str(exc)
    # One grading at a time per process: the sandbox gives each grading process one uid and ends
    # every process of that uid after a run, so two gradings in threads of one Dask worker would
    # end each other's kernels. Give Dask workers one thread each (docs/clusters.md) for parallelism.
    with _ONE_AT_A_TIME:
        return _grade_staged(sub, ctx)


_ONE_AT_A_TIME = threading.Lock()


def _grade_staged(sub: Submission, ctx: BatchContext) -> tuple[str, float | None, str | None]:
    out, stage = ctx.out, ctx.out / STAGE
    workdir = stage / WORK / sub.id
    shutil.rmtree(stage / sub.id, ignore_errors=True)
    try:
        graded = grade_submission(sub, stage, ctx.config, ctx.epochs, ctx.calibration, workdir=workdir,
                                  times=ctx.times, previous=previous_result(sub, out), forced=ctx.regrade)
        report.publish(stage / sub.id, out / sub.id)
        return sub.id, graded.result.score, None
    except Exception as exc:  # the grader's own fault, whatever it is: no score, retried next run
        error = traceback.format_exc()
        _grader_error(sub, out, ctx.config, ctx.epochs, error, fault_reason(exc))
        return sub.id, None, error
    finally:
        release_workdir(workdir)


# --- running the tasks ----------------------------------------------------------------------


def _progress(total: int, enabled: bool) -> Callable[[str], None]:
    if not enabled:
        return lambda _: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="submission", desc="grading")

    def step(label: str) -> None:
        bar.set_postfix_str(label[:30])
        bar.update(1)
        if bar.n >= total:
            bar.close()

    return step


def _die_with_parent(parent_pid: int) -> None:
    """Linux: this process gets SIGKILL when the batch process dies (its kernel then follows)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent_pid:  # the batch died before prctl took effect
        os._exit(1)


def _worker_main(conn, parent_pid: int) -> None:
    """A local worker process: grade the submissions it is sent, one at a time, until told to stop."""
    _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the batch process stops its workers
    try:
        logging_to = None
        while True:
            try:
                task = conn.recv()
            except EOFError:  # the batch is gone
                return
            if task is None:
                return
            if logging_to is None:
                logging_to = output_to(Path(task[1].out) / LOG)
            conn.send(grade_task(*task))  # (submission, context)
    finally:
        conn.close()


def output_to(log: Path) -> Path:
    """This process's stdout and stderr, at the file-descriptor level, go to `log` (appended).

    A grading worker has nothing to say on the instructor's terminal: results and errors go
    back through its pipe, and what it printed was the libraries' own notices, once per
    worker, between the progress bar's lines. File descriptors, not sys.stdout: native code
    and imported libraries write there too.
    """
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    return log


def _death(exitcode: int | None) -> str:
    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


class _Worker:
    """One local worker process and the submission it is grading, if any."""

    def __init__(self, ctx, parent_pid: int) -> None:
        self.conn, child = ctx.Pipe(duplex=True)
        self.process = ctx.Process(target=_worker_main, args=(child, parent_pid), daemon=True,
                                   name="s2s-grade-worker")
        self.process.start()
        child.close()
        self.sub: Submission | None = None
        self.deadline = float("inf")
        self.done = 0

    def give(self, sub: Submission, task: tuple, timeout_s: float) -> None:
        self.sub, self.deadline = sub, time.monotonic() + timeout_s
        self.conn.send(task)

    def kill(self) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()
        self.conn.close()

    def stop(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.conn.send(None)
        self.process.join(timeout=10)
        self.kill()


def _finish(sub: Submission, reply: tuple | None, failure: str | None, ctx: BatchContext,
            errors: dict[str, str], step: Callable[[str], None]) -> None:
    """Book one finished task; make sure OUT/<id> says what happened."""
    out_dir, config, epochs = ctx.out, ctx.config, ctx.epochs
    err = (failure or "the worker returned nothing") if reply is None else reply[2]
    if err is not None and not _landed(sub, out_dir, error=True):
        _grader_error(sub, out_dir, config, epochs, err)
    elif err is None and not _landed(sub, out_dir, error=False):
        err = "the worker reported a grade but its results.json is not in the output folder"
        _grader_error(sub, out_dir, config, epochs, err)
    if err:
        errors[sub.id] = err
    step(sub.id)


def _run_inline(tasks: list[Submission], ctx: BatchContext, step: Callable[[str], None],
                errors: dict[str, str]) -> None:
    """In this process, one at a time (workers=0; for debugging: no isolation, no time limit)."""
    for sub in tasks:
        _finish(sub, grade_task(sub, ctx), None, ctx, errors, step)


def _run_local(tasks: list[Submission], workers: int, ctx: BatchContext, step: Callable[[str], None],
               errors: dict[str, str], timeout_s: float, tasks_per_worker: int = TASKS_PER_WORKER) -> None:
    """`workers` long-lived processes; one that dies or overruns costs only its submission.

    Unlike a ProcessPoolExecutor (which breaks as a whole, failing every task in
    flight, when one of its processes dies), a dead worker here is replaced and
    only the submission it held gets an error result. Each process grades at most
    `tasks_per_worker` submissions, then a fresh one takes over.
    """
    spawn = get_context("spawn")
    parent = os.getpid()
    pending = list(tasks)
    pool: list[_Worker] = []
    try:
        while pending or any(w.sub is not None for w in pool):
            for w in [w for w in pool if w.sub is None and (w.done >= tasks_per_worker or not pending)]:
                w.stop()  # recycled, or nothing left for it
                pool.remove(w)
            while pending and len(pool) < min(workers, len(pending) + sum(w.sub is not None for w in pool)):
                pool.append(_Worker(spawn, parent))
            for w in pool:
                if w.sub is None and pending:
                    sub = pending.pop(0)
                    try:
                        w.give(sub, (sub, ctx), timeout_s)
                    except OSError:  # died before it could take it: removed below, another one takes it
                        pending.insert(0, sub)
                        w.sub, w.deadline = None, float("inf")
            busy = [w for w in pool if w.sub is not None]
            if not busy:
                continue
            waits = {}
            for w in busy:
                waits[w.conn] = w
                waits[w.process.sentinel] = w
            timeout = max(0.05, min(w.deadline for w in busy) - time.monotonic())
            ready = mp_connection.wait(list(waits), timeout=timeout)
            for w in dict.fromkeys(waits[r] for r in ready):  # each worker once
                sub, reply, gone = w.sub, None, False
                try:
                    if w.conn.poll():
                        reply = w.conn.recv()
                except (EOFError, OSError):  # its end of the pipe is closed: it is exiting or dead
                    gone = True
                if reply is not None:
                    w.sub, w.deadline, w.done = None, float("inf"), w.done + 1
                    _finish(sub, reply, None, ctx, errors, step)
                elif gone or not w.process.is_alive():
                    w.kill()
                    pool.remove(w)
                    _finish(sub, None, f"worker process died ({_death(w.process.exitcode)})", ctx, errors, step)
            now = time.monotonic()
            for w in [w for w in pool if w.sub is not None and now > w.deadline]:
                sub = w.sub
                w.kill()
                pool.remove(w)
                _finish(sub, None, f"worker process ran past {timeout_s:.0f} s and was killed", ctx, errors, step)
            for w in [w for w in pool if w.sub is None and not w.process.is_alive()]:
                w.kill()  # died between two submissions: nothing lost, replaced at the next turn
                pool.remove(w)
    except BaseException:  # Ctrl-C, or a failure of the batch itself: stop the workers, grade nothing half
        for w in pool:
            if w.process.is_alive():
                w.process.kill()
        for w in pool:
            w.process.join()
        raise
    finally:
        for w in pool:
            w.stop()


def _worker_info(out_dir: str, token: str) -> tuple[str, str, bool, str, str | None]:
    """Run on every Dask worker before the batch: (host, kit version, sees OUT, numerical mode, no sandbox why)."""
    try:
        sees = (Path(out_dir) / MARKER).read_text().strip() == token
    except OSError:
        sees = False
    return socket.gethostname(), KIT_VERSION, sees, numerics.label(), why_no_sandbox()


def _preflight(client, ctx: "BatchContext") -> None:
    """Refuse to start when a connected worker cannot grade for this batch."""
    problems = []
    here = numerics.label()
    sandbox = ctx.config.limits.sandbox
    infos = client.run(_worker_info, ctx.out_dir, ctx.token or "")
    for address, (host, version, sees, mode, no_sandbox) in sorted(infos.items()):
        if no_sandbox and (sandbox == "require" or (sandbox == "auto" and not ctx.unsandboxed)):
            problems.append(f"{address} ({host}) cannot sandbox: {no_sandbox} (or pass --unsandboxed)")
        if version != KIT_VERSION:
            problems.append(f"{address} ({host}) runs kit {version}, this machine {KIT_VERSION}")
        if mode != here:  # the worker evaluates: its numbers must be this machine's
            problems.append(f"{address} ({host}) computes in {mode}, this machine in {here} "
                            "(start the worker after the kit's numerical mode is set: see docs/clusters.md)")
        if not sees:
            problems.append(f"{address} ({host}) does not see {ctx.out_dir}")
    threaded = sorted(addr for addr, info in client.scheduler_info()["workers"].items()
                      if info.get("nthreads", 1) > 1)
    if threaded:
        warnings.warn(
            f"{len(threaded)} Dask worker(s) have several threads; a worker process grades one submission "
            "at a time, so start workers with --nthreads 1 (and as many processes as cores)",
            RuntimeWarning, stacklevel=3,
        )
    if problems:
        raise BatchError(
            "Dask workers that cannot grade this batch:\n  " + "\n  ".join(problems)
            + "\nEvery worker needs the kit's environment, and the output folder must be on a "
            "filesystem shared by this machine and every worker (see docs/clusters.md)."
        )


def _run_dask(tasks: list[Submission], scheduler: str, ctx: BatchContext, step: Callable[[str], None],
              errors: dict[str, str]) -> None:
    from distributed import Client
    from distributed import as_completed as dask_completed

    token = ctx.token or ""
    with Client(scheduler, timeout="60s") as client:
        _preflight(client, ctx)
        futures = {
            client.submit(grade_task, sub, ctx, key=f"s2s-grade-{token[:8]}-{sub.id}",
                          pure=False, retries=0): sub
            for sub in tasks
        }
        for fut in dask_completed(list(futures)):
            sub = futures[fut]
            reply, failure = None, None
            try:
                reply = fut.result()
            except (Exception, asyncio.CancelledError) as exc:  # KilledWorker: the worker died (retried first)
                failure = " ".join(f"dask task failed: {type(exc).__name__}: {exc}".split())
            fut.release()
            _finish(sub, reply, failure, ctx, errors, step)


# --- the batch --------------------------------------------------------------------------------


@contextlib.contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """One batch at a time per output folder; the lock goes with the process, even on SIGKILL."""
    import fcntl

    with open(out_dir / LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise BatchError(f"another batch ({holder}) is grading into {out_dir}: wait for it, "
                             "or use another --out") from None
        except OSError:  # a filesystem without locks: go on without
            pass
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
        f.flush()
        yield


def _refuse_without_sandbox(config: Config, unsandboxed: bool) -> None:
    """Safe by default: students' code never runs outside the sandbox unless someone said so."""
    if config.limits.sandbox == "auto" and not unsandboxed and (why := why_no_sandbox()):
        raise BatchError(
            f"{why}: without it the submissions' code would run with resource limits only, with network "
            "and with the grader's own file access. Install bubblewrap, or pass --unsandboxed "
            "(grade_batch(..., unsandboxed=True)) to accept that risk for this batch; the rubric's "
            "limits.sandbox = \"off\" turns the sandbox off for good."
        )
    try:
        bwrap_path(config.limits)  # "require" refuses here; accepted "auto" says once what it runs with
    except SandboxUnavailable as exc:
        raise BatchError(str(exc)) from None


def clean_stale(out_dir: Path) -> None:
    """Delete what an interrupted batch may have left: staging folders, runs, temporary files."""
    for name in (STAGE, WORK):
        unmount_under(out_dir / name)  # a killed batch's working directories may still be mounted
        shutil.rmtree(out_dir / name, ignore_errors=True)
    for tmp in [*out_dir.glob(".*.tmp"), *out_dir.glob("*/.*.tmp")]:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _write_similarity(out_dir: Path, config: Config) -> None:
    """similarity.html and .json; a failure there costs the report, never the batch (it changes no grade)."""
    from grader import similarity  # here: a grading worker never needs it (nor scipy)

    try:
        similarity.write_similarity(out_dir, config.similarity)
    except Exception:
        (out_dir / similarity.SIMILARITY_JSON).unlink(missing_ok=True)  # no stale column in the gradebook
        with contextlib.suppress(OSError):
            report.atomic_write(out_dir / similarity.SIMILARITY_HTML,
                                "<!doctype html><meta charset='utf-8'><title>similarity</title><p>The similarity "
                                "report failed:</p><pre>" + html.escape(traceback.format_exc())
                                + "</pre>")


def grade_batch(
    paths: Iterable[Path],
    out_dir: Path,
    config: Config,
    epochs: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    regrade: bool = False,
    progress: bool = True,
    unsandboxed: bool = False,
) -> BatchSummary:
    """Grade every submission under `paths` into `out_dir`; returns what was done.

    workers: processes at once (default: the cores available; 0: in this process).
    scheduler: address of a Dask scheduler; the tasks go there instead.
    unsandboxed: run the submissions' code without bubblewrap where it is missing
    (the rubric's "auto"): only for code you trust (the kit's samples, your own
    notebook). Without it such a batch stops before the first submission.
    Local workers are started with "spawn": a script that calls this needs the
    usual `if __name__ == "__main__":` guard.
    """
    out_dir = Path(out_dir).resolve()  # absolute: workers elsewhere resolve it the same way
    out_dir.mkdir(parents=True, exist_ok=True)
    epochs = int(epochs or config.budget.epochs)
    workers = default_workers() if workers is None else max(0, int(workers))
    errors: dict[str, str] = {}
    note = ""
    with _exclusive(out_dir):
        clean_stale(out_dir)
        subs = discover([Path(p).resolve() for p in paths], out_dir / INTAKE)
        known = calibration.load(epochs, config.budget.seed)
        todo = [s for s in subs if regrade or not already_graded(s, out_dir, config, epochs, known)]
        todo_ids = {s.id for s in todo}
        skipped = [s.id for s in subs if s.id not in todo_ids]
        try:
            if todo:
                if not scheduler:  # refuse up front when the rubric requires a sandbox this machine lacks
                    _refuse_without_sandbox(config, unsandboxed)
                cal = calibration.get(epochs, config.budget.seed, config.budget.accelerate)
                note = calibration.describe_source(cal)
                token = secrets.token_hex(16)
                report.atomic_write(out_dir / MARKER, token + "\n")
                ctx = BatchContext(str(out_dir), config, epochs, cal, token, KIT_VERSION, unsandboxed,
                                   timeouts.for_budget(config.limits, cal, epochs), regrade)
                step = _progress(len(todo), progress)
                if scheduler:
                    _run_dask(todo, scheduler, ctx, step, errors)
                elif workers == 0:
                    _run_inline(todo, ctx, step, errors)
                else:
                    limits = config.limits
                    timeout_s = limits.total_timeout_s + limits.startup_timeout_s + TIMEOUT_MARGIN_S
                    _run_local(todo, workers, ctx, step, errors, timeout_s)
        finally:
            # a worker killed mid-run (or its orphaned kernel) can leave its working directory mounted
            unmount_under(out_dir / STAGE / WORK)
            _write_similarity(out_dir, config)  # before the gradebook: its most_similar column
            gradebook = report.write_gradebook(out_dir)
            overview.write_overview(out_dir)  # index.html, beside the gradebook
            with contextlib.suppress(OSError):
                (out_dir / STAGE / WORK).rmdir()
                (out_dir / STAGE).rmdir()
    return BatchSummary([s.id for s in todo], skipped, errors, gradebook, note)
