"""The kit's own summation orders and library functions for everything that trains.

Seeded float32 training repeats itself on one machine, but a library that picks
its code path at run time (MKL's sgemm, MKL's vector math behind torch's sqrt
and exp) can round differently on another CPU, and after some hundred epochs the
runs part. So in the kit's numerical mode those operations are the kit's:

* ``order.py``: each one written as plain numpy, the specification;
* ``kernels.py``: the same operations compiled by numba (no fastmath: no FMA),
  proved equal to the specification bit for bit in ``tests/test_exact.py``;
* ``dense.py``, ``elementwise.py``: slayer's dense synapse, its surrogate
  gradient and torch's CPU sqrt routed through them;
* ``patch.py``: guarded install and uninstall.

    from grader.exact import mode
    with mode(accelerate=True) as accelerated:   # the kit's orders + the accelerator
        train(...)

The accelerator (``grader/accel``) is separate: it makes slayer's neuron
dynamics and loss filter fast, bit for bit as stock, and can be switched off
(``--no-accel``); the orders here stay on either way.
"""

from .patch import enabled, install, is_active, mode, self_test, uninstall

__all__ = ["enabled", "install", "is_active", "mode", "self_test", "uninstall"]
