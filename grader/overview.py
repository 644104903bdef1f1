"""The class overview, OUT/index.html: one page for the instructor, beside gradebook.csv.

It shows the score histogram, how many got full points on each check, who was
flagged and why, how the batch was graded (budget, calibration, numerical
mode, kit version) and a link to every submission's feedback page, with the
student's own figure (OUT/<id>/figure.png) as a thumbnail where there is one.

Like the gradebook it is rebuilt from the per-submission results.json
(`report.collect`), so it can be rebuilt at any time (`write_overview`). The
page is self-contained: inline CSS, the histogram as inline SVG, no script,
no external resource; every link is relative (`<id>/feedback.html`). Student
ids are untrusted: every text is escaped, every link percent-encoded.
"""

from __future__ import annotations

import html
import json
import statistics
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from grader import report
from grader.results import GradeResult

OVERVIEW = "index.html"
FEEDBACK = "feedback.html"
FIGURE = "figure.png"  # the student's own last figure, where the grader saved one
DOWNLOADS = (report.GRADEBOOK, "roster.csv", "canvas.csv")  # linked when present
BINS = 10

_e = html.escape



def _href(*parts: str) -> str:
    """A relative link to OUT/<parts…>, percent-encoded (ids may hold #, ?, %, spaces) and escaped."""
    return _e("/".join(quote(p, safe="") for p in parts))


def _g(x: float) -> str:
    return f"{x:g}"


def histogram(scores: list[float], max_score: float, bins: int = BINS) -> list[int]:
    """Counts per bin of width max_score / bins: [lo, hi), the last one [lo, max_score] (and above)."""
    counts = [0] * bins
    width = max_score / bins if max_score > 0 else 1.0
    for s in scores:
        counts[min(bins - 1, max(0, int(s // width)))] += 1
    return counts


def _svg_histogram(counts: list[int], max_score: float) -> str:
    slot, left, top, chart, bottom = 32, 8, 16, 110, 22
    width = left * 2 + slot * len(counts)
    height = top + chart + bottom
    step = max_score / len(counts) if max_score > 0 else 1.0
    labels = [f"{_g(round(i * step, 2))}–{_g(round((i + 1) * step, 2))}" for i in range(len(counts))]
    tallest = max(counts) or 1
    title = "Score histogram: " + ", ".join(f"{lab}: {n}" for lab, n in zip(labels, counts))
    parts = [f'<svg class="hist" viewBox="0 0 {width} {height}" role="img" aria-labelledby="hist-title" '
             f'xmlns="http://www.w3.org/2000/svg"><title id="hist-title">{_e(title)}</title>',
             f'<line x1="{left}" y1="{top + chart}" x2="{width - left}" y2="{top + chart}" stroke="#888"/>']
    for i, (n, lab) in enumerate(zip(counts, labels)):
        x = left + i * slot
        h = round(chart * n / tallest, 1)
        if n:
            parts.append(f'<rect x="{x + 3}" y="{top + chart - h}" width="{slot - 6}" height="{h}" fill="#3b6ea5">'
                         f'<title>{_e(lab)}: {n}</title></rect>')
        parts.append(f'<text x="{x + slot / 2}" y="{top + chart - h - 4}" text-anchor="middle" '
                     f'font-size="10" class="count">{n}</text>')
        parts.append(f'<text x="{x + slot / 2}" y="{top + chart + 14}" text-anchor="middle" font-size="9" '
                     f'fill="#555">{_e(lab)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _tally(values: list[str]) -> str:
    """One value, or 'mixed:' and each value with its count (a batch graded under two setups)."""
    counts = Counter(values).most_common()
    if not counts:
        return "—"
    if len(counts) == 1:
        return _e(counts[0][0])
    return "<span class='warn'>mixed:</span> " + "; ".join(f"{_e(v)} ({n})" for v, n in counts)


def _calibration(r: GradeResult) -> str:
    text = r.calibration_source or "unknown"
    ref = r.measurements.get("reference")
    loss = ref.get("loss") if isinstance(ref, dict) else None
    silent = r.measurements.get("silent_loss")
    if isinstance(loss, (int, float)):
        text += f": reference loss {loss:.2f}"
        if isinstance(silent, (int, float)):
            text += f" (a silent output: {silent:.2f})"
    return text


def _pass_rates(results: list[GradeResult]) -> list[dict]:
    """Per check (rubric order): how many got full points, of how many, and the mean points."""
    rows = []
    for name in dict.fromkeys(c.name for r in results for c in r.checks):
        got = [c for r in results for c in r.checks if c.name == name]
        full = sum(c.status == "passed" for c in got)
        rows.append({"name": name, "max": max(c.max_score for c in got), "full": full, "of": len(got),
                     "mean": statistics.fmean(c.score for c in got)})
    return rows


def _similarity_section(out_dir: Path) -> str:
    """A link to similarity.html with its count of pairs to look at; '' before a batch wrote one."""
    from grader.similarity import SIMILARITY_HTML, SIMILARITY_JSON

    if not (out_dir / SIMILARITY_HTML).is_file():
        return ""
    try:
        data = json.loads((out_dir / SIMILARITY_JSON).read_text())
        n = len(data["findings"])
        count = f"{n} pair{'s' * (n != 1)} of submissions alike above the thresholds"
    except (OSError, ValueError, KeyError, TypeError):
        count = "the report"
    return (f"<section id='similarity'><h2>Similarity across the class</h2><p><a href='{_href(SIMILARITY_HTML)}'>"
            f"{_e(count)}</a> (code, exported weights, output), for a person to look at; it changes no score.</p>"
            "</section>")


def overview_html(results: list[GradeResult], out_dir: Path) -> str:
    """The page for `results` (graded into out_dir, where the links and thumbnails point)."""
    out_dir = Path(out_dir)
    flags = report.class_flags(results)
    errors = [r for r in results if r.is_grader_error]
    scored = [r for r in results if not r.is_grader_error]
    scores = [r.score for r in scored]
    max_score = Counter(r.max_score for r in scored).most_common(1)[0][0] if scored else 100.0

    def link(sid: str, text: str | None = None) -> str:
        label = _e(text if text is not None else sid)
        if (out_dir / sid / FEEDBACK).is_file():
            return f"<a href='{_href(sid, FEEDBACK)}'>{label}</a>"
        return label

    # the lead: how many, how they did
    if scored:
        lead = (f"{len(scored)} submission{'s' * (len(scored) != 1)} graded: mean "
                f"<strong>{statistics.fmean(scores):.1f}</strong> / {_g(max_score)}, median "
                f"{_g(statistics.median(scores))}, lowest {_g(min(scores))}, highest {_g(max(scores))}; "
                f"{sum(r.score >= r.max_score for r in scored)} with full marks.")
    else:
        lead = "No graded submission yet."
    if errors:
        lead += (f" <span class='warn'>{len(errors)} grader error{'s' * (len(errors) != 1)}</span>, not counted "
                 "here: run the batch again to retry them.")

    setup = "".join(f"<dt>{_e(term)}</dt><dd>{value}</dd>" for term, value in (
        ("Budget", _tally([f"{r.epochs} epochs" for r in scored])),
        ("Calibration", _tally([_calibration(r) for r in scored])),
        ("Numerical mode", _tally([r.numerics or "unknown" for r in scored])),
        ("Kit version", _tally([r.kit_version or "unknown" for r in scored])),
        ("Rubric", _tally([f"fingerprint {r.config_fingerprint}" for r in scored])),
    ))

    counts = histogram(scores, max_score)
    checks = "".join(
        f"<tr><td>{_e(row['name'])}</td><td>not scored (0 points)</td><td>—</td></tr>" if not row["max"] else
        f"<tr><td>{_e(row['name'])}</td><td><span class='bar' aria-hidden='true'><span style='width:"
        f"{100 * row['full'] / row['of']:.0f}%'></span></span>{row['full']} / {row['of']} "
        f"({100 * row['full'] / row['of']:.0f} %)</td><td>{row['mean']:.1f} / {_g(row['max'])}</td></tr>"
        for row in _pass_rates(scored)
    ) or "<tr><td colspan='3'>—</td></tr>"

    flagged = "".join(
        f"<li>{link(r.submission_id)}: {_e('; '.join(flags[r.submission_id]))}</li>"
        for r in results if flags[r.submission_id]
    )
    flagged = f"<ul class='flags'>{flagged}</ul>" if flagged else "<p>No submission is flagged.</p>"

    rows = []
    for r in results:
        sid = r.submission_id
        if (out_dir / sid / FIGURE).is_file():
            figure = (f"<a href='{_href(sid, FIGURE)}'><img class='thumb' src='{_href(sid, FIGURE)}' "
                      f"alt='{_e(sid)}: the notebook&#39;s last figure' loading='lazy'></a>")
        else:
            figure = "—"
        short = ", ".join(c.name for c in r.checks if c.status != "passed")
        score = "not graded" if r.is_grader_error else f"{_g(r.score)} / {_g(r.max_score)}"
        rows.append(
            f"<tr><td data-label='submission'>{link(sid)}</td><td data-label='score' class='num'>{score}</td>"
            f"<td data-label='short of full points'>{_e(short) or '—'}</td>"
            f"<td data-label='flags'>{len(flags[sid]) or '—'}</td><td data-label='figure'>{figure}</td></tr>")
    subs = "".join(rows) or "<tr><td colspan='5'>—</td></tr>"

    moved = [r for r in results if r.regrade is not None and r.regrade.score_changed]
    same = [r for r in results if r.regrade is not None and r.regrade.changed_nothing]
    regrades = "".join(f"<li>{link(r.submission_id)}: {_e(r.regrade.sentence())}</li>" for r in moved)
    regrades = (f"<ul class='flags'>{regrades}</ul>" if regrades else "<p>No regrade changed a score.</p>")
    if same:
        regrades += (f"<p>{len(same)} regrade{'s' * (len(same) != 1)} changed nothing: "
                     f"{', '.join(link(r.submission_id) for r in same)}.</p>")
    regrades = (f"<section id='regrades'><h2>Regrades that changed a score</h2>{regrades}</section>"
                if moved or same else "")
    similar = _similarity_section(out_dir)

    downloads = " · ".join(f"<a href='{_href(name)}'>{_e(name)}</a>" for name in DOWNLOADS
                           if (out_dir / name).is_file())
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>HW8 problem 2 — class overview</title>
<style>
* {{ box-sizing: border-box; }}
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; background: #fff;
       line-height: 1.45; }}
main {{ max-width: 60rem; margin: 0 auto; padding: 1rem; }}
h1 {{ font-size: 1.45rem; margin: .3rem 0 .6rem; }}
h2 {{ font-size: 1.15rem; margin: 1.6rem 0 .5rem; padding-bottom: .2rem; border-bottom: 1px solid #ddd; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e3e3e3; vertical-align: top; }}
td, li, dd, p {{ overflow-wrap: break-word; }}
td.num {{ white-space: nowrap; }}
dl.setup {{ display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: 0; }}
dt {{ font-weight: 600; }} dd {{ margin: 0; }}
.warn {{ color: #a4262c; font-weight: 600; }}
figure {{ margin: 0; }} figcaption {{ font-size: .85rem; color: #555; }}
svg.hist {{ width: 100%; max-width: 36rem; height: auto; display: block; }}
.bar {{ display: inline-block; width: 4.5rem; height: .6rem; margin-right: .4rem; background: #e6e6e6;
        border-radius: 3px; vertical-align: middle; overflow: hidden; }}
.bar > span {{ display: block; height: 100%; background: #3b7d3b; }}
ul.flags li {{ margin-bottom: .3rem; }}
img.thumb {{ display: block; max-width: 9rem; max-height: 6rem; border: 1px solid #ccc; }}
footer {{ margin-top: 2rem; font-size: .85rem; color: #555; }}
@media (max-width: 40rem) {{
  main {{ padding: .75rem; }}
  dl.setup {{ grid-template-columns: 1fr; gap: 0; }} dd {{ margin-bottom: .5rem; }}
  table.subs thead {{ display: none; }}
  table.subs tr {{ display: block; margin: 0 0 .7rem; padding: .3rem .6rem; border: 1px solid #ddd;
                  border-radius: 6px; }}
  table.subs td {{ display: block; padding: .15rem 0; border: 0; }}
  table.subs td[data-label]::before {{ content: attr(data-label) ": "; font-weight: 600; }}
  img.thumb {{ max-width: 100%; max-height: 12rem; margin-top: .2rem; }}
  .bar {{ width: 2.5rem; }}
}}
</style></head><body><main>
<h1>HW8 problem 2 — class overview</h1>
<p class="lead">{lead}</p>
<section id="setup"><h2>How they were graded</h2><dl class="setup">{setup}</dl></section>
<section id="scores"><h2>Scores</h2><figure>{_svg_histogram(counts, max_score)}
<figcaption>Submissions per score range (a range includes its lower bound; the last one includes full
marks).</figcaption></figure></section>
<section id="checks"><h2>Full points per check</h2>
<table><thead><tr><th>check</th><th>full points</th><th>mean points</th></tr></thead><tbody>{checks}</tbody></table>
</section>
<section id="flags"><h2>Flags</h2>{flagged}</section>
{regrades}{similar}
<section id="submissions"><h2>Submissions</h2>
<table class="subs"><thead><tr><th>submission</th><th>score</th><th>short of full points</th><th>flags</th>
<th>figure</th></tr></thead><tbody>{subs}</tbody></table></section>
<footer><p>Rebuilt from each submission's results.json; the feedback page of each submission has every
check with its message.{' Files: ' + downloads + '.' if downloads else ''}</p></footer>
</main></body></html>
"""


def write_overview(out_dir: Path) -> Path:
    """Rebuild OUT/index.html from the per-submission results (atomically, like the gradebook)."""
    out_dir = Path(out_dir)
    path = out_dir / OVERVIEW
    report.atomic_write(path, overview_html(report.collect(out_dir), out_dir))
    return path
