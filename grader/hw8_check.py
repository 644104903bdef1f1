"""The homework's own checks, one call after each step of the notebook (otter-grader's grader.check is the model).

    import hw8_check
    hw8_check.mode()                       # the grader's numerical mode, read back as the grader does
    hw8_check.dataset(training_set)        # part 2: the dataset
    hw8_check.network(net)                 # part 2: the network
    hw8_check.loss(error)                  # part 2: the loss module
    hw8_check.export(trained_folder, net)  # part 3: the export
    clock = hw8_check.clock(optimizer, epochs)  # before training: the time an epoch takes here

Each prints "✓ step: what passed", or one "✗ step: what is wrong" line per
fault, in the grader's own words: both take them from the same message
functions (``hw8_messages.py`` here, ``grader/messages.py`` in the kit), so
they cannot word one fault two ways. A check never raises, so a notebook
runs on past a failed one. The grader never reads this output: it measures
every step itself.

This file travels beside train.ipynb with hw8_messages.py,
hw8_homework.py and hw8_numerics.py (the student bundle, ``assignment/``, the grader's working
folder; in the kit it is ``grader.hw8_check``). It needs only what the
notebook imports anyway (torch, numpy, h5py, lava-dl's slayer), loaded when
a check runs. The ``*_problems`` functions return the messages instead of
printing them.
"""

from __future__ import annotations

import os
import platform
import time
from pathlib import Path
from typing import Any, Callable

if __package__:  # inside the kit, as grader.hw8_check
    from grader import messages
    from solution import numerics
else:  # beside the notebook
    import hw8_messages as messages  # type: ignore[no-redef]
    import hw8_numerics as numerics  # type: ignore[no-redef]

homework = messages.homework
PASSED, FAILED = "✓", "✗"
STEPS = homework.STEPS
NEURONS = homework.NEURONS


class MissingData(FileNotFoundError):
    """A data file is not in the folder the notebook runs in; its message says what to do."""


# --- what every check shares ---------------------------------------------------------------


def _kind(value: Any) -> str:
    """A value's type as a student reads it: 'None', 'list', 'slayer.block.cuba.Dense'."""
    if value is None:
        return "None"
    cls = type(value)
    module = cls.__module__.replace("lava.lib.dl.slayer", "slayer")
    return cls.__qualname__ if module == "builtins" else f"{module}.{cls.__qualname__}"


def official_spikes(folder: str | os.PathLike[str] = ".") -> dict[str, Any]:
    """The HW8 input and target as the grader reads them: (200, 600) float32 tensors, from `folder`."""
    import torch

    import lava.lib.dl.slayer as slayer

    spikes = {}
    for key, name in messages.SOURCE.items():
        path = Path(folder) / name
        if not path.is_file():
            raise MissingData(messages.missing_data(name, str(Path(folder).resolve())))
        event = slayer.io.read_1d_spikes(str(path))
        event.t = event.t.astype(int)
        spikes[key] = event.fill_tensor(torch.zeros(1, 1, *homework.SHAPE)).squeeze()
    return spikes


def _report(step: str, problems: Callable[..., list[str]], args: tuple[Any, ...], passed: str) -> None:
    try:
        found = problems(*args)
    except Exception as exc:  # a broken check must not stop the student's notebook
        found = [messages.check_failed(exc)]
    for line in found or [passed]:
        print(f"{FAILED if found else PASSED} {step}: {line}")


# --- the numerical mode --------------------------------------------------------------------


def mode_problems() -> list[str]:
    """[] when the grader's numerical mode is in force in this process, read back from torch and MKL as the
    grader reads it (``numerics.describe``), with the grader's own sums installed (``hw8_exact``); else
    what is in force instead, and the fix."""
    info = numerics.describe()
    problems = []
    if not info["in_force"]:
        fixable = info["machine"] in ("x86_64", "AMD64") and info["mkl_cnr"] is not None  # x86-64 torch with MKL
        problems.append(messages.mode_off(numerics.label(info), fixable))
    if not _orders_installed():
        problems.append(messages.ORDERS_OFF)
    return problems


def _orders_installed() -> bool:
    """Whether slayer's dense layers sum in the grader's order (``hw8_exact.install()``, or the grader's own)."""
    from lava.lib.dl.slayer.synapse import layer

    return bool(getattr(layer.Dense.forward, "__kit_orders__", False))


def _mode_ok() -> str:
    try:
        return messages.mode_ok(numerics.label())
    except Exception as exc:  # the ✓ line is not printed then: mode_problems has said what went wrong
        return messages.check_failed(exc)


def mode() -> None:
    """Print whether this notebook computes in the grader's numerical mode, so that its numbers are the grader's."""
    _report("mode", mode_problems, (), _mode_ok())


# --- the dataset ---------------------------------------------------------------------------


def _numbers(value: Any) -> Any:
    """`value` as a numpy array of numbers (torch tensors and array-likes), or None."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception:
        return None
    return arr if arr.dtype.kind in "biuf" else None


def dataset_problems(training_set: Any, folder: str | os.PathLike[str] = ".") -> list[str]:
    """What is wrong with the dataset, in the grader's words; [] when item 0 is the HW8 (input, target)."""
    import numpy as np

    var = homework.DATASET_VARIABLE
    if not hasattr(training_set, "__getitem__"):
        return [messages.not_a(var, _kind(training_set), "a torch Dataset (OxfordDataset())")]
    try:
        item = training_set[0]
    except Exception as exc:
        return [messages.raised(f"{var}[0]", exc)]
    if not isinstance(item, (tuple, list)) or len(item) < 2:
        return [messages.not_a_pair(f"{var}[0]", type(item).__name__)]
    try:
        official = official_spikes(folder)
    except MissingData as exc:
        return [str(exc)]
    problems = []
    for key, value in zip(("input", "target"), item[:2]):
        what = f"the dataset's {key}"
        arr = _numbers(value)
        if arr is None:
            problems.append(messages.not_spikes(what, _kind(value)))
            continue
        wrong_shape = messages.diagnose_shape(what, list(arr.shape))
        if wrong_shape:
            problems.append(wrong_shape)
        elif arr.dtype != np.float32:
            problems.append(messages.wrong_dtype(what, str(getattr(value, "dtype", arr.dtype))))
        else:
            differing = int(np.sum(arr.reshape(homework.SHAPE) != official[key].numpy()))
            if differing:
                problems.append(messages.dataset_differs(key, differing))
    return problems


def dataset(training_set: Any) -> None:
    """Print whether `training_set[0]` is the HW8 (input, target) pair, (200, 600) float32 each."""
    _report("dataset", dataset_problems, (training_set,), messages.DATASET_OK)


# --- the network ---------------------------------------------------------------------------


def _block_problems(blocks: list[Any]) -> list[str]:
    import lava.lib.dl.slayer as slayer

    problems = []
    sizes: list[int] = []
    reference = slayer.neuron.cuba.Neuron(**homework.NEURON_PARAMS).threshold
    for i, block in enumerate(blocks):
        if not isinstance(block, slayer.block.cuba.Dense):
            problems.append(messages.block_type(i, _kind(block)))
        weight = getattr(getattr(block, "synapse", None), "weight", None)
        if weight is not None and weight.dim() >= 2:
            n_out, n_in = (int(n) for n in weight.shape[:2])
            sizes += [n_in, n_out] if not sizes else [n_out]
        got = getattr(getattr(block, "neuron", None), "threshold", None)
        if isinstance(got, float) and got != reference:
            problems.append(messages.threshold(i, got, reference))
    if sizes != list(homework.LAYERS):
        problems.append(messages.architecture(sizes))
    return problems


def _output_shape(net: Any, folder: str | os.PathLike[str]) -> list[int]:
    """The shape of net's output on the official input, run as the grader runs it, on a copy of net:
    a forward pass sets what slayer's export needs, and the check must not hide a missing one."""
    import copy

    import torch

    spikes = official_spikes(folder)["input"]
    try:
        net = copy.deepcopy(net)
    except Exception:  # a module that cannot be copied runs as it is
        pass
    device = next(net.parameters()).device
    with torch.no_grad():
        out = net(spikes.unsqueeze(0).to(device))
    if isinstance(out, (tuple, list)):
        out = out[0]
    return list(out.shape)


def network_problems(net: Any, folder: str | os.PathLike[str] = ".") -> list[str]:
    """What is wrong with the network, in the grader's words; [] for CUBA 200 -> 256 -> 200, output (200, 600)."""
    import torch

    var = homework.NETWORK_VARIABLE
    if not isinstance(net, torch.nn.Module):
        return [messages.not_a(var, _kind(net), "a torch.nn.Module (Network())")]
    blocks = getattr(net, "blocks", None)
    if blocks is None:
        return [messages.NO_BLOCKS]
    problems = _block_problems(list(blocks))
    try:
        shape = _output_shape(net, folder)
    except MissingData as exc:
        return problems + [str(exc)]
    except Exception as exc:
        return problems + [messages.raised(f"{var}(input)", exc)]
    wrong_shape = messages.diagnose_shape("the network's output", shape, allow_batch=True)
    return problems + ([wrong_shape] if wrong_shape else [])


def network(net: Any) -> None:
    """Print whether `net` is the handout's network and gives a (200, 600) output on the HW8 input."""
    _report("network", network_problems, (net,), messages.NETWORK_OK)


# --- the loss ------------------------------------------------------------------------------


FIR_LENGTH = 100  # slayer's default SpikeTime length, which the handout keeps


def _taps(time_constant: int, filter_order: int, length: int = FIR_LENGTH) -> Any:
    import lava.lib.dl.slayer as slayer

    loss = slayer.loss.SpikeTime(time_constant=time_constant, filter_order=filter_order, length=length)
    return loss.filter.filter.detach().cpu()


def _same(a: Any, b: Any) -> bool:
    return tuple(a.shape) == tuple(b.shape) and bool((a == b).all())


def _identify(taps: Any) -> dict[str, int] | None:
    """The SpikeTime arguments whose filter is `taps`, for small whole values; else None."""
    length = int(taps.shape[-1])
    for order in range(1, 5):
        for constant in range(1, 21):
            if _same(_taps(constant, order, length), taps):
                found = {"time_constant": constant, "filter_order": order}
                return found if length == FIR_LENGTH else {**found, "length": length}
    return None


def loss_problems(error: Any) -> list[str]:
    """What is wrong with the loss module; [] for slayer.loss.SpikeTime(time_constant=2, filter_order=2)."""
    import lava.lib.dl.slayer as slayer

    if not isinstance(error, slayer.loss.SpikeTime):
        return [messages.loss_type(_kind(error))]
    problems = []
    taps = error.filter.filter.detach().cpu()
    if not _same(taps, _taps(**homework.LOSS_PARAMS)):
        problems.append(messages.loss_filter(_identify(taps)))
    if error.reduction != "sum":
        problems.append(messages.loss_reduction(str(error.reduction)))
    return problems


def loss(error: Any) -> None:
    """Print whether `error` is SpikeTime with the handout's filter and slayer's sum."""
    _report("loss", loss_problems, (error,), messages.LOSS_OK)


# --- the export ----------------------------------------------------------------------------


def _first_line(exc: BaseException, limit: int = 160) -> str:
    line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _state_problems(path: Path) -> list[str]:
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        pickled = "Weights only load failed" in str(exc)  # torch's words for pickled objects
        why = "it holds pickled Python objects, not only tensors" if pickled else _first_line(exc)
        return [messages.not_a_state_dict(str(path), why)]
    if not isinstance(state, dict):
        return [messages.not_a_state_dict(str(path), f"it holds a {_kind(state)}")]
    return []


def _exported_weight(block: Any) -> Any:
    """The weight as slayer's block.export_hdf5 writes it (after the synapse's quantization hook)."""
    import torch

    synapse = block.synapse
    with torch.no_grad():
        weight = synapse.pre_hook_fx(synapse.weight, descale=True)
    return weight.reshape(synapse.weight.shape[:2]).cpu().numpy()


def _layer_problems(layer: Any, where: str, index: int, net: Any) -> list[str]:
    import h5py
    import numpy as np

    if not isinstance(layer, h5py.Group):
        return [messages.hdf5_missing(where)]
    problems = [messages.hdf5_missing(f"{where}/{key}") for key in ("shape", "weight", "neuron")
                if key not in layer]
    if "weight" not in layer or not isinstance(layer["weight"], h5py.Dataset):
        return problems
    n_in, n_out = homework.LAYERS[index], homework.LAYERS[index + 1]
    weight = layer["weight"]
    if weight.shape != (n_out, n_in):
        return problems + [messages.weight_shape(f"{where}/weight", weight.shape, n_out, n_in)]
    blocks = list(getattr(net, "blocks", None) or [])
    if net is not None and index < len(blocks):
        mine = _exported_weight(blocks[index])
        if mine.shape == weight.shape:
            differing = int(np.sum(weight[()] != mine))
            if differing:
                problems.append(messages.weights_differ(f"{where}/weight", differing, int(weight.size)))
    return problems


def _hdf5_problems(path: Path, net: Any) -> list[str]:
    import h5py

    shown = str(path)
    try:
        h = h5py.File(path, "r")
    except OSError as exc:
        return [messages.not_hdf5(shown, _first_line(exc))]
    with h:
        if "layer" not in h or not isinstance(h["layer"], h5py.Group):
            return [messages.hdf5_missing("layer")]
        names = sorted(h["layer"].keys())
        stopped = [n for n in names if isinstance(h["layer"][n], h5py.Group) and set(h["layer"][n].keys()) == {"type"}]
        if stopped:  # the export raised there: what follows it is missing for that reason alone
            return [messages.export_stopped(f"layer/{stopped[0]}")]
        expected = [str(i) for i in range(len(homework.LAYERS) - 1)]
        problems = [] if names == expected else [messages.layers_found(names, shown)]
        for i, name in enumerate(expected):
            if name in h["layer"]:
                problems += _layer_problems(h["layer"][name], f"layer/{name}", i, net)
        return problems


def export_problems(trained_folder: str | os.PathLike[str] = homework.TRAINED_FOLDER, net: Any = None) -> list[str]:
    """What is wrong with the files in `trained_folder`; [] when all three are there and the export is sound
    (and, given `net`, holds net's weights)."""
    folder = Path(trained_folder)
    problems = [] if folder.as_posix() == homework.TRAINED_FOLDER else [messages.trained_folder(str(trained_folder))]
    files = {name: folder / name for name in (homework.NETWORK_STATE.name, homework.NETWORK_HDF5.name,
                                              homework.LOSS_LOG.name)}
    for path in files.values():
        if not path.is_file():
            problems.append(messages.missing_file(str(path)))
    state, hdf5 = files[homework.NETWORK_STATE.name], files[homework.NETWORK_HDF5.name]
    if state.is_file():
        problems += _state_problems(state)
    if hdf5.is_file():
        problems += _hdf5_problems(hdf5, net)
    return problems


def export(trained_folder: str | os.PathLike[str] = homework.TRAINED_FOLDER, net: Any = None) -> None:
    """Print whether the notebook left what the grader reads; given `net`, whether the export holds its weights."""
    _report("export", export_problems, (trained_folder, net), messages.export_ok(net is not None))


# --- the clock -----------------------------------------------------------------------------


def machine() -> str:
    """The CPU as a student names it: /proc/cpuinfo's model name, else the platform's words (the grader's own)."""
    model = numerics.cpu_model()
    return model if model != (platform.processor() or platform.machine()) else f"{platform.system()} {model}".strip()


class Clock:
    """Times the optimizer's steps (the handout trains one batch per epoch: one step is one epoch) and, after
    the first epochs, prints how long an epoch takes on this machine and what the course budget takes here.

    The first epoch is left out (it pays for warming up); the line is printed once, after `measured` more
    epochs, or after the last epoch of a shorter run.
    """

    def __init__(self, epochs: int, warmup: int = 1, measured: int = 10, out: Callable[[str], None] = print,
                 now: Callable[[], float] = time.perf_counter) -> None:
        self.epochs, self.warmup, self.measured = int(epochs), warmup, measured
        self.out, self.now = out, now
        self.times: list[float] = []
        self.seconds_per_epoch: float | None = None

    def step(self) -> None:
        """One epoch has ended: record it, and say the time once enough epochs are measured."""
        self.times.append(self.now())
        done = len(self.times)
        if self.seconds_per_epoch is None and done > self.warmup and done in (self.warmup + self.measured, self.epochs):
            self.seconds_per_epoch = (self.times[-1] - self.times[self.warmup - 1]) / (done - self.warmup)
            self.out("\n" + self.line())

    def line(self) -> str:
        import torch

        assert self.seconds_per_epoch is not None
        return messages.epoch_time(self.seconds_per_epoch, self.warmup + 1, len(self.times), machine(),
                                   torch.get_num_threads(), self.epochs)


def clock(optimizer: Any, epochs: int) -> Clock | None:
    """Time the training that follows: a Clock ticked after each `optimizer.step()`; None (said) without one."""
    register = getattr(optimizer, "register_step_post_hook", None)
    if not callable(register):
        print(messages.not_timed(_kind(optimizer)))
        return None
    timer = Clock(epochs)
    register(lambda *_: timer.step())
    return timer

