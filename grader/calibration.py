"""Thresholds come from the reference solution trained at the same budget and seed.

A calibration is computed once per (epochs, seed) and cached as JSON; the
kit ships them for its default budgets in grader/calibration/. Training is
deterministic on CPU, so the reference notebook reproduces these numbers
exactly and earns full marks.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

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


def _name(epochs: int, seed: int) -> str:
    return f"epochs-{epochs}-seed-{seed}.json"


def load(epochs: int, seed: int) -> Calibration | None:
    for folder in (SHIPPED, CACHE):
        path = folder / _name(epochs, seed)
        if path.is_file():
            return Calibration(**json.loads(path.read_text()))
    return None


def compute(epochs: int, seed: int, accelerate: bool = True) -> Calibration:
    """Train the reference solution and measure it exactly as a submission is measured."""
    from grader.measure import measure, official_spikes
    from solution import train

    official = official_spikes()
    with tempfile.TemporaryDirectory(prefix="s2s-calibrate-") as tmp:
        result = train(epochs, seed=seed, out_dir=Path(tmp) / "Trained", accel=accelerate)
        m = measure(Path(tmp) / "Trained" / "network.net", official)
        digest = weights_digest(Path(tmp))
    return Calibration(
        epochs=epochs,
        seed=seed,
        loss=m["loss"],
        silent_loss=m["silent_loss"],
        metrics=m["metrics"],
        train_wall_s=round(result.wall_s, 2),
        seconds_per_epoch=round(result.seconds_per_epoch, 4),
        weights_sha256=digest,
    )


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


def get(epochs: int, seed: int, accelerate: bool = True) -> Calibration:
    """The cached calibration, computed and cached on first use."""
    found = load(epochs, seed)
    if found is not None:
        return found
    cal = compute(epochs, seed, accelerate)
    save(cal, CACHE)
    return cal


def save(cal: Calibration, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / _name(cal.epochs, cal.seed)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(cal), indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)
    return path
