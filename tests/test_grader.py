"""End to end: the autograder on the reference, the template and one submission per mistake.

All notebooks are graded in one batch at a small budget (GRADE_EPOCHS) against
a calibration computed at that budget and seed, so the scores are exact.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from grader.batch import grade_batch
from grader.config import load_config
from grader.report import collect
from grader.samples import EXPORT, MUTATIONS, Mutation, make_sample, mutate

GRADE_EPOCHS = 20  # the reference beats a silent output from ~10 epochs on

CHEAT = Mutation(
    "skips training, fakes every number it can",
    (
        ("for epoch in range(epochs):", "for epoch in range(0):"),
        (EXPORT, EXPORT + """
import json, grader.metrics
print('[Epoch 1999/2000] Train loss = 0.00001 (min = 0.00001)')
slayer.loss.SpikeTime.forward = lambda self, a, b: torch.zeros(())
grader.metrics.spike_time_loss = lambda *a, **k: 0.0
fake = {'score': 100, 'max_score': 100, 'tests': []}
for path in ('results.json', '../results.json', '../../results.json'):
    try:
        open(path, 'w').write(json.dumps(fake))
    except OSError as exc:
        print('blocked:', path, exc)
try:
    open('../../gradebook.csv', 'w').write('id,score\\ncheat,100\\n')
except OSError as exc:
    print('blocked gradebook', exc)
with open(trained_folder + '/loss.txt', 'w') as f:
    f.write('#Train\\n0.00001\\n')"""),
    ),
)

CASES: dict = {
    "reference": None,
    "template": None,
    **{name: None for name in ("wrong_hidden", "transposed_target", "long_tensors", "missing_group",
                               "export_before_training", "raises_halfway")},
    "cheat": CHEAT,
    "no_parameters_cell": "no_parameters_cell",
}


def _notebook(name: str) -> nbformat.NotebookNode:
    if name == "cheat":
        return mutate(make_sample("reference"), CHEAT)
    if name == "no_parameters_cell":
        nb = make_sample("reference")
        cell = next(c for c in nb.cells if "parameters" in c.metadata.get("tags", []))
        cell.metadata["tags"] = []
        cell.source = cell.source.replace("epochs = 2000", f"epochs = {GRADE_EPOCHS}").replace(
            "make_animations = True", "make_animations = False")
        return nb
    return make_sample(name)


@pytest.fixture(scope="module")
def graded(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("grading")
    subs = root / "submissions"
    for name in CASES:
        (subs / name).mkdir(parents=True)
        nbformat.write(_notebook(name), subs / name / "train.ipynb")
    out = root / "out"
    summary = grade_batch([subs], out, load_config(), GRADE_EPOCHS, workers=2, progress=False)
    assert summary.errors == {}
    results = {r.submission_id: r for r in collect(out)}
    assert sorted(results) == sorted(CASES)
    return {"out": out, "results": results, "root": root}


def _scores(result) -> dict[str, float]:
    return {c.name: c.score for c in result.checks}


pytestmark = pytest.mark.slow


def test_reference_gets_full_marks(graded) -> None:
    r = graded["results"]["reference"]
    assert r.score == 100 and r.max_score == 100
    assert all(c.status == "passed" for c in r.checks)
    assert r.flags == []
    assert r.measurements["weights_origin"] == "reference"  # seeded: the very weights of the calibration
    # the calibration is the reference solution package trained at the same budget: identical numbers
    assert r.measurements["loss"] == pytest.approx(r.measurements["reference"]["loss"], rel=1e-6)
    assert r.measurements["loss"] < r.measurements["silent_loss"]


def test_untouched_template_earns_nothing(graded) -> None:
    r = graded["results"]["template"]
    assert r.score == 0
    assert "NotImplementedError" in r.check("execution").message
    assert "no variable `training_set`" in r.check("dataset").message
    assert "Trained/network.net is missing: export the best network there" in r.check("hdf5").message


def test_wrong_hidden_size(graded) -> None:
    """Only the structure check pays for the hidden size: the network is still rebuilt, run and scored."""
    r = graded["results"]["wrong_hidden"]
    assert _scores(r) == {"execution": 10, "dataset": 15, "output_shape": 10, "hdf5": 0, "export": 10, "loss": 20,
                          "similarity": 14.86, "figure": 0}  # similarity at 90 % of the reference's, just under
    assert r.score == 79.86
    assert r.check("hdf5").message == (
        "Trained/network.net holds a 200 -> 128 -> 200 network, the homework's is 200 -> 256 -> 200: "
        "wrong hidden size (128 neurons, expected 256); the network was still evaluated: export, loss and "
        "similarity are scored on it")
    assert r.measurements["loss"] < r.measurements["reference"]["loss"] * 1.1
    assert r.measurements["simulator_matches"] is True


def test_transposed_target(graded) -> None:
    r = graded["results"]["transposed_target"]
    assert r.check("dataset").score == 0
    assert "the dataset's target is (600, 200): transposed, expected (200, 600)" in r.check("dataset").message
    # the handout's loss illustration then plots a (600,) trace against a (200,) one and raises
    msg = r.check("execution").message  # named as Jupyter shows the cell, with the line that failed
    assert msg.startswith('the notebook stopped: code cell 8 (In [8], "error = slayer.loss.SpikeTime(time_constant=2, '
                          'filter_ord...") raised ValueError at line ')
    assert "operands could not be broadcast" in msg
    assert r.check("output_shape").score == 10  # the network itself is fine
    assert r.check("hdf5").score == 0 and r.check("loss").score == 0


def test_tutorial_sized_tensors(graded) -> None:
    r = graded["results"]["long_tensors"]
    msg = r.check("dataset").message
    assert "the dataset's input is (200, 2000): padded to 2000 time steps, expected 600" in msg
    assert "the dataset's target is (200, 2000): padded" in msg
    assert r.check("dataset").score == 0
    assert r.check("output_shape").score == 10 and r.check("hdf5").score == 20


def test_hdf5_missing_a_group(graded) -> None:
    r = graded["results"]["missing_group"]
    assert _scores(r) == {"execution": 10, "dataset": 15, "output_shape": 10, "hdf5": 0,
                          "export": 0, "loss": 0, "similarity": 0, "figure": 0}
    assert r.check("hdf5").message == "`layer/1/neuron` is missing"


def test_network_exported_before_training(graded) -> None:
    r = graded["results"]["export_before_training"]
    s = _scores(r)
    assert s["hdf5"] == 20 and s["dataset"] == 15 and s["execution"] == 10
    assert s["export"] == 0
    assert r.check("export").message.startswith(
        "Trained/network.net holds the untrained network's weights: export after training, from the best network "
        "(net.load_state_dict(torch.load('Trained/network.pt')), then net.export_hdf5). "
        "Trained/network.net does not reproduce the notebook's output: ")
    assert r.check("loss").message.endswith("; Trained/network.net holds the untrained network's weights: export "
                                            "after training, from the best network (net.load_state_dict("
                                            "torch.load('Trained/network.pt')), then net.export_hdf5)")
    assert "export does not reproduce the notebook's output" in r.flags
    assert s["loss"] == 0
    assert r.measurements["loss"] > r.measurements["silent_loss"]  # the untrained network
    assert r.measurements["weights_origin"] == "untrained"


def test_notebook_that_raises_half_way(graded) -> None:
    r = graded["results"]["raises_halfway"]
    assert r.check("execution").score == 0
    raised = "raise RuntimeError('training loop not finished yet')"
    assert r.check("execution").message == (  # the cell as Jupyter shows it, and the line that failed
        f'the notebook stopped: code cell 10 (In [10], "{raised}") raised RuntimeError at line 2 `{raised}`: '
        "training loop not finished yet")
    # what was built before the failure is still checked
    assert r.check("dataset").score == 15 and r.check("output_shape").score == 10
    assert r.check("hdf5").score == 0 and r.check("loss").score == 0


def test_faked_numbers_earn_nothing(graded) -> None:
    r = graded["results"]["cheat"]
    assert r.check("loss").score == 0 and r.check("similarity").score == 0
    assert r.measurements["loss"] > r.measurements["silent_loss"]  # measured on the untrained export
    assert r.learning_curve == [1e-05]  # shown as the notebook wrote it, never scored
    out = graded["out"]
    on_disk = json.loads((out / "cheat" / "results.json").read_text())
    assert on_disk["score"] == r.score < 100
    assert "cheat,100" not in (out / "gradebook.csv").read_text()
    assert not (out / "results.json").exists()
    assert not (graded["root"] / "results.json").exists()


def test_missing_parameters_cell_is_said(graded) -> None:
    r = graded["results"]["no_parameters_cell"]
    assert "could not set the epoch budget" in r.check("execution").message
    assert "budget not set (no `parameters` cell)" in r.flags
    assert r.score == 100  # it set epochs = GRADE_EPOCHS itself


def test_reports_are_written(graded) -> None:
    out = graded["out"]
    for name in CASES:
        data = json.loads((out / name / "results.json").read_text())
        assert {"score", "max_score", "execution_time", "output", "tests"} <= set(data)
        assert {t["name"] for t in data["tests"]} == {
            "execution", "dataset", "output_shape", "hdf5", "export", "loss", "similarity", "figure"}
        for t in data["tests"]:
            assert {"name", "score", "max_score", "status", "output", "visibility"} <= set(t)
        html = (out / name / "feedback.html").read_text()
        assert "data:image/png;base64," in html and f"{data['score']:g} / 100" in html
        assert (out / name / "executed.ipynb").exists()
    rows = (out / "gradebook.csv").read_text().splitlines()
    assert rows[0] == ("id,score,max_score,execution,dataset,output_shape,hdf5,export,loss,similarity,figure,"
                       "epochs,kit_version,numerics,calibration,most_similar,flags")
    assert len(rows) == 1 + len(CASES)
    assert "Learning curve" in (out / "reference" / "feedback.html").read_text()
    # reference and no_parameters_cell share the seeded reference's weights: expected, not flagged
    assert not any("identical exported weights" in row for row in rows)
