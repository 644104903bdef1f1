"""Hostile and broken submissions, graded through the real pipeline in one batch (tests/corpus.py).

Every case must come out with its own message and a fixed score, none may stop
the batch, and nothing outside the sandbox may change: the kit's data and
grader code, another submission's results, a folder of the test, /tmp. The
batch runs in the sandbox this machine has: with bubblewrap when it works,
else with the limits alone, in which case the cases that only bubblewrap
stops are left out (they would do real harm). A second, small batch checks
the limits-only layer even where bubblewrap exists.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import secrets
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from grader import batch, report
from grader.batch import grade_batch
from grader.config import Config, Limits, load_config
from grader.results import CheckResult, GradeResult
from grader.sandbox import SandboxUnavailable, bwrap_path

from conftest import sandbox_missing
from corpus import Case, Env, cases

pytestmark = pytest.mark.slow

EPOCHS = 2  # the reference at 2 epochs scores 100 against the calibration at 2 epochs
KIT = Path(__file__).resolve().parent.parent
CASES = cases()


def _has_bwrap() -> bool:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bwrap_path(Limits(sandbox="require")) is not None
        except SandboxUnavailable:
            return False


BWRAP = _has_bwrap()
NO_BWRAP = "only bubblewrap stops this case; without it the case would harm the machine, so it is not graded"


def corpus_config(sandbox: str) -> Config:
    """Small limits so that the timeout, fork bomb and disk filler end in seconds."""
    return load_config().with_budget(accelerate=False).with_limits(
        cell_timeout_s=20, total_timeout_s=180, cpu_time_s=300, processes=64,
        disk_mb=64, disk_files=2000, sandbox=sandbox,
    )


def _digest(root: Path) -> dict[str, str]:
    """Path -> sha256 of every file under `root` (bytecode caches aside: Python writes those itself)."""
    out = {}
    for path in sorted(root.rglob("*")):
        if "__pycache__" in path.parts or not path.is_file():
            continue
        out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _valid_hdf5(path: Path) -> bytes:
    import torch

    from solution.network import Network

    torch.manual_seed(0)
    net = Network()
    with torch.no_grad():
        net(torch.zeros(1, 200, 600))
    net.export_hdf5(str(path))
    return path.read_bytes()


def _bystander(out: Path, config: Config) -> None:
    """An earlier submission's grading in the output folder: the batch must leave it exactly as it is."""
    result = GradeResult(
        submission_id="bystander", notebook_sha256="0" * 64, epochs=EPOCHS,
        checks=[CheckResult(name, pts / 2, pts, "graded earlier") for name, pts in config.points.items()],
        config_fingerprint=config.fingerprint(), kit_version="earlier",
    )
    (out / "bystander").mkdir(parents=True)
    report.write_results(result, out / "bystander" / report.RESULTS)
    (out / "bystander" / "feedback.html").write_text("<p>graded earlier</p>")


@dataclass
class Graded:
    env: Env
    cases: list[Case]
    results: dict[str, GradeResult]
    errors: dict[str, str]
    before: dict[str, dict[str, str]]
    after: dict[str, dict[str, str]]
    connections: int
    gradebook: dict[str, str]


def _run(root: Path, sandbox: str, chosen: list[Case]) -> Graded:
    config = corpus_config(sandbox)
    out, outside, subs = root / "out", root / "outside", root / "subs"
    outside.mkdir()
    subs.mkdir()
    (outside / "notes.txt").write_text("the instructor's notes\n")
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    decoy = outside / "network.net"
    env = Env(kit=KIT, out=out, outside=outside, port=listener.getsockname()[1], token=secrets.token_hex(8),
              valid_hdf5=_valid_hdf5(decoy), decoy_hdf5=decoy)
    for case in chosen:
        case.build(env, subs / case.name)
    _bystander(out, config)

    def snapshot() -> dict[str, dict[str, str]]:
        return {"data": _digest(KIT / "data"), "grader": _digest(KIT / "grader"),
                "outside": _digest(outside), "bystander": _digest(out / "bystander")}

    before = snapshot()
    try:
        summary = grade_batch([subs], out, config, epochs=EPOCHS, workers=2, progress=False)
        connections = 0
        while True:
            try:
                conn, _ = listener.accept()
            except (TimeoutError, socket.timeout):
                break
            conn.close()
            connections += 1
    finally:
        listener.close()
    rows = csv.reader(io.StringIO((out / report.GRADEBOOK).read_text()))
    return Graded(
        env=env, cases=chosen,
        results={r.submission_id: r for r in report.collect(out)}, errors=summary.errors,
        before=before, after=snapshot(), connections=connections,
        gradebook={row[0]: row[1] for row in list(rows)[1:]},
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Graded:
    chosen = [c for c in CASES if BWRAP or not c.bwrap_only]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CUDA_VISIBLE_DEVICES", "")  # cuda_device runs on the CPU even where the machine has a GPU
        return _run(tmp_path_factory.mktemp("corpus"), "require" if BWRAP else "off", chosen)


def _expected(case: Case, sandboxed: bool) -> tuple[float, dict[str, str]]:
    if not sandboxed and case.unsandboxed is not None:
        return case.unsandboxed
    return case.score, case.messages


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_gets_its_message_and_score(corpus: Graded, case: Case) -> None:
    if case not in corpus.cases:
        sandbox_missing(NO_BWRAP)
    result = corpus.results[case.name]
    score, messages = _expected(case, BWRAP)
    for check, fragment in messages.items():
        assert fragment in result.check(check).message, (check, result.check(check).message)
    assert result.score == score, [(c.name, c.score, c.message) for c in result.checks]
    assert corpus.gradebook[case.name] == f"{score:g}"


def test_no_case_stops_the_batch(corpus: Graded) -> None:
    assert corpus.errors == {}
    assert set(corpus.results) == {c.name for c in corpus.cases} | {"bystander"}
    assert not any(f.startswith("grader error") for r in corpus.results.values() for f in r.flags)


def _changed(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]]) -> list[str]:
    return [f"{area}/{path}" for area in before
            for path in sorted(set(before[area]) | set(after[area])) if before[area].get(path) != after[area].get(path)]


def test_nothing_outside_the_sandbox_changed(corpus: Graded) -> None:
    assert _changed(corpus.before, corpus.after) == []
    assert corpus.gradebook["bystander"] == "50"
    out = corpus.env.out
    expected = {"bystander", report.GRADEBOOK, "index.html", "similarity.html", "similarity.json", "_intake",
                ".s2s-batch", ".s2s-batch.lock", batch.LOG, *(c.name for c in corpus.cases)}
    assert {p.name for p in out.iterdir()} <= expected
    assert not list(out.parent.rglob("escaped")) and not (out.parent.parent / "escaped").exists()
    assert sorted(p.name for p in corpus.env.outside.iterdir()) == ["network.net", "notes.txt"]
    for sid in {c.name for c in corpus.cases} - {"bystander"}:  # the grader's own files only
        assert {p.name for p in (out / sid).iterdir()} <= {report.RESULTS, "executed.ipynb", "feedback.html",
                                                           "network.net", "figure.png", report.OUTPUT_RASTER}
    if BWRAP:
        assert corpus.connections == 0
        assert not list(Path("/tmp").glob(f"s2s-corpus-{corpus.env.token}*"))


def test_fake_results_are_the_graders(corpus: Graded) -> None:
    """What a notebook writes or prints is never taken for a result."""
    for sid in ("fake_scores", "fake_results", "fake_gradebook", "fake_tmp_results", "overwrite_other"):
        if sid not in corpus.results:
            continue
        data = json.loads((corpus.env.out / sid / report.RESULTS).read_text())
        assert data["extra_data"]["submission_id"] == sid
        assert data["score"] == corpus.results[sid].score < 100


def test_huge_output_is_clipped_in_the_executed_notebook(corpus: Graded) -> None:
    executed = corpus.env.out / "huge_output" / "executed.ipynb"
    assert executed.stat().st_size < 1_000_000
    assert "[grader: this cell printed 30000001 characters; the first 200000 are kept]" in executed.read_text()


def test_each_kernel_uses_one_torch_thread(corpus: Graded) -> None:
    executed = nbformat.read(corpus.env.out / "fake_scores" / "executed.ipynb", as_version=4)
    student = [c for c in executed.cells if "grader" not in c.metadata]
    stdout = "".join(o.text for o in student[0].outputs if o.get("name") == "stdout")
    assert stdout.startswith("torch threads: 1\n")


def test_monkeypatching_the_kernel_changes_no_measurement(corpus: Graded) -> None:
    """Loss and similarity come from the grader's process: a patched kernel measures as the plain reference."""
    patched, plain = corpus.results["monkeypatch"].measurements, corpus.results["reference"].measurements
    for key in ("loss", "f1_0ms", "f1_2ms", "f1_5ms", "correlation_5ms", "weights_sha256"):
        assert patched[key] == plain[key], key
    assert patched["loss"] == pytest.approx(plain["reference"]["loss"], rel=1e-6)  # the calibration's


def test_no_kernel_outlives_the_batch(corpus: Graded) -> None:
    root = str(corpus.env.out.parent)
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if root in cmdline:
            left.append(cmdline[:200])
    assert left == []


# --- the limits alone -------------------------------------------------------------------------

LIMITS_ALONE = ("fork_bomb", "disk_filler", "segfault", "network")


def test_limits_alone_stop_what_they_can(tmp_path: Path) -> None:
    """Without bubblewrap (sandbox = "off"): the watchdog and rlimits still end these; the network is open."""
    if not BWRAP:
        sandbox_missing("bubblewrap is absent: the corpus above already ran with the limits alone")
    chosen = [c for c in CASES if c.name in LIMITS_ALONE]
    graded = _run(tmp_path, "off", chosen)
    assert graded.errors == {}
    for case in chosen:
        score, messages = _expected(case, sandboxed=False)
        result = graded.results[case.name]
        for check, fragment in messages.items():
            assert fragment in result.check(check).message, (case.name, check, result.check(check).message)
        assert result.score == score, case.name
    assert graded.connections == 1  # without bubblewrap the kernel reached the test's port
    assert _changed(graded.before, graded.after) == []
