"""Sessions of the kit. All of them share ONE pinned environment in .nox/kit.

torch's CUDA build weighs about 5.5 GB: one environment per session would
multiply that, so every session here is `venv_backend="none"` and runs the
kit's own interpreter, which `_kit_python` builds once (and rebuilds when
requirements/lock.txt, pyproject.toml or the lava-dl pin change).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import nox

ROOT = Path(__file__).resolve().parent
KIT_ENV = ROOT / ".nox" / "kit"
LOCK = ROOT / "requirements" / "lock.txt"
LAVA_DL = "lava-dl==0.6.0"

nox.options.sessions = ["tests"]
nox.options.default_venv_backend = "none"


def _stamp() -> str:
    h = hashlib.sha256()
    for path in (LOCK, ROOT / "pyproject.toml"):
        h.update(path.read_bytes())
    h.update(LAVA_DL.encode())
    return h.hexdigest()


def _kit_python(session: nox.Session) -> str:
    """Build (once) and return the interpreter of the shared kit environment."""
    python = KIT_ENV / "bin" / "python"
    stamp_file = KIT_ENV / ".kit-stamp"
    stamp = _stamp()
    if not (python.exists() and stamp_file.exists() and stamp_file.read_text() == stamp):
        session.log(f"building the kit environment in {KIT_ENV} (one-off, a few minutes)")
        session.run(sys.executable, "-m", "venv", "--clear", str(KIT_ENV), external=True)
        pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check", "-q"]
        session.run(*pip, "-r", str(LOCK), external=True)
        # lava-dl 0.6.0 declares Python <3.11 and pins torch 2.3: install it beside our pins.
        session.run(*pip, "--no-deps", "--ignore-requires-python", LAVA_DL, external=True)
        session.run(*pip, "--no-deps", "--no-build-isolation", "-e", str(ROOT), external=True)
        stamp_file.write_text(stamp)
    return str(python)


def _with_extras(session: nox.Session, pins: str) -> str:
    """The kit's interpreter with a tool's own pins added (JupyterLab, mutmut): never in the main lock."""
    python = _kit_python(session)
    session.run(python, "-m", "pip", "install", "-q", "-r", pins, external=True)
    return python


def _run(session: nox.Session, *args: str, **env: str) -> None:
    python = _kit_python(session)
    session.run(python, *args, external=True, env={"PYTHONHASHSEED": "0", **env})


@nox.session
def env(session: nox.Session) -> None:
    """Build the shared environment only."""
    _kit_python(session)
    session.log(str(KIT_ENV))


@nox.session
def tests(session: nox.Session) -> None:
    """The whole suite, slow end-to-end tests included (what CI runs)."""
    _run(session, "-m", "pytest", "--runslow", *session.posargs)


@nox.session
def quick(session: nox.Session) -> None:
    """The fast tests only."""
    _run(session, "-m", "pytest", *session.posargs)


@nox.session
def grade(session: nox.Session) -> None:
    """Grade submissions: `nox -s grade -- PATH... [--out DIR]`; no path grades the samples."""
    _run(session, "-m", "grader", "grade", *session.posargs)


CHECK_STATUSES = (0, 2, 3)  # grader.selfcheck: graded, wrong command line, not graded


@nox.session
def check(session: nox.Session) -> None:
    """Student self-check at a small budget (default: assignment/train.ipynb); exits with the check's own
    status (0 graded, 2 wrong command line, 3 not graded), which nox alone would turn into 1."""
    import subprocess

    python = _kit_python(session)
    session.log(f"{python} -m grader check {' '.join(session.posargs)}")
    status = subprocess.run([python, "-m", "grader", "check", *session.posargs],
                            env={**os.environ, "PYTHONHASHSEED": "0"}).returncode
    if status:
        session.log(f"check: exit status {status}")
        sys.exit(status if status in CHECK_STATUSES else 1)  # past nox's summary: the status as documented


@nox.session
def assign(session: nox.Session) -> None:
    """Regenerate assignment/train.ipynb from solution/train.ipynb."""
    _run(session, "-m", "grader", "assign", *session.posargs)


@nox.session
def data(session: nox.Session) -> None:
    """Regenerate data/input_hw.bs1 and data/output_hw.bs1 from the original pair."""
    _run(session, str(ROOT / "data" / "derive.py"), *session.posargs)


@nox.session
def reference(session: nox.Session) -> None:
    """Full reference run (2000 epochs on CPU); writes solution/reference_run.json."""
    _run(session, "-m", "grader.reference", *session.posargs)


@nox.session
def calibrate(session: nox.Session) -> None:
    """Recompute the rubric's calibration for the default budgets."""
    _run(session, "-m", "grader", "calibrate", *session.posargs)


@nox.session
def bench(session: nox.Session) -> None:
    """Print the speed figures (one run, medians and ratios)."""
    _run(session, "-m", "grader.bench", *session.posargs)


@nox.session
def gradescope(session: nox.Session) -> None:
    """Write dist/gradescope-autograder.zip, the bundle to upload to Gradescope (`-- --timeout-s S`)."""
    _run(session, "-m", "grader.gradescope", "build", *session.posargs)


@nox.session
def release(session: nox.Session) -> None:
    """Write dist/hw8-p2-student.zip, the student bundle (`-- --out PATH`)."""
    _run(session, "-m", "grader.release", *session.posargs)


@nox.session
def lab(session: nox.Session) -> None:
    """JupyterLab on assignment/ in the kit's environment (adds requirements/lab.txt's pins to it)."""
    python = _with_extras(session, "requirements/lab.txt")
    as_root = ["--allow-root"] if hasattr(os, "geteuid") and os.geteuid() == 0 else []  # containers, CI machines
    session.run(python, "-m", "jupyterlab", f"--ServerApp.root_dir={ROOT / 'assignment'}", *as_root,
                *session.posargs, external=True)


@nox.session
def mutate(session: nox.Session) -> None:
    """mutmut over the checks, scoring and HDF5 validation, against their fast tests."""
    python = _with_extras(session, "requirements/mutate.txt")
    env = {"PYTHONHASHSEED": "0"}
    if not session.posargs:  # a whole run starts afresh: mutmut keeps old verdicts when tests change
        import shutil

        shutil.rmtree(ROOT / "mutants", ignore_errors=True)
    # `nox -s mutate -- NAME...` re-tests the named mutants only, keeping the others' verdicts.
    session.run(python, str(ROOT / "tests" / "mutmut_run.py"), "run", *session.posargs, external=True, env=env)
    session.run(str(Path(python).parent / "mutmut"), "results", external=True, env=env)
