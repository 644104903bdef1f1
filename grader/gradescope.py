"""Gradescope: the autograder bundle (`nox -s gradescope`) and grading inside Gradescope's container.

`build_zip` writes dist/gradescope-autograder.zip: at its top level the two
scripts Gradescope runs (`setup.sh` once when it builds the image, as root;
`run_autograder` for every submission), a README.txt for the instructor, and
the kit's source in `kit/` (no tests, no environments, no caches). The
scripts are the templates in grader/gradescope/, filled in from the kit
(the lava-dl pin from noxfile.py, the course budget from the rubric).

In the container the scripts call this module:

    python -m grader.gradescope setup   # after the install: check it, prepare the calibration
    python -m grader.gradescope run     # grade ROOT/submission into ROOT/results/results.json
    python -m grader.gradescope build   # the zip (what `nox -s gradescope` runs)

ROOT is $AUTOGRADER_ROOT (default /autograder), so a test can unpack the zip
anywhere; S2S_EPOCHS overrides the course budget (for tests; it is recorded in
the results). A submission is graded by the kit's own batch code (one worker
process, the kit's limits), and results.json is GradeResult.to_gradescope().

The sandbox is off in there: Gradescope's container usually forbids the user
namespaces bubblewrap needs, and it is itself the isolation of one submission
(a fresh container from the image, discarded afterwards). The kernel still runs
as an unprivileged uid of its own (grader.sandbox), the kit root-owned and
read-only to it and the solution's code unreadable (`harden`, at setup).

Only the standard library is imported at module level: building the zip
needs nothing of the kit's environment.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import traceback
import zipfile
from pathlib import Path

KIT_ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = Path(__file__).resolve().parent / "gradescope"
ZIP_NAME = "gradescope-autograder.zip"
DEFAULT_ZIP = KIT_ROOT / "dist" / ZIP_NAME
DEFAULT_ROOT = "/autograder"

KIT_DIR = "kit"  # the kit's source inside the zip, /autograder/source/kit in the container
# What the kit needs to install (pyproject.toml names README.md) and to grade; tests/ stays out.
KIT_PATHS = ("grader", "solution", "data", "assignment", "requirements", "pyproject.toml", "noxfile.py", "README.md",
             "LICENSE")
# Never in the bundle: the solved notebook (grading never reads it; the template is assignment/'s).
# The solution's network and training loop stay, as grading imports them (the fingerprint check
# trains the reference, the untrained digest builds its network): setup.sh makes them unreadable to
# the kernel's uid, and the whole kit root-owned and read-only (`harden`).
LEFT_OUT = ("solution/train.ipynb",)
SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints", "Trained", ".pytest_cache", ".hypothesis"}
SKIP_SUFFIXES = (".pyc", ".pyo", ".nbi", ".nbc", ".egg-info", ".tmp", ".swp")
SCRIPTS = ("setup.sh", "run_autograder")  # executable, at the zip's top level
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # every entry's date: the same tree gives the same zip

SUBMISSION_ID = "submission"
# Gradescope's timeout for the assignment (what README.txt tells the instructor to set); the
# notebook's own limits stay NOTEBOOK_MARGIN_S below it, so a notebook that runs too long still
# gets a result that says why (start-up, the fingerprint check, evaluation and reports fit in it).
DEFAULT_GRADESCOPE_TIMEOUT_S = 900
NOTEBOOK_MARGIN_S = 180
SANDBOX_NOTE = ("Sandbox off: inside Gradescope's container, which is discarded after this submission, "
                "the notebook ran as a user of its own under the kit's resource limits, without its bubblewrap "
                "sandbox.")


# --- the bundle -------------------------------------------------------------------------------


def _skipped(rel: Path) -> bool:
    return any(part in SKIP_DIRS or part.startswith(".") or part.endswith(SKIP_SUFFIXES) for part in rel.parts)


def kit_files(root: Path = KIT_ROOT) -> list[Path]:
    """The kit's files that travel in the zip, relative to `root`, sorted."""
    root = Path(root)
    files: list[Path] = []
    for name in KIT_PATHS:
        path = root / name
        if path.is_file():
            files.append(Path(name))
        elif path.is_dir():
            for dirpath, dirnames, filenames in os.walk(path):
                rel_dir = Path(dirpath).relative_to(root)
                dirnames[:] = [d for d in dirnames if not _skipped(rel_dir / d)]
                files += [rel_dir / f for f in filenames
                          if not _skipped(rel_dir / f) and not os.path.islink(os.path.join(dirpath, f))
                          and (rel_dir / f).as_posix() not in LEFT_OUT]
        else:
            raise FileNotFoundError(f"the kit has no {name} at {root}: cannot build the Gradescope bundle")
    return sorted(files)


def lava_dl_pin(root: Path = KIT_ROOT) -> str:
    """The lava-dl requirement the kit installs (noxfile.py's LAVA_DL): one source for both."""
    tree = ast.parse((Path(root) / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "LAVA_DL" for t in node.targets):
            return str(ast.literal_eval(node.value))
    raise LookupError("noxfile.py sets no LAVA_DL")


def _course_epochs(root: Path) -> int:
    from grader.config import load_config

    return load_config(Path(root) / "grader" / "rubric.toml").budget.epochs


def _kit_version(root: Path) -> str:
    text = (Path(root) / "pyproject.toml").read_text()
    found = re.search(r'^version\s*=\s*"([^"]+)"', text, re.M)
    return found.group(1) if found else "unknown"


def _git_commit(root: Path) -> str:
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", *KIT_PATHS],
                               capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    if head.returncode != 0:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" with uncommitted changes" if dirty.stdout.strip() else "")


def render(name: str, values: dict[str, str]) -> str:
    """Template `name` of grader/gradescope/ with every @KEY@ replaced; an unknown key is an error."""
    text = (TEMPLATES / name).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = sorted(set(re.findall(r"@([A-Z_]+)@", text)))
    if left:
        raise KeyError(f"template {name}: no value for {', '.join(left)}")
    return text


def _entry(name: str, mode: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, ZIP_TIME)
    info.create_system = 3  # Unix: unzip restores the mode bits below
    info.external_attr = (stat.S_IFREG | mode) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def build_zip(dest: Path = DEFAULT_ZIP, root: Path = KIT_ROOT,
              gradescope_timeout_s: int = DEFAULT_GRADESCOPE_TIMEOUT_S) -> Path:
    """Write the Gradescope autograder bundle to `dest` and return it.

    gradescope_timeout_s: the timeout the instructor sets on Gradescope (README.txt says which);
    run_autograder keeps the notebook's limits below it.
    """
    root, dest = Path(root), Path(dest)
    if gradescope_timeout_s <= NOTEBOOK_MARGIN_S:
        raise ValueError(f"a Gradescope timeout of {gradescope_timeout_s} s leaves the notebook no time")
    epochs = _course_epochs(root)
    values = {
        "LAVA_DL": lava_dl_pin(root),
        "EPOCHS": str(epochs),
        "TIMEOUT_S": str(int(gradescope_timeout_s)),
        "TIMEOUT_MIN": f"{gradescope_timeout_s / 60:g}",
        "NOTEBOOK_TIMEOUT_S": str(int(gradescope_timeout_s) - NOTEBOOK_MARGIN_S),
        "KIT_VERSION": _kit_version(root),
        "COMMIT": _git_commit(root),
    }
    files = kit_files(root)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for script in SCRIPTS:
                zf.writestr(_entry(script, 0o755), render(script, values))
            zf.writestr(_entry("README.txt", 0o644), render("README.txt", values))
            for rel in files:
                mode = 0o755 if os.access(root / rel, os.X_OK) else 0o644
                zf.writestr(_entry(f"{KIT_DIR}/{rel.as_posix()}", mode), (root / rel).read_bytes())
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


# --- in the container ---------------------------------------------------------------------------


def autograder_root() -> Path:
    return Path(os.environ.get("AUTOGRADER_ROOT") or DEFAULT_ROOT)


def budget(default: int) -> int:
    """The epochs to grade at: S2S_EPOCHS when set (tests), else the rubric's course budget."""
    raw = os.environ.get("S2S_EPOCHS", "").strip()
    if not raw:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"S2S_EPOCHS={raw!r}: expected a positive number of epochs")
    return int(raw)


def gradescope_config(config, timeout_s: int | None = None):
    """The rubric as graded inside Gradescope: sandbox off, the notebook's time below Gradescope's."""
    if timeout_s is None:
        timeout_s = int(os.environ.get("S2S_GRADESCOPE_TIMEOUT_S") or DEFAULT_GRADESCOPE_TIMEOUT_S)
    notebook_s = max(60, timeout_s - NOTEBOOK_MARGIN_S)
    limits = config.limits
    return config.with_limits(
        sandbox="off",
        total_timeout_s=min(limits.total_timeout_s, notebook_s),
        cell_timeout_s=min(limits.cell_timeout_s, notebook_s),
    )


IGNORED_DIRS = ("__MACOSX", ".ipynb_checkpoints")  # what the kit's zip intake skips too


def find_notebook(folder: Path) -> tuple[Path | None, str | None]:
    """The notebook to grade in Gradescope's submission folder: (path, None) or (None, why not).

    The kit's intake rule for a zip (grader/submission.py), applied to the folder
    Gradescope fills: any .ipynb at any depth outside __MACOSX/ and
    .ipynb_checkpoints/; train.ipynb when there is one; exactly one. A folder with
    no notebook but one .zip gives the zip, which the kit's intake then opens.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return None, f"no submission folder ({folder}): nothing was uploaded"
    notebooks: list[Path] = []
    others: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):  # links to folders are not followed
        dirnames[:] = sorted(d for d in dirnames if not any(x in d for x in IGNORED_DIRS))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.is_symlink():
                continue
            (notebooks if name.endswith(".ipynb") else others).append(path)
    named = [p for p in notebooks if p.name == "train.ipynb"]
    chosen = sorted(named or notebooks)
    if len(chosen) == 1:
        return chosen[0], None
    if len(chosen) > 1:
        names = ", ".join(str(p.relative_to(folder)) for p in chosen)
        return None, f"the submission holds several notebooks ({names}): keep one, named train.ipynb"
    zips = [p for p in others if p.suffix == ".zip"]
    if len(zips) == 1:
        return zips[0], None
    if others:
        listed = ", ".join(str(p.relative_to(folder)) for p in others[:10])
        more = f" and {len(others) - 10} more" if len(others) > 10 else ""
        return None, f"the submission holds no .ipynb notebook (it holds {listed}{more}): upload train.ipynb"
    return None, "the submission is empty: upload train.ipynb"


def setup(epochs: int | None = None) -> int:
    """setup.sh's last step: the environment imports, and the calibration of the budget is ready."""
    import grader
    from grader import calibration
    from grader.config import load_config
    from solution import numerics

    config = load_config()
    epochs = epochs or budget(config.budget.epochs)
    import lava.lib.dl.slayer  # noqa: F401  the kit's one non-locked dependency
    import torch

    print(f"kit: {Path(grader.__file__).resolve().parent.parent}; torch {torch.__version__}; "
          f"numerical mode {numerics.label()}")
    start = time.perf_counter()
    cal = calibration.get(epochs, config.budget.seed, config.budget.accelerate)
    print(f"{calibration.describe_source(cal)} ({time.perf_counter() - start:.0f} s)")
    for line in harden():
        print(line)
    return 0


def harden(kit: Path = KIT_ROOT) -> list[str]:
    """setup.sh's last step: no solved notebook, the kit root-owned and read-only to every other user,
    the solution's code unreadable to them (the kernel runs as a uid of its own). Returns what it did."""
    from grader.sandbox import protect_kit

    done = []
    for rel in LEFT_OUT:
        if (kit / rel).exists():
            (kit / rel).unlink()
            done.append(f"removed {rel}")
    if os.geteuid() == 0:
        for dirpath, dirnames, filenames in os.walk(kit):
            for name in [".", *dirnames, *filenames]:
                os.lchown(os.path.join(dirpath, name), 0, 0)
        done.append("kit owned by root")
    private = protect_kit(kit)
    done.append(f"kit read-only to other users; unreadable to them: {', '.join(p.name for p in private)}")
    return done


def _stage(notebook: Path, staging: Path) -> Path:
    """A folder submission `staging/SUBMISSION_ID/train.ipynb` (or the zip itself) for the kit's intake."""
    if notebook.suffix == ".zip":
        return notebook
    folder = staging / SUBMISSION_ID
    shutil.rmtree(staging, ignore_errors=True)
    folder.mkdir(parents=True)
    shutil.copyfile(notebook, folder / "train.ipynb")
    return folder


def grade(root: Path, epochs: int | None = None, timeout_s: int | None = None):
    """Grade root/submission at `epochs` (default: the course budget) -> (GradeResult, lines for stdout).

    Always a result: a submission without a notebook gets the kit's intake message
    as its execution check, a failure of the grader itself the kit's error result (no score).
    """
    from grader import calibration, report
    from grader.batch import _grader_error, fault_reason, grade_batch
    from grader.config import load_config
    from grader.grade import WORK, grade_submission
    from grader.submission import Submission

    config = gradescope_config(load_config(), timeout_s)
    epochs = epochs or budget(config.budget.epochs)
    out = root / "grading"  # the kit's output folder: feedback.html, executed.ipynb (not uploaded)
    notebook, problem = find_notebook(root / "submission")
    notes = [f"grading {notebook or '(no notebook)'} at {epochs} epochs; notebook time limit at most "
             f"{config.limits.total_timeout_s} s; sandbox off (Gradescope's container isolates the submission)"]
    digest = (hashlib.sha256(notebook.read_bytes()) if notebook else hashlib.sha256(problem.encode())).hexdigest()
    sub = Submission(SUBMISSION_ID, root / "submission", None, digest, problem)
    try:
        if notebook is not None:
            summary = grade_batch([_stage(notebook, root / "grading-intake")], out, config, epochs,
                                  workers=1, regrade=True, progress=False)
            notes.append(summary.calibration)
            notes += [f"grader error:\n{err}" for err in summary.errors.values()]
            (sid,) = summary.graded
            return report.read_results(out / sid / report.RESULTS), notes
        cal = calibration.get(epochs, config.budget.seed, config.budget.accelerate)
        notes.append(calibration.describe_source(cal))
        graded = grade_submission(sub, out, config, epochs, cal, workdir=out / WORK / SUBMISSION_ID)
        return graded.result, notes
    except Exception as exc:  # the grader itself failed: the kit's error result (no score)
        error = traceback.format_exc()
        _grader_error(sub, out, config, epochs, error, fault_reason(exc))
        return report.read_results(out / SUBMISSION_ID / report.RESULTS), notes + [f"grader error:\n{error}"]


GRADER_ERROR_NOTE = (
    "No results.json written: this is a fault of the grading machine, not of the submission, so it gets no "
    "score. Gradescope shows it as \"The autograder failed to execute correctly\"; fix the cause above, then "
    "rerun the autograder on this submission (or Regrade All Submissions).")


def run(root: Path | None = None, epochs: int | None = None) -> int:
    """run_autograder: grade root/submission into root/results/results.json (Gradescope's format).

    A grader error writes no results.json and exits 1: Gradescope records a run without a valid
    results.json as "The autograder failed to execute correctly", with no score, for the instructor
    to rerun; a results.json would have been a grade (0 or otherwise). Its reason goes to stdout,
    which Gradescope shows to instructors.
    """
    from grader.report import atomic_write

    root = Path(root or autograder_root()).resolve()
    (root / "results").mkdir(parents=True, exist_ok=True)
    (root / "results" / "results.json").unlink(missing_ok=True)  # a stale one must not stand in for this run
    result, notes = grade(root, epochs)
    if result.is_grader_error:
        for line in notes:
            print(line)
        print(result.grader_error)
        print(GRADER_ERROR_NOTE)
        return 1
    from grader import markdown
    from grader.config import load_config

    presentation = load_config().gradescope  # the rubric's visibility, Markdown, leaderboard
    data = result.to_gradescope(presentation)
    note = markdown.escape(SANDBOX_NOTE) if presentation.output_format == "md" else SANDBOX_NOTE
    data["output"] = f"{data['output']} {note}"
    atomic_write(root / "results" / "results.json", json.dumps(data, indent=2) + "\n")
    for line in notes:  # stdout: shown to instructors only
        print(line)
    print("\n".join(result.summary_lines()))
    print(f"score: {result.score:g} / {result.max_score:g} at {result.epochs} epochs "
          f"({result.execution_time:.0f} s) -> {root / 'results' / 'results.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m grader.gradescope", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help=f"write the autograder zip (default {DEFAULT_ZIP.relative_to(KIT_ROOT)})")
    b.add_argument("--out", type=Path, default=DEFAULT_ZIP)
    b.add_argument("--timeout-s", type=int, default=DEFAULT_GRADESCOPE_TIMEOUT_S,
                   help="the timeout you set on Gradescope (default %(default)s s)")
    sub.add_parser("setup", help="in the container, after the install: check it and prepare the calibration")
    sub.add_parser("run", help="in the container: grade $AUTOGRADER_ROOT/submission into results/results.json")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "build":
        path = build_zip(args.out, gradescope_timeout_s=args.timeout_s)
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
        print(f"{path}: {len(names)} files, {path.stat().st_size / 2**20:.2f} MiB; upload it on Gradescope "
              f"(Configure Autograder > zip file), see README.txt inside it")
        return 0
    if args.command == "setup":
        return setup()
    return run()


if __name__ == "__main__":
    raise SystemExit(main())
