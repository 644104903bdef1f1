"""The tutorial's CUBA network, 200 -> 256 -> 200."""

from __future__ import annotations

import h5py
import torch

import lava.lib.dl.slayer as slayer

from solution.homework import LAYERS, NEURON_PARAMS


class Network(torch.nn.Module):
    def __init__(self, layers: tuple[int, ...] = LAYERS) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(
            slayer.block.cuba.Dense(NEURON_PARAMS, n_in, n_out)
            for n_in, n_out in zip(layers[:-1], layers[1:])
        )

    def forward(self, spike: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            spike = block(spike)
        return spike

    def export_hdf5(self, filename: str) -> None:
        """Write slayer's HDF5 description; the network must have run once (neuron shape)."""
        with h5py.File(filename, "w") as h:
            layer = h.create_group("layer")
            for i, b in enumerate(self.blocks):
                b.export_hdf5(layer.create_group(f"{i}"))
