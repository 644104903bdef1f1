"""Time limits that follow the budget: a generous multiple of the reference's own time, under the rubric's ceilings."""

from __future__ import annotations

from grader.calibration import Calibration
from grader.config import Limits, load_config
from grader.execute import CellRef, timeout_message
from grader.timeouts import TimeLimits, for_budget, rubric_limits

CAL = Calibration(epochs=100, seed=0, loss=1.0, silent_loss=2.0, metrics={}, train_wall_s=12.3,
                  seconds_per_epoch=0.123)


def test_a_small_budget_is_stopped_in_minutes() -> None:
    limits = load_config().limits  # 1800 s per cell, 3600 s in all; factor 10, floor 300 s
    assert for_budget(limits, CAL, 100, reference_s=12.3) == TimeLimits(
        300, 600, ": 10 x the reference's 12 s at 100 epochs on this machine, at least 300 s")
    assert for_budget(limits, CAL, 2000, reference_s=54.1) == TimeLimits(
        541, 841, ": 10 x the reference's 54 s at 2000 epochs on this machine, at least 300 s")


def test_the_rubric_s_limits_stay_the_ceiling() -> None:
    limits = Limits(cell_timeout_s=20, total_timeout_s=180)
    assert for_budget(limits, CAL, 100, reference_s=12.3) == rubric_limits(limits) == TimeLimits(20, 180, "")
    slow = for_budget(Limits(), CAL, 2000, reference_s=400.0)  # 4000 s > the ceilings
    assert (slow.cell_s, slow.total_s, slow.why) == (1800, 3600, "")


def test_the_reference_time_is_the_slower_of_the_calibration_and_this_machine(monkeypatch) -> None:
    from grader import fingerprint, timeouts

    class Local:
        seconds, epochs = 20.0, 100  # this machine: 0.2 s per epoch (an accelerator that stepped aside)

    class Verdict:
        local = Local()

    monkeypatch.setattr(fingerprint, "check", lambda: Verdict())
    assert timeouts.reference_seconds(CAL, 100) == 20.0
    assert timeouts.reference_seconds(CAL, 2000) == 400.0
    Local.seconds = 1.0  # a faster machine: the calibration's own time stands
    assert timeouts.reference_seconds(CAL, 100) == 12.3
    assert timeouts.reference_seconds(CAL, 50) == 0.123 * 50


def test_the_message_gives_the_limit_and_why() -> None:
    times = for_budget(load_config().limits, CAL, 100, reference_s=12.3)
    assert timeout_message(CellRef(None, 6, 4, 4, "while True:"), False, times) == (
        'timed out: code cell 4 (In [4], "while True:") ran past the per-cell limit (300 s per cell, 600 s in all: '
        "10 x the reference's 12 s at 100 epochs on this machine, at least 300 s)")
