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
import shutil
from collections import defaultdict
from pathlib import Path

import nbformat
import numpy as np

from grader.results import GradeResult

RESULTS = "results.json"
GRADEBOOK = "gradebook.csv"
TWINS_LISTED = 10  # "identical exported weights as …": names listed before "(+N more)"


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


def write_results(result: GradeResult, path: Path) -> None:
    atomic_write(path, json.dumps(result.to_gradescope(), indent=2) + "\n")


def read_results(path: Path) -> GradeResult:
    return GradeResult.from_gradescope(json.loads(path.read_text()))


def write_notebook(nb: nbformat.NotebookNode, path: Path) -> None:
    atomic_write(path, nbformat.writes(nb))


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def _figures(result: GradeResult, output: np.ndarray | None, target: np.ndarray) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figures = []
    fig, ax = plt.subplots(figsize=(7, 7))
    tn, tt = np.nonzero(target)
    ax.plot(tt, tn, ".", markersize=6, color="0.75", label="target")
    if output is not None:
        on, ot = np.nonzero(output.reshape(target.shape))
        ax.plot(ot, on, ".", markersize=2, color="C3", label="exported network")
    ax.set(xlabel="time [ms]", ylabel="neuron", title="output vs target")
    ax.legend(loc="upper right")
    figures.append(("Output vs target (the exported network, run by the grader)", _png(fig)))
    plt.close(fig)
    if result.learning_curve:
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.semilogy(result.learning_curve)
        ax.set(xlabel="epoch", ylabel="training loss", title="learning curve (Trained/loss.txt)")
        figures.append(("Learning curve (as the notebook saved it; not scored)", _png(fig)))
        plt.close(fig)
    return figures


def feedback_html(result: GradeResult, output: np.ndarray | None, target: np.ndarray) -> str:
    """A self-contained page: checks, points, messages, the figures the score came from."""
    e = html.escape
    rows = "".join(
        f"<tr class='{c.status}'><td>{e(c.name)}</td><td>{c.score:g} / {c.max_score:g}</td>"
        f"<td>{e(c.message)}</td></tr>"
        for c in result.checks
    )
    flags = "".join(f"<li>{e(f)}</li>" for f in result.flags) or "<li>none</li>"
    measurements = "".join(
        f"<tr><td>{e(str(k))}</td><td>{e(_fmt(v))}</td></tr>" for k, v in result.measurements.items()
    )
    figures = "".join(
        f"<h2>{e(title)}</h2><img alt='{e(title)}' src='data:image/png;base64,{data}'>"
        for title, data in _figures(result, output, target)
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>HW8 feedback: {e(result.submission_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60em; margin: 2em auto; color: #222; }}
table {{ border-collapse: collapse; width: 100%; }} td, th {{ border: 1px solid #ccc; padding: .4em; vertical-align: top; }}
tr.passed td:nth-child(2) {{ background: #e6f4e6; }} tr.failed td:nth-child(2) {{ background: #fbe9e7; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>HW8 problem 2 — {e(result.submission_id)}</h1>
<p><strong>Score: {result.score:g} / {result.max_score:g}</strong> at {result.epochs} epochs;
graded in {result.execution_time:.0f} s.</p>
<table><tr><th>check</th><th>points</th><th>message</th></tr>{rows}</table>
<h2>Flags</h2><ul>{flags}</ul>
{figures}
<h2>Figures the score came from</h2><table>{measurements}</table>
<p>Loss and similarity are measured by the grader on Trained/network.net, rebuilt in its own
process; numbers the notebook prints are not used.</p>
</body></html>
"""


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    return str(value)


def write_feedback(result: GradeResult, output: np.ndarray | None, target: np.ndarray, path: Path) -> None:
    atomic_write(path, feedback_html(result, output, target))


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


def write_gradebook(out_dir: Path) -> Path:
    """Rebuild gradebook.csv from the per-submission results; flags identical exported weights."""
    results = collect(out_dir)
    by_weights: dict[str, list[str]] = defaultdict(list)
    for r in results:
        digest = r.measurements.get("weights_sha256")
        if digest and not r.measurements.get("weights_origin"):  # the reference's or untrained: expected
            by_weights[digest].append(r.submission_id)
    names = list(dict.fromkeys(c.name for r in results for c in r.checks))
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["id", "score", "max_score", *names, "flags"])
    for r in results:
        flags = list(r.flags)
        twins = [s for s in by_weights.get(r.measurements.get("weights_sha256", ""), []) if s != r.submission_id]
        if twins:
            more = f" (+{len(twins) - TWINS_LISTED} more)" if len(twins) > TWINS_LISTED else ""
            flags.append("identical exported weights as " + ", ".join(twins[:TWINS_LISTED]) + more)
        scores = {c.name: c.score for c in r.checks}
        writer.writerow([r.submission_id, f"{r.score:g}", f"{r.max_score:g}",
                         *(f"{scores.get(n, 0):g}" for n in names), "; ".join(flags)])
    path = out_dir / GRADEBOOK
    atomic_write(path, buf.getvalue())
    return path
