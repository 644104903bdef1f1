"""The files a student's notebook finds beside it, wherever it runs.

One list for the three places a notebook runs: the student bundle
(``grader/release.py`` copies them), ``assignment/`` (committed relative
links to these sources) and the grader's working folder
(``grader.execute.prepare_workdir`` copies them). The checks' files keep
kit-independent names there, so the notebook's ``import hw8_check`` works
without the kit. Standard library only.
"""

from __future__ import annotations

from pathlib import Path

from solution import homework

KIT = Path(__file__).resolve().parent.parent
DATA_DIR = KIT / "data"
ASSIGNMENT_DIR = KIT / "assignment"
CHECKSUMS = DATA_DIR / "SHA256SUMS"

DATA_FILES = {name: DATA_DIR / name for name in homework.DATA_FILES}
# folders beside the notebook -> their one source: the grader's own sums (grader/exact, relative imports
# only), so that `import hw8_exact; hw8_exact.install()` trains to the grader's numbers outside the grader
PACKAGES = {"hw8_exact": KIT / "grader" / "exact", "hw8_accel": KIT / "grader" / "accel"}
GRADER_ONLY = {"bench.py", "verify_full.py"}  # the accelerator's measurements: the kit's, not the notebook's
CHECK_FILES = {  # name beside the notebook -> its one source in the kit
    "hw8_check.py": KIT / "grader" / "hw8_check.py",
    "hw8_messages.py": KIT / "grader" / "messages.py",
    "hw8_homework.py": KIT / "solution" / "homework.py",
    "hw8_numerics.py": KIT / "solution" / "numerics.py",  # the grader's numerical mode: pinned and read back
    **{f"{name}/{p.name}": p for name, folder in PACKAGES.items() for p in sorted(folder.glob("*.py"))
       if p.name not in GRADER_ONLY},
}


def top_level(name: str) -> str:
    """The entry beside the notebook a file belongs to: itself, or its package's folder."""
    return name.split("/", 1)[0]


def beside_notebook() -> dict[str, Path]:
    """Every file the notebook reads from its own folder (data, then checks), by name, with its source."""
    return {**DATA_FILES, **CHECK_FILES}
