"""Intake: turn what an instructor points at into submissions, refusing bad input early.

A submission is a folder holding `train.ipynb` (id = folder name), a bare
`.ipynb` (id = file stem) or a `.zip` of either; a folder without
`train.ipynb` is a folder of submissions. Nothing here runs student code:
zips are checked member by member before anything is extracted.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import nbformat

NOTEBOOK_NAME = "train.ipynb"
MAX_NOTEBOOK_BYTES = 20 * 1024 * 1024
MAX_ZIP_MEMBERS = 200
MAX_ZIP_UNCOMPRESSED = 50 * 1024 * 1024
MAX_ZIP_RATIO = 200  # uncompressed / compressed; notebooks compress ~5-20x


# What students upload instead of their notebook, by the file's first bytes.
FILE_MAGIC = (
    (b"\x89PNG", "a PNG image"), (b"\xff\xd8\xff", "a JPEG image"), (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a zip archive renamed .ipynb"), (b"\x1f\x8b", "a gzip archive"),
    (b"\x89HDF", "an HDF5 file"), (b"<!DOCTYPE html", "an HTML page"), (b"<html", "an HTML page"),
)


class SubmissionError(ValueError):
    """A submission that cannot be graded; the message is shown to the student."""


@dataclass(frozen=True)
class Submission:
    id: str
    source: Path
    notebook: Path | None  # None when intake failed
    sha256: str  # of the notebook bytes (or of the source file when intake failed)
    problem: str | None = None  # intake error, shown as the execution check's message


# What a batch writes at the top of its output folder beside the submissions' folders: no id may be one
# of these (tests/test_batch.py checks the list against the modules that write them). The names that
# start with "_" or "." (the log, staging, the lock) need no entry: no id starts so (`_safe_id`).
OUTPUT_NAMES = frozenset({"gradebook.csv", "index.html", "roster.csv", "canvas.csv", "results.json",
                          "similarity.html", "similarity.json"})
LINK_REFUSED = "is a symbolic link: refused (the grader reads only a submission's own files)"


def _safe_id(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "submission"
    return cleaned[:80]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def load_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a notebook, with one specific message per way it can be broken."""
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(
            f"{path.name} is {size / 2**20:.1f} MiB (limit {MAX_NOTEBOOK_BYTES // 2**20} MiB): "
            "clear the cell outputs and submit again"
        )
    raw = path.read_bytes()
    if not raw.strip():
        raise SubmissionError(f"{path.name} is empty ({size} bytes): the upload did not include the notebook")
    kind = next((what for magic, what in FILE_MAGIC if raw.startswith(magic)), None)
    if kind:
        raise SubmissionError(f"{path.name} is {kind}, not a Jupyter notebook: submit the .ipynb file itself")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise SubmissionError(f"{path.name} is not a text file, so not a notebook (a notebook is JSON text)") from None
    except json.JSONDecodeError as exc:
        raise SubmissionError(
            f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
            "the file is damaged: download it again from Jupyter"
        ) from None
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise SubmissionError(f"{path.name} is JSON but not a Jupyter notebook (no 'cells')")
    major = data.get("nbformat")
    if major != 4:
        raise SubmissionError(
            f"{path.name} is nbformat {major}; the grader reads nbformat 4: "
            "open it in a current Jupyter and save it again"
        )
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except nbformat.ValidationError as exc:
        raise SubmissionError(f"{path.name} is not a valid nbformat 4 notebook: {exc.message}") from None
    except Exception as exc:  # nbformat raises assorted types on malformed input
        raise SubmissionError(f"{path.name} cannot be read as a notebook: {exc}") from None
    if not any(c.cell_type == "code" and c.source.strip() for c in nb.cells):
        raise SubmissionError(f"{path.name} has no code: the notebook is empty")
    return nb


def _check_zip(zf: zipfile.ZipFile, name: str) -> list[zipfile.ZipInfo]:
    members = zf.infolist()
    if len(members) > MAX_ZIP_MEMBERS:
        raise SubmissionError(f"{name} holds {len(members)} files (limit {MAX_ZIP_MEMBERS})")
    total = 0
    for info in members:
        p = PurePosixPath(info.filename.replace("\\", "/"))
        if p.is_absolute() or ".." in p.parts or info.filename.startswith(("/", "\\")):
            raise SubmissionError(f"{name}: member {info.filename!r} points outside the archive")
        if (info.external_attr >> 16) & 0o170000 == 0o120000:
            raise SubmissionError(f"{name}: member {info.filename!r} is a symbolic link")
        total += info.file_size
        if total > MAX_ZIP_UNCOMPRESSED:
            raise SubmissionError(
                f"{name} unpacks to more than {MAX_ZIP_UNCOMPRESSED // 2**20} MiB: refused (zip bomb?)"
            )
        if info.compress_size and info.file_size / info.compress_size > MAX_ZIP_RATIO:
            raise SubmissionError(
                f"{name}: member {info.filename!r} compresses {info.file_size // info.compress_size}:1 "
                "(zip bomb?): refused"
            )
    return members


def _extract_notebook(zip_path: Path, staging: Path) -> Path:
    """Pick the notebook out of a zip without extracting anything else."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            members = _check_zip(zf, zip_path.name)
            notebooks = [
                m for m in members
                if m.filename.endswith(".ipynb") and "__MACOSX" not in m.filename
                and ".ipynb_checkpoints" not in m.filename
            ]
            named = [m for m in notebooks if PurePosixPath(m.filename).name == NOTEBOOK_NAME]
            chosen = named or notebooks
            if not chosen:
                raise SubmissionError(f"{zip_path.name} holds no .ipynb notebook")
            if len(chosen) > 1:
                names = ", ".join(m.filename for m in chosen)
                raise SubmissionError(f"{zip_path.name} holds several notebooks ({names}): keep one")
            info = chosen[0]
            if info.file_size > MAX_NOTEBOOK_BYTES:
                raise SubmissionError(f"{info.filename} in {zip_path.name} is too large")
            staging.mkdir(parents=True, exist_ok=True)
            target = staging / NOTEBOOK_NAME
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
            return target
    except zipfile.BadZipFile as exc:
        raise SubmissionError(f"{zip_path.name} is not a valid zip archive ({exc})") from None


def _one(path: Path, staging_root: Path) -> tuple[str, Path]:
    """(id, notebook path) of a single submission, or SubmissionError.

    A symbolic link is refused, as a zip's links are: a `train.ipynb` that points at
    another student's notebook (or the kit's solved one) must not be graded as its own.
    """
    if path.is_symlink():
        raise SubmissionError(f"{path.name} {LINK_REFUSED}")
    if path.is_dir():
        if (path / NOTEBOOK_NAME).is_symlink():
            raise SubmissionError(f"{path.name}/{NOTEBOOK_NAME} {LINK_REFUSED}")
        return _safe_id(path.name), path / NOTEBOOK_NAME
    if path.suffix == ".zip":
        sid = _safe_id(path.stem)
        return sid, _extract_notebook(path, staging_root / sid)
    return _safe_id(path.stem), path


def _expand(path: Path) -> list[Path]:
    if not path.exists():
        raise FileNotFoundError(f"no such submission: {path}")
    if path.is_dir() and not (path / NOTEBOOK_NAME).exists():
        return sorted(
            p for p in path.iterdir()
            if not p.name.startswith(".")
            and (p.is_dir() or p.suffix in (".ipynb", ".zip"))
        )
    return [path]


def discover(paths: list[Path], staging_root: Path) -> list[Submission]:
    """Every submission under `paths`; intake failures become submissions with a problem.

    Ids are unique, and never one of the batch's own files (OUTPUT_NAMES, whatever the
    letter case): such an id is renamed as a second submission of the same name is,
    `gradebook.csv` -> `gradebook.csv-2`. Renamed, not refused: the student is still
    graded, under an id that says which upload it is, and the batch's files stay its own.
    """
    found: list[Submission] = []
    seen: set[str] = set()
    for entry in (p for path in paths for p in _expand(Path(path))):
        try:
            sid, notebook = _one(entry, staging_root)
            if not notebook.exists():
                raise SubmissionError(f"{entry.name}/ holds no {NOTEBOOK_NAME}")
            problem, digest = None, _sha256(notebook)
        except SubmissionError as exc:
            sid = _safe_id(entry.name if entry.is_dir() else entry.stem)
            notebook, problem = None, str(exc)
            own_file = entry.is_file() and not entry.is_symlink()  # a link's target is not read, not even hashed
            digest = _sha256(entry) if own_file else hashlib.sha256(str(exc).encode()).hexdigest()
        base, n = sid, 2
        while sid.lower() in seen or sid.lower() in OUTPUT_NAMES:
            sid, n = f"{base}-{n}", n + 1
        seen.add(sid.lower())
        found.append(Submission(sid, entry, notebook, digest, problem))
    return found
