"""grader.metrics on hand-made rasters with known values, and against slayer's own loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

from grader import metrics as M

torch.set_num_threads(1)


def raster(shape: tuple[int, int], *spikes: tuple[int, int]) -> np.ndarray:
    """(neurons, T) zeros with a 1 at each (neuron, t)."""
    r = np.zeros(shape, dtype=np.float32)
    for i, t in spikes:
        r[i, t] = 1
    return r


def random_raster(seed: int, shape=(20, 300), rate=0.05) -> np.ndarray:
    return (np.random.default_rng(seed).random(shape) < rate).astype(np.float32)


# --- SpikeTime loss -------------------------------------------------------------------


def test_kernel_is_slayers_filter():
    import lava.lib.dl.slayer as slayer

    theirs = slayer.loss.SpikeTime(time_constant=2, filter_order=2).filter.filter.numpy().ravel()
    ours = M.spike_time_kernel()
    assert ours.shape == (100,)
    np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-7)
    # second order: h0 * h0 = (n + 1) exp(-n / 2), truncated at 100 taps
    n = np.arange(100)
    np.testing.assert_allclose(ours, (n + 1) * np.exp(-n / 2), rtol=1e-6)


def test_single_spike_losses():
    h = M.spike_time_kernel()
    empty = np.zeros((3, 50))
    # a spike on the last step only contributes h[0]^2 = 1: the filter is causal
    assert M.spike_time_loss(raster((3, 50), (1, 49)), empty) == pytest.approx(1.0)
    # a spike at t=0 of a 50-step window: the first 50 taps
    assert M.spike_time_loss(raster((3, 50), (0, 0)), empty) == pytest.approx(np.sum(h[:50] ** 2))
    # loss is symmetric and zero on identical rasters
    a, b = random_raster(1), random_raster(2)
    assert M.spike_time_loss(a, a) == 0.0
    assert M.spike_time_loss(a, b) == pytest.approx(M.spike_time_loss(b, a))


@pytest.mark.parametrize("seed", range(4))
def test_numpy_loss_matches_slayer(seed):
    rng = np.random.default_rng(seed)
    rate = [0.005, 0.03, 0.1, 0.5][seed]
    out = (rng.random((200, 600)) < rate).astype(np.float32)
    tgt = (rng.random((200, 600)) < 0.02).astype(np.float32)
    ours, theirs = M.spike_time_loss(out, tgt), M.spike_time_loss_torch(out, tgt)
    assert ours == pytest.approx(theirs, rel=1e-5)  # float64 here, float32 conv3d in slayer


def test_torch_loss_is_exactly_the_training_loss():
    from solution import make_loss

    out, tgt = random_raster(3, (200, 600)), random_raster(4, (200, 600), 0.02)
    expected = make_loss()(torch.tensor(out)[None], torch.tensor(tgt)[None]).item()
    assert M.spike_time_loss_torch(out, tgt) == expected
    assert M.spike_time_loss_torch(out[None], tgt[None]) == expected  # batch of one accepted


def test_relative_and_silent_loss():
    tgt = random_raster(5)
    assert M.relative_loss(tgt, tgt) == 0.0
    assert M.relative_loss(np.zeros_like(tgt), tgt) == pytest.approx(1.0)
    assert M.silent_loss(tgt) == pytest.approx(M.spike_time_loss(np.zeros_like(tgt), tgt))
    assert M.relative_loss(np.ones_like(tgt), tgt) > 1
    silent = np.zeros((2, 10))
    assert M.relative_loss(silent, silent) == 0.0
    assert M.relative_loss(raster((2, 10), (0, 3)), silent) == float("inf")


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        M.spike_time_loss(np.zeros((2, 10)), np.zeros((3, 10)))
    with pytest.raises(ValueError):
        M.spike_f1(np.zeros(10), np.zeros(10), 1)


# --- spike-time F1 --------------------------------------------------------------------


def test_f1_tolerance():
    out, tgt = raster((2, 20), (0, 10)), raster((2, 20), (0, 12))
    assert M.spike_f1(out, tgt, 0) == (0.0, 0.0, 0.0)
    assert M.spike_f1(out, tgt, 1) == (0.0, 0.0, 0.0)
    assert M.spike_f1(out, tgt, 2) == (1.0, 1.0, 1.0)
    # the same times on another neuron never match
    assert M.spike_f1(raster((2, 20), (1, 12)), tgt, 5) == (0.0, 0.0, 0.0)


def test_f1_targets_are_matched_once():
    out = raster((1, 20), (0, 10), (0, 11))
    tgt = raster((1, 20), (0, 10))
    precision, recall, f1 = M.spike_f1(out, tgt, 2)
    assert (precision, recall) == (0.5, 1.0)
    assert f1 == pytest.approx(2 / 3)


def test_f1_matching_is_maximal_not_nearest_first():
    # pairing the closest spikes first (4-4) would leave 3 and 5 unmatched: 1 match;
    # the maximum matching is 3-4 and 4-5
    out = raster((1, 10), (0, 3), (0, 4))
    tgt = raster((1, 10), (0, 4), (0, 5))
    assert M.spike_matches(out, tgt, 1) == (2, 2, 2)
    assert M.spike_f1(out, tgt, 1) == (1.0, 1.0, 1.0)


def test_f1_empty_conventions():
    silent, tgt = np.zeros((2, 10)), raster((2, 10), (0, 1))
    assert M.spike_f1(silent, silent, 2) == (1.0, 1.0, 1.0)
    assert M.spike_f1(silent, tgt, 2) == (0.0, 0.0, 0.0)
    assert M.spike_f1(tgt, silent, 2) == (0.0, 0.0, 0.0)


def _optimal_matches(a: list[int], b: list[int], tol: int) -> int:
    if not a or not b:
        return 0
    reach = np.array([[abs(x - y) <= tol for y in b] for x in a], dtype=float)
    rows, cols = linear_sum_assignment(-reach)
    return int(reach[rows, cols].sum())


times = st.lists(st.integers(0, 30), max_size=8, unique=True)


@settings(max_examples=200, deadline=None)
@given(a=times, b=times, tol=st.integers(0, 4))
def test_greedy_matching_is_optimal(a, b, tol):
    out = raster((1, 31), *[(0, t) for t in a])
    tgt = raster((1, 31), *[(0, t) for t in b])
    assert M.spike_matches(out, tgt, tol)[0] == _optimal_matches(sorted(a), sorted(b), tol)


# --- smoothed correlation and the bundle ----------------------------------------------


def test_smoothed_correlation():
    tgt = random_raster(6)
    assert M.smoothed_correlation(tgt, tgt, 5) == pytest.approx(1.0)
    assert M.smoothed_correlation(np.zeros_like(tgt), tgt, 5) == 0.0
    shifted = np.roll(tgt, 3, axis=1)
    near, far = M.smoothed_correlation(shifted, tgt, 5), M.smoothed_correlation(shifted, tgt, 0.5)
    assert abs(far) < 0.1 < near < 1  # smoothing forgives timing errors
    # it is the Pearson correlation of the smoothed, flattened rasters
    from scipy.ndimage import gaussian_filter1d

    a = gaussian_filter1d(shifted.astype(float), 5, axis=1, mode="constant").ravel()
    b = gaussian_filter1d(tgt.astype(float), 5, axis=1, mode="constant").ravel()
    assert near == pytest.approx(np.corrcoef(a, b)[0, 1])


def test_raster_metrics():
    tgt = random_raster(7, (30, 200))
    perfect = M.raster_metrics(tgt, tgt)
    assert perfect["loss"] == 0.0 and perfect["relative_loss"] == 0.0
    assert perfect["f1_0ms"] == perfect["f1_2ms"] == perfect["f1_5ms"] == 1.0
    assert perfect["precision_2ms"] == perfect["recall_2ms"] == 1.0
    assert perfect["correlation_5ms"] == pytest.approx(1.0)
    assert perfect["output_spikes"] == perfect["target_spikes"] == int(tgt.sum())
    silent = M.raster_metrics(np.zeros_like(tgt), tgt)
    assert silent["relative_loss"] == pytest.approx(1.0)
    assert silent["f1_2ms"] == 0.0 and silent["correlation_5ms"] == 0.0 and silent["output_spikes"] == 0
    assert all(isinstance(v, (int, float)) for v in silent.values())
