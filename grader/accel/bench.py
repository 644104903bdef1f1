"""Speed of the kit's mode: solution.train on stock slayer, in the kit's orders without and with the accelerator.

Three kinds of run, in one process, alternating so that a noisy neighbour hits
them alike: ``stock`` (lava-dl as installed: MKL's sgemm, torch's sqrt and exp),
``no_accel`` (the kit's orders, ``grader/exact``, with stock dynamics and
filter: what ``--no-accel`` trains) and ``accel`` (the kit's orders and the
accelerator: what the kit grades with). ``no_accel`` and ``accel`` must agree
bit for bit; ``stock`` sums in the libraries' orders, so its losses differ.
Per-epoch times come from train()'s progress callback, so the median ignores
the one-off costs of the first epoch. The breakdown times the patched globals
(looked up at each call, so a timing wrapper sees every call) and the dense
synapse's products (``grader.exact.dense._matmul``).
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

from grader import exact
from grader.accel import patch

_PARTS = {  # patched global -> part of the breakdown
    (patch._LI, "_li_dynamics_fwd"): "dynamics",
    (patch._LI, "_li_dynamics_bwd"): "dynamics",
    (patch._CONV, "_fwd"): "filter",
    (patch._CONV, "_bwd"): "filter",
    ("grader.exact.dense", "_matmul"): "dense",
}
PARTS = ("dynamics", "filter", "dense", "rest")
KINDS = ("stock", "no_accel", "accel")


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


def _run(epochs: int, kind: str, seed: int) -> tuple[list[dict[str, float]], list[float]]:
    """One training run of `kind` (KINDS): per epoch {total, dynamics, filter, dense, rest} seconds; losses."""
    from solution.training import train

    totals: dict[str, float] = defaultdict(float)
    marks: list[tuple[float, dict[str, float]]] = []

    def mark(*_: object) -> None:
        marks.append((time.perf_counter(), dict(totals)))

    if kind != "stock" and not exact.install():
        raise RuntimeError("the kit's orders did not install (see the warning); nothing to compare")
    if kind == "accel" and not patch.install():
        exact.uninstall()
        raise RuntimeError("the accelerator did not install (see the warning); nothing to compare")
    try:
        with tempfile.TemporaryDirectory() as out, _timed_globals(totals):
            mark()
            # installed above, before the timers wrap the patched globals
            result = train(epochs, seed=seed, out_dir=out, progress=mark)
    finally:
        patch.uninstall()
        exact.uninstall()
    per_epoch = []
    for (t0, p0), (t1, p1) in zip(marks, marks[1:]):
        row = {part: p1.get(part, 0.0) - p0.get(part, 0.0) for part in PARTS[:-1]}
        row["total"] = t1 - t0
        row["rest"] = row["total"] - sum(row[part] for part in PARTS[:-1])
        per_epoch.append(row)
    return per_epoch, result.losses


def bench_accel(epochs: int = 30, repeats: int = 3, seed: int = 0,
                threads: Optional[int] = 1) -> dict:
    """Median seconds per epoch of each kind (KINDS), stock / accelerated, and a breakdown.

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
        rows: dict[str, list[dict[str, float]]] = {kind: [] for kind in KINDS}
        identical = True
        for _ in range(repeats):
            losses = {}
            for kind in KINDS:
                per_epoch, losses[kind] = _run(epochs, kind, seed)
                rows[kind] += per_epoch[1:] if len(per_epoch) > 1 else per_epoch  # epoch 0: one-offs
            identical &= losses["no_accel"] == losses["accel"]

        def median(kind: str, part: str) -> float:
            return statistics.median(row[part] for row in rows[kind])

        def breakdown(kind: str) -> dict[str, float]:
            return {part: median(kind, part) for part in PARTS}

        stock, no_accel, accel = (median(kind, "total") for kind in KINDS)
        return {
            "epochs": epochs,
            "repeats": repeats,
            "threads": torch.get_num_threads(),
            "stock_s_per_epoch": stock,
            "no_accel_s_per_epoch": no_accel,
            "accel_s_per_epoch": accel,
            "ratio": stock / accel,
            "no_accel_ratio": no_accel / accel,
            "losses_identical": identical,
            "install_s": install_s,
            "numba_compile_s": patch.compile_seconds,
            "breakdown_stock_s": breakdown("stock"),
            "breakdown_no_accel_s": breakdown("no_accel"),
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
