"""Reference solution of HW8 problem 2: spike-to-spike regression with SLAYER.

Importable so that the grader, the calibration and the tests train exactly
what the solved notebook (solution/train.ipynb) trains.

The kit's numerical mode is pinned first, before anything loads torch (see
``solution/numerics.py``); the public names load lazily, so
``solution.numerics`` and ``solution.homework`` import without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from solution import numerics as _numerics

_numerics.pin()

_EXPORTS = {
    "NEURON_PARAMS": "solution.network",
    "Network": "solution.network",
    "OxfordDataset": "solution.dataset",
    "load_spikes": "solution.dataset",
    "TrainResult": "solution.training",
    "make_loss": "solution.training",
    "seed_everything": "solution.training",
    "train": "solution.training",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'solution' has no attribute {name!r}")


__all__ = sorted(_EXPORTS)
