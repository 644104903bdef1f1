"""grader.overview: OUT/index.html, the class overview, from hand-written results.

The fast tests read the page's numbers back (histogram, full points per check, flags, setup, links,
escaping). The browser test renders index.html and a feedback page in headless Chromium and checks
that every image loads, every link resolves to a file and index.html fits a phone's 375 px; it is
skipped where Chromium is missing and fails in CI, which installs it (.ci/run).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest

from conftest import IN_CI
from grader import batch, overview, report
from grader.results import CheckResult, GradeResult

POINTS = {"execution": 10, "dataset": 15, "output_shape": 10, "hdf5": 20, "export": 10, "loss": 20, "similarity": 15}
MODE = "pinned (torch AVX2, MKL CNR COMPATIBLE)"
HOSTILE = "<script>alert('owned')"  # a folder name may hold anything but '/'
ODD = "a b#1?%20&c"  # characters that break a link unless percent-encoded
REFERENCE = {"reference": {"loss": 42822.4375}, "silent_loss": 92822.40234375}


def _result(sid: str, lost: dict[str, float] | None = None, **changes) -> GradeResult:
    lost = lost or {}
    fields = dict(
        submission_id=sid, notebook_sha256="0" * 64, epochs=200, kit_version="0.1.0", numerics=MODE,
        calibration_source="shipped", config_fingerprint="e3a50bd2646f6550",
        measurements=dict(REFERENCE),
        checks=[CheckResult(n, p - lost.get(n, 0), p, "ok") for n, p in POINTS.items()],
    )
    fields.update(changes)
    return GradeResult(**fields)


def _png(width: int = 8, height: int = 6) -> bytes:
    """A valid PNG, without matplotlib."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + b"\xc0\x30\x30" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def _write(out: Path, result: GradeResult, feedback: bool = True, figure: bool = False) -> None:
    folder = out / result.submission_id
    folder.mkdir(parents=True, exist_ok=True)
    report.write_results(result, folder / report.RESULTS)
    if feedback:
        (folder / overview.FEEDBACK).write_text("<!doctype html><title>feedback</title>")
    if figure:
        (folder / overview.FIGURE).write_bytes(_png())


class _Page(HTMLParser):
    """The page's table rows (cell texts) and list items, per section id; every href and src."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.section, self.rows, self.items, self.hrefs, self.srcs = "", {}, {}, [], []
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self._item: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id", "")
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "li":
            self._item = []
        elif tag == "a":
            self.hrefs.append(a["href"])
        elif tag == "img":
            self.srcs.append(a["src"])

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.setdefault(self.section, []).append(self._row)
            self._row = None
        elif tag == "li" and self._item is not None:
            self.items.setdefault(self.section, []).append(" ".join("".join(self._item).split()))
            self._item = None

    def handle_data(self, data):
        for part in (self._cell, self._item):
            if part is not None:
                part.append(data)


@pytest.fixture
def graded(tmp_path: Path) -> Path:
    out = tmp_path / "out"
    _write(out, _result("ann"), figure=True)  # 100
    _write(out, _result("bob", {"hdf5": 20, "export": 10, "loss": 20, "similarity": 15}))  # 35
    _write(out, _result("cat", {"loss": 12.5, "similarity": 3}, flags=["budget not set (no `parameters` cell)"]))
    _write(out, _result(HOSTILE, {"execution": 10, "dataset": 15, "output_shape": 10, "hdf5": 20, "export": 10,
                                  "loss": 20, "similarity": 15}, measurements={**REFERENCE, "weights_sha256": "aa"}),
           figure=True)
    _write(out, _result(ODD, {"similarity": 15}, measurements={**REFERENCE, "weights_sha256": "aa"}))  # 85
    _write(out, _result("dan", dict(POINTS), config_fingerprint=batch.ERROR_FINGERPRINT,
                        flags=["grader error: RuntimeError: boom"]), feedback=False)
    report.write_gradebook(out)
    return out


def test_histogram_bins() -> None:
    assert overview.histogram([0, 9.99, 10, 35, 84.5, 99.99, 100, 100], 100) == [2, 1, 0, 1, 0, 0, 0, 0, 1, 3]
    assert overview.histogram([0, 5, 50], 50, bins=5) == [2, 0, 0, 0, 1]
    assert overview.histogram([], 100) == [0] * 10


def test_the_overview_reads_back_its_numbers(graded: Path) -> None:
    path = overview.write_overview(graded)
    assert path == graded / "index.html"
    text = path.read_text()
    page = _Page(text)
    lead = re.sub(r"<[^>]+>", "", text.split("<p class=\"lead\">")[1].split("</p>")[0])
    assert lead == ("5 submissions graded: mean 60.9 / 100, median 84.5, lowest 0, highest 100; 1 with full marks. "
                    "1 grader error, not counted here: run the batch again to retry them.")
    assert page.rows["checks"] == [
        ["check", "full points", "mean points"],
        ["execution", "4 / 5 (80 %)", "8.0 / 10"],
        ["dataset", "4 / 5 (80 %)", "12.0 / 15"],
        ["output_shape", "4 / 5 (80 %)", "8.0 / 10"],
        ["hdf5", "3 / 5 (60 %)", "12.0 / 20"],
        ["export", "3 / 5 (60 %)", "6.0 / 10"],
        ["loss", "2 / 5 (40 %)", "9.5 / 20"],
        ["similarity", "1 / 5 (20 %)", "5.4 / 15"],
    ]
    # the histogram: 0 (the hostile id), 35 (bob), 84.5 (cat), 85 (the odd id), 100 (ann); dan's error is left out
    counts = re.findall(r'class="count">(\d+)</text>', text)
    assert [int(c) for c in counts] == overview.histogram([100, 35, 84.5, 0, 85], 100) == [1, 0, 0, 1, 0, 0, 0, 0, 2, 1]
    assert "Score histogram: 0–10: 1, 10–20: 0, 20–30: 0, 30–40: 1," in text
    setup = dict(zip(re.findall(r"<dt>(.*?)</dt>", text), re.findall(r"<dd>(.*?)</dd>", text)))
    assert setup == {
        "Budget": "200 epochs",
        "Calibration": "shipped: reference loss 42822.44 (a silent output: 92822.40)",
        "Numerical mode": html.escape(MODE),
        "Kit version": "0.1.0",
        "Rubric": "fingerprint e3a50bd2646f6550",
    }
    assert page.items["flags"] == [  # in the gradebook's order (by id)
        f"{HOSTILE}: identical exported weights as {ODD}",
        f"{ODD}: identical exported weights as {HOSTILE}",
        "cat: budget not set (no `parameters` cell)",
        "dan: grader error: RuntimeError: boom",
    ]
    subs = {row[0]: row[1:] for row in page.rows["submissions"][1:]}
    assert subs["ann"] == ["100 / 100", "—", "—", ""]  # the thumbnail has no text
    assert subs["bob"] == ["35 / 100", "hdf5, export, loss, similarity", "—", "—"]
    assert subs["dan"] == ["not graded", "execution, dataset, output_shape, hdf5, export, loss, similarity", "1", "—"]
    assert subs[ODD] == ["85 / 100", "similarity", "1", "—"]


def test_links_and_thumbnails_point_at_files_that_exist(graded: Path) -> None:
    text = overview.write_overview(graded).read_text()
    page = _Page(text)
    hrefs = set(page.hrefs)
    assert hrefs == {"ann/feedback.html", "ann/figure.png", "bob/feedback.html", "cat/feedback.html",
                     "%3Cscript%3Ealert%28%27owned%27%29/feedback.html",
                     "%3Cscript%3Ealert%28%27owned%27%29/figure.png",
                     "a%20b%231%3F%2520%26c/feedback.html", "gradebook.csv"}
    assert page.srcs == ["%3Cscript%3Ealert%28%27owned%27%29/figure.png", "ann/figure.png"]
    for href in hrefs | set(page.srcs):
        assert (graded / unquote(href)).is_file(), href
    assert "dan/feedback.html" not in text  # a grader error has no feedback page: no dead link


def test_hostile_ids_are_escaped(graded: Path) -> None:
    text = overview.write_overview(graded).read_text()
    assert "<script" not in text and "alert('owned')" not in text
    assert "&lt;script&gt;alert(&#x27;owned&#x27;)" in text
    assert "a b#1?%20&amp;c" in text and "a b#1?%20&c" not in text
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # nothing external
    assert "https://" not in text and "<link" not in text


def test_a_mixed_batch_says_so(tmp_path: Path) -> None:
    _write(tmp_path, _result("ann"))
    _write(tmp_path, _result("bob", epochs=20, calibration_source="local", kit_version="0.2.0"))
    text = overview.write_overview(tmp_path).read_text()
    assert "<dt>Budget</dt><dd><span class='warn'>mixed:</span> 200 epochs (1); 20 epochs (1)</dd>" in text
    assert "<dd><span class='warn'>mixed:</span> 0.1.0 (1); 0.2.0 (1)</dd>" in text


def test_a_check_worth_no_points_is_not_a_pass_rate(tmp_path: Path) -> None:
    free = CheckResult("figure", 0.0, 0.0, "the executed notebook shows no figure")
    _write(tmp_path, _result("ann", checks=[CheckResult("execution", 10, 10, "ok"), free]))
    _write(tmp_path, _result("bob", checks=[CheckResult("execution", 0, 10, "raised"), free]))
    page = _Page(overview.write_overview(tmp_path).read_text())
    assert page.rows["checks"][1:] == [["execution", "1 / 2 (50 %)", "5.0 / 10"],
                                       ["figure", "not scored (0 points)", "—"]]
    assert [row[2] for row in page.rows["submissions"][1:]] == ["—", "execution"]


def test_an_empty_folder_still_gets_a_page(tmp_path: Path) -> None:
    text = overview.write_overview(tmp_path).read_text()
    assert "No graded submission yet." in text and "<td colspan='5'>—</td>" in text


def test_the_batch_writes_the_overview_beside_the_gradebook(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(batch.calibration, "load", lambda *a, **k: None)  # no fingerprint run: nothing to grade
    _write(tmp_path, _result("ann"))
    summary = batch.grade_batch([], tmp_path, _config(), epochs=200, progress=False)
    assert summary.gradebook == tmp_path / report.GRADEBOOK
    assert "ann/feedback.html" in (tmp_path / overview.OVERVIEW).read_text()
    assert _result("x", {}, config_fingerprint=batch.ERROR_FINGERPRINT).is_grader_error  # one definition: results.py


def _config():
    from grader.config import load_config

    return load_config().with_limits(sandbox="off")


# --- in a browser ----------------------------------------------------------------------------------

PROBE = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  Promise.all(imgs.map(function (img) {
    return img.complete ? null : new Promise(function (done) {
      img.addEventListener('load', done); img.addEventListener('error', done); });
  })).then(function () {
    var probe = document.createElement('pre');
    probe.id = 's2s-probe';
    probe.textContent = JSON.stringify({
      images: imgs.map(function (i) { return [i.currentSrc || i.src, i.naturalWidth]; }),
      links: Array.prototype.map.call(document.links, function (a) { return a.href; }),
      scripts: document.scripts.length,
      width: document.documentElement.clientWidth,
      scrollWidth: document.documentElement.scrollWidth
    });
    document.body.appendChild(probe);
    if (window.parent !== window) { window.parent.postMessage(probe.textContent, '*'); }
  });
});
</script>"""

# Chromium's headless window is at least 500 px wide: the page goes in a 375 px frame, a phone's width,
# and its probe posts what it saw to this page, which Chromium's --dump-dom prints.
PHONE = """<!doctype html><html><body style="margin:0">
<iframe src="{src}" width="375" height="1400" style="border:0"></iframe>
<script>
window.addEventListener('message', function (event) {{
  var probe = document.createElement('pre');
  probe.id = 's2s-probe';
  probe.textContent = event.data;
  document.body.appendChild(probe);
}});
</script></body></html>"""


LONG_MESSAGE = ("code cell 23 (In [23], \"net.export_hdf5(trained_folder + '/network.net')\") raised AttributeError: "
                + "'Dense'_object_has_no_attribute_'neuron_shape'" * 4)  # one unbroken word, as tracebacks write


def _chromium() -> str:
    found = next(filter(None, map(shutil.which, ("chromium", "chromium-browser", "google-chrome"))), None)
    if found is None:
        reason = "no headless Chromium (apt-get install chromium) to render the overview"
        if IN_CI:
            pytest.fail(f"{reason}: CI must run the browser test (.ci/run installs it)", pytrace=False)
        pytest.skip(reason)
    return found


def _render(chromium: str, page: Path, tmp: Path) -> dict:
    """Load a copy of `page` beside it, with the probe, in a frame of a phone's width; what the probe saw."""
    copy = page.with_name(f".probe-{page.name}")
    copy.write_text(page.read_text().replace("</body>", PROBE + "</body>", 1))
    phone = page.with_name(f".phone-{page.name}")
    phone.write_text(PHONE.format(src=copy.name))
    try:
        run = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={tmp / 'chromium-profile'}", "--virtual-time-budget=5000",
             "--window-size=500,1500", "--dump-dom", phone.as_uri()],
            capture_output=True, text=True, timeout=120)
    finally:
        copy.unlink()
        phone.unlink()
    found = re.search(r'<pre id="s2s-probe">(.*?)</pre>', run.stdout, re.S)
    assert found, f"the page did not finish loading its images in Chromium:\n{run.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def _target(url: str) -> Path:
    parts = urlsplit(url)
    assert parts.scheme == "file", f"not a local file: {url}"  # self-contained: nothing from the network
    return Path(unquote(parts.path))


def test_overview_and_feedback_render_in_chromium(graded: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    spikes = (np.random.default_rng(0).random((20, 60)) < 0.05).astype(np.float32)
    sid = HOSTILE
    result = report.read_results(graded / sid / report.RESULTS)
    result.learning_curve = [3.0, 2.0, 1.5]
    result.checks[0].message = LONG_MESSAGE
    report.write_feedback(result, spikes, spikes, graded / sid / overview.FEEDBACK)  # the real page
    index = overview.write_overview(graded)

    seen = _render(chromium, index, tmp_path)
    assert seen["scripts"] == 1  # the probe only: the hostile id did not become a script
    assert len(seen["images"]) == 2 and all(width > 0 for _, width in seen["images"]), seen["images"]
    assert {_target(src).parent.name for src, _ in seen["images"]} == {"ann", HOSTILE}
    assert len(seen["links"]) == len(_Page(index.read_text()).hrefs) == 11
    for url in seen["links"]:
        assert _target(url).is_file(), url
    assert seen["scrollWidth"] <= seen["width"] == 375, seen  # fits a phone: nothing wider than the screen

    feedback = _render(chromium, graded / sid / overview.FEEDBACK, tmp_path)
    assert feedback["scripts"] == 1
    assert feedback["scrollWidth"] <= feedback["width"] == 375, feedback  # long messages wrap on a phone
    assert len(feedback["images"]) >= 2  # the raster and the learning curve, inline
    for src, width in feedback["images"]:
        assert width > 0 and (src.startswith("data:image/") or _target(src).is_file()), src[:80]
    for url in feedback["links"]:
        assert urlsplit(url).fragment or _target(url).is_file(), url


# --- axe-core: WCAG 2.1 AA and best practice, in the same headless Chromium --------------------------

AXE_DIR = Path(os.environ.get("S2S_AXE_DIR", Path(__file__).resolve().parent.parent / ".cache" / "axe"))
AXE_JS = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"  # `npm install --prefix AXE_DIR axe-core@4` (.ci/run)
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
AXE_RUN = """<script>
axe.run(document, {runOnly: {type: 'tag', values: %s}}).then(function (r) {
  var out = document.createElement('pre');
  out.id = 's2s-axe';
  out.textContent = JSON.stringify(r.violations.map(function (v) {
    return {id: v.id, impact: v.impact, nodes: v.nodes.map(function (n) { return n.target.join(' '); })}; }));
  document.body.appendChild(out);
});
</script>"""


def _axe() -> Path:
    """axe.min.js, installed from npm on first use where npm is; skipped without it (CI fails instead)."""
    if not AXE_JS.is_file() and shutil.which("npm"):
        subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(AXE_DIR),
                        "axe-core@4"], capture_output=True, timeout=300)
    if not AXE_JS.is_file():
        reason = f"no axe-core at {AXE_JS} (npm install --prefix {AXE_DIR} axe-core@4)"
        if IN_CI:
            pytest.fail(f"{reason}: CI must run the accessibility test (.ci/run installs it)", pytrace=False)
        pytest.skip(reason)
    return AXE_JS


def _violations(chromium: str, page: Path, tmp: Path) -> list[dict]:
    """axe-core's violations on `page`: a copy of it with axe inlined and run after load, read back by --dump-dom."""
    copy = page.with_name(f".axe-{page.name}")
    script = "<script>" + _axe().read_text(encoding="utf-8") + "</script>" + AXE_RUN % json.dumps(AXE_TAGS)
    copy.write_text(page.read_text().replace("</body>", script + "</body>", 1))
    try:
        run = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp / 'axe-profile'}",
             "--virtual-time-budget=10000", "--window-size=390,1500", "--dump-dom", copy.as_uri()],
            capture_output=True, text=True, timeout=180)
    finally:
        copy.unlink()
    found = re.search(r'<pre id="s2s-axe">(.*?)</pre>', run.stdout, re.S)
    assert found, f"axe-core did not finish on {page.name} in Chromium:\n{run.stderr[-2000:]}"
    return json.loads(html.unescape(found.group(1)))


def test_feedback_and_overview_pass_axe_core(graded: Path, tmp_path: Path) -> None:
    chromium = _chromium()
    spikes = (np.random.default_rng(0).random((20, 60)) < 0.05).astype(np.float32)
    result = report.read_results(graded / "cat" / report.RESULTS)
    result.learning_curve = [3.0, 2.0, 1.5]
    result.checks.append(CheckResult("figure", 0.0, 0.0, "no figure in the executed notebook"))  # unscored row
    report.write_feedback(result, spikes, spikes, graded / "cat" / overview.FEEDBACK)
    error = report.read_results(graded / "dan" / report.RESULTS)
    report.write_error_feedback(error, graded / "dan" / overview.FEEDBACK)
    index = overview.write_overview(graded)
    for page in (graded / "cat" / overview.FEEDBACK, graded / "dan" / overview.FEEDBACK, index):
        assert _violations(chromium, page, tmp_path) == [], page

