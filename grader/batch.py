"""Grade many submissions: N local workers or a Dask cluster, resumable, never losing a result.

Each submission is one task that writes its own results.json atomically;
the gradebook is rebuilt from those files at the end. A re-run skips every
submission already graded with the same notebook hash, configuration,
budget and kit version (`regrade=True` forces).
"""

from __future__ import annotations

import json
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterable

from grader import calibration, report
from grader.config import Config
from grader.grade import KIT_VERSION, grade_submission
from grader.results import CheckResult, GradeResult
from grader.submission import Submission, discover


@dataclass
class BatchSummary:
    graded: list[str]
    skipped: list[str]
    errors: dict[str, str]
    gradebook: Path


def already_graded(sub: Submission, out_dir: Path, config: Config, epochs: int) -> bool:
    path = out_dir / sub.id / report.RESULTS
    if not path.is_file():
        return False
    try:
        extra = json.loads(path.read_text())["extra_data"]
    except (OSError, ValueError, KeyError):
        return False
    return (
        extra.get("notebook_sha256") == sub.sha256
        and extra.get("config_fingerprint") == config.fingerprint()
        and extra.get("kit_version") == KIT_VERSION
        and extra.get("epochs") == epochs
    )


def _grader_error(sub: Submission, out_dir: Path | str, config: Config, epochs: int, error: str) -> None:
    """Record a failure of the grader itself as a result, so the batch goes on and it shows."""
    out_dir = Path(out_dir)
    checks = [
        CheckResult(name, 0.0, pts, "not graded: internal grader error (see flags); ask the instructor")
        for name, pts in config.points.items()
    ]
    result = GradeResult(
        submission_id=sub.id, notebook_sha256=sub.sha256, checks=checks, epochs=epochs,
        flags=[f"grader error: {error.strip().splitlines()[-1][:300]}"], config_fingerprint="error",
        kit_version=KIT_VERSION, measurements={"grader_traceback": error[-4000:]},
    )
    (out_dir / sub.id).mkdir(parents=True, exist_ok=True)
    report.write_results(result, out_dir / sub.id / report.RESULTS)


def grade_task(sub: Submission, out_dir: str, config: Config, epochs: int,
               cal: calibration.Calibration) -> tuple[str, float, str | None]:
    """One submission, in whichever process or cluster worker runs it: (id, score, error)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)
    try:
        graded = grade_submission(sub, Path(out_dir), config, epochs, cal)
        return sub.id, graded.result.score, None
    except Exception:
        error = traceback.format_exc()
        _grader_error(sub, Path(out_dir), config, epochs, error)
        return sub.id, 0.0, error


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


def _run_local(tasks: list[Submission], workers: int, args: tuple, step: Callable[[str], None],
               errors: dict[str, str]) -> None:
    if workers <= 1:
        for sub in tasks:
            sid, _, err = grade_task(sub, *args)
            if err:
                errors[sid] = err
            step(sid)
        return
    with ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(grade_task, sub, *args): sub for sub in tasks}
        for fut in as_completed(futures):
            sub = futures[fut]
            try:
                sid, _, err = fut.result()
            except Exception as exc:  # the worker process itself died
                sid, err = sub.id, f"worker died: {exc!r}"
                _grader_error(sub, *args[:3], err)
            if err:
                errors[sid] = err
            step(sid)


def _run_dask(tasks: list[Submission], scheduler: str, args: tuple, step: Callable[[str], None],
              errors: dict[str, str]) -> None:
    from distributed import Client, as_completed as dask_completed

    with Client(scheduler) as client:
        futures = {
            client.submit(grade_task, sub, *args, key=f"grade-{sub.id}-{sub.sha256[:12]}", pure=False): sub
            for sub in tasks
        }
        for fut in dask_completed(list(futures)):
            sub = futures[fut]
            try:
                sid, _, err = fut.result()
            except Exception as exc:
                sid, err = sub.id, f"dask task failed: {exc!r}"
                _grader_error(sub, *args[:3], err)
            if err:
                errors[sid] = err
            step(sid)


def grade_batch(
    paths: Iterable[Path],
    out_dir: Path,
    config: Config,
    epochs: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    regrade: bool = False,
    progress: bool = True,
) -> BatchSummary:
    """Grade every submission under `paths` into `out_dir`; returns what was done."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    epochs = int(epochs or config.budget.epochs)
    subs = discover([Path(p) for p in paths], out_dir / "_intake")
    todo = [s for s in subs if regrade or not already_graded(s, out_dir, config, epochs)]
    skipped = [s.id for s in subs if s not in todo]
    errors: dict[str, str] = {}
    if todo:
        cal = calibration.get(epochs, config.budget.seed, config.budget.accelerate)
        args = (str(out_dir), config, epochs, cal)
        step = _progress(len(todo), progress)
        if scheduler:
            _run_dask(todo, scheduler, args, step, errors)
        else:
            _run_local(todo, workers or os.cpu_count() or 1, args, step, errors)
    gradebook = report.write_gradebook(out_dir)
    return BatchSummary([s.id for s in todo], skipped, errors, gradebook)
