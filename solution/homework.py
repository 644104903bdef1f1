"""HW8 problem 2, as the kit relies on it: every fact of the homework in one place.

The course hands out lava-dl's "Spike to Spike Regression: Oxford" tutorial
with two changes: read ``input_hw.bs1`` / ``output_hw.bs1`` instead of the
tutorial's files, into tensors of size (200, 600) instead of (200, 2000).
Students build part 2 (dataset, CUBA network 200 -> 256 -> 200, SpikeTime
loss, the Assistant training loop) and part 3 (export the best network to
HDF5, plot output against target).

The solution, the grader, the template generator and the samples read these
names; nothing else spells them. Stdlib only: importable without torch.
"""

from __future__ import annotations

from pathlib import PurePosixPath

# --- the data ------------------------------------------------------------------------------
INPUT_FILE = "input_hw.bs1"  # the HW8 change: not the tutorial's input.bs1
TARGET_FILE = "output_hw.bs1"  # ... nor its output.bs1
DATA_FILES = (INPUT_FILE, TARGET_FILE)
NEURONS = 200  # rows of both tensors
STEPS = 600  # time steps (1 ms bins): the HW8 change from the tutorial's 2000
SHAPE = (NEURONS, STEPS)
TUTORIAL_STEPS = 2000  # the tutorial's own length, a mistake the grader names

# --- the network ---------------------------------------------------------------------------
LAYERS = (NEURONS, 256, NEURONS)  # slayer.block.cuba.Dense 200 -> 256 -> 200
NEURON_TYPE = "CUBA"  # what slayer's export_hdf5 writes as neuron/type
NEURON_PARAMS = {  # the tutorial's neuron_params
    "threshold": 0.1,
    "current_decay": 1,
    "voltage_decay": 0.1,
    "requires_grad": True,
}

# --- the loss and training -----------------------------------------------------------------
LOSS_PARAMS = {"time_constant": 2, "filter_order": 2}  # SpikeTime's FIR filter, as in the tutorial
LOSS = "slayer.loss.SpikeTime({})".format(", ".join(f"{k}={v}" for k, v in LOSS_PARAMS.items()))  # a sum, no 1/2T
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-5
COURSE_EPOCHS = 2000  # the tutorial's budget, the one the course grades at

# --- what the notebook leaves and names ----------------------------------------------------
TRAINED_FOLDER = "Trained"
NETWORK_HDF5 = PurePosixPath(TRAINED_FOLDER) / "network.net"  # export_hdf5: what the grader reads
NETWORK_STATE = PurePosixPath(TRAINED_FOLDER) / "network.pt"  # the best checkpoint (state_dict)
LOSS_LOG = PurePosixPath(TRAINED_FOLDER) / "loss.txt"  # stats.save: the learning curve
DATASET_VARIABLE = "training_set"  # the handout's names, which the grader's probe looks for
NETWORK_VARIABLE = "net"
FOLDER_VARIABLE = "trained_folder"
NOTEBOOK = "train.ipynb"
PARAMETERS_TAG = "parameters"  # the cell whose `epochs` the grader overrides (papermill's tag)
BUDGET_VARIABLE = "epochs"
# The handout's names a notebook keeps (the probe looks for the first two; the checks are called with them)
HANDOUT_NAMES = (DATASET_VARIABLE, NETWORK_VARIABLE, "error", "optimizer", "stats", "assistant",
                 FOLDER_VARIABLE, BUDGET_VARIABLE, "train_loader")
OUTPUT_FILES = (NETWORK_STATE, NETWORK_HDF5, LOSS_LOG)  # what the notebook must write, in the order it does

__all__ = [name for name in dir() if name.isupper()]
