"""Hostile notebooks, one per class of issue 16, each with the outcome the grader must give in every flow.

Written as a determined student would, small (no training: a kernel start is what
costs), generated when the test runs (tests/test_hostile.py, and the Gradescope flow
in tests/test_gradescope.py). `harmful_unconfined`: the case would change the kit
(or read the solution) if the kernel ran with the grader's own rights, which happens
only where bubblewrap is absent and the kit's Python cannot be reached by a uid of
its own (grader.sandbox.mode says so): there it is left out, with the reason.
"""

from __future__ import annotations

import base64
import json
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import nbformat

from grader import rubric
from grader.artifacts import malformed

KIT = Path(__file__).resolve().parent.parent.parent
FAKE = {"score": 100, "max_score": 100, "output": "forged", "tests": []}
RAN = "the notebook ran to the end"


@dataclass(frozen=True)
class Hostile:
    name: str  # the submission id
    what: str
    build: Callable[[Path], None]  # writes the submission into the folder of submissions
    score: float
    messages: dict[str, str]  # check -> a fragment of its message
    harmful_unconfined: bool = False


def tiny(*sources: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def notebook(nb: nbformat.NotebookNode) -> Callable[[Path], None]:
    def build(folder: Path) -> None:
        nbformat.write(nb, folder.with_suffix(".ipynb"))

    return build


def _png() -> str:
    """A valid 1×1 PNG, base64: what a saved figure looks like in a notebook."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        import struct

        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", bytes.fromhex("0000000100000001080600000000")[:13]) \
        + chunk(b"IDAT", zlib.compress(b"\x00\x00\x00\x00\x00")) + chunk(b"IEND", b"")
    return base64.b64encode(raw).decode()


# A daemon that leaves the kernel's session and, for a minute, rewrites every result it can reach:
# the batch's (OUT/<id>/results.json, OUT/gradebook.csv: the run is in OUT/_tmp/_work/<id>) and
# Gradescope's (ROOT/results/results.json: the run is in ROOT/grading/_tmp/_work/submission).
DAEMON = f"""import os, time, json
fake = {json.dumps(FAKE)!r}
me = os.path.basename(os.getcwd())
targets = ['../../../' + me + '/results.json', '../../../gradebook.csv', '../../../../results/results.json']
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        for _ in range(600):
            for t in targets:
                try:
                    open(t, 'w').write(fake if t.endswith('.json') else 'id,score\\n' + me + ',100\\n')
                except OSError:
                    pass
            time.sleep(0.1)
        os._exit(0)
    os._exit(0)
print('daemon started')"""

PATCH = """import grader, pathlib
path = pathlib.Path(grader.__file__).with_name('evaluate.py')
with open(path, 'a') as f:
    f.write('\\nraster_metrics = lambda *a, **k: {"f1_0ms": 1.0, "f1_2ms": 1.0, "f1_5ms": 1.0, "correlation_5ms": 1.0}\\n')"""

READ_SOLUTION = f"""source = open({str(KIT / 'solution' / 'network.py')!r}).read()
class Leak(__import__('torch').utils.data.Dataset):
    def __getitem__(self, i):
        raise RuntimeError(source)
    def __len__(self):
        return 1
training_set = Leak()"""

WRONG_TYPES = """import grader.probe, types
forged = '{"errors": {"network": 7}, "input_shape": 5, "target_shape": [200, "600"], "output_shape": "big"}'
grader.probe.json = types.SimpleNamespace(dumps=lambda *a, **k: forged)"""

BROKEN_SESSION = """import json
dumps = json.dumps
json.dumps = lambda obj, *a, **k: dumps({} if isinstance(obj, dict) and 'msg_id' in obj else obj, *a, **k)"""

NON_STRING_STREAM = """k = get_ipython().kernel
parent = k.get_parent('shell') if hasattr(k, 'get_parent') else k._parent_header
for content in ({'name': 'stdout', 'text': 5}, {'name': 'stdout', 'text': ['a']}, {'name': 5, 'text': 'x'}):
    k.session.send(k.iopub_socket, 'stream', content, parent=parent)
k.session.send(k.iopub_socket, 'display_data', {'data': 'x', 'metadata': 5}, parent=parent)
k.session.send(k.iopub_socket, 'execute_result', {'data': {'text/plain': 3}, 'execution_count': 'x'}, parent=parent)
print('sent')"""

UPDATE_FLOOD = """from IPython.display import display
handle = display('start', display_id=True)
for _ in range(3):
    handle.update('y' * 10_000_000)"""

FALLOCATE = """import os
for i in range(24):
    fd = os.open(f'burst{i}', os.O_CREAT | os.O_WRONLY)
    os.posix_fallocate(fd, 0, 32 * 2**20)
    os.close(fd)"""


def symlinked(folder: Path) -> None:
    folder.mkdir()
    (folder / "train.ipynb").symlink_to(KIT / "solution" / "train.ipynb")


def saved_outputs(folder: Path) -> None:
    nb = tiny("1 / 0", "", "x = 1")
    figure = nbformat.v4.new_output("display_data", data={"image/png": _png(), "text/plain": "<Figure>"})
    for cell in nb.cells[1:]:
        cell.outputs = [figure]
    nbformat.write(nb, folder.with_suffix(".ipynb"))


CLASHING = ("gradebook.csv", "index.html")


def clashing(folder: Path) -> None:
    """This one, and `gradebook.csv.ipynb` and `index.html.ipynb` beside it (graded as `<name>-2`)."""
    for name in (folder.name, *CLASHING):
        nbformat.write(tiny("x = 1"), folder.parent / f"{name}.ipynb")


def cases() -> list[Hostile]:
    no_dataset = {"dataset": "no variable `training_set`", "output_shape": "no variable `net`"}
    return [
        Hostile("daemon_forge", "a setsid() double-forked daemon rewrites the results after the run",
                notebook(tiny(DAEMON)), 10, {"execution": RAN, **no_dataset}),
        Hostile("patch_grader", "appends to grader/evaluate.py, which a worker imports late",
                notebook(tiny(PATCH)), 0, {"execution": 'code cell 1 (In [1], "import grader, pathlib") raised '},
                harmful_unconfined=True),
        Hostile("read_solution", "reads solution/network.py to echo it through the probe's messages",
                notebook(tiny(READ_SOLUTION)), 0,
                {"execution": 'code cell 1 (In [1], "source = open(', "dataset": "no variable `training_set`"},
                harmful_unconfined=True),
        Hostile("wrong_types", "forges the probe's record: a shape that is a number, an error that is not text",
                notebook(tiny(WRONG_TYPES)), 10,
                {"execution": RAN,
                 "dataset": malformed("input_shape", "an int, expected a list of at most 8 integers"),
                 "output_shape": malformed("errors.network", "an int, expected a message")}),
        Hostile("broken_session", "patches json.dumps so that the kernel's replies lose their msg_id",
                notebook(tiny(BROKEN_SESSION)), 0,
                {"execution": 'code cell 1 (In [1], "import json") broke the kernel\'s messages: the grader could '
                              "not read what the kernel sent (KeyError: 'msg_id')"}),
        Hostile("non_string_stream", "sends IOPub messages of the wrong types on the kernel's own socket",
                notebook(tiny(NON_STRING_STREAM)), 10, {"execution": RAN}),
        Hostile("update_flood", "three 10 MB update_display_data", notebook(tiny(UPDATE_FLOOD)), 10,
                {"execution": 'printed 30,000,'}),
        Hostile("fallocate_burst", "24 x 32 MiB posix_fallocate in a burst (disk limit 64 MiB)",
                notebook(tiny(FALLOCATE)), 0, {"execution": 'code cell 1 (In [1], "import os")'}),
        Hostile("symlink_train", "a folder whose train.ipynb links to the kit's solved notebook", symlinked, 0,
                {"execution": "nothing to run: symlink_train/train.ipynb is a symbolic link: refused"}),
        Hostile("saved_figure", "a saved figure in cells that never run (after a failing cell, an empty one)",
                saved_outputs, 0, {"execution": 'code cell 1 (In [1], "1 / 0") raised ZeroDivisionError',
                                   "figure": rubric.NO_FIGURE}),
        Hostile("clash", "beside it, gradebook.csv.ipynb and index.html.ipynb", clashing, 10, {"execution": RAN}),
    ]
