"""The kit's orders, written as plain numpy: the specification the compiled kernels are proved against.

Every function here is a sequence of IEEE 754 operations (float32 or float64 adds,
multiplies, divisions, conversions, square roots), each correctly rounded, one
numpy ufunc at a time: numpy never fuses a multiply and an add, and an
elementwise ufunc gives each element the same rounding whatever SIMD width runs
it. So the result of each function is fixed by this text alone, on any IEEE
machine, whichever vendor made the CPU; ``tests/test_exact.py`` proves the
kernels in ``kernels.py`` equal to it bit for bit.

What the kit's numerical mode owns, and why (``docs/reproducibility.md``):

* ``matmul``: slayer's dense synapse (its forward, input gradient and weight
  gradient are all products of this form); MKL's sgemm chooses its own
  summation order at run time, and nothing says it is the same on every CPU.
* ``fir``: slayer's FIR time filter (the SpikeTime loss), with the accelerator.
* ``sqrt``: Adam's ``exp_avg_sq.sqrt()``; torch's CPU sqrt goes through MKL's
  vector math, which is not correctly rounded and differs between Intel and AMD.
* ``exp``: the spike function's surrogate gradient; torch's exp also goes
  through MKL's vector math.
"""

from __future__ import annotations

import math

import numpy as np


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """c[m, n] = ((0 + a[m,0]*b[0,n]) + a[m,1]*b[1,n]) + ...: k ascending, float32, each step rounded."""
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    c = np.zeros((a.shape[0], b.shape[1]), np.float32)
    for k in range(a.shape[1]):
        c = c + a[:, k:k + 1] * b[k:k + 1, :]
    return c


def dense_forward(weight: np.ndarray, x: np.ndarray) -> np.ndarray:
    """y[s] = weight @ x[s] for each sample s of x (S, I, T); weight (O, I)."""
    return np.stack([matmul(weight, xs) for xs in x]) if len(x) else np.zeros((0, weight.shape[0], x.shape[-1]), np.float32)


def dense_input_grad(weight: np.ndarray, grad: np.ndarray) -> np.ndarray:
    """dL/dx[s] = weight^T @ grad[s]: the sum runs over the output neurons, ascending."""
    return np.stack([matmul(weight.T, gs) for gs in grad])


def dense_weight_grad(grad: np.ndarray, x: np.ndarray) -> np.ndarray:
    """dL/dW[o, i] = the sum over samples s, then time steps t (both ascending) of grad[s,o,t] * x[s,i,t]."""
    samples, outs, steps = grad.shape
    a = np.transpose(grad, (1, 0, 2)).reshape(outs, samples * steps)
    b = np.transpose(x, (0, 2, 1)).reshape(samples * steps, x.shape[1])
    return matmul(a, b)


def fir(x: np.ndarray, taps: np.ndarray, side: str) -> np.ndarray:
    """slayer's time filter of each row of x (R, T): causal convolution ("fwd") or correlation ("bwd").

    out[r, t] = p_0 + p_1 + ... + p_{K-1}, left to right, starting from p_0, where p_k is
    the rounded product xpad[r, t + k] * w[k]: for "fwd" xpad is x padded with K-1 zeros
    on the left and w the reversed taps; for "bwd" zeros on the right and the taps as is.
    """
    x = np.asarray(x, np.float32)
    w = np.asarray(taps, np.float32)
    count, steps = len(w), x.shape[-1]
    if side == "fwd":
        xpad, w = np.pad(x, ((0, 0), (count - 1, 0))), w[::-1]
    elif side == "bwd":
        xpad = np.pad(x, ((0, 0), (0, count - 1)))
    else:
        raise ValueError(f"side is 'fwd' or 'bwd', not {side!r}")
    out = xpad[:, 0:steps] * w[0]
    for k in range(1, count):
        out = out + xpad[:, k:k + steps] * w[k]
    return out


def sqrt(x: np.ndarray) -> np.ndarray:
    """IEEE 754's correctly rounded square root, float32 (through float64, exact: 53 >= 2*24 + 2 bits)."""
    return np.sqrt(np.asarray(x, np.float32).astype(np.float64)).astype(np.float32)


# exp: x = k ln2 + r, k = floor(x / ln2 + 1/2), ln2 as a head with trailing zero bits (k * LN2_HI
# is exact) plus a tail; exp(r) for |r| <= 0.347 by its Taylor series to r^13 (truncation below
# 2^-57), Horner's rule in float64; times 2^k (exact); one rounding to float32.
LN2_HI = 6.93147180369123816490e-01
LN2_LO = 1.90821492927058770002e-10
INV_LN2 = 1.44269504088896338700e00
TAYLOR = tuple(1.0 / math.factorial(i) for i in range(14))
EXP_MAX = 89.0    # above: +inf (float32 overflows above ~88.72)
EXP_MIN = -104.0  # below: 0 (float32 underflows below ~-103.97)
POW2_OFFSET = 160
POW2 = np.array([2.0 ** j for j in range(-POW2_OFFSET, 140)])  # 2^k at k + POW2_OFFSET


def exp(x: np.ndarray) -> np.ndarray:
    """The kit's float32 exp: the steps above, elementwise in float64, one rounding at the end."""
    v = np.asarray(x, np.float32).astype(np.float64)
    with np.errstate(invalid="ignore"):
        inside = (v >= EXP_MIN) & (v <= EXP_MAX)
    c = np.where(inside, v, 0.0)
    j = (c * INV_LN2 + 0.5 + 1024.0).astype(np.int32)  # truncation of a positive number: floor + 1024
    kf = (j - 1024).astype(np.float64)
    r = (c - kf * LN2_HI) - kf * LN2_LO
    p = np.full_like(r, TAYLOR[13])
    for coefficient in TAYLOR[12::-1]:
        p = p * r + coefficient
    y = p * POW2[j - 1024 + POW2_OFFSET]
    with np.errstate(invalid="ignore", over="ignore"):
        special = np.where(v > EXP_MAX, np.inf, np.where(v < EXP_MIN, 0.0, v))  # NaN stays NaN
        return np.where(inside, y, special).astype(np.float32)


__all__ = ["dense_forward", "dense_input_grad", "dense_weight_grad", "exp", "fir", "matmul", "sqrt"]
