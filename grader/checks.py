"""The registry of checks: what the rubric's [points] may name, and how grade.py runs them.

nbgrader's list of single-purpose preprocessors is the model: a check is one
function ``(evidence, points) -> CheckResult``, registered by name with
``@check("name")``; ``load_config`` refuses a rubric whose [points] names a
check that does not exist, or leaves one out. Adding a check is one function
in ``rubric.py`` and one line in ``rubric.toml`` (see ARCHITECTURE.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # the registry itself stays light: config.py imports it
    import numpy as np

    from grader.artifacts import HDF5Report, Probe
    from grader.calibration import Calibration
    from grader.config import Thresholds
    from grader.execute import Execution
    from grader.measure import Measurement
    from grader.results import CheckResult


@dataclass(frozen=True)
class Evidence:
    """Everything a check may look at, gathered once per submission by grade.py."""

    run: "Execution"
    intake_problem: str | None  # why the submission could not even be run, or None
    probe: "Probe"  # shapes and the notebook's own output, recorded in the kernel (never scored)
    hdf5: "HDF5Report"  # the structure of Trained/network.net
    measurement: "Measurement | None"  # measured by the grader, None when not evaluable
    official: "dict[str, np.ndarray]"  # the HW8 input and target
    calibration: "Calibration"  # the reference at the same budget and seed
    thresholds: "Thresholds"
    # "reference" or "untrained" when the exported weights are exactly those (calibration.weights_origin)
    weights_origin: str | None = None
    learning_curve: "list[float] | None" = None  # Trained/loss.txt as the notebook wrote it (never scored)


Check = Callable[[Evidence, float], "CheckResult"]
_REGISTRY: dict[str, Check] = {}


def check(name: str) -> Callable[[Check], Check]:
    """Register the decorated function as the check called `name` (in rubric order of definition)."""
    def register(fn: Check) -> Check:
        if name in _REGISTRY and _REGISTRY[name] is not fn:
            raise ValueError(f"two checks are called {name!r}: {_REGISTRY[name].__qualname__} and {fn.__qualname__}")
        _REGISTRY[name] = fn
        return fn
    return register


def registry() -> dict[str, Check]:
    """Every known check by name (importing grader.rubric registers the kit's own)."""
    import grader.rubric  # noqa: F401

    return dict(_REGISTRY)


def known() -> tuple[str, ...]:
    return tuple(registry())


def run_checks(evidence: Evidence, points: dict[str, float]) -> list["CheckResult"]:
    """Each check of the rubric, in the rubric's order, on the same evidence."""
    checks = registry()
    return [checks[name](evidence, pts) for name, pts in points.items()]


__all__ = ["Check", "Evidence", "check", "known", "registry", "run_checks"]
