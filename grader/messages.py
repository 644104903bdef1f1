"""What the grader and the notebook's own checks say about a fault: one function or constant per message.

Both sides word a fault through this module, so they cannot disagree: the
grader's rubric (``grader.messages``) and ``hw8_check.py``, which a student
runs beside the notebook, where this file travels as ``hw8_messages.py``
(copied into the student bundle and the grader's working folder, linked in
``assignment/``). Hence pure functions of plain values and the standard
library only; the homework's facts come from ``solution/homework.py``, which
travels beside it as ``hw8_homework.py``.
"""

from __future__ import annotations

from collections.abc import Sequence

if __package__:  # inside the kit, as grader.messages
    from solution import homework
else:  # beside the notebook, as hw8_messages
    import hw8_homework as homework  # type: ignore[no-redef]

EXPECTED = homework.SHAPE
SOURCE = {"input": homework.INPUT_FILE, "target": homework.TARGET_FILE}
ARCHITECTURE = " -> ".join(map(str, homework.LAYERS))
HDF5 = str(homework.NETWORK_HDF5)
STATE = str(homework.NETWORK_STATE)
LOSS_LOG = str(homework.LOSS_LOG)

# --- passes --------------------------------------------------------------------------------
DATASET_OK = f"input and target are {EXPECTED} and equal the HW8 spikes"
OUTPUT_OK = f"the network's output on the input is {EXPECTED}"
NETWORK_OK = f"{ARCHITECTURE}, slayer.block.cuba.Dense blocks; {OUTPUT_OK}"
LOSS_OK = f"error is {homework.LOSS}, a sum over neurons and time steps (the Train loss you see)"


# --- any step ------------------------------------------------------------------------------
def raised(expression: str, exc: BaseException) -> str:
    """`expression` failed with `exc`: the exception's own words, after what was run."""
    return f"{expression} raised {type(exc).__name__}: {exc}"


def not_a(variable: str, got: str, expected: str) -> str:
    """A handout variable holds something of the wrong kind (`got`: its type's name, or 'None')."""
    article = "" if got == "None" else ("an " if got[:1].lower() in "aeiou" else "a ")
    return f"`{variable}` is {article}{got}, expected {expected}"


# --- the dataset ---------------------------------------------------------------------------
def diagnose_shape(what: str, shape: Sequence[int] | None, allow_batch: bool = False) -> str | None:
    """None when `shape` is (200, 600); otherwise a message that names the mistake."""
    if shape is None:
        return f"{what}: no tensor to check"
    dims = list(shape)
    if allow_batch and len(dims) == 3 and dims[0] == 1:
        dims = dims[1:]
    while len(dims) > 2 and dims[0] == 1:
        dims = dims[1:]
    n, t = EXPECTED
    if dims == [n, t]:
        return None
    if dims == [t, n]:
        return f"{what} is {tuple(shape)}: transposed, expected {EXPECTED} (neurons × time steps)"
    if len(dims) != 2:
        return f"{what} has shape {tuple(shape)}, expected {EXPECTED}"
    if dims[0] != n:
        return f"{what} is {tuple(shape)}: {dims[0]} neurons, expected {n}"
    if dims[1] > t:
        return f"{what} is {tuple(shape)}: padded to {dims[1]} time steps, expected {t} (the HW8 change)"
    return f"{what} is {tuple(shape)}: truncated to {dims[1]} time steps, expected {t}"


def dataset_differs(key: str, differing: int) -> str:
    """The dataset's `key` ('input' or 'target') has the right shape but not the HW8 spikes."""
    return (
        f"the dataset's {key} has the right shape but differs from {SOURCE[key]} in {differing} "
        "entries (wrong file, or spikes binned differently)"
    )


def missing_data(name: str, folder: str) -> str:
    """A data file is not where the notebook runs."""
    return (f"{name} is not in {folder}, where the notebook runs: put {homework.INPUT_FILE} and "
            f"{homework.TARGET_FILE} next to {homework.NOTEBOOK}")


def missing_variable(name: str, kind: str) -> str:
    """The grader's probe found neither the handout's variable nor any object of its kind."""
    return f"no variable `{name}` (and no {kind}) in the notebook"


def not_a_pair(expression: str, got: str) -> str:
    """The dataset's item is not an (input, target) pair."""
    return f"{expression} returned {got}, not (input, target)"


def not_spikes(what: str, got: str) -> str:
    """An item of the dataset is not a tensor of numbers."""
    return f"{what} is a {got}, not a tensor: return spike tensors, as Event.fill_tensor(torch.zeros(...)) gives"


def wrong_dtype(what: str, dtype: str) -> str:
    """Spikes of a type slayer's blocks and loss cannot take next to float32 weights."""
    return (f"{what} holds {dtype} values, expected float32 spikes (slayer's blocks and loss compute in "
            "float32): fill a torch.zeros(...) tensor, which is float32")


# --- the network ---------------------------------------------------------------------------
NO_BLOCKS = "`net` has no `blocks`: keep the handout's self.blocks = torch.nn.ModuleList([...])"


def architecture(sizes: Sequence[int]) -> str:
    """The blocks' sizes, input to output, are not 200 -> 256 -> 200."""
    return (f"the network is {' -> '.join(map(str, sizes))}, expected {ARCHITECTURE} "
            f"({len(homework.LAYERS) - 1} slayer.block.cuba.Dense blocks)")


def block_type(index: int, got: str) -> str:
    """A block is not a CUBA dense block."""
    return f"block {index} is {got}, expected slayer.block.cuba.Dense ({homework.NEURON_TYPE} neurons)"


def threshold(index: int, got: float, expected: float) -> str:
    """A block's neuron threshold is not the handout's (compared after slayer's quantization)."""
    return (f"block {index}'s neuron threshold is {got:g}, expected {expected:g} "
            f"(threshold {homework.NEURON_PARAMS['threshold']} in neuron_params, after slayer's quantization)")


# --- the loss ------------------------------------------------------------------------------
def loss_type(got: str) -> str:
    """`error` is another loss than SpikeTime."""
    return f"error is {got}, expected {homework.LOSS}"


def loss_filter(found: dict[str, int] | None) -> str:
    """SpikeTime's filter is not the handout's; `found`: the SpikeTime arguments that give it, if known."""
    what = "" if found is None else " (it is " + ", ".join(f"{k}={v}" for k, v in found.items()) + ")"
    return f"error's filter is not that of {homework.LOSS}{what}"


def loss_reduction(got: str) -> str:
    """SpikeTime reduced otherwise than slayer's default sum."""
    return f"error uses reduction={got!r}: keep slayer's default 'sum', the loss the grader reports"


# --- the export ----------------------------------------------------------------------------
WRITES = {  # what writes each file the grader reads, by file name
    homework.NETWORK_HDF5.name: "export the best network there with net.export_hdf5",
    homework.NETWORK_STATE.name: "save the best network's state_dict there during training (torch.save)",
    homework.LOSS_LOG.name: "save the learning statistics every epoch with stats.save(trained_folder + '/')",
}


def export_ok(compared: bool) -> str:
    """The export check passed; `compared`: the file was compared with `net`'s weights."""
    holds = "net's weights" if compared else "slayer's export"
    return f"{HDF5} holds {holds} ({ARCHITECTURE}); {STATE} and {LOSS_LOG} are there"


def trained_folder(got: str) -> str:
    """The notebook writes its files elsewhere than where the grader reads them."""
    return (f"trained_folder is {got!r}, expected {homework.TRAINED_FOLDER!r}: the grader reads "
            f"{HDF5}, {STATE} and {LOSS_LOG}")


def missing_file(path: str) -> str:
    """A file the notebook must write is not there."""
    name = path.replace("\\", "/").rsplit("/", 1)[-1]
    return f"{path} is missing: {WRITES.get(name, 'the notebook must write it')}"


def not_hdf5(path: str, why: str) -> str:
    """The export cannot be opened as HDF5."""
    return f"{path} is not a readable HDF5 file ({why})"


def hdf5_missing(where: str) -> str:
    """An entry slayer's export writes is not in the file (the grader's hdf5 check says it the same way)."""
    return f"`{where}` is missing"


def layers_found(names: Sequence[str], path: str = HDF5) -> str:
    """The export's `layer` group does not hold one group per block."""
    expected = " and ".join(f"`layer/{i}`" for i in range(len(homework.LAYERS) - 1))
    got = ", ".join(f"`layer/{n}`" for n in names) or "nothing"
    return f"{path} holds {got}, expected {expected} (one group per block)"


EXPORT_BEFORE_FORWARD = (
    "slayer's export_hdf5 writes what each block learns in its first forward pass: run the network once "
    "(train it, or call net(input)) before net.export_hdf5"
)
WHOLE_MODEL_SAVED = (
    "the grader's torch loads only weights: save the weights with torch.save(net.state_dict(), path) and load "
    "them with net.load_state_dict(torch.load(path)); torch.save(net, path) of the whole network loads only in "
    "older torch, such as the course environment's"
)


def export_stopped(where: str) -> str:
    """A block's group holds only `type`: slayer's export failed on the neuron shape (before any forward pass)."""
    return (f"`{where}` holds only `type`: the export stopped there (TypeError: Object dtype dtype('O') has "
            f"no native HDF5 equivalent); {EXPORT_BEFORE_FORWARD}")


def weight_shape(where: str, got: Sequence[int], n_out: int, n_in: int) -> str:
    """An exported weight of the wrong shape."""
    hint = " (transposed)" if tuple(got) == (n_in, n_out) else ""
    return f"`{where}` has shape {tuple(got)}{hint}, expected ({n_out}, {n_in}) = (out, in)"


def weights_differ(where: str, differing: int, total: int) -> str:
    """The export does not hold the network's current weights."""
    return (f"`{where}` differs from net's weights in {differing} of {total} entries: load the best "
            f"checkpoint ({STATE}) into net, then export it")


def not_a_state_dict(path: str, why: str) -> str:
    """network.pt does not load as weights (e.g. a whole pickled model)."""
    return f"{path} does not load with torch.load(..., weights_only=True) ({why}): {WHOLE_MODEL_SAVED}"


def check_failed(exc: BaseException) -> str:
    """The notebook check itself broke: say so, and that the grader measures the step on its own."""
    return (f"this check could not run ({type(exc).__name__}: {exc}); the grader measures this step on its "
            "own, so your notebook may still be right")


# --- the clock (hw8_check.clock): not a fault, the time the course budget takes here ---------


def duration(seconds: float) -> str:
    """`51 s`, `10 min`, `1.5 h`: how long, as a student plans it (`under a second`, never `0 s`)."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def epoch_time(seconds_per_epoch: float, first: int, last: int, machine: str, threads: int, epochs: int,
               course_epochs: int = homework.COURSE_EPOCHS) -> str:
    """The clock's line: an epoch's time measured here (epochs first..last), and the course budget's."""
    thread_note = "one torch thread" if threads == 1 else (
        f"{threads} torch threads: torch.set_num_threads(1) in the first cell is often faster")
    line = (f"time: {seconds_per_epoch:.3f} s an epoch on this machine ({machine}, {thread_note}), measured over "
            f"epochs {first}-{last}: the course's {course_epochs} epochs take about "
            f"{duration(course_epochs * seconds_per_epoch)} here")
    if epochs != course_epochs:
        line += f"; this run's {epochs} about {duration(epochs * seconds_per_epoch)}"
    return line


def not_timed(got: str) -> str:
    return (f"time: `optimizer` is a {got}, not a torch optimizer, so the epochs cannot be timed: "
            "create it first (part 2), then run this cell again")


# --- the numerical mode (hw8_check.mode): whether the notebook's numbers are the grader's --------


def mode_ok(label: str) -> str:
    return (f"numbers as the grader's: its numerical mode is in force here ({label}); seeded as the grader "
            "seeds (random, numpy and torch with 0, before the first cell), your loss at a budget is the grader's")


ORDERS_OFF = ("numbers not quite the grader's: the grader's own sums are not installed, so slayer's dense layers, "
              "Adam's square root and the surrogate gradient's exp use the libraries' code, which rounds differently "
              "on different CPUs; your grade does not change (the grader trains and measures itself). To match: run "
              "`import hw8_exact; hw8_exact.install()` right after importing slayer")


def mode_off(label: str, fixable: bool) -> str:
    fix = ("restart the kernel and run the notebook from the top: hw8_numerics.pin() in the first cell must run "
           "before torch is imported" if fixable else
           "this machine cannot run that mode (it needs an x86-64 CPU with AVX2 and torch's MKL build)")
    return (f"numbers not quite the grader's: {label}. Your loss can differ from the grader's in the last digits "
            f"and drift over epochs; your grade does not change (the grader trains and measures itself). To match: {fix}")

