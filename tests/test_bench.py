"""grader.bench: a smoke run at tiny settings; checks what it prints and writes, never the timings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from grader.config import DEFAULT_RUBRIC

KIT_ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_bench_prints_every_figure_with_its_target(tmp_path: Path) -> None:
    rubric = tmp_path / "rubric.toml"  # no bubblewrap: the smoke run must not depend on it
    rubric.write_text(re.sub(r'(?m)^sandbox = "\w+"', 'sandbox = "off"', DEFAULT_RUBRIC.read_text()))
    out = tmp_path / "bench.json"
    cmd = [sys.executable, "-m", "grader.bench", "--epochs", "2", "--repeats", "1", "--copies", "2",
           "--grade-epochs", "2", "--full", "--full-epochs", "3", "--pair-epochs", "2",
           "--config", str(rubric), "--json", str(out)]
    done = subprocess.run(cmd, cwd=KIT_ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"},
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    text = done.stdout
    for heading in ("training: seconds per epoch", "grader overhead per submission",
                    "evaluation of one HDF5", "throughput 2 copies of the reference at 2 epochs",
                    "throughput at the course budget: 2 copies of the reference at 3 epochs"):
        assert heading in text, text
    assert re.search(r"stock slayer\s+\d+\.\d+ s", text)
    assert re.search(r"kit's orders, --no-accel\s+\d+\.\d+ s", text)
    assert re.search(r"kit's orders, accelerated\s+\d+\.\d+ s\s+target <= 0.017 s\s+(ok|MISSED)", text)
    assert re.search(r"speed-up \(stock / accelerated\)\s+\d+\.\d+x\s+target >= 15x\s+(ok|MISSED)\s+"
                     r"\(--no-accel and accelerated bit for bit\)", text)
    assert re.search(r"of a 2000-epoch run\s+\d+\.\d+ %\s+target <= 5 %\s+(ok|MISSED)", text)
    assert re.search(r"seconds\s+\d+\.\d+ s\s+target <= 1 s\s+(ok|MISSED)", text)
    assert len(re.findall(r"2 workers / 1 worker\s+\d+\.\d+x\s+target >= 1.9x\s+(ok|MISSED)", text)) == 2
    assert len(re.findall(r"2 workers\s+\d+\.\d+ /min\s+\(\d+\.\d s in all; cells \d+\.\d s, overhead \d+\.\d s, "
                          r"grader CPU \d+\.\d s per submission\)", text)) == 2
    assert len(re.findall(r"cells, 2 workers / 1\s+\d+\.\d{3}x", text)) == 2
    assert re.search(r"this machine's ceiling\s+\d+\.\d+x\s+\(2 x \d+\.\d s alone / \d+\.\d s for two at once, "
                     r"medians of 1: the accelerated training, 2 epochs, no grader\)", text)
    assert re.search(r"accelerated\s+(\d+\.\d+ s|n/a)", text)
    assert "numerical mode: pinned (mkl-compatible/avx2/1-thread (torch AVX2, MKL CNR COMPATIBLE)) " \
           "against native (native (torch " in text
    assert re.search(r"stock: pinned / native\s+\d+\.\d+x\s+\(\d+\.\d+ s pinned, \d+\.\d+ s native per epoch\)", text)
    assert re.search(r"accel: dyn / filter / dense / rest\s+[\d.]+ / [\d.]+ / [\d.]+ / [\d.]+ ms", text)

    figures = json.loads(out.read_text())
    assert {"machine", "targets", "settings", "training", "native", "grading", "overhead", "evaluation"} <= set(figures)
    assert figures["machine"]["numerics"] == "mkl-compatible/avx2/1-thread (torch AVX2, MKL CNR COMPATIBLE)"
    assert figures["native"]["numerics"].startswith("native (torch ")
    assert figures["native"]["losses_identical"] is True
    assert figures["training"]["stock_s_per_epoch"] > 0
    assert figures["training"]["losses_identical"] is True  # --no-accel and accelerated, in the kit's orders
    assert figures["grading"]["workers_1"]["submissions"] == figures["grading"]["workers_2"]["submissions"] == 2
    assert figures["grading"]["workers_1"]["scores"] == [100.0]  # the reference, graded as usual
    assert figures["evaluation"]["seconds"] > 0
    full = figures["full_throughput"]
    assert full["epochs"] == 3 and full["workers_2"]["submissions"] == 2 and full["workers_2"]["scores"] == [100.0]
    assert full["workers_1"]["grader_cpu_s_per_submission"] > 0
    assert figures["pair"]["epochs"] == 2 and len(figures["pair"]["pair_s"]) == len(figures["pair"]["alone_s"]) == 1
    assert "full_stock" not in figures
