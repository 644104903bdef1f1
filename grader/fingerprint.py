"""Does this machine reproduce the shipped calibrations? A few seconds of the reference run say.

The shipped calibrations were trained in the kit's numerical mode
(``solution/numerics.py``). A machine that runs that mode exactly (any x86-64
CPU with AVX2 and the pinned MKL) trains the reference to the same bits; one
that does not (another BLAS, ARM, a CPU without AVX2, the mode switched off)
drifts. Rather than trust the CPU's name, the grader trains the reference for
``EPOCHS`` epochs and compares the digest of its weights and losses with the
one shipped beside the calibrations: a bit that differs anywhere changes it.
"""

from __future__ import annotations

import hashlib
import json
import struct
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from solution import numerics

if TYPE_CHECKING:  # grader.trace imports torch: loaded where a fingerprint is computed
    from grader.trace import RunTrace

SHIPPED = Path(__file__).resolve().parent / "calibration" / "fingerprint.json"
EPOCHS = 100  # enough for every summation path of an epoch to touch the weights; ~3 s accelerated
SEED = 0


@dataclass(frozen=True)
class Fingerprint:
    epochs: int
    seed: int
    digest: str  # sha256 of the trained weights' bits and every epoch's loss
    numerics: dict[str, Any]  # solution.numerics.describe() where it was made
    seconds: float = 0.0


# What the fingerprint cannot promise: it proves the kit's orders, which cover slayer's dense CUBA blocks.
UNKNOWN_LAYERS = ("a notebook whose layers the kit's orders do not cover trains in the libraries' orders, "
                  "which it says in its output: graded the same way, its own numbers may differ on another CPU")


@dataclass(frozen=True)
class Verdict:
    matches: bool
    local: Fingerprint
    shipped: Fingerprint | None
    difference: str | None = None  # where this machine's run first parts from the shipped trace
    trace: RunTrace | None = field(default=None, repr=False)  # this machine's (calibrate --ship ships it)

    @property
    def sentence(self) -> str:
        """One sentence for the instructor: which calibrations this machine grades against, and why."""
        if self.matches:
            return (f"this machine reproduces the shipped reference run bit for bit "
                    f"({numerics.label(self.local.numerics)}): shipped calibrations in use "
                    f"({UNKNOWN_LAYERS})")
        if self.shipped is None:
            return "no shipped fingerprint: calibrations are computed on this machine (local)"
        where = f"; {self.difference}" if self.difference else ""
        return (f"this machine does not reproduce the shipped reference run "
                f"({numerics.label(self.local.numerics)}, CPU {self.local.numerics['cpu']!r}; "
                f"shipped from {numerics.label(self.shipped.numerics)}, CPU {self.shipped.numerics['cpu']!r}): "
                f"every calibration of this batch is computed here and recorded as local{where}")


def digest_of(state: dict[str, Any], losses: list[float]) -> str:
    """sha256 over the parameters' exact bits (sorted by name) and the losses as float64."""
    h = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name].detach().cpu().contiguous()
        h.update(name.encode() + b"\0" + str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        h.update(tensor.numpy().tobytes())
    h.update(b"".join(struct.pack("<d", float(x)) for x in losses))
    return h.hexdigest()


def compute_traced(epochs: int = EPOCHS, seed: int = SEED) -> tuple[Fingerprint, RunTrace]:
    """Train the reference for `epochs` in this process in the kit's mode; its digest and its trace."""
    from grader import trace
    from grader.exact import mode
    from solution import train

    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="s2s-fingerprint-") as tmp:
        # the kit's orders, accelerated (the accelerator changes speed only: tests/test_accel.py)
        result, run_trace = trace.record(lambda progress: train(
            epochs, seed=seed, out_dir=Path(tmp) / "Trained", accelerator=mode(), progress=progress))
    state = result.network.state_dict()
    return (Fingerprint(epochs, seed, digest_of(state, result.losses), numerics.describe(),
                        round(time.perf_counter() - start, 2)), run_trace)


def compute(epochs: int = EPOCHS, seed: int = SEED) -> Fingerprint:
    """Train the reference for `epochs` in this process in the kit's mode and digest it."""
    return compute_traced(epochs, seed)[0]


def shipped() -> Fingerprint | None:
    try:
        return Fingerprint(**json.loads(SHIPPED.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def save(fp: Fingerprint, path: Path = SHIPPED) -> Path:
    path.write_text(json.dumps(asdict(fp), indent=2, sort_keys=True) + "\n")
    return path


@lru_cache(maxsize=1)
def check() -> Verdict:
    """This machine's fingerprint against the shipped one (computed once per process)."""
    from grader import trace

    ref = shipped()
    local, run_trace = compute_traced(ref.epochs if ref else EPOCHS, ref.seed if ref else SEED)
    matches = ref is not None and local.digest == ref.digest
    shipped_trace = None if matches else trace.shipped()
    difference = trace.first_difference(run_trace, shipped_trace) if shipped_trace else None
    return Verdict(matches=matches, local=local, shipped=ref, difference=difference, trace=run_trace)


__all__ = ["EPOCHS", "Fingerprint", "Verdict", "check", "compute", "compute_traced", "digest_of", "save", "shipped"]
