"""Score one exported network in the grader's own process.

Why here and not in the notebook: the grade must depend only on `Trained/network.net`,
rebuilt with stock slayer (grader.rebuild) and run on the official input. The
independent numpy simulator (grader.simulate) runs the same file as a cross-check,
and `compare_to_kernel` tells a student whose export does not reproduce their own
notebook's output (wrong file, edited weights, non-default block options that the
HDF5 cannot record such as `delay_shift=False`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from grader.metrics import raster_metrics, spike_time_loss_torch
from grader.rebuild import build_network, run_network
from grader.simulate import read_layers, simulate

MAX_SHIFT = 3  # steps of time shift compare_to_kernel looks for


@dataclass
class Evaluation:
    output: np.ndarray  # (neurons, T) float32 0/1, the rebuilt slayer network's output
    loss: float  # slayer.loss.SpikeTime(2, filter_order=2) on `output`, as in training
    metrics: dict[str, float]  # grader.metrics.raster_metrics(output, target)
    simulator_output: np.ndarray | None  # grader.simulate's raster; None if it failed
    simulator_matches: bool  # simulator_output == output, bit for bit
    simulator_error: str | None = None
    timing: dict[str, float] = field(default_factory=dict)  # seconds per stage and "total"


def _raster(x, name: str) -> np.ndarray:
    a = np.asarray(x.detach().cpu().numpy() if hasattr(x, "detach") else x)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a (neurons, T) raster, found shape {a.shape}")
    return a.astype(np.float32)


def evaluate_hdf5(path: str | Path, input, target) -> Evaluation:
    """Rebuild `path`, run it on `input`, score it against `target` and cross-check it.

    ValueError when the file cannot be rebuilt (see grader.simulate.read_layers).
    """
    x, y = _raster(input, "input"), _raster(target, "target")
    timing: dict[str, float] = {}
    start = last = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        timing[name], last = now - last, now

    layers = read_layers(path)
    lap("read")
    net = build_network(layers)
    lap("rebuild")
    output = run_network(net, x)
    lap("run")
    if output.shape != y.shape:
        raise ValueError(f"the network's output has shape {output.shape}, the target {y.shape}")
    loss = spike_time_loss_torch(output, y)
    lap("loss")
    metrics = raster_metrics(output, y)
    lap("metrics")
    sim, error = None, None
    try:
        sim = simulate(layers, x)
    except ValueError as exc:
        error = str(exc)
    lap("simulate")
    timing["total"] = time.perf_counter() - start
    return Evaluation(
        output=output,
        loss=loss,
        metrics=metrics,
        simulator_output=sim,
        simulator_matches=sim is not None and np.array_equal(sim, output),
        simulator_error=error,
        timing=timing,
    )


def _shift_that_matches(kernel: np.ndarray, export: np.ndarray) -> int | None:
    """d such that kernel[:, t] == export[:, t + d] wherever both exist (d != 0)."""
    steps = export.shape[1]
    for d in sorted(range(-MAX_SHIFT, MAX_SHIFT + 1), key=abs):
        if d == 0 or abs(d) >= steps:
            continue
        k, e = (kernel[:, : steps - d], export[:, d:]) if d > 0 else (kernel[:, -d:], export[:, : steps + d])
        if e.any() and np.array_equal(k, e):
            return d
    return None


def compare_to_kernel(evaluation: Evaluation, kernel_output) -> str | None:
    """None when the notebook's own output equals the export's; otherwise why not, in words."""
    export = evaluation.output
    try:
        kernel = np.asarray(kernel_output, dtype=np.float64)
    except (TypeError, ValueError):
        return "the notebook's output is not a numeric array"
    if kernel.ndim == 3 and kernel.shape[0] == 1:
        kernel = kernel[0]
    if kernel.shape != export.shape:
        return f"the notebook's output has shape {kernel.shape}, the exported network's {export.shape}"
    if not np.isfinite(kernel).all():
        return "the notebook's output contains NaN or infinite values"
    if np.array_equal(kernel, export):
        return None
    if not np.isin(kernel, (0, 1)).all():
        return "the notebook's output is not a 0/1 spike raster (graded spikes?)"
    differ = int((kernel != export).sum())
    message = (
        f"Trained/network.net does not reproduce the notebook's output: {differ} of "
        f"{export.size} entries differ (notebook {int(kernel.sum())} spikes, "
        f"export {int(export.sum())})."
    )
    d = _shift_that_matches(kernel, export)
    if d is not None:
        when = "earlier" if d > 0 else "later"
        message += (
            f" They agree up to a shift: the notebook's spikes come {abs(d)} step(s) {when}; "
            "the network probably ran with a different delay_shift than slayer's default, "
            "which the HDF5 export does not record."
        )
    return message
