"""One results object per submission, and its one serializer (Gradescope's results.json)."""

from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grader.config import GradescopeOutput

PASSED, FAILED = "passed", "failed"
ERROR_FINGERPRINT = "error"  # config_fingerprint of a grader-error result: not a grade, never trusted by a re-run
NOT_GRADED = "not graded (grading machine error)"
NOT_YOUR_FAULT = ("This is a fault of the grading machine, not of your notebook: it has no score, and it will be "
                  "graded again once the machine is fixed.")


TERMINAL_WIDTH = 110  # the check's terminal lines wrap here


def _wrapped(parts: list[str], head: str, width: int) -> list[str]:
    """Each part on lines of its own, the first after `head`, the others indented under it."""
    indent = " " * len(head)
    lines: list[str] = []
    for i, part in enumerate(parts):
        lines += textwrap.wrap(part, width, initial_indent=head if i == 0 else indent, subsequent_indent=indent,
                               break_long_words=False, break_on_hyphens=False) or [(head if i == 0 else indent).rstrip()]
    return lines


def clauses_of(message: str) -> list[str]:
    """A message's "; "-separated clauses, leaving those inside brackets or backticks whole."""
    parts, depth, quoted, start = [], 0, False, 0
    for i, ch in enumerate(message):
        if ch == "`":
            quoted = not quoted
        elif not quoted and ch in "([{":
            depth += 1
        elif not quoted and ch in ")]}":
            depth = max(0, depth - 1)
        elif ch == ";" and not depth and not quoted and message[i + 1:i + 2] == " ":
            parts.append(message[start:i])
            start = i + 2
    return parts + [message[start:]]


def _refer(part: str, said: dict[str, str], shortest: int = 30) -> str:
    """`part` without an earlier check's whole clause at its end: "… because X" becomes "… (C above says why)"."""
    for clause, name in said.items():
        if len(clause) >= shortest and part.endswith(clause) and part != clause:
            head = part[: -len(clause)].rstrip(" :")
            head = head[: -len(" because")] if head.endswith(" because") else head
            return f"{head} ({name} above says why)"
    return part


class GraderFault(RuntimeError):
    """The grading machine, not the submission, stopped the grading (a kernel that cannot start, the
    grader's own cell failing): the message says what, for the instructor; the submission is not graded."""


@dataclass
class CheckResult:
    name: str
    score: float
    max_score: float
    message: str
    details: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # what the instructor should look at, beyond the score
    passed: bool | None = None  # a check's own verdict where points cannot say it (a 0-point check)

    @property
    def status(self) -> str:
        if self.passed is not None:
            return PASSED if self.passed else FAILED
        return PASSED if self.score >= self.max_score else FAILED


@dataclass(frozen=True)
class CheckChange:
    """One check whose points (or maximum) moved between two gradings of a submission."""

    name: str
    before: float | None  # None: the check is new
    after: float | None  # None: the check is gone
    max_before: float | None = None
    max_after: float | None = None

    @property
    def delta(self) -> float:
        return round((self.after or 0.0) - (self.before or 0.0), 2)

    def sentence(self) -> str:
        if self.before is None:
            return f"{self.name}: new check, {self.after:g} / {self.max_after:g}"
        if self.after is None:
            return f"{self.name}: no longer in the rubric (was {self.before:g} / {self.max_before:g})"
        if not self.delta:  # only its maximum moved
            return f"{self.name}: {self.before:g} / {self.max_before:g} -> {self.after:g} / {self.max_after:g}"
        text = f"{self.name}: {self.before:g} -> {self.after:g} ({self.delta:+g})"
        if self.max_before != self.max_after:
            text += f", out of {self.max_after:g} instead of {self.max_before:g}"
        return text


@dataclass(frozen=True)
class InputChange:
    """One input of the grading that differs from the previous one: what, before, after."""

    what: str  # "notebook", "rubric", "calibration", "kit version", "budget", "numerical mode"
    before: str
    after: str
    detail: list[str] = field(default_factory=list)  # e.g. "points.loss: 20 -> 25", "reference loss: ..."

    def sentence(self) -> str:
        text = f"{self.what}: {self.before} -> {self.after}"
        return text + (f" ({'; '.join(self.detail)})" if self.detail else "")


@dataclass(frozen=True)
class Regrade:
    """What a re-grading changed against the previous grading of the same submission, and why."""

    previous_score: float | None  # None: the previous one was a grader error (no grade)
    previous_max: float
    score: float | None
    checks: list[CheckChange] = field(default_factory=list)
    inputs: list[InputChange] = field(default_factory=list)
    forced: bool = False  # --regrade: graded again although no input changed

    @property
    def score_changed(self) -> bool:
        return self.previous_score != self.score

    @property
    def changed_nothing(self) -> bool:
        return not self.score_changed and not self.checks

    def sentence(self) -> str:
        """One line for the feedback page, the overview and the terminal."""
        before = "not graded" if self.previous_score is None else f"{self.previous_score:g} / {self.previous_max:g}"
        why = "; ".join(i.sentence() for i in self.inputs) or (
            "no input changed (--regrade)" if self.forced else "no input changed")
        if self.changed_nothing:
            return f"regraded ({why}): nothing changed, {before} as before"
        moved = "; ".join(c.sentence() for c in self.checks) or "no check moved"
        after = "not graded" if self.score is None else f"{self.score:g}"
        return f"regraded ({why}): {before} -> {after}; {moved}"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Regrade":
        return cls(previous_score=data["previous_score"], previous_max=data["previous_max"], score=data["score"],
                   checks=[CheckChange(**c) for c in data.get("checks", [])],
                   inputs=[InputChange(**i) for i in data.get("inputs", [])], forced=bool(data.get("forced")))


@dataclass
class GradeResult:
    submission_id: str
    notebook_sha256: str
    checks: list[CheckResult]
    execution_time: float = 0.0
    epochs: int = 0
    flags: list[str] = field(default_factory=list)
    measurements: dict[str, Any] = field(default_factory=dict)
    learning_curve: list[float] | None = None
    config_fingerprint: str = ""
    kit_version: str = ""
    grader_overhead_s: float = 0.0
    numerics: str = ""  # the numerical mode the grader evaluated in (solution.numerics.label)
    calibration_source: str = ""  # "shipped" or "local" (computed on the grading machine)
    rubric: dict[str, Any] = field(default_factory=dict)  # Config.grading(): lets a regrade name what changed
    regrade: Regrade | None = None  # set when this grading replaced an earlier one of the same submission

    @property
    def score(self) -> float | None:
        """The points earned; None for a grader error, which is no grade (not a 0)."""
        if self.is_grader_error:
            return None
        return round(sum(c.score for c in self.checks), 2)

    @property
    def max_score(self) -> float:
        return sum(c.max_score for c in self.checks)

    def check(self, name: str) -> CheckResult:
        return next(c for c in self.checks if c.name == name)

    @property
    def is_grader_error(self) -> bool:
        return self.config_fingerprint == ERROR_FINGERPRINT

    @property
    def grader_error(self) -> str:
        """Why a grader error is one (its flag); '' for a grade."""
        return next((f for f in self.flags if f.startswith(NOT_GRADED)), NOT_GRADED) if self.is_grader_error else ""

    def summary_lines(self, width: int = TERMINAL_WIDTH) -> list[str]:
        """The checks and flags for a terminal: each clause of a message once, wrapped; flags on their own lines.

        A message's clauses ("; "-separated) go on lines of their own. A clause an earlier check already
        printed is not printed again (the line says which check said it). A check that raised flags keeps
        its first clause; the rest, which explain the flags, follow each flag. A check worth no points is
        [INFO], never [FAIL].
        """
        if self.is_grader_error:
            return [f"  {self.grader_error}", f"  {NOT_YOUR_FAULT}"]
        lines: list[str] = []
        said: dict[str, str] = {}  # clause -> the check that printed it first
        explained: list[tuple[list[str], list[str]]] = []  # (flags, their explanation's clauses)
        for c in self.checks:
            tag = "INFO" if c.max_score == 0 else ("PASS" if c.status == PASSED else "FAIL")
            head = f"  [{tag}] {c.name:13s} {c.score:5g}/{c.max_score:<3g} "
            clauses = [part for part in clauses_of(c.message) if part] or [""]
            if c.flags and len(clauses) > 1:
                explained.append((c.flags, clauses[1:]))
                clauses = clauses[:1]
            elif c.flags:
                explained.append((c.flags, []))
            fresh = [_refer(part, said) for part in clauses if part not in said]
            repeated = sorted({said[part] for part in clauses if part in said})
            if repeated:
                fresh.append(f"(the same as {' and '.join(repeated)} above)")
            for part in clauses:
                said.setdefault(part, c.name)
            lines += _wrapped(fresh, head, width)
        flagged = {flag for flags, _ in explained for flag in flags}
        for flags, why in explained:
            for i, flag in enumerate(flags):
                lines += _wrapped([flag], "  [FLAG] ", width)
                lines += _wrapped(why if i == 0 else [], " " * 9, width)
        return lines + [f"  [FLAG] {flag}" for flag in self.flags if flag not in flagged]

    def to_gradescope(self, presentation: "GradescopeOutput | None" = None) -> dict[str, Any]:
        """Gradescope's autograder results.json (score, tests[], output, visibility).

        `presentation` (the rubric's [gradescope] and [visibility]): each test's visibility, the
        messages as Markdown, an opt-in leaderboard; it changes how the grade reads, never the grade.
        A grader error has no score at all (no "score", no tests): it is not a grade, and
        grader/gradescope.py never uploads it (Gradescope then shows its own error, to rerun).
        """
        from grader import markdown
        from grader.config import FLAGS_TEST, GradescopeOutput

        shown = presentation or GradescopeOutput()
        md = shown.output_format == "md"
        text = markdown.escape if md else (lambda s: s)
        flags_apart = shown.of(FLAGS_TEST) != "visible"  # instructor-only flags: a test of their own
        if self.is_grader_error:
            summary = text(f"{self.submission_id}: {self.grader_error}. {NOT_YOUR_FAULT}")
        else:
            summary = text(f"{self.submission_id}: {self.score:g} / {self.max_score:g} at {self.epochs} epochs.")
            if self.flags and not flags_apart:
                summary += (("\n\n**Flags**\n\n" + markdown.lines(self.flags)) if md
                            else " Flags: " + "; ".join(self.flags))
        graded = {} if self.is_grader_error else {"score": self.score, "max_score": self.max_score}
        tests = [] if self.is_grader_error else [
            {
                "name": c.name,
                "score": round(c.score, 2),
                "max_score": c.max_score,
                "status": c.status,
                "output": text(c.message),
                "visibility": shown.of(c.name),
                **({"output_format": "md"} if md else {}),
            }
            for c in self.checks
        ]
        if tests and flags_apart:
            tests.append({"name": FLAGS_TEST, "score": 0.0, "max_score": 0.0,
                          "status": FAILED if self.flags else PASSED,
                          "output": (markdown.lines(self.flags) if md else "; ".join(self.flags)) or "none",
                          "visibility": shown.of(FLAGS_TEST), **({"output_format": "md"} if md else {})})
        board = self.leaderboard() if shown.leaderboard and not self.is_grader_error else []
        return {
            **graded,
            "execution_time": round(self.execution_time, 1),
            "output": summary,
            **({"output_format": "md", "test_output_format": "md"} if md else {}),
            "visibility": "visible",
            "stdout_visibility": "hidden",
            "tests": tests,
            **({"leaderboard": board} if board else {}),
            # Not read by Gradescope; lets the kit rebuild its gradebook and reports from this file.
            "extra_data": {
                "submission_id": self.submission_id,
                "notebook_sha256": self.notebook_sha256,
                "epochs": self.epochs,
                "flags": self.flags,
                "measurements": self.measurements,
                "learning_curve": self.learning_curve,
                "config_fingerprint": self.config_fingerprint,
                "kit_version": self.kit_version,
                "grader_overhead_s": round(self.grader_overhead_s, 2),
                "numerics": self.numerics,
                "calibration_source": self.calibration_source,
                "checks": [asdict(c) for c in self.checks],
                "rubric": self.rubric,
                "regrade": self.regrade.to_json() if self.regrade else None,
            },
        }

    def leaderboard(self) -> list[dict[str, Any]]:
        """Gradescope's leaderboard: the exported network's loss (lower is better) and its similarity to the
        target (higher is better), both as the grader measured them; empty when nothing was measured."""
        board = []
        loss = self.measurements.get("loss")
        if isinstance(loss, (int, float)):
            board.append({"name": "loss", "value": round(float(loss), 2), "order": "asc"})
        similarity = next((c.details.get("similarity") for c in self.checks if c.name == "similarity"), None)
        if isinstance(similarity, (int, float)):
            board.append({"name": "similarity", "value": round(float(similarity), 4), "order": "desc"})
        return board

    @classmethod
    def from_gradescope(cls, data: dict[str, Any]) -> "GradeResult":
        extra = data["extra_data"]
        return cls(
            submission_id=extra["submission_id"],
            notebook_sha256=extra["notebook_sha256"],
            checks=[CheckResult(**c) for c in extra["checks"]],
            execution_time=data.get("execution_time", 0.0),
            epochs=extra["epochs"],
            flags=list(extra["flags"]),
            measurements=dict(extra["measurements"]),
            learning_curve=extra.get("learning_curve"),
            config_fingerprint=extra["config_fingerprint"],
            kit_version=extra["kit_version"],
            grader_overhead_s=extra.get("grader_overhead_s", 0.0),
            numerics=extra.get("numerics", ""),
            calibration_source=extra.get("calibration_source", ""),
            rubric=dict(extra.get("rubric") or {}),
            regrade=Regrade.from_json(extra["regrade"]) if extra.get("regrade") else None,
        )


def grader_error_result(submission_id: str, notebook_sha256: str, epochs: int, reason: str, detail: str = "",
                        kit_version: str = "") -> GradeResult:
    """A grading the machine could not finish: no score, never trusted by a re-run (so retried), and
    `reason` for whoever reads it; `detail` (a traceback, a kernel log) is kept for the instructor."""
    reason = " ".join(str(reason).split()) or "unknown error"
    return GradeResult(
        submission_id=submission_id, notebook_sha256=notebook_sha256, checks=[], epochs=epochs,
        flags=[f"{NOT_GRADED}: {reason[:500]}"], config_fingerprint=ERROR_FINGERPRINT, kit_version=kit_version,
        measurements={"grader_error": detail[-4000:]} if detail else {},
    )
