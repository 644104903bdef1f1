"""The kit's checks: evidence to points. Every check says what it measured and why it gave what it gave.

Each is registered by name (``grader/checks.py``); rubric.toml's [points]
names exactly these, and gives each its points.
"""

from __future__ import annotations

import numpy as np

from grader.checks import Evidence, check
from grader import artifacts, cpu_redirect, figure, hints, messages
from grader.metrics import CORRELATION_SIGMA_MS, F1_TOLERANCES_MS
from grader.results import CheckResult
from solution import homework

EXPECTED = homework.SHAPE
CORRELATION = f"correlation_{CORRELATION_SIGMA_MS}ms"
ARCHITECTURE = " -> ".join(map(str, homework.LAYERS))


def _linear(value: float, full: float, zero: float) -> float:
    """1 at `full`, 0 at `zero`, linear between (either direction)."""
    if full == zero:
        return 1.0 if value == full else 0.0
    return float(np.clip((value - zero) / (full - zero), 0.0, 1.0))


diagnose_shape = messages.diagnose_shape  # the notebook's own checks (hw8_check) say the same


def _budget_override(ev: Evidence) -> tuple[str, list[str]]:
    """Why the notebook did not train for the grader's budget, when it set `epochs` itself, and its flag.

    Two signs: a cell after the `parameters` cell assigns the budget (read from the source), and
    Trained/loss.txt records more epochs than the budget. A cell that assigns it without changing it
    (the curve has the budget's length, and the run completed) is left alone.
    """
    run, curve = ev.run, ev.learning_curve
    if not run.budget_set or run.epochs is None:
        return "", []
    trained = len(curve) if curve and len(curve) > run.epochs else None
    where = run.budget_overrides
    if trained is None and (not where or (curve and run.completed)):
        return "", _slow_run_flags(ev)
    return hints.budget_message(where, trained, run.epochs), [hints.budget_flag(where, trained, run.epochs)]


def _slow_run_flags(ev: Evidence) -> list[str]:
    """The third sign, the grader's own clock: a run far longer than the accelerated reference's training
    at this budget, where nothing else says the budget changed (a name built at run time, a trimmed
    Trained/loss.txt). A flag for a person to look, never a message to the student or a score: slow
    but honest code can also take long."""
    run, cal = ev.run, ev.calibration
    if not run.completed or ev.probe.meta.get(artifacts.ACCELERATED) is not True or cal.epochs != run.epochs \
            or cal.train_wall_s <= 0:
        return []
    if run.cell_s <= hints.SLOW_FACTOR * cal.train_wall_s + hints.SLOW_MARGIN_S:
        return []
    return [hints.slow_run_flag(run.cell_s, cal.train_wall_s, run.epochs)]


@check("execution")
def execution_check(ev: Evidence, points: float) -> CheckResult:
    """The notebook runs to the end (and trains for the grader's budget: said, not scored)."""
    run = ev.run
    if ev.intake_problem:
        return CheckResult("execution", 0.0, points, f"nothing to run: {ev.intake_problem}")
    clipped = "".join(
        f"; {cell} printed {chars:,} characters: its output is clipped in the executed notebook"
        for cell, chars in run.clipped_output.items()
    )
    override, flags = _budget_override(ev)
    said = f"; {override}" if override else ""
    clipped += cpu_redirect.note(ev.probe.meta)  # a CUDA notebook ran on the CPU: said, never scored
    if run.completed:
        msg = f"the notebook ran to the end in {run.cell_s:.0f} s"
        if not run.budget_set:
            msg += (
                "; no cell is tagged `parameters`, so the grader could not set the epoch budget: "
                "the notebook ran with its own"
            )
        return CheckResult("execution", points, points, msg + said + clipped, flags=flags)
    return CheckResult("execution", 0.0, points, f"the notebook stopped: {run.error}{said}{clipped}", flags=flags)


@check("dataset")
def dataset_check(ev: Evidence, points: float) -> CheckResult:
    """The dataset's input and target are (200, 600) and equal the HW8 spikes."""
    probe, official = ev.probe, ev.official
    if probe.problem:
        return CheckResult("dataset", 0.0, points, probe.problem)
    if "dataset" in probe.meta["errors"]:
        return CheckResult("dataset", 0.0, points, probe.meta["errors"]["dataset"])
    problems = []
    for key in ("input", "target"):
        shape = probe.meta.get(f"{key}_shape")
        msg = diagnose_shape(f"the dataset's {key}", shape)
        if msg:
            problems.append(msg)
            continue
        arr = probe.arrays.get(key)
        if arr is None:
            problems.append(f"the dataset's {key} could not be read back")
            continue
        arr = arr.reshape(EXPECTED)
        if not np.array_equal(arr, official[key]):
            diff = int(np.sum(arr != official[key]))
            problems.append(messages.dataset_differs(key, diff))
    if problems:
        return CheckResult("dataset", 0.0, points, "; ".join(problems))
    return CheckResult("dataset", points, points, messages.DATASET_OK)


@check("output_shape")
def output_shape_check(ev: Evidence, points: float) -> CheckResult:
    """The network's output on the official input is (200, 600)."""
    probe = ev.probe
    if probe.problem:
        return CheckResult("output_shape", 0.0, points, probe.problem)
    if "network" in probe.meta["errors"]:
        return CheckResult("output_shape", 0.0, points, probe.meta["errors"]["network"])
    msg = diagnose_shape("the network's output", probe.meta.get("output_shape"), allow_batch=True)
    if msg:
        return CheckResult("output_shape", 0.0, points, msg)
    return CheckResult("output_shape", points, points, messages.OUTPUT_OK)


STILL_EVALUATED = "; the network was still evaluated: export, loss and similarity are scored on it"
UNTRAINED = (
    f"{homework.NETWORK_HDF5} holds the untrained network's weights: export after training, from the best "
    f"network (net.load_state_dict(torch.load('{homework.NETWORK_STATE}')), then net.export_hdf5)"
)


@check("hdf5")
def hdf5_check(ev: Evidence, points: float) -> CheckResult:
    """Trained/network.net has slayer's export structure, 200 -> 256 -> 200."""
    report = ev.hdf5
    if report.ok:
        return CheckResult("hdf5", points, points, f"{homework.NETWORK_HDF5} has slayer's structure, {ARCHITECTURE}")
    message = "; ".join(report.problems)
    if report.evaluable:
        message += STILL_EVALUATED
    return CheckResult("hdf5", 0.0, points, message)


def not_evaluated(ev: Evidence) -> str:
    """Why the grader has no measurement of the export, as the end of a sentence."""
    report = ev.hdf5
    why = report.not_evaluable or (report.problems[0] if report.problems else "it could not be run")
    return f"the export was not evaluated because {why}"


@check("export")
def export_check(ev: Evidence, points: float) -> CheckResult:
    """The exported file reproduces the notebook's own output (flags what looks wrong)."""
    m, probe = ev.measurement, ev.probe
    if m is None:
        return CheckResult("export", 0.0, points, f"not compared with the notebook's output: {not_evaluated(ev)}")
    flags = [] if m.simulator_matches else ["simulator disagrees with slayer on the exported file"]
    if m.kernel_mismatch is None and "output" not in probe.arrays:
        return CheckResult("export", 0.0, points, "the notebook's own output is unavailable, nothing to compare",
                           flags=flags)
    if m.kernel_mismatch:
        flags.append("export does not reproduce the notebook's output")
        message = f"{UNTRAINED}. {m.kernel_mismatch}" if ev.weights_origin == "untrained" else m.kernel_mismatch
        return CheckResult("export", 0.0, points, message, flags=flags)
    return CheckResult(
        "export", points, points, "the exported network reproduces the notebook's output spike for spike", flags=flags
    )


@check("loss")
def loss_check(ev: Evidence, points: float) -> CheckResult:
    """SpikeTime loss of the export against the reference's at the same budget."""
    if ev.measurement is None:
        return CheckResult("loss", 0.0, points, f"the loss was not measured: {not_evaluated(ev)}")
    th, cal = ev.thresholds, ev.calibration
    loss = ev.measurement.loss
    full = cal.loss * th.loss_full
    zero = min(cal.loss * th.loss_zero, cal.silent_loss)
    frac = 1.0 if loss <= full else (0.0 if zero <= full else _linear(loss, full, zero))
    details = {"loss": loss, "reference_loss": cal.loss, "full_at": full, "zero_at": zero}
    msg = (
        f"SpikeTime loss of the exported network {loss:.1f} (reference at {cal.epochs} epochs: "
        f"{cal.loss:.1f}; full points up to {full:.1f}, none from {zero:.1f})"
    )
    if ev.weights_origin == "untrained":
        msg += f"; {UNTRAINED}"
    return CheckResult("loss", round(points * frac, 2), points, msg, details)


def similarity_score(metrics: dict[str, float]) -> float:
    """Mean of spike-time F1 at each tolerance and the smoothed-raster correlation (grader.metrics)."""
    parts = [metrics[f"f1_{k}ms"] for k in F1_TOLERANCES_MS]
    parts.append(max(0.0, metrics[CORRELATION]))
    return float(np.mean(parts))


@check("similarity")
def similarity_check(ev: Evidence, points: float) -> CheckResult:
    """Raster similarity to the target, relative to the reference's."""
    if ev.measurement is None:
        return CheckResult("similarity", 0.0, points, f"the similarity was not measured: {not_evaluated(ev)}")
    th, cal = ev.thresholds, ev.calibration
    m = ev.measurement.metrics
    sim = similarity_score(m)
    ref = similarity_score(cal.metrics)
    ratio = sim / ref if ref > 0 else 0.0
    frac = _linear(ratio, th.similarity_full, th.similarity_zero)
    f1s = ", ".join(f"±{k} ms {m[f'f1_{k}ms']:.3f}" for k in F1_TOLERANCES_MS)
    msg = (
        f"raster similarity {sim:.3f} = {ratio:.0%} of the reference's {ref:.3f} "
        f"(spike F1 {f1s}; smoothed correlation {m[CORRELATION]:.3f}); "
        f"full points from {th.similarity_full:.0%}, none below {th.similarity_zero:.0%}"
    )
    return CheckResult("similarity", round(points * frac, 2), points, msg, {"similarity": sim, "ratio": ratio})


NO_FIGURE = ("the executed notebook shows no figure: plot the output against the target in part 3 "
             "and show it (plt.show())")


@check("figure")
def figure_check(ev: Evidence, points: float) -> CheckResult:
    """Part 3's plot: a student cell shows a figure (the last one goes on the feedback page)."""
    if ev.run.notebook is None:
        return CheckResult("figure", 0.0, points, "no executed notebook: there is no figure to look for",
                           passed=False)
    fig = figure.from_run(ev.run)
    if not fig.count:
        return CheckResult("figure", 0.0, points, NO_FIGURE, passed=False)
    shows = f"the notebook shows {fig.count} figure{'s' if fig.count > 1 else ''}"
    if fig.size is not None:
        width, height = fig.size
        msg = f"{shows}; the last, from {fig.where}, is on the feedback page ({width}×{height} px)"
    else:
        msg = f"{shows}; the last, from {fig.where}, cannot be shown: {fig.problem}"
    return CheckResult("figure", points, points, msg, {"figures": fig.count, "cell": fig.cell}, passed=True)
