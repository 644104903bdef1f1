"""A compact record of the reference run: per-op digests of its first epochs and every epoch's loss bits.

``calibrate --ship`` ships one beside the fingerprint (``calibration/trace.json``).
A machine whose fingerprint differs records its own during the same fingerprint
run, and ``first_difference`` names where the two part: the first epoch whose
loss differs, and within the traced epochs the first op whose result differs
(an aten op, or one of the kit's kernels, ``kit.*``). That points at the
operation whose order or rounding this machine does differently, without
anybody tracing by hand.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from grader.exact import observe

SHIPPED = Path(__file__).resolve().parent / "calibration" / "trace.json"
TRACED_EPOCHS = 2  # the first epochs digested op by op (the fingerprint's first epoch includes the set-up)
_UNINITIALISED = {"empty", "empty_like", "new_empty", "empty_strided", "new_empty_strided"}  # garbage bits


def digest(tensor: torch.Tensor) -> str:
    """The first 16 hex digits of sha256 over the tensor's bits."""
    t = tensor.detach().contiguous().reshape(-1)
    return hashlib.sha256(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"").hexdigest()[:16]


def loss_hex(loss: float) -> str:
    """A float32 loss's bits as hex (slayer's losses are float32 values held in Python floats)."""
    return struct.pack("<f", loss).hex()


@dataclass(frozen=True)
class Op:
    name: str
    shape: tuple[int, ...]
    digest: str

    def describe(self) -> str:
        return f"`{self.name}` {self.shape}"


@dataclass(frozen=True)
class RunTrace:
    epochs: list[list[Op]]  # the traced epochs' ops, in order (epoch 0 includes building the network and loss)
    losses: list[str] = field(default_factory=list)  # loss_hex of every epoch

    def to_json(self) -> dict[str, Any]:
        return {"epochs": [[[op.name, list(op.shape), op.digest] for op in ops] for ops in self.epochs],
                "losses": self.losses}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "RunTrace":
        return cls([[Op(str(n), tuple(int(d) for d in s), str(h)) for n, s, h in ops] for ops in data["epochs"]],
                   [str(x) for x in data["losses"]])


class Recorder(TorchDispatchMode):
    """Digests every float result on the CPU while it is entered; ``next_epoch`` starts a new list."""

    def __init__(self, epochs: int = TRACED_EPOCHS) -> None:
        super().__init__()
        self.wanted = epochs
        self.epochs: list[list[Op]] = [[]]
        self.losses: list[str] = []

    @property
    def recording(self) -> bool:
        return len(self.epochs) <= self.wanted

    def add(self, name: str, tensor: torch.Tensor) -> None:
        if self.recording and tensor.dtype.is_floating_point and tensor.device.type == "cpu":
            self.epochs[-1].append(Op(name, tuple(tensor.shape), digest(tensor)))

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        name = func.overloadpacket.__name__
        # a view repeats its input's bits, or shows a buffer a kernel is about to fill (garbage): skipped
        if self.recording and name not in _UNINITIALISED and not func.is_view and not observe.muted():
            for o in tree_flatten(out)[0]:
                if isinstance(o, torch.Tensor):
                    self.add(name, o)
        return out

    def progress(self, epoch: int, loss: float) -> None:
        """solution.train's progress callback: one loss, and the next epoch's ops in a list of their own.

        Once the traced epochs are done the recorder leaves torch's dispatch, so the rest of the run
        pays nothing for it.
        """
        self.losses.append(loss_hex(loss))
        if self.recording:
            self.epochs.append([])
            if not self.recording:
                self.stop()

    def start(self) -> None:
        self.__enter__()
        self._entered = True

    def stop(self) -> None:
        if getattr(self, "_entered", False):
            self._entered = False
            self.__exit__(None, None, None)

    def trace(self) -> RunTrace:
        return RunTrace([ops for ops in self.epochs[:self.wanted]], list(self.losses))


def record(run: Callable[[Callable[[int, float], None]], Any], epochs: int = TRACED_EPOCHS) -> tuple[Any, RunTrace]:
    """Call `run(progress)` (a training that calls progress after each epoch) under a recorder."""
    recorder = Recorder(epochs)
    with observe.listening(recorder.add):
        recorder.start()
        try:
            result = run(recorder.progress)
        finally:
            recorder.stop()
    return result, recorder.trace()


def first_difference(local: RunTrace, shipped: RunTrace) -> Optional[str]:
    """Where `local` first parts from `shipped`, in words; None when they agree as far as both go."""
    parts: list[str] = []
    epoch = next((i for i, (a, b) in enumerate(zip(local.losses, shipped.losses)) if a != b), None)
    if epoch is not None:
        parts.append(f"the loss first differs at epoch {epoch} ({_f32(local.losses[epoch])!r} here, "
                     f"{_f32(shipped.losses[epoch])!r} shipped)")
    for e, (here, there) in enumerate(zip(local.epochs, shipped.epochs)):
        k = next((i for i, (a, b) in enumerate(zip(here, there)) if a != b), None)
        if k is None and len(here) == len(there):
            continue
        if k is None:
            parts.append(f"epoch {e} runs {len(here)} ops here and {len(there)} in the shipped run")
        elif (here[k].name, here[k].shape) != (there[k].name, there[k].shape):
            parts.append(f"op #{k} of epoch {e} is {here[k].describe()} here, {there[k].describe()} in the shipped run")
        else:
            parts.append(f"the first op whose result differs is #{k} of epoch {e}, {here[k].describe()}"
                         + (f", after {here[k - 1].describe()}" if k else ""))
        break
    return "; ".join(parts) or None


def _f32(hex_bits: str) -> float:
    return struct.unpack("<f", bytes.fromhex(hex_bits))[0]


def save(trace: RunTrace, path: Path = SHIPPED) -> Path:
    path.write_text(json.dumps(trace.to_json(), separators=(",", ":")) + "\n")
    return path


def shipped(path: Path = SHIPPED) -> Optional[RunTrace]:
    try:
        return RunTrace.from_json(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


__all__ = ["Op", "Recorder", "RunTrace", "digest", "first_difference", "loss_hex", "record", "save", "shipped"]
