"""numba kernels of the kit's own orders (``order.py`` is their specification).

Compiled without fastmath: LLVM then carries no ``contract`` flag, so a product
and the sum it feeds are two roundings, never one FMA, on every x86-64 CPU.
Vectorisation runs across independent outputs only (the ``n`` loops below):
each output element still sees exactly the specified sequence of roundings.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import order


def _jit(fn):
    """njit with on-disk caching where a cache location is writable, else without."""
    try:
        return njit(cache=True, nogil=True)(fn)
    except Exception:  # numba raises RuntimeError when no cache locator is usable
        return njit(nogil=True)(fn)


@_jit
def matmul(a, b, c):
    """c[m, n] = sum over k of a[m, k] * b[k, n]: from +0, k ascending, each product and sum rounded.

    a (M, K), b (K, N), c (M, N), float32, C-contiguous; c is overwritten. Four rows
    of c and four steps of k at a time keep b's rows in cache and the adds in order.
    """
    rows, depth = a.shape
    cols = b.shape[1]
    c[:, :] = 0.0
    m = 0
    while m < rows:
        if m + 4 <= rows:
            c0, c1, c2, c3 = c[m], c[m + 1], c[m + 2], c[m + 3]
            k = 0
            while k + 4 <= depth:
                b0, b1, b2, b3 = b[k], b[k + 1], b[k + 2], b[k + 3]
                a00, a01, a02, a03 = a[m, k], a[m, k + 1], a[m, k + 2], a[m, k + 3]
                a10, a11, a12, a13 = a[m + 1, k], a[m + 1, k + 1], a[m + 1, k + 2], a[m + 1, k + 3]
                a20, a21, a22, a23 = a[m + 2, k], a[m + 2, k + 1], a[m + 2, k + 2], a[m + 2, k + 3]
                a30, a31, a32, a33 = a[m + 3, k], a[m + 3, k + 1], a[m + 3, k + 2], a[m + 3, k + 3]
                for n in range(cols):
                    x0, x1, x2, x3 = b0[n], b1[n], b2[n], b3[n]
                    c0[n] = (((c0[n] + a00 * x0) + a01 * x1) + a02 * x2) + a03 * x3
                    c1[n] = (((c1[n] + a10 * x0) + a11 * x1) + a12 * x2) + a13 * x3
                    c2[n] = (((c2[n] + a20 * x0) + a21 * x1) + a22 * x2) + a23 * x3
                    c3[n] = (((c3[n] + a30 * x0) + a31 * x1) + a32 * x2) + a33 * x3
                k += 4
            while k < depth:
                bk = b[k]
                a0, a1, a2, a3 = a[m, k], a[m + 1, k], a[m + 2, k], a[m + 3, k]
                for n in range(cols):
                    x = bk[n]
                    c0[n] = c0[n] + a0 * x
                    c1[n] = c1[n] + a1 * x
                    c2[n] = c2[n] + a2 * x
                    c3[n] = c3[n] + a3 * x
                k += 1
            m += 4
        else:
            cm = c[m]
            for k in range(depth):
                bk = b[k]
                a0 = a[m, k]
                for n in range(cols):
                    cm[n] = cm[n] + a0 * bk[n]
            m += 1


@_jit
def matmul_skipping_zeros(a, b, c):
    """``matmul``'s result, skipping the products whose b[k, n] is zero: for spikes (0 or 1) mostly.

    Exact where a holds no inf or NaN (the caller checks): such a product is a signed zero, and in
    ``matmul``'s sum, which starts from +0, adding a signed zero never changes the partial sum (it is
    +0 or nonzero, never -0, since x + (-x) rounds to +0). The sum over the remaining k still runs
    ascending; the n loop runs outside, the m loop inside, so LLVM vectorises across rows of c.
    """
    rows, depth = a.shape
    cols = b.shape[1]
    at = np.ascontiguousarray(a.T)
    bt = np.ascontiguousarray(b.T)
    ct = np.zeros((cols, rows), np.float32)
    active = np.empty(depth, np.int64)
    for n in range(cols):
        bn = bt[n]
        count = 0
        for k in range(depth):  # the nonzero k of column n, ascending (branch-free)
            active[count] = k
            count += bn[k] != 0
        cn = ct[n]
        for j in range(count):
            k = active[j]
            v = bn[k]
            ak = at[k]
            for m in range(rows):
                cn[m] = cn[m] + ak[m] * v
    c[:, :] = ct.T


@_jit
def count_nonzero(x):
    """How many elements of x are not zero (numpy's count_nonzero is 4x slower on float32)."""
    count = 0
    for v in x.ravel():
        count += v != 0
    return count


@_jit
def fir(xpad, w, out):
    """out[r, t] = xpad[r, t]*w[0] + xpad[r, t+1]*w[1] + ..., left to right from the first product.

    xpad (R, T + K - 1), w (K,), out (R, T), float32, C-contiguous (``order.fir`` pads and
    flips; so does the accelerator's caller). Four taps at a time per pass over a row.
    """
    rows, steps = out.shape
    taps = w.shape[0]
    for r in range(rows):
        x = xpad[r]
        acc = out[r]
        w0 = w[0]
        for t in range(steps):
            acc[t] = x[t] * w0
        k = 1
        while k + 4 <= taps:
            w0, w1, w2, w3 = w[k], w[k + 1], w[k + 2], w[k + 3]
            x0, x1, x2, x3 = x[k:k + steps], x[k + 1:k + 1 + steps], x[k + 2:k + 2 + steps], x[k + 3:k + 3 + steps]
            for t in range(steps):
                acc[t] = (((acc[t] + x0[t] * w0) + x1[t] * w1) + x2[t] * w2) + x3[t] * w3
            k += 4
        while k < taps:
            wk = w[k]
            xk = x[k:k + steps]
            for t in range(steps):
                acc[t] = acc[t] + xk[t] * wk
            k += 1


# exp: the constants and steps of ``order.exp``, its specification.
_LN2_HI, _LN2_LO, _INV_LN2 = order.LN2_HI, order.LN2_LO, order.INV_LN2
_TAYLOR = order.TAYLOR
_EXP_MAX, _EXP_MIN = order.EXP_MAX, order.EXP_MIN
_POW2, _POW2_OFFSET = order.POW2, order.POW2_OFFSET


@_jit
def exp(x, out):
    """out = exp(x) elementwise, float32 in and out (1-D, contiguous), one rounding at the end.

    Branch-free (selects, an offset truncation for the floor, an unsigned table index), so
    LLVM vectorises it across elements; the table gives 2^k exactly.
    """
    for i in range(x.size):
        v = np.float64(x[i])
        inside = v >= _EXP_MIN and v <= _EXP_MAX
        c = v if inside else 0.0
        j = np.int32(c * _INV_LN2 + 0.5 + 1024.0)  # truncation of a positive number: floor + 1024
        kf = np.float64(j - 1024)
        r = (c - kf * _LN2_HI) - kf * _LN2_LO
        # Horner's rule written out (order.exp loops): a loop here kept LLVM from vectorising
        p = _TAYLOR[13]
        p = p * r + _TAYLOR[12]
        p = p * r + _TAYLOR[11]
        p = p * r + _TAYLOR[10]
        p = p * r + _TAYLOR[9]
        p = p * r + _TAYLOR[8]
        p = p * r + _TAYLOR[7]
        p = p * r + _TAYLOR[6]
        p = p * r + _TAYLOR[5]
        p = p * r + _TAYLOR[4]
        p = p * r + _TAYLOR[3]
        p = p * r + _TAYLOR[2]
        p = p * r + _TAYLOR[1]
        p = p * r + _TAYLOR[0]
        y = p * _POW2[np.uint32(j - 1024 + _POW2_OFFSET)]
        special = np.inf if v > _EXP_MAX else (0.0 if v < _EXP_MIN else v)  # NaN stays NaN
        out[i] = np.float32(y if inside else special)


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel."""
    a = np.ones((5, 5), np.float32)
    matmul(a, a, np.empty_like(a))
    matmul_skipping_zeros(a, a, np.empty_like(a))
    count_nonzero(a)
    exp(a.ravel(), np.empty(a.size, np.float32))
    fir(a, a[0, :3], np.empty((5, 3), np.float32))
