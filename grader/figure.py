"""Part 3's picture: the student's own last figure, taken from the executed notebook.

The handout ends by plotting the network's output against the target. The kernel
draws with matplotlib's inline backend, so every figure a cell shows is an
``image/png`` output (base64) in the executed notebook. The last one shown by a
student's own cell (never by the grader's: those carry the metadata key
``grader``) is the picture the instructor and the student see: it is checked here
(valid base64, PNG signature, at most MAX_BYTES, sane dimensions, every chunk's
checksum up to IEND) before grade.py writes it as ``OUT/<id>/figure.png`` and the
feedback page shows it. Nothing is decoded beyond the PNG's chunk structure.

Only cells that ran in this grading count: a cell after the one that stopped the
run still holds whatever outputs the submission was saved with (nbclient replaces
a cell's outputs only when it runs it), and a figure from the student's own
machine is not evidence of this run.
"""

from __future__ import annotations

import base64
import binascii
import struct
import zlib
from dataclasses import dataclass, field

import nbformat

from grader.cells import student_cell
from grader.execute import GRADER_CELL, IMAGE_MAX_BYTES, Execution, cell_ref

FILE = "figure.png"  # beside feedback.html; the class overview shows OUT/<id>/figure.png
MIME = "image/png"
MAX_BYTES = IMAGE_MAX_BYTES  # larger figures are not kept (the executed notebook keeps none larger either)
MAX_SIDE = 5000  # pixels, either side
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TOO_LARGE = f"it is larger than the {MAX_BYTES / 2**20:g} MiB kept"


@dataclass(frozen=True)
class StudentFigure:
    """The student cells' figures: how many, and the last one, when it can be shown."""

    count: int  # image/png outputs of the submission's own cells
    cell: int | None = None  # the cell showing the last one (index among the submission's own cells)
    png: bytes | None = None  # the last one, validated; None when there is none or it is refused
    size: tuple[int, int] | None = None  # its (width, height) in pixels
    problem: str | None = None  # why the last one is refused
    where: str = field(default="", compare=False)  # that cell as messages name it (grader.cells)

    @property
    def shown(self) -> bool:
        return self.png is not None


def _encoded(value: object) -> str:
    """An image/png payload as nbformat holds it: a string, or a list of lines in raw JSON."""
    if isinstance(value, list):
        value = "".join(str(v) for v in value)
    return value if isinstance(value, str) else ""


def student_images(nb: nbformat.NotebookNode, through: int | None = None) -> list[tuple[int, str]]:
    """(cell, base64 payload) of every non-empty image/png output of a student cell, in notebook order.

    `through`: the last student cell to look at (index among the submission's own cells); None: all.
    """
    images = []
    for index, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") != "code" or GRADER_CELL in cell.get("metadata", {}):
            continue
        student = cell_ref(nb, index).student_index
        if through is not None and student > through:
            break
        for out in cell.get("outputs", []):
            if out.get("output_type") not in ("display_data", "execute_result"):
                continue
            payload = _encoded((out.get("data") or {}).get(MIME))
            if payload.strip():
                images.append((student, payload))
    return images


def png_size(data: bytes) -> tuple[int, int]:
    """(width, height) of a complete, undamaged PNG no larger than MAX_BYTES; ValueError says what is wrong."""
    if len(data) > MAX_BYTES:
        raise ValueError(TOO_LARGE)
    if not data.startswith(PNG_SIGNATURE):
        raise ValueError("it is not a PNG image")
    if len(data) < 33 or data[12:16] != b"IHDR":
        raise ValueError("it is not a complete PNG image")
    width, height = struct.unpack(">II", data[16:24])
    if not (width and height):
        raise ValueError(f"it is an empty image ({width}×{height} pixels)")
    if width > MAX_SIDE or height > MAX_SIDE:
        raise ValueError(f"it is {width}×{height} pixels, more than the {MAX_SIDE}×{MAX_SIDE} shown")
    pos = len(PNG_SIGNATURE)
    while True:  # every chunk, up to IEND: its length fits and its checksum holds
        if pos + 12 > len(data):
            raise ValueError("it is not a complete PNG image")
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        end = pos + 12 + length
        if end > len(data):
            raise ValueError("it is not a complete PNG image")
        (crc,) = struct.unpack(">I", data[end - 4:end])
        if zlib.crc32(data[pos + 4:end - 4]) != crc:
            raise ValueError("it is a damaged PNG image (a chunk fails its checksum)")
        if data[pos + 4:pos + 8] == b"IEND":
            return width, height
        pos = end


def decode(payload: str) -> bytes:
    """The bytes of a base64 payload of at most MAX_BYTES; ValueError says what is wrong."""
    text = "".join(payload.split())
    if len(text) > 4 * (MAX_BYTES // 3 + 1):  # refused before decoding
        raise ValueError(TOO_LARGE)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("it is not valid base64") from None


def ran_through(run: Execution) -> int | None:
    """The last student cell that ran in this grading: None when all of them did, -1 when none did."""
    if run.completed:
        return None
    return run.failed_cell if run.failed_cell is not None else -1


def student_figure(nb: nbformat.NotebookNode | None, through: int | None = None) -> StudentFigure:
    """The last figure a student cell (up to `through`) shows, validated; count 0 without a notebook or a figure."""
    images = student_images(nb, through) if nb is not None else []
    if not images:
        return StudentFigure(0)
    cell, payload = images[-1]
    where = student_cell(nb, cell).label
    try:
        png = decode(payload)
        size = png_size(png)
    except ValueError as exc:
        return StudentFigure(len(images), cell, problem=str(exc), where=where)
    return StudentFigure(len(images), cell, png, size, where=where)


def from_run(run: Execution) -> StudentFigure:
    """The last figure the executed notebook shows from a student cell that ran in this grading."""
    return student_figure(run.notebook, ran_through(run))


__all__ = ["FILE", "MAX_BYTES", "MAX_SIDE", "StudentFigure", "decode", "from_run", "png_size", "ran_through",
           "student_figure", "student_images"]
