"""Rebuild a slayer network from its exported HDF5 (``block.export_hdf5``) and run it.

Why: the grader scores the *exported* network, not the notebook's Python objects, so
the file must be turned back into the very computation slayer ran. The mapping below
makes the round trip bit-exact (tested in tests/test_evaluate.py):

* weight: the file holds ``quantize_8bit(w, descale=True)``, i.e. ``w * 64`` on the
  grid of even integers in [-256, 254]. The rebuilt synapse weight is ``stored / 64``;
  slayer's ``pre_hook_fx`` re-quantizes it on every forward pass, which is a no-op for
  such values (checked here: a file whose weights are off that grid is refused,
  because slayer would silently run different weights than the file states).
* neuron: ``cuba.neuron_params`` inverted: threshold = vThMant / 64,
  current_decay = iDecay / 4096, voltage_decay = vDecay / 4096. slayer multiplies
  the decays back by 4096 and rounds; the threshold ``int(vThMant/64 * 64) / 64``
  is again vThMant / 64. Every value is a dyadic rational, so no float rounding.
* the blocks keep slayer's default ``delay_shift=True`` (one step of delay per
  block), which the file does not record; see ``grader.evaluate.compare_to_kernel``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import lava.lib.dl.slayer as slayer

from grader.simulate import LayerSpec, read_layers

W_SCALE = 1 << 6  # slayer cuba.Neuron default `scale`: weights and vThMant are stored x64
P_SCALE = 1 << 12  # decays are stored x4096


class RebuiltNetwork(torch.nn.Module):
    """The chain of slayer cuba.Dense blocks described by the file."""

    def __init__(self, layers: list[LayerSpec]) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(_block(spec) for spec in layers)

    @property
    def in_features(self) -> int:
        return int(self.blocks[0].synapse.in_channels)

    def forward(self, spike: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            spike = block(spike)
        return spike


def _block(spec: LayerSpec) -> torch.nn.Module:
    params = {
        "threshold": spec.v_th_mant / W_SCALE,
        "current_decay": spec.i_decay / P_SCALE,
        "voltage_decay": spec.v_decay / P_SCALE,
        "requires_grad": False,
    }
    block = slayer.block.cuba.Dense(params, spec.in_features, spec.out_features)
    stored = torch.as_tensor(spec.weight, dtype=torch.float32)
    with torch.no_grad():
        block.synapse.weight.copy_((stored / W_SCALE).reshape(block.synapse.weight.shape))
        requantized = block.synapse.pre_hook_fx(block.synapse.weight, descale=True)
    if not torch.equal(requantized.reshape(stored.shape), stored):  # guards the mapping itself
        raise ValueError("stored weights do not survive slayer's re-quantization")
    if block.neuron.v_th_mant != spec.v_th_mant:
        raise ValueError(f"vThMant {spec.v_th_mant} does not round-trip through slayer's threshold")
    return block


def build_network(layers: list[LayerSpec]) -> torch.nn.Module:
    """slayer blocks for already-read layers, in eval mode, without gradients."""
    net = RebuiltNetwork(list(layers))
    net.requires_grad_(False)
    return net.eval()


def load_network(path: str | Path) -> torch.nn.Module:
    """Rebuild the exported network as slayer blocks (ValueError if it cannot be rebuilt)."""
    return build_network(read_layers(path))


def run_network(net: torch.nn.Module, input_spikes) -> np.ndarray:
    """Run `net` on a (neurons, T) or (batch, neurons, T) raster; float32 0/1 of the same rank."""
    x = torch.as_tensor(np.asarray(input_spikes), dtype=torch.float32)
    if x.ndim not in (2, 3):
        raise ValueError(f"expected (neurons, T) or (batch, neurons, T), found shape {tuple(x.shape)}")
    batched = x.ndim == 3
    if not batched:
        x = x.unsqueeze(0)
    n_in = getattr(net, "in_features", None)
    if n_in is not None and x.shape[1] != n_in:
        raise ValueError(f"the network takes {n_in} input neurons, the input has {x.shape[1]}")
    with torch.no_grad():
        out = net(x.contiguous()).cpu().numpy()
    return out if batched else out[0]
