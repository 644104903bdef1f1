"""A hook for the kit's kernels to show their results to a recorder (``grader/trace.py``).

numba kernels are not aten ops, so a torch dispatch recorder sees their results
only through the ops that use them next. ``note`` names them where they are
made; it does nothing unless a recorder listens.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Optional

import torch

Sink = Callable[[str, torch.Tensor], None]
_sink: Optional[Sink] = None
_muted = 0


def muted() -> bool:
    """Whether the kit is doing housekeeping (self-tests, probes) that a recorder should not see."""
    return _muted > 0


@contextlib.contextmanager
def housekeeping() -> Iterator[None]:
    """Hide the ops of a one-off (a self-test, a first-use probe) from recorders: they run only in
    some processes, so a trace that held them would depend on what ran before it."""
    global _muted
    _muted += 1
    try:
        yield
    finally:
        _muted -= 1


def note(name: str, tensor: torch.Tensor) -> None:
    """Tell the recorder, if any, that kernel `name` produced `tensor`."""
    if _sink is not None and not _muted:
        _sink(name, tensor)


@contextlib.contextmanager
def listening(sink: Sink) -> Iterator[None]:
    """Send every ``note`` to `sink` while the block runs."""
    global _sink
    previous, _sink = _sink, sink
    try:
        yield
    finally:
        _sink = previous
