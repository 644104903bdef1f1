"""Independent fixed-point simulator of an exported network (numpy + h5py: no torch, no slayer).

Why: a second implementation, written from the equations rather than from slayer's
code path, cross-checks the rebuilt network (grader.rebuild) and documents what the
exported integers mean. It matches slayer 0.6.0's CPU forward pass bit for bit.
The file reader (`read_layers`) lives here so that this module needs no torch;
grader.rebuild builds its slayer blocks from the same parsed layers.

Per dense CUBA block, with the file's integers W (= weight x 64, even, in
[-256, 254]), iDecay, vDecay, vThMant, input spikes s[t] in {0, 1}, states u, v
starting at 0 (int64):

    u[t] = rstz(u[t-1] * (4096 - iDecay), 12) + 64 * (W @ s[t])
    v[t] = rstz(v[t-1] * (4096 - vDecay), 12) + f32(u[t])
    spike[t] = v[t] > 64 * vThMant          (strict: slayer tests v >= 64*vThMant + 0.01)
    v[t] = 0 where spike[t]                 (reset after the spike test)
    out[t] = spike[t-1], out[0] = 0         (delay_shift: one step of delay per block)

rstz(x, 12) shifts right by 12 bits rounding toward zero: sign(x) * (|x| >> 12).
The 64 in `64 * W` and `64 * vThMant`: slayer keeps states at s_scale = 64 * w_scale
= 4096 per unit, weights and vThMant at w_scale = 64; the integer equations do not
depend on slayer's `scale` at all. f32 rounds to the nearest float32: slayer hands the
current to the voltage integrator as a float32 (u / 4096), exact for |u| < 2**24
(always, unless a small iDecay lets u pile up). Spikes are never graded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import h5py
import numpy as np

STATE_BITS = 12
STATE_ONE = 1 << STATE_BITS  # 4096: states per unit; decays are stored x4096
WEIGHT_TO_STATE = 64  # s_scale / w_scale
THRESHOLD_TO_STATE = 64
W_MIN, W_MAX = -256, 254  # slayer's quantize_8bit range (descaled), step 2


@dataclass(frozen=True)
class LayerSpec:
    """One dense CUBA layer as stored in the file (integers as the hardware sees them)."""

    weight: np.ndarray  # (out, in), stored = w * 64
    i_decay: int
    v_decay: int
    v_th_mant: int

    @property
    def in_features(self) -> int:
        return int(self.weight.shape[1])

    @property
    def out_features(self) -> int:
        return int(self.weight.shape[0])


def _scalar(group: h5py.Group, key: str, where: str):
    if key not in group or not isinstance(group[key], h5py.Dataset):
        raise ValueError(f"{where}: missing '{key}'")
    value = np.asarray(group[key][()])
    if value.size != 1:
        raise ValueError(f"{where}/{key}: expected a scalar, found shape {value.shape}")
    value = value.reshape(())[()]
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


def _integer(group: h5py.Group, key: str, where: str, lo: int, hi: int) -> int:
    value = _scalar(group, key, where)
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if isinstance(value, str) or not (np.isfinite(number) and number == int(number) and lo <= number <= hi):
        raise ValueError(f"{where}/{key}: expected an integer in [{lo}, {hi}], found {value!r}")
    return int(number)


def _layer(g: h5py.Group, where: str) -> LayerSpec:
    kind = _scalar(g, "type", where)
    if kind != "dense":
        raise ValueError(f"{where}: unsupported layer type {kind!r} (only 'dense')")
    for extra in ("delay", "bias"):
        if extra in g:
            raise ValueError(f"{where}: '{extra}' is not supported (plain cuba.Dense only)")
    if "neuron" not in g:
        raise ValueError(f"{where}: missing 'neuron'")
    n, nw = g["neuron"], f"{where}/neuron"
    if (ntype := _scalar(n, "type", nw)) != "CUBA":
        raise ValueError(f"{nw}: unknown neuron type {ntype!r} (only 'CUBA')")
    if bool(_scalar(n, "gradedSpike", nw)):
        raise ValueError(f"{nw}: graded spikes are not supported")
    if _integer(n, "refDelay", nw, 0, 1 << 30) != 1:
        raise ValueError(f"{nw}: slayer's CUBA neuron has refDelay 1")
    if "weight" not in g or not isinstance(g["weight"], h5py.Dataset):
        raise ValueError(f"{where}: missing 'weight' dataset (complex synapses are not supported)")
    weight = np.asarray(g["weight"][()], dtype=np.float64)
    n_in = _integer(g, "inFeatures", where, 1, 1 << 20)
    n_out = _integer(g, "outFeatures", where, 1, 1 << 20)
    if weight.shape != (n_out, n_in):
        raise ValueError(f"{where}: weight shape {weight.shape} != (outFeatures, inFeatures) = ({n_out}, {n_in})")
    if "shape" in g and tuple(np.asarray(g["shape"][()]).ravel()) != (n_out,):
        raise ValueError(f"{where}: neuron shape {g['shape'][()]} != ({n_out},)")
    on_grid = np.isfinite(weight) & (weight % 2 == 0) & (weight >= W_MIN) & (weight <= W_MAX)
    if not on_grid.all():
        raise ValueError(
            f"{where}: {int((~on_grid).sum())} weights are not slayer 8-bit values "
            f"(even integers in [{W_MIN}, {W_MAX}]), e.g. {weight[~on_grid].ravel()[0]!r}"
        )
    return LayerSpec(
        weight=weight,
        i_decay=_integer(n, "iDecay", nw, 0, STATE_ONE),
        v_decay=_integer(n, "vDecay", nw, 0, STATE_ONE),
        v_th_mant=_integer(n, "vThMant", nw, 0, 1 << 17),
    )


def read_layers(path: str | Path) -> list[LayerSpec]:
    """Read and check an exported network's layers; ValueError if it cannot be rebuilt exactly.

    Accepted is what this homework's network can contain: dense layers of non-graded
    CUBA neurons, no axonal delay, no normalization (bias), weights on slayer's grid
    (slayer would silently re-quantize others, so the file would not say what ran).
    """
    with h5py.File(path, "r") as h:
        if "layer" not in h or not isinstance(h["layer"], h5py.Group):
            raise ValueError("no 'layer' group: not a slayer network export")
        names = list(h["layer"].keys())
        if sorted(names) != sorted(str(i) for i in range(len(names))) or not names:
            raise ValueError(f"layers must be named 0..n-1, found {names}")
        layers = [_layer(h["layer"][str(i)], f"layer/{i}") for i in range(len(names))]
    for i, (a, b) in enumerate(zip(layers[:-1], layers[1:])):
        if a.out_features != b.in_features:
            raise ValueError(f"layer/{i} has {a.out_features} outputs but layer/{i + 1} takes {b.in_features} inputs")
    return layers


def rstz(x: np.ndarray, bits: int = STATE_BITS) -> np.ndarray:
    """Arithmetic right shift rounding toward zero (slayer's right_shift_to_zero)."""
    return np.sign(x) * (np.abs(x) >> bits)


def _f32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32).astype(np.int64)


def _block(layer: LayerSpec, spikes: np.ndarray) -> np.ndarray:
    weight = np.asarray(layer.weight, dtype=np.float64)
    if not np.array_equal(weight, np.round(weight)):
        raise ValueError("weights must be integers (the file's fixed-point mantissas)")
    # Integer sums far below 2**53 are exact in float64, and BLAS makes this fast.
    drive = WEIGHT_TO_STATE * np.rint(weight @ spikes.astype(np.float64)).astype(np.int64)
    i_keep = np.int64(STATE_ONE - layer.i_decay)
    v_keep = np.int64(STATE_ONE - layer.v_decay)
    threshold = np.int64(THRESHOLD_TO_STATE * layer.v_th_mant)
    n_out, steps = drive.shape
    u = np.zeros(n_out, dtype=np.int64)
    v = np.zeros(n_out, dtype=np.int64)
    out = np.zeros((n_out, steps), dtype=bool)
    for t in range(steps - 1):  # spikes of the last step fall off the end after the delay
        u = rstz(u * i_keep) + drive[:, t]
        v = rstz(v * v_keep) + _f32(u)
        fired = v > threshold
        v[fired] = 0
        out[:, t + 1] = fired
    return out


def simulate(layers: Sequence[LayerSpec], input_spikes: np.ndarray) -> np.ndarray:
    """Output raster (float32 0/1, (neurons, T)) of the layer chain on a (neurons, T) 0/1 input."""
    spikes = np.asarray(input_spikes)
    if spikes.ndim == 3 and spikes.shape[0] == 1:
        spikes = spikes[0]
    if spikes.ndim != 2:
        raise ValueError(f"expected a (neurons, T) raster, found shape {spikes.shape}")
    if not np.isin(spikes, (0, 1)).all():
        raise ValueError("input spikes must be 0/1")
    if not layers:
        raise ValueError("no layers")
    for i, layer in enumerate(layers):
        if spikes.shape[0] != layer.in_features:
            raise ValueError(f"layer {i} takes {layer.in_features} inputs, gets {spikes.shape[0]}")
        spikes = _block(layer, spikes)
    return spikes.astype(np.float32)


def simulate_file(path: str | Path, input_spikes: np.ndarray) -> np.ndarray:
    """simulate() on the layers read (and checked) from an exported HDF5."""
    return simulate(read_layers(path), input_spikes)
