"""grader.trace: the shipped run's compact record, and a mismatch that explains itself."""

from __future__ import annotations

from dataclasses import replace

import torch

from grader import fingerprint, trace
from grader.trace import Op, RunTrace


def _trace() -> RunTrace:
    ops = [Op("stack", (1, 256, 600), "aa" * 8), Op("kit.matmul", (256, 200), "bb" * 8), Op("sqrt", (256, 200), "cc" * 8)]
    return RunTrace([ops, ops[:2]], [trace.loss_hex(x) for x in (246142.921875, 181474.40625, 144416.625)])


def test_the_shipped_trace_is_this_machines_when_the_fingerprint_matches() -> None:
    verdict = fingerprint.check()
    shipped = trace.shipped()
    assert shipped is not None and verdict.matches
    assert verdict.trace == shipped and verdict.difference is None
    assert len(shipped.losses) == fingerprint.EPOCHS and len(shipped.epochs) == trace.TRACED_EPOCHS
    names = {op.name for op in shipped.epochs[1]}
    assert {"kit.matmul", "kit.exp", "sqrt"} <= names  # the kit's own kernels are named where they run


def test_first_difference_names_the_epoch_and_the_op() -> None:
    here = _trace()
    assert trace.first_difference(here, here) is None
    ops = list(here.epochs[0])
    ops[2] = replace(ops[2], digest="dd" * 8)
    there = RunTrace([ops, here.epochs[1]], [here.losses[0], trace.loss_hex(181474.5), here.losses[2]])
    assert trace.first_difference(here, there) == (
        "the loss first differs at epoch 1 (181474.40625 here, 181474.5 shipped); the first op whose result "
        "differs is #2 of epoch 0, `sqrt` (256, 200), after `kit.matmul` (256, 200)")
    shorter = RunTrace([here.epochs[0][:2], here.epochs[1]], here.losses)
    assert trace.first_difference(shorter, here) == "epoch 0 runs 2 ops here and 3 in the shipped run"
    other = RunTrace([[Op("mm", (256, 200), "bb" * 8)] + here.epochs[0][1:], here.epochs[1]], here.losses)
    assert trace.first_difference(other, here) == (
        "op #0 of epoch 0 is `mm` (256, 200) here, `stack` (1, 256, 600) in the shipped run")


def test_a_trace_survives_its_file(tmp_path) -> None:
    path = trace.save(_trace(), tmp_path / "trace.json")
    assert trace.shipped(path) == _trace()
    path.write_text("{not json")
    assert trace.shipped(path) is None


def test_a_mismatching_machine_says_where_it_parts_from_the_shipped_run() -> None:
    real = fingerprint.check()
    other = replace(real.local, digest="0" * 64, numerics={**real.local.numerics, "cpu": "Other CPU"})
    verdict = fingerprint.Verdict(matches=False, local=other, shipped=real.shipped,
                                  difference="the loss first differs at epoch 3 (1.0 here, 2.0 shipped)")
    assert verdict.sentence.endswith(
        "every calibration of this batch is computed here and recorded as local; "
        "the loss first differs at epoch 3 (1.0 here, 2.0 shipped)")


def test_the_recorder_digests_float_results_and_stops_after_its_epochs() -> None:
    def run(progress):
        for epoch in range(3):
            torch.ones(2, 3).mul(epoch + 1.0)
            progress(epoch, 0.5 * epoch)
        return "done"

    result, recorded = trace.record(run, epochs=2)
    assert result == "done" and recorded.losses == [trace.loss_hex(0.0), trace.loss_hex(0.5), trace.loss_hex(1.0)]
    assert [[op.name for op in ops] for ops in recorded.epochs] == [["ones", "mul"], ["ones", "mul"]]
    assert recorded.epochs[1][1].digest == trace.digest(torch.full((2, 3), 2.0))
