"""grader.batch: resumable batches that lose nothing, local worker processes, a Dask cluster.

The fast tests check the bookkeeping on hand-written results. The slow ones
grade a few real notebooks at a tiny budget (EPOCHS) against a calibration
computed at that budget (cached under .cache/calibration after the first run).
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from importlib.metadata import version
from pathlib import Path

import nbformat
import pytest

from grader import batch, calibration, report
from solution import numerics
from grader.batch import BatchError, already_graded, clean_stale, grade_batch
from grader.config import DEFAULT_RUBRIC, load_config
from grader.grade import KIT_VERSION
from grader.results import CheckResult, GradeResult
from grader.samples import Mutation, mutate, make_sample
from grader.submission import discover

EPOCHS = 2
KIT_ROOT = Path(__file__).resolve().parent.parent


def _config():
    # Stock slayer kernels (the accelerator is bit-identical) and no bubblewrap: these tests are about
    # the batch, not the sandbox (tests/test_corpus.py), and must not depend on either being available.
    return load_config().with_budget(accelerate=False).with_limits(sandbox="off")


def _result(sid: str, sha: str = "0" * 64, weights: str | None = None, **changes) -> GradeResult:
    config = _config()
    fields = dict(
        submission_id=sid, notebook_sha256=sha, epochs=EPOCHS,
        checks=[CheckResult(name, pts, pts, "ok") for name, pts in config.points.items()],
        config_fingerprint=config.fingerprint(), kit_version=KIT_VERSION,
        measurements={"weights_sha256": weights} if weights else {},
    )
    fields.update(changes)
    return GradeResult(**fields)


def _write_result(out: Path, result: GradeResult) -> None:
    (out / result.submission_id).mkdir(parents=True, exist_ok=True)
    report.write_results(result, out / result.submission_id / report.RESULTS)


def _gradebook_rows(out: Path) -> dict[str, list[str]]:
    rows = list(csv.reader(io.StringIO((out / report.GRADEBOOK).read_text())))
    return {row[0]: row for row in rows[1:]}


# --- fast: the bookkeeping -------------------------------------------------------------------


def test_kit_version_comes_from_the_installed_package() -> None:
    assert KIT_VERSION == version("slayer-s2s-kit")


def test_already_graded_trusts_only_an_identical_grading(tmp_path: Path) -> None:
    nb = tmp_path / "subs" / "alice" / "train.ipynb"
    nb.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), nb)
    (sub,) = discover([nb.parent], tmp_path / "intake")
    out, config = tmp_path / "out", _config()
    cal = calibration.Calibration(EPOCHS, 0, 10.0, 20.0, {}, 1.0, 0.5)
    good = _result("alice", sub.sha256, measurements={"reference": {"loss": 10.0}, "silent_loss": 20.0})

    assert not already_graded(sub, out, config, EPOCHS)  # nothing there yet
    _write_result(out, good)
    assert already_graded(sub, out, config, EPOCHS)
    assert already_graded(sub, out, config, EPOCHS, cal)
    assert not already_graded(sub, out, config, EPOCHS + 1)  # another budget
    assert not already_graded(sub, out, config.with_budget(seed=1), EPOCHS)  # another configuration
    other_cal = calibration.Calibration(EPOCHS, 0, 11.0, 20.0, {}, 1.0, 0.5)
    assert not already_graded(sub, out, config, EPOCHS, other_cal)  # another reference
    for changes in ({"notebook_sha256": "f" * 64}, {"kit_version": "0.0.1"},
                    {"config_fingerprint": batch.ERROR_FINGERPRINT}):  # a grader error is retried
        _write_result(out, _result("alice", **{"notebook_sha256": sub.sha256, **changes}))
        assert not already_graded(sub, out, config, EPOCHS), changes
    (out / "alice" / report.RESULTS).write_text('{"score": 100, "extra_data": {')  # damaged
    assert not already_graded(sub, out, config, EPOCHS)


def test_gradebook_flags_identical_weights(tmp_path: Path) -> None:
    out = tmp_path / "out"
    for sid, weights in (("ann", "aa"), ("bob", "bb"), ("cat", "aa"), ("dan", None), ("eve", "aa")):
        _write_result(out, _result(sid, weights=weights))
    _write_result(out / batch.STAGE, _result("ghost", weights="aa"))  # half-built: not in the gradebook
    assert report.write_gradebook(out) == out / report.GRADEBOOK
    rows = _gradebook_rows(out)
    assert sorted(rows) == ["ann", "bob", "cat", "dan", "eve"]
    assert rows["ann"][-1] == "identical exported weights as cat, eve"
    assert rows["cat"][-1] == "identical exported weights as ann, eve"
    assert rows["bob"][-1] == rows["dan"][-1] == ""
    assert rows["ann"][1:3] == ["100", "100"]


def test_publish_swaps_a_whole_folder(tmp_path: Path) -> None:
    final, staged = tmp_path / "alice", tmp_path / "_tmp" / "alice"
    final.mkdir()
    (final / "results.json").write_text("old")
    (final / "feedback.html").write_text("old")
    staged.mkdir(parents=True)
    (staged / "results.json").write_text("new")
    report.publish(staged, final)
    assert sorted(p.name for p in final.iterdir()) == ["results.json"]  # nothing of the old grading
    assert (final / "results.json").read_text() == "new"
    assert not staged.exists() and list((tmp_path / "_tmp").iterdir()) == []


def test_stale_state_of_a_killed_batch_is_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    _write_result(out, _result("alice"))
    leftovers = [out / "_tmp" / "bob" / "feedback.html", out / "_tmp" / "_work" / "bob" / "Trained" / "x",
                 out / "_work" / "carl" / "y", out / ".gradebook.csv.123.tmp", out / "alice" / ".results.json.9.tmp"]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    clean_stale(out)
    assert not any(p.exists() for p in leftovers)
    assert not (out / "_tmp").exists() and not (out / "_work").exists()
    assert (out / "alice" / report.RESULTS).is_file()


def test_one_batch_at_a_time_per_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with batch._exclusive(out):
        with pytest.raises(BatchError, match="another batch"):
            grade_batch([tmp_path], out, _config(), EPOCHS, workers=1, progress=False)
    summary = grade_batch([], out, _config(), EPOCHS, workers=1, progress=False)  # free again
    assert summary.graded == [] and summary.gradebook.is_file()


def test_a_worker_that_cannot_see_the_batch_grades_nothing(tmp_path: Path) -> None:
    nb = tmp_path / "subs" / "alice" / "train.ipynb"
    nb.parent.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), nb)
    (sub,) = discover([nb.parent], tmp_path / "intake")
    out, config = tmp_path / "out", _config()
    out.mkdir()
    (out / batch.MARKER).write_text("this batch\n")
    cal = calibration.Calibration(EPOCHS, 0, 10.0, 20.0, {}, 1.0, 0.5)
    ctx = batch.BatchContext(str(out), config, EPOCHS, cal, "another batch", KIT_VERSION)
    sid, score, error = batch.grade_task(sub, ctx)
    assert (sid, score) == ("alice", None) and "shared by the machine that runs the batch" in error
    _, _, error = batch.grade_task(sub, batch.BatchContext(str(out), config, EPOCHS, cal, "this batch", "0.0.1"))
    assert "every worker needs the kit's environment" in error
    assert not (out / "alice").exists()  # it wrote nothing; the batch records the failure
    errors: dict[str, str] = {}
    batch._finish(sub, (sid, score, error), None, ctx, errors, lambda _: None)
    (result,) = report.collect(out)
    assert result.config_fingerprint == batch.ERROR_FINGERPRINT and result.score is None
    assert result.flags == [f"not graded (grading machine error): {error}"]
    assert errors == {"alice": error}
    report.write_gradebook(out)
    assert _gradebook_rows(out)["alice"][1:3] == ["", ""]  # no score, not a 0
    assert (out / "alice" / report.FEEDBACK).read_text().count("not graded (grading machine error)") == 1


# --- slow: real notebooks ------------------------------------------------------------------------


def _write(folder: Path, nb: nbformat.NotebookNode) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "train.ipynb")
    return folder


SEED_7 = Mutation("builds its network from its own seed", (
    ("net = Network().to(device)", "torch.manual_seed(7)\nnet = Network().to(device)"),))


def _copied() -> nbformat.NotebookNode:
    """The reference trained from its own seed: weights nobody else should have by chance."""
    return mutate(make_sample("reference"), SEED_7)


def _twin() -> nbformat.NotebookNode:
    """A copy of `_copied` with a different notebook hash (one more markdown cell), same weights."""
    nb = _copied()
    nb.cells.insert(0, nbformat.v4.new_markdown_cell("My own work, honest."))
    return nb


@pytest.fixture(scope="module")
def submissions(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("submissions")
    _write(root / "raises_halfway", make_sample("raises_halfway"))
    _write(root / "reference", _copied())
    _write(root / "twin", _twin())
    _write(root / "wrong_hidden", make_sample("wrong_hidden"))
    calibration.get(EPOCHS, _config().budget.seed, accelerate=False)  # once, before any subprocess
    return root


@pytest.fixture(scope="module")
def uninterrupted(submissions, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted") / "out"
    summary = grade_batch([submissions], out, _config(), EPOCHS, workers=2, progress=False)
    assert summary.errors == {}
    assert sorted(summary.graded) == ["raises_halfway", "reference", "twin", "wrong_hidden"]
    return out


def _checks(out: Path) -> dict[str, tuple]:
    return {r.submission_id: (r.score, tuple((c.name, c.score, c.max_score) for c in r.checks), tuple(r.flags))
            for r in report.collect(out)}


def _alive(processes: list) -> list:
    alive = []
    for p in processes:
        try:
            if p.is_running() and p.status() != "zombie":
                alive.append(p)
        except Exception:  # psutil.NoSuchProcess and friends
            continue
    return alive


@pytest.mark.slow
def test_identical_weights_are_flagged(uninterrupted) -> None:
    # "reference" and "twin" trained from seed 7; the grader's own seeded reference weights are
    # expected of every faithful solution and never flagged (tests/test_grader.py has two of them).
    rows = _gradebook_rows(uninterrupted)
    assert rows["reference"][-1] == "identical exported weights as twin"
    assert rows["twin"][-1] == "identical exported weights as reference"
    assert "identical" not in rows["wrong_hidden"][-1] and "identical" not in rows["raises_halfway"][-1]


@pytest.mark.slow
def test_killed_batch_resumes_to_the_same_gradebook(submissions, uninterrupted, tmp_path) -> None:
    subs = Path(shutil.copytree(submissions, tmp_path / "subs"))
    out = tmp_path / "out"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONHASHSEED": "0"}
    rubric = tmp_path / "rubric.toml"  # the CLI's equivalent of _config(): --no-accel, sandbox off
    rubric.write_text(re.sub(r'(?m)^sandbox = "\w+"', 'sandbox = "off"', DEFAULT_RUBRIC.read_text()))
    assert load_config(rubric).with_budget(accelerate=False).fingerprint() == _config().fingerprint()
    cmd = [sys.executable, "-m", "grader", "grade", str(subs), "--out", str(out), "--workers", "1",
           "--epochs", str(EPOCHS), "--no-accel", "--no-progress", "--config", str(rubric)]
    proc = subprocess.Popen(cmd, cwd=KIT_ROOT, env=env, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import psutil

    descendants: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + 300
        while not list(out.glob(f"*/{report.RESULTS}")):
            assert proc.poll() is None, "the batch ended before it could be killed"
            assert time.monotonic() < deadline, "no result after 300 s"
            with contextlib.suppress(psutil.Error):
                descendants.update((p.pid, p) for p in psutil.Process(proc.pid).children(recursive=True))
            time.sleep(0.2)
        with contextlib.suppress(psutil.Error):  # the next submission's worker and kernel
            time.sleep(3)
            descendants.update((p.pid, p) for p in psutil.Process(proc.pid).children(recursive=True))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        # its worker processes and their kernels die with it
        deadline = time.monotonic() + 30
        while _alive(list(descendants.values())) and time.monotonic() < deadline:
            time.sleep(0.5)
        orphans = [p.pid for p in _alive(list(descendants.values()))]
    finally:
        for p in _alive(list(descendants.values())):  # never leak a process, whatever happened
            with contextlib.suppress(psutil.Error):
                p.kill()
    assert descendants and orphans == []

    done = {p.parent.name for p in out.glob(f"*/{report.RESULTS}")}
    assert done and len(done) < 4
    published = {p.name for p in out.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))}
    assert published == done  # a submission folder is whole or absent

    summary = grade_batch([subs], out, _config(), EPOCHS, workers=1, progress=False)
    assert summary.errors == {}
    assert set(summary.skipped) == done
    assert set(summary.graded) == {"raises_halfway", "reference", "twin", "wrong_hidden"} - done
    assert not (out / batch.STAGE).exists() and not (out / batch.WORK).exists()
    assert (out / report.GRADEBOOK).read_text() == (uninterrupted / report.GRADEBOOK).read_text()
    assert _checks(out) == _checks(uninterrupted)

    again = grade_batch([subs], out, _config(), EPOCHS, workers=1, progress=False)
    assert again.graded == [] and len(again.skipped) == 4

    regraded = grade_batch([subs / "raises_halfway"], out, _config(), EPOCHS, workers=1,
                           regrade=True, progress=False)
    assert regraded.graded == ["raises_halfway"] and regraded.skipped == []

    nb = nbformat.read(subs / "wrong_hidden" / "train.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("one more note"))
    nbformat.write(nb, subs / "wrong_hidden" / "train.ipynb")
    changed = grade_batch([subs], out, _config(), EPOCHS, workers=1, progress=False)
    assert changed.graded == ["wrong_hidden"]
    assert sorted(changed.skipped) == ["raises_halfway", "reference", "twin"]
    assert (out / report.GRADEBOOK).read_text() == (uninterrupted / report.GRADEBOOK).read_text()


def _assassin() -> nbformat.NotebookNode:
    """Without the sandbox, a kernel can kill the process that grades it: the worker."""
    return nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"),
    ])


@pytest.mark.slow
def test_a_dead_worker_costs_only_its_submission(tmp_path) -> None:
    subs = tmp_path / "subs"
    _write(subs / "assassin", _assassin())
    _write(subs / "raises_halfway", make_sample("raises_halfway"))
    config = _config().with_limits(sandbox="off")
    out = tmp_path / "out"
    summary = grade_batch([subs], out, config, EPOCHS, workers=2, progress=False)
    assert set(summary.errors) == {"assassin"}
    results = {r.submission_id: r for r in report.collect(out)}
    assert results["assassin"].score is None
    assert results["assassin"].flags == ["not graded (grading machine error): worker process died (killed by SIGKILL)"]
    assert results["raises_halfway"].check("dataset").score == 15  # graded as usual
    assert _gradebook_rows(out)["assassin"][1:3] == ["", ""]
    assert "not graded" not in (out / report.GRADEBOOK).read_text().split("raises_halfway")[1]
    # a grader error is never trusted: the next run tries again
    again = grade_batch([subs], out, config, EPOCHS, workers=2, progress=False)
    assert again.graded == ["assassin"] and again.skipped == ["raises_halfway"]


@pytest.mark.slow
def test_a_worker_past_its_time_limit_is_killed(tmp_path) -> None:
    subs = tmp_path / "subs"
    _write(subs / "sleeper", nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import time\ntime.sleep(600)")]))
    (sleeper,) = discover([subs], tmp_path / "intake")
    out = tmp_path / "out"
    out.mkdir()
    cal = calibration.get(EPOCHS, 0, accelerate=False)
    ctx = batch.BatchContext(str(out), _config(), EPOCHS, cal, None, KIT_VERSION)
    errors: dict[str, str] = {}
    start = time.monotonic()
    batch._run_local([sleeper], 1, ctx, lambda _: None, errors, timeout_s=20)
    assert time.monotonic() - start < 60
    assert errors == {"sleeper": "worker process ran past 20 s and was killed"}
    (result,) = report.collect(out)
    assert result.flags == ["not graded (grading machine error): worker process ran past 20 s and was killed"]


@pytest.fixture(scope="module")
def cluster():
    import dask
    from distributed import LocalCluster

    # a task whose worker dies is not retried on the others (the default retries it 3 times)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                          dashboard_address=None) as c:
            yield c


@pytest.mark.slow
def test_dask_cluster_gives_the_same_gradebook(submissions, uninterrupted, cluster, tmp_path) -> None:
    out = tmp_path / "out"
    summary = grade_batch([submissions], out, _config(), EPOCHS, scheduler=cluster.scheduler_address,
                          progress=False)
    assert summary.errors == {}
    assert sorted(summary.graded) == ["raises_halfway", "reference", "twin", "wrong_hidden"]
    assert (out / report.GRADEBOOK).read_text() == (uninterrupted / report.GRADEBOOK).read_text()
    assert _checks(out) == _checks(uninterrupted)
    for sid in summary.graded:
        assert (out / sid / "feedback.html").is_file()


@pytest.mark.slow
def test_dask_worker_death_is_recorded(cluster, tmp_path) -> None:
    subs = tmp_path / "subs"
    _write(subs / "assassin", _assassin())
    out = tmp_path / "out"
    summary = grade_batch([subs], out, _config().with_limits(sandbox="off"), EPOCHS,
                          scheduler=cluster.scheduler_address, progress=False)
    assert set(summary.errors) == {"assassin"}
    (result,) = report.collect(out)
    assert result.score is None and "KilledWorker" in result.flags[0]


@pytest.mark.slow
def test_workers_that_do_not_share_the_output_folder_are_refused(cluster, tmp_path, monkeypatch) -> None:
    subs = tmp_path / "subs"
    _write(subs / "raises_halfway", make_sample("raises_halfway"))
    # what a worker on another machine sees: a marker that is not this batch's
    monkeypatch.setattr(batch, "_worker_info",
                        lambda out_dir, token: ("elsewhere", KIT_VERSION, False, numerics.label(), None))
    with pytest.raises(BatchError, match="shared by this machine and every worker"):
        grade_batch([subs], tmp_path / "out", _config(), EPOCHS, scheduler=cluster.scheduler_address,
                    progress=False)


def test_required_sandbox_missing_refuses_the_batch_up_front(tmp_path: Path, monkeypatch) -> None:
    import grader.sandbox

    monkeypatch.setattr(grader.sandbox.shutil, "which", lambda name: None)
    sub = tmp_path / "subs" / "alice"
    sub.mkdir(parents=True)
    nbformat.write(make_sample("reference"), sub / "train.ipynb")
    config = load_config().with_limits(sandbox="require")
    with pytest.raises(batch.BatchError, match=r"limits.sandbox = 'require'.*apt-get install bubblewrap"):
        grade_batch([tmp_path / "subs"], tmp_path / "out", config, EPOCHS, workers=0, progress=False)
    assert not (tmp_path / "out" / "alice").exists()


def test_no_sandbox_stops_a_batch_before_the_first_submission_unless_accepted(tmp_path: Path, monkeypatch) -> None:
    import grader.sandbox

    monkeypatch.setattr(grader.sandbox.shutil, "which", lambda name: None)
    monkeypatch.setattr(grader.sandbox, "_warned", set())
    sub = tmp_path / "subs" / "alice"
    sub.mkdir(parents=True)
    nbformat.write(make_sample("reference"), sub / "train.ipynb")
    config = load_config()  # sandbox = "auto", as shipped
    with pytest.raises(batch.BatchError) as refused:
        grade_batch([tmp_path / "subs"], tmp_path / "out", config, EPOCHS, workers=0, progress=False)
    assert str(refused.value) == (
        "`bwrap` is not installed (apt-get install bubblewrap): without it the submissions' code would run "
        "with resource limits only, with network and with the grader's own file access. Install bubblewrap, "
        "or pass --unsandboxed (grade_batch(..., unsandboxed=True)) to accept that risk for this batch; the "
        "rubric's limits.sandbox = \"off\" turns the sandbox off for good.")
    assert not (tmp_path / "out" / "alice").exists()
    seen = []  # accepted: the batch goes on to grade (stopped here at the calibration, to stay fast)
    monkeypatch.setattr(batch.calibration, "get", lambda *a: seen.append(a) or (_ for _ in ()).throw(KeyError("stop")))
    with pytest.warns(RuntimeWarning, match="resource limits only"), pytest.raises(KeyError, match="stop"):
        grade_batch([tmp_path / "subs"], tmp_path / "out", config, EPOCHS, workers=0, progress=False,
                    unsandboxed=True)
    assert seen == [(EPOCHS, 0, True)]


def test_the_cli_trusts_only_its_own_samples_and_the_student_check(tmp_path: Path, monkeypatch) -> None:
    from grader import cli

    calls = []

    def fake(paths, out, config, epochs, *args, **kwargs):
        calls.append(kwargs["unsandboxed"])
        raise batch.BatchError("stop here")

    monkeypatch.setattr(batch, "grade_batch", fake)
    nb = tmp_path / "mine.ipynb"
    nbformat.write(make_sample("reference"), nb)
    assert cli.main(["grade", str(nb), "--out", str(tmp_path / "a")]) == 2
    assert cli.main(["grade", str(nb), "--out", str(tmp_path / "b"), "--unsandboxed"]) == 2
    assert cli.main(["grade", "--out", str(tmp_path / "c")]) == 2  # the bundled samples
    assert cli.main(["check", str(nb), "--out", str(tmp_path / "d")]) == 3  # could not grade
    assert calls == [False, True, True, True]


def test_a_workers_own_output_goes_to_the_batch_log(tmp_path: Path) -> None:
    """Libraries' notices in a worker (torch's CUDA notice, lava-dl's Prophesee notice) stay off the terminal."""
    import subprocess
    import sys

    script = ("import os, sys\nfrom pathlib import Path\nfrom grader.batch import output_to\n"
              f"output_to(Path({str(tmp_path / batch.LOG)!r}))\n"
              "print('from print')\nos.write(2, b'from native code\\n')\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")
    assert sorted((tmp_path / batch.LOG).read_text().splitlines()) == ["from native code", "from print"]


# --- intake: ids, links ------------------------------------------------------------------------


def test_the_batchs_own_file_names_are_every_name_it_writes() -> None:
    """submission.OUTPUT_NAMES must hold what the batch writes at OUT's top level (names an id could take)."""
    from grader import overview, roster, similarity
    from grader.submission import OUTPUT_NAMES

    written = {report.GRADEBOOK, overview.OVERVIEW, roster.ROSTER, roster.CANVAS, report.RESULTS,
               similarity.SIMILARITY_HTML, similarity.SIMILARITY_JSON}
    assert written <= OUTPUT_NAMES
    assert all(name.startswith(("_", ".")) for name in (batch.LOG, batch.STAGE, batch.INTAKE, batch.MARKER,
                                                         batch.LOCK, batch.WORK))  # no id starts so


def test_an_id_that_clashes_with_the_batchs_files_is_renamed(tmp_path: Path) -> None:
    subs = tmp_path / "subs"
    subs.mkdir()
    nb = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]))
    for name in ("gradebook.csv.ipynb", "index.html.ipynb", "Roster.CSV.ipynb", "canvas.csv.zip", "results.json",
                 "alice.ipynb", "ALICE.ipynb"):
        if name.endswith(".json"):
            (subs / name).mkdir()
            (subs / name / "train.ipynb").write_text(nb)
        else:
            (subs / name).write_text(nb)
    found = {s.source.name: s.id for s in discover([subs], tmp_path / "intake")}
    assert found == {"gradebook.csv.ipynb": "gradebook.csv-2", "index.html.ipynb": "index.html-2",
                     "Roster.CSV.ipynb": "Roster.CSV-2", "canvas.csv.zip": "canvas.csv-2",
                     "results.json": "results.json-2", "ALICE.ipynb": "ALICE", "alice.ipynb": "alice-2"}


def test_folder_intake_refuses_symbolic_links(tmp_path: Path) -> None:
    """A train.ipynb that links to another student's notebook (or the solved one) is refused, as in a zip."""
    subs, elsewhere = tmp_path / "subs", tmp_path / "elsewhere"
    (subs / "mallory").mkdir(parents=True)
    elsewhere.mkdir()
    solved = KIT_ROOT / "solution" / "train.ipynb"
    (subs / "mallory" / "train.ipynb").symlink_to(solved)
    (subs / "eve.ipynb").symlink_to(solved)
    (elsewhere / "train.ipynb").write_text(solved.read_text())
    (subs / "trudy").symlink_to(elsewhere, target_is_directory=True)
    found = {s.id: s for s in discover([subs], tmp_path / "intake")}
    link = "is a symbolic link: refused (the grader reads only a submission's own files)"
    assert {sid: s.problem for sid, s in found.items()} == {
        "mallory": f"mallory/train.ipynb {link}", "eve": f"eve.ipynb {link}", "trudy": f"trudy {link}"}
    assert all(s.notebook is None for s in found.values())
    (alone,) = discover([subs / "mallory"], tmp_path / "intake")  # named directly, not found in a folder
    assert alone.problem == f"mallory/train.ipynb {link}"


def test_preload_imports_what_grading_evaluates_with() -> None:
    """A worker imports the evaluation before the first kernel: a file changed later is never what grades."""
    code = ("import sys\nfrom grader.grade import preload\npreload()\n"
            "print(sorted(m for m in ('grader.evaluate', 'grader.measure', 'grader.metrics', 'grader.rebuild', "
            "'grader.simulate', 'grader.rubric', 'solution.network', 'solution.training') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=KIT_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == str(sorted(['grader.evaluate', 'grader.measure', 'grader.metrics', 'grader.rebuild',
                                              'grader.simulate', 'grader.rubric', 'solution.network',
                                              'solution.training']))
