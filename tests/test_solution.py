"""The reference solution: it learns, it is reproducible, and it exports slayer's HDF5."""

from __future__ import annotations

import h5py
import pytest

from solution import train


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
    return train(12, seed=0, out_dir=tmp_path_factory.mktemp("run") / "Trained")


def test_training_lowers_the_loss_below_the_untrained_loss(short_run) -> None:
    losses = short_run.losses
    assert len(losses) == 12
    assert short_run.best_loss < 0.5 * losses[0]  # measured here: 246143 -> ~100000
    assert short_run.final_loss < losses[0]


def test_two_seeded_runs_give_the_same_losses(short_run, tmp_path) -> None:
    again = train(12, seed=0, out_dir=tmp_path / "Trained")
    assert again.losses == short_run.losses
    other = train(3, seed=1, out_dir=tmp_path / "Other")
    assert other.losses[0] != short_run.losses[0]


def test_export_has_slayers_structure(short_run) -> None:
    with h5py.File(short_run.out_dir / "network.net", "r") as h:
        assert sorted(h["layer"].keys()) == ["0", "1"]
        for name, shape in (("0", (256, 200)), ("1", (200, 256))):
            layer = h["layer"][name]
            assert layer["type"][0] == b"dense"
            assert layer["weight"].shape == shape
            assert int(layer["inFeatures"][()]) == shape[1]
            assert int(layer["outFeatures"][()]) == shape[0]
            neuron = layer["neuron"]
            assert neuron["type"][()] == b"CUBA"
            assert int(neuron["iDecay"][()]) == 4096  # current_decay 1
            assert int(neuron["vDecay"][()]) == 410  # voltage_decay 0.1 * 4096
            assert int(neuron["vThMant"][()]) == 6  # threshold 0.1 * 64
    assert (short_run.out_dir / "network.pt").exists()
    assert (short_run.out_dir / "loss.txt").exists()
