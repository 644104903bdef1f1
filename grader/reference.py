"""The full reference run: `python -m grader.reference [--epochs 2000] [--no-accel]` (`nox -s reference`).

Trains the reference solution at the course budget through the very code path
of the calibrations (``calibration.run_reference``), in the kit's numerical
mode, and records the figures in solution/reference_run.json (quoted in the
docs/reproducibility.md; ``tests/test_full_run.py`` reproduces them bit for bit).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

RECORD = Path(__file__).resolve().parent.parent / "solution" / "reference_run.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.reference")
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-accel", action="store_true", help="stock slayer kernels")
    parser.add_argument("--out", type=Path, default=RECORD)
    args = parser.parse_args(argv)

    import torch

    from grader import fingerprint
    from grader.calibration import run_reference
    from solution import numerics

    torch.set_num_threads(1)
    step = max(1, args.epochs // 10)

    def progress(epoch: int, loss: float) -> None:
        if (epoch + 1) % step == 0:
            print(f"epoch {epoch + 1:5d}  loss {loss:12.3f}", flush=True)

    run = run_reference(args.epochs, args.seed, accelerate=not args.no_accel, progress=progress)
    result, m = run.result, run.measurement
    record = {
        "epochs": args.epochs,
        "seed": args.seed,
        "accelerated": result.accelerated,
        "best_training_loss": result.best_loss,
        "best_epoch": result.losses.index(result.best_loss),
        "final_training_loss": result.final_loss,
        "exported_network_loss": m.loss,
        "exported_weights_sha256": run.weights_sha256,
        "losses_sha256": fingerprint.digest_of({}, result.losses),
        "silent_output_loss": m.silent_loss,
        "metrics": m.metrics,
        "seconds_per_epoch": round(result.seconds_per_epoch, 4),
        "wall_s": round(result.wall_s, 1),
        "numerics": numerics.describe(),
        "torch": torch.__version__,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
