"""numba kernels behind grader.accel, computing exactly stock slayer's numbers.

Exactness rests on doing the same IEEE operations in the same order:

* dynamics forward (stock: a Python loop of ~10 torch ops per time step):
  int64 arithmetic; float32 -> int64 casts truncate; the spike test and the
  output division happen in float32, because torch promotes an int64 tensor
  against a Python float (or true-divides it by an int) in the default dtype.
* dynamics backward: ``g = d * g + go`` with the product and the sum each
  rounded to float32. numba compiles without fastmath, so LLVM carries no
  ``contract`` flag and never fuses them into an FMA (a test checks that an
  FMA version would differ on its data).
* FIR filter: the sum of K products in the order MKL's sgemm uses inside the
  stock conv3d (a tree mixing FMAs on Intel's AVX-512 path; a plain
  sequential sum of rounded products on MKL's COMPATIBLE branch and on AMD),
  as a program of MUL/FMA/MULADD/ADD passes (``filter.py`` derives and
  verifies the program) run on whole rows, which LLVM vectorises.

Everything around the loops (casts, broadcasting, padding, the ``grad_decay``
reduction) stays in torch, in ``dynamics.py`` and ``filter.py``, so its
rounding is stock's own.
"""

from __future__ import annotations

import time
from typing import Callable

import llvmlite.ir as llvm_ir
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

_I64_MIN = np.int64(-(2**63))
_F32_I64_LIMIT = np.float32(2.0**63)  # first float32 outside int64


def _jit(fn: Callable) -> Callable:
    """njit with on-disk caching where a cache location is writable, else without."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except Exception:  # numba raises RuntimeError when no cache locator is usable
        return njit(nogil=True)(fn)


@_jit
def _f32_to_i64(v):
    """Truncating cast as x86 (torch's) does it: out of range or NaN gives INT64_MIN."""
    if v < _F32_I64_LIMIT and v >= -_F32_I64_LIMIT:
        return np.int64(v)
    return _I64_MIN


@_jit
def li_forward(x, y0, decay_int, w_scale, threshold, spiking, out):
    """Leaky integrator: time steps in order, all neurons of a step at once.

    x (P, T) float32, y0 (P,) int64 initial state already scaled by w_scale,
    decay_int (P,) int64 = 4096 - decay, w_scale float32, threshold float32
    (already multiplied by w_scale), spiking bool (stock: threshold > 0),
    out (P, T) float32 written in place. Each neuron's recurrence is the same
    sequence of operations as stock's; running the neurons of a step together
    (on a time-major copy) only lets LLVM vectorise across them.
    """
    rows, steps = x.shape
    xt = np.ascontiguousarray(x.T)
    ot = np.empty_like(xt)
    y = y0.copy()
    for n in range(steps):
        xn = xt[n]
        on = ot[n]
        for p in range(rows):
            z = y[p] * decay_int[p]
            # right_shift_to_zero(z, 12): sign * ((sign * z) >> 12), sign(0) = -1
            z = (z >> 12) if z > 0 else -((-z) >> 12)
            y_new = z + _f32_to_i64(w_scale * xn[p])
            y_f = np.float32(y_new)
            y[p] = np.int64(0) if (spiking and y_f >= threshold) else y_new
            on[p] = y_f / w_scale
    out[:, :] = ot.T


@_jit
def li_backward(grad_output, decay, grad_input):
    """Reverse-time recurrence g[n] = d * g[n+1] + go[n], float32, no FMA, all neurons of a step at once.

    grad_output (P, T) float32, decay (P,) float32 = 1 - decay / 4096,
    grad_input (P, T) float32 written in place. T >= 1.
    """
    rows, steps = grad_output.shape
    got = np.ascontiguousarray(grad_output.T)
    git = np.empty_like(got)
    git[steps - 1] = got[steps - 1]
    for n in range(steps - 2, -1, -1):
        later = git[n + 1]
        now = got[n]
        dst = git[n]
        for p in range(rows):
            prod = decay[p] * later[p]
            dst[p] = prod + now[p]
    grad_input[:, :] = git.T


@intrinsic
def _fma32(typingctx, a, b, c):
    """Fused multiply-add with one rounding (llvm.fma.f32), as MKL's vfmadd does."""
    sig = types.float32(types.float32, types.float32, types.float32)

    def codegen(context, builder, signature, args):
        f32 = llvm_ir.FloatType()
        fnty = llvm_ir.FunctionType(f32, [f32, f32, f32])
        fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.fma.f32")
        return builder.call(fn, args)

    return sig, codegen


OP_MUL, OP_FMA, OP_ADD, OP_MULADD = 0, 1, 2, 3


@_jit
def fir_rows(xpad, w, ops, arg1, arg2, nslots, result, out):
    """Run a summation program over every row of a padded signal.

    out[r, t] = the program's value over the products xpad[r, t + k] * w[k],
    k < len(w). Instructions: OP_MUL (slot = x * w[k], rounded), OP_FMA
    (slot = fma(x, w[k], slot)), OP_ADD (slot += slot2). Each instruction runs
    over all t of the row at once, so the inner loops vectorise; each output
    element still sees exactly the program's sequence of roundings.
    OP_MULADD (slot = slot + rounded(x * w[k])) is the unfused pair: numba
    compiles without fastmath, so LLVM never contracts it into an FMA.
    """
    rows, steps = out.shape
    regs = np.empty((nslots, steps), np.float32)
    for r in range(rows):
        for i in range(ops.shape[0]):
            # slices, not xpad[r, t + q]: a possibly negative index would need
            # numba's wraparound branch, which stops LLVM vectorising the loop
            acc = regs[arg1[i]]
            if ops[i] == OP_ADD:
                other = regs[arg2[i]]
                for t in range(steps):
                    acc[t] = acc[t] + other[t]
                continue
            k = arg2[i]
            xs = xpad[r, k:k + steps]
            wk = w[k]
            if ops[i] == OP_MUL:
                for t in range(steps):
                    acc[t] = xs[t] * wk
            elif ops[i] == OP_MULADD:
                for t in range(steps):
                    acc[t] = acc[t] + xs[t] * wk
            else:
                for t in range(steps):
                    acc[t] = _fma32(xs[t], wk, acc[t])
        res = regs[result]
        dst = out[r]
        for t in range(steps):
            dst[t] = res[t]


def warm_up() -> float:
    """Compile (or load from numba's cache) every kernel; returns the seconds it took."""
    start = time.perf_counter()
    x = np.zeros((1, 2), np.float32)
    li_forward(
        x, np.zeros(1, np.int64), np.zeros(1, np.int64),
        np.float32(1.0), np.float32(1.0), True, np.empty_like(x),
    )
    li_backward(x, np.zeros(1, np.float32), np.empty_like(x))
    prog = np.zeros(1, np.int64)
    fir_rows(x, np.ones(1, np.float32), prog, prog, prog, 1, 0, np.empty_like(x))
    return time.perf_counter() - start


__all__ = ["OP_ADD", "OP_FMA", "OP_MUL", "OP_MULADD", "fir_rows", "li_backward", "li_forward", "warm_up"]
