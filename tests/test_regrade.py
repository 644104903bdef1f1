"""grader.regrade: a re-grading keeps the previous score and says which check moved and which input changed.

Results are built in memory (no notebook runs); the last test goes through the batch's own
bookkeeping with grade_submission replaced by a stand-in that grades under the batch's rubric.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import nbformat
import numpy as np

from grader import batch, overview, regrade, report
from grader.calibration import Calibration
from grader.grade import Graded
from grader.config import load_config
from grader.grade import KIT_VERSION
from grader.results import CheckResult, GradeResult, Regrade, grader_error_result

CONFIG = load_config()


def _result(config=CONFIG, lost: dict[str, float] | None = None, sha: str = "a" * 64, **changes) -> GradeResult:
    lost = lost or {}
    fields = dict(submission_id="ann", notebook_sha256=sha, epochs=200, kit_version="0.1.0", numerics="pinned",
                  calibration_source="shipped", config_fingerprint=config.fingerprint(), rubric=config.grading(),
                  measurements={"reference": {"loss": 100.0}, "silent_loss": 300.0},
                  checks=[CheckResult(n, p - lost.get(n, 0), p, "ok") for n, p in config.points.items()])
    fields.update(changes)
    return GradeResult(**fields)


def test_a_changed_rubric_names_the_key_and_the_check_that_moved() -> None:
    looser = replace(CONFIG, points={**CONFIG.points, "loss": 25.0, "similarity": 10.0})
    before = _result(lost={"loss": 10.0})
    after = _result(looser, lost={"loss": 12.5})
    r = regrade.explain(before, after)
    assert [i.what for i in r.inputs] == ["rubric"]
    assert r.inputs[0].detail == ["points.loss: 20.0 -> 25.0", "points.similarity: 15.0 -> 10.0"]
    assert [(c.name, c.before, c.after, c.max_before, c.max_after) for c in r.checks] == [
        ("loss", 10.0, 12.5, 20.0, 25.0), ("similarity", 15.0, 10.0, 15.0, 10.0)]
    assert (r.previous_score, r.score) == (90.0, 87.5) and r.score_changed and not r.changed_nothing
    assert r.sentence() == (
        f"regraded (rubric: {CONFIG.fingerprint()} -> {looser.fingerprint()} (points.loss: 20.0 -> 25.0; "
        "points.similarity: 15.0 -> 10.0)): 90 / 100 -> 87.5; loss: 10 -> 12.5 (+2.5), out of 25 instead of 20; "
        "similarity: 15 -> 10 (-5), out of 10 instead of 15")


def test_a_check_whose_maximum_alone_moved_says_so() -> None:
    looser = replace(CONFIG, points={**CONFIG.points, "loss": 25.0, "similarity": 10.0})
    r = regrade.explain(_result(lost={"loss": 20.0}), _result(looser, lost={"loss": 25.0}))
    assert r.checks[0].sentence() == "loss: 0 / 20 -> 0 / 25"
    assert r.checks[1].sentence() == "similarity: 15 -> 10 (-5), out of 10 instead of 15" and not r.changed_nothing


def test_a_regrade_that_changes_nothing_says_so() -> None:
    r = regrade.explain(_result(), _result(), forced=True)
    assert r.inputs == [] and r.checks == [] and r.forced and r.changed_nothing
    assert r.sentence() == "regraded (no input changed (--regrade)): nothing changed, 100 / 100 as before"


def test_every_input_is_named() -> None:
    before = _result()
    after = _result(sha="b" * 64, epochs=20, kit_version="0.2.0", numerics="native", calibration_source="local",
                    measurements={"reference": {"loss": 90.0}, "silent_loss": 300.0}, lost={"loss": 4.0})
    r = regrade.explain(before, after, forced=True)
    assert [i.what for i in r.inputs] == ["notebook", "budget", "calibration", "kit version", "numerical mode"]
    assert r.inputs[0].before == "a" * 12 and r.inputs[0].after == "b" * 12
    assert r.inputs[2].sentence() == "calibration: shipped -> local (reference loss 100 -> 90)"
    assert not r.forced  # an input changed: the regrade was due anyway
    assert [c.sentence() for c in r.checks] == ["loss: 20 -> 16 (-4)"]


def test_an_earlier_grader_error_is_no_previous_score() -> None:
    error = grader_error_result("ann", "a" * 64, 200, "the kernel could not start")
    r = regrade.explain(error, _result())
    assert r.previous_score is None and r.score == 100.0 and r.score_changed
    assert r.inputs[0].what == "grading machine" and "the kernel could not start" in r.inputs[0].detail[0]


def test_the_regrade_travels_in_results_json_and_the_feedback_page(tmp_path: Path) -> None:
    looser = replace(CONFIG, points={**CONFIG.points, "loss": 25.0})
    result = _result(looser, lost={"loss": 5.0})
    result.regrade = regrade.explain(_result(lost={"loss": 10.0}), result)
    report.write_results(result, tmp_path / report.RESULTS)
    back = report.read_results(tmp_path / report.RESULTS)
    assert back.regrade == result.regrade and isinstance(back.regrade, Regrade)
    assert back.rubric == looser.grading()
    page = report.feedback_html(back, None, np.zeros((4, 6)))
    assert "<section id='regrade'><h2>Regraded</h2>" in page
    assert "points.loss: 20.0 -&gt; 25.0" in page and "loss: 10 -&gt; 20 (+10), out of 25 instead of 20" in page
    assert report.regrade_html(_result()) == ""  # a first grading says nothing of the kind


def test_the_overview_lists_the_scores_that_changed(tmp_path: Path) -> None:
    moved, same = _result(lost={"loss": 5.0}), _result(submission_id="bob")
    moved.regrade = regrade.explain(_result(lost={"loss": 10.0}, config_fingerprint="old"), moved)
    same.regrade = regrade.explain(_result(submission_id="bob"), same, forced=True)
    for r in (moved, same, _result(submission_id="cat")):
        (tmp_path / r.submission_id).mkdir()
        report.write_results(r, tmp_path / r.submission_id / report.RESULTS)
    text = overview.write_overview(tmp_path).read_text()
    section = text.split("<section id='regrades'>")[1].split("</section>")[0]
    assert "<li>ann: regraded (rubric: old -&gt; " in section and "90 / 100 -&gt; 95; loss: 10 -&gt; 15 (+5)" in section
    assert "1 regrade changed nothing: bob." in section and "cat" not in section


def test_the_batch_hands_the_previous_grading_over(tmp_path: Path, monkeypatch) -> None:
    sub = tmp_path / "subs" / "ann"
    sub.mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), sub / "train.ipynb")
    config = CONFIG.with_limits(sandbox="off")
    seen = []

    def grade(sub, out_dir, config, epochs, cal, workdir=None, times=None, previous=None, forced=False):
        """A stand-in for grade_submission: one point of `loss` less each time it is called."""
        seen.append((previous.score if previous else None, forced))
        result = _result(config, sha=sub.sha256, epochs=epochs, kit_version=KIT_VERSION, lost={"loss": len(seen)})
        if previous is not None:
            result.regrade = regrade.explain(previous, result, forced)
        (out_dir / sub.id).mkdir(parents=True, exist_ok=True)
        report.write_results(result, out_dir / sub.id / report.RESULTS)
        return Graded(result)

    monkeypatch.setattr(batch, "grade_submission", grade)
    monkeypatch.setattr(batch.calibration, "get", lambda *a, **k: Calibration(200, 0, 100.0, 300.0, {}, 1.0, 0.5))
    monkeypatch.setattr(batch.calibration, "load", lambda *a, **k: None)
    monkeypatch.setattr(batch.timeouts, "for_budget", lambda *a, **k: None)
    out = tmp_path / "out"
    batch.grade_batch([tmp_path / "subs"], out, config, 200, workers=0, progress=False)
    batch.grade_batch([tmp_path / "subs"], out, config, 200, workers=0, regrade=True, progress=False)
    assert seen == [(None, False), (99.0, True)]
    (result,) = report.collect(out)
    assert result.regrade is not None and result.regrade.previous_score == 99.0 and result.score == 98.0
    assert result.regrade.forced and [c.sentence() for c in result.regrade.checks] == ["loss: 19 -> 18 (-1)"]
    assert "ann: regraded (no input changed (--regrade)): 99 / 100 -&gt; 98" in (out / overview.OVERVIEW).read_text()
