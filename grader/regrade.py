"""Why a re-grading differs from the grading it replaces: which checks moved, which inputs changed.

A batch grades a submission again when its notebook, the rubric, the calibration,
the budget or the kit changed, or when told to (`--regrade`). The new result
keeps the previous score and says what moved and why (`results.Regrade`), so an
instructor who changes a threshold can answer "why did my grade change?" from
the feedback page. Pure functions on two results: no I/O.
"""

from __future__ import annotations

from typing import Any

from grader.results import CheckChange, GradeResult, InputChange, Regrade


def _short(digest: str, n: int = 12) -> str:
    return digest[:n] if digest else "unknown"


def _flat(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flat(value, name + "."))
        else:
            flat[name] = value
    return flat


def rubric_changes(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """'points.loss: 20 -> 25' for every key of Config.grading() that differs ('(none)' where absent)."""
    old, new = _flat(before), _flat(after)
    return [f"{key}: {old.get(key, '(none)')} -> {new.get(key, '(none)')}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def _reference(r: GradeResult) -> tuple[Any, Any, Any]:
    ref = r.measurements.get("reference")
    loss = ref.get("loss") if isinstance(ref, dict) else None
    return loss, r.measurements.get("silent_loss"), r.calibration_source


def input_changes(previous: GradeResult, new: GradeResult) -> list[InputChange]:
    """Each input of the grading that differs: notebook, rubric, calibration, budget, kit, numerical mode."""
    changes = []
    if previous.notebook_sha256 != new.notebook_sha256:
        changes.append(InputChange("notebook", _short(previous.notebook_sha256), _short(new.notebook_sha256),
                                   ["the submission's notebook is not the one graded before"]))
    if previous.config_fingerprint != new.config_fingerprint:
        detail = rubric_changes(previous.rubric, new.rubric) if previous.rubric and new.rubric else []
        changes.append(InputChange("rubric", previous.config_fingerprint or "unknown", new.config_fingerprint,
                                   detail or ["the earlier result does not record its rubric"]))
    if previous.epochs != new.epochs:
        changes.append(InputChange("budget", f"{previous.epochs} epochs", f"{new.epochs} epochs"))
    (loss0, silent0, source0), (loss1, silent1, source1) = _reference(previous), _reference(new)
    if (loss0, silent0, source0) != (loss1, silent1, source1):
        detail = []
        if loss0 != loss1:
            detail.append(f"reference loss {_num(loss0)} -> {_num(loss1)}")
        if silent0 != silent1:
            detail.append(f"silent loss {_num(silent0)} -> {_num(silent1)}")
        changes.append(InputChange("calibration", source0 or "unknown", source1 or "unknown", detail))
    if previous.kit_version != new.kit_version:
        changes.append(InputChange("kit version", previous.kit_version or "unknown", new.kit_version))
    if previous.numerics != new.numerics:
        changes.append(InputChange("numerical mode", previous.numerics or "unknown", new.numerics))
    return changes


def _num(value: Any) -> str:
    return f"{value:.6g}" if isinstance(value, (int, float)) else "unknown"


def check_changes(previous: GradeResult, new: GradeResult) -> list[CheckChange]:
    """Every check whose points or maximum differ, in the new rubric's order, then those that are gone."""
    old = {c.name: c for c in previous.checks}
    now = {c.name: c for c in new.checks}
    moved = []
    for name, c in now.items():
        before = old.get(name)
        if before is None:
            moved.append(CheckChange(name, None, c.score, None, c.max_score))
        elif (before.score, before.max_score) != (c.score, c.max_score):
            moved.append(CheckChange(name, before.score, c.score, before.max_score, c.max_score))
    moved += [CheckChange(name, c.score, None, c.max_score, None) for name, c in old.items() if name not in now]
    return moved


def explain(previous: GradeResult, new: GradeResult, forced: bool = False) -> Regrade:
    """The Regrade of `new` against `previous` (same submission); `forced`: the batch was told to regrade."""
    if previous.is_grader_error:  # no grade before: every check is new, and the machine's fault is the reason
        return Regrade(None, 0.0, new.score, check_changes(previous, new),
                       [InputChange("grading machine", "error", "graded", [previous.grader_error])], forced)
    inputs = input_changes(previous, new)
    return Regrade(previous.score, previous.max_score, new.score, check_changes(previous, new), inputs,
                   forced and not inputs)
