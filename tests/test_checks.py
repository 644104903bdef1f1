"""Every check of the rubric over its whole range, on evidence built in memory (fast: no kernel, no training).

Each test states the exact score and the exact message a student reads: a check
that scores right but says the wrong thing, or says the right thing at the wrong
boundary, fails here. The HDF5 structure validation (grader/artifacts.py) is
tested on small files written with h5py, mutated copies of one real export.
`nox -s mutate` runs mutmut over rubric.py, checks.py and artifacts.py against
this file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import FrozenInstanceError
from pathlib import Path

import h5py
import numpy as np
import pytest

from grader import artifacts, checks, rubric
from grader.artifacts import (
    PROBE_TEXT_MAX, HDF5Report, Probe, check_hdf5, clip_text, malformed, own_file, read_learning_curve, read_probe,
)
from grader.calibration import Calibration
from grader.checks import Evidence
from grader.config import DEFAULT_RUBRIC, Limits, Thresholds, load_config
from grader.execute import Execution
from grader.measure import Measurement, official_spikes
from grader.results import CheckResult
from grader.rubric import _linear, diagnose_shape, similarity_score

KNOWN = ("execution", "dataset", "output_shape", "hdf5", "export", "loss", "similarity", "figure")
LISTED = ", ".join(KNOWN)
HDF5 = Path("Trained") / "network.net"

# --------------------------------------------------------------------------------------------
# Evidence built in memory
# --------------------------------------------------------------------------------------------

PERFECT = {"f1_0ms": 1.0, "f1_2ms": 1.0, "f1_5ms": 1.0, "correlation_5ms": 1.0}


def _metrics(value: float) -> dict[str, float]:
    return {"f1_0ms": value, "f1_2ms": value, "f1_5ms": value, "correlation_5ms": value}


def _cal(loss: float = 40000.0, silent: float = 100000.0, metrics: dict | None = None, epochs: int = 2000) -> Calibration:
    return Calibration(epochs=epochs, seed=0, loss=loss, silent_loss=silent, metrics=dict(metrics or PERFECT),
                       train_wall_s=1.0, seconds_per_epoch=0.01)


def _measurement(loss: float = 40000.0, metrics: dict | None = None, simulator_matches: bool = True,
                 kernel_mismatch: str | None = None) -> Measurement:
    return Measurement(loss=loss, silent_loss=100000.0, metrics=dict(metrics or PERFECT),
                       simulator_matches=simulator_matches, kernel_mismatch=kernel_mismatch)


def _probe(input_: np.ndarray | None = None, target: np.ndarray | None = None, **meta) -> Probe:
    """A probe that saw the official spikes (or the arrays given), shapes taken from the arrays."""
    official = official_spikes()
    input_ = official["input"] if input_ is None else input_
    target = official["target"] if target is None else target
    output = np.zeros((1, 200, 600), dtype=np.float32)
    m = {"errors": {}, "input_shape": list(input_.shape), "target_shape": list(target.shape),
         "output_shape": list(output.shape)}
    m.update(meta)
    return Probe(arrays={"input": input_, "target": target, "output": output}, meta=m)


def _run(completed: bool = True, **kw) -> Execution:
    kw.setdefault("budget_set", True)
    kw.setdefault("cell_s", 12.4)
    return Execution(workdir=Path("."), notebook=None, completed=completed, **kw)


def _ev(**changes) -> Evidence:
    base = dict(
        run=_run(),
        intake_problem=None,
        probe=_probe(),
        hdf5=HDF5Report(exists=True, evaluable=True),
        measurement=_measurement(),
        official=official_spikes(),
        calibration=_cal(),
        thresholds=Thresholds(),
    )
    base.update(changes)
    return Evidence(**base)


def _check(name: str, ev: Evidence, points: float) -> CheckResult:
    result = checks.registry()[name](ev, points)
    assert result.name == name  # results.json and the reports key every result by its check's name
    return result


def _same(result: CheckResult, score: float, max_score: float, message: str) -> None:
    assert (result.score, result.max_score, result.message) == (score, max_score, message)


# --------------------------------------------------------------------------------------------
# the registry
# --------------------------------------------------------------------------------------------


def test_known_checks_in_rubric_order() -> None:
    assert checks.known() == KNOWN
    assert all(checks.registry()[name].__module__ == "grader.rubric" for name in KNOWN)


def test_registry_is_a_copy() -> None:
    reg = checks.registry()
    reg.pop("loss")
    assert "loss" in checks.registry()


def test_registering_a_check_adds_it_to_known() -> None:
    name = "throwaway_check_for_test"
    assert name not in checks.known()

    def fn(ev: Evidence, points: float) -> CheckResult:
        return CheckResult(name, points, points, "ok")

    try:
        assert checks.check(name)(fn) is fn
        assert checks.known() == (*KNOWN, name)
        assert checks.registry()[name] is fn
        assert checks.check(name)(fn) is fn  # the same function again is no conflict
    finally:
        checks._REGISTRY.pop(name, None)
    assert checks.known() == KNOWN


def test_two_checks_of_one_name_are_refused() -> None:
    def other(ev: Evidence, points: float) -> CheckResult:
        raise AssertionError

    with pytest.raises(ValueError) as exc:
        checks.check("loss")(other)
    assert str(exc.value) == (
        "two checks are called 'loss': loss_check and "
        "test_two_checks_of_one_name_are_refused.<locals>.other"
    )
    assert checks.registry()["loss"] is rubric.loss_check


def test_run_checks_follows_the_rubric_order_and_points() -> None:
    ev = _ev()
    points = {"similarity": 3.0, "execution": 2.0, "hdf5": 0.0}
    results = checks.run_checks(ev, points)
    assert [(r.name, r.score, r.max_score) for r in results] == [
        ("similarity", 3.0, 3.0), ("execution", 2.0, 2.0), ("hdf5", 0.0, 0.0)]


def test_evidence_is_frozen() -> None:
    ev = _ev()
    with pytest.raises(FrozenInstanceError):
        ev.intake_problem = "x"  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# config: a rubric names exactly the registered checks
# --------------------------------------------------------------------------------------------


def _rubric(tmp_path: Path, old: str, new: str) -> Path:
    text = DEFAULT_RUBRIC.read_text()
    assert old in text
    path = tmp_path / "rubric.toml"
    path.write_text(text.replace(old, new))
    return path


def test_config_misspelt_check(tmp_path: Path) -> None:
    path = _rubric(tmp_path, "output_shape = 10", "output_shap = 10")
    with pytest.raises(ValueError) as exc:
        load_config(path)
    assert str(exc.value) == (
        f"rubric {path}: [points] output_shap is not a check; the known checks are: "
        "execution, dataset, output_shape, hdf5, export, loss, similarity, figure"
    )


def test_config_missing_check(tmp_path: Path) -> None:
    path = _rubric(tmp_path, "loss = 20", "")
    with pytest.raises(ValueError) as exc:
        load_config(path)
    assert str(exc.value) == (
        f"rubric {path}: [points] has no line for loss (0 turns a check off); the known checks are: {LISTED}"
    )


@pytest.mark.parametrize("value", ["-1", "true", '"ten"'])
def test_config_points_must_be_numbers(tmp_path: Path, value: str) -> None:
    path = _rubric(tmp_path, "loss = 20", f"loss = {value}")
    with pytest.raises(ValueError) as exc:
        load_config(path)
    shown = {"-1": "-1", "true": "True", '"ten"': "'ten'"}[value]
    assert str(exc.value) == f"rubric {path}: [points] loss = {shown}: points must be a number >= 0"


def test_config_default_rubric_points() -> None:
    config = load_config()
    assert config.points == {"execution": 10.0, "dataset": 15.0, "output_shape": 10.0, "hdf5": 20.0,
                             "export": 10.0, "loss": 20.0, "similarity": 15.0, "figure": 0.0}
    assert config.max_score == 100.0
    assert config.thresholds == Thresholds(1.10, 2.0, 0.90, 0.50)


# --------------------------------------------------------------------------------------------
# helpers: _linear, diagnose_shape, similarity_score
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, full, zero, want", [
    (10.0, 10.0, 0.0, 1.0), (0.0, 10.0, 0.0, 0.0), (5.0, 10.0, 0.0, 0.5), (2.5, 10.0, 0.0, 0.25),
    (20.0, 10.0, 0.0, 1.0), (-5.0, 10.0, 0.0, 0.0),  # clipped on both sides
    (4.0, 4.0, 8.0, 1.0), (8.0, 4.0, 8.0, 0.0), (7.0, 4.0, 8.0, 0.25), (9.0, 4.0, 8.0, 0.0), (1.0, 4.0, 8.0, 1.0),
    (3.0, 3.0, 3.0, 1.0), (3.5, 3.0, 3.0, 0.0), (2.5, 3.0, 3.0, 0.0),  # full == zero: a step
])
def test_linear(value: float, full: float, zero: float, want: float) -> None:
    got = _linear(value, full, zero)
    assert got == want and type(got) is float


@pytest.mark.parametrize("shape, allow_batch, message", [
    ([200, 600], False, None),
    ([1, 200, 600], False, None),
    ([1, 200, 600], True, None),
    ([1, 1, 200, 600], True, None),
    ([600, 200], False, "x is (600, 200): transposed, expected (200, 600) (neurons × time steps)"),
    ([1, 600, 200], True, "x is (1, 600, 200): transposed, expected (200, 600) (neurons × time steps)"),
    ([200, 2000], False, "x is (200, 2000): padded to 2000 time steps, expected 600 (the HW8 change)"),
    ([200, 601], False, "x is (200, 601): padded to 601 time steps, expected 600 (the HW8 change)"),
    ([200, 599], False, "x is (200, 599): truncated to 599 time steps, expected 600"),
    ([1, 200, 599], True, "x is (1, 200, 599): truncated to 599 time steps, expected 600"),
    ([128, 600], False, "x is (128, 600): 128 neurons, expected 200"),
    ([2, 200, 600], True, "x has shape (2, 200, 600), expected (200, 600)"),
    ([2, 1, 600], True, "x has shape (2, 1, 600), expected (200, 600)"),
    ([1, 600], True, "x is (1, 600): 1 neurons, expected 200"),
    ([1, 600], False, "x is (1, 600): 1 neurons, expected 200"),
    ([1, 1], False, "x is (1, 1): 1 neurons, expected 200"),
    ([120000], False, "x has shape (120000,), expected (200, 600)"),
    ([], False, "x has shape (), expected (200, 600)"),
    (None, False, "x: no tensor to check"),
    (None, True, "x: no tensor to check"),
])
def test_diagnose_shape(shape, allow_batch: bool, message: str | None) -> None:
    assert diagnose_shape("x", shape, allow_batch=allow_batch) == message


def test_diagnose_shape_keeps_the_callers_list() -> None:
    shape = [1, 200, 600]
    assert diagnose_shape("x", shape, allow_batch=True) is None
    assert shape == [1, 200, 600]


def test_similarity_score_clips_a_negative_correlation() -> None:
    assert similarity_score({"f1_0ms": 0.5, "f1_2ms": 0.75, "f1_5ms": 1.0, "correlation_5ms": 0.25}) == 0.625
    assert similarity_score({"f1_0ms": 1.0, "f1_2ms": 1.0, "f1_5ms": 1.0, "correlation_5ms": -0.5}) == 0.75
    assert similarity_score({"f1_0ms": 0.0, "f1_2ms": 0.0, "f1_5ms": 0.0, "correlation_5ms": 0.0}) == 0.0


# --------------------------------------------------------------------------------------------
# execution
# --------------------------------------------------------------------------------------------


def test_execution_completed() -> None:
    _same(_check("execution", _ev(), 10), 10, 10, "the notebook ran to the end in 12 s")


def test_execution_completed_without_budget() -> None:
    r = _check("execution", _ev(run=_run(budget_set=False, cell_s=99.6)), 10)
    _same(r, 10, 10, "the notebook ran to the end in 100 s; no cell is tagged `parameters`, so the grader could "
                     "not set the epoch budget: the notebook ran with its own")


CELL_4 = 'code cell 4 (In [4], "for epoch in range(epochs):")'


def test_execution_clipped_output() -> None:
    run = _run(clipped_output={'code cell 3 (In [3], "print(x)")': 250000, "code cell 7": 1234567})
    _same(_check("execution", _ev(run=run), 10), 10, 10,
          "the notebook ran to the end in 12 s"
          '; code cell 3 (In [3], "print(x)") printed 250,000 characters: its output is clipped in the executed '
          "notebook; code cell 7 printed 1,234,567 characters: its output is clipped in the executed notebook")


def test_execution_stopped() -> None:
    run = _run(completed=False, error=f"{CELL_4} raised ValueError at line 2 `f(x)`: boom",
               clipped_output={"code cell 2": 300000})
    r = _check("execution", _ev(run=run), 10)
    _same(r, 0.0, 10, f"the notebook stopped: {CELL_4} raised ValueError at line 2 `f(x)`: boom"
                      "; code cell 2 printed 300,000 characters: its output is clipped in the executed notebook")
    assert r.status == "failed"


def test_execution_intake_problem() -> None:
    run = _run(completed=False, error="the zip holds two notebooks")
    r = _check("execution", _ev(run=run, intake_problem="the zip holds two notebooks"), 10)
    _same(r, 0.0, 10, "nothing to run: the zip holds two notebooks")
    # an intake problem wins even over a run that says it completed
    _same(_check("execution", _ev(intake_problem="no notebook"), 7), 0.0, 7, "nothing to run: no notebook")


FIX = "Set epochs only in the cell tagged `parameters`: the grader sets it right after that cell"


def test_execution_budget_overridden_in_the_notebook() -> None:
    run = _run(epochs=20, budget_overrides=[CELL_4])
    r = _check("execution", _ev(run=run, learning_curve=[1.0] * 2000), 10)
    said = ("the notebook trained 2000 epochs (Trained/loss.txt), not the grader's budget of 20: "
            f"{CELL_4} sets `epochs` after the `parameters` cell. {FIX}")
    _same(r, 10, 10, f"the notebook ran to the end in 12 s; {said}")  # said, not scored
    assert r.flags == [f"budget overridden in the notebook (2000 epochs trained, budget 20; set in {CELL_4})"]
    # a literal range(2000) sets no variable: the curve alone says it
    r = _check("execution", _ev(run=_run(epochs=20), learning_curve=[1.0] * 21), 10)
    assert r.message == ("the notebook ran to the end in 12 s; the notebook trained 21 epochs (Trained/loss.txt), "
                         f"not the grader's budget of 20. {FIX}")
    # stopped (e.g. timed out by the longer training) before a curve was written: the source alone says it
    stopped = _run(completed=False, epochs=20, budget_overrides=[CELL_4], error=f"timed out: {CELL_4} ran past")
    r = _check("execution", _ev(run=stopped), 10)
    _same(r, 0.0, 10, f"the notebook stopped: timed out: {CELL_4} ran past; {CELL_4} sets `epochs` after the "
                      f"`parameters` cell, which overrides the grader's budget of 20 epochs. {FIX}")
    assert r.flags == [f"budget overridden in the notebook (budget 20; set in {CELL_4})"]
    r = _check("execution", _ev(run=_run(epochs=20), learning_curve=[1.0] * 21), 10)
    assert r.flags == ["budget overridden in the notebook (21 epochs trained, budget 20)"]


def test_a_run_far_longer_than_the_budgets_training_is_flagged_by_the_graders_clock() -> None:
    """globals()['epo' + 'chs'] = 2000 and a trimmed Trained/loss.txt: neither sign above sees it; the clock does."""
    cal = _cal(epochs=20)  # the accelerated reference trained 20 epochs in 1 s
    fast = _probe(accelerated=True)
    long = _run(epochs=20, cell_s=4.0 * 1.0 + 120.0 + 1)
    r = _check("execution", _ev(run=long, probe=fast, calibration=cal, learning_curve=[1.0] * 20), 10)
    _same(r, 10, 10, "the notebook ran to the end in 125 s")  # the student is told nothing: slow code is no offence
    assert r.flags == ["ran 125x as long as the reference's training at 20 epochs (125 s against 1 s, accelerated "
                       "both): more epochs than the budget?"]
    at_the_limit = _run(epochs=20, cell_s=4.0 * 1.0 + 120.0)
    assert _check("execution", _ev(run=at_the_limit, probe=fast, calibration=cal), 10).flags == []
    # not known to be accelerated, another budget's reference, or a run that stopped: no clock to compare with
    for ev in (_ev(run=long, probe=_probe(), calibration=cal), _ev(run=long, probe=_probe(accelerated="yes"), calibration=cal),
               _ev(run=long, probe=fast, calibration=_cal(epochs=2000)),
               _ev(run=_run(completed=False, epochs=20, cell_s=500.0, error="timed out"), probe=fast, calibration=cal)):
        assert _check("execution", ev, 10).flags == []


def test_execution_budget_kept() -> None:
    # assigned, but to what the grader set (the curve has the budget's length): nothing to say
    r = _check("execution", _ev(run=_run(epochs=20, budget_overrides=[CELL_4]), learning_curve=[1.0] * 20), 10)
    _same(r, 10, 10, "the notebook ran to the end in 12 s")
    assert r.flags == []
    # no `parameters` cell: the grader injected nothing, so nothing was overridden
    r = _check("execution", _ev(run=_run(epochs=20, budget_set=False), learning_curve=[1.0] * 2000), 10)
    assert "overrides" not in r.message and "trained" not in r.message and r.flags == []


# --------------------------------------------------------------------------------------------
# dataset
# --------------------------------------------------------------------------------------------

DATASET_OK = "input and target are (200, 600) and equal the HW8 spikes"


def test_dataset_full_points() -> None:
    r = _check("dataset", _ev(), 15)
    _same(r, 15, 15, DATASET_OK)
    assert r.status == "passed"


def test_dataset_with_a_batch_dimension() -> None:
    official = official_spikes()
    probe = _probe(official["input"][None], official["target"][None])
    assert probe.meta["input_shape"] == [1, 200, 600]
    _same(_check("dataset", _ev(probe=probe), 15), 15, 15, DATASET_OK)


def test_dataset_one_spike_flipped() -> None:
    flipped = official_spikes()["input"].copy()
    flipped[17, 300] = 1.0 - flipped[17, 300]
    _same(_check("dataset", _ev(probe=_probe(flipped)), 15), 0.0, 15,
          "the dataset's input has the right shape but differs from input_hw.bs1 in 1 entries "
          "(wrong file, or spikes binned differently)")


def test_dataset_target_differs() -> None:
    target = official_spikes()["target"].copy()
    target[0, :3] = 1.0 - target[0, :3]
    _same(_check("dataset", _ev(probe=_probe(target=target)), 15), 0.0, 15,
          "the dataset's target has the right shape but differs from output_hw.bs1 in 3 entries "
          "(wrong file, or spikes binned differently)")


def test_dataset_input_and_target_swapped() -> None:
    official = official_spikes()
    n = int(np.count_nonzero(official["input"] != official["target"]))
    assert n > 0
    _same(_check("dataset", _ev(probe=_probe(official["target"], official["input"])), 15), 0.0, 15,
          f"the dataset's input has the right shape but differs from input_hw.bs1 in {n} entries "
          "(wrong file, or spikes binned differently); "
          f"the dataset's target has the right shape but differs from output_hw.bs1 in {n} entries "
          "(wrong file, or spikes binned differently)")


def test_dataset_same_spikes_as_float64_pass() -> None:
    official = official_spikes()
    probe = _probe(official["input"].astype(np.float64), official["target"].astype(np.float64))
    _same(_check("dataset", _ev(probe=probe), 15), 15, 15, DATASET_OK)


@pytest.mark.parametrize("shape, what", [
    ((600, 200), "is (600, 200): transposed, expected (200, 600) (neurons × time steps)"),
    ((200, 2000), "is (200, 2000): padded to 2000 time steps, expected 600 (the HW8 change)"),
    ((200, 599), "is (200, 599): truncated to 599 time steps, expected 600"),
])
def test_dataset_wrong_shapes_are_named(shape: tuple[int, int], what: str) -> None:
    wrong = np.zeros(shape, dtype=np.float32)
    _same(_check("dataset", _ev(probe=_probe(wrong)), 15), 0.0, 15, f"the dataset's input {what}")
    _same(_check("dataset", _ev(probe=_probe(wrong, wrong)), 15), 0.0, 15,
          f"the dataset's input {what}; the dataset's target {what}")


def test_dataset_missing_arrays_and_shapes() -> None:
    probe = _probe()
    del probe.arrays["target"]
    _same(_check("dataset", _ev(probe=probe), 15), 0.0, 15, "the dataset's target could not be read back")
    target = official_spikes()["target"].copy()
    target[5, 5] = 1.0 - target[5, 5]
    probe = _probe(target=target)
    del probe.arrays["input"]
    _same(_check("dataset", _ev(probe=probe), 15), 0.0, 15,
          "the dataset's input could not be read back; the dataset's target has the right shape but differs "
          "from output_hw.bs1 in 1 entries (wrong file, or spikes binned differently)")
    probe = _probe()
    del probe.meta["input_shape"]
    _same(_check("dataset", _ev(probe=probe), 15), 0.0, 15, "the dataset's input: no tensor to check")


def test_dataset_probe_problem_and_error() -> None:
    probe = Probe(problem="the grader's probe left no results: the notebook did not run to its end "
                          "(see the execution check)")
    _same(_check("dataset", _ev(probe=probe), 15), 0.0, 15, probe.problem)
    probe = _probe(errors={"dataset": "training_set[0] raised IndexError: out of range",
                           "network": "net(input) raised RuntimeError: x"})
    _same(_check("dataset", _ev(probe=probe), 15), 0.0, 15, "training_set[0] raised IndexError: out of range")


# --------------------------------------------------------------------------------------------
# output_shape
# --------------------------------------------------------------------------------------------

OUTPUT_OK = "the network's output on the input is (200, 600)"


@pytest.mark.parametrize("shape", [[1, 200, 600], [200, 600], [1, 1, 200, 600]])
def test_output_shape_full_points(shape: list[int]) -> None:
    _same(_check("output_shape", _ev(probe=_probe(output_shape=shape)), 10), 10, 10, OUTPUT_OK)


@pytest.mark.parametrize("shape, message", [
    ([1, 600, 200], "the network's output is (1, 600, 200): transposed, expected (200, 600) (neurons × time steps)"),
    ([1, 200, 2000], "the network's output is (1, 200, 2000): padded to 2000 time steps, expected 600 "
                     "(the HW8 change)"),
    ([1, 256, 600], "the network's output is (1, 256, 600): 256 neurons, expected 200"),
    ([4, 200, 600], "the network's output has shape (4, 200, 600), expected (200, 600)"),
    (None, "the network's output: no tensor to check"),
])
def test_output_shape_wrong(shape, message: str) -> None:
    _same(_check("output_shape", _ev(probe=_probe(output_shape=shape)), 10), 0.0, 10, message)


def test_output_shape_probe_problem_and_error() -> None:
    _same(_check("output_shape", _ev(probe=Probe(problem="the probe's dump is malformed")), 10), 0.0, 10,
          "the probe's dump is malformed")
    probe = _probe(errors={"network": "no variable `net` (and no network module) in the notebook"})
    _same(_check("output_shape", _ev(probe=probe), 10), 0.0, 10,
          "no variable `net` (and no network module) in the notebook")
    probe = _probe(errors={"dataset": "no variable `training_set`"})
    _same(_check("output_shape", _ev(probe=probe), 10), 10, 10, OUTPUT_OK)


# --------------------------------------------------------------------------------------------
# hdf5 (the check; the structure validation itself is further down)
# --------------------------------------------------------------------------------------------


def test_hdf5_check() -> None:
    _same(_check("hdf5", _ev(), 20), 20, 20, "Trained/network.net has slayer's structure, 200 -> 256 -> 200")
    report = HDF5Report(exists=True, problems=["`layer/0/neuron` is missing", "`layer/1/weight` is missing"])
    _same(_check("hdf5", _ev(hdf5=report), 20), 0.0, 20,
          "`layer/0/neuron` is missing; `layer/1/weight` is missing")
    report = HDF5Report(exists=False, problems=["Trained/network.net is missing: export the best network there with net.export_hdf5"])
    _same(_check("hdf5", _ev(hdf5=report), 20), 0.0, 20,
          "Trained/network.net is missing: export the best network there with net.export_hdf5")


def test_hdf5_check_of_an_evaluable_deviation() -> None:
    """Another hidden size costs this check and says the rest was still scored."""
    report = HDF5Report(exists=True, evaluable=True, sizes=(200, 128, 200), problems=[HIDDEN_128])
    _same(_check("hdf5", _ev(hdf5=report), 20), 0.0, 20,
          HIDDEN_128 + "; the network was still evaluated: export, loss and similarity are scored on it")


HIDDEN_128 = ("Trained/network.net holds a 200 -> 128 -> 200 network, the homework's is 200 -> 256 -> 200: "
              "wrong hidden size (128 neurons, expected 256)")


def test_hdf5_report_ok() -> None:
    assert HDF5Report(exists=True).ok
    assert not HDF5Report(exists=False).ok
    assert not HDF5Report(exists=True, problems=["x"]).ok
    assert not HDF5Report(exists=True, problems=["x"], evaluable=True).ok


def test_hdf5_report_refuse() -> None:
    report = HDF5Report(exists=True, evaluable=True, problems=[HIDDEN_128])
    report.refuse("the exported network could not be run: ValueError: boom")
    assert (report.evaluable, report.problems, report.not_evaluable) == (
        False, [HIDDEN_128, "the exported network could not be run: ValueError: boom"],
        "the exported network could not be run: ValueError: boom")


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------

EXPORT_OK = "the exported network reproduces the notebook's output spike for spike"
SIMULATOR = "simulator disagrees with slayer on the exported file"
MISMATCH = "export does not reproduce the notebook's output"


def test_export_full_points() -> None:
    r = _check("export", _ev(), 10)
    _same(r, 10, 10, EXPORT_OK)
    assert r.flags == []


def test_export_simulator_disagrees_is_flagged_not_scored() -> None:
    r = _check("export", _ev(measurement=_measurement(simulator_matches=False)), 10)
    _same(r, 10, 10, EXPORT_OK)
    assert r.flags == [SIMULATOR]


def test_export_does_not_reproduce() -> None:
    why = "7 of 120000 output entries differ from the notebook's own output"
    r = _check("export", _ev(measurement=_measurement(kernel_mismatch=why)), 10)
    _same(r, 0.0, 10, why)
    assert r.flags == [MISMATCH]
    r = _check("export", _ev(measurement=_measurement(kernel_mismatch=why, simulator_matches=False)), 10)
    _same(r, 0.0, 10, why)
    assert r.flags == [SIMULATOR, MISMATCH]


UNTRAINED = ("Trained/network.net holds the untrained network's weights: export after training, from the best "
             "network (net.load_state_dict(torch.load('Trained/network.pt')), then net.export_hdf5)")


def test_export_of_the_untrained_network_says_so() -> None:
    why = ("Trained/network.net does not reproduce the notebook's output: 22746 of 120000 entries differ "
           "(notebook 9700 spikes, export 31000).")
    r = _check("export", _ev(measurement=_measurement(kernel_mismatch=why), weights_origin="untrained"), 10)
    _same(r, 0.0, 10, f"{UNTRAINED}. {why}")
    assert r.flags == [MISMATCH]
    for origin in ("reference", None):  # only the untrained weights get the hint
        _same(_check("export", _ev(measurement=_measurement(kernel_mismatch=why), weights_origin=origin), 10),
              0.0, 10, why)
    # an untrained export that does reproduce the notebook (it never trained): the loss check says it
    _same(_check("export", _ev(weights_origin="untrained"), 10), 10, 10, EXPORT_OK)


def test_export_no_kernel_output() -> None:
    probe = _probe()
    del probe.arrays["output"]
    r = _check("export", _ev(probe=probe), 10)
    _same(r, 0.0, 10, "the notebook's own output is unavailable, nothing to compare")
    assert r.flags == []
    r = _check("export", _ev(probe=probe, measurement=_measurement(simulator_matches=False)), 10)
    _same(r, 0.0, 10, "the notebook's own output is unavailable, nothing to compare")
    assert r.flags == [SIMULATOR]
    # a measurement that compared with the kernel's output needs no array in the probe
    r = _check("export", _ev(probe=probe, measurement=_measurement(kernel_mismatch="differs")), 10)
    _same(r, 0.0, 10, "differs")
    assert r.flags == [MISMATCH]


NOT_WRITTEN = "Trained/network.net is missing: export the best network there with net.export_hdf5"
WRONG_INPUT = "the network takes 100 inputs and the HW8 input has 200 neurons"
LIF = "`layer/1/neuron/type` is 'LIF': the grader rebuilds CUBA neurons only"
NOT_EVALUATED = {  # HDF5Report -> the end of each not-measured message
    "missing": (HDF5Report(exists=False, problems=[NOT_WRITTEN], not_evaluable=NOT_WRITTEN),
                f"the export was not evaluated because {NOT_WRITTEN}"),
    "input": (HDF5Report(exists=True, problems=["x"], not_evaluable=WRONG_INPUT),
              f"the export was not evaluated because {WRONG_INPUT}"),
    "neuron": (HDF5Report(exists=True, problems=["x"], not_evaluable=LIF),
               f"the export was not evaluated because {LIF}"),
    "no reason": (HDF5Report(exists=True, problems=["first", "second"]),
                  "the export was not evaluated because first"),
    "nothing known": (HDF5Report(exists=True), "the export was not evaluated because it could not be run"),
}


@pytest.mark.parametrize("case", NOT_EVALUATED)
def test_export_not_evaluable(case: str) -> None:
    report, why = NOT_EVALUATED[case]
    r = _check("export", _ev(measurement=None, hdf5=report), 10)
    _same(r, 0.0, 10, f"not compared with the notebook's output: {why}")
    assert r.flags == []


# --------------------------------------------------------------------------------------------
# loss: full up to cal.loss * loss_full, none from min(cal.loss * loss_zero, silent), linear between
# --------------------------------------------------------------------------------------------


def _loss(loss: float, cal: Calibration, points: float = 20, th: Thresholds | None = None) -> CheckResult:
    return _check("loss", _ev(measurement=_measurement(loss=loss), calibration=cal, thresholds=th or Thresholds()),
                  points)


# reference 40000: full points up to 44000; 2 x reference = 80000
TWICE_BELOW_SILENT = _cal(40000.0, 100000.0)  # zero at 2 x reference
SILENT_BELOW_TWICE = _cal(40000.0, 70000.0)  # zero at the silent loss


def _loss_message(loss: float, full: str, zero: str, epochs: int = 2000) -> str:
    return (f"SpikeTime loss of the exported network {loss:.1f} (reference at {epochs} epochs: 40000.0; "
            f"full points up to {full}, none from {zero})")


@pytest.mark.parametrize("loss, score", [
    (0.0, 20), (40000.0, 20), (44000.0, 20),  # at full_at exactly
    (44000.5, 20.0),  # just above: 20 * (1 - 0.5/36000) rounds to 20.0
    (44036.0, 19.98),  # 20 * (1 - 36/36000)
    (62000.0, 10.0),  # the midpoint
    (53000.0, 15.0), (71000.0, 5.0),
    (79999.0, 0.0), (79900.0, 0.06),
    (80000.0, 0.0),  # at zero_at
    (90000.0, 0.0), (120000.0, 0.0),
])
def test_loss_zero_at_twice_the_reference(loss: float, score: float) -> None:
    r = _loss(loss, TWICE_BELOW_SILENT)
    _same(r, score, 20, _loss_message(loss, "44000.0", "80000.0"))
    assert r.details == {"loss": loss, "reference_loss": 40000.0, "full_at": 44000.0, "zero_at": 80000.0}


@pytest.mark.parametrize("loss, score", [
    (44000.0, 20), (57000.0, 10.0), (50500.0, 15.0), (69740.0, 0.2), (70000.0, 0.0), (75000.0, 0.0),
    (80000.0, 0.0), (120000.0, 0.0),
])
def test_loss_zero_at_the_silent_loss(loss: float, score: float) -> None:
    r = _loss(loss, SILENT_BELOW_TWICE)
    _same(r, score, 20, _loss_message(loss, "44000.0", "70000.0"))
    assert r.details == {"loss": loss, "reference_loss": 40000.0, "full_at": 44000.0, "zero_at": 70000.0}


def test_loss_zero_is_the_lower_of_the_two() -> None:
    # 2 x reference = 80000 < silent 234000: a loss of 120000 earns nothing (not 12 of 20, as max() would give)
    cal = _cal(40000.0, 234000.0)
    _same(_loss(120000.0, cal), 0.0, 20, _loss_message(120000.0, "44000.0", "80000.0"))
    _same(_loss(62000.0, cal), 10.0, 20, _loss_message(62000.0, "44000.0", "80000.0"))


def test_loss_silent_below_full() -> None:
    # a reference barely better than silence: the silent loss is below full_at, no linear part
    cal = _cal(40000.0, 42000.0)
    for loss, score in ((44000.0, 20), (43000.0, 20), (44001.0, 0.0), (50000.0, 0.0)):
        r = _loss(loss, cal)
        _same(r, score, 20, _loss_message(loss, "44000.0", "42000.0"))
        assert r.details["zero_at"] == 42000.0


def test_loss_other_thresholds_and_points() -> None:
    th = Thresholds(loss_full=1.5, loss_zero=3.0)
    cal = _cal(40000.0, 1e6, epochs=50)
    # full at 60000, zero at 120000
    r = _loss(75000.0, cal, points=8, th=th)
    _same(r, 6.0, 8, _loss_message(75000.0, "60000.0", "120000.0", epochs=50))
    assert r.details == {"loss": 75000.0, "reference_loss": 40000.0, "full_at": 60000.0, "zero_at": 120000.0}
    _same(_loss(100000.0, cal, points=3, th=th), 1.0, 3, _loss_message(100000.0, "60000.0", "120000.0", epochs=50))


def test_loss_of_the_untrained_network_says_so() -> None:
    r = _check("loss", _ev(measurement=_measurement(loss=95000.0), calibration=TWICE_BELOW_SILENT,
                           weights_origin="untrained"), 20)
    _same(r, 0.0, 20, _loss_message(95000.0, "44000.0", "80000.0") + f"; {UNTRAINED}")
    _same(_check("loss", _ev(measurement=_measurement(loss=95000.0), calibration=TWICE_BELOW_SILENT,
                             weights_origin="reference"), 20), 0.0, 20, _loss_message(95000.0, "44000.0", "80000.0"))


def test_loss_rounds_to_two_decimals() -> None:
    # 20 * (80000 - 62345.678) / 36000 = 9.8079566...
    assert _loss(62345.678, TWICE_BELOW_SILENT).score == 9.81


@pytest.mark.parametrize("case", NOT_EVALUATED)
def test_loss_not_measured(case: str) -> None:
    report, why = NOT_EVALUATED[case]
    r = _check("loss", _ev(measurement=None, hdf5=report), 20)
    _same(r, 0.0, 20, f"the loss was not measured: {why}")
    assert r.details == {}


# --------------------------------------------------------------------------------------------
# similarity: full from 90 % of the reference's score, none below 50 %, linear between
# --------------------------------------------------------------------------------------------


def _sim(metrics: dict[str, float], points: float = 15, ref: dict | None = None,
         th: Thresholds | None = None) -> CheckResult:
    return _check("similarity", _ev(measurement=_measurement(metrics=metrics), calibration=_cal(metrics=ref),
                                    thresholds=th or Thresholds()), points)


def _sim_message(sim: float, ratio: str, ref: float, f1: tuple[float, float, float], corr: float,
                 full: str = "90%", zero: str = "50%") -> str:
    return (f"raster similarity {sim:.3f} = {ratio} of the reference's {ref:.3f} "
            f"(spike F1 ±0 ms {f1[0]:.3f}, ±2 ms {f1[1]:.3f}, ±5 ms {f1[2]:.3f}; smoothed correlation {corr:.3f}); "
            f"full points from {full}, none below {zero}")


@pytest.mark.parametrize("value, score, shown", [
    (1.0, 15, "100%"), (0.95, 15, "95%"),
    (0.9, 15, "90%"),  # exactly at full
    (0.7, 7.5, "70%"),  # the midpoint
    (0.8, 11.25, "80%"), (0.6, 3.75, "60%"),
    (0.5, 0.0, "50%"),  # exactly at zero
    (0.4, 0.0, "40%"), (0.0, 0.0, "0%"),
])
def test_similarity_range(value: float, score: float, shown: str) -> None:
    r = _sim(_metrics(value))
    _same(r, score, 15, _sim_message(value, shown, 1.0, (value,) * 3, value))
    assert r.details == {"similarity": value, "ratio": value}


def test_similarity_relative_to_the_reference() -> None:
    ref = {"f1_0ms": 0.25, "f1_2ms": 0.5, "f1_5ms": 0.75, "correlation_5ms": 0.5}  # score 0.5
    sub = {"f1_0ms": 0.125, "f1_2ms": 0.375, "f1_5ms": 0.5, "correlation_5ms": 0.4}  # score 0.35, ratio 0.7
    r = _sim(sub, ref=ref)
    assert r.details["similarity"] == pytest.approx(0.35, abs=1e-15)
    assert r.details["ratio"] == pytest.approx(0.7, abs=1e-15)
    _same(r, 7.5, 15, _sim_message(0.35, "70%", 0.5, (0.125, 0.375, 0.5), 0.4))


def test_similarity_better_than_the_reference() -> None:
    r = _sim(_metrics(0.8), ref=_metrics(0.4))
    _same(r, 15, 15, _sim_message(0.8, "200%", 0.4, (0.8,) * 3, 0.8))


def test_similarity_negative_correlation_counts_as_zero() -> None:
    m = {"f1_0ms": 1.0, "f1_2ms": 1.0, "f1_5ms": 1.0, "correlation_5ms": -0.5}
    r = _sim(m)
    _same(r, 9.38, 15, _sim_message(0.75, "75%", 1.0, (1.0, 1.0, 1.0), -0.5))


def test_similarity_reference_without_score() -> None:
    r = _sim(_metrics(0.6), ref=_metrics(0.0))
    _same(r, 0.0, 15, _sim_message(0.6, "0%", 0.0, (0.6,) * 3, 0.6))
    assert r.details == {"similarity": 0.6, "ratio": 0.0}


def test_similarity_other_thresholds() -> None:
    th = Thresholds(similarity_full=0.75, similarity_zero=0.25)
    r = _sim(_metrics(0.5), points=10, th=th)
    _same(r, 5.0, 10, _sim_message(0.5, "50%", 1.0, (0.5,) * 3, 0.5, full="75%", zero="25%"))


@pytest.mark.parametrize("case", NOT_EVALUATED)
def test_similarity_not_measured(case: str) -> None:
    report, why = NOT_EVALUATED[case]
    r = _check("similarity", _ev(measurement=None, hdf5=report), 15)
    _same(r, 0.0, 15, f"the similarity was not measured: {why}")
    assert r.details == {}


# --------------------------------------------------------------------------------------------
# HDF5 structure validation: artifacts.check_hdf5 on mutated copies of one real export
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    """solution.Network's export_hdf5 after one forward pass: slayer's own structure, 200 -> 256 -> 200."""
    import torch

    from solution import Network

    torch.manual_seed(0)
    net = Network()
    with torch.no_grad():
        net(torch.zeros(1, 200, 600))
    path = tmp_path_factory.mktemp("export") / "network.net"
    net.export_hdf5(str(path))
    return path


@pytest.fixture
def work(tmp_path: Path, exported: Path) -> Path:
    """A working directory holding a copy of the valid export at Trained/network.net."""
    (tmp_path / "Trained").mkdir()
    shutil.copyfile(exported, tmp_path / HDF5)
    return tmp_path


def _edit(work: Path):
    return h5py.File(work / HDF5, "r+")


def _report(work: Path, limits: Limits | None = None) -> HDF5Report:
    return check_hdf5(work, limits or Limits())


def _problems(work: Path, *problems: str, evaluable: bool = False, why: str | None = None) -> HDF5Report:
    """The report on work's export: exactly these problems; `why` it is not evaluable (default: the first)."""
    report = _report(work)
    assert report.problems == list(problems)
    assert report.exists
    assert report.ok is (not problems)
    assert report.evaluable is evaluable
    if evaluable:
        assert report.not_evaluable is None and report.weights_sha256 is not None
    else:
        assert report.weights_sha256 is None
        assert report.not_evaluable == (why or problems[0])
    return report


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with h5py.File(path, "r") as f:
        for name in ("0", "1"):
            h.update(np.ascontiguousarray(f["layer"][name]["weight"][()], dtype=np.float32).tobytes())
    return h.hexdigest()


def test_hdf5_valid_export(work: Path) -> None:
    report = _problems(work, evaluable=True)
    assert report.sizes == (200, 256, 200)
    assert report.weights_sha256 == _digest(work / HDF5)
    # the digest reads the weights: another network, another digest
    with _edit(work) as f:
        f["layer/1/weight"][0, 0] += 1.0
    assert _problems(work, evaluable=True).weights_sha256 not in (None, report.weights_sha256)


def test_hdf5_digest_reads_weights_as_float32(work: Path) -> None:
    digest = _report(work).weights_sha256
    with _edit(work) as f:
        w = f["layer/0/weight"][()]
        del f["layer/0/weight"]
        f["layer/0/weight"] = w.astype(np.float64)
    assert _problems(work, evaluable=True).weights_sha256 == digest


def test_hdf5_missing(tmp_path: Path) -> None:
    report = _report(tmp_path)
    assert (report.exists, report.problems, report.evaluable, report.ok, report.weights_sha256) == (
        False, ["Trained/network.net is missing: export the best network there with net.export_hdf5"], False, False, None)
    assert report.not_evaluable == "Trained/network.net is missing: export the best network there with net.export_hdf5"


def test_hdf5_through_a_symbolic_link_is_refused(tmp_path: Path, exported: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copyfile(exported, elsewhere / "network.net")
    (tmp_path / "work").mkdir()
    (tmp_path / "work" / "Trained").symlink_to(elsewhere)
    report = _report(tmp_path / "work")
    assert (report.exists, report.problems, report.evaluable, report.not_evaluable) == (
        False, ["Trained is a symbolic link: refused (the grader reads only files the notebook wrote)"], False,
        "Trained is a symbolic link: refused (the grader reads only files the notebook wrote)")
    (tmp_path / "work2" / "Trained").mkdir(parents=True)
    (tmp_path / "work2" / HDF5).symlink_to(elsewhere / "network.net")
    assert _report(tmp_path / "work2").problems == [
        "Trained/network.net is a symbolic link: refused (the grader reads only files the notebook wrote)"]


def test_hdf5_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / HDF5).mkdir(parents=True)
    report = _report(tmp_path)
    assert (report.exists, report.problems) == (False, ["Trained/network.net is not a regular file: refused"])


def test_hdf5_size_limit(work: Path) -> None:
    limit = 2**20
    size = (work / HDF5).stat().st_size
    assert size < limit
    with open(work / HDF5, "ab") as fh:  # HDF5 ignores bytes past its end of file
        fh.write(b"\0" * (limit - size))
    assert (work / HDF5).stat().st_size == limit
    assert _report(work, Limits(hdf5_max_mb=1)).problems == []  # exactly at the limit: read
    with open(work / HDF5, "ab") as fh:
        fh.write(b"\0" * (limit // 2))
    report = _report(work, Limits(hdf5_max_mb=1))
    assert (report.exists, report.problems, report.evaluable, report.not_evaluable) == (
        True, ["Trained/network.net is 1.5 MiB (limit 1 MiB): refused unread"], False,
        "Trained/network.net is 1.5 MiB (limit 1 MiB): refused unread")
    assert _report(work, Limits(hdf5_max_mb=2)).problems == []


def test_hdf5_not_an_hdf5_file(tmp_path: Path) -> None:
    (tmp_path / "Trained").mkdir()
    (tmp_path / HDF5).write_bytes(b"this is not HDF5\n" * 10)
    report = _report(tmp_path)
    assert report.exists and not report.evaluable and len(report.problems) == 1
    assert report.problems[0].startswith("Trained/network.net is not a readable HDF5 file (")
    assert report.not_evaluable == report.problems[0]
    assert "signature" in report.problems[0]


def test_hdf5_no_layer_group(work: Path) -> None:
    with _edit(work) as f:
        del f["layer"]
    _problems(work, "no group `layer` at the top of the file")
    with _edit(work) as f:
        f["layer"] = np.zeros(3)
    _problems(work, "no group `layer` at the top of the file")


def test_hdf5_one_layer_only(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1"]
    report = _problems(work, _architecture("200 -> 256", "wrong number of hidden layers (0, expected 1)",
                                           "wrong output size (256 neurons, expected 200)"),
                       why="the network has 256 outputs and the HW8 target has 200 neurons")
    assert report.sizes == (200, 256)


def test_hdf5_missing_layer(work: Path) -> None:
    with _edit(work) as f:
        f.copy("layer/1", "layer/2")
        del f["layer/1"]
    report = _problems(work, "group `layer/1` is missing")
    assert report.sizes is None


def test_hdf5_missing_first_layer_second_still_checked(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0"], f["layer/1/weight"]
    _problems(work, "group `layer/0` is missing", "`layer/1/weight` is missing")


def test_hdf5_layers_renamed(work: Path) -> None:
    with _edit(work) as f:
        f.move("layer/0", "layer/first")
    _problems(work, "group `layer/0` is missing",
              "extra entry `layer/first`: slayer's export names its layers `0`, `1`, ... only")


def test_hdf5_extra_layers_listed_in_order(work: Path) -> None:
    with _edit(work) as f:
        for name in ("10", "2", "b", "a"):
            f.copy("layer/1", f"layer/{name}")
    _problems(work, "groups `layer/3` to `layer/9` are missing",
              *(f"extra entry `layer/{name}`: slayer's export names its layers `0`, `1`, ... only" for name in "ab"),
              "`layer/1` has 200 outputs but `layer/2` takes 256 inputs")


def test_hdf5_layer_is_a_dataset(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0"]
        f["layer/0"] = np.zeros(3)
    _problems(work, "`layer/0` is a dataset, expected a group")


@pytest.mark.parametrize("key", ["type", "inFeatures", "outFeatures", "weight", "neuron"])
def test_hdf5_layer_key_missing(work: Path, key: str) -> None:
    with _edit(work) as f:
        del f[f"layer/1/{key}"]
    _problems(work, f"`layer/1/{key}` is missing")


def test_hdf5_layer_shape_missing_is_still_evaluable(work: Path) -> None:
    """The grader rebuilds a block from its weight and features; `shape` only costs the structure check."""
    with _edit(work) as f:
        del f["layer/1/shape"]
    _problems(work, "`layer/1/shape` is missing", evaluable=True)


@pytest.mark.parametrize("key", artifacts.NEURON_KEYS)
def test_hdf5_neuron_key_missing(work: Path, key: str) -> None:
    with _edit(work) as f:
        del f[f"layer/0/neuron/{key}"]
    _problems(work, f"`layer/0/neuron/{key}` is missing")


def test_hdf5_neuron_keys_are_slayers() -> None:
    assert artifacts.NEURON_KEYS == ("type", "iDecay", "vDecay", "vThMant", "refDelay", "gradedSpike")


def test_hdf5_neuron_is_a_dataset(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0/neuron"]
        f["layer/0/neuron"] = 1
        f["layer/1/type"][0] = b"conv"
    _problems(work, "`layer/0/neuron` is not a group", "`layer/1/type` is 'conv', expected 'dense'")


def test_hdf5_hidden_size_128(work: Path) -> None:
    rng = np.random.default_rng(0)
    with _edit(work) as f:
        for key, value in (("layer/0/outFeatures", 128), ("layer/1/inFeatures", 128)):
            f[key][()] = value
        f["layer/0/shape"][()] = [128]
        del f["layer/0/weight"], f["layer/1/weight"]
        f["layer/0/weight"] = rng.normal(size=(128, 200)).astype(np.float32)
        f["layer/1/weight"] = rng.normal(size=(200, 128)).astype(np.float32)
    report = _problems(work, HIDDEN_128, evaluable=True)
    assert report.sizes == (200, 128, 200)


def test_hdf5_transposed_weight(work: Path) -> None:
    with _edit(work) as f:
        w = f["layer/0/weight"][()]
        del f["layer/0/weight"]
        f["layer/0/weight"] = w.T
    _problems(work, "`layer/0/weight` has shape (200, 256) (transposed), expected (256, 200) = (out, in)")


def test_hdf5_weight_wrong_dtype(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1/weight"]
        f["layer/1/weight"] = np.zeros((200, 256), dtype=np.int32)
    _problems(work, "`layer/1/weight` has dtype int32, expected floating point")


def test_hdf5_weight_not_finite(work: Path) -> None:
    with _edit(work) as f:
        w = f["layer/0/weight"][()]
        w[0, :2] = np.nan
        w[3, 3] = np.inf
        f["layer/0/weight"][()] = w
    _problems(work, "`layer/0/weight` holds 3 NaN/inf values")


def test_hdf5_weight_is_a_group(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1/weight"]
        f.create_group("layer/1/weight")
    _problems(work, "`layer/1/weight` is not a dataset")


def test_hdf5_type_not_dense(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0/type"]
        f["layer/0/type"] = "conv"
    _problems(work, "`layer/0/type` is 'conv', expected 'dense'",
              why="`layer/0/type` is 'conv': the grader rebuilds dense blocks only")


def test_hdf5_type_as_scalar_string_is_read(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0/type"]
        f["layer/0/type"] = np.bytes_(b"dense")
    _problems(work, evaluable=True)


def test_hdf5_type_as_a_1x1_array_is_read(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0/type"], f["layer/1/outFeatures"]
        f["layer/0/type"] = np.array([[b"dense"]])
        f["layer/1/outFeatures"] = np.array([[200]])
    _problems(work, evaluable=True)


def test_hdf5_type_not_ascii(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0/type"], f["layer/1/neuron/type"]
        f["layer/0/type"] = np.bytes_(b"dens\xe9")
        f["layer/1/neuron/type"] = np.bytes_(b"\xffCUBA")
    _problems(work, "`layer/0/type` is 'dens\ufffd', expected 'dense'",
              "`layer/1/neuron/type` is '\ufffdCUBA', expected 'CUBA'",
              why="`layer/0/type` is 'dens\ufffd': the grader rebuilds dense blocks only")


def test_hdf5_features_as_text(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0/inFeatures"]
        f["layer/0/inFeatures"] = "200"
    _problems(work, "`layer/0/inFeatures` holds the text '200', expected an integer")


def test_hdf5_features_as_float(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1/outFeatures"]
        f["layer/1/outFeatures"] = 200.0
    _problems(work, "`layer/1/outFeatures` is 200.0, expected a positive integer")


def test_hdf5_features_as_one_element_array(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1/outFeatures"]
        f["layer/1/outFeatures"] = np.array([200], dtype=np.int32)
    _problems(work, evaluable=True)


def test_hdf5_features_as_array(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1/outFeatures"]
        f["layer/1/outFeatures"] = np.array([200, 200])
    _problems(work, "`layer/1/outFeatures` holds 2 values, expected one integer")


def test_hdf5_small_dataset_sizes(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0/shape"], f["layer/1/shape"]
        f["layer/0/shape"] = np.full(16, 256)  # 16 values: still read, and wrong
        f["layer/1/shape"] = np.full(17, 200)  # 17: refused unread
    _problems(work,
              "`layer/0/shape` is [256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 256, 256], "
              "expected [256] (outFeatures)",
              "`layer/1/shape` holds 17 values, expected one")


def test_hdf5_shape_as_a_scalar_is_accepted(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1/shape"]
        f["layer/1/shape"] = 200
    _problems(work, evaluable=True)


def test_hdf5_scalar_is_a_group(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0/inFeatures"], f["layer/0/neuron/vDecay"]
        f.create_group("layer/0/inFeatures")
        f.create_group("layer/0/neuron/vDecay")
    _problems(work, "`layer/0/inFeatures` is not a dataset", "`layer/0/neuron/vDecay` is not a dataset")


def test_hdf5_unsupported_object_type(work: Path) -> None:
    with _edit(work) as f:
        ref = f["layer/0/weight"].ref
        del f["layer/0/type"]
        f.create_dataset("layer/0/type", data=ref, dtype=h5py.ref_dtype)
    _problems(work, "`layer/0/type` has an unsupported type")


def test_hdf5_neuron_type_not_cuba(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1/neuron/type"]
        f["layer/1/neuron/type"] = "LIF"
    _problems(work, "`layer/1/neuron/type` is 'LIF', expected 'CUBA'", why=LIF)


def test_hdf5_neuron_type_checked_only_when_single(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1/neuron/type"]
        f["layer/1/neuron/type"] = np.array([b"CUBA", b"CUBA"])
    _problems(work, evaluable=True)
    with _edit(work) as f:
        del f["layer/1/neuron/type"]
        f["layer/1/neuron/type"] = np.array([b"LIF"])
    _problems(work, "`layer/1/neuron/type` is 'LIF', expected 'CUBA'", why=LIF)


def test_hdf5_neuron_type_too_big(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1/neuron/type"]
        f["layer/1/neuron/type"] = np.array([b"CUBA"] * 17)
    _problems(work, "`layer/1/neuron/type` holds 17 values, expected one")


@pytest.mark.parametrize("key", ["iDecay", "vDecay", "vThMant", "refDelay"])
def test_hdf5_neuron_parameter_not_a_number(work: Path, key: str) -> None:
    with _edit(work) as f:
        del f[f"layer/0/neuron/{key}"]
        f[f"layer/0/neuron/{key}"] = "4096"
    _problems(work, f"`layer/0/neuron/{key}` has dtype object, expected a number")


def test_hdf5_neuron_parameter_dtypes(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0/neuron/iDecay"], f["layer/0/neuron/vDecay"], f["layer/0/neuron/refDelay"]
        f["layer/0/neuron/iDecay"] = np.uint16(4096)  # unsigned: a number
        f["layer/0/neuron/vDecay"] = np.float32(410)  # float: a number
        f["layer/0/neuron/refDelay"] = np.array([b"1", b"1"])  # several values: not checked for a dtype
    _problems(work, evaluable=True)
    with _edit(work) as f:
        del f["layer/0/neuron/vThMant"]
        f["layer/0/neuron/vThMant"] = True
    _problems(work, "`layer/0/neuron/vThMant` has dtype bool, expected a number")


def test_hdf5_graded_spike_any_type(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1/neuron/gradedSpike"]
        f["layer/1/neuron/gradedSpike"] = "False"
    _problems(work, evaluable=True)


def test_hdf5_problems_of_both_layers_in_order(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0/neuron/refDelay"], f["layer/1/neuron"], f["layer/1/shape"]
        f["layer/0/inFeatures"][()] = 100
    _problems(work,
              "`layer/0/weight` has shape (256, 200), expected (256, 100) = (out, in)",
              "`layer/0/neuron/refDelay` is missing",
              "`layer/1/shape` is missing",
              "`layer/1/neuron` is missing",
              "Trained/network.net holds a 100 -> 256 -> 200 network, the homework's is 200 -> 256 -> 200: "
              "wrong input size (100 neurons, expected 200)")


# other architectures: any chain of dense CUBA blocks from 200 to 200 neurons is evaluated


def _export_of(work: Path, sizes: tuple[int, ...]) -> None:
    """slayer's own export of an untrained solution.Network with these layer sizes, at work/Trained/network.net."""
    import torch

    from solution import Network

    torch.manual_seed(0)
    net = Network(sizes)
    with torch.no_grad():
        net(torch.zeros(1, sizes[0], 20))
    net.export_hdf5(str(work / HDF5))


def _architecture(found: str, *differences: str) -> str:
    return (f"Trained/network.net holds a {found} network, the homework's is 200 -> 256 -> 200: "
            f"{', '.join(differences)}")


@pytest.mark.parametrize("sizes, differences", [
    ((200, 128, 200), ["wrong hidden size (128 neurons, expected 256)"]),
    ((200, 512, 200), ["wrong hidden size (512 neurons, expected 256)"]),
    ((200, 256, 128, 200), ["wrong number of hidden layers (2, expected 1)"]),
    ((200, 200), ["wrong number of hidden layers (0, expected 1)"]),
    ((200,) * 17, ["wrong number of hidden layers (15, expected 1)"]),  # 16 blocks: the most the grader reads
])
def test_hdf5_other_architectures_are_evaluable(work: Path, sizes: tuple[int, ...], differences: list[str]) -> None:
    _export_of(work, sizes)
    report = _problems(work, _architecture(" -> ".join(map(str, sizes)), *differences), evaluable=True)
    assert report.sizes == sizes
    assert report.weights_sha256 == hashlib.sha256(b"".join(
        np.ascontiguousarray(h5py.File(work / HDF5)[f"layer/{i}/weight"][()], dtype=np.float32).tobytes()
        for i in range(len(sizes) - 1))).hexdigest()


@pytest.mark.parametrize("sizes, differences, why", [
    ((100, 256, 200), ["wrong input size (100 neurons, expected 200)"],
     "the network takes 100 inputs and the HW8 input has 200 neurons"),
    ((200, 256, 100), ["wrong output size (100 neurons, expected 200)"],
     "the network has 100 outputs and the HW8 target has 200 neurons"),
    ((100, 128, 300), ["wrong input size (100 neurons, expected 200)", "wrong hidden size (128 neurons, expected 256)",
                       "wrong output size (300 neurons, expected 200)"],
     "the network takes 100 inputs and the HW8 input has 200 neurons"),
    ((200, 100), ["wrong number of hidden layers (0, expected 1)", "wrong output size (100 neurons, expected 200)"],
     "the network has 100 outputs and the HW8 target has 200 neurons"),
])
def test_hdf5_wrong_input_or_output_size_is_not_evaluable(work: Path, sizes, differences, why: str) -> None:
    _export_of(work, sizes)
    report = _problems(work, _architecture(" -> ".join(map(str, sizes)), *differences), why=why)
    assert report.sizes == sizes


def test_hdf5_more_than_16_layers_are_refused_unread(work: Path) -> None:
    with _edit(work) as f:
        f.copy("layer/1", "layer/16")
    _problems(work, "`layer` holds 17 layers: the grader evaluates at most 16")


def test_hdf5_no_layers(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0"], f["layer/1"]
    _problems(work, "`layer` holds no layers: slayer's export writes one group per block, `layer/0`, `layer/1`, ...")


def test_hdf5_layers_that_do_not_chain(work: Path) -> None:
    _export_of(work, (200, 256, 128, 200))
    with _edit(work) as f:
        del f["layer/2"]
        f.copy("layer/0", "layer/2")  # 200 -> 256 after a block of 128 outputs
    report = _problems(work, "`layer/1` has 128 outputs but `layer/2` takes 200 inputs")
    assert report.sizes is None


def test_hdf5_huge_weights_are_refused_unread(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/0/weight"]
        f["layer/0/outFeatures"][()] = 100_000
        f["layer/0/shape"][()] = [100_000]
        f["layer/0"].create_dataset("weight", shape=(100_000, 200), dtype="f4", chunks=(1000, 200))  # never written
        del f["layer/1/weight"]
        f["layer/1/inFeatures"][()] = 100_000
        f["layer/1"].create_dataset("weight", shape=(200, 100_000), dtype="f4", chunks=(200, 1000))
    _problems(work, "`layer/0/weight` holds 20000000 values, more than a 16 MiB export holds: refused unread",
              "`layer/1/weight` holds 20000000 values, more than a 16 MiB export holds: refused unread",
              _architecture("200 -> 100000 -> 200", "wrong hidden size (100000 neurons, expected 256)"))


def test_hdf5_weights_are_read_up_to_what_the_size_limit_holds(work: Path) -> None:
    """1 MiB holds 262144 float32 values: the first 200000 are read, the next 200000 are refused."""
    _export_of(work, (200, 1000, 200))
    with h5py.File(work / HDF5) as plain, h5py.File(work / "packed.net", "w") as packed:
        for i in "01":  # a new file: HDF5 does not give back the space of deleted datasets
            for key, item in plain[f"layer/{i}"].items():
                if key != "weight":
                    plain.copy(item, packed.require_group(f"layer/{i}"), name=key)
            shape = plain[f"layer/{i}/weight"].shape
            packed.create_dataset(f"layer/{i}/weight", data=np.zeros(shape, np.float32), compression="gzip")
    (work / "packed.net").replace(work / HDF5)
    assert (work / HDF5).stat().st_size < 2**20
    report = check_hdf5(work, Limits(hdf5_max_mb=1))
    assert report.problems == [
        "`layer/1/weight` holds 200000 values, more than a 1 MiB export holds: refused unread",
        _architecture("200 -> 1000 -> 200", "wrong hidden size (1000 neurons, expected 256)")]
    assert (report.evaluable, report.not_evaluable) == (False, report.problems[0])
    assert check_hdf5(work, Limits(hdf5_max_mb=2)).evaluable


# foreign storage: nothing outside the file is ever followed


def _foreign(*found: str) -> str:
    return (f"Trained/network.net refers outside itself ({'; '.join(found)}): refused, "
            "slayer's export holds plain data")


def test_hdf5_external_link(work: Path) -> None:
    with _edit(work) as f:
        del f["layer/1/weight"]
        f["layer/1/weight"] = h5py.ExternalLink("/elsewhere/other.net", "/layer/1/weight")
    _problems(work, _foreign("`layer/1/weight` is an external link"))


def test_hdf5_soft_links_at_most_three(work: Path) -> None:
    with _edit(work) as f:
        for name in ("a", "b", "c", "d"):
            f[f"link_{name}"] = h5py.SoftLink("/layer/0/weight")
    _problems(work, _foreign("`link_a` is a soft link", "`link_b` is a soft link", "`link_c` is a soft link"))


def test_hdf5_external_dataset(work: Path) -> None:
    (work / "raw.bin").write_bytes(np.zeros(256 * 200, dtype=np.float32).tobytes())
    with _edit(work) as f:
        del f["layer/0/weight"]
        f.create_dataset("layer/0/weight", shape=(256, 200), dtype=np.float32,
                         external=[(str(work / "raw.bin"), 0, h5py.h5f.UNLIMITED)])
    _problems(work, _foreign("`layer/0/weight` keeps its data in another file"))


def test_hdf5_virtual_dataset(work: Path) -> None:
    with _edit(work) as f:
        layout = h5py.VirtualLayout(shape=(200, 256), dtype=np.float32)
        layout[:] = h5py.VirtualSource(f["layer/1/weight"])
        del f["layer/0/neuron/vDecay"]
        f.create_virtual_dataset("layer/0/neuron/vDecay", h5py.VirtualLayout(shape=(), dtype=np.int64))
        f.create_virtual_dataset("extra", layout)
    _problems(work, _foreign("`extra` is a virtual dataset", "`layer/0/neuron/vDecay` is a virtual dataset"))


def test_hdf5_many_foreign_datasets_three_named(work: Path) -> None:
    with _edit(work) as f:
        for name in ("v1", "v2", "v3", "v4"):
            f.create_virtual_dataset(name, h5py.VirtualLayout(shape=(1,), dtype=np.int64))
    _problems(work, _foreign("`v1` is a virtual dataset", "`v2` is a virtual dataset", "`v3` is a virtual dataset"))


def test_hdf5_links_are_reported_before_datasets(work: Path) -> None:
    with _edit(work) as f:
        f.create_virtual_dataset("a_virtual", h5py.VirtualLayout(shape=(1,), dtype=np.int64))
        f["z_link"] = h5py.SoftLink("/layer")
    _problems(work, _foreign("`z_link` is a soft link"))


def test_hdf5_hard_links_are_fine(work: Path) -> None:
    with _edit(work) as f:
        f["copy_of_weight"] = f["layer/0/weight"]
    _problems(work, evaluable=True)


# --------------------------------------------------------------------------------------------
# own_file, the probe's dump and the learning curve (the rest of grader/artifacts.py)
# --------------------------------------------------------------------------------------------


def test_own_file(tmp_path: Path) -> None:
    (tmp_path / "Trained").mkdir()
    (tmp_path / "Trained" / "loss.txt").write_text("1\n")
    assert own_file(tmp_path, Path("Trained/loss.txt")) == (tmp_path / "Trained" / "loss.txt", None)
    assert own_file(tmp_path, Path("Trained/none.txt")) == (None, None)
    assert own_file(tmp_path, Path("Trained")) == (None, "Trained is not a regular file: refused")
    (tmp_path / "Trained" / "link.txt").symlink_to(tmp_path / "Trained" / "loss.txt")
    assert own_file(tmp_path, Path("Trained/link.txt")) == (
        None, "Trained/link.txt is a symbolic link: refused (the grader reads only files the notebook wrote)")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    assert own_file(tmp_path, Path("dangling/x")) == (
        None, "dangling is a symbolic link: refused (the grader reads only files the notebook wrote)")
    (tmp_path / "file").write_text("")
    assert own_file(tmp_path, Path("file/x")) == (None, "file/x cannot be read (Not a directory)")


def _write_probe(work: Path, meta, **arrays) -> None:
    (work / "_grader").mkdir(exist_ok=True)
    (work / "_grader" / "probe.json").write_text(json.dumps(meta))
    np.savez(work / "_grader" / "probe.npz", **arrays)


def test_read_probe(tmp_path: Path) -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    _write_probe(tmp_path, {"input_shape": [2, 3]}, input=a, target=a + 1, output=a + 2, extra=a)
    probe = read_probe(tmp_path, Limits())
    assert probe.problem is None
    assert probe.meta == {"input_shape": [2, 3], "errors": {}}
    assert sorted(probe.arrays) == ["input", "output", "target"]
    assert np.array_equal(probe.arrays["target"], a + 1) and np.array_equal(probe.arrays["output"], a + 2)
    _write_probe(tmp_path, {"errors": {"dataset": "boom"}}, input=a)
    probe = read_probe(tmp_path, Limits())
    assert probe.meta == {"errors": {"dataset": "boom"}} and list(probe.arrays) == ["input"]


def test_read_probe_missing(tmp_path: Path) -> None:
    missing = ("the grader's probe left no results: the notebook did not run to its end "
               "(see the execution check)")
    assert read_probe(tmp_path, Limits()) == Probe(problem=missing)
    _write_probe(tmp_path, {})
    (tmp_path / "_grader" / "probe.npz").unlink()
    assert read_probe(tmp_path, Limits()) == Probe(problem=missing)
    _write_probe(tmp_path, {})
    (tmp_path / "_grader" / "probe.json").unlink()
    assert read_probe(tmp_path, Limits()) == Probe(problem=missing)


@pytest.mark.parametrize("name", ["probe.json", "probe.npz"])
def test_read_probe_symbolic_link(tmp_path: Path, name: str) -> None:
    _write_probe(tmp_path, {}, input=np.zeros(2))
    target = tmp_path / "elsewhere"
    (tmp_path / "_grader" / name).rename(target)
    (tmp_path / "_grader" / name).symlink_to(target)
    assert read_probe(tmp_path, Limits()) == Probe(
        problem=f"the grader's probe results are unusable: _grader/{name} is a symbolic link: refused "
                "(the grader reads only files the notebook wrote)")


def test_read_probe_size_limits(tmp_path: Path) -> None:
    big = np.zeros(2**20 // 4 + 1, dtype=np.float32)  # just over 1 MiB once unpacked
    (tmp_path / "_grader").mkdir()
    (tmp_path / "_grader" / "probe.json").write_text("{}")
    np.savez_compressed(tmp_path / "_grader" / "probe.npz", input=big)
    assert read_probe(tmp_path, Limits(probe_max_mb=1)) == Probe(
        problem="the probe's dump unpacks to 1 MiB (limit 1 MiB): refused unread")
    assert read_probe(tmp_path, Limits(probe_max_mb=2)).problem is None
    np.savez(tmp_path / "_grader" / "probe.npz", input=big)  # stored: the file itself is too big
    assert read_probe(tmp_path, Limits(probe_max_mb=1)) == Probe(problem="the probe's dump exceeds 1 MiB")
    np.savez(tmp_path / "_grader" / "probe.npz", input=np.zeros(1))
    (tmp_path / "_grader" / "probe.json").write_text(" " * (2**20 + 1) + "{}")
    assert read_probe(tmp_path, Limits(probe_max_mb=1)) == Probe(problem="the probe's dump exceeds 1 MiB")


def test_read_probe_unpacked_size_in_the_message(tmp_path: Path) -> None:
    (tmp_path / "_grader").mkdir()
    (tmp_path / "_grader" / "probe.json").write_text("{}")
    np.savez_compressed(tmp_path / "_grader" / "probe.npz", input=np.zeros(3 * 2**20 // 8))  # 3 MiB + a header
    assert read_probe(tmp_path, Limits(probe_max_mb=1)) == Probe(
        problem="the probe's dump unpacks to 3 MiB (limit 1 MiB): refused unread")


def _npz_of_size(path: Path, size: int) -> None:
    """An uncompressed .npz of exactly `size` bytes on disk (its members unpack to a little less)."""
    n = size
    for _ in range(5):
        np.savez(path, input=np.zeros(n, dtype=np.uint8))
        n += size - path.stat().st_size
    assert path.stat().st_size == size


def test_read_probe_npz_exactly_at_the_limit(tmp_path: Path) -> None:
    (tmp_path / "_grader").mkdir()
    (tmp_path / "_grader" / "probe.json").write_text("{}")
    _npz_of_size(tmp_path / "_grader" / "probe.npz", 2**20)
    assert read_probe(tmp_path, Limits(probe_max_mb=1)).problem is None
    _npz_of_size(tmp_path / "_grader" / "probe.npz", 2**20 + 1)
    assert read_probe(tmp_path, Limits(probe_max_mb=1)) == Probe(problem="the probe's dump exceeds 1 MiB")


def test_read_probe_exactly_at_the_limits(tmp_path: Path) -> None:
    (tmp_path / "_grader").mkdir()
    (tmp_path / "_grader" / "probe.json").write_text(" " * (2**20 - 2) + "{}")
    np.savez(tmp_path / "_grader" / "probe.npz", input=np.zeros(1))
    assert read_probe(tmp_path, Limits(probe_max_mb=1)).problem is None
    # an .npz whose members unpack to exactly 1 MiB
    header = 128  # np.save's header for a small 1-d array
    np.savez_compressed(tmp_path / "_grader" / "probe.npz", input=np.zeros((2**20 - header) // 8))
    import zipfile

    with zipfile.ZipFile(tmp_path / "_grader" / "probe.npz") as zf:
        assert sum(i.file_size for i in zf.infolist()) == 2**20
    probe = read_probe(tmp_path, Limits(probe_max_mb=1))
    assert probe.problem is None and probe.arrays["input"].shape == ((2**20 - header) // 8,)


def test_read_probe_unreadable(tmp_path: Path) -> None:
    _write_probe(tmp_path, {}, input=np.zeros(2))
    (tmp_path / "_grader" / "probe.json").write_text("{not json")
    assert read_probe(tmp_path, Limits()) == Probe(
        problem="the probe's dump is unreadable: Expecting property name enclosed in double quotes: "
                "line 1 column 2 (char 1)")
    _write_probe(tmp_path, [1, 2], input=np.zeros(2))
    assert read_probe(tmp_path, Limits()) == Probe(problem="the probe's dump is malformed")
    _write_probe(tmp_path, {}, input=np.array([{"a": 1}], dtype=object))
    problem = read_probe(tmp_path, Limits()).problem
    assert problem.startswith("the probe's dump is unreadable: ") and "allow_pickle=False" in problem
    _write_probe(tmp_path, {})
    (tmp_path / "_grader" / "probe.npz").write_bytes(b"not a zip")
    assert read_probe(tmp_path, Limits()) == Probe(problem="the probe's dump is unreadable: File is not a zip file")


def test_read_learning_curve(tmp_path: Path) -> None:
    assert read_learning_curve(tmp_path) is None
    (tmp_path / "Trained").mkdir()
    path = tmp_path / "Trained" / "loss.txt"
    path.write_text("1.5\n# a comment\n   # indented 3.0\n\n2.5 0.1 extra\nfoo\nnan\ninf\n-inf\n1e3\n  4\n")
    assert read_learning_curve(tmp_path) == [1.5, 2.5, 1000.0, 4.0]
    path.write_text("# nothing\nfoo\n")
    assert read_learning_curve(tmp_path) is None
    path.write_text("")
    assert read_learning_curve(tmp_path) is None


def test_read_learning_curve_limits(tmp_path: Path) -> None:
    (tmp_path / "Trained").mkdir()
    path = tmp_path / "Trained" / "loss.txt"
    path.write_text("".join(f"{i}\n" for i in range(artifacts.MAX_CURVE_POINTS + 5)))
    curve = read_learning_curve(tmp_path)
    assert len(curve) == artifacts.MAX_CURVE_POINTS == 100_000 and curve[-1] == 99_999.0
    line = "1" + " " * 1022 + "\n"
    path.write_text(line * (8 * 1024))  # exactly 8 MiB: read
    assert path.stat().st_size == 8 * 2**20
    assert read_learning_curve(tmp_path) == [1.0] * (8 * 1024)
    path.write_text(line * (8 * 1024) + "2\n")  # over: ignored
    assert read_learning_curve(tmp_path) is None
    path.write_bytes(b"\xff1\n2\n")  # undecodable bytes are replaced, not fatal
    assert read_learning_curve(tmp_path) == [2.0]
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere.txt")
    (tmp_path / "elsewhere.txt").write_text("1\n")
    assert read_learning_curve(tmp_path) is None


# --- the probe's record is data: validated before any check sees it --------------------------------


def _malformed_probe(tmp_path: Path, meta, **arrays) -> Probe:
    _write_probe(tmp_path, meta, **arrays)
    return read_probe(tmp_path, Limits())


@pytest.mark.parametrize("value, why", [
    (5, "an int, expected a list of at most 8 integers"),
    ("(200, 600)", "a str, expected a list of at most 8 integers"),
    ([1] * 9, "a list of 9 entries, expected a list of at most 8 integers"),
    ([200, "600"], "a list holding something else than sizes, expected a list of non-negative integers"),
    ([200, -1], "a list holding something else than sizes, expected a list of non-negative integers"),
    ([200, True], "a list holding something else than sizes, expected a list of non-negative integers"),
    ([200, 10**40], "a list holding something else than sizes, expected a list of non-negative integers"),
])
def test_a_wrong_typed_shape_fails_its_check_not_the_grader(tmp_path: Path, value, why: str) -> None:
    probe = _malformed_probe(tmp_path, {"errors": {}, "input_shape": value, "target_shape": [200, 600],
                                        "output_shape": [1, 200, 600]})
    expected = malformed("input_shape", why)
    assert probe.problem is None and probe.meta["errors"] == {"dataset": expected}
    assert "input_shape" not in probe.meta
    assert _check("dataset", _ev(probe=probe), 10) == CheckResult("dataset", 0.0, 10, expected)
    assert _check("output_shape", _ev(probe=probe), 10).score == 10  # the network's evidence is sound


def test_malformed_errors_and_arrays_are_said_per_group(tmp_path: Path) -> None:
    probe = _malformed_probe(tmp_path, {"errors": ["boom"], "output_shape": [1, 200, 600]})
    said = malformed("errors", "a list, expected a mapping")
    assert probe.meta["errors"] == {"dataset": said, "network": said}
    assert _check("output_shape", _ev(probe=probe), 10) == CheckResult("output_shape", 0.0, 10, said)
    probe = _malformed_probe(tmp_path, {"errors": {"network": {"x": 1}, "dataset": "a" * 5000}})
    assert probe.meta["errors"]["network"] == malformed("errors.network", "a dict, expected a message")
    assert probe.meta["errors"]["dataset"] == "a" * PROBE_TEXT_MAX + " [...]"
    a = np.zeros((200, 600), dtype=np.float32)
    probe = _malformed_probe(tmp_path, {"input_shape": [200, 600], "target_shape": [600, 200],
                                        "output_shape": [1, 200, 600]},
                             input=np.array(["x"] * 4), target=a, output=np.zeros((1, 200, 600), dtype=complex))
    assert probe.arrays == {}
    assert probe.meta["errors"]["dataset"] == (
        malformed("input", "an array of dtype <U1 and 1 dimensions, expected numbers") + "; "
        + malformed("target", "an array of shape (200, 600) where the record says (600, 200)"))
    assert probe.meta["errors"]["network"] == malformed(
        "output", "an array of dtype complex128 and 3 dimensions, expected numbers")
    assert _check("dataset", _ev(probe=probe), 10).score == 0  # no reshape of a wrong-sized array, no exception


@pytest.mark.parametrize("value, kept", [(True, True), (False, False), ("true", False), (1, False), ([True], False)])
def test_the_accelerator_note_is_true_only_when_it_says_true(tmp_path: Path, value, kept: bool) -> None:
    probe = _malformed_probe(tmp_path, {"errors": {}, "accelerated": value})
    assert probe.meta["accelerated"] is kept and probe.meta["errors"] == {}


def test_kernel_strings_are_clipped_and_unknown_keys_dropped(tmp_path: Path) -> None:
    from grader import cpu_redirect

    source = "import os\n" * 2000  # what a kernel that read a file could try to echo
    probe = _malformed_probe(tmp_path, {"errors": {"network": source, "other": "x"}, "secret": source,
                                        "dataset_name": source, "network_name": 5,
                                        cpu_redirect.PROBE_KEY: "yes"})
    assert set(probe.meta) == {"errors", "dataset_name", "network_name", cpu_redirect.PROBE_KEY}
    assert probe.meta["errors"] == {"network": clip_text(source)}
    assert len(probe.meta["errors"]["network"]) == PROBE_TEXT_MAX + len(" [...]")
    assert "\n" not in probe.meta["errors"]["network"]
    assert probe.meta["network_name"] is None and len(probe.meta["dataset_name"]) == 80 + len(" [...]")
    assert probe.meta[cpu_redirect.PROBE_KEY] == [] and cpu_redirect.note(probe.meta) == ""
    assert _check("output_shape", _ev(probe=probe), 10).message == clip_text(source)
