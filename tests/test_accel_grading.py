"""The accelerator never changes a grade: the same submissions graded with and without it."""

from __future__ import annotations

import nbformat
import pytest

from grader.batch import grade_batch
from grader.config import load_config
from grader.report import collect
from grader.samples import make_sample

EPOCHS = 8
TIMING = {"evaluate_s"}


@pytest.mark.slow
def test_scores_and_measurements_identical_with_and_without_accelerator(tmp_path) -> None:
    subs = tmp_path / "subs"
    for name in ("reference", "export_before_training"):
        (subs / name).mkdir(parents=True)
        nbformat.write(make_sample(name), subs / name / "train.ipynb")
    graded = {}
    for accelerate in (True, False):
        out = tmp_path / f"accel-{accelerate}"
        config = load_config().with_budget(accelerate=accelerate)
        summary = grade_batch([subs], out, config, EPOCHS, workers=2, progress=False)
        assert summary.errors == {}
        graded[accelerate] = {r.submission_id: r for r in collect(out)}
    for sid in ("reference", "export_before_training"):
        fast, stock = graded[True][sid], graded[False][sid]
        assert [(c.name, c.score) for c in fast.checks] == [(c.name, c.score) for c in stock.checks]
        # every message but execution's, which quotes the (different) run time
        assert [c.message for c in fast.checks[1:]] == [c.message for c in stock.checks[1:]]
        strip = lambda m: {k: v for k, v in m.items() if k not in TIMING}  # noqa: E731
        assert strip(fast.measurements) == strip(stock.measurements)
        assert fast.learning_curve == stock.learning_curve and fast.learning_curve
    assert graded[True]["reference"].score == 100
    assert graded[True]["export_before_training"].score < 100
