"""Compiled CPU kernels for slayer's neuron dynamics and loss filter, bit-identical to stock.

Stock lava-dl 0.6.0 on CPU spends an epoch of the HW8 network in Python
loops over the 600 time steps (leaky-integrator dynamics) and in a conv3d
that unfolds 48 MB per FIR filter call. ``install()`` swaps those four module
globals for numba versions that compute the same bits (see ``kernels.py``,
``dynamics.py``, ``filter.py``); ``uninstall()`` restores stock.

    from grader.accel import enabled
    with enabled() as active:   # active: bool
        train(...)

Off switch: ``enabled(False)`` / ``install(False)``; the kit passes the rubric's
``[budget] accelerate`` (``--no-accel``), its one switch.
CUDA tensors always take slayer's own paths.
"""

from .patch import enabled, install, is_active, uninstall

if not __name__.startswith("grader."):  # beside a student's notebook (hw8_accel): say what it proved here
    from . import patch as _patch

    def install(enabled: bool = True) -> bool:  # noqa: F811
        """Turn the accelerator on in this notebook; prints what its self-test proved on this machine."""
        return _patch.install(enabled, say=True)

__all__ = ["enabled", "install", "is_active", "uninstall"]
