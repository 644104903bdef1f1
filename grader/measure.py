"""The grader's measurement of one exported file: one typed object, serialised once.

Kept apart from evaluate.py (which knows slayer) so that calibration and
grading measure the reference and a submission by the very same call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from grader.metrics import silent_loss


@lru_cache(maxsize=1)
def official_spikes() -> dict[str, np.ndarray]:
    """The HW8 input and target as (200, 600) float32 arrays, read once per process."""
    from solution.dataset import DATA_DIR, load_spikes
    from solution.homework import INPUT_FILE, TARGET_FILE

    return {
        "input": load_spikes(DATA_DIR / INPUT_FILE).numpy().astype(np.float32),
        "target": load_spikes(DATA_DIR / TARGET_FILE).numpy().astype(np.float32),
    }


@dataclass(frozen=True)
class Measurement:
    """What the grader measured on an exported network, in its own process.

    ``loss`` is slayer's SpikeTime (a sum: the number students watch, and the
    one scored); ``metrics`` are grader.metrics' figures, whose own numpy
    SpikeTime is called ``loss_numpy`` so that every figure has one name.
    """

    loss: float
    silent_loss: float
    metrics: dict[str, float]
    simulator_matches: bool
    simulator_error: str | None = None
    kernel_mismatch: str | None = None  # why the file does not reproduce the notebook's output, or None
    seconds: float = 0.0
    output: np.ndarray | None = field(default=None, repr=False, compare=False)

    def figures(self) -> dict[str, Any]:
        """The JSON form results.json keeps (the output raster stays out)."""
        return {"loss": self.loss, "silent_loss": self.silent_loss, **self.metrics,
                "simulator_matches": self.simulator_matches, "evaluate_s": self.seconds}


def measure(path: Path, official: dict[str, np.ndarray], kernel_output: np.ndarray | None = None) -> Measurement:
    """Rebuild, run and score `path`; compare with the notebook's own output when given."""
    # slayer (and torch) load here, not when the module does: a grading worker imports this
    # module at start, and its first kernel need not wait the 4 s they take.
    from grader.evaluate import compare_to_kernel, evaluate_hdf5

    ev = evaluate_hdf5(path, official["input"], official["target"])
    metrics = {("loss_numpy" if k == "loss" else k): float(v) for k, v in ev.metrics.items()}
    metrics.pop("silent_loss", None)  # one name: Measurement.silent_loss
    return Measurement(
        loss=float(ev.loss),
        silent_loss=float(silent_loss(official["target"])),
        metrics=metrics,
        simulator_matches=bool(ev.simulator_matches),
        simulator_error=ev.simulator_error,
        kernel_mismatch=None if kernel_output is None else compare_to_kernel(ev, kernel_output),
        seconds=float(ev.timing.get("total", 0.0)),
        output=ev.output,
    )
