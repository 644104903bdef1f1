"""The student bundle (`nox -s release`): dist/hw8-p2-student.zip, a folder that runs where it is unpacked.

It holds, under one top folder, the template notebook, the two HW8 data files
with their checksums, the notebook's checks (``grader/handout.py`` lists
what sits beside the notebook) and a short README written here from the
kit's facts: the names and files from ``solution/homework.py``, the course
budget from the rubric, the time an epoch takes as the notebook's own clock
measured it outside the grader (``grader/student_timing.json``, with its
machine), the lava-dl pin from noxfile.py.

Nothing stale or damaged is shipped: the build refuses a template that
``python -m grader assign`` would write differently, and data whose SHA-256
differs from data/SHA256SUMS. The zip is byte-for-byte reproducible.

    python -m grader.release [--out dist/hw8-p2-student.zip]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import stat
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from grader.handout import ASSIGNMENT_DIR, CHECK_FILES, CHECKSUMS, DATA_FILES, KIT, top_level
from solution import homework

ZIP_NAME = "hw8-p2-student.zip"
DEFAULT_ZIP = KIT / "dist" / ZIP_NAME
FOLDER = "hw8-p2"  # the zip's one top folder: unpacking never spills files
TEMPLATE = ASSIGNMENT_DIR / homework.NOTEBOOK
TIMING = KIT / "grader" / "student_timing.json"  # the bundle's notebook timed by its own clock, with its machine
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
README = "README.md"
SUMS = "SHA256SUMS"
REQUIREMENTS = "requirements.txt"
STUDENT_PINS = KIT / "requirements" / "student.txt"  # the kit's own pins, for the notebook and JupyterLab
PYTHONS = ("3.10", "3.11", "3.12")  # every pin has wheels for these; lava-dl 0.6.0 itself says <3.11 (ignored)
WRITES = {  # what each file the notebook writes holds (names: solution/homework.py)
    homework.NETWORK_STATE: "the best network's `state_dict`, saved during training (`torch.save`)",
    homework.NETWORK_HDF5: "that network exported to HDF5 (`net.export_hdf5`): what the grader scores",
    homework.LOSS_LOG: "the learning statistics (`stats.save`)",
}


class ReleaseError(RuntimeError):
    """The bundle cannot be built as it should be; the message names the file and the fix."""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def data_checksums() -> dict[str, str]:
    """{name: sha256} of the HW8 data files, each checked against data/SHA256SUMS."""
    recorded: dict[str, str] = {}
    for line in CHECKSUMS.read_text().splitlines():
        if line.strip():
            digest, name = line.split(maxsplit=1)
            recorded[name.lstrip("*")] = digest
    sums = {}
    for name, path in DATA_FILES.items():
        if name not in recorded:
            raise ReleaseError(f"{CHECKSUMS} lists no checksum for {name}")
        actual = _sha256(path)
        if actual != recorded[name]:
            raise ReleaseError(f"{path} has SHA-256 {actual}, but {CHECKSUMS} records {recorded[name]}: "
                               "restore it (`nox -s data -- --check` says more)")
        sums[name] = actual
    return sums


def current_template() -> bytes:
    """assignment/train.ipynb, refused unless it is what `python -m grader assign` writes."""
    from grader import assign

    text, leaks = assign.generate()
    if leaks:
        raise ReleaseError(f"the template would leak solution code: {leaks[0]}")
    if not TEMPLATE.is_file() or TEMPLATE.read_text(encoding="utf-8") != text:
        raise ReleaseError(f"{TEMPLATE} is stale: regenerate it with `nox -s assign`")
    return text.encode("utf-8")


@dataclass(frozen=True)
class Timing:
    """An epoch's time as a student's notebook measures it (its clock), and the machine that measured it."""

    s_per_epoch: float
    threads: int
    cpu: str  # `grep -m1 'model name' /proc/cpuinfo`
    cores: int
    torch: str
    how: str

    @classmethod
    def load(cls, path: Path = TIMING) -> "Timing":
        record = json.loads(path.read_text())
        return cls(float(record["s_per_epoch"]), int(record["threads"]), str(record["cpu"]), int(record["cores"]),
                   str(record["versions"]["torch"]), str(record["how"]))


def student_pins() -> dict[str, str]:
    """{name: version} of requirements/student.txt (the bundle's requirements.txt), names lower-case."""
    pins = {}
    for line in STUDENT_PINS.read_text().splitlines():
        spec = line.split("#")[0].split(";")[0].strip()
        if "==" in spec:
            name, version = spec.split("==")
            pins[name.strip().lower()] = version.strip()
    return pins


def setup_command(platform: str) -> str:
    """The README's one setup command: a venv in this folder, the pins, then lava-dl without its own pins."""
    from grader.gradescope import lava_dl_pin

    python, venv = ("python3", ".venv/bin/python") if platform == "posix" else ("py", r".venv\Scripts\python")
    return (f"{python} -m venv .venv && {venv} -m pip install -r {REQUIREMENTS} && "
            f"{venv} -m pip install --no-deps --ignore-requires-python {lava_dl_pin()}")


def colab_cell() -> str:
    """Colab's first cell: lava-dl beside Colab's own packages, the zip unpacked, and into its folder."""
    from grader.gradescope import lava_dl_pin

    return (f"!pip install -q --no-deps --ignore-requires-python {lava_dl_pin()}\n"
            f"    !unzip -oq /content/{ZIP_NAME} -d /content\n"
            f"    %cd /content/{FOLDER}")


def _course_epochs() -> int:
    from grader.config import load_config

    return load_config().budget.epochs


def student_readme(course_epochs: int | None = None) -> str:
    """The bundle's README: what is in it, how to set up and run, how long, how to check, what to hand in."""
    from grader.gradescope import lava_dl_pin
    from grader.messages import duration

    epochs = _course_epochs() if course_epochs is None else course_epochs
    timing = Timing.load()
    pins = student_pins()
    names = ", ".join(f"`{n}`" for n in homework.HANDOUT_NAMES)
    data = ", ".join(f"`{n}`" for n in homework.DATA_FILES)
    checks = ", ".join(f"`{n}`" for n in dict.fromkeys(map(top_level, CHECK_FILES)))
    writes = "\n".join(f"- `{path}`: {WRITES[path]}" for path in homework.OUTPUT_FILES)
    pin = lava_dl_pin()
    threads = "one torch thread" if timing.threads == 1 else f"{timing.threads} torch threads"
    how_long = (f"**How long.** The notebook times itself: after the first epochs of training it prints the time an "
                f"epoch takes on your machine and how long the course's {epochs} epochs take there (`time: ...`). "
                f"Measured that way on a {timing.cores}-core `{timing.cpu}` (`grep -m1 'model name' /proc/cpuinfo`), "
                f"{threads}, lava-dl 0.6.0 on the CPU with torch {timing.torch}: {timing.s_per_epoch:.3f} s an epoch, "
                f"about {duration(epochs * timing.s_per_epoch)} for {epochs} epochs. The notebook's first cell keeps "
                f"torch to one thread (`torch.set_num_threads(1)`): on 2 cores, two threads ran an epoch 4x slower. "
                f"Try your code with `{homework.BUDGET_VARIABLE} = 20` in the `{homework.PARAMETERS_TAG}` cell first "
                f"(seconds), then run the full {epochs} epochs for the notebook you hand in.")
    return f"""# HW8 problem 2: spike-to-spike regression with lava-dl SLAYER

Everything the homework needs, side by side. Keep the files together: the notebook reads the data and
its checks from its own folder, and writes its results into `{homework.TRAINED_FOLDER}/` beside them.

| file | what it is |
| --- | --- |
| `{homework.NOTEBOOK}` | the notebook you complete (parts 2 and 3) |
| {data} | the HW8 spikes, {homework.SHAPE} each; `{SUMS}` holds their SHA-256 (`sha256sum -c {SUMS}`) |
| {checks} | the homework's checks, called from the notebook, and what they rely on |

## Set up once
You need Python {PYTHONS[0]} to {PYTHONS[-1]} (`python3 --version`; on Windows `py --version`). `{REQUIREMENTS}`
pins everything the notebook and JupyterLab use to the versions the grader runs (torch {pins["torch"]}, numpy
{pins["numpy"]}, h5py {pins["h5py"]}, JupyterLab {pins["jupyterlab"]}); {pin} goes in beside them without its own
dependency list, which asks for Python <3.11 and an older torch (it runs with these). One command, in this
folder:

**Linux, macOS** (Terminal):

    {setup_command("posix")}

**Windows** (Command Prompt or PowerShell 7; in Windows PowerShell 5 put `;` for `&&`):

    {setup_command("windows")}

On Linux, torch from PyPI is its CUDA build: the venv takes about 6 GB (torch's CUDA libraries) even on a
laptop without a GPU. PyTorch's CPU build is smaller (`.venv/bin/python -m pip install torch=={pins["torch"]}
--index-url https://download.pytorch.org/whl/cpu` before the `-r {REQUIREMENTS}` step), but the course has not tried
it, and the grader's numbers were made with PyPI's build. On macOS (Apple silicon) and Windows, PyPI's torch is
a CPU build already. Intel Macs: torch {pins["torch"]} publishes no wheel for them; use Colab.

**Google Colab**: upload this zip (Files panel), then make the notebook's first cell, and run it:

    {colab_cell()}

It keeps Colab's own torch, numpy, matplotlib, h5py and opencv, and adds only lava-dl, the one package the
notebook needs that Colab lacks.

What was run and what is argued: the Linux command above is run by the course's CI on Python 3.11 (x86_64)
from this zip, followed by the solved notebook (about 4 minutes to install from a local pip cache). The rest is
argued: pip found a wheel of every pin for Linux x86_64 (Python 3.10 and 3.12), macOS arm64 (3.10, 3.12) and
Windows x86_64 (3.10, 3.11, 3.12) (`pip install --dry-run --only-binary=:all: --platform ... --python-version
...`), but installed none of them there; pip adds each platform's own extras (appnope, colorama, pywinpty)
itself. Colab: lava-dl is pure Python and Colab already has every other package the notebook imports (torch,
torchvision, numpy, h5py, matplotlib, opencv, pillow, tqdm, IPython); lava-dl 0.6.0 declares numpy <2, older
than Colab's, and that combination was not run.

## Run
    .venv/bin/jupyter lab {homework.NOTEBOOK}        # Windows: .venv\\Scripts\\jupyter lab {homework.NOTEBOOK}

Replace each `# YOUR CODE HERE` and the `raise NotImplementedError(...)` under it with your code; its
message says what belongs there. Keep the handout's names ({names}), and set `{homework.BUDGET_VARIABLE}`
only in the cell tagged `{homework.PARAMETERS_TAG}`.

{how_long}

## Check as you go
Each step ends with a check that prints `✓` and what passed, or `✗` and what to fix:

    hw8_check.mode()                # the grader's numerical mode (hw8_numerics.py, pinned in the first cell)
    hw8_check.dataset(training_set)
    hw8_check.network(net)
    hw8_check.loss(error)
    hw8_check.export(trained_folder, net)

They speak the grader's words, but the grader does not read them: it runs your notebook again and
measures everything itself.

## Hand in
`{homework.NOTEBOOK}`, run from top to bottom. It must write, in the folder `{homework.TRAINED_FOLDER}` next to it:

{writes}

The grader runs it again from the top in a fresh folder holding this folder's data and checks, at
{epochs} epochs, then scores `{homework.NETWORK_HDF5}`: the shapes, slayer's HDF5 structure
({" -> ".join(map(str, homework.LAYERS))}), and the network's SpikeTime loss and raster similarity against
the reference solution trained at the same budget.
"""


def members(course_epochs: int | None = None) -> dict[str, bytes]:
    """Every file of the bundle by its name in the zip, in the zip's order."""
    sums = data_checksums()
    files = {homework.NOTEBOOK: current_template(), README: student_readme(course_epochs).encode("utf-8"),
             REQUIREMENTS: STUDENT_PINS.read_bytes()}
    files.update({name: path.read_bytes() for name, path in DATA_FILES.items()})
    files[SUMS] = "".join(f"{digest}  {name}\n" for name, digest in sums.items()).encode()
    files.update({name: path.read_bytes() for name, path in CHECK_FILES.items()})
    return {f"{FOLDER}/{name}": data for name, data in files.items()}


def build_zip(dest: Path = DEFAULT_ZIP, course_epochs: int | None = None) -> Path:
    """Write the bundle to `dest` (reproducibly: fixed dates and modes) and return `dest`."""
    files = members(course_epochs)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
    tmp.replace(dest)
    return dest


def main(argv: list[str] | None = None) -> int:
    """`python -m grader.release [--out PATH]`: 0 written, 1 refused (stale template, damaged data)."""
    parser = argparse.ArgumentParser(prog="python -m grader.release", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_ZIP, help="zip to write (default: %(default)s)")
    args = parser.parse_args(argv)
    try:
        dest = build_zip(args.out)
    except ReleaseError as exc:
        print(f"release: {exc}", file=sys.stderr)
        return 1
    with zipfile.ZipFile(dest) as zf:
        for info in zf.infolist():
            print(f"  {info.file_size:>8,}  {info.filename}")
    print(f"release: wrote {dest}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
