"""Metrics on (neurons, T) 0/1 spike rasters, one time step = 1 ms (numpy/scipy only).

Why several: the SpikeTime loss is the number students watch, but its scale depends on
the target; relative_loss (0 = perfect, 1 = as bad as staying silent), spike-time F1
and smoothed correlation say how good a raster is in terms a rubric can threshold.

SpikeTime loss, as slayer.loss.SpikeTime(time_constant=2, length=100, filter_order=2)
computes it with its default sum reduction:

    h0[k] = exp(-k / 2),  k = 0..99                      (float32, as slayer stores it)
    h[n]  = sum_{k<=n} h0[k] h0[n-k],  n = 0..99          (h0 filtered by itself, truncated
                                                           to 100 taps: ~ (n+1) exp(-n/2))
    y[i, t] = sum_{k<=min(t,99)} h[k] x[i, t-k]           (causal, zero history, dt = 1)
    loss = sum_{i,t} (y_out[i, t] - y_target[i, t])^2     (no 1/2, no 1/T)

slayer does all of this in float32 with conv3d; here it is float64 on the difference
of the rasters (the filter is linear), so the two agree to float32 rounding
(relative ~1e-6), not bit for bit. `spike_time_loss_torch` calls slayer itself.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.signal import lfilter

TIME_CONSTANT = 2
FILTER_LENGTH = 100
FILTER_ORDER = 2
F1_TOLERANCES_MS = (0, 2, 5)
CORRELATION_SIGMA_MS = 5


def _raster(x, name: str = "raster") -> np.ndarray:
    """(neurons, T) float64 view; a leading batch dimension of 1 is dropped."""
    a = np.asarray(x, dtype=np.float64)
    while a.ndim > 2 and a.shape[0] == 1:
        a = a[0]
    if a.ndim != 2:
        raise ValueError(f"{name}: expected a (neurons, T) raster, found shape {np.shape(x)}")
    return a


def _pair(output, target) -> tuple[np.ndarray, np.ndarray]:
    out, tgt = _raster(output, "output"), _raster(target, "target")
    if out.shape != tgt.shape:
        raise ValueError(f"output shape {out.shape} != target shape {tgt.shape}")
    return out, tgt


@lru_cache(maxsize=None)
def spike_time_kernel(
    time_constant: float = TIME_CONSTANT, length: int = FILTER_LENGTH, order: int = FILTER_ORDER
) -> np.ndarray:
    """The FIR impulse response slayer's SpikeTime loss filters with (float64 copy)."""
    h0 = np.exp(-np.arange(length) / time_constant).astype(np.float32).astype(np.float64)
    h = h0
    for _ in range(order - 1):
        h = np.convolve(h, h0)[:length]
    h.setflags(write=False)
    return h


def spike_time_filter(raster: np.ndarray) -> np.ndarray:
    """Causal FIR filtering along time, as slayer's utils.filter.conv (sampling time 1)."""
    return lfilter(spike_time_kernel(), [1.0], _raster(raster), axis=-1)


def spike_time_loss(output, target) -> float:
    """slayer.loss.SpikeTime(time_constant=2, filter_order=2)(output, target), in float64."""
    out, tgt = _pair(output, target)
    return float(np.sum(spike_time_filter(out - tgt) ** 2))


@lru_cache(maxsize=1)
def _slayer_loss():
    import lava.lib.dl.slayer as slayer  # lazily: the numpy metrics need no torch

    from grader import accel

    with accel.enabled():  # its filter's taps are a sum too: in the kit's order (grader/exact/order.fir)
        return slayer.loss.SpikeTime(time_constant=TIME_CONSTANT, length=FILTER_LENGTH, filter_order=FILTER_ORDER)


def spike_time_loss_torch(output, target) -> float:
    """The same loss computed by slayer itself (float32), on a batch of one as in training,
    so that it is the very number the training loop reports for this output (in the kit's mode)."""
    import torch

    from grader import accel

    out, tgt = _pair(output, target)
    batch = [torch.as_tensor(a, dtype=torch.float32).unsqueeze(0) for a in (out, tgt)]
    # the filter in the kit's order, whatever this machine's MKL does: the scored loss is a sum of
    # filtered spikes, so its bits must not be MKL's choice (the accelerator's FIR is that order)
    with torch.no_grad(), accel.enabled():
        return float(_slayer_loss()(*batch).item())


def silent_loss(target) -> float:
    """Loss of an all-zero output: the natural scale of the loss for this target."""
    tgt = _raster(target, "target")
    return spike_time_loss(np.zeros_like(tgt), tgt)


def relative_loss(output, target) -> float:
    """loss / silent loss: 0 for a perfect output, 1 for a silent one (inf if target silent)."""
    loss, scale = spike_time_loss(output, target), silent_loss(target)
    if scale == 0:
        return 0.0 if loss == 0 else float("inf")
    return loss / scale


def _matches(out_times: np.ndarray, tgt_times: np.ndarray, tol: int) -> int:
    """Maximum number of disjoint (output, target) pairs with |t_out - t_tgt| <= tol.

    Greedy over both sorted lists, pairing the earliest still-matchable spikes; on a
    line with a symmetric window this is a maximum matching (exchange argument),
    checked against an assignment solver in tests/test_metrics.py.
    """
    i = j = n = 0
    while i < len(out_times) and j < len(tgt_times):
        d = out_times[i] - tgt_times[j]
        if abs(d) <= tol:
            n, i, j = n + 1, i + 1, j + 1
        elif d < 0:
            i += 1
        else:
            j += 1
    return n


def spike_matches(output, target, tolerance_ms: int) -> tuple[int, int, int]:
    """(matched, output spikes, target spikes), matching per neuron within +-tolerance_ms."""
    out, tgt = _pair(output, target)
    if tolerance_ms < 0:
        raise ValueError("tolerance_ms must be >= 0")
    tol = int(tolerance_ms)
    matched = 0
    for o_row, t_row in zip(out > 0, tgt > 0):
        matched += _matches(np.flatnonzero(o_row), np.flatnonzero(t_row), tol)
    return matched, int((out > 0).sum()), int((tgt > 0).sum())


def spike_f1(output, target, tolerance_ms: int) -> tuple[float, float, float]:
    """(precision, recall, f1) of spike times; an output spike matches a distinct target
    spike of the same neuron within +-tolerance_ms steps (maximum matching).

    Empty sides: nothing expected and nothing produced is perfect (1, 1, 1); a silent
    output against a non-empty target scores (0, 0, 0), as does the converse.
    """
    matched, n_out, n_tgt = spike_matches(output, target, tolerance_ms)
    precision = matched / n_out if n_out else float(n_tgt == 0)
    recall = matched / n_tgt if n_tgt else float(n_out == 0)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def smoothed_correlation(output, target, sigma_ms: float) -> float:
    """Pearson correlation of the rasters smoothed in time by a Gaussian (sigma in steps),
    flattened over neurons and time. 0 when either side has no variance (silent output).
    """
    out, tgt = _pair(output, target)
    if sigma_ms > 0:
        out = gaussian_filter1d(out, sigma_ms, axis=-1, mode="constant")
        tgt = gaussian_filter1d(tgt, sigma_ms, axis=-1, mode="constant")
    a, b = out.ravel() - out.mean(), tgt.ravel() - tgt.mean()
    denom = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / denom) if denom > 0 else 0.0


def raster_metrics(output, target) -> dict[str, float]:
    """Every metric the rubric may use, as one flat dict of floats/ints (numpy only)."""
    out, tgt = _pair(output, target)
    loss, scale = spike_time_loss(out, tgt), silent_loss(tgt)
    metrics: dict[str, float] = {
        "loss": loss,
        "silent_loss": scale,
        "relative_loss": (loss / scale) if scale else (0.0 if loss == 0 else float("inf")),
    }
    for k in F1_TOLERANCES_MS:
        precision, recall, f1 = spike_f1(out, tgt, k)
        metrics[f"f1_{k}ms"] = f1
        if k == 2:
            metrics["precision_2ms"], metrics["recall_2ms"] = precision, recall
    metrics[f"correlation_{CORRELATION_SIGMA_MS}ms"] = smoothed_correlation(out, tgt, CORRELATION_SIGMA_MS)
    metrics["output_spikes"] = int((out > 0).sum())
    metrics["target_spikes"] = int((tgt > 0).sum())
    return metrics
