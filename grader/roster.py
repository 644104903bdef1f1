"""The class roster: who should have submitted, joined with what was graded, and the LMS export.

    roster = read_roster("class.csv", parse_columns("id=student_id,name=full_name"))
    entries = join(report.collect(out), roster)
    write_joined(entries, out / ROSTER)          # OUT/roster.csv
    write_canvas(entries, out / CANVAS)          # OUT/canvas.csv, for Canvas's gradebook import

A roster is a UTF-8 CSV file (a byte-order mark, as Excel writes, is fine; so is
`;` as the separator) with a header line. Its columns are found by name,
case-insensitively: `id` (required; it is matched exactly with the submission id,
the folder or file name a submission was graded under), `name`, `email`
(required unless mapped to nothing, `email=`) and `section` (optional).

The join lists every roster student, in roster order, then every submission not
on the roster: a student without a submission gets an empty score and the flag
"no submission"; a submission whose id is not on the roster is flagged "not on
the roster". A grader error is not a grade: its score stays empty.

Canvas's gradebook import (Grades → Import) reads the columns Student, ID, SIS
User ID, SIS Login ID, Section, then one column per assignment, and a row whose
first cell is "Points Possible". The export fills Student with the roster's
name, SIS User ID with its id, SIS Login ID with its email and Section with its
section; it leaves Canvas's own numeric ID empty, so Canvas matches each row by
SIS User ID, then SIS Login ID, then name. Only roster students are exported;
a missing submission is left empty (Canvas then changes nothing for that student).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from grader import report
from grader.results import GradeResult

ROSTER = "roster.csv"
CANVAS = "canvas.csv"
FIELDS = ("id", "name", "email", "section")
DEFAULT_COLUMNS = {"id": "id", "name": "name", "email": "email"}  # section: used when there is one
REQUIRED = ("id",)  # name and email may be mapped to nothing (name=, email=)
NO_SUBMISSION = "no submission"
NOT_ON_ROSTER = "not on the roster"
CANVAS_ASSIGNMENT = "HW8 problem 2"
CANVAS_STUDENT_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MAX_BYTES = 20 * 2**20  # a roster of this size is not a roster


class RosterError(ValueError):
    """A roster (or its column mapping) that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class Student:
    id: str
    name: str = ""
    email: str = ""
    section: str = ""
    line: int = 0  # where the row starts in the roster file


@dataclass(frozen=True)
class Roster:
    path: Path
    students: tuple[Student, ...]

    def ids(self) -> set[str]:
        return {s.id for s in self.students}


@dataclass
class Entry:
    """One line of the joined result: a roster student, a submission, or both."""

    id: str
    name: str = ""
    email: str = ""
    section: str = ""
    score: float | None = None  # None: no submission, or a grader error
    max_score: float | None = None
    flags: list[str] = field(default_factory=list)
    on_roster: bool = True
    submitted: bool = False


def parse_columns(spec: str | None) -> dict[str, str]:
    """`id=student_id,name=full_name,email=mail` → the column of each field (the defaults for the rest).

    `field=` with nothing after it (an empty column name): the roster has no such column (not for id).
    """
    columns: dict[str, str] = dict(DEFAULT_COLUMNS)
    if not spec or not spec.strip():
        return columns
    seen = set()
    for part in spec.split(","):
        part = part.strip()
        if not part:
            continue
        key, eq, value = part.partition("=")
        key = key.strip().lower()
        if not eq:
            raise RosterError(f"--roster-columns: {part!r} is not FIELD=COLUMN "
                              f"(for example id=student_id,name=full_name,email=mail)")
        if key not in FIELDS:
            raise RosterError(f"--roster-columns: unknown field {key!r} (the fields are {', '.join(FIELDS)})")
        if key in seen:
            raise RosterError(f"--roster-columns: {key} is given twice")
        seen.add(key)
        value = value.strip()
        if not value and key in REQUIRED:
            raise RosterError(f"--roster-columns: {key} needs a column (the id is how submissions are matched)")
        columns[key] = value
    return columns


def _decode(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise RosterError(f"{path}: cannot read the roster: {exc.strerror or exc}") from None
    if len(raw) > MAX_BYTES:
        raise RosterError(f"{path}: {len(raw)} bytes: not a roster (at most {MAX_BYTES} bytes)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise RosterError(f"{path}, line {line}: not UTF-8 text (byte {raw[exc.start]:#04x}): save the roster "
                          "as 'CSV UTF-8' (Excel) or UTF-8 text") from None


def _norm(name: str) -> str:
    return " ".join(name.split()).casefold()


def read_roster(path: Path | str, columns: dict[str, str] | None = None) -> Roster:
    """The students of a roster CSV file; `columns`: the column of each field (default DEFAULT_COLUMNS).

    Raises RosterError, naming the file and the line, for: a file that is not UTF-8, no header, a
    missing column, a row with more or fewer fields than the header, an empty or duplicate id.
    """
    path = Path(path)
    columns = dict(DEFAULT_COLUMNS if columns is None else columns)
    if not columns.get("id"):
        raise RosterError(f"{path}: no id column given (the id is how submissions are matched)")
    text = _decode(path)
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)

    def rows():
        while True:
            start = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                raise RosterError(f"{path}, line {start}: not valid CSV: {exc}") from None
            yield start, row

    it = rows()
    header = None
    for line, row in it:
        if any(cell.strip() for cell in row):
            header = [cell.strip() for cell in row]
            header_line = line
            break
    if header is None:
        raise RosterError(f"{path}: empty: a roster needs a header line (for example id,name,email) and a line "
                          "per student")
    index: dict[str, int] = {}
    normalized = [_norm(h) for h in header]
    for key in FIELDS:
        wanted = columns.get(key, "section" if key == "section" else "")  # a "section" column: used if there
        if not wanted:  # mapped to nothing
            continue
        hits = [i for i, h in enumerate(normalized) if h == _norm(wanted)]
        if len(hits) > 1:
            raise RosterError(f"{path}, line {header_line}: the column {wanted!r} appears {len(hits)} times")
        if hits:
            index[key] = hits[0]
        elif key in columns:  # asked for (a section only when mapped explicitly)
            hint = f"; name it with --roster-columns {key}=COLUMN"
            if key not in REQUIRED:
                hint += f", or {key}= if the roster has none"
            raise RosterError(f"{path}, line {header_line}: no column {wanted!r} for the {key} (the columns are: "
                              f"{', '.join(repr(h) for h in header)}){hint}")
    students: list[Student] = []
    first_line: dict[str, int] = {}
    for line, row in it:
        if not any(cell.strip() for cell in row):
            continue  # a blank line
        extra = row[len(header):]
        if len(row) < len(header) or any(cell.strip() for cell in extra):
            hint = (": a name with a comma must be in double quotes" if len(row) > len(header)
                    and delimiter == "," else "")
            raise RosterError(f"{path}, line {line}: {len(row)} fields where the header has {len(header)}{hint}")
        values = {key: row[i].strip() for key, i in index.items()}
        sid = values["id"]
        if not sid:
            raise RosterError(f"{path}, line {line}: the id ({header[index['id']]!r}) is empty")
        if sid in first_line:
            raise RosterError(f"{path}, line {line}: the id {sid!r} is already on line {first_line[sid]}")
        first_line[sid] = line
        students.append(Student(sid, values.get("name", ""), values.get("email", ""), values.get("section", ""),
                                line))
    if not students:
        raise RosterError(f"{path}: no students, only the header line")
    return Roster(path, tuple(students))



def join(results: Iterable[GradeResult], roster: Roster) -> list[Entry]:
    """Every roster student (roster order), then every submission not on the roster (by id)."""
    results = list(results)
    flags = report.class_flags(results)
    by_id = {r.submission_id: r for r in results}
    entries = []

    def graded(entry: Entry, r: GradeResult) -> Entry:
        entry.submitted = True
        if not r.is_grader_error:
            entry.score, entry.max_score = r.score, r.max_score
        entry.flags += flags[r.submission_id]
        return entry

    for s in roster.students:
        entry = Entry(s.id, s.name, s.email, s.section)
        if s.id in by_id:
            entries.append(graded(entry, by_id[s.id]))
        else:
            entry.flags.append(NO_SUBMISSION)
            entries.append(entry)
    known = roster.ids()
    for sid in sorted(set(by_id) - known):
        entries.append(graded(Entry(sid, on_roster=False, flags=[NOT_ON_ROSTER]), by_id[sid]))
    return entries


def _score(x: float | None) -> str:
    return "" if x is None else f"{x:g}"


def write_joined(entries: list[Entry], path: Path) -> Path:
    """OUT/roster.csv: id, name, email, section, score, max_score, flags (empty score: no grade)."""
    rows: list[list[object]] = [["id", "name", "email", "section", "score", "max_score", "flags"]]
    rows += [[e.id, e.name, e.email, e.section, _score(e.score), _score(e.max_score), "; ".join(e.flags)]
             for e in entries]
    report.atomic_write(Path(path), report.csv_text(rows))
    return Path(path)


def write_canvas(entries: list[Entry], path: Path, assignment: str = CANVAS_ASSIGNMENT,
                 points_possible: float | None = None) -> Path:
    """A CSV file for Canvas's gradebook import: the roster's students, one assignment column.

    `assignment`: the column's title; Canvas adds the scores to the assignment of that title, or to the
    one of that id when the title ends in " (ID)" as in Canvas's own export, and creates it otherwise.
    `points_possible`: default the graded submissions' maximum score. Refuses an export where no
    roster student has a grade (the roster's ids are not the submission ids, most likely).
    """
    assignment = assignment.strip()
    if not assignment:
        raise RosterError("the Canvas assignment needs a title")
    if not any(e.on_roster and e.score is not None for e in entries):
        raise RosterError("no student on the roster has a graded submission: nothing to export (the roster's ids "
                          "are matched with the submission ids, the folder or file names that were graded)")
    if points_possible is None:
        totals = sorted({e.max_score for e in entries if e.max_score is not None})
        if len(totals) > 1:
            raise RosterError(f"the submissions are graded out of different totals ({', '.join(map(_score, totals))}): "
                              "regrade them under one rubric before exporting")
        points_possible = totals[0]
    rows: list[list[object]] = [[*CANVAS_STUDENT_COLUMNS, assignment],
                                ["Points Possible", "", "", "", "", _score(points_possible)]]
    rows += [[e.name, "", e.id, e.email, e.section, _score(e.score)] for e in entries if e.on_roster]
    report.atomic_write(Path(path), report.csv_text(rows))
    return Path(path)


def summary(entries: list[Entry]) -> str:
    """One line: how the roster and the graded submissions meet."""
    c = Counter((e.on_roster, e.submitted) for e in entries)
    line = (f"{c[True, True] + c[True, False]} on the roster: {c[True, True]} with a submission, "
            f"{c[True, False]} without")
    if c[False, True]:
        strays = ", ".join(e.id for e in entries if not e.on_roster)
        line += f"; {c[False, True]} submission(s) not on the roster: {strays}"
    return line
