"""Training loop of the reference solution: the tutorial's Assistant loop, seeded."""

from __future__ import annotations

import contextlib
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader

import lava.lib.dl.slayer as slayer

from solution.dataset import DATA_DIR, OxfordDataset
from solution.network import Network

from solution.homework import LEARNING_RATE as LR
from solution.homework import WEIGHT_DECAY


def seed_everything(seed: int) -> None:
    """Seed every generator the run touches; on CPU this makes two runs identical."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_loss() -> torch.nn.Module:
    """The tutorial's loss. slayer sums (no 1/2T), so this is the number students watch."""
    return slayer.loss.SpikeTime(time_constant=2, filter_order=2)


@dataclass
class TrainResult:
    losses: list[float]
    best_loss: float
    final_loss: float
    wall_s: float
    seconds_per_epoch: float
    out_dir: Path
    accelerated: bool = False
    network: Network | None = field(default=None, repr=False)


def train(
    epochs: int = 2000,
    *,
    seed: int = 0,
    data_dir: str | Path = DATA_DIR,
    out_dir: str | Path = "Trained",
    device: str = "cpu",
    accelerator: contextlib.AbstractContextManager[bool] | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> TrainResult:
    """Train, checkpoint the best network (as the tutorial does) and export it to HDF5.

    Writes out_dir/network.pt, out_dir/network.net and out_dir/loss.txt.
    `accelerator`: a context manager that puts the grader's numerical mode in
    place while everything runs and yields whether its accelerator is active
    (the grader passes ``grader.exact.mode()``; the solution knows nothing of it).
    """
    out_dir = Path(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    # everything that computes runs inside the accelerator's block, as in a graded notebook, whose
    # preamble installs it first: the loss's filter is built by a sum too
    with accelerator or contextlib.nullcontext(False) as active:
        seed_everything(seed)
        net = Network().to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        training_set = OxfordDataset(data_dir)
        train_loader = DataLoader(dataset=training_set, batch_size=1)
        error = make_loss().to(device)
        stats = slayer.utils.LearningStats()
        assistant = slayer.utils.Assistant(net, error, optimizer, stats)

        start = time.perf_counter()
        for epoch in range(epochs):
            for input, target in train_loader:
                assistant.train(input.to(device), target.to(device))
            if stats.training.best_loss:
                torch.save(net.state_dict(), out_dir / "network.pt")
            stats.update()
            if progress is not None:
                progress(epoch, stats.training.loss_log[-1])
        wall = time.perf_counter() - start
        if not (out_dir / "network.pt").exists():  # epochs == 1: nothing was "best" yet
            torch.save(net.state_dict(), out_dir / "network.pt")
        stats.save(str(out_dir) + "/")
        net.load_state_dict(torch.load(out_dir / "network.pt"))
        with torch.no_grad():  # export needs one forward pass to set the neuron shape
            net(training_set[0][0].unsqueeze(0).to(device))
        net.export_hdf5(str(out_dir / "network.net"))

    losses = [float(x) for x in stats.training.loss_log]
    return TrainResult(
        losses=losses,
        best_loss=min(losses) if losses else float("nan"),
        final_loss=losses[-1] if losses else float("nan"),
        wall_s=wall,
        seconds_per_epoch=wall / max(epochs, 1),
        out_dir=out_dir,
        accelerated=bool(active),
        network=net,
    )
