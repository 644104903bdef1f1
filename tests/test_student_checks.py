"""The notebook's own checks (hw8_check): the exact line a student reads for a pass and for each known fault,
and the grader's rubric wording the same fault in the same words (both call grader/messages.py).

Fast: no kernel and no training; the faults are built from the reference solution's own classes.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import lava.lib.dl.slayer as slayer

from grader import checks, hw8_check, messages, probe, rubric
from grader.artifacts import read_probe
from grader.config import Limits
from grader.measure import official_spikes
from solution import homework
from solution.dataset import OxfordDataset
from solution.network import NEURON_PARAMS, Network

DATA = Path(__file__).resolve().parent.parent / "data"
TRANSPOSED = "the dataset's target is (600, 200): transposed, expected (200, 600) (neurons × time steps)"
REFERENCE_THRESHOLD = 0.09375  # threshold 0.1 after slayer's quantization (6 / 64)


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The notebook's folder: the two data files, and the current directory (checks read from it)."""
    for name in homework.DATA_FILES:
        shutil.copyfile(DATA / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


class Edited(torch.utils.data.Dataset):
    """The reference dataset with its item edited by `edit(input, target) -> item`."""

    def __init__(self, edit) -> None:
        self.inner, self.edit = OxfordDataset(DATA), edit

    def __getitem__(self, i: int):
        return self.edit(*self.inner[i])

    def __len__(self) -> int:
        return 1


class Blocks(torch.nn.Module):
    """A network of the given slayer blocks, run one after the other (the handout's forward)."""

    def __init__(self, *blocks: torch.nn.Module, transpose: bool = False) -> None:
        super().__init__()
        self.blocks = torch.nn.ModuleList(blocks)
        self.transpose = transpose

    def forward(self, spike: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            spike = block(spike)
        return spike.transpose(1, 2) if self.transpose else spike

    def export_hdf5(self, filename: str) -> None:  # the handout's
        with h5py.File(filename, "w") as h:
            layer = h.create_group("layer")
            for i, block in enumerate(self.blocks):
                block.export_hdf5(layer.create_group(f"{i}"))


def dense(n_in: int, n_out: int, **params) -> torch.nn.Module:
    return slayer.block.cuba.Dense({**NEURON_PARAMS, **params}, n_in, n_out)


def printed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return capsys.readouterr().out.splitlines()


# --- the dataset ---------------------------------------------------------------------------


def test_dataset_passes(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hw8_check.dataset(OxfordDataset(here))
    assert printed(capsys) == ["✓ dataset: input and target are (200, 600) and equal the HW8 spikes"]


def test_the_checks_read_the_spikes_as_the_grader_does(here: Path) -> None:
    mine, grader = hw8_check.official_spikes(here), official_spikes()
    for key in ("input", "target"):
        assert mine[key].dtype == torch.float32
        assert np.array_equal(mine[key].numpy(), grader[key])
    assert int(mine["target"].sum()) == 10301  # the target's spikes (solution/reference_run.json)


def test_transposed_target(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hw8_check.dataset(Edited(lambda i, t: (i, t.T)))
    assert printed(capsys) == [f"✗ dataset: {TRANSPOSED}"]


def test_the_tutorials_length(here: Path) -> None:
    assert hw8_check.dataset_problems(OxfordDataset(DATA, steps=2000)) == [
        "the dataset's input is (200, 2000): padded to 2000 time steps, expected 600 (the HW8 change)",
        "the dataset's target is (200, 2000): padded to 2000 time steps, expected 600 (the HW8 change)",
    ]


def test_input_and_target_swapped(here: Path) -> None:
    official = official_spikes()
    differing = int(np.sum(official["input"] != official["target"]))
    assert differing > 10000  # two different rasters: about 10k spikes each
    assert hw8_check.dataset_problems(Edited(lambda i, t: (t, i))) == [
        f"the dataset's input has the right shape but differs from input_hw.bs1 in {differing} entries "
        "(wrong file, or spikes binned differently)",
        f"the dataset's target has the right shape but differs from output_hw.bs1 in {differing} entries "
        "(wrong file, or spikes binned differently)",
    ]


def test_one_spike_moved(here: Path) -> None:
    def move(i: torch.Tensor, t: torch.Tensor):
        t = t.clone()
        row, col = (int(x) for x in torch.nonzero(t)[0])
        t[row, col], t[row, (col + 300) % 600] = 0.0, 1.0
        return i, t

    assert hw8_check.dataset_problems(Edited(move)) == [
        "the dataset's target has the right shape but differs from output_hw.bs1 in 2 entries "
        "(wrong file, or spikes binned differently)"
    ]


def test_float64_spikes(here: Path) -> None:
    assert hw8_check.dataset_problems(Edited(lambda i, t: (i, t.double()))) == [
        "the dataset's target holds torch.float64 values, expected float32 spikes (slayer's blocks and loss "
        "compute in float32): fill a torch.zeros(...) tensor, which is float32"
    ]


def test_float32_numpy_arrays_pass(here: Path) -> None:  # the DataLoader makes tensors of them, as the grader sees
    assert hw8_check.dataset_problems(Edited(lambda i, t: (i.numpy(), t.numpy()))) == []


def test_events_instead_of_tensors(here: Path) -> None:
    events = OxfordDataset(DATA)
    assert hw8_check.dataset_problems(Edited(lambda i, t: (events.input, t))) == [
        "the dataset's input is a slayer.io.Event, not a tensor: return spike tensors, as "
        "Event.fill_tensor(torch.zeros(...)) gives"
    ]


def test_item_is_not_a_pair(here: Path) -> None:
    assert hw8_check.dataset_problems(Edited(lambda i, t: i)) == [
        "training_set[0] returned Tensor, not (input, target)"
    ]


def test_dataset_that_raises(here: Path) -> None:
    class Unfinished(torch.utils.data.Dataset):
        def __getitem__(self, _):
            raise NotImplementedError("Part 2: return the (input, target) pair")

    assert hw8_check.dataset_problems(Unfinished()) == [
        "training_set[0] raised NotImplementedError: Part 2: return the (input, target) pair"
    ]


def test_not_a_dataset(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hw8_check.dataset(None)
    assert printed(capsys) == ["✗ dataset: `training_set` is None, expected a torch Dataset (OxfordDataset())"]
    assert hw8_check.dataset_problems(3) == ["`training_set` is an int, expected a torch Dataset (OxfordDataset())"]


def test_data_not_beside_the_notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert hw8_check.dataset_problems(OxfordDataset(DATA)) == [
        f"input_hw.bs1 is not in {tmp_path.resolve()}, where the notebook runs: put input_hw.bs1 and "
        "output_hw.bs1 next to train.ipynb"
    ]


# --- the network ---------------------------------------------------------------------------


def test_network_passes(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hw8_check.network(Network())
    assert printed(capsys) == [
        "✓ network: 200 -> 256 -> 200, slayer.block.cuba.Dense blocks; the network's output on the input is (200, 600)"
    ]


def test_wrong_hidden_size(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hw8_check.network(Blocks(dense(200, 128), dense(128, 200)))
    assert printed(capsys) == [
        "✗ network: the network is 200 -> 128 -> 200, expected 200 -> 256 -> 200 (2 slayer.block.cuba.Dense blocks)"
    ]


def test_one_block_only(here: Path) -> None:
    assert hw8_check.network_problems(Blocks(dense(200, 200))) == [
        "the network is 200 -> 200, expected 200 -> 256 -> 200 (2 slayer.block.cuba.Dense blocks)"
    ]


def test_transposed_output(here: Path) -> None:
    assert hw8_check.network_problems(Blocks(dense(200, 256), dense(256, 200), transpose=True)) == [
        "the network's output is (1, 600, 200): transposed, expected (200, 600) (neurons × time steps)"
    ]


def test_another_block_type(here: Path) -> None:
    affine = slayer.block.cuba.Affine(NEURON_PARAMS, 256, 200)
    assert hw8_check.network_problems(Blocks(dense(200, 256), affine)) == [
        "block 1 is slayer.block.cuba.Affine, expected slayer.block.cuba.Dense (CUBA neurons)"
    ]


def test_another_threshold(here: Path) -> None:
    assert hw8_check.network_problems(Blocks(dense(200, 256, threshold=0.2), dense(256, 200))) == [
        f"block 0's neuron threshold is 0.1875, expected {REFERENCE_THRESHOLD:g} (threshold 0.1 in "
        "neuron_params, after slayer's quantization)"
    ]


def test_network_that_cannot_take_the_input(here: Path) -> None:
    problems = hw8_check.network_problems(Blocks(dense(600, 256), dense(256, 200)))
    assert problems[0] == "the network is 600 -> 256 -> 200, expected 200 -> 256 -> 200 (2 slayer.block.cuba.Dense blocks)"
    assert problems[1].startswith("net(input) raised RuntimeError: ")
    assert len(problems) == 2


def test_not_the_handouts_network(here: Path) -> None:
    assert hw8_check.network_problems(torch.nn.Linear(200, 200)) == [
        "`net` has no `blocks`: keep the handout's self.blocks = torch.nn.ModuleList([...])"
    ]
    assert hw8_check.network_problems(None) == ["`net` is None, expected a torch.nn.Module (Network())"]


def test_the_network_check_changes_nothing(here: Path) -> None:
    torch.manual_seed(0)
    net = Network()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    state = torch.get_rng_state()
    assert hw8_check.network_problems(net) == []
    assert torch.equal(torch.get_rng_state(), state)  # training after it draws the same numbers
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert [block.neuron.shape for block in net.blocks] == [None, None]  # it ran a copy: no forward pass here
    with pytest.raises(TypeError, match="no native HDF5 equivalent"):  # so the export's own mistake still shows
        net.export_hdf5(str(here / "early.net"))


# --- the loss ------------------------------------------------------------------------------


def test_loss_passes(capsys: pytest.CaptureFixture[str]) -> None:
    hw8_check.loss(slayer.loss.SpikeTime(time_constant=2, filter_order=2))
    assert printed(capsys) == [
        "✓ loss: error is slayer.loss.SpikeTime(time_constant=2, filter_order=2), a sum over neurons and time "
        "steps (the Train loss you see)"
    ]


@pytest.mark.parametrize("kwargs, found", [
    ({}, "time_constant=5, filter_order=1"),
    ({"time_constant": 2}, "time_constant=2, filter_order=1"),
    ({"time_constant": 2, "filter_order": 2, "length": 50}, "time_constant=2, filter_order=2, length=50"),
])
def test_another_filter(kwargs: dict, found: str) -> None:
    assert hw8_check.loss_problems(slayer.loss.SpikeTime(**kwargs)) == [
        f"error's filter is not that of slayer.loss.SpikeTime(time_constant=2, filter_order=2) (it is {found})"
    ]


def test_mean_reduction() -> None:
    error = slayer.loss.SpikeTime(time_constant=2, filter_order=2, reduction="mean")
    assert hw8_check.loss_problems(error) == [
        "error uses reduction='mean': keep slayer's default 'sum', the loss the grader reports"
    ]


def test_another_loss(capsys: pytest.CaptureFixture[str]) -> None:
    hw8_check.loss(slayer.loss.SpikeRate(true_rate=0.2, false_rate=0.03))
    assert printed(capsys) == [
        "✗ loss: error is slayer.loss.SpikeRate, expected slayer.loss.SpikeTime(time_constant=2, filter_order=2)"
    ]


# --- the export ----------------------------------------------------------------------------

EXPORTED = "✓ export: Trained/network.net holds net's weights (200 -> 256 -> 200); Trained/network.pt and Trained/loss.txt are there"


def _write_run(net: torch.nn.Module, folder: Path = Path("Trained")) -> None:
    """What the handout's notebook leaves: checkpoint, export (after a forward pass), learning curve."""
    folder.mkdir(exist_ok=True)
    torch.save(net.state_dict(), folder / "network.pt")
    with torch.no_grad():
        net(hw8_check.official_spikes()["input"].unsqueeze(0))
    net.export_hdf5(str(folder / "network.net"))
    (folder / "loss.txt").write_text("246143.0\n")


def test_export_passes(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    net = Network()
    _write_run(net)
    hw8_check.export("Trained", net)
    hw8_check.export("Trained")
    assert printed(capsys) == [
        EXPORTED,
        "✓ export: Trained/network.net holds slayer's export (200 -> 256 -> 200); Trained/network.pt and "
        "Trained/loss.txt are there",
    ]


def test_nothing_written(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    hw8_check.export("Trained", Network())
    assert printed(capsys) == [
        "✗ export: Trained/network.pt is missing: save the best network's state_dict there during training (torch.save)",
        "✗ export: Trained/network.net is missing: export the best network there with net.export_hdf5",
        "✗ export: Trained/loss.txt is missing: save the learning statistics every epoch with "
        "stats.save(trained_folder + '/')",
    ]


def test_export_before_a_forward_pass(here: Path) -> None:
    net = Network()
    Path("Trained").mkdir()
    with pytest.raises(TypeError, match="no native HDF5 equivalent"):  # slayer's own failure, in the export cell
        net.export_hdf5("Trained/network.net")
    torch.save(net.state_dict(), "Trained/network.pt")
    Path("Trained/loss.txt").write_text("1.0\n")
    assert hw8_check.export_problems("Trained", net) == [
        "`layer/0` holds only `type`: the export stopped there (TypeError: Object dtype dtype('O') has no native "
        "HDF5 equivalent); slayer's export_hdf5 writes what each block learns in its first forward pass: run the "
        "network once (train it, or call net(input)) before net.export_hdf5"
    ]


def test_export_of_other_weights(here: Path) -> None:
    net = Network()
    _write_run(net)
    with h5py.File("Trained/network.net", "r+") as h:
        h["layer/1/weight"][0, 0] += 1.0
    assert hw8_check.export_problems("Trained", net) == [
        "`layer/1/weight` differs from net's weights in 1 of 51200 entries: load the best checkpoint "
        "(Trained/network.pt) into net, then export it"
    ]


def test_export_of_the_wrong_hidden_size(here: Path) -> None:
    _write_run(Blocks(dense(200, 128), dense(128, 200)))
    assert hw8_check.export_problems("Trained") == [
        "`layer/0/weight` has shape (128, 200), expected (256, 200) = (out, in)",
        "`layer/1/weight` has shape (200, 128), expected (200, 256) = (out, in)",
    ]


def test_whole_model_pickled(here: Path) -> None:
    net = Network()
    _write_run(net)
    torch.save(net, "Trained/network.pt")
    assert hw8_check.export_problems("Trained", net) == [
        "Trained/network.pt does not load with torch.load(..., weights_only=True) (it holds pickled Python "
        "objects, not only tensors): the grader's torch loads only weights: save the weights with "
        "torch.save(net.state_dict(), path) and load them with net.load_state_dict(torch.load(path)); "
        "torch.save(net, path) of the whole network loads only in older torch, such as the course environment's"
    ]


def test_not_hdf5(here: Path) -> None:
    net = Network()
    _write_run(net)
    Path("Trained/network.net").write_bytes(b"not an HDF5 file")
    assert hw8_check.export_problems("Trained", net) == [
        "Trained/network.net is not a readable HDF5 file (Unable to synchronously open file (file signature not found))"
    ]


def test_hdf5_without_slayers_layout(here: Path) -> None:
    net = Network()
    _write_run(net)
    with h5py.File("Trained/network.net", "r+") as h:
        del h["layer/1"], h["layer/0/neuron"]
    assert hw8_check.export_problems("Trained", net) == [
        "Trained/network.net holds `layer/0`, expected `layer/0` and `layer/1` (one group per block)",
        "`layer/0/neuron` is missing",
    ]
    with h5py.File("Trained/network.net", "w") as h:
        h.create_group("layers")
    assert hw8_check.export_problems("Trained", net) == ["`layer` is missing"]


@pytest.mark.parametrize("fault", ["missing-neuron", "transposed-weight", "not-hdf5", "not-written"])
def test_export_faults_read_the_same_in_the_notebook_and_the_grader(here: Path, fault: str) -> None:
    """The notebook's export check and the grader's hdf5 check word the same fault with the same function."""
    from grader.artifacts import check_hdf5

    net = Network()
    _write_run(net)
    if fault == "missing-neuron":
        with h5py.File("Trained/network.net", "r+") as h:
            del h["layer/0/neuron"]
    elif fault == "transposed-weight":
        with h5py.File("Trained/network.net", "r+") as h:
            w = h["layer/1/weight"][()]
            del h["layer/1/weight"]
            h["layer/1/weight"] = w.T
    elif fault == "not-hdf5":
        Path("Trained/network.net").write_bytes(b"not an HDF5 file")
    else:
        Path("Trained/network.net").unlink()
    mine = hw8_check.export_problems("Trained", net)
    graders = check_hdf5(here, Limits()).problems
    assert mine and set(mine) <= set(graders), (mine, graders)


def test_another_folder(here: Path) -> None:
    net = Network()
    _write_run(net, Path("trained"))
    assert hw8_check.export_problems("trained", net) == [
        "trained_folder is 'trained', expected 'Trained': the grader reads Trained/network.net, "
        "Trained/network.pt and Trained/loss.txt"
    ]


# --- a check that breaks says so, and the notebook runs on -----------------------------------


def test_a_broken_check_never_raises(here: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_):
        raise KeyError("layer")

    monkeypatch.setattr(hw8_check, "export_problems", broken)
    hw8_check.export("Trained", None)
    assert printed(capsys) == [
        "✗ export: this check could not run (KeyError: 'layer'); the grader measures this step on its own, "
        "so your notebook may still be right"
    ]


# --- one source: the grader says the same ----------------------------------------------------


def _rubric_says(check: str, namespace: dict, tmp_path: Path) -> str:
    """The rubric's message for `check` on what the grader's own probe records from `namespace`."""
    probe.run(namespace, out_dir=str(tmp_path / "_grader"))
    evidence = {f.name: None for f in dataclasses.fields(checks.Evidence)}
    evidence.update(probe=read_probe(tmp_path, Limits()), official=official_spikes())
    return checks.registry()[check](checks.Evidence(**evidence), 10.0).message


@pytest.mark.parametrize("edit", [
    lambda i, t: (i, t.T),  # transposed
    lambda i, t: (t, i),  # swapped: the values differ
    lambda i, t: (i[:, :500], t[:, :500]),  # truncated
    lambda i, t: (i, t),  # right
    lambda i, t: i,  # not a pair
], ids=["transposed", "swapped", "truncated", "right", "not-a-pair"])
def test_dataset_messages_are_the_graders(here: Path, edit) -> None:
    dataset = Edited(edit)
    mine = hw8_check.dataset_problems(dataset)
    graders = _rubric_says("dataset", {"training_set": dataset, "net": Network()}, here)
    assert graders == ("; ".join(mine) if mine else messages.DATASET_OK)


def test_a_dataset_that_raises_reads_the_same_in_the_notebook_and_the_grader(here: Path) -> None:
    class Unfinished(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return 1

        def __getitem__(self, _):
            raise NotImplementedError("Part 2: return the (input, target) pair")

    mine = hw8_check.dataset_problems(Unfinished())
    assert mine == ["training_set[0] raised NotImplementedError: Part 2: return the (input, target) pair"]
    assert _rubric_says("dataset", {"training_set": Unfinished(), "net": Network()}, here) == mine[0]


@pytest.mark.parametrize("net, wrong", [
    (lambda: Blocks(dense(200, 256), dense(256, 200), transpose=True), True),
    (lambda: Network(), False),
], ids=["transposed", "right"])
def test_output_messages_are_the_graders(here: Path, net, wrong: bool) -> None:
    network = net()
    mine = hw8_check.network_problems(network)
    graders = _rubric_says("output_shape", {"training_set": OxfordDataset(DATA), "net": network}, here)
    if wrong:
        assert mine == [graders]
    else:
        assert mine == [] and graders == messages.OUTPUT_OK and messages.NETWORK_OK.endswith(graders)


def test_the_rubric_words_shapes_with_the_shared_function() -> None:
    assert rubric.diagnose_shape is messages.diagnose_shape


def test_the_graders_hints_for_the_same_mistakes_are_the_checks() -> None:
    from grader import hints

    assert hints.EXPORT_BEFORE_FORWARD is messages.EXPORT_BEFORE_FORWARD
    assert hints.WHOLE_MODEL_SAVED is messages.WHOLE_MODEL_SAVED


# --- the clock: the time an epoch takes on the student's machine ---------------------------------


class _Ticks:
    """A fake perf_counter: the first epoch takes 5 s (warm-up), each later one 0.25 s."""

    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        self.t += 5.0 if self.t == 0 else 0.25
        return self.t


def _clock_lines(epochs: int, steps: int) -> list[str]:
    lines: list[str] = []
    clock = hw8_check.Clock(epochs, out=lines.append, now=_Ticks())
    for _ in range(steps):
        clock.step()
    return lines


def test_the_clock_says_the_course_budget_after_the_first_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hw8_check, "machine", lambda: "AMD EPYC")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert _clock_lines(2000, 30) == [  # once, after epoch 11, without the warm-up epoch
        "\ntime: 0.250 s an epoch on this machine (AMD EPYC, one torch thread), measured over epochs 2-11: "
        "the course's 2000 epochs take about 8 min here"]
    assert _clock_lines(20, 5) == []  # not yet 11 epochs
    assert _clock_lines(5, 5) == [  # a short run says it after its last epoch
        "\ntime: 0.250 s an epoch on this machine (AMD EPYC, one torch thread), measured over epochs 2-5: "
        "the course's 2000 epochs take about 8 min here; this run's 5 about 1 s"]
    assert _clock_lines(1, 1) == []  # one epoch is all warm-up: nothing honest to say


def test_the_clock_names_more_threads_and_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hw8_check, "machine", lambda: "cpu")
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    (line,) = _clock_lines(3, 3)
    assert "(cpu, 2 torch threads: torch.set_num_threads(1) in the first cell is often faster)" in line


def test_the_clock_ticks_on_each_optimizer_step(capsys) -> None:
    weight = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.Adam([weight], lr=0.001)
    clock = hw8_check.clock(optimizer, 3)
    for _ in range(3):
        optimizer.zero_grad()
        weight.sum().backward()
        optimizer.step()
    assert len(clock.times) == 3 and clock.seconds_per_epoch is not None and clock.seconds_per_epoch > 0
    printed = capsys.readouterr().out
    assert printed.startswith("\ntime: ") and "measured over epochs 2-3" in printed


def test_the_clock_without_an_optimizer_says_so(capsys) -> None:
    assert hw8_check.clock(None, 20) is None
    assert capsys.readouterr().out == messages.not_timed("None") + "\n"


# --- the numerical mode: read back as the grader reads it ------------------------------------------


@pytest.fixture
def orders():
    """The grader's own sums in place, as `hw8_exact.install()` (or the grader's preamble) puts them."""
    from grader import exact

    assert exact.install()
    yield
    exact.uninstall()


def test_the_mode_check_reads_the_mode_back_as_the_grader_does(capsys, orders) -> None:
    from solution import numerics

    info = numerics.describe()
    assert info["in_force"]  # the tests run in the pinned mode (conftest), as the grader does
    hw8_check.mode()
    assert capsys.readouterr().out == f"✓ mode: {messages.mode_ok(numerics.label(info))}\n"
    assert "mkl-compatible/avx2/1-thread (torch AVX2, MKL CNR COMPATIBLE)" in messages.mode_ok(numerics.label(info))


@pytest.mark.parametrize("machine, cnr, fix", [
    ("x86_64", "OFF", "restart the kernel and run the notebook from the top"),
    ("arm64", None, "this machine cannot run that mode"),
])
def test_another_mode_is_said_with_its_fix(monkeypatch: pytest.MonkeyPatch, capsys, machine, cnr, fix, orders) -> None:
    from solution import numerics

    other = {"mode": numerics.NAME, "in_force": False, "torch_cpu_capability": "AVX512", "mkl_cnr": cnr,
             "cpu": "x", "machine": machine}
    monkeypatch.setattr(numerics, "describe", lambda: other)
    hw8_check.mode()
    line = capsys.readouterr().out
    assert line == f"✗ mode: {messages.mode_off(numerics.label(other), machine == 'x86_64')}\n"
    assert f"NOT in force (torch AVX512, MKL CNR {cnr}" in line and fix in line
    assert "your grade does not change" in line


def test_without_the_graders_sums_the_mode_check_says_how_to_install_them(capsys) -> None:
    from grader import exact

    assert not exact.is_active()
    hw8_check.mode()
    assert capsys.readouterr().out == f"✗ mode: {messages.ORDERS_OFF}\n"
    assert "`import hw8_exact; hw8_exact.install()` right after importing slayer" in messages.ORDERS_OFF


def test_the_notebooks_copy_of_the_sums_leaves_the_graders_in_place(monkeypatch, orders) -> None:
    """In the grader's kernel the preamble installed grader.exact first; the notebook's hw8_exact steps aside."""
    import importlib

    from lava.lib.dl.slayer.synapse import layer

    monkeypatch.syspath_prepend(str(DATA.parent / "assignment"))
    copy = importlib.import_module("hw8_exact")
    graders = layer.Dense.forward
    assert copy.__file__ != exact_module().__file__ and copy.install() is True
    assert layer.Dense.forward is graders and not copy.is_active()  # nothing replaced twice


def test_the_notebooks_copy_of_the_accelerator_leaves_the_graders_in_place(monkeypatch) -> None:
    import importlib

    from grader import accel
    from lava.lib.dl.slayer.neuron.dynamics import leaky_integrator

    assert accel.install() is True
    try:
        monkeypatch.syspath_prepend(str(DATA.parent / "assignment"))
        copy = importlib.import_module("hw8_accel")
        graders = leaky_integrator._li_dynamics_fwd
        assert copy.__file__ != accel.__file__ and copy.install() is True
        assert leaky_integrator._li_dynamics_fwd is graders and not copy.is_active()  # nothing replaced twice
    finally:
        accel.uninstall()


def exact_module():
    from grader import exact

    return exact


def test_the_mode_travels_beside_the_notebook() -> None:
    from grader import handout

    assert handout.CHECK_FILES["hw8_numerics.py"].resolve() == (DATA.parent / "solution" / "numerics.py").resolve()
    source = (DATA.parent / "grader" / "hw8_check.py").read_text()
    assert "import hw8_numerics as numerics" in source  # beside the notebook, as hw8_messages is
