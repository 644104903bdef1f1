"""grader.rebuild and grader.evaluate: the exported file rebuilt with slayer, bit for bit."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch

from fixtures_train import official_data, trained, write_network  # noqa: F401 (fixtures)
from grader.evaluate import Evaluation, compare_to_kernel, evaluate_hdf5
from grader.metrics import raster_metrics, spike_time_loss_torch
from grader.rebuild import build_network, load_network, run_network
from grader.simulate import LayerSpec, read_layers

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def evaluation(trained, official_data) -> Evaluation:  # noqa: F811
    return evaluate_hdf5(trained.path, official_data.input, official_data.target)


# --- rebuild --------------------------------------------------------------------------


def test_round_trip_is_bit_exact(trained, official_data):  # noqa: F811
    out = run_network(load_network(trained.path), official_data.input)
    assert out.shape == (200, 600) and out.dtype == np.float32
    assert trained.output.sum() > 0
    assert np.array_equal(out, trained.output)


def test_rebuilt_parameters_are_the_trained_ones(trained):  # noqa: F811
    net = load_network(trained.path)
    assert not net.training
    for ours, theirs in zip(net.blocks, trained.network.blocks):
        assert ours.neuron.device_params == theirs.neuron.device_params
        hook = theirs.synapse.pre_hook_fx
        assert torch.equal(hook(ours.synapse.weight), hook(theirs.synapse.weight))


def test_stored_weights_survive_requantization(trained):  # noqa: F811
    net = load_network(trained.path)
    with h5py.File(trained.path) as h:
        for i, block in enumerate(net.blocks):
            stored = torch.as_tensor(h[f"layer/{i}/weight"][()])
            again = block.synapse.pre_hook_fx(block.synapse.weight, descale=True).reshape(stored.shape)
            assert torch.equal(again, stored)
            assert torch.equal(block.synapse.pre_hook_fx(block.synapse.weight), block.synapse.weight)


def test_run_network_batches(trained, official_data):  # noqa: F811
    net = load_network(trained.path)
    x = official_data.input
    batch = run_network(net, np.stack([x, np.zeros_like(x)]))
    assert batch.shape == (2, 200, 600)
    assert np.array_equal(batch[0], trained.output) and not batch[1].any()
    assert np.array_equal(run_network(net, torch.as_tensor(x)[None])[0], trained.output)
    with pytest.raises(ValueError, match="input neurons"):
        run_network(net, x[:100])


GOOD = [LayerSpec(np.zeros((6, 4)), 4096, 410, 6), LayerSpec(np.zeros((3, 6)), 4096, 410, 6)]

BROKEN = {
    "unknown neuron type": ({"layer/1/neuron/type": "LIF"}, "neuron type"),
    "graded spikes": ({"layer/0/neuron/gradedSpike": True}, "graded"),
    "layer type": ({"layer/0/type": np.array([b"conv"], dtype="S10")}, "layer type"),
    "features do not chain": ({"layer/1/inFeatures": 5, "layer/1/weight": np.zeros((3, 5), np.float32)}, "takes 5 inputs"),
    "weight shape": ({"layer/0/weight": np.zeros((4, 6), np.float32)}, "weight shape"),
    "odd weight": ({"layer/0/weight": np.ones((6, 4), np.float32)}, "8-bit"),
    "weight out of range": ({"layer/0/weight": np.full((6, 4), 256, np.float32)}, "8-bit"),
    "fractional decay": ({"layer/0/neuron/vDecay": 410.5}, "vDecay"),
    "decay out of range": ({"layer/0/neuron/iDecay": 5000}, "iDecay"),
    "missing threshold": ({"layer/0/neuron/vThMant": None}, "vThMant"),
    "axonal delay": ({"layer/0/delay": np.zeros(6, np.float32)}, "delay"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_unbuildable_files_raise_value_error(tmp_path, case):
    overrides, message = BROKEN[case]
    path = write_network(tmp_path / "n.net", GOOD, **overrides)
    with pytest.raises(ValueError, match=message):
        load_network(path)


def test_writer_makes_a_buildable_file(tmp_path):
    layers = read_layers(write_network(tmp_path / "n.net", GOOD))
    assert [(spec.in_features, spec.out_features) for spec in layers] == [(4, 6), (6, 3)]


def test_not_a_network(tmp_path):
    with h5py.File(tmp_path / "x.net", "w") as h:
        h.create_dataset("weights", data=np.zeros(3))
    with pytest.raises(ValueError, match="layer"):
        load_network(tmp_path / "x.net")


# --- evaluate -------------------------------------------------------------------------


def test_evaluation(evaluation, trained, official_data):  # noqa: F811
    assert np.array_equal(evaluation.output, trained.output)
    assert evaluation.loss == spike_time_loss_torch(trained.output, official_data.target)
    from solution import make_loss

    expected = make_loss()(torch.as_tensor(trained.output)[None], torch.as_tensor(official_data.target)[None])
    assert evaluation.loss == expected.item()
    assert evaluation.metrics == raster_metrics(trained.output, official_data.target)
    assert evaluation.metrics["loss"] == pytest.approx(evaluation.loss, rel=1e-5)
    assert evaluation.simulator_matches and evaluation.simulator_error is None
    assert np.array_equal(evaluation.simulator_output, evaluation.output)


def test_evaluation_is_fast(evaluation, trained, official_data):  # noqa: F811
    again = evaluate_hdf5(trained.path, torch.as_tensor(official_data.input), official_data.target[None])
    assert set(again.timing) >= {"read", "rebuild", "run", "loss", "metrics", "simulate", "total"}
    assert min(evaluation.timing["total"], again.timing["total"]) < 2.0  # ~0.3 s; shared CI CPUs


def test_compare_to_kernel(evaluation, trained):  # noqa: F811
    assert compare_to_kernel(evaluation, trained.output) is None
    assert compare_to_kernel(evaluation, trained.output[None]) is None
    assert "shape" in compare_to_kernel(evaluation, trained.output[:, :500])
    edited = trained.output.copy()
    edited[0, :5] = 1 - edited[0, :5]
    message = compare_to_kernel(evaluation, edited)
    assert "5 of 120000 entries differ" in message and "shift" not in message
    assert "0/1" in compare_to_kernel(evaluation, trained.output * 0.5)


def test_compare_to_kernel_spots_delay_shift(evaluation, trained, official_data):  # noqa: F811
    net = load_network(trained.path)
    for block in net.blocks:  # what a notebook with delay_shift=False would have run
        block.delay_shift = False
    kernel = run_network(net, official_data.input)
    message = compare_to_kernel(evaluation, kernel)
    assert message is not None and "2 step(s) earlier" in message and "delay_shift" in message


def test_build_network_from_layers_matches_file(trained, official_data):  # noqa: F811
    net = build_network(read_layers(trained.path))
    assert np.array_equal(run_network(net, official_data.input), trained.output)
