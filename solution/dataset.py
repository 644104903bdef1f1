"""The HW8 dataset: one (input, target) pair of (200, 600) spike tensors."""

from __future__ import annotations

from pathlib import Path

import torch
from torch.utils.data import Dataset

import lava.lib.dl.slayer as slayer

from solution.homework import INPUT_FILE, NEURONS, STEPS, TARGET_FILE

DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def load_spikes(path: str | Path, steps: int = STEPS, neurons: int = NEURONS) -> torch.Tensor:
    """Read a .bs1 file into a (neurons, steps) float tensor, as the tutorial does."""
    event = slayer.io.read_1d_spikes(str(path))
    event.t = event.t.astype(int)
    return event.fill_tensor(torch.zeros(1, 1, neurons, steps)).squeeze()


class OxfordDataset(Dataset):
    """The tutorial's OxfordDataset with the HW8 changes (input_hw/output_hw, 600 steps)."""

    def __init__(self, folder: str | Path = DATA_DIR, steps: int = STEPS) -> None:
        super().__init__()
        folder = Path(folder)
        self.input = slayer.io.read_1d_spikes(str(folder / INPUT_FILE))
        self.target = slayer.io.read_1d_spikes(str(folder / TARGET_FILE))
        self.target.t = self.target.t.astype(int)
        self.steps = steps

    def __getitem__(self, _: int) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, 1, NEURONS, self.steps)
        return (
            self.input.fill_tensor(torch.zeros(*shape)).squeeze(),
            self.target.fill_tensor(torch.zeros(*shape)).squeeze(),
        )

    def __len__(self) -> int:
        return 1
