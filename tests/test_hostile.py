"""Issue 16's hostile notebooks (tests/hostile/cases.py), graded in one batch per flow.

Under bubblewrap and without it (`sandbox = "off"`, as root the kernel then runs as a
uid of its own); the Gradescope flow runs some of them in tests/test_gradescope.py.
Each case must come out with its score and messages, none may stop the batch or
become a grader error, no daemon may outlive the run, the kit must not change, and
every file the batch writes must be the grader's own.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from grader import report, roster, sandbox
from grader.batch import grade_batch
from grader.config import Config, Limits, load_config
from grader.results import GradeResult

from conftest import enterable_tmp, sandbox_missing, workdir_is_tmpfs
from hostile.cases import CLASHING, KIT, Hostile, cases

pytestmark = pytest.mark.slow

EPOCHS = 2
CASES = cases()
WRONG_IDS = {f"{name}-2" for name in CLASHING}


def _config(flow: str) -> Config:
    return load_config().with_budget(accelerate=False).with_limits(
        cell_timeout_s=60, total_timeout_s=180, cpu_time_s=300, processes=64, disk_mb=64, disk_files=2000,
        sandbox="require" if flow == "bwrap" else "off")


def _confined(flow: str, root: Path) -> bool:
    """Whether the kernel runs with rights of its own (not the grader's) in `flow` on this machine."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mode = sandbox.mode(_config(flow).limits, root)
    return mode.bwrap is not None or mode.uid is not None


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and "__pycache__" not in p.parts and os.access(p, os.R_OK)}


@dataclass
class Graded:
    out: Path
    cases: list[Hostile]
    results: dict[str, GradeResult]
    errors: dict[str, str]
    gradebook: dict[str, str]
    kit_changed: list[str]
    left: list[str]


def _run(root: Path, flow: str) -> Graded:
    chosen = [c for c in CASES if _confined(flow, root) or not c.harmful_unconfined]
    out, subs = root / "out", root / "subs"
    subs.mkdir()
    for case in chosen:
        case.build(subs / case.name)
    before = {top: _digest(KIT / top) for top in ("grader", "data")}
    summary = grade_batch([subs], out, _config(flow), epochs=EPOCHS, workers=2, progress=False)
    time.sleep(2)  # a daemon that survived would rewrite the results now
    after = {top: _digest(KIT / top) for top in ("grader", "data")}
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(root) in cmdline:
            left.append(cmdline[:200])
    rows = list(csv.reader(io.StringIO((out / report.GRADEBOOK).read_text())))
    return Graded(out, chosen, {r.submission_id: r for r in report.collect(out)}, summary.errors,
                  {row[0]: row[1] for row in rows[1:]},
                  [f"{top}/{p}" for top in before for p in set(before[top]) | set(after[top])
                   if before[top].get(p) != after[top].get(p)], left)


@pytest.fixture(scope="module", params=["bwrap", "off"])
def graded(request) -> Iterator[Graded]:
    if request.param == "bwrap" and sandbox.why_no_sandbox():
        sandbox_missing(f"no bubblewrap: {sandbox.why_no_sandbox()}")
    root = enterable_tmp(f"s2s-hostile-{request.param}-")  # a kernel with a uid of its own must enter it
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("CUDA_VISIBLE_DEVICES", "")
            yield _run(root, request.param)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _disk_fragment() -> str:
    if workdir_is_tmpfs():  # the kernel's own filesystem refuses the burst
        return "raised OSError at line 4 `os.posix_fallocate(fd, 0, 32 * 2**20)`: [Errno 28] No space left on device"
    return "was stopped: the grader killed the kernel: its working directory grew past the 64 MiB disk limit"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_each_hostile_case_gets_its_outcome(graded: Graded, case: Hostile) -> None:
    if case not in graded.cases:
        pytest.skip("without bubblewrap and without a uid of its own here, the kernel has the grader's rights: "
                    "this case would change the kit (see docs/security.md, 'No bubblewrap')")
    result = graded.results[case.name]
    messages = dict(case.messages)
    if case.name == "fallocate_burst":
        assert _disk_fragment() in result.check("execution").message, result.check("execution").message
    if case.name == "patch_grader":
        said = result.check("execution").message
        assert "PermissionError" in said or "Read-only file system" in said, said
    if case.name == "read_solution":  # refused where it runs: no line of the solution reaches a message
        said = result.check("execution").message
        assert "PermissionError" in said or "FileNotFoundError" in said, said
        assert not [c for c in result.checks if "class Network" in c.message or "slayer.block" in c.message]
    for check, fragment in messages.items():
        assert fragment in result.check(check).message, (check, result.check(check).message)
    assert result.score == case.score, [(c.name, c.score, c.message) for c in result.checks]
    assert graded.gradebook[case.name] == f"{case.score:g}"
    data = json.loads((graded.out / case.name / report.RESULTS).read_text())
    assert data["extra_data"]["submission_id"] == case.name and data["score"] == case.score  # not the daemon's


def test_no_hostile_case_stops_the_batch_or_outlives_it(graded: Graded) -> None:
    assert graded.errors == {}
    assert set(graded.results) == {c.name for c in graded.cases} | WRONG_IDS
    assert not any(r.is_grader_error for r in graded.results.values())
    assert graded.left == []
    assert graded.kit_changed == []


def test_the_batchs_own_files_stay_its_own(graded: Graded) -> None:
    assert (graded.out / report.GRADEBOOK).is_file() and (graded.out / "index.html").is_file()
    for sid in WRONG_IDS:
        assert graded.results[sid].score == 10 and (graded.out / sid / report.RESULTS).is_file()
    executed = graded.out / "update_flood" / "executed.ipynb"
    assert executed.stat().st_size < 1_000_000


def test_roster_names_that_are_formulas_reach_no_spreadsheet(graded: Graded, tmp_path: Path) -> None:
    class_list = tmp_path / "class.csv"
    class_list.write_text("id,name,email\ndaemon_forge,=cmd|' /C calc'!A0,@evil\nclash,+1+1,-2\n")
    entries = roster.join(report.collect(graded.out), roster.read_roster(class_list))
    rows = list(csv.reader(io.StringIO(roster.write_joined(entries, tmp_path / roster.ROSTER).read_text())))
    cells = [cell for row in rows for cell in row]
    assert "'=cmd|' /C calc'!A0" in cells and "'@evil" in cells and "'+1+1" in cells and "'-2" in cells
    assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
