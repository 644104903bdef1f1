"""Session-scoped fixtures shared by test files: the reference solution, briefly trained.

Import the fixtures into a test module (`from fixtures_train import trained, official_data`);
pytest then shares one training run across every module of the session.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

TRAIN_EPOCHS = 10  # ~3 s on one CPU thread: enough for weights well away from their init

torch.set_num_threads(1)


@dataclass(frozen=True)
class Trained:
    path: Path  # the exported network.net
    losses: list[float]  # per-epoch training losses (slayer's SpikeTime)
    network: torch.nn.Module  # the trained solution.Network, as the notebook holds it
    output: np.ndarray  # its own (200, 600) output on the official input: the "kernel output"


@dataclass(frozen=True)
class OfficialData:
    input: np.ndarray  # (200, 600) float32 0/1
    target: np.ndarray


@pytest.fixture(scope="session")
def official_data() -> OfficialData:
    from solution import load_spikes
    from solution.dataset import DATA_DIR

    return OfficialData(
        input=load_spikes(DATA_DIR / "input_hw.bs1").numpy(),
        target=load_spikes(DATA_DIR / "output_hw.bs1").numpy(),
    )


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory, official_data: OfficialData) -> Trained:
    from solution import train

    out_dir = tmp_path_factory.mktemp("trained")
    result = train(epochs=TRAIN_EPOCHS, seed=0, out_dir=out_dir)
    with torch.no_grad():
        output = result.network(torch.as_tensor(official_data.input)[None])[0].numpy()
    return Trained(path=out_dir / "network.net", losses=result.losses, network=result.network, output=output)


def write_network(path: Path, layers, **overrides) -> Path:
    """Write LayerSpecs as slayer's block.export_hdf5 does; overrides replace datasets,
    e.g. {"layer/0/neuron/type": "LIF"} (None deletes one), to make broken files."""
    import h5py

    with h5py.File(path, "w") as h:
        for i, spec in enumerate(layers):
            g = h.create_group(f"layer/{i}")
            g.create_dataset("type", (1,), "S10", [b"dense"])
            g.create_dataset("shape", data=np.array([spec.out_features]))
            g.create_dataset("inFeatures", data=spec.in_features)
            g.create_dataset("outFeatures", data=spec.out_features)
            g.create_dataset("weight", data=np.asarray(spec.weight, dtype=np.float32))
            neuron = {"type": "CUBA", "iDecay": spec.i_decay, "vDecay": spec.v_decay,
                      "vThMant": spec.v_th_mant, "refDelay": 1, "gradedSpike": False}
            for key, value in neuron.items():
                g.create_dataset(f"neuron/{key}", data=value)
        for key, value in overrides.items():
            if key in h:
                del h[key]
            if value is not None:
                h.create_dataset(key, data=value)
    return path
