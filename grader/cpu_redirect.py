"""Kernel-side: on a grading machine without CUDA, a notebook's CUDA placement runs on the CPU.

Why: students train on GPUs and select ``torch.device('cuda')`` (the handout's
own commented line). On a CPU-only grader such a notebook stops at its first
``.to(device)`` ("Found no NVIDIA driver on your system") and would score 0 for
a choice of hardware. The grader's preamble calls ``install()`` only when
``torch.cuda.is_available()`` is False; from then on every usual way of placing
tensors or modules on CUDA goes to the CPU instead:

* ``Tensor.to`` / ``Module.to`` with a CUDA device (a string, a ``torch.device``
  or a device index), ``Tensor.cuda()`` / ``Module.cuda()``;
* the ``device=`` of torch's factory functions (``torch.zeros``, ``torch.tensor``, ...);
* ``torch.load``'s ``map_location`` and ``torch.set_default_device``.

Nothing else changes, so the notebook computes what its CPU twin computes, bit
for bit. ``requested()`` names the entry points that were redirected; the probe
records them, and the feedback says the notebook ran on the CPU.
"""

from __future__ import annotations

import functools
from typing import Any

FACTORIES = (
    "tensor", "as_tensor", "zeros", "ones", "empty", "full", "rand", "randn", "randint", "randperm",
    "arange", "linspace", "logspace", "eye", "zeros_like", "ones_like", "empty_like", "full_like",
    "rand_like", "randn_like", "randint_like",
)
_requested: set[str] = set()
_installed: dict[tuple[Any, str], Any] = {}  # (owner, name) -> the original, for uninstall()


PROBE_KEY = "cuda_on_cpu"  # probe.json: the entry points redirected (grader.probe records requested())
NOTE = ("; the notebook asks for a CUDA device and the grading machine has none, so it ran on the CPU: "
        "no points lost")


def note(probe_meta: dict[str, Any]) -> str:
    """The feedback's note for a notebook that asked for CUDA and ran on the CPU, or ''."""
    return NOTE if probe_meta.get(PROBE_KEY) else ""


def requested() -> list[str]:
    """The entry points that were asked for a CUDA device and given the CPU, sorted (empty: none)."""
    return sorted(_requested)


def is_cuda(device: Any, index_is_cuda: bool = True) -> bool:
    """Whether `device` names a CUDA device: 'cuda', 'cuda:1', torch.device('cuda'), or an index (0, 1, ...)."""
    import torch

    if isinstance(device, torch.device):
        return device.type == "cuda"
    if isinstance(device, str):
        return device.split(":", 1)[0].strip() == "cuda"
    return index_is_cuda and isinstance(device, int) and not isinstance(device, bool)


def _cpu(device: Any, entry: str, index_is_cuda: bool = True) -> Any:
    if is_cuda(device, index_is_cuda):
        _requested.add(entry)
        return "cpu"
    return device


def _to(original: Any, entry: str) -> Any:
    """`original` (Tensor.to or Module.to) with any CUDA device among its arguments replaced by the CPU."""

    @functools.wraps(original)
    def to(self: Any, *args: Any, **kwargs: Any) -> Any:
        args = tuple(_cpu(a, entry) for a in args)
        if "device" in kwargs:
            kwargs["device"] = _cpu(kwargs["device"], entry)
        return original(self, *args, **kwargs)

    return to


def _factory(original: Any, entry: str) -> Any:
    @functools.wraps(original)
    def factory(*args: Any, **kwargs: Any) -> Any:
        if "device" in kwargs:
            kwargs["device"] = _cpu(kwargs["device"], entry)
        return original(*args, **kwargs)

    return factory


def _load(original: Any) -> Any:
    @functools.wraps(original)
    def load(*args: Any, **kwargs: Any) -> Any:
        where = kwargs.get("map_location")
        if isinstance(where, dict):
            kwargs["map_location"] = {k: _cpu(v, "torch.load", False) for k, v in where.items()}
        elif where is not None and not callable(where):
            kwargs["map_location"] = _cpu(where, "torch.load", False)
        return original(*args, **kwargs)

    return load


def _set_default_device(original: Any) -> Any:
    @functools.wraps(original)
    def set_default_device(device: Any) -> Any:
        return original(_cpu(device, "torch.set_default_device"))

    return set_default_device


def _tensor_cuda(self: Any, *args: Any, **kwargs: Any) -> Any:
    _requested.add("Tensor.cuda")
    return self


def _module_cuda(self: Any, *args: Any, **kwargs: Any) -> Any:
    _requested.add("Module.cuda")
    return self


def _patch(owner: Any, name: str, replacement: Any) -> None:
    _installed.setdefault((owner, name), getattr(owner, name))
    setattr(owner, name, replacement)


def install() -> None:
    """Send CUDA placement to the CPU from now on (idempotent). The caller checks that CUDA is absent."""
    import torch

    if _installed:
        return
    _patch(torch.Tensor, "to", _to(torch.Tensor.to, "Tensor.to"))
    _patch(torch.nn.Module, "to", _to(torch.nn.Module.to, "Module.to"))
    _patch(torch.Tensor, "cuda", functools.wraps(torch.Tensor.cuda)(_tensor_cuda))
    _patch(torch.nn.Module, "cuda", functools.wraps(torch.nn.Module.cuda)(_module_cuda))
    for name in FACTORIES:
        _patch(torch, name, _factory(getattr(torch, name), f"torch.{name}"))
    _patch(torch, "load", _load(torch.load))
    _patch(torch, "set_default_device", _set_default_device(torch.set_default_device))


def uninstall() -> None:
    """Restore torch as it was (for tests)."""
    for (owner, name), original in _installed.items():
        setattr(owner, name, original)
    _installed.clear()
    _requested.clear()


__all__ = ["FACTORIES", "NOTE", "PROBE_KEY", "install", "is_cuda", "note", "requested", "uninstall"]
