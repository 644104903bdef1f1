#!/usr/bin/env python3
"""Derive the HW8 pair (input_hw.bs1, output_hw.bs1) from the original Oxford pair.

The course's own 600-step files are not available, so the kit rebuilds them:
every spike time t (ms, ~[0, 1900)) is compressed to the integer millisecond
t_hw = floor(t * 600 / 1900) in [0, 600); a neuron keeps one event per bin
(the target is binned with 'OR' anyway), so the picture survives.

Integer arithmetic on the stored microseconds keeps the bytes identical on
every machine; events are written sorted by (time, neuron). Needs numpy only.

    python data/derive.py            # rewrite data/*_hw.bs1 and data/SHA256SUMS
    python data/derive.py --check    # exit 1 unless the files on disk are reproduced
    python data/derive.py --plot target.png
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
PAIRS = {"input.bs1": "input_hw.bs1", "output.bs1": "output_hw.bs1"}
T_ORIGINAL_MS = 1900
T_HW_MS = 600
CHECKSUMMED = ("input.bs1", "output.bs1", "input_hw.bs1", "output_hw.bs1")


def read_bs1(raw: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode slayer's 1D binary spikes: (neuron, polarity, time in microseconds)."""
    if len(raw) % 5:
        raise ValueError(f"a .bs1 file holds 5-byte events; got {len(raw)} bytes")
    b = np.frombuffer(raw, dtype=np.uint8).astype(np.int64)
    x = (b[0::5] << 8) | b[1::5]
    c = b[2::5] >> 7
    t_us = ((b[2::5] << 16) | (b[3::5] << 8) | b[4::5]) & 0x7FFFFF
    return x, c, t_us


def encode_bs1(x: np.ndarray, c: np.ndarray, t_us: np.ndarray) -> bytes:
    """Encode events in slayer's 1D binary format (inverse of read_bs1)."""
    out = np.zeros((len(x), 5), dtype=np.uint8)
    out[:, 0] = (x >> 8) & 0xFF
    out[:, 1] = x & 0xFF
    out[:, 2] = ((t_us >> 16) & 0x7F) | (c << 7)
    out[:, 3] = (t_us >> 8) & 0xFF
    out[:, 4] = t_us & 0xFF
    return out.tobytes()


def compress(raw: bytes) -> bytes:
    """Map an original ~1900 ms recording onto 600 one-millisecond bins."""
    x, c, t_us = read_bs1(raw)
    t_hw = (t_us * T_HW_MS) // (T_ORIGINAL_MS * 1000)  # floor(t_ms * 600 / 1900), exact
    if t_hw.max(initial=0) >= T_HW_MS:
        raise ValueError(f"spike at {t_us.max()} us lies beyond {T_ORIGINAL_MS} ms")
    events = np.unique(np.stack([t_hw, x, c], axis=1), axis=0)  # sorted by (t, x); one per bin
    _, first = np.unique(events[:, :2], axis=0, return_index=True)
    events = events[np.sort(first)]
    return encode_bs1(events[:, 1], events[:, 2], events[:, 0] * 1000)


def derived(folder: Path = HERE) -> dict[str, bytes]:
    return {dst: compress((folder / src).read_bytes()) for src, dst in PAIRS.items()}


def sha256sums(folder: Path = HERE, contents: dict[str, bytes] | None = None) -> str:
    contents = contents or {}
    lines = []
    for name in CHECKSUMMED:
        data = contents.get(name) or (folder / name).read_bytes()
        lines.append(f"{hashlib.sha256(data).hexdigest()}  {name}")
    return "\n".join(lines) + "\n"


def plot_target(path: Path, folder: Path = HERE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x, _, t_us = read_bs1((folder / "output_hw.bs1").read_bytes())
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.plot(t_us / 1000, x, ".", markersize=3)
    ax.set(xlabel="time [ms]", ylabel="neuron", title="output_hw.bs1 (HW8 target, 600 ms)")
    fig.savefig(path, dpi=100)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify instead of writing")
    parser.add_argument("--plot", type=Path, help="also draw the target raster to this PNG")
    args = parser.parse_args(argv)

    files = derived()
    sums = sha256sums(contents=files)
    if args.check:
        stale = [n for n, b in files.items() if (HERE / n).read_bytes() != b]
        if (HERE / "SHA256SUMS").read_text() != sums:
            stale.append("SHA256SUMS")
        if stale:
            print("not reproduced: " + ", ".join(stale), file=sys.stderr)
            return 1
        print("data/ reproduced byte for byte")
    else:
        for name, data in files.items():
            (HERE / name).write_bytes(data)
        (HERE / "SHA256SUMS").write_text(sums)
        print(sums, end="")
    if args.plot:
        plot_target(args.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
