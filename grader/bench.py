"""`nox -s bench` / `python -m grader.bench`: the kit's speed figures, from one run on this machine.

    training      seconds per epoch of the reference solution, stock and accelerated
                  (grader.accel.bench when the accelerator is there), their ratio, and
                  where an epoch's time goes (neuron dynamics, loss filter, the rest)
    numerics      the same in a child process with S2S_NUMERICS=native (the libraries'
                  own ISA choice): what the kit's pinned numerical mode costs
    overhead      the grader's time per submission beyond the notebook's own cells
                  (GradeResult.grader_overhead_s), also as a share of a full-budget run
    evaluation    grader.measure.measure on one exported HDF5
    throughput    submissions per minute with 1 and with 2 local workers, and their ratio
    --full        the throughput at the course budget: 4 copies with 1 and with 2 workers,
                  each notebook's cells beside a second grading against alone, and the
                  machine's own ceiling (two plain trainings at once against one)
    --full-stock  one reference graded at the course budget, with and without the
                  accelerator (wall times; about 12 minutes stock on one core)

Every figure is a median over repeats where it can be; the targets are printed next
to them. The figures describe this machine at this moment: on a shared or busy machine
they move from run to run (the load average is printed with them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

from solution import numerics  # grader/__init__ has pinned the mode: this process trains in it

TARGETS = {
    "overhead_percent": 5.0,  # grader overhead, % of a full-budget run's cell time (at most)
    "worker_scaling": 1.9,  # 2 workers vs 1 on 2 cores (at least)
    "evaluation_s": 1.0,  # one HDF5 evaluated (at most)
    "accel_ratio": 15.0,  # stock slayer / accelerated seconds per epoch (at least), in the pinned mode
    "accel_epoch_s": 0.017,  # accelerated seconds per epoch (at most), in the pinned mode
}


def _machine() -> dict[str, Any]:
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:
        cores = os.cpu_count()
    return {
        "cores_available": cores,
        "cpu_count": os.cpu_count(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu": numerics.cpu_model(),
        "numerics": numerics.label(),
    }


def _write_reference(folder: Path, names: list[str]) -> Path:
    from grader.samples import make_sample

    nb = make_sample("reference")
    for name in names:
        (folder / name).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, folder / name / "train.ipynb")
    return folder


# --- training -------------------------------------------------------------------------------------


def _stock_only(epochs: int, repeats: int, seed: int) -> dict[str, Any]:
    """Seconds per epoch of solution.train without the accelerator (epoch 0's one-offs left out)."""
    from solution.training import train

    per_epoch: list[float] = []
    for _ in range(repeats):
        marks = [time.perf_counter()]
        with tempfile.TemporaryDirectory(prefix="s2s-bench-") as tmp:
            train(epochs, seed=seed, out_dir=Path(tmp) / "Trained", accelerator=None,
                  progress=lambda *_: marks.append(time.perf_counter()))
        steps = [b - a for a, b in zip(marks, marks[1:])]
        per_epoch += steps[1:] if len(steps) > 1 else steps
    return {"source": "solution.train", "epochs": epochs, "repeats": repeats,
            "stock_s_per_epoch": statistics.median(per_epoch), "accel_s_per_epoch": None, "ratio": None}


def bench_training(epochs: int, repeats: int, seed: int, accel: bool = True) -> dict[str, Any]:
    """Stock and (when grader.accel is there) accelerated seconds per epoch, and their ratio."""
    if accel:
        try:
            from grader.accel.bench import bench_accel
        except ImportError as exc:
            note = f"grader.accel.bench unavailable ({exc}): stock only"
        else:
            try:
                found = bench_accel(epochs, repeats)
                return {"source": "grader.accel.bench", **found}
            except Exception as exc:  # an accelerator that fails must not hide the other figures
                note = f"grader.accel.bench failed ({type(exc).__name__}: {exc}): stock only"
    else:
        note = "accelerator not measured (--no-accel)"
    figures = _stock_only(epochs, repeats, seed)
    figures["note"] = note
    return figures


def bench_native(epochs: int, repeats: int) -> dict[str, Any]:
    """grader.accel.bench in a child process whose libraries pick their own ISA (S2S_NUMERICS=native)."""
    env = {k: v for k, v in os.environ.items() if k not in numerics.PINNED}
    env.update({numerics.SWITCH: numerics.NATIVE, **numerics.ONE_THREAD})
    code = ("import json, sys; from grader.accel.bench import bench_accel; from solution import numerics; "
            f"r = bench_accel({int(epochs)}, {int(repeats)}); r['numerics'] = numerics.label(); "
            "sys.stdout.write('\\n' + json.dumps(r))")
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], env=env, capture_output=True,
                          text=True, timeout=3600)
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- grading: throughput, overhead, evaluation ----------------------------------------------------------


def _batch(subs: Path, out: Path, config, epochs: int, workers: int) -> dict[str, Any]:
    from grader.batch import grade_batch
    from grader.report import collect

    cpu0 = _grader_cpu_s()
    start = time.perf_counter()
    summary = grade_batch([subs], out, config, epochs, workers=workers, regrade=True, progress=False)
    wall = time.perf_counter() - start
    grader_cpu = _grader_cpu_s() - cpu0
    if summary.errors:
        raise RuntimeError(f"grading failed during the benchmark: {summary.errors}")
    results = collect(out)
    preambles = [p for p in (_preamble_s(out / r.submission_id / "executed.ipynb") for r in results) if p is not None]
    n = len(summary.graded)
    return {
        "workers": workers,
        "submissions": n,
        "wall_s": wall,
        "per_minute": 60.0 * n / wall,
        "scores": sorted({r.score for r in results}),
        "grade_wall_s": [r.execution_time for r in results],
        "grader_overhead_s": [r.grader_overhead_s for r in results],
        "cell_s": [r.execution_time - r.grader_overhead_s for r in results],
        "preamble_s": preambles,
        # CPU of this process and of the worker processes (not of the kernels: the sandbox's
        # own init process reaps those), per submission: what a second worker's kernel competes with
        "grader_cpu_s_per_submission": grader_cpu / max(n, 1),
    }


def _grader_cpu_s() -> float:
    """CPU seconds of this process and of its waited-for children (the batch's worker processes)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _preamble_s(path: Path) -> float | None:
    """Seconds of the grader's preamble cell (imports torch and lava-dl, installs the accelerator)."""
    from datetime import datetime

    try:
        nb = nbformat.read(path, as_version=4)
        cell = next(c for c in nb.cells if c.metadata.get("grader") == "preamble")
        timing = cell.metadata["execution"]
        start, end = (datetime.fromisoformat(timing[k].replace("Z", "+00:00"))
                      for k in ("iopub.execute_input", "shell.execute_reply"))
    except (OSError, ValueError, KeyError, StopIteration):
        return None
    return (end - start).total_seconds()


def bench_grading(config, epochs: int, copies: int, work: Path) -> dict[str, Any]:
    """Grade `copies` copies of the reference with 1 then 2 workers; overhead from the 1-worker run."""
    from grader import calibration

    calibration.get(epochs, config.budget.seed, config.budget.accelerate)  # not part of the timings
    subs = _write_reference(work / "submissions", [f"copy{i}" for i in range(copies)])
    one = _batch(subs, work / "out-1", config, epochs, 1)
    two = _batch(subs, work / "out-2", config, epochs, 2)
    grade_wall = statistics.median(one["grade_wall_s"])
    return {
        "epochs": epochs,
        "copies": copies,
        "workers_1": one,
        "workers_2": two,
        "ratio": two["per_minute"] / one["per_minute"],
        # what the second worker costs the first: each submission's own cells, 2 workers against 1
        "cell_ratio": statistics.median(two["cell_s"]) / max(statistics.median(one["cell_s"]), 1e-9),
        "grader_overhead_s": statistics.median(one["grader_overhead_s"]),
        "cell_s": statistics.median(one["cell_s"]),
        "grade_wall_s": grade_wall,
        "preamble_s": statistics.median(one["preamble_s"]) if one["preamble_s"] else None,
        # the batch's own cost per submission beyond grade_submission's wall: the worker process's
        # start (spawn, imports; once per worker), intake, publishing, the gradebook
        "batch_overhead_s": one["wall_s"] / max(one["submissions"], 1) - grade_wall,
        "hdf5": str(work / "out-1" / "copy0" / "network.net"),
    }


def bench_evaluation(hdf5: Path, repeats: int) -> dict[str, Any]:
    """grader.measure.measure on one file: a cold first call, then the median of warm ones."""
    from grader.measure import measure, official_spikes

    start = time.perf_counter()
    official = official_spikes()
    measure(hdf5, official)
    cold = time.perf_counter() - start
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        measure(hdf5, official)
        times.append(time.perf_counter() - start)
    return {"seconds": statistics.median(times), "cold_s": cold, "repeats": len(times)}


PAIR_SCRIPT = """
import sys, tempfile, time
import grader, grader.exact
from solution.training import train
epochs = int(sys.argv[1])
with tempfile.TemporaryDirectory() as out:
    start = time.perf_counter()
    train(epochs, seed=0, out_dir=out, accelerator=grader.exact.mode())
    print(time.perf_counter() - start)
"""


def bench_pair(epochs: int, repeats: int = 3) -> dict[str, Any]:
    """The machine's own ceiling for 2 workers: the accelerated training alone, then two at once, no grader.

    Each process times its training only (not its imports). Alone and paired runs alternate,
    `repeats` times each, and the medians are compared: this machine's speed drifts by several
    per cent from minute to minute. 2 x alone / the slower of a pair is what two gradings
    could reach at best here (shared caches, memory bandwidth, where the hypervisor runs the cores).
    """

    def start() -> subprocess.Popen:
        return subprocess.Popen([sys.executable, "-c", PAIR_SCRIPT, str(epochs)], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONHASHSEED": "0"})

    def seconds(proc: subprocess.Popen) -> float:
        out, _ = proc.communicate(timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"the pair benchmark's training failed (exit status {proc.returncode})")
        return float(out.strip().splitlines()[-1])

    alone, pairs = [], []
    for _ in range(max(repeats, 1)):
        alone.append(seconds(start()))
        pair = [start(), start()]
        pairs.append(max(seconds(p) for p in pair))
    ratio = 2 * statistics.median(alone) / statistics.median(pairs)
    return {"epochs": epochs, "repeats": len(alone), "alone_s": alone, "pair_s": pairs, "ratio": ratio}


def bench_full_stock(config, work: Path, epochs: int) -> dict[str, Any]:
    """One reference graded at the course budget with and without the accelerator (wall times)."""
    from grader import calibration
    from grader.grade import grade_submission
    from grader.submission import discover

    cal = calibration.load(epochs, config.budget.seed)
    note = None
    if cal is None:  # training the reference for 2000 epochs only to score would double the time
        cal = calibration.get(5, config.budget.seed, config.budget.accelerate)
        note = f"no {epochs}-epoch calibration here: scored against the 5-epoch one (times are what matter)"
    (sub,) = discover([_write_reference(work / "full-submissions", ["reference"]) / "reference"], work / "intake")
    runs = {}
    for label, accelerate in (("accelerated", True), ("stock", False)):
        graded = grade_submission(sub, work / f"full-{label}", config.with_budget(accelerate=accelerate), epochs, cal)
        r = graded.result
        runs[label] = {"wall_s": r.execution_time, "cell_s": r.execution_time - r.grader_overhead_s,
                       "grader_overhead_s": r.grader_overhead_s, "score": r.score}
    out: dict[str, Any] = {"epochs": epochs, **runs,
                           "ratio": runs["stock"]["wall_s"] / max(runs["accelerated"]["wall_s"], 1e-9)}
    if note:
        out["note"] = note
    return out


# --- report -----------------------------------------------------------------------------------------


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("ok" if ok else "MISSED")


def _line(label: str, value: str, target: str = "", ok: bool | None = None, note: str = "") -> str:
    text = f"  {label:30s} {value:>12s}"
    if target:
        text += f"   target {target:9s} {_verdict(ok)}"
    if note:
        text += f"   ({note})"
    return text.rstrip()


def report(figures: dict[str, Any]) -> str:
    lines = []
    m = figures["machine"]
    lines.append(f"grader.bench: one run on this machine, {m['cores_available']} cores available, "
                 f"load average {m['load_average']} at the start, {m['load_average_end']} at the end")
    lines.append("(figures from a shared or busy machine move from run to run)")

    t = figures["training"]
    lines.append("")
    lines.append(f"training: seconds per epoch of the reference solution "
                 f"(median over {t.get('repeats')} x {t.get('epochs')} epochs, one thread; {t['source']})")
    lines.append(_line("stock slayer", f"{t['stock_s_per_epoch']:.4f} s"))
    if t.get("no_accel_s_per_epoch"):
        lines.append(_line("kit's orders, --no-accel", f"{t['no_accel_s_per_epoch']:.4f} s"))
    if t.get("accel_s_per_epoch"):
        accel = t["accel_s_per_epoch"]
        lines.append(_line("kit's orders, accelerated", f"{accel:.4f} s", f"<= {TARGETS['accel_epoch_s']:g} s",
                           accel <= TARGETS["accel_epoch_s"]))
        ratio = t["ratio"]
        lines.append(_line("speed-up (stock / accelerated)", f"{ratio:.2f}x", f">= {TARGETS['accel_ratio']:g}x",
                           ratio >= TARGETS["accel_ratio"],
                           "--no-accel and accelerated bit for bit" if t.get("losses_identical", True)
                           else "--no-accel AND ACCELERATED LOSSES DIFFER"))
    else:
        lines.append(_line("accelerated", "n/a", f">= {TARGETS['accel_ratio']:g}x", None, t.get("note", "")))
    for kind in ("stock", "no_accel", "accel"):
        parts = t.get(f"breakdown_{kind}_s")
        if parts:
            lines.append(_line(f"  {kind}: dyn / filter / dense / rest",
                               " / ".join(f"{parts.get(p, 0.0) * 1000:.1f}" for p in
                                          ("dynamics", "filter", "dense", "rest")) + " ms"))

    n = figures.get("native")
    if n:
        lines.append("")
        lines.append(f"numerical mode: pinned ({m['numerics']}) against native ({n.get('numerics', '?')}), "
                     "same epochs and repeats, native in a child process")
        if "error" in n:
            lines.append(f"  native run failed: {n['error']}")
        else:
            for kind, key in (("stock", "stock_s_per_epoch"), ("accelerated", "accel_s_per_epoch")):
                pinned, native = t.get(key), n.get(key)
                if pinned and native:
                    lines.append(_line(f"{kind}: pinned / native", f"{pinned / native:.2f}x",
                                       note=f"{pinned:.4f} s pinned, {native:.4f} s native per epoch"))
            parts = n.get("breakdown_accel_s")
            if parts:
                lines.append(_line("  native accel: dyn/filt/dense/rest",
                                   " / ".join(f"{parts.get(p, 0.0) * 1000:.1f}" for p in
                                              ("dynamics", "filter", "dense", "rest")) + " ms"))

    g = figures.get("grading")
    if g:
        o = figures["overhead"]
        lines.append("")
        lines.append(f"grader overhead per submission (wall minus the notebook's cells; median of "
                     f"{g['copies']} at {g['epochs']} epochs, 1 worker)")
        lines.append(_line("overhead", f"{o['grader_overhead_s']:.1f} s",
                           note=f"grading wall {g['grade_wall_s']:.1f} s, cells {g['cell_s']:.1f} s"))
        lines.append(_line(f"of a {o['budget']}-epoch run", f"{o['percent_of_full_budget']:.2f} %",
                           f"<= {TARGETS['overhead_percent']:g} %", o["percent_of_full_budget"] <= TARGETS["overhead_percent"],
                           f"cells ~{o['full_budget_cell_s']:.0f} s at {o['s_per_epoch']:.4f} s/epoch, {o['kernels']}"))
        if g.get("preamble_s") is not None:
            lines.append(_line("of which the preamble cell", f"{g['preamble_s']:.1f} s",
                               note="imports torch + lava-dl (the notebook's first cell would) and the accelerator"))
        lines.append(_line("batch, per submission", f"{g['batch_overhead_s']:.1f} s",
                           note="worker start (once per worker), intake, publishing; not in the overhead above"))

        e = figures["evaluation"]
        lines.append("")
        lines.append(f"evaluation of one HDF5 (grader.measure.measure; median of {e['repeats']}, first call "
                     f"{e['cold_s']:.2f} s with imports)")
        lines.append(_line("seconds", f"{e['seconds']:.3f} s", f"<= {TARGETS['evaluation_s']:g} s",
                           e["seconds"] <= TARGETS["evaluation_s"]))

        lines.append("")
        lines += _throughput_lines(g, m)

    f = figures.get("full_throughput")
    if f:
        lines.append("")
        lines += _throughput_lines(f, m, "at the course budget: ")
    p = figures.get("pair")
    if p:
        lines.append(_line("this machine's ceiling", f"{p['ratio']:.2f}x",
                           note=f"2 x {statistics.median(p['alone_s']):.1f} s alone / "
                                f"{statistics.median(p['pair_s']):.1f} s for two at once, medians of {p['repeats']}: "
                                f"the accelerated training, {p['epochs']} epochs, no grader"))

    f = figures.get("full_stock")
    if f:
        lines.append("")
        lines.append(f"full budget: the reference graded at {f['epochs']} epochs")
        for label in ("accelerated", "stock"):
            r = f[label]
            lines.append(_line(label, f"{r['wall_s']:.0f} s",
                               note=f"cells {r['cell_s']:.0f} s, overhead {r['grader_overhead_s']:.1f} s, "
                                    f"score {r['score']:g}"))
        lines.append(_line("stock / accelerated", f"{f['ratio']:.2f}x"))
        if f.get("note"):
            lines.append(f"  note: {f['note']}")
    return "\n".join(lines)


def _throughput_lines(g: dict[str, Any], m: dict[str, Any], prefix: str = "") -> list[str]:
    """Submissions per minute with 1 and 2 workers, and what the second worker costs the first."""
    lines = [f"throughput {prefix}{g['copies']} copies of the reference at {g['epochs']} epochs"]
    for key in ("workers_1", "workers_2"):
        w = g[key]
        lines.append(_line(f"{w['workers']} worker{'s' if w['workers'] > 1 else ''}", f"{w['per_minute']:.2f} /min",
                           note=f"{w['wall_s']:.1f} s in all; cells {statistics.median(w['cell_s']):.1f} s, "
                                f"overhead {statistics.median(w['grader_overhead_s']):.1f} s, "
                                f"grader CPU {w['grader_cpu_s_per_submission']:.1f} s per submission"))
    lines.append(_line("2 workers / 1 worker", f"{g['ratio']:.2f}x", f">= {TARGETS['worker_scaling']:g}x",
                       g["ratio"] >= TARGETS["worker_scaling"],
                       "" if m["cores_available"] >= 2 else "fewer than 2 cores here"))
    lines.append(_line("cells, 2 workers / 1", f"{g['cell_ratio']:.3f}x",
                       note="how much slower each notebook's own cells run beside a second grading"))
    return lines


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    from grader.config import load_config

    config = load_config(args.config)
    if args.no_accel:
        config = config.with_budget(accelerate=False)
    figures: dict[str, Any] = {"machine": _machine(), "targets": TARGETS, "settings": vars(args).copy()}
    figures["settings"]["config"] = str(args.config) if args.config else None
    figures["settings"]["json"] = str(args.json) if args.json else None

    figures["training"] = bench_training(args.epochs, args.repeats, config.budget.seed, accel=not args.no_accel)
    if not args.no_accel and not args.no_native:
        figures["native"] = bench_native(args.epochs, args.repeats)
    work = Path(tempfile.mkdtemp(prefix="s2s-bench-"))
    try:
        if args.copies > 0:
            g = bench_grading(config, args.grade_epochs, args.copies, work)
            figures["grading"] = g
            t = figures["training"]
            accelerated = bool(config.budget.accelerate and t.get("accel_s_per_epoch"))
            s_per_epoch = t["accel_s_per_epoch"] if accelerated else t["stock_s_per_epoch"]
            budget = config.budget.epochs
            full_cells = budget * s_per_epoch
            figures["overhead"] = {
                "grader_overhead_s": g["grader_overhead_s"],
                "budget": budget,
                "s_per_epoch": s_per_epoch,
                "kernels": "accelerated" if accelerated else "stock",
                "full_budget_cell_s": full_cells,
                "percent_of_full_budget": 100.0 * g["grader_overhead_s"] / full_cells,
                "percent_of_full_budget_stock": 100.0 * g["grader_overhead_s"] / (budget * t["stock_s_per_epoch"]),
            }
            figures["evaluation"] = bench_evaluation(Path(g["hdf5"]), args.repeats + 2)
        if args.full:
            full_epochs = args.full_epochs or config.budget.epochs
            figures["full_throughput"] = bench_grading(config, full_epochs, max(args.copies, 2), work / "full")
            figures["pair"] = bench_pair(args.pair_epochs, args.repeats)
        if args.full_stock:
            figures["full_stock"] = bench_full_stock(config, work, config.budget.epochs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["machine"]["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    return figures


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m grader.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=10, help="training epochs per timing run (default 10)")
    p.add_argument("--repeats", type=int, default=3, help="repeats for the medians (default 3)")
    p.add_argument("--copies", type=int, default=4,
                   help="copies of the reference graded for throughput and overhead (default 4; 0 skips)")
    p.add_argument("--grade-epochs", type=int, default=5, help="budget of those gradings (default 5)")
    p.add_argument("--full", action="store_true",
                   help="also the throughput at the course budget: --copies copies (at least 2) graded with 1 "
                        "and with 2 workers (about 7 minutes at 2000 epochs), and the machine's own ceiling "
                        "for two trainings at once")
    p.add_argument("--full-epochs", type=int, help="the budget of --full (default: the rubric's course budget)")
    p.add_argument("--pair-epochs", type=int, default=300,
                   help="epochs of the ceiling measurement of --full (default 300)")
    p.add_argument("--full-stock", action="store_true",
                   help="also grade one reference at the course budget with and without the accelerator "
                        "(about 12 minutes stock)")
    p.add_argument("--no-accel", action="store_true", help="stock slayer kernels only")
    p.add_argument("--no-native", action="store_true", help="skip the pinned-versus-native comparison")
    p.add_argument("--config", type=Path, help="rubric file (default: grader/rubric.toml)")
    p.add_argument("--json", type=Path, help="also write the figures to this JSON file")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    figures = run(args)
    print(report(figures), flush=True)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
        print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
