"""Speed of the accelerator: solution.train stock vs accelerated, in one process.

Per-epoch times come from train()'s progress callback, so the median ignores
the one-off costs of the first epoch (FIR probing, allocations). Stock and
accelerated runs alternate so that a noisy neighbour hits both alike. The
breakdown times the four patched functions (they are looked up as module
globals at each call, so a timing wrapper around them sees every call).
"""

from __future__ import annotations

import contextlib
import importlib
import statistics
import tempfile
import time
from collections import defaultdict
from typing import Callable, Iterator, Optional

import torch

from grader.accel import patch

_PARTS = {  # patched global -> part of the breakdown
    (patch._LI, "_li_dynamics_fwd"): "dynamics",
    (patch._LI, "_li_dynamics_bwd"): "dynamics",
    (patch._CONV, "_fwd"): "filter",
    (patch._CONV, "_bwd"): "filter",
}


@contextlib.contextmanager
def _timed_globals(totals: dict[str, float]) -> Iterator[None]:
    """Wrap whatever the four globals currently are with timers; restore after."""
    saved = {}

    def timed(fn: Callable, part: str) -> Callable:
        def wrapper(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                totals[part] += time.perf_counter() - start

        return wrapper

    try:
        for (module_name, name), part in _PARTS.items():
            module = importlib.import_module(module_name)
            saved[(module, name)] = getattr(module, name)
            setattr(module, name, timed(saved[(module, name)], part))
        yield
    finally:
        for (module, name), fn in saved.items():
            setattr(module, name, fn)


def _run(epochs: int, accel: bool, seed: int) -> tuple[list[dict[str, float]], list[float]]:
    """One training run: per epoch {total, dynamics, filter, rest} seconds; losses."""
    from solution.training import train

    totals: dict[str, float] = defaultdict(float)
    marks: list[tuple[float, dict[str, float]]] = []

    def mark(*_: object) -> None:
        marks.append((time.perf_counter(), dict(totals)))

    active = patch.install() if accel else False
    if accel and not active:
        raise RuntimeError("the accelerator did not install (see the warning); nothing to compare")
    try:
        with tempfile.TemporaryDirectory() as out, _timed_globals(totals):
            mark()
            # installed above, before the timers wrap the patched globals
            result = train(epochs, seed=seed, out_dir=out, progress=mark)
    finally:
        if accel:
            patch.uninstall()
    per_epoch = []
    for (t0, p0), (t1, p1) in zip(marks, marks[1:]):
        row = {part: p1.get(part, 0.0) - p0.get(part, 0.0) for part in ("dynamics", "filter")}
        row["total"] = t1 - t0
        row["rest"] = row["total"] - row["dynamics"] - row["filter"]
        per_epoch.append(row)
    return per_epoch, result.losses


def bench_accel(epochs: int = 30, repeats: int = 3, seed: int = 0,
                threads: Optional[int] = 1) -> dict:
    """Median seconds per epoch, stock vs accelerated, their ratio and a breakdown.

    ``threads`` sets torch's intra-op threads for the measurement (the grader
    runs notebooks with one); None leaves them as they are.
    Returns a JSON-serialisable dict.
    """
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    from grader.accel import filter

    try:
        install_start = time.perf_counter()
        if not patch.install():
            raise RuntimeError("the accelerator did not install (see the warning)")
        install_s = time.perf_counter() - install_start
        patch.uninstall()
        rows: dict[str, list[dict[str, float]]] = {"stock": [], "accel": []}
        identical = True
        for _ in range(repeats):
            losses = {}
            for kind in ("stock", "accel"):
                per_epoch, losses[kind] = _run(epochs, kind == "accel", seed)
                rows[kind] += per_epoch[1:] if len(per_epoch) > 1 else per_epoch  # epoch 0: one-offs
            identical &= losses["stock"] == losses["accel"]

        def median(kind: str, part: str) -> float:
            return statistics.median(row[part] for row in rows[kind])

        def breakdown(kind: str) -> dict[str, float]:
            return {part: median(kind, part) for part in ("dynamics", "filter", "rest")}

        stock, accel = median("stock", "total"), median("accel", "total")
        return {
            "epochs": epochs,
            "repeats": repeats,
            "threads": torch.get_num_threads(),
            "stock_s_per_epoch": stock,
            "accel_s_per_epoch": accel,
            "ratio": stock / accel,
            "losses_identical": identical,
            "install_s": install_s,
            "numba_compile_s": patch.compile_seconds,
            "breakdown_stock_s": breakdown("stock"),
            "breakdown_accel_s": breakdown("accel"),
            "filter_calls": dict(filter.stats),
        }
    finally:
        torch.set_num_threads(previous_threads)


if __name__ == "__main__":  # python -m grader.accel.bench
    import json
    import sys

    args = sys.argv[1:]
    epochs, repeats = (int(args[0]), int(args[1])) if len(args) == 2 else (30, 3)
    print(json.dumps(bench_accel(epochs, repeats), indent=2))
