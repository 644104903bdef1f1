"""Install / uninstall the kit's orders: slayer's dense synapse and surrogate gradient, torch's CPU sqrt.

The patch is guarded like the accelerator's: only on lava-dl 0.6.0, only when
the functions it replaces are still stock with the call sites it was written
against, and only after the compiled kernels agree bit for bit with their
specification (``order.py``) on a small self-test. Otherwise nothing is
replaced, and one warning per process says why: training then sums in the
libraries' orders, and the fingerprint check (``grader/fingerprint.py``) tells
whether this machine still reproduces the shipped calibrations.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import inspect
import warnings
from typing import Iterator, Optional

EXPECTED_LAVA_DL = "0.6.0"
KIT_MARK = "__kit_orders__"  # set on the kit's Dense.forward: any copy of the kit knows its orders are in
SQRT_OVERLOADS = (("sqrt", "sqrt"), ("sqrt_", "sqrt_"), ("sqrt.out", "sqrt_out"))

_installed: dict[str, object] = {}  # what was replaced, to put back
_library = None  # the torch.library registration of the sqrt kernels while installed
_warned = False


def _warn_once(reason: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        warnings.warn(f"grader.exact: the kit's orders are not installed, training sums in the libraries' "
                      f"orders ({reason})", RuntimeWarning, stacklevel=3)


def _check_targets() -> Optional[str]:
    """Why the patch would not do what it was written for, or None."""
    from lava.lib.dl.slayer.spike import spike
    from lava.lib.dl.slayer.synapse import layer

    from . import dense, elementwise

    version = importlib.metadata.version("lava-dl")
    if version != EXPECTED_LAVA_DL:
        return f"lava-dl {version} installed, the patch mirrors {EXPECTED_LAVA_DL}"
    if layer.Dense.forward is not dense.STOCK_FORWARD:
        return "slayer's Dense.forward was replaced by someone else"
    if spike._spike_backward is not elementwise.STOCK_SPIKE_BACKWARD:
        return "slayer's _spike_backward was replaced by someone else"
    params = str(inspect.signature(spike._spike_backward))
    if params != "(voltage, threshold, tau_rho, scale_rho, graded_spike=False)":
        return f"slayer's _spike_backward has signature {params}"
    if "_spike_backward" not in spike.Spike.backward.__code__.co_names:
        return "slayer's Spike.backward no longer calls _spike_backward"
    if "conv3d" not in dense.STOCK_FORWARD.__code__.co_names:
        return "slayer's Dense.forward no longer calls conv3d"
    return None


def self_test() -> Optional[str]:
    """The compiled kernels against ``order.py`` on small seeded data; None when every bit agrees."""
    import numpy as np

    try:
        from grader.accel import cache  # the kit's, not beside a student's notebook (hw8_exact)

        cache.seed(cache.EXACT_IN_TREE, cache.EXACT_KERNELS_PY)  # a sandboxed kernel loads, not compiles
    except (ImportError, OSError):
        pass  # numba compiles them, as without a cache
    from . import kernels, order

    kernels.warm_up()
    rng = np.random.default_rng(20241204)
    for m, k, n in ((5, 7, 9), (8, 3, 33), (1, 1, 1)):
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c = np.empty((m, n), np.float32)
        kernels.matmul(a, b, c)
        if not np.array_equal(c.view(np.int32), order.matmul(a, b).view(np.int32)):
            return f"matmul self-test differs ({m}x{k}x{n})"
    x = np.concatenate([rng.uniform(-110, 95, 997), [0.0, -0.0, np.inf, -np.inf]]).astype(np.float32)
    out = np.empty_like(x)
    kernels.exp(x, out)
    if not np.array_equal(out.view(np.int32), order.exp(x).view(np.int32)):
        return "exp self-test differs"
    return None


def is_active() -> bool:
    """Whether the kit's orders are installed in this process (by this copy of them)."""
    return bool(_installed)


def _installed_by_another_copy() -> bool:
    """The grader's kernel imports the notebook's copy (``hw8_exact``) after its own is in place."""
    from lava.lib.dl.slayer.synapse import layer

    return bool(getattr(layer.Dense.forward, KIT_MARK, False))


def install() -> bool:
    """Put the kit's orders in place (idempotent); False, with one warning, when a guard fails."""
    global _library
    if is_active() or _installed_by_another_copy():
        return True
    try:
        problem = _check_targets() or self_test()
    except Exception as exc:  # missing numba, a failed compile, ...: the libraries' orders are still correct
        problem = f"{type(exc).__name__}: {exc}"
    if problem:
        _warn_once(problem)
        return False
    import torch
    from lava.lib.dl.slayer.spike import spike
    from lava.lib.dl.slayer.synapse import layer

    from . import dense, elementwise

    _library = torch.library.Library("aten", "IMPL")
    for overload, name in SQRT_OVERLOADS:
        _library.impl(overload, getattr(elementwise, name), "CPU")
    _installed["Dense.forward"] = layer.Dense.forward
    layer.Dense.forward = dense.forward
    _installed["_spike_backward"] = spike._spike_backward
    spike._spike_backward = elementwise.spike_backward
    return True


def uninstall() -> None:
    """Put the libraries' own functions back (no-op when not installed)."""
    global _library
    if not _installed:
        return
    from lava.lib.dl.slayer.spike import spike
    from lava.lib.dl.slayer.synapse import layer

    layer.Dense.forward = _installed.pop("Dense.forward")
    spike._spike_backward = _installed.pop("_spike_backward")
    if _library is not None:
        _library._destroy()
        _library = None


@contextlib.contextmanager
def enabled() -> Iterator[bool]:
    """Install on enter (yields whether active); uninstall on exit if this block installed."""
    was_active = is_active()
    active = install()
    try:
        yield active
    finally:
        if active and not was_active:
            uninstall()


@contextlib.contextmanager
def mode(accelerate: bool = True) -> Iterator[bool]:
    """The kit's numerical mode for training: its orders always, the accelerator when asked.

    Yields whether the accelerator is active (what ``solution.train`` records as ``accelerated``).
    """
    from grader import accel

    with enabled(), accel.enabled(accelerate) as accelerated:
        yield accelerated


def _reset_warning() -> None:
    """Tests only: allow the once-per-process warning again."""
    global _warned
    _warned = False


__all__ = ["enabled", "install", "is_active", "mode", "self_test", "uninstall"]
