"""The CLI is thin: it parses, calls the library and turns outcomes into exit codes."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.cli import main
from grader.samples import make_sample


def test_check_refuses_a_missing_notebook(tmp_path: Path, capsys) -> None:
    assert main(["check", str(tmp_path / "nope.ipynb")]) == 2
    assert "no such notebook" in capsys.readouterr().err


def test_assign_check_passes_on_the_committed_template(capsys) -> None:
    assert main(["assign", "--check"]) == 0


@pytest.mark.slow
def test_check_prints_what_passes_and_fails(tmp_path: Path, capsys) -> None:
    nb = make_sample("wrong_hidden")
    nbformat.write(nb, tmp_path / "train.ipynb")
    code = main(["check", str(tmp_path / "train.ipynb"), "--epochs", "20", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 1
    assert "[PASS] execution" in out and "[PASS] dataset" in out
    assert "[FAIL] hdf5" in out and "`layer/0/outFeatures` is 128, expected 256" in out
    assert "score at 20 epochs: 35 / 100" in out
