"""Grader faults are never the student's: each is provoked, and comes out "not graded", with no score.

A kernel that cannot start, the grader's own preamble that cannot import the
kit, a sandbox that cannot be set up, an exception inside the grader: each
submission so hit gets "not graded (grading machine error): <what failed>",
no score in results.json or the gradebook, a feedback page saying so; the
batch grades the others as usual, and the next run retries it. A notebook that
itself imports a missing module, or kills its own kernel, stays the student's
fault (graded, with its message).

Slow: real kernels, one batch in this process (workers=0) so that the faults,
provoked by monkeypatching, reach exactly the submission each is meant for.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest

import grader.execute
import grader.grade
import grader.sandbox
from grader import calibration, report
from grader.batch import grade_batch
from grader.config import load_config
from grader.sandbox import why_no_sandbox

pytestmark = pytest.mark.slow

EPOCHS = 2
NOT_GRADED = "not graded (grading machine error): "
FAKE_BWRAP = "bwrap: setting up uid map: Permission denied"
PREAMBLE_KIT = ("the grader's preamble cell failed: ModuleNotFoundError: No module named 'grader.missing_probe' "
                "(the kernel cannot import the kit's own code: the sandbox or the kernel's PYTHONPATH does not show "
                "the kit's grader/ and solution/ packages)")
STUDENT_CASES = {
    "fine": "x = 1",
    "imports_missing": "import no_such_module_hw8",
    "kills_kernel": "import os\nos._exit(3)",
}
FAULTS = ("kernel_cannot_start", "grader_module_missing", "grader_raises")


def _config(sandbox: str = "off"):
    return load_config().with_budget(accelerate=False).with_limits(sandbox=sandbox)


def _write(subs: Path, name: str, source: str) -> None:
    (subs / name).mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), subs / name / "train.ipynb")


def _faults(monkeypatch) -> None:
    """Each fault hits only the submission named for it."""
    real_km, real_execute, real_probe = grader.execute.kernel_manager, grader.grade.execute, grader.grade.artifacts.read_probe

    def kernel_manager(workdir, limits):
        km = real_km(workdir, limits)
        if Path(workdir).name == "kernel_cannot_start":  # the kernel command dies at once, as a broken bwrap does
            km.prefix = [sys.executable, "-c", f"import sys; sys.stderr.write({FAKE_BWRAP!r} + '\\n'); sys.exit(1)"]
        return km

    def execute(nb, workdir, *args, **kwargs):
        if Path(workdir).name != "grader_module_missing":
            return real_execute(nb, workdir, *args, **kwargs)
        with monkeypatch.context() as m:  # the kernel cannot import the grader's module
            m.setattr(grader.execute, "PROBE_MODULE", "grader.missing_probe")
            return real_execute(nb, workdir, *args, **kwargs)

    def read_probe(workdir, limits):
        if Path(workdir).name == "grader_raises":
            raise RuntimeError("the probe reader broke")
        return real_probe(workdir, limits)

    monkeypatch.setattr(grader.execute, "kernel_manager", kernel_manager)
    monkeypatch.setattr(grader.grade, "execute", execute)
    monkeypatch.setattr(grader.grade.artifacts, "read_probe", read_probe)


def _rows(out: Path) -> dict[str, list[str]]:
    import csv
    import io

    rows = list(csv.reader(io.StringIO((out / report.GRADEBOOK).read_text())))
    return {row[0]: row for row in rows[1:]}


def test_grader_faults_are_not_graded_and_retried(tmp_path: Path, monkeypatch) -> None:
    subs, out = tmp_path / "subs", tmp_path / "out"
    for name, source in STUDENT_CASES.items():
        _write(subs, name, source)
    for name in FAULTS:
        _write(subs, name, "x = 1")
    calibration.get(EPOCHS, 0, accelerate=False)
    with monkeypatch.context() as m:
        _faults(m)
        summary = grade_batch([subs], out, _config(), EPOCHS, workers=0, progress=False)
    assert sorted(summary.errors) == sorted(FAULTS)  # the batch went on past each of them
    results = {r.submission_id: r for r in report.collect(out)}
    assert sorted(results) == sorted([*STUDENT_CASES, *FAULTS])

    start = results["kernel_cannot_start"].flags
    assert start == [f"{NOT_GRADED}the kernel could not start: Kernel died before replying to kernel_info "
                     f"(kernel log: {FAKE_BWRAP})"]
    assert results["grader_module_missing"].flags == [NOT_GRADED + PREAMBLE_KIT]
    assert results["grader_raises"].flags == [
        f"{NOT_GRADED}internal error in the grader: RuntimeError: the probe reader broke"]
    rows = _rows(out)
    for name in FAULTS:
        r = results[name]
        assert r.is_grader_error and r.score is None and r.checks == []
        assert rows[name][1:3] == ["", ""] and set(rows[name][3:-6]) <= {""}  # no score, not a 0
        assert "score" not in r.to_gradescope()
        page = (out / name / report.FEEDBACK).read_text()
        assert r.flags[0].replace("'", "&#x27;") in page and "not of your notebook" in page
        assert "Traceback" in r.measurements["grader_error"]  # for the instructor

    # the student's own faults are graded, with their messages
    assert results["fine"].score == 10 and rows["fine"][1:3] == ["10", "100"]
    assert results["imports_missing"].check("execution").message == (
        'the notebook stopped: code cell 1 (In [1], "import no_such_module_hw8") raised ModuleNotFoundError at '
        "line 1 `import no_such_module_hw8`: No module named 'no_such_module_hw8'")
    assert results["kills_kernel"].check("execution").message == (
        'the notebook stopped: code cell 1 (In [1], "import os") killed the kernel: the kernel exited with status 3 '
        "(os._exit or sys.exit outside a cell's main thread)")
    assert results["imports_missing"].score == results["kills_kernel"].score == 0

    # the next run retries the grader's faults (fixed now) and trusts the grades
    again = grade_batch([subs], out, _config(), EPOCHS, workers=0, progress=False)
    assert sorted(again.graded) == sorted(FAULTS) and sorted(again.skipped) == sorted(STUDENT_CASES)
    assert again.errors == {}
    assert {r.submission_id: r.score for r in report.collect(out)} == {
        "fine": 10, "imports_missing": 0, "kills_kernel": 0,
        "kernel_cannot_start": 10, "grader_module_missing": 10, "grader_raises": 10}


@pytest.mark.skipif(why_no_sandbox() is not None, reason=f"bubblewrap cannot sandbox here: {why_no_sandbox()}")
def test_a_sandbox_that_cannot_be_set_up_is_the_machines_fault(tmp_path: Path, monkeypatch) -> None:
    subs, out = tmp_path / "subs", tmp_path / "out"
    for name in ("cannot_see_grader", "bwrap_fails"):
        _write(subs, name, "x = 1")
    calibration.get(EPOCHS, 0, accelerate=False)
    real_prefix = grader.sandbox.bwrap_prefix

    def bwrap_prefix(bwrap, workdir, runtime_dir, privileged=False):
        if Path(workdir).name == "bwrap_fails":
            return [bwrap, "--no-such-option", *real_prefix(bwrap, workdir, runtime_dir, privileged)[1:]]
        return real_prefix(bwrap, workdir, runtime_dir, privileged)

    with monkeypatch.context() as m:
        # the case: the sandbox does not show the kit's grader/ (the kernel starts through grader.limits)
        m.setattr(grader.sandbox, "KIT_PATHS", tuple(p for p in grader.sandbox.KIT_PATHS if p != "grader"))
        m.setattr(grader.sandbox, "bwrap_prefix", bwrap_prefix)
        summary = grade_batch([subs], out, _config("require"), EPOCHS, workers=0, progress=False)
    assert sorted(summary.errors) == ["bwrap_fails", "cannot_see_grader"]
    results = {r.submission_id: r for r in report.collect(out)}
    assert results["bwrap_fails"].flags == [
        f"{NOT_GRADED}the kernel could not start: Kernel died before replying to kernel_info "
        "(kernel log: bwrap: Unknown option --no-such-option)"]
    (flag,) = results["cannot_see_grader"].flags
    assert flag.startswith(f"{NOT_GRADED}the kernel could not start: Kernel died before replying to kernel_info "
                           "(kernel log: ") and "No module named 'grader'" in flag
    assert all(r.score is None for r in results.values())
