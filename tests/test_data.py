"""The HW8 data: checksums, provenance, shapes, and that the script reproduces the bytes."""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parent.parent / "data"
SHARED = DATA.parent.parent / "shared" / "data" / "oxford-original"


def _derive():
    spec = importlib.util.spec_from_file_location("derive", DATA / "derive.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sha256sums_match_files() -> None:
    lines = (DATA / "SHA256SUMS").read_text().splitlines()
    assert len(lines) == 4
    for line in lines:
        digest, name = line.split()
        assert hashlib.sha256((DATA / name).read_bytes()).hexdigest() == digest, name


@pytest.mark.skipif(not SHARED.exists(), reason="no ../shared/data/oxford-original beside this checkout")
def test_originals_are_the_published_pair() -> None:
    for name in ("input.bs1", "output.bs1"):
        assert (DATA / name).read_bytes() == (SHARED / name).read_bytes()


def test_script_reproduces_the_bytes() -> None:
    derive = _derive()
    for name, data in derive.derived().items():
        assert data == (DATA / name).read_bytes(), name
    assert derive.main(["--check"]) == 0


def test_hw_files_are_integer_ms_in_600_steps() -> None:
    derive = _derive()
    for name, expected_events in (("input_hw.bs1", 1871), ("output_hw.bs1", 10301)):
        x, c, t_us = derive.read_bs1((DATA / name).read_bytes())
        assert len(x) == expected_events
        assert x.min() >= 0 and x.max() == 199
        assert np.all(t_us % 1000 == 0)
        assert t_us.min() >= 0 and t_us.max() < 600_000
        assert set(c.tolist()) == {1}
        assert len(set(zip(x.tolist(), t_us.tolist()))) == len(x)  # one event per neuron and bin


def test_slayer_reads_them_into_200_by_600() -> None:
    from solution import load_spikes

    inp, tgt = load_spikes(DATA / "input_hw.bs1"), load_spikes(DATA / "output_hw.bs1")
    assert tuple(inp.shape) == (200, 600) and tuple(tgt.shape) == (200, 600)
    assert int(inp.sum()) == 1871 and int(tgt.sum()) == 10301
    assert set(np.unique(tgt.numpy()).tolist()) == {0.0, 1.0}


def test_compression_keeps_each_spike_in_its_time_bin() -> None:
    derive = _derive()
    x0, _, t0 = derive.read_bs1((DATA / "output.bs1").read_bytes())
    x1, _, t1 = derive.read_bs1((DATA / "output_hw.bs1").read_bytes())
    expected = set(zip(x0.tolist(), ((t0 * 600) // 1_900_000).tolist()))
    assert set(zip(x1.tolist(), (t1 // 1000).tolist())) == expected


def test_bad_file_is_refused_with_a_reason() -> None:
    with pytest.raises(ValueError, match="5-byte events"):
        _derive().read_bs1(b"\x00" * 7)
