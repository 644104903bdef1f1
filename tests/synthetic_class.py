"""A synthetic graded class for grader.similarity: OUT/<id>/{results.json, executed.ipynb, network.net, output.npz}.

No notebook runs: each student is the solved notebook plus a cell of their own
(random statements), weights that start from one shared "seed" matrix and move
their own way, and an output that is the target with their own mistakes. Every
`copy_every`-th student is a disguised copy of the one before (names changed,
cells reversed, weights and output nudged): `copies` lists those pairs.
Used by tests/test_similarity.py and by the README's timing (python tests/synthetic_class.py N).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from grader import report
from grader.results import CheckResult, GradeResult

SOLUTION = Path(__file__).resolve().parent.parent / "solution" / "train.ipynb"
NAMES = ["acc", "buf", "cnt", "delta", "eps", "frac", "gain", "hist", "idx", "jit", "knot", "lag", "mass", "norm"]
METHODS = ["sum", "mean", "cumsum", "reshape", "transpose", "argmax", "argsort", "clip", "flatten", "detach",
           "numpy", "squeeze", "unsqueeze", "float", "nonzero", "max", "min", "std", "var", "abs", "round", "any",
           "all", "cpu", "item", "tolist", "view", "permute", "exp", "log", "sqrt", "sort", "roll", "diff", "prod",
           "copy", "astype", "fill", "repeat", "ravel"]
MODULES = ["np", "torch", "plt", "slayer.io", "slayer.utils", "h5py"]


def _expr(rng: np.random.Generator, depth: int = 0) -> str:
    """A random expression built from kept tokens (modules, attributes), so that normalised code differs."""
    name = str(rng.choice(NAMES))
    chain = "".join(f".{m}()" for m in rng.choice(METHODS, int(rng.integers(1, 4)), replace=False))
    if depth < 2 and rng.random() < 0.5:
        return f"{rng.choice(MODULES)}.{rng.choice(METHODS)}({_expr(rng, depth + 1)}, {_expr(rng, depth + 1)})"
    return name + chain


def _own_cell(rng: np.random.Generator, lines: int = 10) -> str:
    """Random, distinct statements: what a student writes beyond the handout and the reference."""
    out = []
    for _ in range(lines):
        a, b = rng.choice(NAMES, 2, replace=False)
        shape = rng.integers(3)
        if shape == 0:
            out.append(f"{a} = {_expr(rng)}")
        elif shape == 1:
            out.append(f"for {a} in {_expr(rng)}:\n    {b}.append({_expr(rng)})")
        else:
            out.append(f"if {_expr(rng)}:\n    {a} = [{_expr(rng)} for x in {b}]")
    return "\n".join(out)


def _rename(source: str, rng: np.random.Generator) -> str:
    import re

    mapping = {n: f"{n}_{int(rng.integers(100, 999))}" for n in NAMES}
    return re.sub(r"\b(" + "|".join(NAMES) + r")\b", lambda m: mapping[m.group(1)], source)


def write_class(out: Path, n: int, seed: int = 0, copy_every: int = 10) -> list[tuple[str, str]]:
    """Write n graded submissions into `out`; returns the (original, copy) pairs."""
    import h5py

    rng = np.random.default_rng(seed)
    solution = json.loads(SOLUTION.read_text())
    base = [rng.standard_normal((256, 200)).astype(np.float32), rng.standard_normal((200, 256)).astype(np.float32)]
    target = rng.random((200, 600)) < 0.02
    copies: list[tuple[str, str]] = []
    previous = None
    for k in range(n):
        sid = f"s{k:03d}"
        copy = previous is not None and k % copy_every == copy_every - 1
        if copy:
            own_src = _rename(previous["own"], rng)
            weights = [w + 0.01 * rng.standard_normal(w.shape).astype(np.float32) for w in previous["weights"]]
            output = previous["output"].copy()
            flip = rng.random(output.shape) < 0.0005
            output ^= flip
            cells = list(reversed(solution["cells"])) + [{"cell_type": "code", "metadata": {}, "source": own_src,
                                                          "outputs": [], "execution_count": None}]
            copies.append((previous["id"], sid))
        else:
            own_src = _own_cell(rng)
            weights = [w + 0.5 * rng.standard_normal(w.shape).astype(np.float32) for w in base]
            output = target.copy()
            output[rng.random(output.shape) < 0.3 * target] = False  # missed target spikes
            output |= rng.random(output.shape) < 0.01  # their own extras
            cells = solution["cells"] + [{"cell_type": "code", "metadata": {}, "source": own_src, "outputs": [],
                                          "execution_count": None}]
        folder = out / sid
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "executed.ipynb").write_text(json.dumps({**solution, "cells": cells}))
        with h5py.File(folder / "network.net", "w") as h:
            for i, w in enumerate(weights):
                h.create_dataset(f"layer/{i}/weight", data=w)
        report.write_output_raster(output, folder / report.OUTPUT_RASTER)
        from grader.metrics import spike_f1

        f1 = spike_f1(output, target, 2)[2]
        result = GradeResult(sid, f"{k:064x}", [CheckResult("execution", 10, 10, "ok")], epochs=200,
                             measurements={"weights_sha256": f"{k:064x}", "f1_2ms": f1})
        report.write_results(result, folder / report.RESULTS)
        previous = {"id": sid, "own": own_src, "weights": weights, "output": output}
    return copies


if __name__ == "__main__":  # python tests/synthetic_class.py N [N...]: the similarity report's time per class size
    import tempfile

    from grader.config import load_config
    from grader.similarity import write_similarity

    th = load_config().similarity
    for size in map(int, sys.argv[1:] or ["200"]):
        with tempfile.TemporaryDirectory() as tmp:
            pairs = write_class(Path(tmp), size)
            start = time.perf_counter()
            found = write_similarity(Path(tmp), th)
            wall = time.perf_counter() - start
            hit = {(p.a, p.b) for p in found.findings}
            print(f"{size} submissions: {wall:.2f} s (read {found.seconds['read']:.2f} s, compare "
                  f"{found.seconds['compare']:.2f} s), {len(found.findings)} findings, "
                  f"{sum(p in hit for p in pairs)}/{len(pairs)} planted copies found, "
                  f"{found.candidates} exact output F1s")
