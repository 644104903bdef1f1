"""The CLI is thin: it parses, calls the library and turns outcomes into exit codes.

`check` (grader/selfcheck.py) is a student's: quiet, its feedback page always kept, and an
exit status that tells "graded" (0, whatever the score) from "could not grade" (3).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grader import batch, messages, report, selfcheck
from grader.cli import main
from grader.config import load_config
from grader.results import NOT_YOUR_FAULT, CheckResult, GradeResult
from grader.samples import make_sample

KIT = Path(__file__).resolve().parent.parent


def test_check_refuses_a_missing_notebook(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path / "nope.ipynb"), "--out", str(tmp_path / "out")]) == selfcheck.USAGE == 2
    assert capsys.readouterr().err == f"error: no such notebook: {tmp_path / 'nope.ipynb'}\n"
    assert not (tmp_path / "out").exists()


def test_assign_check_passes_on_the_committed_template(capsys) -> None:
    assert main(["assign", "--check"]) == 0


def test_exit_statuses_are_documented(capsys) -> None:
    assert (selfcheck.GRADED, selfcheck.USAGE, selfcheck.NOT_GRADED) == (0, 2, 3)
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert ("exit status: 0 graded (whatever the score), 2 wrong command line (e.g. no such notebook), "
            "3 not graded (the grading machine could not grade it)") in text
    assert "(default: hw8-check/<the notebook's name>/, one folder per notebook)" in text


def test_how_long_the_course_budget_takes() -> None:
    assert [selfcheck.duration(s) for s in (0.44, 0.99, 1.4)] == ["under a second", "under a second", "1 s"]
    assert [selfcheck.duration(s) for s in (51.4, 89.6, 624, 5340, 5400, 9000)] == \
        ["51 s", "90 s", "10 min", "89 min", "1.5 h", "2.5 h"]
    assert selfcheck.course_time(2000, 0.0257, 0.213) == (
        "time: the course grades at 2000 epochs, which the reference solution trains in about 51 s on the grading "
        "machine (0.0257 s per epoch with the grader's compiled kernels); in your own Jupyter, lava-dl's stock "
        "kernels run: 0.213 s per epoch on the kit's machine (one torch thread, the notebook's own clock), about "
        "7 min for 2000 epochs; the notebook prints your machine's own figure after its first epochs")
    assert selfcheck.course_time(2000, 0.0257) == (
        "time: the course grades at 2000 epochs, which the reference solution trains in about 51 s on the grading "
        "machine (0.0257 s per epoch with the grader's compiled kernels)")
    recorded = json.loads((KIT / "grader" / "student_timing.json").read_text())["s_per_epoch"]
    assert selfcheck.stock_seconds_per_epoch() == recorded  # the notebook's own clock, as the bundle README says
    assert selfcheck.stock_seconds_per_epoch(KIT / "no-such-record.json") is None


def test_quiet_sends_everything_printed_to_the_log(tmp_path: Path, capfd) -> None:
    log = tmp_path / "out" / selfcheck.LOG
    with selfcheck.quiet(log):  # a real process's print() writes to these descriptors
        os.write(1, b"on stdout\n")
        os.write(2, b"on stderr\n")
        subprocess.run([sys.executable, "-c", "import sys; sys.stderr.write('from a child\\n')"], check=True)
    os.write(1, b"after\n")
    assert capfd.readouterr() == ("after\n", "")
    assert log.read_text() == "on stdout\non stderr\nfrom a child\n"


def test_check_says_not_graded_with_its_own_status(tmp_path: Path, monkeypatch, capsys) -> None:
    nb = tmp_path / "mine.ipynb"
    nbformat.write(make_sample("reference"), nb)
    out = tmp_path / "out"

    def grading_machine_error(paths, out_dir, *args, **kwargs):
        (sub,) = batch.discover([Path(p).resolve() for p in paths], Path(out_dir) / batch.INTAKE)
        batch._grader_error(sub, out_dir, args[0], args[1], "Traceback ...\nRuntimeError: x",
                            "the kernel could not start: Kernel died before replying to kernel_info")
        return batch.BatchSummary([sub.id], [], {sub.id: "Traceback ...\nRuntimeError: x"}, Path(out_dir) / "g.csv")

    monkeypatch.setattr(batch, "grade_batch", grading_machine_error)
    assert main(["check", str(nb), "--out", str(out), "--epochs", "20"]) == selfcheck.NOT_GRADED == 3
    assert capsys.readouterr().out.splitlines() == [
        f"checking {nb} at 20 epochs (the course grades at 2000); the grader's own messages go to "
        f"{out / selfcheck.LOG}",
        "  not graded (grading machine error): the kernel could not start: Kernel died before replying to "
        "kernel_info",
        f"  {NOT_YOUR_FAULT}",
        f"details: {out / selfcheck.LOG} and {out / 'mine' / report.FEEDBACK}",
    ]
    assert "grader error on mine:\nTraceback ...\nRuntimeError: x" in (out / selfcheck.LOG).read_text()
    assert (out / "mine" / report.FEEDBACK).is_file()


def _check(notebook: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    return subprocess.run([sys.executable, "-m", "grader", "check", str(notebook), "--epochs", "20"],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_check_is_quiet_and_keeps_its_feedback(tmp_path: Path) -> None:
    nb = tmp_path / "train.ipynb"
    nbformat.write(make_sample("reference"), nb)
    done = _check(nb, tmp_path)
    out = tmp_path / "hw8-check" / f"{tmp_path.name}-train"  # one folder per notebook
    assert (done.returncode, done.stderr) == (0, "")
    lines = done.stdout.splitlines()
    assert lines[0] == (f"checking {nb} at 20 epochs (the course grades at 2000); the grader's own messages go "
                        f"to {out / selfcheck.LOG}")
    assert [line.split()[:2] for line in lines if line.startswith("  [")] == [["[PASS]", name] for name in (
        "execution", "dataset", "output_shape", "hdf5", "export", "loss", "similarity")] + [["[INFO]", "figure"]]
    assert [lines[-1], *(line for line in lines if line.startswith("score"))] == [
        f"feedback: {out / 'train' / report.FEEDBACK}", "score at 20 epochs: 100 / 100",
    ]
    at = next(i for i, line in enumerate(lines) if line.startswith("time: "))
    # wrapped; the calibration this machine grades with (shipped where the fingerprint matches, else local)
    assert " ".join(" ".join(lines[at:-1]).split()) == selfcheck.course_time(
        2000, selfcheck._speed(load_config(), 20), selfcheck.stock_seconds_per_epoch())
    assert (out / "train" / report.FEEDBACK).is_file()
    log = (out / selfcheck.LOG).read_text()
    assert "CUDA" in log or "Prophesee" in log or log == ""  # the noise, if any, went there


@pytest.mark.slow
def test_check_exits_0_whatever_the_score_and_names_the_cell(tmp_path: Path) -> None:
    nb_data = make_sample("raises_halfway")
    nbformat.write(nb_data, tmp_path / "halfway.ipynb")
    done = _check(tmp_path / "halfway.ipynb", tmp_path)
    assert (done.returncode, done.stderr) == (0, "")
    code = [c for c in nb_data.cells if c.cell_type == "code"]
    number = next(i for i, c in enumerate(code, 1) if "training loop not finished yet" in c.source)
    raise_line = "raise RuntimeError('training loop not finished yet')"
    line = code[number - 1].source.splitlines().index(raise_line) + 1
    printed = done.stdout.splitlines()
    at = next(i for i, line_ in enumerate(printed) if "] execution" in line_)
    ends = next(i for i in range(at + 1, len(printed)) if printed[i].startswith("  ["))
    execution = " ".join(" ".join(printed[at:ends]).split())  # the message wraps over lines
    assert execution == (
        f"[FAIL] execution 0/10 the notebook stopped: code cell {number} (In [{number}], "
        f"\"{raise_line}\") raised RuntimeError at line {line} `{raise_line}`: training loop not finished yet")
    data = json.loads((tmp_path / "hw8-check" / "halfway" / "halfway" / report.RESULTS).read_text())
    assert f"score at 20 epochs: {data['score']:g} / 100" in done.stdout.splitlines()


def test_one_check_folder_per_notebook(tmp_path: Path) -> None:
    assert selfcheck.check_id(Path("assignment/train.ipynb")) == "assignment-train"
    assert selfcheck.check_id(tmp_path / "hw8-p2" / "train.ipynb") == "hw8-p2-train"
    assert selfcheck.check_id(Path("mine v2.ipynb")) == "mine_v2"
    assert selfcheck.default_out(Path("my_train.ipynb")) == Path("hw8-check") / "my_train"


def _summary(*checks: CheckResult, flags: list[str] | None = None) -> list[str]:
    flags = flags if flags is not None else [f for c in checks for f in c.flags]
    return GradeResult("ann", "0" * 64, list(checks), flags=flags).summary_lines(width=100)


UNREADABLE = "Trained/network.net is not a readable HDF5 file: unable to open the file (truncated file)"


def test_the_terminal_says_each_message_once_and_an_unscored_item_is_no_fail() -> None:
    lines = _summary(
        CheckResult("export", 0, 10, f"{messages.EXPORT_BEFORE_FORWARD}; {UNREADABLE}"),
        CheckResult("hdf5", 0, 20, UNREADABLE),
        CheckResult("loss", 0, 20, f"the loss was not measured: the export was not evaluated because {UNREADABLE}"),
        CheckResult("figure", 0, 0, "the executed notebook shows no figure"))
    text = "\n".join(lines)
    assert text.count("is not a readable HDF5 file") == 1
    assert "  [FAIL] hdf5              0/20  (the same as export above)" in lines
    assert ("[FAIL] loss 0/20 the loss was not measured: the export was not evaluated (export above says why) "
            "[INFO] figure") in " ".join(text.split())  # wrapped over two lines
    assert lines[-1] == "  [INFO] figure            0/0   the executed notebook shows no figure"
    assert all(len(line) <= 100 for line in lines)


def test_clauses_in_brackets_stay_whole() -> None:
    from grader.results import clauses_of

    assert clauses_of("loss 82628.6 (reference: 82628.6; full points up to 90891.5); `a; b` x; y") == [
        "loss 82628.6 (reference: 82628.6; full points up to 90891.5)", "`a; b` x", "y"]


def test_a_flag_has_its_own_line_and_its_explanation_under_it() -> None:
    why = "code cell 5 sets `epochs` after the `parameters` cell, which overrides the grader's budget of 20 epochs"
    flag = "budget overridden in the notebook (budget 20; set in code cell 5)"
    lines = _summary(CheckResult("execution", 10, 10, f"the notebook ran to the end in 12 s; {why}", flags=[flag]),
                     flags=[flag, "an instructor's flag without a check"])
    assert lines[0] == "  [PASS] execution        10/10  the notebook ran to the end in 12 s"
    assert lines[1] == f"  [FLAG] {flag}"
    assert " ".join(line.strip() for line in lines[2:-1]) == why and all(l.startswith(" " * 9) for l in lines[2:-1])
    assert lines[-1] == "  [FLAG] an instructor's flag without a check"

