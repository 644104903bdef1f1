"""Fair partial credit: a trained network of another architecture loses the hdf5 points and nothing else.

Each network is trained here with slayer (the grader's accelerator: the same bits,
in seconds), exported by slayer's own export_hdf5, validated, rebuilt and measured
by the grader, and scored by the kit's rubric against the shipped calibration at
20 epochs. What cannot run on the HW8 input (another input or output size,
another neuron type) says why loss, similarity and export were not measured.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from grader.artifacts import Probe, check_hdf5
from grader.calibration import SHIPPED, Calibration
from grader.checks import Evidence, run_checks
from grader.config import load_config
from grader.execute import Execution
from grader.measure import measure, official_spikes

torch.set_num_threads(1)
CALIBRATION = Calibration(**json.loads((SHIPPED / "epochs-20-seed-0.json").read_text()))
STILL = "; the network was still evaluated: export, loss and similarity are scored on it"


def _train(sizes: tuple[int, ...], epochs: int, out: Path) -> torch.nn.Module:
    """The handout's training loop (Assistant, SpikeTime, Adam) for a network of these sizes; exported to out."""
    import lava.lib.dl.slayer as slayer

    from grader.exact import mode
    from solution import Network, make_loss, seed_everything
    from solution.homework import LEARNING_RATE, WEIGHT_DECAY

    official = official_spikes()
    x, y = torch.from_numpy(official["input"])[None], torch.from_numpy(official["target"])[None]
    with mode():  # the kit's numerical mode, as a graded notebook trains in it
        seed_everything(0)
        net = Network(sizes)
        optimizer = torch.optim.Adam(net.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
        assistant = slayer.utils.Assistant(net, make_loss(), optimizer, slayer.utils.LearningStats())
        for _ in range(epochs):
            assistant.train(x, y)
        with torch.no_grad():
            net(x)
    (out / "Trained").mkdir(parents=True)
    net.export_hdf5(str(out / "Trained" / "network.net"))
    return net


def _grade(workdir: Path, net: torch.nn.Module) -> dict:
    """The rubric's checks on this export, the notebook's own output taken from `net`."""
    official = official_spikes()
    with torch.no_grad():
        output = net(torch.from_numpy(official["input"])[None]).numpy()
    probe = Probe(arrays={"input": official["input"], "target": official["target"], "output": output},
                  meta={"errors": {}, "input_shape": [200, 600], "target_shape": [200, 600],
                        "output_shape": list(output.shape)})
    report = check_hdf5(workdir, load_config().limits)
    measurement = (measure(workdir / "Trained" / "network.net", official, kernel_output=output)
                   if report.evaluable else None)
    evidence = Evidence(run=Execution(workdir=workdir, notebook=None, completed=True, budget_set=True, cell_s=3.0),
                        intake_problem=None, probe=probe, hdf5=report, measurement=measurement, official=official,
                        calibration=CALIBRATION, thresholds=load_config().thresholds)
    checks = run_checks(evidence, load_config().points)
    return {"report": report, "measurement": measurement, "checks": {c.name: c for c in checks},
            "score": sum(c.score for c in checks)}


def _loss_message(loss: float) -> str:
    return (f"SpikeTime loss of the exported network {loss:.1f} (reference at 20 epochs: 82628.6; "
            "full points up to 90891.5, none from 92822.4)")


# (sizes, epochs trained: enough to match the reference at 20 epochs, the hdf5 message, loss about)
TRAINED = {
    "hidden_128": ((200, 128, 200), 30, "Trained/network.net holds a 200 -> 128 -> 200 network, the homework's is "
                   "200 -> 256 -> 200: wrong hidden size (128 neurons, expected 256)", 77887.5),
    "two_hidden_layers": ((200, 256, 128, 200), 100, "Trained/network.net holds a 200 -> 256 -> 128 -> 200 network, "
                          "the homework's is 200 -> 256 -> 200: wrong number of hidden layers (2, expected 1)",
                          74547.6),
}


@pytest.mark.parametrize("case", TRAINED)
def test_another_architecture_loses_only_the_hdf5_points(tmp_path: Path, case: str) -> None:
    sizes, epochs, problem, loss_about = TRAINED[case]
    graded = _grade(tmp_path, _train(sizes, epochs, tmp_path))
    m, checks = graded["measurement"], graded["checks"]
    assert graded["report"].sizes == sizes and graded["report"].evaluable
    assert m is not None and m.simulator_matches and m.simulator_error is None  # numpy simulator agrees, bit for bit
    assert m.loss == pytest.approx(loss_about, rel=0.01)
    assert {name: c.score for name, c in checks.items()} == {
        "execution": 10, "dataset": 15, "output_shape": 10, "hdf5": 0.0, "export": 10, "loss": 20,
        "similarity": 15, "figure": 0.0}
    assert graded["score"] == 80
    assert checks["hdf5"].message == problem + STILL
    assert checks["loss"].message == _loss_message(m.loss)
    assert checks["export"].message == "the exported network reproduces the notebook's output spike for spike"
    assert checks["similarity"].details["ratio"] >= 0.9


def _untrained_export(workdir: Path, sizes: tuple[int, ...]) -> Path:
    """slayer's export of an untrained network of these sizes at workdir/Trained/network.net."""
    from solution import Network

    torch.manual_seed(0)
    net = Network(sizes)
    with torch.no_grad():
        net(torch.zeros(1, sizes[0], 20))
    (workdir / "Trained").mkdir()
    net.export_hdf5(str(workdir / "Trained" / "network.net"))
    return workdir / "Trained" / "network.net"


@pytest.mark.parametrize("sizes, why", [
    ((100, 256, 200), "the network takes 100 inputs and the HW8 input has 200 neurons"),
    ((200, 256, 100), "the network has 100 outputs and the HW8 target has 200 neurons"),
])
def test_another_input_or_output_size_is_not_evaluated(tmp_path: Path, sizes, why: str) -> None:
    _untrained_export(tmp_path, sizes)
    _assert_not_evaluated(_grade_unrunnable(tmp_path), why)


def test_another_neuron_type_is_not_evaluated(tmp_path: Path) -> None:
    import h5py

    with h5py.File(_untrained_export(tmp_path, (200, 256, 200)), "r+") as h:  # what a LIF block's export says
        del h["layer/1/neuron/type"]
        h["layer/1/neuron/type"] = "LIF"
    graded = _grade_unrunnable(tmp_path)
    _assert_not_evaluated(graded, "`layer/1/neuron/type` is 'LIF': the grader rebuilds CUBA neurons only")
    assert graded["checks"]["hdf5"].message == "`layer/1/neuron/type` is 'LIF', expected 'CUBA'"


def _grade_unrunnable(workdir: Path) -> dict:
    """The rubric on an export the grader cannot run: the notebook's own output is a silent raster."""
    class Silent(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.zeros(1, 200, 600)

    return _grade(workdir, Silent())


def _assert_not_evaluated(graded: dict, why: str) -> None:
    checks = graded["checks"]
    assert graded["report"].not_evaluable == why and graded["measurement"] is None
    scores = (checks["export"].score, checks["loss"].score, checks["similarity"].score, checks["hdf5"].score)
    assert scores == (0, 0, 0, 0)
    because = f"the export was not evaluated because {why}"
    assert checks["export"].message == f"not compared with the notebook's output: {because}"
    assert checks["loss"].message == f"the loss was not measured: {because}"
    assert checks["similarity"].message == f"the similarity was not measured: {because}"
    assert graded["score"] == 35
