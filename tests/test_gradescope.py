"""The Gradescope bundle: what the zip holds, and that its scripts grade in an unpacked copy.

The slow tests unpack the zip into a temporary root (AUTOGRADER_ROOT), run
setup.sh against the environment these tests run in (S2S_KIT_PYTHON: the slow
install is skipped, every other step runs) and run_autograder at a small
budget (S2S_EPOCHS), then validate each results.json against Gradescope's
format, written below as a JSON Schema from Gradescope's documentation
("Autograder Specifications", https://gradescope-autograders.readthedocs.io/en/latest/specs/).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Iterator

import jsonschema  # pinned in requirements/lock.txt
import pytest

from conftest import enterable_tmp
from grader import gradescope
from grader.config import load_config
from grader.results import CheckResult, GradeResult

KIT = Path(__file__).resolve().parent.parent
EPOCHS = 3  # small budget: the kit computes (and setup.sh prepares) a local calibration for it
REFERENCE = KIT / "solution" / "train.ipynb"
TEMPLATE = KIT / "assignment" / "train.ipynb"

# --- Gradescope's results.json, as a JSON Schema -------------------------------------------------

VISIBILITY = {"enum": ["hidden", "after_due_date", "after_published", "visible"]}
FORMAT = {"enum": ["text", "simple_format", "html", "md", "ansi"]}
NUMBER = {"type": "number"}
TEST = {
    "type": "object",
    "properties": {
        "score": NUMBER,
        "max_score": NUMBER,
        "status": {"enum": ["passed", "failed"]},
        "name": {"type": "string"},
        "name_format": FORMAT,
        "number": {"type": "string"},
        "output": {"type": "string"},
        "output_format": FORMAT,
        "tags": {"type": "array", "items": {"type": "string"}},
        "visibility": VISIBILITY,
        "extra_data": {"type": "object"},
    },
    "additionalProperties": False,
}
RESULTS_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "score": NUMBER,  # "optional, but required if not on each test case"
        # Not in Gradescope's list of keys (it takes the points from the assignment's settings);
        # grader/results.py writes it for its own readers. Allowed, and checked below.
        "max_score": NUMBER,
        "execution_time": NUMBER,
        "output": {"type": "string"},
        "output_format": FORMAT,
        "test_output_format": FORMAT,
        "test_name_format": FORMAT,
        "visibility": VISIBILITY,
        "stdout_visibility": VISIBILITY,
        "extra_data": {"type": "object"},
        "tests": {"type": "array", "items": TEST},
        "leaderboard": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "value": {"type": ["number", "string"]},
                               "order": {"enum": ["asc", "desc"]}},
                "required": ["name", "value"],
                "additionalProperties": False,
            },
        },
    },
    "anyOf": [
        {"required": ["score"]},
        {"required": ["tests"], "properties": {"tests": {"items": {"required": ["score"]}}}},
    ],
    "additionalProperties": False,
}


def validate(data: dict) -> None:
    jsonschema.Draft202012Validator(RESULTS_SCHEMA).validate(data)
    # beyond the schema: the total is the sum of the tests, and a test's status follows its score
    assert data["score"] == pytest.approx(sum(t["score"] for t in data["tests"]))
    assert data["max_score"] == sum(t["max_score"] for t in data["tests"])
    for t in data["tests"]:
        assert 0 <= t["score"] <= t["max_score"]
        if t["max_score"] > 0:  # a 0-point check (figure) says passed or failed by its own verdict
            assert t["status"] == ("passed" if t["score"] >= t["max_score"] else "failed")


def test_the_schema_is_valid_and_not_vacuous() -> None:
    jsonschema.Draft202012Validator.check_schema(RESULTS_SCHEMA)
    ok = {"score": 1.0, "tests": [{"name": "a", "score": 1.0, "max_score": 1.0, "visibility": "visible"}]}
    jsonschema.Draft202012Validator(RESULTS_SCHEMA).validate(ok)
    for bad in ({"tests": [{"name": "no score anywhere"}]},
                {**ok, "visibility": "sometimes"},
                {**ok, "output_format": "markdown"},
                {**ok, "leaderboard": [{"name": "loss", "value": 1.0, "order": "up"}]},
                {**ok, "leaderboard": [{"name": "loss"}]},
                {**ok, "tests": [{"score": 1, "status": "ok"}]},
                {**ok, "scroe": 1}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(RESULTS_SCHEMA).validate(bad)


def test_a_result_in_memory_has_gradescopes_format() -> None:
    config = load_config()
    checks = [CheckResult(name, pts / 2, pts, f"{name}: half") for name, pts in config.points.items()]
    data = GradeResult("submission", "0" * 64, checks, epochs=EPOCHS).to_gradescope()
    validate(data)
    assert data["score"] == 50


PRESENTED = """
[gradescope]
output_format = "md"
leaderboard = true

[visibility]
similarity = "hidden"
loss = "after_due_date"
flags = "after_published"
"""


def _rubric(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "rubric.toml"
    text = (KIT / "grader" / "rubric.toml").read_text()
    text = text.split("\n[gradescope]")[0]  # the shipped rubric without its presentation, then ours
    path.write_text(text + extra)
    return path


def _presented_result(config) -> GradeResult:
    checks = [CheckResult(name, pts, pts, f"{name}: ok") for name, pts in config.points.items()]
    checks[checks.index(next(c for c in checks if c.name == "similarity"))] = CheckResult(
        "similarity", 12.0, 15.0, "raster similarity 0.52 = 80% of the reference's: *nearly* <b>there</b>",
        {"similarity": 0.5213, "ratio": 0.8})
    checks[checks.index(next(c for c in checks if c.name == "hdf5"))] = CheckResult(
        "hdf5", 0.0, 20.0, "extra entry `layer/2`: slayer's export names its layers `0`, `1`, ... only")
    return GradeResult("sub_1", "0" * 64, checks, epochs=EPOCHS, flags=["budget not set (no `parameters` cell)"],
                       measurements={"loss": 1234.5678})


def test_rubric_set_visibility_markdown_and_leaderboard_are_gradescopes_format(tmp_path: Path) -> None:
    config = load_config(_rubric(tmp_path, PRESENTED))
    assert config.fingerprint() == load_config().fingerprint()  # presentation is not the grade
    data = _presented_result(config).to_gradescope(config.gradescope)
    validate(data)
    shown = {t["name"]: t["visibility"] for t in data["tests"]}
    assert shown == {"execution": "visible", "dataset": "visible", "output_shape": "visible", "hdf5": "visible",
                     "export": "visible", "loss": "after_due_date", "similarity": "hidden", "figure": "visible",
                     "flags": "after_published"}
    assert data["output_format"] == data["test_output_format"] == "md"
    assert all(t["output_format"] == "md" for t in data["tests"])
    tests = {t["name"]: t for t in data["tests"]}
    assert tests["similarity"]["output"] == (
        "raster similarity 0.52 = 80% of the reference's: \\*nearly\\* \\<b\\>there\\</b\\>")
    assert tests["hdf5"]["output"] == "extra entry `layer/2`: slayer's export names its layers `0`, `1`, ... only"
    assert tests["flags"] == {"name": "flags", "score": 0.0, "max_score": 0.0, "status": "failed",
                              "output": "- budget not set (no `parameters` cell)", "visibility": "after_published",
                              "output_format": "md"}
    assert data["output"] == "sub\\_1: 77 / 100 at 3 epochs."  # the flags are in their own, later test
    assert data["leaderboard"] == [{"name": "loss", "value": 1234.57, "order": "asc"},
                                   {"name": "similarity", "value": 0.5213, "order": "desc"}]


def test_without_presentation_results_json_is_as_before(tmp_path: Path) -> None:
    config = load_config()
    assert config.gradescope.output_format == "text" and not config.gradescope.leaderboard
    data = _presented_result(config).to_gradescope(config.gradescope)
    validate(data)
    assert "leaderboard" not in data and "output_format" not in data
    assert {t["visibility"] for t in data["tests"]} == {"visible"} and "flags" not in {t["name"] for t in data["tests"]}
    assert data["output"] == "sub_1: 77 / 100 at 3 epochs. Flags: budget not set (no `parameters` cell)"


def test_nothing_measured_means_no_leaderboard(tmp_path: Path) -> None:
    config = load_config(_rubric(tmp_path, PRESENTED))
    checks = [CheckResult(name, 0.0, pts, "not measured") for name, pts in config.points.items()]
    data = GradeResult("s", "0" * 64, checks, epochs=EPOCHS).to_gradescope(config.gradescope)
    validate(data)
    assert "leaderboard" not in data  # Gradescope's entries need a value; an unmeasured export has none


@pytest.mark.parametrize("extra, message", [
    ('[visibility]\nsimilarity = "secret"\n', "similarity = 'secret': one of visible, hidden"),
    ('[visibility]\nsimilarty = "hidden"\n', "similarty is not a test"),
    ('[gradescope]\noutput_format = "html"\n', "output_format = 'html': one of text, md"),
    ('[gradescope]\nleaderboard = "yes"\n', "leaderboard = 'yes': true or false"),
    ('[gradescope]\nvisibility = "hidden"\n', "per-test visibility goes in its own [visibility] table"),
])
def test_a_wrong_presentation_is_refused(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        load_config(_rubric(tmp_path, "\n" + extra))


def test_run_writes_the_rubrics_presentation(tmp_path: Path, monkeypatch) -> None:
    import grader.config

    config = load_config(_rubric(tmp_path, PRESENTED))
    monkeypatch.setattr(grader.config, "load_config", lambda *a: config)
    monkeypatch.setattr(gradescope, "grade", lambda root, epochs=None: (_presented_result(config), ["note"]))
    assert gradescope.run(tmp_path / "root", EPOCHS) == 0
    data = json.loads((tmp_path / "root" / "results" / "results.json").read_text())
    validate(data)
    assert data["output"] == "sub\\_1: 77 / 100 at 3 epochs. Sandbox off: inside Gradescope's container, which is " \
        "discarded after this submission, the notebook ran as a user of its own under the kit's resource limits, " \
        "without its bubblewrap sandbox."
    assert data["leaderboard"][0]["order"] == "asc" and data["tests"][-1]["visibility"] == "after_published"


MARKDOWN_CASES = [
    "plain words, 1.10 x the reference",
    "a_b*c* [link](http://x) <script>alert(1)</script> & &amp; ~~gone~~ | pipe | !bang",
    "- not a list\n# not a heading\n1. not a list either\n> not a quote",
    "no variable `training_set` (the handout's name) in `net_2`",
    "an odd ` backtick and \\ a backslash",
]


@pytest.mark.parametrize("text", MARKDOWN_CASES)
def test_markdown_renders_to_the_same_text(text: str) -> None:
    """What Gradescope shows of an escaped message is the message: rendered by a CommonMark parser
    (mistune, nbconvert's), its text is the original, and `code` spans are code."""
    import html as html_lib

    import mistune

    from grader import markdown

    rendered = mistune.html(markdown.escape(text))
    visible = html_lib.unescape(re.sub(r"<[^>]+>", "", rendered)).strip()
    spans = re.findall(r"`([^`\n]+)`", text)
    assert visible.split() == re.sub(r"`([^`\n]+)`", r"\1", text).split()
    assert re.findall(r"<code>(.*?)</code>", rendered) == [html_lib.escape(s, quote=False) for s in spans]
    assert not re.search(r"<(?!/?(p|code)>)", rendered)  # no element but paragraphs and code


def test_a_grader_error_is_no_grade_for_gradescope(tmp_path: Path, monkeypatch, capsys) -> None:
    from grader import batch
    from grader.results import grader_error_result

    error = grader_error_result("submission", "0" * 64, EPOCHS, "the kernel could not start: Kernel died")
    data = error.to_gradescope()
    assert "score" not in data and "max_score" not in data and data["tests"] == []  # not a 0: no score at all
    assert data["output"] == ("submission: not graded (grading machine error): the kernel could not start: Kernel "
                              "died. This is a fault of the grading machine, not of your notebook: it has no score, "
                              "and it will be graded again once the machine is fixed.")

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(batch, "grade_batch", broken)
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "train.ipynb").write_text(REFERENCE.read_text())
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "results.json").write_text('{"score": 100}')  # a stale one from an earlier run
    assert gradescope.run(tmp_path, EPOCHS) == 1
    assert not (tmp_path / "results" / "results.json").exists()  # Gradescope: "failed to execute correctly"
    out = capsys.readouterr().out.splitlines()
    assert out[-2:] == ["not graded (grading machine error): internal error in the grader: RuntimeError: boom",
                        gradescope.GRADER_ERROR_NOTE]
    assert gradescope.GRADER_ERROR_NOTE == (
        "No results.json written: this is a fault of the grading machine, not of the submission, so it gets no "
        "score. Gradescope shows it as \"The autograder failed to execute correctly\"; fix the cause above, then "
        "rerun the autograder on this submission (or Regrade All Submissions).")


# --- the zip ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return gradescope.build_zip(tmp_path_factory.mktemp("dist") / gradescope.ZIP_NAME)


def _mode(info: zipfile.ZipInfo) -> int:
    return (info.external_attr >> 16) & 0o7777


def test_the_zip_holds_the_scripts_and_the_kit(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as zf:
        infos = {i.filename: i for i in zf.infolist()}
    names = set(infos)
    top = {n for n in names if "/" not in n}
    assert top == {"setup.sh", "run_autograder", "README.txt"}
    for script in ("setup.sh", "run_autograder"):
        assert infos[script].create_system == 3 and _mode(infos[script]) == 0o755
    assert _mode(infos["README.txt"]) == 0o644
    assert all(n in top or n.startswith("kit/") for n in names)
    expected = {f"kit/{p.as_posix()}" for p in gradescope.kit_files(KIT)}
    assert names - top == expected
    for needed in ("grader/grade.py", "grader/batch.py", "grader/gradescope.py", "grader/rubric.toml",
                   "grader/calibration/epochs-2000-seed-0.json", "grader/calibration/fingerprint.json",
                   "grader/accel/kernels.py", "solution/__init__.py", "solution/dataset.py",
                   "solution/homework.py", "solution/numerics.py", "data/input_hw.bs1", "data/output_hw.bs1",
                   "requirements/lock.txt", "pyproject.toml", "noxfile.py", "README.md", "LICENSE"):
        assert f"kit/{needed}" in names, needed
    assert "kit/solution/train.ipynb" not in names  # no solved notebook in the bundle
    parts = [part for n in names for part in n.split("/")]
    assert "tests" not in parts and ".nox" not in parts and ".cache" not in parts and ".git" not in parts
    assert not [p for p in parts if p.startswith(".") or p in ("__pycache__", "Trained", ".ipynb_checkpoints")]
    assert not [n for n in names if n.endswith((".pyc", ".nbi", ".nbc", ".tmp"))]


def test_the_zip_is_reproducible(bundle: Path, tmp_path: Path) -> None:
    again = gradescope.build_zip(tmp_path / "again.zip")
    assert again.read_bytes() == bundle.read_bytes()


def test_setup_installs_what_the_noxfile_installs(bundle: Path) -> None:
    with zipfile.ZipFile(bundle) as zf:
        setup = zf.read("setup.sh").decode()
        run = zf.read("run_autograder").decode()
        readme = zf.read("README.txt").decode()
    assert not re.search(r"@[A-Z_]+@", setup + run + readme)  # every placeholder filled in
    # noxfile.py's _kit_python: one venv, the lock, lava-dl beside it, the kit itself
    assert gradescope.lava_dl_pin(KIT) == "lava-dl==0.6.0"
    assert 'LAVA_DL="lava-dl==0.6.0"' in setup
    assert '-m venv --clear "$VENV"' in setup
    assert 'pip=("$PYTHON" -m pip install --disable-pip-version-check -q)' in setup
    assert '"${pip[@]}" -r "$KIT/requirements/lock.txt"' in setup
    assert '"${pip[@]}" --no-deps --ignore-requires-python "$LAVA_DL"' in setup
    assert '"${pip[@]}" --no-deps --no-build-isolation -e "$KIT"' in setup
    assert "bwrap" not in setup and "bubblewrap" not in setup  # not needed in Gradescope's container
    assert f"S2S_GRADESCOPE_TIMEOUT_S:-{gradescope.DEFAULT_GRADESCOPE_TIMEOUT_S}" in run
    assert "AUTOGRADER_ROOT:-/autograder" in setup and "AUTOGRADER_ROOT:-/autograder" in run
    for text in (setup, run):  # bash can parse both
        subprocess.run(["bash", "-n", "/dev/stdin"], input=text, text=True, check=True)


@pytest.mark.slow
def test_the_kit_in_the_zip_builds(bundle: Path, tmp_path: Path) -> None:
    """What setup.sh's last pip step installs: the unpacked kit/ is a complete, buildable project."""
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(tmp_path / "source")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--disable-pip-version-check", str(tmp_path / "source" / "kit"), "-w", str(tmp_path / "whl")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = (tmp_path / "whl").glob("slayer_s2s_kit-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert {"grader/gradescope.py", "grader/rubric.toml", "grader/calibration/epochs-2000-seed-0.json",
            "solution/homework.py"} <= names


# --- what runs in the container -----------------------------------------------------------------


def _touch(path: Path, text: str = "{}") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_find_notebook_follows_the_kits_intake_rule(tmp_path: Path) -> None:
    sub = tmp_path / "submission"
    assert gradescope.find_notebook(sub) == (None, f"no submission folder ({sub}): nothing was uploaded")
    sub.mkdir()
    assert gradescope.find_notebook(sub) == (None, "the submission is empty: upload train.ipynb")
    _touch(sub / "report.pdf")
    assert gradescope.find_notebook(sub) == (
        None, "the submission holds no .ipynb notebook (it holds report.pdf): upload train.ipynb")
    only = _touch(sub / "HW8" / "my_hw8.ipynb")
    _touch(sub / "HW8" / ".ipynb_checkpoints" / "train-checkpoint.ipynb")
    _touch(sub / "__MACOSX" / "HW8" / "train.ipynb")
    assert gradescope.find_notebook(sub) == (only, None)  # the only notebook, whatever its name
    other = _touch(sub / "scratch.ipynb")
    assert gradescope.find_notebook(sub) == (
        None, "the submission holds several notebooks (HW8/my_hw8.ipynb, scratch.ipynb): keep one, named train.ipynb")
    train = _touch(sub / "HW8" / "train.ipynb")
    assert gradescope.find_notebook(sub) == (train, None)  # train.ipynb wins over the others
    second = _touch(sub / "old" / "train.ipynb")
    assert gradescope.find_notebook(sub) == (
        None, "the submission holds several notebooks (HW8/train.ipynb, old/train.ipynb): keep one, named train.ipynb")
    for p in (only, other, train, second):
        p.unlink()
    archive = _touch(sub / "hw8.zip", "")
    assert gradescope.find_notebook(sub) == (archive, None)  # the kit's intake opens the zip


def test_the_rubric_in_gradescope(monkeypatch) -> None:
    config = load_config()
    monkeypatch.delenv("S2S_GRADESCOPE_TIMEOUT_S", raising=False)
    gs = gradescope.gradescope_config(config)
    assert gs.limits.sandbox == "off"
    limit = gradescope.DEFAULT_GRADESCOPE_TIMEOUT_S - gradescope.NOTEBOOK_MARGIN_S
    assert gs.limits.total_timeout_s == gs.limits.cell_timeout_s == limit
    assert gs.points == config.points and gs.budget == config.budget and gs.thresholds == config.thresholds
    monkeypatch.setenv("S2S_GRADESCOPE_TIMEOUT_S", "2400")
    assert gradescope.gradescope_config(config).limits.total_timeout_s == 2400 - gradescope.NOTEBOOK_MARGIN_S
    assert gradescope.gradescope_config(config).limits.cell_timeout_s == config.limits.cell_timeout_s  # 1800


def test_the_sandbox_note_is_one_sentence() -> None:
    note = gradescope.SANDBOX_NOTE
    assert note.startswith("Sandbox off") and note.endswith(".") and ". " not in note and "\n" not in note


def test_budget_from_the_environment(monkeypatch) -> None:
    monkeypatch.delenv("S2S_EPOCHS", raising=False)
    assert gradescope.budget(2000) == 2000
    monkeypatch.setenv("S2S_EPOCHS", "5")
    assert gradescope.budget(2000) == 5
    for bad in ("0", "-3", "five"):
        monkeypatch.setenv("S2S_EPOCHS", bad)
        with pytest.raises(ValueError, match="S2S_EPOCHS"):
            gradescope.budget(2000)


# --- end to end: the unpacked zip --------------------------------------------------------------


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("S2S_CACHE", "S2S_EPOCHS", "PYTHONPATH")}
    env.update(AUTOGRADER_ROOT=str(root), S2S_KIT_PYTHON=sys.executable, S2S_EPOCHS=str(EPOCHS))
    return env


@pytest.fixture(scope="module")
def autograder(bundle: Path) -> Iterator[Path]:
    """The zip unpacked as Gradescope does (ROOT/source), after setup.sh ran against this environment."""
    root = enterable_tmp("s2s-autograder-")  # as /autograder is: a kernel with a uid of its own enters it
    try:
        yield _set_up(bundle, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _set_up(bundle: Path, root: Path) -> Path:
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(root / "source")
        for info in zf.infolist():  # extractall drops the mode bits; unzip (Gradescope) keeps them
            os.chmod(root / "source" / info.filename, _mode(info))
    done = subprocess.run(["bash", str(root / "source" / "setup.sh")], env=_env(root), capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "nothing installed" in done.stdout
    assert f"kit: {root / 'source' / 'kit'};" in done.stdout  # the unpacked copy, not this checkout
    assert f"calibration at {EPOCHS} epochs: local" in done.stdout
    assert (root / "source" / "kit-python").read_text().strip() == sys.executable
    kit = root / "source" / "kit"
    assert not (kit / "solution" / "train.ipynb").exists()
    for name in ("network.py", "training.py"):  # grading imports them; the kernel's uid cannot read them
        assert stat.S_IMODE((kit / "solution" / name).stat().st_mode) & 0o077 == 0
    assert not [p for p in kit.rglob("*") if p.lstat().st_mode & 0o022 and not p.is_symlink()]
    if os.geteuid() == 0:
        assert {p.lstat().st_uid for p in kit.rglob("*")} == {0}
    return root


def _grade(root: Path, *files: tuple[str, Path | str]) -> tuple[dict, str]:
    """Fill ROOT/submission with `files` (name, source path or text), run run_autograder."""
    for folder in ("submission", "results"):
        shutil.rmtree(root / folder, ignore_errors=True)
    (root / "submission").mkdir()
    for name, source in files:
        target = root / "submission" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(source, Path):
            shutil.copyfile(source, target)
        else:
            target.write_text(source)
    script = root / "source" / "run_autograder"
    assert os.stat(script).st_mode & stat.S_IXUSR
    env = _env(root)
    del env["S2S_KIT_PYTHON"]  # run_autograder finds the interpreter setup.sh recorded
    done = subprocess.run([str(script)], env=env, cwd=root, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    validate(data)
    assert data["extra_data"]["epochs"] == EPOCHS
    assert data["output"].endswith(" " + gradescope.SANDBOX_NOTE)
    return data, done.stdout


@pytest.mark.slow
def test_reference_scores_full_marks(autograder: Path) -> None:
    data, stdout = _grade(autograder, ("HW8/train.ipynb", REFERENCE), ("HW8/notes.txt", "my notes"))
    assert data["score"] == 100.0 and data["max_score"] == 100.0
    assert [t["status"] for t in data["tests"]] == ["passed"] * len(load_config().points)
    assert data["output"].startswith(f"submission: 100 / 100 at {EPOCHS} epochs. Sandbox off")
    extra = data["extra_data"]
    assert extra["calibration_source"] == "local" and extra["flags"] == []
    assert extra["measurements"]["weights_origin"] == "reference"
    assert f"calibration at {EPOCHS} epochs: local" in stdout
    assert f"score: 100 / 100 at {EPOCHS} epochs" in stdout


@pytest.mark.slow
def test_untouched_template_gets_a_result_not_a_crash(autograder: Path) -> None:
    data, _ = _grade(autograder, ("train.ipynb", TEMPLATE))
    assert data["score"] == 0 and data["max_score"] == 100.0
    assert all(t["status"] == "failed" for t in data["tests"])
    tests = {t["name"]: t for t in data["tests"]}
    assert "NotImplementedError" in tests["execution"]["output"]
    assert "no variable `training_set`" in tests["dataset"]["output"]


@pytest.mark.slow
def test_no_notebook_gets_a_clear_result(autograder: Path) -> None:
    data, _ = _grade(autograder, ("train.py", "print('oops')\n"))
    assert data["score"] == 0
    tests = {t["name"]: t for t in data["tests"]}
    assert tests["execution"]["output"] == (
        "nothing to run: the submission holds no .ipynb notebook (it holds train.py): upload train.ipynb")


# --- issue 16's hostile notebooks in the Gradescope flow ------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["daemon_forge", "wrong_types", "patch_grader"])
def test_hostile_notebooks_get_their_real_score(autograder: Path, tmp_path: Path, name: str) -> None:
    """What tests/test_hostile.py asserts in a batch, through run_autograder: the score uploaded is the real one."""
    import time
    import warnings

    from grader import sandbox
    from hostile.cases import cases

    (case,) = [c for c in cases() if c.name == name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        confined = sandbox.mode(gradescope.gradescope_config(load_config()).limits, autograder).uid is not None
    if case.harmful_unconfined and not confined:
        pytest.skip("the kit's Python is out of reach of a uid of its own here: the kernel would run as root")
    case.build(tmp_path / "train")
    kit = autograder / "source" / "kit"
    evaluate = (kit / "grader" / "evaluate.py").read_bytes()
    data, _ = _grade(autograder, ("train.ipynb", tmp_path / "train.ipynb"))
    time.sleep(2)  # a daemon that outlived the run would rewrite results.json now
    again = json.loads((autograder / "results" / "results.json").read_text())
    assert again == data and data["score"] == case.score
    tests = {t["name"]: t["output"] for t in data["tests"]}
    for check, fragment in case.messages.items():
        assert fragment in tests[check], (check, tests[check])
    assert (kit / "grader" / "evaluate.py").read_bytes() == evaluate
