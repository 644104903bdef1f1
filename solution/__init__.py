"""Reference solution of HW8 problem 2: spike-to-spike regression with SLAYER.

Importable so that the grader, the calibration and the tests train exactly
what the solved notebook (solution/train.ipynb) trains.
"""

from solution.dataset import OxfordDataset, load_spikes
from solution.network import NEURON_PARAMS, Network
from solution.train import TrainResult, make_loss, seed_everything, train

__all__ = [
    "NEURON_PARAMS",
    "Network",
    "OxfordDataset",
    "TrainResult",
    "load_spikes",
    "make_loss",
    "seed_everything",
    "train",
]
