"""The student bundle (nox -s release) and assignment/ both run where they sit.

Fast: the zip's members, checksums and README; the refusals; assignment/'s links; the names and
files the notebook, the READMEs and solution/homework.py agree on. Slow: the bundle unpacked into
an empty folder runs the solved notebook (without the kit) and is graded 100 at a small budget,
and the template runs in assignment/ up to its first placeholder.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader import handout, messages, release
from solution import homework

KIT = Path(__file__).resolve().parent.parent
BUNDLE_EPOCHS = 20  # a shipped calibration: the reference beats a silent output from ~10 epochs on
FILES = ["train.ipynb", "README.md", "requirements.txt", "input_hw.bs1", "output_hw.bs1", "SHA256SUMS",
         "hw8_check.py", "hw8_messages.py", "hw8_homework.py", "hw8_numerics.py",
         *(f"hw8_exact/{name}" for name in ("__init__.py", "dense.py", "elementwise.py", "kernels.py", "observe.py",
                                            "order.py", "patch.py")),
         *(f"hw8_accel/{name}" for name in ("__init__.py", "_siblings.py", "cache.py", "dynamics.py", "filter.py",
                                            "kernels.py", "patch.py"))]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return release.build_zip(tmp_path_factory.mktemp("dist") / release.ZIP_NAME)


def _read(bundle: Path, name: str) -> bytes:
    with zipfile.ZipFile(bundle) as zf:
        return zf.read(f"{release.FOLDER}/{name}")


# --- the zip -------------------------------------------------------------------------------


def test_members_in_one_folder(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as zf:
        assert zf.namelist() == [f"hw8-p2/{name}" for name in FILES]
        assert zf.testzip() is None


def test_the_template_and_checks_are_the_kits(bundle: Path) -> None:
    assert _read(bundle, "train.ipynb") == (KIT / "assignment" / "train.ipynb").read_bytes()
    assert _read(bundle, "hw8_check.py") == (KIT / "grader" / "hw8_check.py").read_bytes()
    assert _read(bundle, "hw8_messages.py") == (KIT / "grader" / "messages.py").read_bytes()
    assert _read(bundle, "hw8_homework.py") == (KIT / "solution" / "homework.py").read_bytes()
    assert _read(bundle, "hw8_numerics.py") == (KIT / "solution" / "numerics.py").read_bytes()
    assert _read(bundle, "hw8_exact/kernels.py") == (KIT / "grader" / "exact" / "kernels.py").read_bytes()


def test_data_and_their_checksums(bundle: Path) -> None:
    recorded = dict(reversed(line.split()) for line in (KIT / "data" / "SHA256SUMS").read_text().splitlines())
    sums = _read(bundle, "SHA256SUMS").decode()
    assert sums == (f"{recorded['input_hw.bs1']}  input_hw.bs1\n"
                    f"{recorded['output_hw.bs1']}  output_hw.bs1\n")  # sha256sum -c's format
    for name in homework.DATA_FILES:
        assert _sha256(_read(bundle, name)) == recorded[name]
        assert _read(bundle, name) == (KIT / "data" / name).read_bytes()


def test_reproducible(bundle: Path, tmp_path: Path) -> None:
    assert release.build_zip(tmp_path / "again.zip").read_bytes() == bundle.read_bytes()


def test_readme_says_how_long_what_to_hand_in_and_how_to_check(bundle: Path) -> None:
    text = _read(bundle, "README.md").decode()
    timing = json.loads((KIT / "grader" / "student_timing.json").read_text())
    assert (f"{timing['cores']}-core `{timing['cpu']}` (`grep -m1 'model name' /proc/cpuinfo`), one torch thread, "
            f"lava-dl 0.6.0 on the CPU with torch {timing['versions']['torch']}: {timing['s_per_epoch']:.3f} s an epoch, "
            f"about {messages.duration(2000 * timing['s_per_epoch'])} for 2000 epochs") in text
    assert "10.4 minutes" not in text and "0.312" not in text  # the stock reference run's busy figure is gone
    assert "it prints the time an epoch takes on your machine" in text
    assert f"\n    {release.setup_command('posix')}\n" in text and f"\n    {release.setup_command('windows')}\n" in text
    assert release.setup_command("posix") == (
        "python3 -m venv .venv && .venv/bin/python -m pip install -r requirements.txt && "
        ".venv/bin/python -m pip install --no-deps --ignore-requires-python lava-dl==0.6.0")
    assert "    !pip install -q --no-deps --ignore-requires-python lava-dl==0.6.0\n" in text  # Colab keeps its own
    assert ".venv/bin/jupyter lab train.ipynb" in text
    assert "What was run and what is argued" in text
    names = re.search(r"Keep the handout's names \(([^)]*)\)", text).group(1)
    assert tuple(re.findall(r"`(\w+)`", names)) == homework.HANDOUT_NAMES
    written = re.findall(r"^- `(Trained/[\w.]+)`", text, re.MULTILINE)
    assert written == [str(path) for path in homework.OUTPUT_FILES]
    for call in ("hw8_check.dataset(training_set)", "hw8_check.network(net)", "hw8_check.loss(error)",
                 "hw8_check.export(trained_folder, net)"):
        assert call in text
    assert "sha256sum -c SHA256SUMS" in text


def _pins(text: str) -> dict[str, str]:
    pins = {}
    for line in text.splitlines():
        spec = line.split("#")[0].split(";")[0].strip()
        if "==" in spec:
            name, version = spec.split("==")
            pins[re.sub(r"[-_.]+", "-", name).lower()] = version
    return pins


def test_the_students_pins_are_the_kits(bundle: Path) -> None:
    """The bundle's requirements.txt: the notebook's and JupyterLab's needs, each at the kit's own version."""
    shipped = _read(bundle, "requirements.txt").decode()
    assert shipped == (KIT / "requirements" / "student.txt").read_text()
    kit = {**_pins((KIT / "requirements" / "lock.txt").read_text()), **_pins((KIT / "requirements" / "lab.txt").read_text())}
    pins = _pins(shipped)
    assert {name: version for name, version in pins.items() if kit.get(name) != version} == {}
    for needed in ("torch", "torchvision", "numpy", "h5py", "matplotlib", "opencv-python-headless", "pillow",
                   "ipykernel", "jupyterlab"):
        assert needed in pins, needed
    assert not [name for name in pins if name.startswith(("nvidia-", "cuda-", "triton"))]  # torch's own, per platform
    assert "lava-dl" not in pins and "pytest" not in pins  # lava-dl goes in with --no-deps; the kit's tools stay out


def test_readme_follows_the_course_budget() -> None:
    text = release.student_readme(course_epochs=500)
    per_epoch = release.Timing.load().s_per_epoch
    assert f"about {messages.duration(500 * per_epoch)} for 500 epochs" in text
    assert "then run the full 500 epochs for the notebook you hand in" in text


def test_a_stale_template_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stale = tmp_path / "train.ipynb"
    stale.write_text((KIT / "assignment" / "train.ipynb").read_text().replace("YOUR CODE HERE", "x"))
    monkeypatch.setattr(release, "TEMPLATE", stale)
    with pytest.raises(release.ReleaseError) as err:
        release.build_zip(tmp_path / "out.zip")
    assert str(err.value) == f"{stale} is stale: regenerate it with `nox -s assign`"
    assert not (tmp_path / "out.zip").exists()


def test_damaged_data_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    damaged = tmp_path / "output_hw.bs1"
    data = bytearray((KIT / "data" / "output_hw.bs1").read_bytes())
    data[100] ^= 1
    damaged.write_bytes(bytes(data))
    monkeypatch.setitem(release.DATA_FILES, "output_hw.bs1", damaged)
    assert release.main(["--out", str(tmp_path / "out.zip")]) == 1
    assert capsys.readouterr().err == (
        f"release: {damaged} has SHA-256 {_sha256(bytes(data))}, but {handout.CHECKSUMS} records "
        "058ad994463caa4e38bb1228fc28c83ae89129ae97134e21dc852dcb0d6ec898: restore it "
        "(`nox -s data -- --check` says more)\n"
    )


def test_main_lists_what_it_wrote(tmp_path: Path, capsys) -> None:
    out = tmp_path / "student.zip"
    assert release.main(["--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[-1] for line in lines[:-1]] == [f"hw8-p2/{name}" for name in FILES]
    assert lines[-1] == f"release: wrote {out}"


# --- assignment/ runs where it sits: one copy of each file, linked ---------------------------


def test_assignment_links_to_the_one_copy() -> None:
    expected = sorted({homework.NOTEBOOK, *map(handout.top_level, handout.beside_notebook())})
    assert sorted(p.name for p in handout.ASSIGNMENT_DIR.iterdir() if p.name not in {"Trained", ".ipynb_checkpoints"}
                  and not p.name.endswith(".gif")) == expected
    for name, package in handout.PACKAGES.items():  # a package is one link to its folder
        link = handout.ASSIGNMENT_DIR / name
        assert link.is_symlink() and not os.path.isabs(os.readlink(link)) and link.resolve() == package.resolve()
    for name, source in handout.beside_notebook().items():
        if "/" in name:
            assert (handout.ASSIGNMENT_DIR / name).resolve() == source.resolve()
            continue
        link = handout.ASSIGNMENT_DIR / name
        assert link.is_symlink(), f"assignment/{name} should be a link to {source}"
        target = os.readlink(link)
        assert not os.path.isabs(target), f"assignment/{name} -> {target}: relative, so that a clone elsewhere works"
        assert link.resolve() == source.resolve()


def test_assignment_data_match_the_checksums() -> None:
    recorded = dict(reversed(line.split()) for line in handout.CHECKSUMS.read_text().splitlines())
    for name in homework.DATA_FILES:
        assert _sha256((handout.ASSIGNMENT_DIR / name).read_bytes()) == recorded[name]


def test_the_grader_gives_the_notebook_its_checks(tmp_path: Path) -> None:
    from grader.execute import prepare_workdir

    prepare_workdir(tmp_path / "work")
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == sorted(
        {handout.top_level(n) for n in handout.beside_notebook()})
    for name, source in handout.beside_notebook().items():
        assert (tmp_path / "work" / name).read_bytes() == source.read_bytes()


# --- one list of names and files: homework.py, the notebook, the READMEs ------------------------


def test_the_notebook_and_the_kit_readme_name_what_homework_py_says() -> None:
    intro = nbformat.read(KIT / "solution" / "train.ipynb", as_version=4).cells[0].source
    names = re.search(r"Keep the handout's variable names \(([^)]*)\)", intro).group(1)
    assert tuple(re.findall(r"`(\w+)`", names)) == homework.HANDOUT_NAMES
    assert re.findall(r"^\* `(Trained/[\w.]+)`", intro, re.MULTILINE) == [str(p) for p in homework.OUTPUT_FILES]
    students = (KIT / "docs" / "students.md").read_text()
    names = re.search(r"Keep the handout's names \(([^)]*)\)", students.replace("\n", " ")).group(1)
    assert tuple(re.findall(r"`(\w+)`", names)) == homework.HANDOUT_NAMES
    assert re.findall(r"`(Trained/[\w.]+)`", students) == [str(p) for p in homework.OUTPUT_FILES]


# --- it runs ---------------------------------------------------------------------------------

WITHOUT_THE_KIT = """import sys, random
sys.modules['grader'] = None    # a student's machine has no kit: importing it would fail
sys.modules['solution'] = None
import numpy as np, torch
torch.set_num_threads(1); random.seed(0); np.random.seed(0); torch.manual_seed(0)  # as the grader's preamble"""


def _with_budget(nb: nbformat.NotebookNode, epochs: int) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(nb)
    at = next(i for i, c in enumerate(nb.cells) if homework.PARAMETERS_TAG in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(f"epochs = {epochs}\nmake_animations = False"))
    return nb


def _printed(nb: nbformat.NotebookNode) -> list[str]:
    return [line for cell in nb.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
            if out.get("output_type") == "stream" and out.get("name") == "stdout" for line in out.text.splitlines()]


@pytest.mark.slow
def test_bundle_runs_where_it_sits_and_grades_100(bundle: Path, tmp_path: Path) -> None:
    from nbclient import NotebookClient

    from grader.batch import grade_batch
    from grader.config import load_config

    empty = tmp_path / "unpacked"
    empty.mkdir()
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(empty)
    folder = empty / release.FOLDER
    shutil.copyfile(KIT / "solution" / "train.ipynb", folder / "train.ipynb")  # the student's work, done

    nb = _with_budget(nbformat.read(folder / "train.ipynb", as_version=4), BUNDLE_EPOCHS)
    nb.cells.insert(0, nbformat.v4.new_code_cell(WITHOUT_THE_KIT))
    nb.cells.append(nbformat.v4.new_code_cell("print('checks from', hw8_check.__file__)"))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()

    checks = [line for line in _printed(nb) if line.startswith(("✓", "✗"))]
    assert checks == [
        f"✓ mode: {messages.mode_ok('mkl-compatible/avx2/1-thread (torch AVX2, MKL CNR COMPATIBLE)')}",
        "✓ dataset: input and target are (200, 600) and equal the HW8 spikes",
        "✓ network: 200 -> 256 -> 200, slayer.block.cuba.Dense blocks; the network's output on the input is (200, 600)",
        "✓ loss: error is slayer.loss.SpikeTime(time_constant=2, filter_order=2), a sum over neurons and time steps "
        "(the Train loss you see)",
        "✓ export: Trained/network.net holds net's weights (200 -> 256 -> 200); Trained/network.pt and "
        "Trained/loss.txt are there",
    ]
    assert _printed(nb)[-1] == f"checks from {folder / 'hw8_check.py'}"
    for path in homework.OUTPUT_FILES:
        assert (folder / path).is_file()
    # stock slayer outside the kit, seeded as the grader seeds, trains the reference's network bit for bit
    from grader import artifacts, calibration
    from grader.config import Limits

    exported = artifacts.check_hdf5(folder, Limits()).weights_sha256
    assert exported == calibration.get(BUNDLE_EPOCHS, 0, True).weights_sha256

    summary = grade_batch([folder / "train.ipynb"], tmp_path / "grades", load_config(), BUNDLE_EPOCHS,
                          workers=0, progress=False, unsandboxed=True)
    assert summary.errors == {}
    result = json.loads((tmp_path / "grades" / "train" / "results.json").read_text())
    assert (result["score"], result["max_score"]) == (100, 100), [
        (t["name"], t["score"], t["output"]) for t in result["tests"]]


ACCEL_LINE = "# import hw8_accel; hw8_accel.install()"


def _run_unpacked(bundle: Path, folder: Path, accelerate: bool) -> tuple[nbformat.NotebookNode, Path]:
    """The solved notebook in the unpacked bundle, without the kit, with hw8_accel on or as handed out (off)."""
    from nbclient import NotebookClient

    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(folder)
    folder = folder / release.FOLDER
    source = (KIT / "solution" / "train.ipynb").read_text()
    assert source.count(ACCEL_LINE) == 1  # off by default: one commented line
    (folder / "train.ipynb").write_text(source.replace(ACCEL_LINE, ACCEL_LINE[2:]) if accelerate else source)
    nb = _with_budget(nbformat.read(folder / "train.ipynb", as_version=4), BUNDLE_EPOCHS)
    nb.cells.insert(0, nbformat.v4.new_code_cell(WITHOUT_THE_KIT))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(folder)}}).execute()
    return nb, folder


@pytest.mark.slow
def test_the_bundles_accelerator_trains_to_the_same_numbers_and_says_what_it_proved(bundle: Path, tmp_path: Path) -> None:
    from grader import artifacts
    from grader.accel import patch
    from grader.config import Limits

    plain, plain_dir = _run_unpacked(bundle, tmp_path / "plain", accelerate=False)
    fast, fast_dir = _run_unpacked(bundle, tmp_path / "fast", accelerate=True)
    assert patch.PROOF in _printed(fast) and patch.PROOF not in _printed(plain)
    assert (fast_dir / "Trained" / "loss.txt").read_bytes() == (plain_dir / "Trained" / "loss.txt").read_bytes()
    assert artifacts.check_hdf5(fast_dir, Limits()).weights_sha256 == artifacts.check_hdf5(plain_dir, Limits()).weights_sha256
    clocks = [[line for line in _printed(nb) if line.startswith("time: ")] for nb in (plain, fast)]
    assert all(len(c) == 1 for c in clocks), clocks
    print("\n".join(c[0] for c in clocks))  # the notebook's own clock, without and with hw8_accel


@pytest.mark.slow
def test_template_runs_in_assignment_up_to_its_first_placeholder() -> None:
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    trained = handout.ASSIGNMENT_DIR / homework.TRAINED_FOLDER
    existed = trained.exists()
    nb = _with_budget(nbformat.read(handout.ASSIGNMENT_DIR / "train.ipynb", as_version=4), 1)
    try:
        with pytest.raises(CellExecutionError) as err:
            NotebookClient(nb, timeout=300, kernel_name="python3",
                           resources={"metadata": {"path": str(handout.ASSIGNMENT_DIR)}}).execute()
    finally:
        if not existed and trained.is_dir() and not any(trained.iterdir()):
            trained.rmdir()  # the template's cell made it before its placeholder raised
    assert err.value.ename == "NotImplementedError"  # not FileNotFoundError, not ModuleNotFoundError
    assert err.value.evalue == "Part 2: create net, optimizer, training_set and train_loader"


STUDENT_ENV_DROPPED = ("PYTHONPATH", "VIRTUAL_ENV", *__import__("solution.numerics", fromlist=["PINNED"]).PINNED)


@pytest.mark.slow
def test_the_readme_setup_installs_in_a_fresh_venv_and_runs_the_notebook(bundle: Path, tmp_path: Path) -> None:
    """The README's Linux command, run literally in the unpacked zip on this machine's python3 (a fresh venv,
    pip's own configuration and cache), then the solved notebook at a small budget in that venv's Jupyter."""
    import subprocess
    import sys

    version = subprocess.run(["python3", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True).stdout.strip()
    if version not in release.PYTHONS:
        pytest.skip(f"python3 is {version}; the README's command needs one of {release.PYTHONS}")
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path)
    folder = tmp_path / release.FOLDER
    readme = (folder / "README.md").read_text()
    command = next(line.strip() for line in readme.splitlines() if line.startswith("    python3 -m venv"))
    env = {k: v for k, v in os.environ.items() if k not in STUDENT_ENV_DROPPED}  # a student's shell, not the kit's
    setup = subprocess.run(["bash", "-c", command], cwd=folder, env=env, capture_output=True, text=True, timeout=1800)
    assert setup.returncode == 0, setup.stderr[-3000:]
    shutil.copyfile(KIT / "solution" / "train.ipynb", folder / "train.ipynb")  # the student's work, done
    nbformat.write(_with_budget(nbformat.read(folder / "train.ipynb", as_version=4), BUNDLE_EPOCHS),
                   folder / "train.ipynb")
    run = subprocess.run([".venv/bin/jupyter", "nbconvert", "--to", "notebook", "--execute", "--output", "run.ipynb",
                          "--ExecutePreprocessor.timeout=900", "train.ipynb"],
                         cwd=folder, env=env, capture_output=True, text=True, timeout=1200)
    assert run.returncode == 0, run.stderr[-3000:]
    printed = _printed(nbformat.read(folder / "run.ipynb", as_version=4))
    checks = [line for line in printed if line.startswith(("✓", "✗"))]
    assert [line[:2] for line in checks[1:]] == ["✓ "] * 4, printed  # dataset, network, loss, export
    assert checks[0].startswith(("✓ mode: numbers as the grader's", "✗ mode: numbers not quite the grader's"))
    (clock,) = [line for line in printed if line.startswith("time: ")]
    assert re.fullmatch(r"time: \d+\.\d{3} s an epoch on this machine \(.+, one torch thread\), measured over epochs "
                        r"2-11: the course's 2000 epochs take about .+ here; this run's 20 about .+", clock), clock
    versions = subprocess.run([".venv/bin/python", "-c", "import torch, numpy, lava.lib.dl; print(torch.__version__, "
                               "numpy.__version__)"], cwd=folder, env=env, capture_output=True, text=True).stdout
    pins = _pins((folder / "requirements.txt").read_text())
    assert versions.split()[1] == pins["numpy"] and versions.split()[0].split("+")[0] == pins["torch"]
    print(sys.version.split()[0], clock)  # the figure, for whoever updates grader/student_timing.json

