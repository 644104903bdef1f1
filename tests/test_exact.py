"""grader.exact: each kernel equals its specification (grader/exact/order.py) bit for bit.

The specification is plain numpy, one IEEE operation at a time, so its bits are
fixed by its text on any IEEE machine; these proofs therefore hold on every
vendor's CPU. Comparisons are bitwise (float32 viewed as int32): -0.0 against
0.0, or another NaN, fails too. Each proof also shows that it can fail: a
neighbouring order (fused, reversed) gives other bits on the same data.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from grader import exact
from grader.exact import dense, elementwise, kernels, order, patch

torch.set_num_threads(1)
TRAINING_SHAPES = [(256, 200, 600), (200, 256, 600), (256, 600, 200)]  # forward, input grad, weight grad
ODD_SHAPES = [(1, 1, 1), (3, 5, 7), (5, 1, 9), (4, 4, 4), (7, 13, 17), (9, 6, 1), (6, 3, 33), (2, 0, 3)]


def bits(a) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a, np.float32)).view(np.int32)


def same_bits(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(bits(a), bits(b))


def seeded(shape, seed: int, sparse: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(np.float32)
    return (x * (rng.random(shape) < 0.05)).astype(np.float32) if sparse else x


@pytest.fixture(autouse=True)
def _libraries_after_each_test():
    yield
    exact.uninstall()
    assert not exact.is_active()


def _kernel_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    c = np.full((a.shape[0], b.shape[1]), np.nan, np.float32)  # every element must be written
    kernels.matmul(np.ascontiguousarray(a), np.ascontiguousarray(b), c)
    return c


# --- matmul: the dense synapse's products -------------------------------------------------------

@pytest.mark.parametrize("m,k,n", TRAINING_SHAPES + ODD_SHAPES)
def test_matmul_kernel_equals_its_specification(m: int, k: int, n: int) -> None:
    a, b = seeded((m, k), m * 1000 + k), seeded((k, n), n * 1000 + k)
    assert same_bits(_kernel_matmul(a, b), order.matmul(a, b))


def test_matmul_on_spikes_and_gradients_of_the_training() -> None:
    w = seeded((256, 200), 1) * np.float32(0.1)
    spikes = (np.random.default_rng(2).random((200, 600)) < 0.03).astype(np.float32)
    grad = seeded((256, 600), 3, sparse=True)
    assert same_bits(_kernel_matmul(w, spikes), order.matmul(w, spikes))
    assert same_bits(_kernel_matmul(np.ascontiguousarray(w.T), grad), order.matmul(w.T, grad))
    assert same_bits(_kernel_matmul(grad, np.ascontiguousarray(spikes.T)), order.matmul(grad, spikes.T))


def test_the_specification_is_a_matrix_product_and_its_order_shows_in_the_bits() -> None:
    a, b = seeded((64, 200), 4), seeded((200, 96), 5)
    spec = order.matmul(a, b)
    exact64 = a.astype(np.float64) @ b.astype(np.float64)
    assert np.max(np.abs(spec - exact64)) < 1e-4 * np.max(np.abs(exact64))
    # a neighbouring order gives other bits on this data, so the proofs above can fail
    reversed_k = order.matmul(a[:, ::-1], b[::-1, :])
    fused = np.zeros_like(spec, dtype=np.float32)
    for k in range(a.shape[1]):  # one rounding per step, as an FMA would do
        fused = (fused.astype(np.float64) + a[:, k:k + 1].astype(np.float64) * b[k:k + 1, :]).astype(np.float32)
    assert not same_bits(reversed_k, spec) and not same_bits(fused, spec)


def test_skipping_zero_products_changes_no_bit() -> None:
    """The zero-skipping kernel that serves spikes equals the specification, signed zeros included."""
    rng = np.random.default_rng(15)
    a = seeded((256, 200), 16)
    spikes = (rng.random((200, 600)) < 0.03).astype(np.float32)
    signed = spikes * np.where(rng.random((200, 600)) < 0.5, -1, 1).astype(np.float32)  # -1, -0, +0, +1
    grad = seeded((256, 600), 17, sparse=True)
    for x, y in ((a, spikes), (a, signed), (grad, np.ascontiguousarray(spikes.T)), (seeded((7, 13), 18), seeded((13, 5), 19))):
        c = np.full((x.shape[0], y.shape[1]), np.nan, np.float32)
        kernels.matmul_skipping_zeros(x, y, c)
        assert same_bits(c, order.matmul(x, y))


def test_the_dense_product_skips_zeros_only_where_that_is_exact() -> None:
    used: list[str] = []
    real = kernels.matmul, kernels.matmul_skipping_zeros
    spikes = torch.from_numpy((np.random.default_rng(20).random((200, 600)) < 0.03).astype(np.float32))
    w = torch.from_numpy(seeded((256, 200), 21))
    try:
        kernels.matmul = lambda *args: used.append("dense") or real[0](*args)
        kernels.matmul_skipping_zeros = lambda *args: used.append("skip") or real[1](*args)
        assert same_bits(dense._matmul(w, spikes), order.matmul(w.numpy(), spikes.numpy()))
        assert same_bits(dense._matmul(w, torch.from_numpy(seeded((200, 600), 22))), order.matmul(w.numpy(), seeded((200, 600), 22)))
        w_inf = w.clone()
        w_inf[3, 4] = float("inf")  # inf * 0 is NaN: the zeros must be multiplied, as the order says
        got = dense._matmul(w_inf, spikes)
        assert same_bits(got, order.matmul(w_inf.numpy(), spikes.numpy())) and bool(torch.isnan(got).any())
    finally:
        kernels.matmul, kernels.matmul_skipping_zeros = real
    assert used == ["skip", "dense", "dense"]


# --- the dense synapse through autograd -----------------------------------------------------

@pytest.mark.parametrize("samples", [1, 2])
def test_dense_product_forward_and_gradients_equal_the_specification(samples: int) -> None:
    x = torch.from_numpy(seeded((samples, 200, 600), 6, sparse=True)).requires_grad_(True)
    w = torch.from_numpy(seeded((256, 200), 7) * np.float32(0.05)).requires_grad_(True)
    g = seeded((samples, 256, 600), 8, sparse=True)
    y = dense.DenseProduct.apply(x, w)
    y.backward(torch.from_numpy(g))
    xs, ws = x.detach().numpy(), w.detach().numpy()
    assert same_bits(y.detach(), order.dense_forward(ws, xs))
    assert same_bits(x.grad, order.dense_input_grad(ws, g))
    assert same_bits(w.grad, order.dense_weight_grad(g, xs))


def test_a_slayer_dense_block_trains_through_the_kit_kernel_when_installed() -> None:
    import lava.lib.dl.slayer as slayer

    from solution.homework import NEURON_PARAMS

    torch.manual_seed(0)
    block = slayer.block.cuba.Dense(NEURON_PARAMS, 200, 256)
    x = torch.from_numpy((np.random.default_rng(9).random((1, 200, 600)) < 0.05).astype(np.float32))
    calls: list[tuple[int, ...]] = []
    real = dense._matmul

    def counted(a, b):
        calls.append((a.shape[0], a.shape[1], b.shape[1]))
        return real(a, b)

    assert exact.install() is True
    try:
        dense._matmul = counted
        block(x).sum().backward()
    finally:
        dense._matmul = real
    # forward (256x200x600) and the weight gradient (256x600x200); x needs no gradient
    assert calls == [(256, 200, 600), (256, 600, 200)]
    weight = block.synapse._pre_hook_fx(block.synapse.weight).detach().reshape(256, 200).numpy()
    z = block.synapse(x).detach().numpy()
    assert same_bits(z, order.dense_forward(weight, x.numpy()))


def test_layers_the_kernel_was_not_written_for_run_on_stock_torch_and_say_so(monkeypatch) -> None:
    from lava.lib.dl.slayer.synapse import layer

    monkeypatch.setattr(dense, "_warned", False)
    syn = layer.Dense(200, 8).double()
    x = torch.zeros(1, 200, 5, dtype=torch.float64)
    assert exact.install() is True
    with pytest.warns(RuntimeWarning, match=r"^grader\.exact: a slayer Dense layer runs on stock torch \(dtype "
                                            r"torch\.float64/torch\.float64, not float32\): its sums follow MKL's order"):
        out = syn(x)
    assert out.shape == (1, 8, 5) and out.dtype == torch.float64
    assert dense.unsupported(layer.Dense(200, 8), torch.zeros(1, 200, 3), torch.zeros(8, 200, 1, 1, 1)) is None
    assert dense.unsupported(layer.Dense(200, 8), torch.zeros(1, 200, 2, 2, 3), torch.zeros(8, 200, 1, 1, 1)) \
        == "input of shape (1, 200, 2, 2, 3)"


# --- FIR filter: the SpikeTime loss ----------------------------------------------------------

@pytest.mark.parametrize("rows,steps,taps", [(200, 600, 100), (1, 100, 100), (3, 7, 1), (2, 5, 6), (4, 9, 13)])
@pytest.mark.parametrize("side", ["fwd", "bwd"])
def test_fir_kernel_equals_its_specification(rows: int, steps: int, taps: int, side: str) -> None:
    x, w = seeded((rows, steps), rows + steps, sparse=True), seeded(taps, taps)
    xpad = np.pad(x, ((0, 0), (taps - 1, 0))) if side == "fwd" else np.pad(x, ((0, 0), (0, taps - 1)))
    out = np.full(x.shape, np.nan, np.float32)
    kernels.fir(xpad, np.ascontiguousarray(w[::-1] if side == "fwd" else w), out)
    assert same_bits(out, order.fir(x, w, side))


def test_the_accelerator_filters_in_the_kit_order_in_the_pinned_mode() -> None:
    from grader.accel import filter

    filter.reset()
    x = torch.from_numpy(seeded((1, 200, 600), 10, sparse=True))
    taps = torch.from_numpy(np.abs(seeded(100, 11)))
    out = filter.fir_fwd(x, taps)
    assert same_bits(out[0], order.fir(x[0].numpy(), taps.numpy(), "fwd"))
    assert set(filter._programs.values()) == {filter.KIT_ORDER}


# --- exp: the surrogate gradient ---------------------------------------------------------------

def _exp_inputs() -> np.ndarray:
    rng = np.random.default_rng(12)
    specials = [0.0, -0.0, 1e-30, -1e-30, 88.72, 88.73, 89.0, 89.5, -103.9, -104.0, -104.5,
                np.inf, -np.inf, np.nan, np.finfo(np.float32).max, -np.finfo(np.float32).max]
    return np.concatenate([rng.uniform(-110, 95, 400_000), rng.uniform(-12, 0, 400_000),
                           specials]).astype(np.float32)


def test_exp_kernel_equals_its_specification() -> None:
    x = _exp_inputs()
    out = np.full_like(x, 7.0)
    kernels.exp(x, out)
    assert same_bits(out, order.exp(x))


def test_the_specified_exp_is_correctly_rounded_on_these_inputs() -> None:
    """Not required for reproducibility, but it shows the specification is a faithful exp."""
    x = _exp_inputs()
    with np.errstate(over="ignore"):
        reference = np.exp(x.astype(np.float64)).astype(np.float32)
    got = order.exp(x)
    nan = np.isnan(x)
    assert np.isnan(got[nan]).all() and same_bits(got[~nan], reference[~nan])


def test_spike_backward_is_slayers_formula_with_the_kit_exp() -> None:
    voltage = torch.from_numpy(seeded((1, 256, 600), 13))
    want = 1.0 / 2 / 0.5 * order.exp((-torch.abs(voltage - 0.1) / 0.5).numpy())
    got = elementwise.spike_backward(voltage, 0.1, 0.5, 1.0)
    assert same_bits(got, np.asarray(want, np.float32))
    graded = elementwise.spike_backward(voltage, 0.1, 0.5, 1.0, graded_spike=True)
    assert same_bits(graded, np.float32(1.0) * order.exp((torch.clamp(voltage - 0.1, max=0) / 0.5).numpy()))


# --- sqrt: Adam's denominator -------------------------------------------------------------------

def test_torch_sqrt_is_ieee_while_installed_and_the_library_kernel_comes_back_after() -> None:
    x = torch.from_numpy(np.abs(seeded(51_200, 14)) * np.float32(1e-6))
    before = torch.sqrt(x)
    assert exact.install() is True
    want = order.sqrt(x.numpy())
    assert same_bits(torch.sqrt(x), want) and same_bits(x.sqrt(), want)
    inplace = x.clone()
    inplace.sqrt_()
    out = torch.empty(3)
    torch.sqrt(x, out=out)
    assert same_bits(inplace, want) and same_bits(out, want)
    assert torch.sqrt(torch.tensor([4, 9])).tolist() == [2.0, 3.0]  # integers promote, as torch does
    assert torch.sqrt(torch.tensor([2.0], dtype=torch.float64)).item() == np.sqrt(2.0)
    exact.uninstall()
    assert same_bits(torch.sqrt(x), before.numpy())


def test_adam_steps_with_the_ieee_sqrt() -> None:
    torch.manual_seed(1)
    p = torch.nn.Parameter(torch.randn(256, 200))
    start = p.detach().clone()
    assert exact.install() is True
    opt = torch.optim.Adam([p], lr=1e-3)
    p.grad = torch.randn(256, 200) * 1e-3
    opt.step()
    state = opt.state[p]
    denom = (torch.from_numpy(order.sqrt(state["exp_avg_sq"].numpy())) / math.sqrt(1 - 0.999)).add_(1e-8)
    assert same_bits(p.detach(), start.addcdiv(state["exp_avg"], denom, value=-1e-3 / (1 - 0.9)))


# --- install / uninstall / guards -------------------------------------------------------------

def test_install_patches_and_uninstall_restores() -> None:
    from lava.lib.dl.slayer.spike import spike
    from lava.lib.dl.slayer.synapse import layer

    assert exact.install() is True and exact.install() is True  # idempotent
    assert layer.Dense.forward is dense.forward and spike._spike_backward is elementwise.spike_backward
    exact.uninstall()
    assert layer.Dense.forward is dense.STOCK_FORWARD and spike._spike_backward is elementwise.STOCK_SPIKE_BACKWARD
    with exact.mode(accelerate=False) as accelerated:
        assert accelerated is False and exact.is_active()
    assert not exact.is_active()


def test_a_failed_guard_leaves_the_libraries_in_place_with_one_warning(monkeypatch) -> None:
    from lava.lib.dl.slayer.synapse import layer

    monkeypatch.setattr(patch, "_warned", False)
    monkeypatch.setattr(layer.Dense, "forward", lambda self, x: x)
    with pytest.warns(RuntimeWarning, match=r"^grader\.exact: the kit's orders are not installed, training sums in "
                                            r"the libraries' orders \(slayer's Dense\.forward was replaced by someone else\)$"):
        assert exact.install() is False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert exact.install() is False  # once per process
    assert not exact.is_active()


def test_the_self_test_catches_a_kernel_that_leaves_the_order(monkeypatch) -> None:
    monkeypatch.setattr(kernels, "matmul", lambda a, b, c: c.__setitem__(slice(None), a @ b))
    assert patch.self_test() == "matmul self-test differs (5x7x9)"
