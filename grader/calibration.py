"""Thresholds come from the reference solution trained at the same budget and seed.

A calibration is computed once per (epochs, seed) and cached as JSON; the
kit ships them for its default budgets in grader/calibration/. Training is
deterministic on CPU in the kit's numerical mode, so the reference notebook
reproduces these numbers exactly and earns full marks, on any machine that
reproduces the shipped fingerprint (``grader/fingerprint.py``). A machine
that does not gets calibrations computed on it, cached under its own
fingerprint and marked ``source = "local"``: never a mix of the two.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Callable

SHIPPED = Path(__file__).resolve().parent / "calibration"
CACHE = Path(os.environ.get("S2S_CACHE", Path(__file__).resolve().parent.parent / ".cache")) / "calibration"


@dataclass(frozen=True)
class Calibration:
    epochs: int
    seed: int
    loss: float  # SpikeTime loss of the reference's exported network
    silent_loss: float  # SpikeTime loss of an all-silent output
    metrics: dict[str, float]
    train_wall_s: float
    seconds_per_epoch: float
    # The reference's exported weights (grader.artifacts digest): a faithful, seeded solution
    # exports exactly these, so sharing them is expected and never flagged as copying.
    weights_sha256: str | None = None
    numerics: dict = field(default_factory=dict)  # solution.numerics.describe() of the training
    fingerprint: str = ""  # the machine's fingerprint digest when it was computed
    source: str = "local"  # "shipped" (grader/calibration/) or "local" (computed on this machine)


def _name(epochs: int, seed: int) -> str:
    return f"epochs-{epochs}-seed-{seed}.json"


def _read(path: Path, source: str) -> Calibration | None:
    if not path.is_file():
        return None
    return replace(Calibration(**json.loads(path.read_text())), source=source)


def local_folder() -> Path:
    """Where this machine caches what it computes: keyed by its fingerprint, so only its twins share it."""
    from grader import fingerprint

    return CACHE / fingerprint.check().local.digest[:16]


def load(epochs: int, seed: int) -> Calibration | None:
    """The calibration a batch on this machine uses, if one exists (runs the fingerprint check once)."""
    shipped = _read(SHIPPED / _name(epochs, seed), "shipped")
    if shipped is not None:
        from grader import fingerprint

        if fingerprint.check().matches:
            return shipped
    return _read(local_folder() / _name(epochs, seed), "local")


@dataclass
class ReferenceRun:
    """The reference trained and measured exactly as a submission is measured."""

    result: Any  # solution.TrainResult
    measurement: Any  # grader.measure.Measurement
    weights_sha256: str | None


def run_reference(epochs: int, seed: int, accelerate: bool = True,
                  progress: Callable[[int, float], None] | None = None) -> ReferenceRun:
    """Train the reference at (epochs, seed) and measure its export: the one code path behind
    the calibrations and the recorded reference run (grader/reference.py)."""
    from grader.exact import mode
    from grader.measure import measure, official_spikes
    from solution import train

    official = official_spikes()
    with tempfile.TemporaryDirectory(prefix="s2s-reference-") as tmp:
        result = train(epochs, seed=seed, out_dir=Path(tmp) / "Trained",
                       accelerator=mode(accelerate), progress=progress)
        m = measure(Path(tmp) / "Trained" / "network.net", official)
        digest = weights_digest(Path(tmp))
    return ReferenceRun(result, m, digest)


def compute(epochs: int, seed: int, accelerate: bool = True) -> Calibration:
    """Train the reference solution and measure it exactly as a submission is measured."""
    from grader import fingerprint
    from solution import numerics

    run = run_reference(epochs, seed, accelerate)
    m = run.measurement
    return Calibration(
        epochs=epochs,
        seed=seed,
        loss=m.loss,
        silent_loss=m.silent_loss,
        metrics=m.metrics,
        train_wall_s=round(run.result.wall_s, 2),
        seconds_per_epoch=round(run.result.seconds_per_epoch, 4),
        weights_sha256=run.weights_sha256,
        numerics=numerics.describe(),
        fingerprint=fingerprint.check().local.digest,
    )


FIGURES = ("loss", "silent_loss", "metrics", "weights_sha256")  # what a reproduction must repeat


def compare_with_shipped(cal: Calibration) -> tuple[str, bool]:
    """(a line saying how `cal` compares with the shipped calibration of its budget, identical?)"""
    shipped = _read(SHIPPED / _name(cal.epochs, cal.seed), "shipped")
    if shipped is None:
        return "the kit ships no calibration for this budget", False
    differ = [f for f in FIGURES if getattr(cal, f) != getattr(shipped, f)]
    if not differ:
        return "identical to the shipped calibration, bit for bit", True
    return (f"DIFFERS from the shipped calibration in {', '.join(differ)} "
            f"(loss {cal.loss!r} here, {shipped.loss!r} shipped)"), False


def describe_source(cal: Calibration) -> str:
    """One sentence: which calibration grades, and why that one."""
    from grader import fingerprint

    if cal.source == "shipped":
        return f"calibration at {cal.epochs} epochs: shipped; " + fingerprint.check().sentence
    has_shipped = (SHIPPED / _name(cal.epochs, cal.seed)).is_file()
    if has_shipped:
        return f"calibration at {cal.epochs} epochs: local; " + fingerprint.check().sentence
    return (f"calibration at {cal.epochs} epochs: local (the kit ships none for this budget; "
            f"computed on this machine in {cal.numerics.get('mode', '?')})")


def weights_digest(workdir: Path) -> str | None:
    """The digest the grader gives workdir/Trained/network.net's weights."""
    from grader.artifacts import check_hdf5
    from grader.config import Limits

    return check_hdf5(workdir, Limits()).weights_sha256


@lru_cache(maxsize=4)
def untrained_weights_sha256(seed: int) -> str | None:
    """Digest of the network a seeded notebook builds before any training (an export-too-early)."""
    import torch

    from grader.measure import official_spikes
    from solution import Network, seed_everything

    seed_everything(seed)
    net = Network()
    with torch.no_grad():
        net(torch.from_numpy(official_spikes()["input"]).unsqueeze(0))
    with tempfile.TemporaryDirectory(prefix="s2s-untrained-") as tmp:
        (Path(tmp) / "Trained").mkdir()
        net.export_hdf5(str(Path(tmp) / "Trained" / "network.net"))
        return weights_digest(Path(tmp))


def weights_origin(digest: str | None, cal: Calibration) -> str | None:
    """"reference" or "untrained" when an export holds exactly those weights (seeded CPU training repeats them)."""
    if digest is None:
        return None
    if digest == cal.weights_sha256:
        return "reference"
    if digest == untrained_weights_sha256(cal.seed):
        return "untrained"
    return None


def get(epochs: int, seed: int, accelerate: bool = True) -> Calibration:
    """The calibration for (epochs, seed) on this machine, computed and cached on first use."""
    found = load(epochs, seed)
    if found is not None:
        return found
    cal = compute(epochs, seed, accelerate)
    save(cal, local_folder())
    return replace(cal, source="local")


def save(cal: Calibration, folder: Path) -> Path:
    """Write `cal` into `folder` (the shipped one: SHIPPED; the machine's cache: local_folder())."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _name(cal.epochs, cal.seed)
    tmp = path.with_suffix(".tmp")
    data = asdict(cal)
    data.pop("source")  # where a file lies says where it comes from
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
