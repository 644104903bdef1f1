"""The full course budget, end to end: CI runs it (about 10 minutes on 2 cores).

Stock slayer and the accelerator train 2000 epochs from the same seed; every
loss and every parameter must be bit-identical, and both must reproduce the
figures recorded in solution/reference_run.json by `nox -s reference`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.accel.verify_full import verify

RECORD = Path(__file__).resolve().parent.parent / "solution" / "reference_run.json"


@pytest.mark.slow
def test_full_reference_run_stock_and_accelerated_are_identical_and_match_the_record() -> None:
    record = json.loads(RECORD.read_text())
    summary = verify(record["epochs"], seed=record["seed"], threads=1)
    assert summary["losses_identical"], summary["first_loss_mismatch"]
    assert summary["params_identical"], summary["param_mismatches"]
    assert summary["loss_txt_identical"]
    assert summary["accel"]["accelerated"] is True and summary["stock"]["accelerated"] is False
    for kind in ("stock", "accel"):
        assert summary[kind]["best_loss"] == record["best_training_loss"]
        assert summary[kind]["final_loss"] == record["final_training_loss"]
    assert record["exported_network_loss"] < 0.4 * record["silent_output_loss"]
