"""grader.simulate (numpy fixed point) against stock slayer, bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fixtures_train import official_data, trained, write_network  # noqa: F401 (fixtures)
from grader.rebuild import build_network, run_network
from grader.simulate import LayerSpec, rstz, simulate, simulate_file

torch.set_num_threads(1)


def slayer_output(layers, x: np.ndarray) -> np.ndarray:
    return run_network(build_network(layers), x)


def random_layers(rng: np.random.Generator, sizes, w_max: int, i_decay, v_decay, v_th) -> list[LayerSpec]:
    layers = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        weight = np.clip(2 * rng.integers(-w_max // 2, w_max // 2 + 1, size=(n_out, n_in)), -256, 254)
        layers.append(LayerSpec(weight.astype(float), i_decay, v_decay, v_th))
    return layers


def test_rstz_rounds_toward_zero():
    x = np.array([0, 1, 4095, 4096, 4097, 8191, -1, -4095, -4096, -4097, -8191], dtype=np.int64)
    assert rstz(x).tolist() == [0, 0, 0, 1, 1, 1, 0, 0, -1, -1, -1]


@pytest.mark.parametrize("v_th", [1, 2, 3])
def test_threshold_is_strict_and_output_is_delayed(v_th):
    # no memory (both decays 4096): v[t] = u[t] = 64 * w * s[t]; w = 2 gives v = 128 = 64 * 2
    layers = [LayerSpec(np.array([[2.0]]), 4096, 4096, v_th)]
    x = np.zeros((1, 8), dtype=np.float32)
    x[0, 3] = 1
    out = simulate(layers, x)
    assert np.array_equal(out, slayer_output(layers, x))
    expected = np.zeros_like(x)
    if v_th < 2:  # 128 > 64 * v_th only for v_th = 1; equality (v_th = 2) does not fire
        expected[0, 4] = 1  # fired at t=3, seen one step later
    assert np.array_equal(out, expected)


def test_one_step_of_delay_per_block():
    layers = [LayerSpec(np.array([[254.0]]), 4096, 4096, 1)] * 3
    x = np.zeros((1, 10), dtype=np.float32)
    x[0, 0] = 1
    out = simulate(layers, x)
    assert out[0].nonzero()[0].tolist() == [3]
    assert np.array_equal(out, slayer_output(layers, x))


CONFIGS = [  # (w_max, iDecay, vDecay, vThMant, input rate)
    (4, 4096, 410, 6, 0.05),  # the homework's neuron at init scale
    (32, 4096, 410, 6, 0.2),
    (254, 1024, 100, 80, 0.3),
    (254, 0, 0, 5000, 0.5),  # no decay at all: states pile up
    (16, 7, 4000, 0, 0.1),  # threshold 0: any positive voltage fires
    (254, 16, 0, 1 << 17, 0.9),  # the largest threshold; |u| grows past 2**24 (float32 path)
]


@pytest.mark.parametrize("config", CONFIGS)
def test_random_networks_match_slayer(config):
    w_max, i_decay, v_decay, v_th, rate = config
    rng = np.random.default_rng(w_max + i_decay + v_th)
    layers = random_layers(rng, (40, 50, 30), w_max, i_decay, v_decay, v_th)
    x = (rng.random((40, 300)) < rate).astype(np.float32)
    out = simulate(layers, x)
    assert np.array_equal(out, slayer_output(layers, x))


def test_untrained_solution_network_matches(tmp_path, official_data):  # noqa: F811
    from solution import Network, seed_everything

    seed_everything(1)
    net = Network()
    with torch.no_grad():
        expected = net(torch.as_tensor(official_data.input)[None])[0].numpy()
    net.export_hdf5(str(tmp_path / "network.net"))
    out = simulate_file(tmp_path / "network.net", official_data.input)
    assert expected.sum() > 0
    assert np.array_equal(out, expected)


def test_trained_network_matches(trained, official_data):  # noqa: F811
    out = simulate_file(trained.path, official_data.input)
    assert trained.output.sum() > 0
    assert np.array_equal(out, trained.output)


def test_file_round_trip_through_writer(tmp_path):
    rng = np.random.default_rng(0)
    layers = random_layers(rng, (10, 12, 8), 64, 4096, 410, 6)
    x = (rng.random((10, 100)) < 0.3).astype(np.float32)
    path = write_network(tmp_path / "n.net", layers)
    assert np.array_equal(simulate_file(path, x), simulate(layers, x))


def test_bad_inputs():
    layers = [LayerSpec(np.zeros((3, 4)), 4096, 410, 6)]
    with pytest.raises(ValueError, match="inputs"):
        simulate(layers, np.zeros((5, 10)))
    with pytest.raises(ValueError, match="0/1"):
        simulate(layers, np.full((4, 10), 0.5))
    assert simulate(layers, np.zeros((1, 4, 10))).shape == (3, 10)
