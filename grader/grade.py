"""Grade one submission: execute → artifacts → checks and evaluation → rubric → report files."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from grader import artifacts, calibration, figure, regrade, report, timeouts
from grader.checks import Evidence, run_checks
from grader.config import Config
from grader.execute import Execution, execute, prepare_workdir, release_workdir
from grader.results import GradeResult, GraderFault
from grader.measure import Measurement
from grader.submission import Submission, SubmissionError, load_notebook
from solution import numerics


def _kit_version() -> str:
    """The installed kit's version (a batch regrades when it changes); the source tree's as a fallback."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("slayer-s2s-kit")
    except PackageNotFoundError:
        pass
    try:
        from grader.config import tomllib  # tomllib, or its backport on Python 3.10

        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        return str(tomllib.loads(pyproject.read_text())["project"]["version"]) + "+source"
    except (ImportError, OSError, ValueError, KeyError):
        return "0+unknown"


KIT_VERSION = _kit_version()
WORK = "_work"  # OUT/_work/<id>: where a submission's notebook runs, unless the caller names the folder


@dataclass
class Graded:
    """A grade plus what its report draws (kept out of results.json)."""

    result: GradeResult
    output: np.ndarray | None = None


def preload() -> None:
    """Import everything grading evaluates with, before any student code runs in this process's kernels.

    A module imported after a kernel ran would be read from disk then: whatever a notebook could
    change there (where the kit is not read-only to it) would grade. Imported now, it is the kit's.
    """
    import h5py  # noqa: F401
    import lava.lib.dl.slayer  # noqa: F401

    from grader import evaluate, measure, metrics, overview, rebuild, rubric, simulate  # noqa: F401
    from solution import network, training  # noqa: F401  (calibration: the untrained digest, the fingerprint)


def _measure(report_: artifacts.HDF5Report, workdir: Path, probe: artifacts.Probe) -> Measurement | None:
    if not report_.evaluable:
        return None
    from grader.measure import measure, official_spikes

    try:
        return measure(workdir / artifacts.HDF5_PATH, official_spikes(), kernel_output=probe.arrays.get("output"))
    except Exception as exc:  # a file that passed the structure check but still cannot run
        report_.refuse(f"the exported network could not be run: {type(exc).__name__}: {exc}")
        return None


def grade_submission(
    sub: Submission,
    out_dir: Path,
    config: Config,
    epochs: int | None = None,
    cal: calibration.Calibration | None = None,
    workdir: Path | None = None,
    times: timeouts.TimeLimits | None = None,
    previous: GradeResult | None = None,
    forced: bool = False,
) -> Graded:
    """Grade `sub` and write out_dir/<id>/{results.json, executed.ipynb, feedback.html, figure.png}.

    The notebook runs in `workdir` (default out_dir/WORK/<id>), which is deleted afterwards;
    `times`: its time limits (default: the budget's, from the calibration and this machine's speed).
    Raises GraderFault when the grading machine, not the notebook, stopped the run (a kernel that
    cannot start, the grader's own preamble failing): that is no grade, and nothing is written.
    `previous`: the grading this one replaces (the result then says what changed, `results.Regrade`);
    `forced`: it was asked for (`--regrade`) rather than caused by a changed input.
    """
    from grader.measure import official_spikes

    start = time.perf_counter()
    epochs = int(epochs or config.budget.epochs)
    cal = cal or calibration.get(epochs, config.budget.seed, config.budget.accelerate)
    points = config.points
    sub_dir = out_dir / sub.id
    workdir = workdir or out_dir / WORK / sub.id
    problem = sub.problem
    nb = None
    if problem is None:
        try:
            nb = load_notebook(sub.notebook)
        except SubmissionError as exc:
            problem = str(exc)

    if nb is not None:
        prepare_workdir(workdir, config.limits)
        run = execute(nb, workdir, config, epochs, times or timeouts.for_budget(config.limits, cal, epochs))
        if run.grader_fault:  # the machine's fault, not the notebook's: no grade (grader.batch records it)
            raise GraderFault(run.grader_fault)
    else:
        workdir.mkdir(parents=True, exist_ok=True)
        run = Execution(workdir=workdir, notebook=None, completed=False, error=problem)
    probe = artifacts.read_probe(workdir, config.limits)
    hdf5 = artifacts.check_hdf5(workdir, config.limits)
    curve = artifacts.read_learning_curve(workdir)
    evaluation = _measure(hdf5, workdir, probe)
    origin = calibration.weights_origin(hdf5.weights_sha256, cal)  # seeded CPU training repeats these bits

    evidence = Evidence(run=run, intake_problem=problem, probe=probe, hdf5=hdf5, measurement=evaluation,
                        official=official_spikes(), calibration=cal, thresholds=config.thresholds,
                        weights_origin=origin,
                        learning_curve=curve)
    checks = run_checks(evidence, points)
    flags = [flag for c in checks for flag in c.flags]
    if nb is not None and not run.budget_set:
        flags.append("budget not set (no `parameters` cell)")
    measurements: dict[str, Any] = {"reference": {**cal.metrics, "loss": cal.loss}, "silent_loss": cal.silent_loss}
    if evaluation is not None:
        measurements.update(evaluation.figures())
    if hdf5.weights_sha256:
        measurements["weights_sha256"] = hdf5.weights_sha256
    if origin:
        measurements["weights_origin"] = origin
    wall = time.perf_counter() - start
    result = GradeResult(
        submission_id=sub.id,
        notebook_sha256=sub.sha256,
        checks=checks,
        execution_time=wall,
        epochs=epochs,
        flags=flags,
        measurements=measurements,
        learning_curve=curve,
        config_fingerprint=config.fingerprint(),
        kit_version=KIT_VERSION,
        grader_overhead_s=max(0.0, wall - run.cell_s),
        numerics=numerics.label(),
        calibration_source=cal.source,
        rubric=config.grading(),
    )
    if previous is not None:
        result.regrade = regrade.explain(previous, result, forced)
    output = evaluation.output if evaluation is not None else None
    sub_dir.mkdir(parents=True, exist_ok=True)
    if run.notebook is not None:
        report.write_notebook(run.notebook, sub_dir / "executed.ipynb")
    hdf5_file = workdir / artifacts.HDF5_PATH
    if hdf5.exists and hdf5_file.stat().st_size <= config.limits.hdf5_max_mb * 2**20:
        shutil.copyfile(hdf5_file, sub_dir / "network.net")
    if output is not None:  # the class's similarity report compares outputs (packed bits, ~15 kB)
        report.write_output_raster(output, sub_dir / report.OUTPUT_RASTER)
    shown = figure.from_run(run)  # the student's own last figure (part 3's plot), when the notebook shows one
    if shown.png is not None:
        report.atomic_write(sub_dir / figure.FILE, shown.png)
    else:
        (sub_dir / figure.FILE).unlink(missing_ok=True)  # none from an earlier grading into this folder
    report.write_feedback(result, output, official_spikes()["target"], sub_dir / "feedback.html", shown)
    report.write_results(result, sub_dir / "results.json", config.gradescope)  # last: its presence marks "graded"
    release_workdir(workdir)
    return Graded(result, output)
