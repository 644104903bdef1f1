"""The kit's numerical mode, the fingerprint that proves it, and the honest fallback to local calibrations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from grader import calibration, fingerprint
from grader.execute import _kernel_env
from solution import numerics

ROOT = Path(__file__).resolve().parent.parent


def test_the_tests_run_in_the_pinned_mode_read_back_from_torch_and_mkl() -> None:
    info = numerics.describe()
    assert info["mode"] == numerics.NAME == "mkl-compatible/avx2/1-thread"
    assert info["torch_cpu_capability"] == "AVX2" and info["mkl_cnr"] == "COMPATIBLE"
    assert info["in_force"] is True
    assert numerics.label(info) == "mkl-compatible/avx2/1-thread (torch AVX2, MKL CNR COMPATIBLE)"
    for name, value in numerics.PINNED.items():
        assert os.environ[name] == value


def test_kernels_inherit_the_mode() -> None:
    env = _kernel_env()
    assert {k: env[k] for k in numerics.PINNED} == numerics.PINNED


def _python(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in numerics.PINNED and k != numerics.SWITCH}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], cwd=ROOT, env={**base, **env},
                          capture_output=True, text=True, timeout=120, check=True)
    return done.stdout.strip().splitlines()[-1]


def test_importing_the_kit_first_pins_a_fresh_process() -> None:
    assert _python("import grader, torch; from solution import numerics; print(numerics.label())") \
        == "mkl-compatible/avx2/1-thread (torch AVX2, MKL CNR COMPATIBLE)"


def test_a_process_that_computed_before_the_pin_is_reported_not_in_force() -> None:
    code = ("import torch; torch.mm(torch.ones(4, 4), torch.ones(4, 4)).sum()\n"
            "import grader; from solution import numerics; print(numerics.label())")
    assert _python(code).startswith("mkl-compatible/avx2/1-thread NOT in force (torch ")
    assert _python(code).endswith(", asked for AVX2 and COMPATIBLE)")


def test_native_mode_keeps_one_thread_and_the_libraries_own_choice() -> None:
    code = "import grader, os; from solution import numerics; print(numerics.requested(), os.environ.get('MKL_CBWR'), os.environ['OMP_NUM_THREADS'])"
    assert _python(code, S2S_NUMERICS="native") == "native None 1"


# --- fingerprint and calibrations --------------------------------------------------------------

def test_the_shipped_fingerprint_and_calibrations_record_the_pinned_mode() -> None:
    shipped = fingerprint.shipped()
    assert shipped is not None and shipped.epochs == fingerprint.EPOCHS and shipped.seed == 0
    assert shipped.numerics["mode"] == numerics.NAME and shipped.numerics["in_force"] is True
    for epochs in (20, 50, 200, 2000):
        cal = calibration._read(calibration.SHIPPED / calibration._name(epochs, 0), "shipped")
        assert cal is not None and cal.numerics["mode"] == numerics.NAME and cal.numerics["in_force"]
        assert cal.fingerprint == shipped.digest


def test_this_machine_reproduces_the_shipped_fingerprint() -> None:
    verdict = fingerprint.check()
    assert verdict.local.digest == verdict.shipped.digest, verdict.sentence
    assert verdict.matches
    assert verdict.sentence == (
        "this machine reproduces the shipped reference run bit for bit "
        "(mkl-compatible/avx2/1-thread (torch AVX2, MKL CNR COMPATIBLE)): shipped calibrations in use (a notebook "
        "whose layers the kit's orders do not cover trains in the libraries' orders, which it says in its output: "
        "graded the same way, its own numbers may differ on another CPU)")


def test_a_machine_that_does_not_reproduce_it_grades_with_local_calibrations_only(monkeypatch, tmp_path) -> None:
    real = fingerprint.check()
    other = replace(real.local, digest="0" * 64, numerics={**real.local.numerics, "cpu": "Other CPU",
                                                            "mkl_cnr": "OFF", "in_force": False})
    verdict = fingerprint.Verdict(matches=False, local=other, shipped=real.shipped)
    monkeypatch.setattr(fingerprint, "check", lambda: verdict)
    monkeypatch.setattr(calibration, "CACHE", tmp_path / "cache")
    assert verdict.sentence == (
        "this machine does not reproduce the shipped reference run (mkl-compatible/avx2/1-thread NOT in force "
        "(torch AVX2, MKL CNR OFF, asked for AVX2 and COMPATIBLE), CPU 'Other CPU'; shipped from "
        "mkl-compatible/avx2/1-thread (torch AVX2, MKL CNR COMPATIBLE), CPU 'AMD EPYC'): every calibration "
        "of this batch is computed here and recorded as local")

    assert calibration.load(20, 0) is None  # the shipped one is not used here
    cal = calibration.get(20, 0)
    assert cal.source == "local" and cal.fingerprint == "0" * 64
    assert (tmp_path / "cache" / "0000000000000000" / "epochs-20-seed-0.json").is_file()
    assert calibration.load(20, 0) == cal  # cached, still local
    assert calibration.describe_source(cal) == "calibration at 20 epochs: local; " + verdict.sentence
    # the machine computes the same numbers as the shipped file (it is this one, in truth)
    assert calibration.compare_with_shipped(cal) == ("identical to the shipped calibration, bit for bit", True)


def test_a_matching_machine_uses_the_shipped_calibration() -> None:
    cal = calibration.get(200, 0)
    shipped = json.loads((calibration.SHIPPED / "epochs-200-seed-0.json").read_text())
    assert cal.source == "shipped" and cal.loss == shipped["loss"] == 43770.66015625
    assert calibration.describe_source(cal).startswith("calibration at 200 epochs: shipped; this machine reproduces")


def test_compare_names_the_figures_that_differ() -> None:
    cal = calibration._read(calibration.SHIPPED / calibration._name(200, 0), "local")
    line, same = calibration.compare_with_shipped(replace(cal, loss=43357.6953125))
    assert (line, same) == ("DIFFERS from the shipped calibration in loss "
                            "(loss 43357.6953125 here, 43770.66015625 shipped)", False)
    assert calibration.compare_with_shipped(replace(cal, epochs=7)) == (
        "the kit ships no calibration for this budget", False)


@pytest.mark.slow
def test_calibrate_200_reproduces_the_shipped_calibration_bit_for_bit() -> None:
    cal = calibration.compute(200, 0)
    assert calibration.compare_with_shipped(cal) == ("identical to the shipped calibration, bit for bit", True)
