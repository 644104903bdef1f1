"""The rubric, limits and budgets as one immutable object, read from a TOML file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the backport pinned in requirements/lock.txt
    import tomli as tomllib

DEFAULT_RUBRIC = Path(__file__).with_name("rubric.toml")
SANDBOX_MODES = ("auto", "require", "off")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")  # Gradescope's own values
OUTPUT_FORMATS = ("text", "md")  # what the kit writes its messages in (Gradescope also knows html, ansi...)
FLAGS_TEST = "flags"  # [visibility] may name this too: the instructor's flags, as a 0-point test of their own


@dataclass(frozen=True)
class Budget:
    epochs: int = 2000
    check_epochs: int = 50
    sample_epochs: int = 200
    seed: int = 0
    accelerate: bool = True


@dataclass(frozen=True)
class Limits:
    cell_timeout_s: int = 1800  # ceilings: grader/timeouts.py tightens both to the budget
    total_timeout_s: int = 3600
    timeout_factor: float = 10.0  # x the reference's own training time at the same budget
    timeout_floor_s: int = 300
    startup_timeout_s: int = 120
    memory_mb: int = 6144
    file_size_mb: int = 256
    processes: int = 256
    cpu_time_s: int = 7200
    hdf5_max_mb: int = 16
    probe_max_mb: int = 32
    output_max_chars: int = 200_000
    disk_mb: int = 1024
    disk_files: int = 10_000
    sandbox: str = "auto"


@dataclass(frozen=True)
class Thresholds:
    loss_full: float = 1.10
    loss_zero: float = 2.0
    similarity_full: float = 0.90
    similarity_zero: float = 0.50


@dataclass(frozen=True)
class SimilarityThresholds:
    """When grader/similarity.py lists a pair for a person to look at (never a score); see rubric.toml."""

    code: float = 0.50  # Jaccard of normalised token shingles beyond the handout and the reference solution
    weights: float = 0.95  # smallest per-layer Pearson correlation of the exported weights
    output: float = 0.70  # spike F1 (+-2 ms) between the two students' outputs...
    output_margin: float = 0.05  # ...and by this much above the better one's F1 against the target
    shingle: int = 5  # tokens per shingle


@dataclass(frozen=True)
class GradescopeOutput:
    """How results.json presents a grade (never what it is): per-test visibility, Markdown, leaderboard."""

    output_format: str = "text"  # "md": every message written as Markdown (escaped)
    leaderboard: bool = False  # the exported network's loss (lower first) and similarity (higher first)
    visibility: dict[str, str] = field(default_factory=dict)  # check (or "flags") -> Gradescope visibility

    def of(self, test: str) -> str:
        return self.visibility.get(test, "visible")


@dataclass(frozen=True)
class Config:
    budget: Budget = field(default_factory=Budget)
    limits: Limits = field(default_factory=Limits)
    points: dict[str, float] = field(default_factory=dict)
    thresholds: Thresholds = field(default_factory=Thresholds)
    similarity: SimilarityThresholds = field(default_factory=SimilarityThresholds)  # not in the fingerprint
    gradescope: GradescopeOutput = field(default_factory=GradescopeOutput)  # not in the fingerprint

    @property
    def max_score(self) -> float:
        return float(sum(self.points.values()))

    def with_budget(self, **changes: Any) -> "Config":
        return replace(self, budget=replace(self.budget, **changes))

    def with_limits(self, **changes: Any) -> "Config":
        return replace(self, limits=replace(self.limits, **changes))

    def grading(self) -> dict[str, Any]:
        """What changes a grade (budget, limits, points, thresholds), as plain data: a result keeps it, so
        that a regrade can say which key changed. Similarity and presentation change no grade."""
        return {name: _plain(getattr(self, name)) for name in GRADING_SECTIONS}

    def fingerprint(self) -> str:
        """Hash of everything that changes a grade: a batch re-grades when it changes."""
        blob = json.dumps(self.grading(), sort_keys=True, default=list).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


GRADING_SECTIONS = ("budget", "limits", "points", "thresholds")


def _plain(value: Any) -> Any:
    return asdict(value) if hasattr(value, "__dataclass_fields__") else dict(value)


def _section(cls: type, data: dict[str, Any], name: str) -> Any:
    known = set(cls.__dataclass_fields__)
    unknown = set(data) - known
    if unknown:
        raise ValueError(f"rubric [{name}]: unknown key(s) {sorted(unknown)}; known: {sorted(known)}")
    return cls(**data)


def _points(data: dict[str, Any], path: Path) -> dict[str, float]:
    """[points]: exactly the registered checks, each with a number of points."""
    from grader.checks import known

    names = known()
    listed = ", ".join(names)
    for key, value in data.items():
        if key not in names:
            raise ValueError(f"rubric {path}: [points] {key} is not a check; the known checks are: {listed}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ValueError(f"rubric {path}: [points] {key} = {value!r}: points must be a number >= 0")
    missing = [n for n in names if n not in data]
    if missing:
        raise ValueError(f"rubric {path}: [points] has no line for {', '.join(missing)} (0 turns a check off); "
                         f"the known checks are: {listed}")
    return {k: float(v) for k, v in data.items()}


def _gradescope(data: dict[str, Any], visibility: dict[str, Any], points: dict[str, float],
                path: Path) -> GradescopeOutput:
    """[gradescope] and [visibility]: Gradescope's own values only, and [visibility] names only tests."""
    out = _section(GradescopeOutput, data, "gradescope")
    if "visibility" in data:
        raise ValueError(f"rubric {path}: per-test visibility goes in its own [visibility] table")
    if out.output_format not in OUTPUT_FORMATS:
        raise ValueError(f"rubric {path}: [gradescope] output_format = {out.output_format!r}: "
                         f"one of {', '.join(OUTPUT_FORMATS)}")
    if not isinstance(out.leaderboard, bool):
        raise ValueError(f"rubric {path}: [gradescope] leaderboard = {out.leaderboard!r}: true or false")
    tests = [*points, FLAGS_TEST]
    for test, value in visibility.items():
        if test not in tests:
            raise ValueError(f"rubric {path}: [visibility] {test} is not a test; the tests are: {', '.join(tests)}")
        if value not in VISIBILITIES:
            raise ValueError(f"rubric {path}: [visibility] {test} = {value!r}: one of {', '.join(VISIBILITIES)}")
    return replace(out, visibility=dict(visibility))


def load_config(path: str | Path | None = None) -> Config:
    """Read a rubric file; every key is checked, so a typo is an error, not a silent default."""
    path = Path(path) if path else DEFAULT_RUBRIC
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read rubric {path}: {exc}") from exc
    unknown = set(data) - {*GRADING_SECTIONS, "similarity", "gradescope", "visibility"}
    if unknown:
        raise ValueError(f"rubric {path}: unknown section(s) {sorted(unknown)}")
    points = _points(data.get("points", {}), path)
    config = Config(
        budget=_section(Budget, data.get("budget", {}), "budget"),
        limits=_section(Limits, data.get("limits", {}), "limits"),
        points=points,
        thresholds=_section(Thresholds, data.get("thresholds", {}), "thresholds"),
        similarity=_section(SimilarityThresholds, data.get("similarity", {}), "similarity"),
        gradescope=_gradescope(data.get("gradescope", {}), data.get("visibility", {}), points, path),
    )
    if config.limits.sandbox not in SANDBOX_MODES:
        raise ValueError(f"rubric [limits] sandbox must be one of {SANDBOX_MODES}")
    return config
