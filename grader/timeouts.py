"""Time limits that follow the budget: a stuck notebook at a small budget is stopped in minutes.

The rubric's cell and total timeouts are ceilings. Below them the limit is a
generous multiple of what the reference solution needs at the same budget on
this machine (the larger of the calibration's training time and this
machine's own speed, measured by the fingerprint run), with a floor for
imports, kernel start and a slower but honest notebook.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from grader.calibration import Calibration
from grader.config import Limits


@dataclass(frozen=True)
class TimeLimits:
    cell_s: int
    total_s: int
    why: str  # where the numbers come from, for the student's message

    def describe(self) -> str:
        return f"{self.cell_s} s per cell, {self.total_s} s in all{self.why}"


def rubric_limits(limits: Limits) -> TimeLimits:
    return TimeLimits(limits.cell_timeout_s, limits.total_timeout_s, "")


def reference_seconds(cal: Calibration, epochs: int) -> float:
    """The reference's training time at `epochs` here: the calibration's, or this machine's speed if slower."""
    seconds = cal.train_wall_s if cal.epochs == epochs else cal.seconds_per_epoch * epochs
    try:
        from grader import fingerprint

        local = fingerprint.check().local
        seconds = max(seconds, local.seconds / max(local.epochs, 1) * epochs)
    except Exception:  # no fingerprint (no torch here?): the calibration's own figure stands
        pass
    return seconds


def for_budget(limits: Limits, cal: Calibration, epochs: int, reference_s: float | None = None) -> TimeLimits:
    """The rubric's limits, tightened to `timeout_factor` x the reference's time (at least `timeout_floor_s`)."""
    ref = reference_seconds(cal, epochs) if reference_s is None else reference_s
    scaled = max(limits.timeout_floor_s, math.ceil(round(limits.timeout_factor * ref, 6)))
    cell = min(limits.cell_timeout_s, scaled)
    total = min(limits.total_timeout_s, scaled + limits.timeout_floor_s)
    if (cell, total) == (limits.cell_timeout_s, limits.total_timeout_s):
        return rubric_limits(limits)
    return TimeLimits(cell, total, f": {limits.timeout_factor:g} x the reference's {ref:.0f} s at {epochs} epochs "
                                   f"on this machine, at least {limits.timeout_floor_s} s")


__all__ = ["TimeLimits", "for_budget", "reference_seconds", "rubric_limits"]
