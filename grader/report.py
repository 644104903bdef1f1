"""Everything the grader writes: results.json, the executed notebook, HTML feedback, the gradebook.

Every file is written to a temporary name and renamed, so an interrupted
batch never leaves a half-written result behind. A submission's folder is
built whole in a staging folder and then swapped in (`publish`), so its
files always come from one grading: a re-run never mixes an old
results.json with a newer feedback page.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
import os
import re
import shutil
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Sequence

import nbformat
import numpy as np

from grader.results import NOT_YOUR_FAULT, GradeResult

if TYPE_CHECKING:
    from grader.config import GradescopeOutput
    from grader.figure import StudentFigure

RESULTS = "results.json"
FEEDBACK = "feedback.html"
GRADEBOOK = "gradebook.csv"
OUTPUT_RASTER = "output.npz"  # the exported network's output on the official input, as packed bits
TWINS_LISTED = 10  # "identical exported weights as …": names listed before "(+N more)"


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # what makes a spreadsheet evaluate a cell (OWASP)


def spreadsheet_safe(value: object) -> str:
    """One CSV cell as text a spreadsheet shows and never evaluates: a leading =, +, -, @, tab or CR
    gets a single quote before it (OWASP's advice on CSV injection). A roster's names and a
    submission's id come from people, and the gradebook, roster and Canvas files are opened in Excel."""
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """Every CSV file the kit writes, as text: each cell through `spreadsheet_safe`, one line per row."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    for row in rows:
        writer.writerow([spreadsheet_safe(cell) for cell in row])
    return buf.getvalue()


def atomic_write(path: Path, data: str | bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(tmp, mode) as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def publish(staged: Path, final: Path) -> None:
    """Swap the finished folder `staged` in as `final`, replacing a previous grading whole.

    Two renames on one filesystem: a kill between them leaves `final` absent
    (a re-run grades it again), never half old and half new.
    """
    old = staged.with_name(f".old-{final.name}")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(staged, final)
    shutil.rmtree(old, ignore_errors=True)


def write_results(result: GradeResult, path: Path, presentation: "GradescopeOutput | None" = None) -> None:
    """results.json; `presentation`: the rubric's visibility, Markdown and leaderboard (grader.config)."""
    atomic_write(path, json.dumps(result.to_gradescope(presentation), indent=2) + "\n")


def write_output_raster(output: np.ndarray, path: Path) -> None:
    """The (neurons, T) output as packed bits, for grader.similarity (1/8 byte a step, ~15 kB for HW8)."""
    spikes = np.asarray(output).reshape(np.shape(output)[-2:]) > 0
    buf = io.BytesIO()
    np.savez_compressed(buf, bits=np.packbits(spikes, axis=None), shape=np.asarray(spikes.shape, dtype=np.int64))
    atomic_write(path, buf.getvalue())


def read_output_raster(path: Path, max_values: int = 10_000_000) -> np.ndarray:
    """What write_output_raster wrote, as a (neurons, T) bool array; ValueError when it is not that."""
    with np.load(path, allow_pickle=False) as npz:
        shape = tuple(int(x) for x in npz["shape"])
        if len(shape) != 2 or min(shape) < 1 or shape[0] * shape[1] > max_values:
            raise ValueError(f"{path}: not a raster of a sane shape ({shape})")
        bits = np.unpackbits(npz["bits"], count=shape[0] * shape[1])
    return bits.reshape(shape).astype(bool)


def read_results(path: Path) -> GradeResult:
    return GradeResult.from_gradescope(json.loads(path.read_text()))


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    atomic_write(path, nbformat.writes(nb))


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


HIT_TOLERANCE_MS = 2  # the feedback's map of hits: as spike F1 at ±2 ms (grader.metrics) pairs spikes
# Hits the strongest mark (black, drawn last, on top): a good output reads dark. The two mistakes are
# Okabe-Ito sky blue and orange, which stay apart for every common colour-blindness and from black.
MAP_COLOURS = {"hit": "#000000", "miss": "#56B4E9", "extra": "#E69F00"}
MAP_ORDER = ("miss", "extra", "hit")  # drawing order: hits over the mistakes


def spike_map(output: np.ndarray, target: np.ndarray,
              tolerance_ms: int = HIT_TOLERANCE_MS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hits, misses, extras), each a (k, 2) array of (neuron, time step) rows.

    Spikes are paired as grader.metrics pairs them for spike F1 (its ``_matches``): per
    neuron, greedily over the sorted spike times, an output spike with a distinct target
    spike within ±tolerance_ms. A hit is a paired output spike (drawn at its own time),
    a miss a target spike left unpaired, an extra an output spike left unpaired; so
    len(hits) is metrics.spike_matches's matched count.
    """
    tgt = np.asarray(target) > 0
    out = np.asarray(output).reshape(tgt.shape) > 0
    found: dict[str, list[np.ndarray]] = {"hit": [], "miss": [], "extra": []}
    for neuron, (o_row, t_row) in enumerate(zip(out, tgt)):
        o, t = np.flatnonzero(o_row), np.flatnonzero(t_row)
        o_hit, t_hit = np.zeros(len(o), bool), np.zeros(len(t), bool)
        i = j = 0
        while i < len(o) and j < len(t):
            d = o[i] - t[j]
            if abs(d) <= tolerance_ms:
                o_hit[i] = t_hit[j] = True
                i, j = i + 1, j + 1
            elif d < 0:
                i += 1
            else:
                j += 1
        for kind, times in (("hit", o[o_hit]), ("miss", t[~t_hit]), ("extra", o[~o_hit])):
            found[kind].append(np.column_stack((np.full(len(times), neuron), times)))
    return tuple(np.concatenate(found[k]).astype(int) if found[k] else np.zeros((0, 2), int)
                 for k in ("hit", "miss", "extra"))  # type: ignore[return-value]


def _raster_panel(ax, spikes: np.ndarray, colour: str, label: str | None = None) -> None:
    """Spikes as small squares; `spikes`: (k, 2) rows of (neuron, time step)."""
    ax.plot(spikes[:, 1], spikes[:, 0], "s", markersize=1.8, markeredgewidth=0, color=colour, label=label)


def _spike_figure(output: np.ndarray | None, target: np.ndarray):
    """Target and output side by side (same axes), and below them the map of hits, misses and extras."""
    import matplotlib.pyplot as plt

    n, t = target.shape
    rows = [1, 1.35] if output is not None else [1]  # the map below target and output, when there is an output
    fig = plt.figure(figsize=(12, 3.6 * sum(rows) + 0.4))
    grid = fig.add_gridspec(len(rows), 2, height_ratios=rows, hspace=0.35, wspace=0.08)
    ax_t = fig.add_subplot(grid[0, 0])
    ax_o = fig.add_subplot(grid[0, 1], sharex=ax_t, sharey=ax_t)
    target_spikes = np.argwhere(target > 0)
    _raster_panel(ax_t, target_spikes, "0.15")
    ax_t.set(xlim=(0, t), ylim=(-0.5, n - 0.5), xlabel="time [ms]", ylabel="neuron",
             title=f"target: {len(target_spikes):,} spikes")
    ax_o.tick_params(labelleft=False)
    if output is None:
        ax_o.text(0.5, 0.5, "no evaluable Trained/network.net:\nno output to draw", ha="center", va="center",
                  transform=ax_o.transAxes)
        ax_o.set(xlabel="time [ms]", title="output of the exported network")
        return fig
    out = np.asarray(output).reshape(target.shape)
    output_spikes = np.argwhere(out > 0)
    _raster_panel(ax_o, output_spikes, "0.15")
    ax_o.set(xlabel="time [ms]", title=f"output of the exported network: {len(output_spikes):,} spikes")
    ax_m = fig.add_subplot(grid[1, :], sharex=ax_t, sharey=ax_t)
    hits, misses, extras = spike_map(out, target)
    drawn = {"hit": (hits, f"hit (output within ±{HIT_TOLERANCE_MS} ms of a target spike)"),
             "miss": (misses, "missed target spike"), "extra": (extras, "extra output spike")}
    for kind in MAP_ORDER:
        spikes, label = drawn[kind]
        _raster_panel(ax_m, spikes, MAP_COLOURS[kind], f"{label}: {len(spikes):,}")
    handles, labels = ax_m.get_legend_handles_labels()
    order = [MAP_ORDER.index(kind) for kind in ("hit", "miss", "extra")]  # the legend reads hits first
    handles, labels = [handles[i] for i in order], [labels[i] for i in order]
    ax_m.set(xlabel="time [ms]", ylabel="neuron")
    ax_m.set_title("where the output is right and wrong", pad=24)
    ax_m.legend(handles, labels, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, frameon=False, markerscale=4,
                handletextpad=0.2, columnspacing=1.5)
    return fig


def _figures(result: GradeResult, output: np.ndarray | None, target: np.ndarray) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    fig = _spike_figure(output, target)
    figures.append(("Output vs target (the exported network, run by the grader)", _png(fig)))
    plt.close(fig)
    if result.learning_curve:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.semilogy(result.learning_curve)
        ax.set(xlabel="epoch", ylabel="training loss", title="learning curve (Trained/loss.txt)")
        figures.append(("Learning curve (as the notebook saved it; not scored)", _png(fig)))
        plt.close(fig)
    return figures


@dataclass(frozen=True)
class FigureRow:
    """One line of "Figures the score came from": what it is, in words; the student's value; the reference's."""

    label: str
    yours: str
    reference: str = ""


_F1 = re.compile(r"f1_(\d+)ms")
_CORRELATION = re.compile(r"correlation_(\d+)ms")
FIGURE_WORDS = {  # results.json's names (grader.measure) -> what they are, for the student
    "loss": "SpikeTime loss of your exported network (slayer's sum; lower is better): the scored figure",
    "loss_numpy": "the same loss, recomputed by the grader's own numpy code",
    "silent_loss": "the loss of a silent output (no spike at all): the scale the loss is judged against",
    "relative_loss": "loss relative to a silent output (0 is perfect, 1 no better than silence)",
    "precision_2ms": "precision: the share of output spikes within ±2 ms of a target spike",
    "recall_2ms": "recall: the share of target spikes with an output spike within ±2 ms",
    "output_spikes": "output spikes",
    "target_spikes": "target spikes",
    "simulator_matches": "the grader's own simulator of the HDF5 file gives the same output",
    "evaluate_s": "seconds the grader took to rebuild and run the file",
    "weights_sha256": "fingerprint (SHA-256) of the exported weights",
    "weights_origin": "the exported weights are, bit for bit,",
}
ORIGIN_WORDS = {"reference": "the reference solution's at this budget",
                "untrained": "the untrained network's (the seeded initial weights: was the training saved?)"}


def figure_label(name: str) -> str:
    """A figure's name in results.json, said in words (unknown names: their words, unchanged)."""
    if name in FIGURE_WORDS:
        return FIGURE_WORDS[name]
    if m := _F1.fullmatch(name):
        return f"spike-time F1 within ±{m.group(1)} ms (1 is perfect)"
    if m := _CORRELATION.fullmatch(name):
        return f"correlation of output and target, each smoothed over {m.group(1)} ms (1 is perfect)"
    return name.replace("_", " ")


def _value(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if name == "weights_origin":
        return ORIGIN_WORDS.get(str(value), str(value))
    if name.endswith("_spikes") and isinstance(value, (int, float)):
        return f"{value:,.0f}"
    if isinstance(value, float) and abs(value) >= 1000:
        return f"{value:,.2f}"  # a loss: 30,696.68, as the README and the notebook print it
    return _fmt(value)


def figure_rows(measurements: dict[str, object]) -> list[FigureRow]:
    """The grader's figures as rows in words, each beside the reference's at the same budget where it has one."""
    reference = measurements.get("reference")
    reference = reference if isinstance(reference, dict) else {}
    return [FigureRow(figure_label(name), _value(name, value),
                      _value(name, reference[name]) if name in reference else "")
            for name, value in measurements.items() if name != "reference"]


NO_FIGURE_SENTENCE = (
    "Your notebook shows no figure: end part 3 by plotting the network's output against the target "
    "(plt.plot(...), then plt.show()) so that the plot appears in the notebook, and here."
)


def student_figure_html(figure: "StudentFigure | None") -> str:
    """The student's own last figure (part 3's plot), or one sentence on why there is none; '' if not looked for."""
    e = html.escape
    if figure is None:
        return ""
    if figure.png is not None:
        title = f"Your figure: the last one your notebook shows, from {figure.where}"
        data = base64.b64encode(figure.png).decode()
        return f"<h2>{e(title)}</h2><img alt='{e(title)}' src='data:image/png;base64,{data}'>"
    if figure.count:
        from grader.figure import MAX_BYTES, MAX_SIDE

        sentence = (f"The last figure your notebook shows, from {figure.where}, cannot be shown here: "
                    f"{figure.problem}. Show it as a PNG of at most {MAX_BYTES / 2**20:g} MiB and "
                    f"{MAX_SIDE}×{MAX_SIDE} pixels (plt.show() with matplotlib's defaults does).")
    else:
        sentence = NO_FIGURE_SENTENCE
    return f"<h2>Your figure</h2><p class='nofigure'>{e(sentence)}</p>"


def feedback_html(result: GradeResult, output: np.ndarray | None, target: np.ndarray,
                  figure: "StudentFigure | None" = None) -> str:
    """A self-contained page: checks, points, messages, the figures the score came from, the student's own."""
    e = html.escape

    def points(c) -> str:
        return f"{c.score:g} / {c.max_score:g}" + ("<br>not scored" if c.max_score == 0 else "")

    rows = "".join(
        f"<tr class='{'unscored' if c.max_score == 0 else c.status}'><td class='what'>{e(c.name)}</td>"
        f"<td class='what'>{points(c)}</td><td class='says'>{e(c.message)}</td></tr>"
        for c in result.checks
    )
    flags = "".join(f"<li>{e(f)}</li>" for f in result.flags) or "<li>none</li>"
    measurements = "".join(f"<tr><td>{e(r.label)}</td><td>{e(r.yours)}</td><td>{e(r.reference)}</td></tr>"
                           for r in figure_rows(result.measurements))
    drawn = [f"<h2>{e(title)}</h2><img alt='{e(title)}' src='data:image/png;base64,{data}'>"
             for title, data in _figures(result, output, target)]
    figures = "".join(drawn[:1]) + student_figure_html(figure) + "".join(drawn[1:])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>HW8 feedback: {e(result.submission_id)}</title>
<style>{PAGE_STYLE}</style></head><body>
<header><h1>HW8 problem 2 — {e(result.submission_id)}</h1>
<p><strong>Score: {result.score:g} / {result.max_score:g}</strong> at {result.epochs} epochs;
graded in {result.execution_time:.0f} s.</p></header>
<main>
<table class="checks"><tr><th scope="col">check</th><th scope="col">points</th><th scope="col">message</th></tr>{rows}</table>
{regrade_html(result)}
<h2>Flags</h2><ul>{flags}</ul>
{figures}
<h2>Figures the score came from</h2>
<table class="figures"><tr><th scope="col">figure</th><th scope="col">yours</th><th scope="col">reference</th></tr>{measurements}</table>
<p>"reference": the reference solution trained by the grader at the same budget and seed.</p>
<p>Loss and similarity are measured by the grader on Trained/network.net, rebuilt in its own
process; numbers the notebook prints are not used.</p>
</main>
</body></html>
"""


def regrade_html(result: GradeResult) -> str:
    """What a regrade changed and why, for the feedback page; '' for a first grading."""
    r = result.regrade
    if r is None:
        return ""
    e = html.escape
    before = "not graded" if r.previous_score is None else f"{r.previous_score:g} / {r.previous_max:g}"
    inputs = "".join(f"<li>{e(i.sentence())}</li>" for i in r.inputs) or (
        f"<li>none{' (graded again on request: --regrade)' if r.forced else ''}</li>")
    if r.changed_nothing:
        outcome = f"<p>Nothing changed: every check has the points it had, {e(before)}.</p>"
    else:
        moved = "".join(f"<li>{e(c.sentence())}</li>" for c in r.checks) or "<li>no check moved</li>"
        outcome = f"<p>Previous score {e(before)}; what moved:</p><ul>{moved}</ul>"
    return (f"<section id='regrade'><h2>Regraded</h2><p>This grading replaces an earlier one. What changed "
            f"since:</p><ul>{inputs}</ul>{outcome}</section>")


# Readable on a phone (390 px): long words and paths wrap instead of widening the page.
PAGE_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 60em; margin: 1em auto; padding: 0 .75em; color: #222; }
h1, h2, p, li { overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; } td, th { border: 1px solid #ccc; padding: .4em; vertical-align: top; }
th { text-align: left; } td.what { white-space: nowrap; } td.says { overflow-wrap: anywhere; }
table.figures { table-layout: fixed; } table.figures td, table.figures th { overflow-wrap: anywhere; }
table.figures th:first-child { width: 44%; }
tr.passed td:nth-child(2) { background: #e6f4e6; } tr.failed td:nth-child(2) { background: #fbe9e7; }
tr.unscored td:nth-child(2) { color: #555; } p.nofigure, p.error { background: #fff4e5; padding: .6em; }
img { max-width: 100%; height: auto; }
"""


def error_feedback_html(result: GradeResult) -> str:
    """The page of a submission the grading machine could not grade: no score, what failed, what happens next."""
    e = html.escape
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>HW8 feedback: {e(result.submission_id)}</title>
<style>{PAGE_STYLE}</style></head><body>
<header><h1>HW8 problem 2 — {e(result.submission_id)}</h1></header>
<main>
<p class="error"><strong>{e(result.grader_error)}</strong></p>
<p>{e(NOT_YOUR_FAULT)}</p>
</main>
</body></html>
"""


def write_error_feedback(result: GradeResult, path: Path) -> None:
    """feedback.html of a grader error (grader.batch writes it beside the error's results.json)."""
    atomic_write(path, error_feedback_html(result))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def write_feedback(result: GradeResult, output: np.ndarray | None, target: np.ndarray, path: Path,
                   figure: "StudentFigure | None" = None) -> None:
    """feedback.html; `figure`: the student's own last figure (grader.figure) for the page (None: not looked for)."""
    atomic_write(path, feedback_html(result, output, target, figure))


def collect(out_dir: Path) -> list[GradeResult]:
    """Every graded submission under out_dir (unreadable results are skipped, not fatal)."""
    results = []
    for path in sorted(out_dir.glob(f"*/{RESULTS}")):
        if path.parent.name.startswith(("_", ".")):  # the grader's own folders (_tmp, _work, _intake)
            continue
        try:
            results.append(read_results(path))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return results


def class_flags(results: list[GradeResult]) -> dict[str, list[str]]:
    """Each submission's flags, plus what only the whole class shows: identical exported weights."""
    by_weights: dict[str, list[str]] = defaultdict(list)
    for r in results:
        digest = r.measurements.get("weights_sha256")
        if digest and not r.measurements.get("weights_origin"):  # the reference's or untrained: expected
            by_weights[digest].append(r.submission_id)
    flags: dict[str, list[str]] = {}
    for r in results:
        own = list(r.flags)
        twins = [s for s in by_weights.get(r.measurements.get("weights_sha256", ""), []) if s != r.submission_id]
        if twins:
            more = f" (+{len(twins) - TWINS_LISTED} more)" if len(twins) > TWINS_LISTED else ""
            own.append("identical exported weights as " + ", ".join(twins[:TWINS_LISTED]) + more)
        flags[r.submission_id] = own
    return flags


GRADED_WITH = ("epochs", "kit_version", "numerics", "calibration")  # gradebook columns: how each was graded


def write_gradebook(out_dir: Path) -> Path:
    """Rebuild gradebook.csv from the per-submission results: points per check, how each submission was
    graded (budget, kit version, numerical mode, calibration), the most similar other submission and in what
    (OUT/similarity.json, grader.similarity; empty when none) and its flags (identical weights included).
    A grader error's scores stay empty: it is no grade, and its flag says why."""
    from grader.similarity import read_most_similar  # similarity reads this module: imported here

    results = collect(out_dir)
    flags = class_flags(results)
    similar = read_most_similar(out_dir)
    names = list(dict.fromkeys(c.name for r in results for c in r.checks))
    rows: list[list[object]] = [["id", "score", "max_score", *names, *GRADED_WITH, "most_similar", "flags"]]
    for r in results:
        if r.is_grader_error:  # no grade: every score left empty, never a 0
            rows.append([r.submission_id, "", "", *("" for _ in names), r.epochs, r.kit_version, r.numerics,
                         r.calibration_source, "", "; ".join(flags[r.submission_id])])
            continue
        scores = {c.name: c.score for c in r.checks}
        rows.append([r.submission_id, f"{r.score:g}", f"{r.max_score:g}",
                     *(f"{scores.get(n, 0):g}" for n in names),
                     r.epochs, r.kit_version, r.numerics, r.calibration_source,
                     similar.get(r.submission_id, ""), "; ".join(flags[r.submission_id])])
    path = out_dir / GRADEBOOK
    atomic_write(path, csv_text(rows))
    return path
