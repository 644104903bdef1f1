"""OUT/similarity.html: the class's similarity report (grader.similarity), for a person to look at.

Self-contained like the overview (inline CSS, no script, nothing fetched); ids are
untrusted, so every text is escaped and every link percent-encoded. The page says
first what it is not: a finding is a reason to look, never a grade.
"""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import quote

from grader.similarity import ClassSimilarity, PairSimilarity

_e = html.escape
FEEDBACK = "feedback.html"
EXPECTED = {
    "reference": "export the reference solution's weights bit for bit: what every faithful solution trained at "
                 "this budget and seed exports",
    "untrained": "export the untrained network (seeded, so the same for everyone): exported before training",
}


def _href(*parts: str) -> str:
    return _e("/".join(quote(p, safe="") for p in parts))


def _fig(x: float | None) -> str:
    return "—" if x is None else f"{x:.3f}"


def _link(sid: str, out_dir: Path) -> str:
    if (out_dir / sid / FEEDBACK).is_file():
        return f"<a href='{_href(sid, FEEDBACK)}'>{_e(sid)}</a>"
    return _e(sid)


def _cell(kind: str, p: PairSimilarity, found: ClassSimilarity) -> str:
    th = found.thresholds
    alike = kind in p.kinds
    if kind == "code":
        text = (f"{_fig(p.code)} of what they wrote beyond the reference solution" if p.code is not None
                else "nothing of their own beyond the reference solution")
        text += f"; {_fig(p.code_all)} counting it"
        limit = f"≥ {th.code:g}"
    elif kind == "weights":
        if p.weights_note.startswith("not comparable"):
            text = _e(p.weights_note)
        else:
            text = f"r = {_fig(p.weights)}" + (" (identical)" if p.weights_note == "identical" else "")
        limit = f"≥ {th.weights:g}"
    else:
        a, b = p.output_to_target
        text = f"F1 {_fig(p.output)}; against the target {_fig(a)} and {_fig(b)}"
        limit = f"≥ {th.output:g} and {th.output_margin:g} above"
    mark = "alike" if alike else "—"
    return (f"<td data-label='{kind}' class='{'alike' if alike else ''}'><strong>{mark}</strong> "
            f"<span class='fig'>{_e(text) if kind != 'weights' else text}</span>"
            f"<span class='th'>{_e(limit)}</span></td>")


def similarity_html(found: ClassSimilarity, out_dir: Path) -> str:
    """The page for `found` (OUT's report); links go to each submission's feedback page."""
    out_dir = Path(out_dir)
    th = found.thresholds
    n = len(found.submissions)
    rows = "".join(
        f"<tr><td data-label='pair'>{_link(p.a, out_dir)}<br>{_link(p.b, out_dir)}</td>"
        f"<td data-label='alike in'>{_e(p.what())}</td>"
        + "".join(_cell(kind, p, found) for kind in ("code", "weights", "output")) + "</tr>"
        for p in found.findings)
    table = (f"<table class='pairs'><thead><tr><th>pair</th><th>alike in</th><th>code (Jaccard)</th>"
             f"<th>exported weights (smallest per-layer correlation)</th><th>output (spike F1 ±2 ms)</th></tr>"
             f"</thead><tbody>{rows}</tbody></table>") if rows else "<p>No pair is alike above the thresholds.</p>"
    expected = "".join(
        f"<li>{len(ids)} submissions {_e(EXPECTED.get(origin, origin))}: "
        f"{', '.join(_link(s, out_dir) for s in ids)}. Alike in weights and output by construction: not "
        "compared on those, against each other or anyone else.</li>"
        for origin, ids in sorted(found.expected.items())) or "<li>none</li>"
    gaps = "".join(f"<li>{_link(sid, out_dir)}: {_e('; '.join(why))}</li>" for sid, why in sorted(found.gaps.items()))
    gaps = f"<ul>{gaps}</ul>" if gaps else "<p>Every submission had its code, weights and output.</p>"
    pairs = n * (n - 1) // 2
    secs = found.seconds
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>HW8 problem 2 — similarity across the class</title>
<style>
* {{ box-sizing: border-box; }}
body {{ font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #222; line-height: 1.45; }}
main {{ max-width: 72rem; margin: 0 auto; padding: 1rem; }}
h1 {{ font-size: 1.45rem; }} h2 {{ font-size: 1.15rem; border-bottom: 1px solid #ddd; margin-top: 1.6rem; }}
p.note {{ background: #fff4e5; padding: .6rem; }}
table {{ border-collapse: collapse; width: 100%; }}
th, td {{ text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #e3e3e3; vertical-align: top; }}
td.alike {{ background: #fbe9e7; }} table.pairs td:first-child {{ min-width: 11rem; }} td strong {{ display: block; }}
.fig {{ display: block; }} .th {{ display: block; font-size: .8rem; color: #666; }}
td, li {{ overflow-wrap: anywhere; }}
@media (max-width: 40rem) {{
  table.pairs thead {{ display: none; }}
  table.pairs tr {{ display: block; margin-bottom: .7rem; border: 1px solid #ddd; border-radius: 6px; padding: .3rem .6rem; }}
  table.pairs td {{ display: block; border: 0; padding: .15rem 0; }}
  table.pairs td[data-label]::before {{ content: attr(data-label) ": "; font-weight: 600; }}
}}
</style></head><body><main>
<h1>HW8 problem 2 — similarity across the class</h1>
<p class="note">A finding is a reason for a person to look at two notebooks side by side, never evidence on its
own and never part of a score. Everyone starts from the same handout and the same seed: what that makes alike
is left out or grouped below.</p>
<p class="lead">{len(found.findings)} pair{'s' * (len(found.findings) != 1)} alike above the thresholds among
{n} graded submissions ({pairs} pairs compared in {secs.get('total', 0):.2f} s: reading
{secs.get('read', 0):.2f} s, comparing {secs.get('compare', 0):.2f} s).</p>
<section id="findings"><h2>Pairs to look at</h2>{table}</section>
<section id="expected"><h2>Expected alike (not findings)</h2><ul>{expected}</ul></section>
<section id="method"><h2>What is compared</h2><ul>
<li><strong>Code</strong>: {th.shingle}-token shingles of the code cells, every name that is not a keyword,
a builtin or an attribute replaced by one placeholder and every number and string by one token (renamed
variables and changed constants still match), the cells taken as one set (reordered cells still match). The
handout's own lines are left out, and so is the reference solution's code: a faithful solution is that code
(the tutorial's), so two students who both wrote it are alike by construction. Alike: Jaccard of what each
wrote beyond it ≥ {th.code:g}, when both wrote at least a few shingles of their own.</li>
<li><strong>Exported weights</strong>: Pearson correlation of each layer's weight matrix in
<code>Trained/network.net</code>; alike when every layer's is ≥ {th.weights:g}. Another architecture is not
comparable. Not compared against an export that is exactly the reference's or the untrained one (expected).</li>
<li><strong>Output</strong>: spike F1 (±2 ms) between the two exported networks' outputs on the official
input; alike when ≥ {th.output:g} and at least {th.output_margin:g} above the better one's F1 against the
target (two good outputs resemble each other through the target; shared mistakes do not).</li>
<li>Thresholds are the rubric's <code>[similarity]</code>, calibrated on the kit's samples (docs/instructors.md).</li>
</ul></section>
<section id="gaps"><h2>Not compared in every kind</h2>{gaps}</section>
<footer><p><a href="index.html">Class overview</a></p></footer>
</main></body></html>
"""
