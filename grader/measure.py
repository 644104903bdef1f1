"""The grader's measurement of one exported file, as the plain dict the rubric scores.

Kept apart from evaluate.py (which knows slayer) so that calibration and
grading measure the reference and a submission by the very same call.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from grader.evaluate import compare_to_kernel, evaluate_hdf5
from grader.metrics import silent_loss


@lru_cache(maxsize=1)
def official_spikes() -> dict[str, np.ndarray]:
    """The HW8 input and target as (200, 600) float32 arrays, read once per process."""
    from solution.dataset import DATA_DIR, load_spikes

    return {
        "input": load_spikes(DATA_DIR / "input_hw.bs1").numpy().astype(np.float32),
        "target": load_spikes(DATA_DIR / "output_hw.bs1").numpy().astype(np.float32),
    }


def measure(path: Path, official: dict[str, np.ndarray], kernel_output: np.ndarray | None = None) -> dict[str, Any]:
    """Rebuild, run and score `path`; compare with the notebook's own output when given."""
    ev = evaluate_hdf5(path, official["input"], official["target"])
    return {
        "output": ev.output,
        "loss": float(ev.loss),
        "silent_loss": float(silent_loss(official["target"])),
        "metrics": {k: float(v) for k, v in ev.metrics.items()},
        "simulator_matches": bool(ev.simulator_matches),
        "simulator_error": ev.simulator_error,
        "kernel_mismatch": None if kernel_output is None else compare_to_kernel(ev, kernel_output),
        "seconds": float(ev.timing.get("total", 0.0)),
    }
