"""grader.accel: compiled CPU kernels must give stock slayer's bits, and patch cleanly.

Every comparison is bitwise (float32 viewed as int32), so -0.0 vs 0.0 or a
different NaN would fail too.
"""

from __future__ import annotations

import importlib
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grader import accel
from grader.accel import dynamics, filter, kernels, patch

torch.set_num_threads(1)

LI = importlib.import_module(patch._LI)
CONV = importlib.import_module(patch._CONV)
STOCK = {
    (LI, "_li_dynamics_fwd"): dynamics.STOCK_FWD,
    (LI, "_li_dynamics_bwd"): dynamics.STOCK_BWD,
    (CONV, "_fwd"): filter.STOCK_FWD,
    (CONV, "_bwd"): filter.STOCK_BWD,
}
HYPOTHESIS = settings(
    max_examples=150, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


def same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(
        a.contiguous().view(torch.int32), b.contiguous().view(torch.int32)
    )


def stock_in_place() -> bool:
    return all(getattr(module, name) is fn for (module, name), fn in STOCK.items())


@pytest.fixture(autouse=True)
def _stock_after_each_test():
    yield
    accel.uninstall()
    assert stock_in_place()


@pytest.fixture
def fresh_warning(monkeypatch):
    """Allow the once-per-process warning to fire again, and see every warning."""
    monkeypatch.setattr(patch, "_warned", False)


# --- neuron dynamics -------------------------------------------------------------------

@st.composite
def dynamics_case(draw):
    lead = draw(st.sampled_from([(1,), (3,), (2, 3), (1, 2, 3)]))
    neurons = draw(st.integers(1, 24))
    steps = draw(st.integers(1, 48))
    shape = (*lead, neurons, steps)
    shared = draw(st.booleans())
    seed = draw(st.integers(0, 2**31 - 1))
    g = torch.Generator().manual_seed(seed)
    scale = draw(st.sampled_from([0.01, 0.1, 1.0, 5.0]))
    x = torch.randn(shape, generator=g) * scale
    x[torch.rand(shape, generator=g) < 0.3] = 0.0  # exact zeros, as spikes give
    decay = torch.randint(0, 4097, (1,) if shared else (neurons,), generator=g).float()
    if draw(st.booleans()):  # the extremes: no decay, full decay
        decay[0] = draw(st.sampled_from([0.0, 4096.0]))
    state = torch.randn(shape[:-1], generator=g) * scale
    threshold = draw(st.one_of(
        st.sampled_from([-1, 0, 0.0, -0.5, 0.1 + 0.01 / 4096]),
        st.floats(-0.5, 2.0, allow_nan=False),
    ))
    w_scale = draw(st.sampled_from([1, 64, 4096, 4095, 100]))
    return x, decay, state, threshold, w_scale


@HYPOTHESIS
@given(dynamics_case())
def test_dynamics_forward_and_backward_match_stock(case):
    x, decay, state, threshold, w_scale = case
    want = dynamics.STOCK_FWD(x, decay, state, threshold, w_scale, dtype=torch.int64)
    got = dynamics.li_dynamics_fwd(x, decay, state, threshold, w_scale, dtype=torch.int64)
    assert same_bits(want, got)

    grad = torch.randn(x.shape, generator=torch.Generator().manual_seed(x.numel()))
    want_gi, want_gd = dynamics.STOCK_BWD(grad, want, decay)
    got_gi, got_gd = dynamics.li_dynamics_bwd(grad, got, decay)
    assert same_bits(want_gi, got_gi)
    assert same_bits(want_gd, got_gd)


def test_dynamics_spike_test_is_float32_like_stock():
    # 16777216 >= 16777216.5 is false in float64 but true in float32, where torch compares
    x = torch.tensor([[[16777216.0, 0.0, 0.0]]])
    args = (torch.tensor([0.0]), torch.zeros(1, 1), 16777216.5, 1)
    want = dynamics.STOCK_FWD(x, *args, dtype=torch.int64)
    got = dynamics.li_dynamics_fwd(x, *args, dtype=torch.int64)
    assert want[0, 0, 1].item() == 0.0  # stock did spike and reset
    assert same_bits(want, got)


def test_dynamics_out_of_range_casts_match_stock():
    x = torch.tensor([[[1e30, 0.0, -1e30, float("nan"), float("inf"), 3.0]]])
    args = (torch.tensor([0.0]), torch.zeros(1, 1), 0.5, 1)
    assert same_bits(
        dynamics.STOCK_FWD(x, *args, dtype=torch.int64),
        dynamics.li_dynamics_fwd(x, *args, dtype=torch.int64),
    )


def test_backward_is_not_fused_into_fma():
    """The kernel rounds d*g before adding; an FMA version would differ on this data."""
    g = torch.Generator().manual_seed(3)
    go = torch.randn(64, 200, generator=g)
    decay = torch.rand(64, generator=g) * 4096
    factor = (1 - decay / 4096).numpy()
    got = torch.empty_like(go)
    kernels.li_backward(go.numpy(), factor, got.numpy())
    want, _ = dynamics.STOCK_BWD(go.reshape(1, 64, 200), torch.ones(1, 64, 200), decay)
    assert same_bits(want.reshape(64, 200), got)

    fused = np.empty_like(go.numpy())  # float64 emulation of fma(d, g, go), one rounding
    fused[:, -1] = go.numpy()[:, -1]
    for n in range(198, -1, -1):
        exact = factor.astype(np.float64) * fused[:, n + 1].astype(np.float64) + go.numpy()[:, n]
        fused[:, n] = exact.astype(np.float32)
    assert not np.array_equal(fused.view(np.int32), got.numpy().view(np.int32))


def test_dynamics_hands_other_inputs_to_stock(monkeypatch):
    calls = []
    monkeypatch.setattr(dynamics, "STOCK_FWD", lambda *a, **k: calls.append("fwd") or "stock")
    monkeypatch.setattr(dynamics, "STOCK_BWD", lambda *a, **k: calls.append("bwd") or "stock")
    meta = torch.empty(1, 4, 10, device="meta")  # stands in for CUDA: any non-CPU device
    assert dynamics.li_dynamics_fwd(
        meta, torch.zeros(1, device="meta"), torch.zeros(1, 4, device="meta"), 0.1, 64,
        dtype=torch.int64) == "stock"
    assert dynamics.li_dynamics_bwd(meta, meta, torch.zeros(1, device="meta")) == "stock"
    x = torch.zeros(1, 4, 10)
    assert dynamics.li_dynamics_fwd(x.double(), torch.zeros(1), torch.zeros(1, 4), 0.1, 64,
                                    dtype=torch.int64) == "stock"
    assert dynamics.li_dynamics_fwd(x, torch.zeros(1), torch.zeros(1, 4), 0.1, 64) == "stock"  # int32
    assert calls == ["fwd", "bwd", "fwd", "fwd"]

    monkeypatch.setattr(filter, "STOCK_FWD", lambda *a, **k: calls.append("fir") or "stock")
    monkeypatch.setattr(filter, "STOCK_BWD", lambda *a, **k: calls.append("fir") or "stock")
    assert filter.fir_fwd(meta, torch.ones(5, device="meta"), 1) == "stock"
    assert filter.fir_bwd(meta, torch.ones(5, device="meta"), 1) == "stock"
    assert filter.fir_fwd(x.double(), torch.ones(5).double(), 1) == "stock"
    assert calls[4:] == ["fir", "fir", "fir"]


# --- FIR filter / SpikeTime loss --------------------------------------------------------

@pytest.fixture(scope="module")
def loss_filter() -> torch.Tensor:
    from solution import make_loss

    return make_loss().filter.filter.flatten()


@pytest.fixture
def fresh_fir():
    """Forget verified cases, and let the once-per-process fallback warning fire again."""
    filter.reset()
    yield
    filter.reset()


def _kit_order(x: torch.Tensor, taps: torch.Tensor, side: str, sampling_time: float = 1) -> torch.Tensor:
    """grader/exact/order.fir, the kit's specification, row by row; then stock's `* sampling_time`."""
    from grader.exact import order

    rows = x.detach().reshape(-1, x.shape[-1]).numpy()
    return torch.from_numpy(order.fir(rows, taps.numpy(), side)).reshape(x.shape) * sampling_time


def _served_in_the_kit_order(side: str, calls: int, record, x: torch.Tensor, taps: torch.Tensor) -> bool:
    """The pinned mode: the kit's order served every call; whether stock agrees is recorded, and said if not.

    Whether this machine's MKL sums a case as the kit does is the machine's business (it does on the
    AMD EPYC and Intel Xeon measured); the test's is that the bits are the kit's either way and that a
    stock that sums otherwise is said, not silent. Returns whether stock agreed.
    """
    assert filter.stats[f"{side}_fast"] == calls and filter.stats[f"{side}_stock"] == 0
    (agrees,) = [v for k, v in filter.stock_agrees.items() if k[0] == side]
    stock = (filter.STOCK_FWD if side == "fwd" else filter.STOCK_BWD)(x.detach(), taps, 1)
    if x.shape[0] == 1:  # stock on random data of the shape said the same as stock on these data
        assert agrees == same_bits(stock, _kit_order(x, taps, side))
    messages = [str(w.message) for w in record if "grader.accel" in str(w.message)]
    if agrees or x.numel() < filter._WARN_MIN_ELEMENTS:
        assert messages == []
    else:
        assert len(messages) == 1 and "sums case" in messages[0] and "--no-accel results differ here" in messages[0]
    return agrees


@pytest.mark.parametrize("side", ["fwd", "bwd"])
@pytest.mark.parametrize("kind", ["spikes", "dense"])
def test_fir_sums_in_the_kit_order_and_checks_stock_once(side, kind, loss_filter, fresh_fir):
    g = torch.Generator().manual_seed(11)
    shape = (1, 200, 600)
    x = (torch.rand(shape, generator=g) < 0.05).float() if kind == "spikes" else \
        torch.randn(shape, generator=g)
    fast = filter.fir_fwd if side == "fwd" else filter.fir_bwd
    x.requires_grad_(True)  # as the network output is: never cached
    with torch.no_grad(), warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert same_bits(_kit_order(x, loss_filter, side), fast(x, loss_filter, 1))
        assert same_bits(_kit_order(x, loss_filter, side, 0.5), fast(x, loss_filter, 0.5))
    _served_in_the_kit_order(side, 2, record, x, loss_filter)


@pytest.mark.parametrize("shape,taps", [
    ((1, 40, 600), 100),
    ((1, 32, 256), 17),
    ((2, 40, 300), 100),  # batch > 1: torch may run oneDNN there, another order
    ((1, 5, 600), 100),  # rows*T not a multiple of 16: sgemm's tail may sum differently
    ((3, 7, 64), 5),
])
def test_fir_other_shapes_and_lengths_sum_in_the_kit_order(shape, taps, fresh_fir):
    g = torch.Generator().manual_seed(taps)
    x = torch.randn(shape, generator=g)
    f = torch.rand(taps, generator=g)
    for side, fir in (("fwd", filter.fir_fwd), ("bwd", filter.fir_bwd)):
        filter.reset()
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            assert same_bits(_kit_order(x, f, side), fir(x, f, 1))
        _served_in_the_kit_order(side, 1, record, x, f)


def _stock_served(side: str, calls: int, record) -> None:
    """Outside the kit's mode: a case that does not verify goes to stock, with its warning."""
    assert filter.stats[f"{side}_fast"] == 0 and filter.stats[f"{side}_stock"] == calls
    messages = [str(w.message) for w in record if issubclass(w.category, RuntimeWarning)]
    assert any("does not reproduce stock's summation order" in m and "runs on stock slayer" in m
               for m in messages), messages


def test_fir_declines_an_order_it_cannot_reproduce_outside_the_kit_mode(monkeypatch, loss_filter, fresh_fir):
    """Native mode (the bench's): a program that does not verify is never used: stock's bits, one warning."""
    from solution import numerics

    monkeypatch.setattr(numerics, "requested", lambda: numerics.NATIVE)
    def wrong_order(tree, style="fma-pivot"):  # every product rounded, summed from the last tap
        chain: object = loss_filter.numel() - 1
        for k in range(loss_filter.numel() - 2, -1, -1):
            chain = (chain, k)
        return compile_tree(chain, "rounded")

    compile_tree = filter.compile_tree
    monkeypatch.setattr(filter, "compile_tree", wrong_order)
    x = torch.randn(1, 200, 600, generator=torch.Generator().manual_seed(4))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert same_bits(filter.STOCK_BWD(x, loss_filter, 1), filter.fir_bwd(x, loss_filter, 1))
        assert same_bits(filter.STOCK_BWD(x, loss_filter, 1), filter.fir_bwd(x, loss_filter, 1))
    _stock_served("bwd", 2, record)
    messages = [str(w.message) for w in record if "grader.accel" in str(w.message)]
    assert messages == [
        "grader.accel: the fast FIR filter does not reproduce stock's summation order for case "
        "('bwd', (1, 200, 600), 100, 1, False) (e.g. batch > 1 makes torch use oneDNN, or another BLAS); "
        "that filter runs on stock slayer there (exact, slower)"
    ]


def test_fir_rounded_program_reproduces_a_sequential_sum():
    """MKL's COMPATIBLE branch (and its AMD paths): products rounded, added in tap order."""
    taps = 7
    chain: object = 0
    for k in range(1, taps):
        chain = (chain, k)
    program = filter.compile_tree(chain, "rounded")
    assert kernels.OP_FMA not in program[0].tolist()
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, taps + 9 - 1)).astype(np.float32)
    w = rng.standard_normal(taps).astype(np.float32)
    out = np.empty((2, 9), np.float32)
    kernels.fir_rows(x, w, *program, out)
    for r in range(2):
        for t in range(9):
            acc = np.float32(0)
            for k in range(taps):
                acc = np.float32(acc + np.float32(x[r, t + k] * w[k]))
            assert out[r, t].view(np.int32) == acc.view(np.int32)
    fused = np.empty_like(out)  # the FMA style differs on these data: the style matters
    kernels.fir_rows(x, w, *filter.compile_tree(chain, "fma-pivot"), fused)
    assert not np.array_equal(out.view(np.int32), fused.view(np.int32))


def test_fir_compile_tree_rejects_an_unknown_style():
    with pytest.raises(ValueError, match=r"unknown style 'fused'; known: \('fma-pivot', 'fma-other', 'rounded'\)"):
        filter.compile_tree((0, 1), "fused")


def test_fir_derived_tree_agrees_with_all_pairs():
    """The recursive probing (few probes) finds the tree that all K(K-1)/2 probes give."""
    taps = 12
    pairs = [(i, j) for i in range(taps) for j in range(i + 1, taps)]
    lca = dict(zip(pairs, filter._probe_lca_sizes(taps, pairs)))

    def build(leaves):
        if len(leaves) == 1:
            return leaves[0]
        a = leaves[0]
        size = len(leaves)
        left = [b for b in leaves if b == a or lca[(a, b)] < size]
        right = [b for b in leaves if b != a and lca[(a, b)] == size]
        assert right and all(lca[min(a, b), max(a, b)] <= size for b in leaves if b != a)
        return (build(left), build(right))

    assert filter.derive_tree(taps) == build(list(range(taps)))


def test_fir_tree_program_reproduces_a_known_order():
    # ((0 + 1) + 2) + (3 + 4): leaf-onto-leaf and leaf-onto-sum are FMAs, sum + sum an add
    program = filter.compile_tree((((0, 1), 2), (3, 4)))
    x = np.random.default_rng(0).standard_normal((3, 5 + 8 - 1)).astype(np.float32)
    w = np.random.default_rng(1).standard_normal(5).astype(np.float32)
    out = np.empty((3, 8), np.float32)
    kernels.fir_rows(x, w, *program, out)

    def fma(a, b, c):  # float64 holds a*b exactly; the one rounding is the cast
        return np.float32(np.float64(a) * np.float64(b) + np.float64(c))

    for r in range(3):
        for t in range(8):
            p = x[r, t:t + 5]
            left = fma(p[2], w[2], fma(p[0], w[0], np.float32(p[1] * w[1])))
            right = fma(p[3], w[3], np.float32(p[4] * w[4]))
            assert out[r, t] == np.float32(left + right)


def test_fir_caches_the_constant_target_exactly(loss_filter):
    filter.clear_cache()
    target = (torch.rand(1, 200, 600, generator=torch.Generator().manual_seed(5)) < 0.05).float()
    hits = filter.stats["fwd_cached"]
    first = filter.fir_fwd(target, loss_filter, 1)
    again = filter.fir_fwd(target.clone(), loss_filter, 1)  # a new tensor, same bits: a hit
    assert filter.stats["fwd_cached"] == hits + 1
    assert same_bits(first, again) and again.data_ptr() != first.data_ptr()
    again.zero_()  # the caller owns what it gets
    assert same_bits(filter.fir_fwd(target, loss_filter, 1), _kit_order(target, loss_filter, "fwd"))
    other = target.clone()
    other[0, 0, 0] = 1 - other[0, 0, 0]
    assert same_bits(filter.fir_fwd(other, loss_filter, 1), _kit_order(other, loss_filter, "fwd"))
    assert filter.stats["fwd_cached"] == hits + 2


def test_spike_time_loss_and_gradient_match_stock():
    from solution import make_loss

    g = torch.Generator().manual_seed(2)
    target = (torch.rand(1, 200, 600, generator=g) < 0.03).float()
    output = (torch.rand(1, 200, 600, generator=g) < 0.03).float()

    def loss_and_grad():
        out = output.clone().requires_grad_(True)
        loss = make_loss()(out, target)
        loss.backward()
        return loss.detach(), out.grad

    want = loss_and_grad()
    with accel.enabled() as active:
        assert active
        got = [loss_and_grad() for _ in range(2)]  # second: the target comes from the cache
    for loss, grad in got:
        assert same_bits(want[0], loss) and same_bits(want[1], grad)


# --- whole training -------------------------------------------------------------------------

def _train_pair(tmp_path, epochs):
    """Both in the kit's orders (grader.exact), as --no-accel and as the kit grades: dynamics and filter differ."""
    from grader import exact
    from solution import train

    seen = []

    def progress(epoch, loss):
        seen.append(exact.is_active())

    stock = train(epochs, seed=0, out_dir=tmp_path / "stock", accelerator=exact.mode(False), progress=progress)
    fast = train(epochs, seed=0, out_dir=tmp_path / "accel", accelerator=exact.mode(True), progress=progress)
    assert seen == [True] * (2 * epochs) and not exact.is_active()
    return stock, fast


def _assert_identical(stock, fast, epochs):
    assert fast.accelerated and not stock.accelerated
    assert len(stock.losses) == epochs and stock.losses == fast.losses
    a, b = stock.network.state_dict(), fast.network.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert same_bits(a[key], b[key]), key
    assert (stock.out_dir / "loss.txt").read_bytes() == (fast.out_dir / "loss.txt").read_bytes()


def test_short_training_is_identical(tmp_path):
    stock, fast = _train_pair(tmp_path, 15)
    _assert_identical(stock, fast, 15)
    assert stock_in_place()  # train's enabled() restored stock on exit


@pytest.mark.slow
def test_long_training_is_identical(tmp_path):
    stock, fast = _train_pair(tmp_path, 200)  # ~70 s, mostly stock
    _assert_identical(stock, fast, 200)


# --- install / uninstall / fallback / switch --------------------------------------------

def test_install_patches_and_uninstall_restores(fresh_warning):
    assert stock_in_place() and not accel.is_active()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert accel.install() is True
    assert accel.is_active()
    assert LI._li_dynamics_fwd is dynamics.li_dynamics_fwd
    assert LI._li_dynamics_bwd is dynamics.li_dynamics_bwd
    assert CONV._fwd is filter.fir_fwd and CONV._bwd is filter.fir_bwd
    assert accel.install() is True  # idempotent
    accel.uninstall()
    assert stock_in_place() and not accel.is_active()
    accel.uninstall()  # no-op
    assert stock_in_place()


def test_enabled_context_restores_and_nests(fresh_warning):
    with accel.enabled() as active:
        assert active and accel.is_active()
        with accel.enabled() as inner:
            assert inner
        assert accel.is_active()  # the inner block did not install, so it leaves it be
    assert stock_in_place()
    with accel.enabled(False) as active:
        assert active is False and stock_in_place()


def test_failed_check_warns_once_and_keeps_stock(fresh_warning, monkeypatch):
    monkeypatch.setattr(patch, "_lava_version", lambda: "0.5.0")
    with pytest.warns(RuntimeWarning, match="lava-dl 0.5.0") as record:
        assert accel.install() is False
        assert accel.install() is False
    assert len([w for w in record if "grader.accel" in str(w.message)]) == 1
    assert stock_in_place() and not accel.is_active()


def test_failed_self_test_keeps_stock(fresh_warning, monkeypatch):
    def broken(x, y0, decay, w_scale, threshold, spiking, out):
        out[...] = 0.0

    monkeypatch.setattr(kernels, "li_forward", broken)
    with pytest.warns(RuntimeWarning, match="forward self-test differs"):
        assert accel.install() is False
    assert stock_in_place()


def test_changed_signature_keeps_stock(fresh_warning, monkeypatch):
    def other(input, decay, state, threshold, w_scale, dtype=torch.int32, extra=None):
        return dynamics.STOCK_FWD(input, decay, state, threshold, w_scale, dtype)

    monkeypatch.setattr(LI, "_li_dynamics_fwd", other)
    monkeypatch.setattr(dynamics, "STOCK_FWD", other)
    with pytest.warns(RuntimeWarning, match="signature"):
        assert accel.install() is False
    assert LI._li_dynamics_fwd is other


def test_off_by_request_is_quiet_and_trains_stock(fresh_warning, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # off by request is not a failure: no warning
        assert accel.install(False) is False
        with accel.enabled(False) as active:
            assert active is False
    assert stock_in_place()
    from solution import train

    assert train(1, seed=0, out_dir=tmp_path, accelerator=accel.enabled(False)).accelerated is False
    assert train(1, seed=0, out_dir=tmp_path / "on", accelerator=accel.enabled()).accelerated is True
    assert stock_in_place()
