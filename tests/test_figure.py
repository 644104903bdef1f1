"""Part 3's picture: the student's last figure out of the executed notebook, the optional `figure`
check, and the feedback page's map of hits, misses and extra spikes (fast: notebooks and rasters
built in memory, no kernel)."""

from __future__ import annotations

import base64
import html
import io
import struct
import zlib
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader import checks, figure, report
from grader.checks import Evidence
from grader.config import DEFAULT_RUBRIC, load_config
from grader.execute import GRADER_CELL, Execution
from grader.figure import MAX_BYTES, StudentFigure, decode, png_size, student_figure
from grader.metrics import spike_matches
from grader.results import CheckResult, GradeResult
from grader.rubric import NO_FIGURE

# --------------------------------------------------------------------------------------------
# PNGs and notebooks built in memory
# --------------------------------------------------------------------------------------------


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, padding: int = 0) -> bytes:
    """A real RGB PNG of width × height white pixels; `padding`: bytes of one extra text chunk."""
    rows = b"".join(b"\x00" + b"\xff" * (3 * width) for _ in range(height))
    extra = _chunk(b"tEXt", b"Comment\x00" + b"x" * padding) if padding else b""
    return (figure.PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + extra + _chunk(b"IDAT", zlib.compress(rows)) + _chunk(b"IEND", b""))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _image(payload: str, kind: str = "display_data") -> nbformat.NotebookNode:
    data = {"image/png": payload, "text/plain": "<Figure size 700x700 with 1 Axes>"}
    if kind == "execute_result":
        return nbformat.v4.new_output(kind, data=data, execution_count=1)
    return nbformat.v4.new_output(kind, data=data)


def _code(*outputs: nbformat.NotebookNode, grader: str | None = None) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell("plt.show()")
    cell.outputs = list(outputs)
    if grader:
        cell.metadata[GRADER_CELL] = grader
    return cell


def _notebook(*cells: nbformat.NotebookNode) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = list(cells)
    return nb


def _executed(last: bytes | str) -> nbformat.NotebookNode:
    """As the grader runs it: preamble, a markdown cell, two student figures (cells 1 and 3), the probe's own image."""
    last = last if isinstance(last, str) else _b64(last)
    return _notebook(
        _code(grader="preamble"),
        nbformat.v4.new_markdown_cell("# Part 3"),
        _code(_image(_b64(_png(10, 20)))),
        _code(nbformat.v4.new_output("stream", name="stdout", text="loss 123\n")),
        _code(_image(last)),
        _code(_image(_b64(_png(50, 60))), grader="probe"),
    )


def _run(nb: nbformat.NotebookNode | None, completed: bool = True, failed_cell: int | None = None) -> Execution:
    return Execution(workdir=Path("."), notebook=nb, completed=completed, failed_cell=failed_cell)


# --------------------------------------------------------------------------------------------
# extraction
# --------------------------------------------------------------------------------------------


def test_hand_built_png_is_a_png() -> None:
    from PIL import Image

    with Image.open(io.BytesIO(_png(30, 40))) as img:
        assert img.size == (30, 40) and img.format == "PNG"
    assert png_size(_png(30, 40)) == (30, 40)


def test_the_last_student_figure_is_taken_and_the_graders_ignored() -> None:
    png = _png(30, 40)
    assert student_figure(_executed(png)) == StudentFigure(count=2, cell=3, png=png, size=(30, 40))


def test_a_figure_only_in_a_grader_cell_is_no_figure() -> None:
    nb = _notebook(_code(), _code(_image(_b64(_png(50, 60))), grader="probe"))
    assert student_figure(nb) == StudentFigure(0)


def test_no_figure() -> None:
    stream = nbformat.v4.new_output("stream", name="stdout", text="done\n")
    text_only = nbformat.v4.new_output("display_data", data={"text/plain": "<Figure size 700x700 with 0 Axes>"})
    emptied = _image("")  # what the grader's output cap leaves of an image
    nb = _notebook(nbformat.v4.new_markdown_cell("no code"), _code(stream), _code(text_only), _code(emptied))
    assert student_figure(nb) == StudentFigure(0)
    assert student_figure(None) == StudentFigure(0)
    assert student_figure(_notebook()) == StudentFigure(0)


def test_execute_result_and_raw_json_lines_count() -> None:
    png = _png(7, 3)
    encoded = _b64(png)
    lines = [encoded[:20] + "\n", encoded[20:]]  # a notebook read without nbformat keeps lines as a list
    nb = _notebook(_code(_image(encoded, "execute_result")), _code(_image(lines)))  # type: ignore[arg-type]
    assert student_figure(nb) == StudentFigure(count=2, cell=1, png=png, size=(7, 3))


def test_only_cells_that_ran_in_this_grading_count() -> None:
    """A cell after the one that stopped the run still holds the outputs it was submitted with."""
    nb = _executed(_png(30, 40))
    first = _png(10, 20)
    assert figure.from_run(_run(nb, completed=False, failed_cell=2)) == StudentFigure(1, 1, first, (10, 20))
    assert figure.from_run(_run(nb, completed=False, failed_cell=1)) == StudentFigure(1, 1, first, (10, 20))
    assert figure.from_run(_run(nb, completed=False, failed_cell=0)) == StudentFigure(0)
    assert figure.from_run(_run(nb, completed=False, failed_cell=None)) == StudentFigure(0)  # the kernel never ran
    assert figure.from_run(_run(nb)).cell == 3
    assert figure.from_run(_run(None, completed=False)) == StudentFigure(0)


GOOD = _png(30, 40)
BAD_CRC = GOOD[:-1] + bytes([GOOD[-1] ^ 1])  # one bit of the IEND chunk's checksum
WIDE = _png(5001, 2)


@pytest.mark.parametrize(("payload", "problem"), [
    ("not base64 at all!", "it is not valid base64"),
    (_b64(b"\xff\xd8\xff\xe0" + GOOD[4:]), "it is not a PNG image"),
    (_b64(GOOD[:20]), "it is not a complete PNG image"),
    (_b64(GOOD[:-12]), "it is not a complete PNG image"),
    (_b64(GOOD[:-3]), "it is not a complete PNG image"),
    (_b64(GOOD[:8] + _chunk(b"tEXt", b"no header first") + GOOD[8:]), "it is not a complete PNG image"),
    (_b64(BAD_CRC), "it is a damaged PNG image (a chunk fails its checksum)"),
    (_b64(WIDE), "it is 5001×2 pixels, more than the 5000×5000 shown"),
    (_b64(GOOD) + "A", "it is not valid base64"),  # one character too many
])
def test_a_corrupt_last_figure_is_refused(payload: str, problem: str) -> None:
    assert student_figure(_executed(payload)) == StudentFigure(count=2, cell=3, problem=problem)


def test_size_limit() -> None:
    base = len(_png(1, 1, padding=1)) - 1  # the PNG's size without its padding
    at_limit = _png(1, 1, padding=MAX_BYTES - base)
    assert len(at_limit) == MAX_BYTES
    assert student_figure(_executed(at_limit)) == StudentFigure(2, 3, at_limit, (1, 1))
    over = _png(1, 1, padding=MAX_BYTES - base + 1)  # decoded, then refused
    assert student_figure(_executed(over)).problem == "it is larger than the 2 MiB kept"
    far_over = _png(1, 1, padding=MAX_BYTES - base + 4)  # refused before decoding
    with pytest.raises(ValueError, match="^it is larger than the 2 MiB kept$"):
        decode(_b64(far_over))
    assert student_figure(_executed(far_over)).problem == "it is larger than the 2 MiB kept"


def test_dimension_limits() -> None:
    assert png_size(_png(5000, 1)) == (5000, 1)
    assert png_size(_png(1, 5000)) == (1, 5000)
    with pytest.raises(ValueError, match="^it is 1×5001 pixels, more than the 5000×5000 shown$"):
        png_size(_png(1, 5001))
    zero = figure.PNG_SIGNATURE + _chunk(b"IHDR", struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)) + _chunk(b"IEND", b"")
    with pytest.raises(ValueError, match=r"^it is an empty image \(0×10 pixels\)$"):
        png_size(zero)


# --------------------------------------------------------------------------------------------
# the executed notebook keeps figures apart from what a cell prints
# --------------------------------------------------------------------------------------------


def _msg(kind: str, **content) -> dict:
    content.setdefault("metadata", {})
    return {"msg_type": kind, "header": {"msg_type": kind}, "parent_header": {"msg_id": "m"}, "content": content}


def _client(max_chars: int = 100):
    from grader.execute import _CappedClient

    client = _CappedClient(nbformat.v4.new_notebook())
    client.max_chars = max_chars
    client.clear_before_next_output = False  # what nbclient sets before it runs a cell
    return client


def test_a_figure_is_not_printed_output() -> None:
    """The handout's own part-3 plot is some 265,000 characters of base64: kept whole, and not "printed"."""
    client, outs = _client(), []
    figure_ = "A" * 265_000
    client.output(outs, _msg("display_data", data={"image/png": figure_, "text/plain": "<Figure>"}), None, 3)
    assert outs[-1]["data"] == {"image/png": figure_, "text/plain": "<Figure>"}
    assert client.printed == {3: 8} and client.drawn == {3: 265_000}
    client.output(outs, _msg("stream", name="stdout", text="x" * 150), None, 3)  # past the text budget
    assert outs[-1]["text"] == "x" * 92
    client.output(outs, _msg("display_data", data={"image/png": "B" * 10, "text/plain": "<Figure>"}), None, 3)
    assert outs[-1]["data"] == {"text/plain": "", "image/png": "B" * 10}  # the text is spent, the figure kept
    assert len(outs) == 3


def test_figures_past_the_allowance_are_not_kept() -> None:
    from grader.execute import IMAGE_MAX_CHARS, IMAGES_MAX_CHARS, _clip_outputs

    assert IMAGE_MAX_CHARS == len(_b64(b"x" * MAX_BYTES)) == 2_796_204 and IMAGES_MAX_CHARS == 8 * IMAGE_MAX_CHARS
    client, outs = _client(), []
    client.output(outs, _msg("display_data", data={"image/png": "A" * IMAGE_MAX_CHARS, "text/plain": "<F>"}), None, 1)
    assert len(outs[-1]["data"]["image/png"]) == IMAGE_MAX_CHARS
    client.output(outs, _msg("display_data", data={"image/png": "A", "text/plain": "<F>"}), None, 1)
    assert outs[-1]["data"] == {"text/plain": "<F>"}  # the cell's allowance is spent
    client.output(outs, _msg("display_data", data={"image/png": "A" * (IMAGE_MAX_CHARS + 1)}), None, 2)
    assert outs[-1]["data"] == {}  # too large for any cell: not kept, and it takes nothing from the others
    for cell in range(3, 10):
        client.output(outs, _msg("display_data", data={"image/png": "A" * IMAGE_MAX_CHARS}), None, cell)
    assert outs[-1]["data"] == {"image/png": "A" * IMAGE_MAX_CHARS}
    assert client.images_kept == IMAGES_MAX_CHARS
    client.output(outs, _msg("display_data", data={"image/png": "A"}), None, 10)
    assert outs[-1]["data"] == {}  # the notebook's allowance is spent
    nb = _notebook(_code(_image("A" * IMAGE_MAX_CHARS), _image("A" * (IMAGE_MAX_CHARS + 1))))
    _clip_outputs(nb, 100)  # outputs the client never saw (a cell that did not run) are clipped the same way
    assert [len(o["data"]["image/png"]) for o in nb.cells[0].outputs] == [IMAGE_MAX_CHARS, 0]


# --------------------------------------------------------------------------------------------
# the figure check
# --------------------------------------------------------------------------------------------


def _figure_check(run: Execution, points: float = 5.0) -> CheckResult:
    # the check may look at the run only: everything else is absent here
    ev = Evidence(run=run, intake_problem=None, probe=None, hdf5=None, measurement=None,  # type: ignore[arg-type]
                  official={}, calibration=None, thresholds=None)  # type: ignore[arg-type]
    result = checks.registry()["figure"](ev, points)
    assert result.name == "figure"
    return result


def _same(result: CheckResult, score: float, max_score: float, message: str) -> None:
    assert (result.score, result.max_score, result.message) == (score, max_score, message)


def test_figure_check_full_points() -> None:
    r = _figure_check(_run(_executed(_png(30, 40))))
    _same(r, 5.0, 5.0, 'the notebook shows 2 figures; the last, from code cell 3 (In [3], "plt.show()"), is on the '
                       "feedback page (30×40 px)")
    assert r.details == {"figures": 2, "cell": 3}
    one = _notebook(_code(_image(_b64(_png(8, 9)))))
    _same(_figure_check(_run(one), 0.0), 0.0, 0.0,
          'the notebook shows 1 figure; the last, from code cell 1 (In [1], "plt.show()"), is on the feedback page '
          "(8×9 px)")


def test_figure_check_full_points_for_a_figure_that_cannot_be_shown() -> None:
    r = _figure_check(_run(_executed(BAD_CRC)))
    _same(r, 5.0, 5.0, 'the notebook shows 2 figures; the last, from code cell 3 (In [3], "plt.show()"), cannot be '
                       "shown: it is a damaged PNG image (a chunk fails its checksum)")


def test_figure_check_zero_points() -> None:
    assert NO_FIGURE == ("the executed notebook shows no figure: plot the output against the target in part 3 "
                         "and show it (plt.show())")
    nb = _notebook(_code(), _code(_image(_b64(_png(50, 60))), grader="probe"))
    r = _figure_check(_run(nb))
    _same(r, 0.0, 5.0, NO_FIGURE)
    assert r.details == {} and r.flags == []
    _same(_figure_check(_run(_executed(_png(3, 3)), completed=False, failed_cell=0)), 0.0, 5.0, NO_FIGURE)
    _same(_figure_check(_run(None, completed=False)), 0.0, 5.0,
          "no executed notebook: there is no figure to look for")


# --------------------------------------------------------------------------------------------
# the rubric: figure = 0 is listed, free, and changes no other score
# --------------------------------------------------------------------------------------------


def test_rubric_lists_figure_at_zero_points() -> None:
    config = load_config()
    assert config.points["figure"] == 0.0
    assert list(config.points)[-1] == "figure"
    assert config.max_score == 100.0
    assert "figure = 0 " in DEFAULT_RUBRIC.read_text()


def test_rubric_may_score_the_figure(tmp_path: Path) -> None:
    path = tmp_path / "rubric.toml"
    path.write_text(DEFAULT_RUBRIC.read_text().replace("figure = 0 ", "figure = 5 "))
    assert load_config(path).points["figure"] == 5.0 and load_config(path).max_score == 105.0


def test_rubric_without_figure_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "rubric.toml"
    text = DEFAULT_RUBRIC.read_text()
    line = next(line for line in text.splitlines() if line.startswith("figure = 0"))
    path.write_text(text.replace(line + "\n", ""))
    with pytest.raises(ValueError) as exc:
        load_config(path)
    assert str(exc.value) == (
        f"rubric {path}: [points] has no line for figure (0 turns a check off); the known checks are: "
        "execution, dataset, output_shape, hdf5, export, loss, similarity, figure"
    )


def test_a_free_check_says_failed_when_it_found_nothing() -> None:
    """At 0 points the score cannot tell: the check's own verdict is the status (results.json, Gradescope)."""
    shown = _figure_check(_run(_executed(_png(3, 3))), 0.0)
    missing = _figure_check(_run(_notebook(_code())), 0.0)
    assert (shown.score, shown.status) == (0.0, "passed")
    assert (missing.score, missing.status) == (0.0, "failed")
    no_notebook = _figure_check(_run(None, completed=False), 0.0)
    assert (no_notebook.score, no_notebook.status) == (0.0, "failed")
    assert CheckResult("x", 0.0, 0.0, "m").status == "passed"  # other checks: points decide
    assert CheckResult("x", 1.0, 2.0, "m").status == "failed"


def test_the_free_check_changes_no_score() -> None:
    from test_checks import _ev  # full evidence built in memory: every other check at full points

    points = load_config().points
    for run in (_run(_executed(_png(3, 3))), _run(None)):
        results = checks.run_checks(_ev(run=run), points)
        assert [r.name for r in results][-1] == "figure" and results[-1].score == 0.0
        others = checks.run_checks(_ev(run=run), {k: v for k, v in points.items() if k != "figure"})
        assert [(r.name, r.score) for r in results[:-1]] == [(r.name, r.score) for r in others]
    full = checks.run_checks(_ev(run=_run(_executed(_png(3, 3)))), points)
    assert sum(r.score for r in full) == 100.0 and sum(r.max_score for r in full) == 100.0


# --------------------------------------------------------------------------------------------
# the feedback page's map: hits, misses and extra spikes
# --------------------------------------------------------------------------------------------


def _raster(shape: tuple[int, int], spikes: dict[int, list[int]]) -> np.ndarray:
    a = np.zeros(shape, dtype=np.float32)
    for neuron, times in spikes.items():
        a[neuron, times] = 1
    return a


def test_spike_map_small_raster() -> None:
    target = _raster((4, 40), {0: [10, 20, 30], 1: [5], 3: [35]})
    output = _raster((4, 40), {0: [12, 25, 33], 1: [5, 6], 2: [0]})
    hits, misses, extras = report.spike_map(output, target)
    assert hits.tolist() == [[0, 12], [1, 5]]  # 12 is 2 ms from 10: a hit; 33 is 3 ms from 30: not
    assert misses.tolist() == [[0, 20], [0, 30], [3, 35]]
    assert extras.tolist() == [[0, 25], [0, 33], [1, 6], [2, 0]]  # 6 is near 5, but 5 took the target spike


def test_spike_map_tolerance_and_empty_sides() -> None:
    target = _raster((1, 20), {0: [10]})
    for shift, hit in ((-2, True), (2, True), (-3, False), (3, False), (0, True)):
        hits, misses, extras = report.spike_map(_raster((1, 20), {0: [10 + shift]}), target)
        assert (len(hits), len(misses), len(extras)) == ((1, 0, 0) if hit else (0, 1, 1))
    hits, misses, extras = report.spike_map(np.zeros((2, 5)), np.zeros((2, 5)))
    assert hits.shape == misses.shape == extras.shape == (0, 2)
    hits, misses, extras = report.spike_map(target, target, tolerance_ms=0)
    assert (hits.tolist(), misses.tolist(), extras.tolist()) == ([[0, 10]], [], [])
    batched = report.spike_map(target[None], target)  # the exported network's (1, neurons, T) output
    assert [a.tolist() for a in batched] == [[[0, 10]], [], []]


@pytest.mark.parametrize("tolerance", [0, 2, 5])
def test_spike_map_pairs_as_spike_f1_does(tolerance: int) -> None:
    rng = np.random.default_rng(7)
    target = (rng.random((20, 120)) < 0.08).astype(np.float32)
    output = (rng.random((20, 120)) < 0.1).astype(np.float32)
    hits, misses, extras = report.spike_map(output, target, tolerance)
    matched, n_out, n_tgt = spike_matches(output, target, tolerance)
    assert (len(hits), len(hits) + len(extras), len(hits) + len(misses)) == (matched, n_out, n_tgt)
    every = sorted(map(tuple, np.concatenate([hits, extras]).tolist()))  # each output spike once
    assert every == sorted(map(tuple, np.argwhere(output > 0).tolist()))
    assert set(map(tuple, misses.tolist())) <= set(map(tuple, np.argwhere(target > 0).tolist()))


# --------------------------------------------------------------------------------------------
# the feedback page
# --------------------------------------------------------------------------------------------


def _result(figure_score: float = 0.0) -> GradeResult:
    return GradeResult(submission_id="ann", notebook_sha256="0" * 64, epochs=20, checks=[
        CheckResult("execution", 10.0, 10.0, "ran"),
        CheckResult("figure", figure_score, 0.0, NO_FIGURE),
    ])


def test_feedback_shows_the_students_figure(tmp_path: Path) -> None:
    png = _png(30, 40)
    shown = student_figure(_executed(png))
    target = _raster((3, 30), {0: [1, 5], 2: [20]})
    report.write_feedback(_result(), target, target, tmp_path / "feedback.html", shown)
    page = (tmp_path / "feedback.html").read_text()
    title = html.escape('Your figure: the last one your notebook shows, from code cell 3 (In [3], "plt.show()")')
    assert f"<h2>{title}</h2><img alt='{title}' src='data:image/png;base64,{_b64(png)}'>" in page
    assert html.escape(report.NO_FIGURE_SENTENCE) not in page
    assert "<tr class='unscored'><td class='what'>figure</td><td class='what'>0 / 0<br>not scored</td>" in page
    assert "<tr class='passed'><td class='what'>execution</td><td class='what'>10 / 10</td>" in page
    assert "src='figure.png'" not in page  # the page stays self-contained


def test_feedback_says_when_there_is_no_figure(tmp_path: Path) -> None:
    target = _raster((3, 30), {0: [1, 5]})
    report.write_feedback(_result(), None, target, tmp_path / "feedback.html", StudentFigure(0))
    page = (tmp_path / "feedback.html").read_text()
    assert report.NO_FIGURE_SENTENCE == (
        "Your notebook shows no figure: end part 3 by plotting the network's output against the target "
        "(plt.plot(...), then plt.show()) so that the plot appears in the notebook, and here.")
    assert f"<h2>Your figure</h2><p class='nofigure'>{html.escape(report.NO_FIGURE_SENTENCE)}</p>" in page
    refused = student_figure(_executed(BAD_CRC))
    assert report.student_figure_html(refused) == (
        "<h2>Your figure</h2><p class='nofigure'>The last figure your notebook shows, from code cell 3 (In [3], "
        "&quot;plt.show()&quot;), cannot be shown here: it is a damaged PNG image (a chunk fails its checksum). Show it as a PNG of at most 2 MiB and "
        "5000×5000 pixels (plt.show() with matplotlib&#x27;s defaults does).</p>")
    assert report.student_figure_html(None) == ""
    report.write_feedback(_result(), None, target, tmp_path / "old.html")  # callers that pass no figure
    assert "Your figure" not in (tmp_path / "old.html").read_text()


# --------------------------------------------------------------------------------------------
# every IOPub message is type-checked, every kind that stores output is capped
# --------------------------------------------------------------------------------------------


def _cell_client(max_chars: int = 100):
    client = _client(max_chars)
    client.nb.cells = [nbformat.v4.new_code_cell("x")]
    return client, client.nb.cells[0]


def _full(kind: str, **content) -> dict:
    msg = _msg(kind, **content)
    msg["header"]["msg_id"] = "out"
    return msg


def test_malformed_iopub_messages_are_dropped_not_raised() -> None:
    """What a kernel can send on its own IOPub socket never raises in the grader nor reaches the notebook."""
    client, cell = _cell_client()
    bad = [
        "not a message", {"msg_type": 5}, {"msg_type": "stream", "content": "text"},
        _full("stream", name="stdout", text=5), _full("stream", name="stdout", text=["a", "b"]),
        _full("stream", name="evil", text="x"), _full("stream", name="stdout"),
        {**_full("stream", name="stdout", text="x"), "parent_header": None},
        _full("display_data", data="not a bundle"), _full("execute_result", data=[1, 2]),
        _full("update_display_data", data=None, transient={"display_id": "d"}),
        _full("status", execution_state=3), _full("comm_open", data={"state": {"x": "y" * 10**6}}, comm_id="c"),
        _full("comm_msg", data={"buffer_paths": 5}, comm_id="c"), _full("made_up", data={}),
    ]
    for msg in bad:
        assert client.process_message(msg, cell, 0) is None
    assert cell.outputs == [] and client.printed == {} and client.widget_state == {}
    odd = _full("execute_result", data={"text/plain": 5, "image/png": b"raw", "application/json": {"a": [1]},
                                        "text/html": "<b>ok</b>", 7: "x"},
                metadata="huge", execution_count=-3, transient="d")
    out = client.process_message(odd, cell, 0)
    assert out["data"] == {"application/json": {"a": [1]}, "text/html": "<b>ok</b>"}
    assert out["metadata"] == {} and out["execution_count"] is None
    forged = _full("stream", name="stdout", text="x")
    forged["header"]["msg_type"] = "execute_result"  # nbformat reads the header's kind: it is the checked one
    assert client.process_message(forged, cell, 0)["output_type"] == "stream"
    error = _full("error", ename=["E"], evalue=None, traceback="tb")
    assert client.process_message(error, cell, 0)["traceback"] == []


def test_display_updates_are_capped() -> None:
    """update_display_data (and a display reusing its id) rewrite earlier outputs: charged and cut the same."""
    client, cell = _cell_client(max_chars=100)
    client.process_message(_full("display_data", data={"text/plain": "first"}, transient={"display_id": "d"}), cell, 0)
    assert cell.outputs[0]["data"] == {"text/plain": "first"}
    for _ in range(3):
        update = _full("update_display_data", data={"text/plain": "y" * 10**6}, transient={"display_id": "d"})
        assert client.process_message(update, cell, 0) is None
    assert cell.outputs[0]["data"] == {} and len(cell.outputs) == 1  # past the budget: nothing of it is kept
    assert client.printed == {0: 5 + 3 * 10**6}
    client, cell = _cell_client(max_chars=100)
    client.process_message(_full("display_data", data={"text/plain": "a"}, transient={"display_id": "d"}), cell, 0)
    again = _full("display_data", data={"text/plain": "z" * 500}, transient={"display_id": "d"})
    client.process_message(again, cell, 0)
    assert [o["data"]["text/plain"] for o in cell.outputs] == ["z" * 99, "z" * 99]  # both cut, charged once
    assert client.printed == {0: 501}
    client, cell = _cell_client(max_chars=100)
    big_metadata = _full("display_data", data={"text/plain": "p"}, metadata={"m": "x" * 20_000})
    assert client.process_message(big_metadata, cell, 0)["metadata"] == {}
    small = _full("display_data", data={"text/plain": "p"}, metadata={"image/png": {"width": 640}})
    assert client.process_message(small, cell, 0)["metadata"] == {"image/png": {"width": 640}}


def test_feedback_reads_on_a_phone_and_has_landmarks(tmp_path: Path) -> None:
    target = _raster((3, 30), {0: [1, 5]})
    report.write_feedback(_result(), target, target, tmp_path / "feedback.html")
    page = (tmp_path / "feedback.html").read_text()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    body = page[page.index("<body>"):]
    assert body.startswith("<body>\n<header><h1>") and body.count("<main>") == body.count("</main>") == 1
    assert body.index("</header>") < body.index("<main>") < body.index("</main>") < body.index("</body>")
    assert "td.says { overflow-wrap: anywhere; }" in page  # a long message wraps instead of widening the page
    error = report.error_feedback_html(GradeResult("ann", "0" * 64, [], flags=["not graded (grading machine error): x"],
                                                   config_fingerprint="error"))
    assert '<meta name="viewport"' in error and "<header>" in error and "<main>" in error


def _luminance(hex_colour: str) -> float:
    r, g, b = (int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_hits_are_the_strongest_mark_on_the_map() -> None:
    colours = report.MAP_COLOURS
    assert _luminance(colours["hit"]) < 0.05  # black: a good output reads dark
    assert min(_luminance(colours["miss"]), _luminance(colours["extra"])) > 0.4  # the mistakes lighter than hits
    assert colours["miss"] != colours["extra"] and {colours["miss"], colours["extra"]} <= {
        "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7"}  # Okabe-Ito: colour-blind safe
    assert report.MAP_ORDER[-1] == "hit"  # drawn last, over the mistakes


def test_the_figures_are_said_in_words() -> None:
    rows = report.figure_rows({"reference": {"loss": 42822.4375, "f1_2ms": 0.75}, "silent_loss": 92822.4,
                               "loss": 45000.125, "loss_numpy": 45000.1, "f1_2ms": 0.5, "correlation_5ms": 0.8,
                               "output_spikes": 9999.0, "simulator_matches": True, "evaluate_s": 0.3,
                               "weights_sha256": "ab" * 32, "weights_origin": "untrained"})
    by_label = {r.label: r for r in rows}
    loss = by_label["SpikeTime loss of your exported network (slayer's sum; lower is better): the scored figure"]
    assert (loss.yours, loss.reference) == ("45,000.12", "42,822.44")
    assert by_label["spike-time F1 within ±2 ms (1 is perfect)"] == report.FigureRow(
        "spike-time F1 within ±2 ms (1 is perfect)", "0.5", "0.75")
    assert by_label["the grader's own simulator of the HDF5 file gives the same output"].yours == "yes"
    assert by_label["output spikes"].yours == "9,999"
    assert by_label["the exported weights are, bit for bit,"].yours.startswith("the untrained network's")
    internal = ("loss_numpy", "evaluate_s", "silent_loss", "weights_origin", "simulator_matches", "f1_2ms", "_")
    assert [r.label for r in rows if any(name in r.label for name in internal)] == []

