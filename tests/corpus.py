"""Bad submissions for tests/test_corpus.py, each generated from a few lines or from the solved notebook.

Nothing here is committed as a binary: every case writes its file (a notebook,
a zip, a renamed image) into a folder of submissions when the test runs, and
says what the grader must answer: the score and, per check, a fragment of its
message. Kernel cases are tiny notebooks where they can be (a kernel start is
what costs); the few that need a trained network are the reference at the
test's small budget plus one edit.
"""

from __future__ import annotations

import base64
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat

from conftest import workdir_is_tmpfs
from grader.cells import CellRef, first_line, with_line
from grader.samples import Mutation, make_sample, mutate

KIT = Path(__file__).resolve().parent.parent
FAKE_RESULT = {"score": 100, "max_score": 100, "output": "all tests passed", "tests": []}
PROBE_GONE = "the grader's probe left no results"
NO_DATASET = "no variable `training_set`"
NO_NETWORK = "no variable `net`"


@dataclass(frozen=True)
class Env:
    """What the builders need to know about the machine the corpus runs on."""

    kit: Path  # the kit's root: read-only to a sandboxed kernel
    out: Path  # the grader's output folder
    outside: Path  # a folder of the test outside `out`: nothing may change there
    port: int  # a TCP port the test listens on: no sandboxed kernel may reach it
    token: str  # unique per run, for file names in the real /tmp
    valid_hdf5: bytes  # an untrained network's export, for the HDF5 cases to damage
    decoy_hdf5: Path  # a valid export outside the working directory: links to it must be refused


@dataclass(frozen=True)
class Case:
    name: str  # the submission id
    what: str
    build: Callable[[Env, Path], None]  # writes the submission into the folder of submissions
    score: float
    messages: dict[str, str]  # check name -> a fragment of its message
    bwrap_only: bool = False  # only bubblewrap stops it: without it the case would do harm, so it is left out
    unsandboxed: tuple[float, dict[str, str]] | None = None  # (score, messages) without bubblewrap, if different


# --- builders --------------------------------------------------------------------------------


def raw(data: bytes | Callable[[Env], bytes], suffix: str = ".ipynb") -> Callable[[Env, Path], None]:
    def build(env: Env, path: Path) -> None:
        path.with_suffix(suffix).write_bytes(data(env) if callable(data) else data)

    return build


def notebook(make: Callable[[Env], nbformat.NotebookNode]) -> Callable[[Env, Path], None]:
    def build(env: Env, path: Path) -> None:
        nbformat.write(make(env), path.with_suffix(".ipynb"))

    return build


def zipped(members: Callable[[Env], list[tuple[str, bytes]]]) -> Callable[[Env, Path], None]:
    def build(env: Env, path: Path) -> None:
        with zipfile.ZipFile(path.with_suffix(".zip"), "w", zipfile.ZIP_DEFLATED) as zf:
            for name, data in members(env):
                zf.writestr(name, data)

    return build


def tiny(*sources: str) -> nbformat.NotebookNode:
    """A notebook of a few code cells (no `parameters` cell: the budget does not matter)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def raised(number: int, source: str, line: int, ename: str) -> str:
    """How the execution check starts when code cell `number` (its source) raised `ename` at `line`.

    The words come from grader.cells (tested exactly in tests/test_execute_messages.py); here the
    corpus checks that a real kernel's run gives that cell, prompt and line.
    """
    ref = with_line(CellRef(None, number - 1, number, number, first_line(source)), source, line)
    return f"{ref.label} raised {ename}{ref.at}"


def reference_then(source: str) -> nbformat.NotebookNode:
    """The solved notebook with one cell appended: everything is graded before it runs."""
    nb = make_sample("reference")
    nb.cells.append(nbformat.v4.new_code_cell(source))
    return nb


def tiny_bytes(nb: nbformat.NotebookNode) -> bytes:
    return nbformat.writes(nb).encode()


def _writes(data: bytes, then: str = "") -> str:
    """Notebook source writing `data` as Trained/network.net."""
    return (
        "import base64, os\nos.makedirs('Trained', exist_ok=True)\n"
        f"with open('Trained/network.net', 'wb') as f:\n    f.write(base64.b64decode({base64.b64encode(data).decode()!r}))\n"
        + then
    )


def damaged(valid: bytes, edit: Callable) -> bytes:
    """`valid` with `edit(h5py.File)` applied, in memory."""
    import h5py

    buf = io.BytesIO(valid)
    with h5py.File(buf, "r+") as h:
        edit(h)
    return buf.getvalue()


def _huge_dataset(h) -> None:
    del h["layer/0/neuron/vThMant"]
    h["layer/0/neuron"].create_dataset("vThMant", shape=(10**9,), dtype="f4", chunks=(4096,))  # never written


def _wrong_types(h) -> None:
    import numpy as np

    del h["layer/0/weight"], h["layer/1/inFeatures"]
    h["layer/0"].create_dataset("weight", data=np.full((256, 200), b"w", dtype="S1"))
    h["layer/1"].create_dataset("inFeatures", data=b"256")


def _extra_layer(h) -> None:
    h.copy(h["layer/1"], "layer/2")


def _lif(h) -> None:
    del h["layer/1/neuron/type"]
    h["layer/1/neuron/type"] = "LIF"


def _hundred_inputs(h) -> None:
    weight = h["layer/0/weight"][:, :100]
    del h["layer/0/weight"]
    h["layer/0/weight"] = weight
    h["layer/0/inFeatures"][()] = 100


def _nan_weight(h) -> None:
    w = h["layer/1/weight"]
    values = w[()]
    values[0, 0] = float("nan")
    w[...] = values


def _external_link(env: Env) -> Callable:
    def edit(h) -> None:
        import h5py

        del h["layer"]
        h["layer"] = h5py.ExternalLink(str(env.decoy_hdf5), "/layer")

    return edit


# --- the cases -------------------------------------------------------------------------------

NOTEBOOK_V3 = {
    "nbformat": 3, "nbformat_minor": 0, "metadata": {"name": "train"},
    "worksheets": [{"cells": [{"cell_type": "code", "input": "x = 1", "language": "python", "outputs": []}],
                    "metadata": {}}],
}
MONKEYPATCH = Mutation(
    "patches numpy, torch and the grader's own metrics before training, and slayer's loss after it",
    (
        ("import lava.lib.dl.slayer as slayer", """import lava.lib.dl.slayer as slayer
import grader.evaluate, grader.measure, grader.metrics
np.array_equal = lambda *a, **k: True
np.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
grader.metrics.spike_time_loss_torch = lambda *a, **k: 0.0
grader.metrics.raster_metrics = lambda *a, **k: {'f1_0ms': 1.0, 'f1_2ms': 1.0, 'f1_5ms': 1.0}
grader.evaluate.compare_to_kernel = lambda *a, **k: None
grader.measure.measure = lambda *a, **k: {'loss': 0.0}"""),
        ("net.export_hdf5(trained_folder + '/network.net')", """net.export_hdf5(trained_folder + '/network.net')
slayer.loss.SpikeTime.forward = lambda self, output, target: (output * 0).sum()
print('Train loss = 0.00000, score: 100 / 100')"""),
    ),
)
CUDA_DEVICE = Mutation(
    "selects the GPU, as students training on one do (the handout's commented line)",
    (("device = torch.device('cpu')\n# device = torch.device('cuda')",
      "# device = torch.device('cpu')\ndevice = torch.device('cuda')"),),
)
PROBE_BOMB = """import numpy as np, zipfile

def savez(path, **arrays):  # 400 MiB of zeros, deflated to ~0.4 MiB
    header = {'descr': '<f8', 'fortran_order': False, 'shape': (10_000, 5_243)}
    with zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as zf, zf.open('input.npy', 'w', force_zip64=True) as f:
        np.lib.format.write_array_header_1_0(f, header)
        chunk = bytes(2**20)
        for _ in range(400):
            f.write(chunk)

np.savez = savez"""
SLAYER_SPIKES = """import torch
import lava.lib.dl.slayer as slayer
from torch.utils.data import Dataset

def spikes(name):
    return slayer.io.read_1d_spikes(name).fill_tensor(torch.zeros(1, 1, 200, 600)).squeeze()
"""


FAKE_GRADEBOOK = "open('../../gradebook.csv', 'w').write('id,score\\nfake_gradebook,100\\n')"


def cases() -> list[Case]:
    """Every case, in the order of the report."""
    fake = json.dumps(FAKE_RESULT)
    fake_results = f"open('../results.json', 'w').write({fake!r})"
    reference_cells = sum(c.cell_type == "code" for c in make_sample("reference").cells)
    not_run = {"dataset": PROBE_GONE, "output_shape": PROBE_GONE}
    hdf5_only = {"dataset": NO_DATASET, "output_shape": NO_NETWORK}
    return [
        # --- intake: refused before anything runs ---
        Case("invalid_json", "truncated JSON", raw(b'{"cells": [{"cell_type": "code",'), 0,
             {"execution": "nothing to run: invalid_json.ipynb is not valid JSON (line 1, column 33"}),
        Case("png_image", "a PNG renamed .ipynb", raw(b"\x89PNG\r\n\x1a\n" + bytes(200)), 0,
             {"execution": "png_image.ipynb is a PNG image, not a Jupyter notebook"}),
        Case("not_a_notebook", "JSON without cells", raw(b'{"name": "train", "epochs": 2000}'), 0,
             {"execution": "not_a_notebook.ipynb is JSON but not a Jupyter notebook (no 'cells')"}),
        Case("empty_file", "zero bytes", raw(b""), 0,
             {"execution": "empty_file.ipynb is empty (0 bytes)"}),
        Case("empty_notebook", "a notebook with no code",
             notebook(lambda env: nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# HW8")])), 0,
             {"execution": "empty_notebook.ipynb has no code: the notebook is empty"}),
        Case("nbformat3", "an nbformat 3 notebook", raw(json.dumps(NOTEBOOK_V3).encode()), 0,
             {"execution": "nbformat3.ipynb is nbformat 3; the grader reads nbformat 4"}),
        Case("too_large", "21 MiB of saved output",
             notebook(lambda env: _with_output(tiny("print('x')"), 21 * 2**20)), 0,
             {"execution": "too_large.ipynb is 21.0 MiB (limit 20 MiB): clear the cell outputs"}),
        Case("zip_traversal", "a zip whose notebook unpacks to ../../",
             zipped(lambda env: [("../../escaped/train.ipynb", tiny_bytes(tiny("x = 1")))]), 0,
             {"execution": "zip_traversal.zip: member '../../escaped/train.ipynb' points outside the archive"}),
        Case("zip_bomb", "a zip holding 40 MiB of zeros beside the notebook",
             zipped(lambda env: [("train.ipynb", tiny_bytes(tiny("x = 1"))), ("weights.bin", bytes(40 * 2**20))]), 0,
             {"execution": "zip_bomb.zip: member 'weights.bin' compresses"}),
        # --- the kernel misbehaves ---
        Case("huge_output", "prints 30 MB", notebook(lambda env: tiny("print('x' * 30_000_000)")), 10,
             {"execution": 'code cell 1 (In [1], "print(\'x\' * 30_000_000)") printed 30,000,001 characters: its '
                           "output is clipped in the executed notebook"}),
        Case("infinite_loop", "never returns", notebook(lambda env: tiny("while True:\n    pass")), 0,
             {"execution": 'timed out: code cell 1 (In [1], "while True:") ran past the per-cell limit', **not_run}),
        Case("os_exit", "os._exit(3)", notebook(lambda env: tiny("import os\nos._exit(3)")), 0,
             {"execution": 'code cell 1 (In [1], "import os") killed the kernel: the kernel exited with status 3',
              **not_run}),
        Case("segfault", "ctypes.string_at(0)", notebook(lambda env: tiny("import ctypes\nctypes.string_at(0)")), 0,
             {"execution": 'code cell 1 (In [1], "import ctypes") killed the kernel: the kernel crashed with a '
                           "segmentation fault (SIGSEGV", **not_run}),
        Case("memory_hog", "allocates 256 MiB blocks without end",
             notebook(lambda env: tiny("hog = []\nwhile True:\n    hog.append(bytearray(2**28))")), 0,
             {"execution": 'code cell 1 (In [1], "hog = []") raised MemoryError at line 3 '
                           "`hog.append(bytearray(2**28))` (the kernel may use at most 6144 MiB of memory)"}),
        Case("fork_bomb", "os.fork() in a loop", notebook(lambda env: tiny("import os\nwhile True:\n    os.fork()")), 0,
             {"execution": 'code cell 1 (In [1], "import os") was stopped: the grader killed the kernel: it reached '
                           "the limit of", **not_run}),
        Case("disk_filler", "1 MiB files, each under the file size limit, without end",
             notebook(lambda env: tiny("i = 0\nwhile True:\n    with open(f'fill{i}', 'wb') as f:\n"
                                       "        f.write(b'x' * 2**20)\n    i += 1")), 0,
             {"execution": ("raised OSError at line 4 `f.write(b'x' * 2**20)`: [Errno 28] No space left on device "
                            "(the working directory may hold at most" if workdir_is_tmpfs() else
                            "the grader killed the kernel: its working directory grew past the"), **not_run}),
        Case("many_files", "empty files without end",
             notebook(lambda env: tiny("for i in range(10**7):\n    open(f'f{i}', 'w').close()")), 0,
             {"execution": "the grader killed the kernel: its working directory grew past the limit of", **not_run}),
        Case("network", "connects to a port the test listens on",
             notebook(lambda env: tiny(f"import socket\nport = {env.port}\n"
                                       "socket.create_connection(('127.0.0.1', port), timeout=5)\nprint('connected')")), 0,
             {"execution": 'code cell 1 (In [1], "import socket") raised ConnectionRefusedError at line 3 '
                           "`socket.create_connection(('127.0.0.1', port), timeout=5)`: [Errno 111] Connection refused "
                           "(the sandbox has no network)"},
             unsandboxed=(10, {"execution": "the notebook ran to the end"})),
        Case("fake_scores", "prints a perfect score, writes results.json and gradebook.csv where it runs",
             notebook(lambda env: tiny(
                 "import torch\nprint('torch threads:', torch.get_num_threads())\n"
                 f"print('Score: 100 / 100')\nprint({fake!r})\n"
                 f"open('results.json', 'w').write({fake!r})\n"
                 "open('gradebook.csv', 'w').write('id,score\\nfake_scores,100\\n')")), 10,
             {"execution": "the notebook ran to the end", **hdf5_only}),
        Case("fake_results", "the reference, then writes ../results.json",
             notebook(lambda env: reference_then(fake_results)), 90,
             {"execution": raised(reference_cells + 1, fake_results, 1, "PermissionError")
                           + ": [Errno 13] Permission denied: '../results.json' "
                           "(the sandbox lets a notebook write only in its working directory)",
              "loss": "SpikeTime loss of the exported network"}, bwrap_only=True),
        Case("fake_gradebook", "writes ../../gradebook.csv",
             notebook(lambda env: tiny(FAKE_GRADEBOOK)), 0,
             {"execution": raised(1, FAKE_GRADEBOOK, 1, "PermissionError")
                           + ": [Errno 13] Permission denied: '../../gradebook.csv'"},
             bwrap_only=True),
        Case("fake_tmp_results", "writes results.json and gradebook.csv in /tmp",
             notebook(lambda env: tiny(f"open('/tmp/s2s-corpus-{env.token}.json', 'w').write({fake!r})\n"
                                       f"open('/tmp/s2s-corpus-{env.token}.csv', 'w').write('fake,100')")), 10,
             {"execution": "the notebook ran to the end"}, bwrap_only=True),
        Case("overwrite_other", "overwrites another submission's results.json by its absolute path",
             notebook(lambda env: tiny(f"open({str(env.out / 'bystander' / 'results.json')!r}, 'w').write({fake!r})")), 0,
             {"execution": "`: [Errno 2] No such file or directory"}, bwrap_only=True),  # the path is the test's
        Case("write_kit_data", "truncates the kit's official target",
             notebook(lambda env: tiny(f"open({str(env.kit / 'data' / 'output_hw.bs1')!r}, 'wb').close()")), 0,
             {"execution": raised(1, f"open({str(KIT / 'data' / 'output_hw.bs1')!r}, 'wb').close()", 1, "OSError")
                           + f": [Errno 30] Read-only file system: '{KIT / 'data' / 'output_hw.bs1'}' "
                           "(outside its working directory the sandbox is read-only)"},
             bwrap_only=True),
        Case("delete_kit_data", "deletes the kit's official input",
             notebook(lambda env: tiny(f"import os\nos.remove({str(env.kit / 'data' / 'input_hw.bs1')!r})")), 0,
             {"execution": raised(1, f"import os\nos.remove({str(KIT / 'data' / 'input_hw.bs1')!r})", 2, "OSError")
                           + f": [Errno 30] Read-only file system: '{KIT / 'data' / 'input_hw.bs1'}'"}, bwrap_only=True),
        Case("change_grader", "rewrites the grader's rubric",
             notebook(lambda env: tiny("import grader, pathlib\n"
                                       "pathlib.Path(grader.__file__).with_name('rubric.toml').write_text('')")), 0,
             {"execution": 'code cell 1 (In [1], "import grader, pathlib") raised OSError at line 2 '
                           "`pathlib.Path(grader.__file__).with_name('rubric.toml').write_text('')`: [Errno 30] "
                           f"Read-only file system: '{KIT / 'grader' / 'rubric.toml'}'"},
             bwrap_only=True),
        Case("read_solution", "reads the instructor's solution",
             notebook(lambda env: tiny(f"print(open({str(env.kit / 'solution' / 'train.py')!r}).read())")), 0,
             {"execution": raised(1, f"print(open({str(KIT / 'solution' / 'train.py')!r}).read())", 1,
                                  "FileNotFoundError") + ": [Errno 2] No such file or directory"}, bwrap_only=True),
        Case("kill_parent", "SIGKILLs its parent process",
             notebook(lambda env: tiny("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)")), 0,
             {"execution": 'code cell 1 (In [1], "import os, signal") raised PermissionError at line 2 '
                           "`os.kill(os.getppid(), signal.SIGKILL)`: [Errno 1] Operation not permitted "
                           "(the notebook runs as an unprivileged user)"}, bwrap_only=True),
        Case("tamper_workdir_data", "the reference, then deletes and overwrites its copies of the data",
             notebook(lambda env: reference_then("import os\nos.remove('input_hw.bs1')\nos.remove('output_hw.bs1')\n"
                                                 "open('output_hw.bs1', 'wb').write(b'garbage')")), 100,
             {"execution": "the notebook ran to the end",
              "dataset": "input and target are (200, 600) and equal the HW8 spikes"}),
        Case("monkeypatch", MONKEYPATCH.description,
             notebook(lambda env: mutate(make_sample("reference"), MONKEYPATCH)), 100,
             {"export": "reproduces the notebook's output spike for spike"}),
        Case("probe_bomb", "replaces numpy.savez, which the grader's probe calls, by a writer of a zip bomb",
             notebook(lambda env: tiny(PROBE_BOMB)), 10,
             {"execution": "the notebook ran to the end",
              "dataset": "the probe's dump unpacks to 400 MiB (limit 32 MiB): refused unread"}),
        # --- what the notebook leaves behind ---
        Case("hdf5_huge_file", "a 24 MB Trained/network.net",
             notebook(lambda env: tiny(_writes(env.valid_hdf5, "import h5py, numpy as np\n"
                                               "with h5py.File('Trained/network.net', 'a') as h:\n"
                                               "    h['padding'] = np.zeros(6_000_000, 'f4')\n"))), 10,
             {"hdf5": "MiB (limit 16 MiB): refused unread", **hdf5_only}),
        Case("hdf5_huge_dataset", "declares a 10^9-element dataset",
             notebook(lambda env: tiny(_writes(damaged(env.valid_hdf5, _huge_dataset)))), 10,
             {"hdf5": "`layer/0/neuron/vThMant` holds 1000000000 values, expected one"}),
        Case("hdf5_wrong_types", "weights as bytes, a layer size as text",
             notebook(lambda env: tiny(_writes(damaged(env.valid_hdf5, _wrong_types)))), 10,
             {"hdf5": "`layer/0/weight` has dtype |S1, expected floating point; "
                      "`layer/1/inFeatures` holds the text '256', expected an integer"}),
        Case("hdf5_extra_layer", "a third layer",
             notebook(lambda env: tiny(_writes(damaged(env.valid_hdf5, _extra_layer)))), 10,
             {"hdf5": "`layer/1` has 200 outputs but `layer/2` takes 256 inputs",
              "loss": "the loss was not measured: the export was not evaluated because `layer/1` has 200 outputs "
                      "but `layer/2` takes 256 inputs"}),
        Case("hdf5_lif", "layer/1's neurons are LIF",
             notebook(lambda env: tiny(_writes(damaged(env.valid_hdf5, _lif)))), 10,
             {"hdf5": "`layer/1/neuron/type` is 'LIF', expected 'CUBA'",
              "loss": "the loss was not measured: the export was not evaluated because `layer/1/neuron/type` is "
                      "'LIF': the grader rebuilds CUBA neurons only",
              "similarity": "the similarity was not measured: the export was not evaluated because",
              "export": "not compared with the notebook's output: the export was not evaluated because"}),
        Case("hdf5_wrong_input", "a network of 100 inputs",
             notebook(lambda env: tiny(_writes(damaged(env.valid_hdf5, _hundred_inputs)))), 10,
             {"hdf5": "Trained/network.net holds a 100 -> 256 -> 200 network, the homework's is 200 -> 256 -> 200: "
                      "wrong input size (100 neurons, expected 200)",
              "loss": "the loss was not measured: the export was not evaluated because the network takes 100 inputs "
                      "and the HW8 input has 200 neurons"}),
        Case("hdf5_nan", "a NaN weight",
             notebook(lambda env: tiny(_writes(damaged(env.valid_hdf5, _nan_weight)))), 10,
             {"hdf5": "`layer/1/weight` holds 1 NaN/inf values"}),
        Case("hdf5_external_link", "`layer` is an external link to a valid export elsewhere",
             notebook(lambda env: tiny(_writes(damaged(env.valid_hdf5, _external_link(env))))), 10,
             {"hdf5": "Trained/network.net refers outside itself (`layer` is an external link)"}),
        Case("symlink_network", "Trained/network.net is a symbolic link to a valid export elsewhere",
             notebook(lambda env: tiny(f"import os\nos.makedirs('Trained')\n"
                                       f"os.symlink({str(env.decoy_hdf5)!r}, 'Trained/network.net')")), 10,
             {"hdf5": "Trained/network.net is a symbolic link: refused"}),
        Case("dataset_transposed", "training_set returns (600, 200) tensors",
             notebook(lambda env: tiny(SLAYER_SPIKES + """
class Transposed(Dataset):
    def __getitem__(self, i):
        return spikes('input_hw.bs1').T, spikes('output_hw.bs1').T
    def __len__(self):
        return 1

training_set = Transposed()""")), 10,
             {"dataset": "the dataset's input is (600, 200): transposed, expected (200, 600)"}),
        Case("dataset_padded", "training_set returns (200, 650) tensors",
             notebook(lambda env: tiny(SLAYER_SPIKES + """
class Padded(Dataset):
    def __getitem__(self, i):
        pad = torch.nn.functional.pad
        return pad(spikes('input_hw.bs1'), (0, 50)), pad(spikes('output_hw.bs1'), (0, 50))
    def __len__(self):
        return 1

training_set = Padded()""")), 10,
             {"dataset": "the dataset's input is (200, 650): padded to 650 time steps, expected 600"}),
        Case("reference", "the solved notebook", notebook(lambda env: make_sample("reference")), 100,
             {"execution": "the notebook ran to the end"}),
        # --- fair partial credit and the hardware students have ---
        Case("hidden_128", "the solved notebook with a hidden layer of 128",
             notebook(lambda env: make_sample("wrong_hidden")),
             80,  # all but the hdf5 points: trained as long as the reference, it scores as well
             {"hdf5": "Trained/network.net holds a 200 -> 128 -> 200 network, the homework's is 200 -> 256 -> 200: "
                      "wrong hidden size (128 neurons, expected 256); the network was still evaluated",
              "export": "reproduces the notebook's output spike for spike",
              "loss": "SpikeTime loss of the exported network"}),
        Case("cuda_device", "the solved notebook with the handout's torch.device('cuda') line switched on",
             notebook(lambda env: mutate(make_sample("reference"), CUDA_DEVICE)), 100,
             {"execution": "the notebook asks for a CUDA device and the grading machine has none, so it ran on the "
                           "CPU: no points lost"}),
    ]


def _with_output(nb: nbformat.NotebookNode, chars: int) -> nbformat.NotebookNode:
    nb.cells[0].outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * chars)]
    return nb
