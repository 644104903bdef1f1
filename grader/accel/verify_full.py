"""Full-length proof that the accelerator changes speed only: --no-accel vs accelerated training.

    python -m grader.accel.verify_full --epochs 2000 --out grader/accel/verify_full_2000.json

Trains the reference solution twice with the same seed, both in the kit's
numerical mode (its orders, ``grader/exact``): once on stock slayer's dynamics
and filter (``--no-accel``) and once accelerated, and compares every epoch's loss and every parameter of
the network that train() keeps (the best checkpoint, the one it exports) bit
for bit. Exit status 0 only when everything is identical.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import torch

from solution import numerics


def _bits(t: torch.Tensor) -> torch.Tensor:
    return t.detach().contiguous().reshape(-1).view(torch.uint8)


def _same_bits(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(_bits(a), _bits(b))


def verify(epochs: int, seed: int = 0, threads: Optional[int] = 1) -> dict:
    """Train stock and accelerated; the comparison and timings as a JSON-able dict."""
    from solution.training import train

    from grader.accel import filter, patch
    from grader.exact import mode

    if threads is not None:
        torch.set_num_threads(threads)
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for kind in ("stock", "accel"):
            start = time.perf_counter()
            result = train(epochs, seed=seed, out_dir=Path(tmp) / kind, accelerator=mode(kind == "accel"))
            runs[kind] = {
                "result": result,
                "total_s": time.perf_counter() - start,
                "loss_txt": (Path(tmp) / kind / "loss.txt").read_bytes(),
            }
    stock, accel = runs["stock"]["result"], runs["accel"]["result"]
    mismatched = [i for i, (a, b) in enumerate(zip(stock.losses, accel.losses)) if a != b]
    s_params, a_params = stock.network.state_dict(), accel.network.state_dict()
    param_mismatches = sorted(
        k for k in s_params.keys() | a_params.keys()
        if k not in s_params or k not in a_params or not _same_bits(s_params[k], a_params[k])
    )

    def summary(kind: str) -> dict:
        r = runs[kind]["result"]
        return {
            "wall_s": r.wall_s,
            "s_per_epoch": r.seconds_per_epoch,
            "total_s_incl_setup_and_export": runs[kind]["total_s"],
            "best_loss": r.best_loss,
            "final_loss": r.final_loss,
            "accelerated": r.accelerated,
        }

    losses_identical = len(stock.losses) == len(accel.losses) == epochs and not mismatched
    return {
        "epochs": epochs,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "stock": summary("stock"),
        "accel": summary("accel"),
        "ratio": stock.seconds_per_epoch / accel.seconds_per_epoch,
        "losses_identical": losses_identical,
        "loss_mismatches": len(mismatched),
        "first_loss_mismatch": mismatched[0] if mismatched else None,
        "loss_txt_identical": runs["stock"]["loss_txt"] == runs["accel"]["loss_txt"],
        "params_identical": not param_mismatches,
        "param_mismatches": param_mismatches,
        "param_tensors": len(s_params),
        "identical": losses_identical and not param_mismatches and accel.accelerated,
        "numba_compile_s": patch.compile_seconds,
        "filter_calls": dict(filter.stats),
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "lava-dl": importlib.metadata.version("lava-dl"),
            "numba": importlib.metadata.version("numba"),
        },
        "numerics": numerics.describe(),
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: leave as is)")
    parser.add_argument("--out", type=Path, help="write the JSON summary here")
    args = parser.parse_args(argv)
    report = verify(args.epochs, args.seed, args.threads or None)
    text = json.dumps(report, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    print(text)
    return 0 if report["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
