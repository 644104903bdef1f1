"""Sample submissions, derived from the solved notebook by small, checked edits.

Each sample is one typical student mistake. Deriving them (instead of
committing copies) keeps them in step with the solution: an edit whose
anchor text has disappeared raises instead of silently producing a correct
notebook.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import nbformat

from grader.assign import ASSIGNMENT as TEMPLATE_NB
from grader.assign import SOLUTION as SOLUTION_NB

EXPORT = "net.export_hdf5(trained_folder + '/network.net')"
TARGET = "self.target.fill_tensor(torch.zeros(1, 1, 200, 600)).squeeze(),"
INPUT = "self.input.fill_tensor(torch.zeros(1, 1, 200, 600)).squeeze(),"
ILLUSTRATION = "output = net(input.unsqueeze(dim=0).to(device))[0]"


@dataclass(frozen=True)
class Mutation:
    description: str
    edits: tuple[tuple[str, str], ...]  # (anchor, replacement), applied in the first cell holding the anchor


MUTATIONS: dict[str, Mutation] = {
    "wrong_hidden": Mutation(
        "hidden layer of 128 neurons instead of 256",
        (("Dense(neuron_params, 200, 256)", "Dense(neuron_params, 200, 128)"),
         ("Dense(neuron_params, 256, 200)", "Dense(neuron_params, 128, 200)")),
    ),
    "transposed_target": Mutation(
        "the dataset returns the target transposed, (600, 200)",
        ((TARGET, TARGET.replace(".squeeze(),", ".squeeze().T,")),),
    ),
    "long_tensors": Mutation(
        "the tutorial's (200, 2000) tensors instead of the HW8 (200, 600)",
        ((INPUT, INPUT.replace("600", "2000")), (TARGET, TARGET.replace("600", "2000"))),
    ),
    "missing_group": Mutation(
        "the exported HDF5 lacks layer/1/neuron",
        ((EXPORT, EXPORT + "\nwith h5py.File(trained_folder + '/network.net', 'a') as h:\n"
                           "    del h['layer/1/neuron']"),),
    ),
    "export_before_training": Mutation(
        "the network is exported before training",
        ((EXPORT, "pass  # exported before training instead"),
         (ILLUSTRATION, ILLUSTRATION + "\n" + EXPORT)),
    ),
    "raises_halfway": Mutation(
        "the training cell raises before training",
        (("for epoch in range(epochs):", "raise RuntimeError('training loop not finished yet')\n"
                                         "for epoch in range(epochs):"),),
    ),
}

DEFAULT_SAMPLES = ("reference", "template", "wrong_hidden", "transposed_target", "export_before_training")


def mutate(nb: nbformat.NotebookNode, mutation: Mutation) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(nb)
    for anchor, replacement in mutation.edits:
        cell = next((c for c in nb.cells if c.cell_type == "code" and anchor in c.source), None)
        if cell is None:
            raise LookupError(f"sample edit anchor not found in the solved notebook: {anchor!r}")
        cell.source = cell.source.replace(anchor, replacement, 1)
    return nb


def make_sample(name: str) -> nbformat.NotebookNode:
    """The notebook of sample `name`: 'reference', 'template' or a key of MUTATIONS."""
    if name == "template":
        return nbformat.read(TEMPLATE_NB, as_version=4)
    solved = nbformat.read(SOLUTION_NB, as_version=4)
    if name == "reference":
        return solved
    return mutate(solved, MUTATIONS[name])


def write_samples(dest: Path, names: tuple[str, ...] = DEFAULT_SAMPLES) -> Path:
    """Write each sample as dest/<name>/train.ipynb (a folder of submissions); returns dest."""
    if dest.exists():
        shutil.rmtree(dest)
    for name in names:
        folder = dest / name
        folder.mkdir(parents=True)
        nbformat.write(make_sample(name), folder / "train.ipynb")
    return dest
