"""Similarity across the class: which pairs of submissions are alike, and in what, for a person to look at.

After a batch, every graded submission's folder holds what it is compared by:
`executed.ipynb` (its code), `network.net` (its export) and `output.npz` (the
export's output on the official input, packed bits). Three kinds of likeness:

- code: Jaccard of normalised token shingles of the code cells (Python's
  `tokenize`; every name that is not a keyword, a builtin or an attribute
  becomes one placeholder, so renamed variables still match; the cells' shingles
  form one set, so reordered cells still match). The handout's own lines (those
  of assignment/train.ipynb) are left out, and so is the reference solution's
  code: a faithful solution *is* that code (the lava-dl tutorial's), so two
  students who both wrote it are alike by construction. What is compared is
  what each wrote beyond it.
- weights: Pearson correlation of the exported weight matrices, layer by layer
  (the smallest counts); another architecture is not comparable. One matrix
  product of standardised flattened weights per layer for the whole class.
- output: spike F1 (+-2 ms, grader.metrics) between the two students' outputs,
  which counts only when it is well above what either reaches against the
  target: two good outputs resemble each other because both resemble the target;
  shared mistakes do not come from the target.

Everyone starts from the same template and the same seed, so a faithful solution
trained at the course budget exports the reference's weights bit for bit, and an
export before training the untrained ones (calibration.weights_origin): such
pairs are "expected alike", grouped on the page, never findings.

It flags, it never scores: nothing here reaches a result or a grade. Cost: the
comparisons are sparse or dense matrix products over the class plus exact spike
F1 on the few pairs whose upper bound passes, so a class of 200 takes seconds;
reading the files dominates and grows linearly, the products quadratically with
a small constant (docs/instructors.md, "Similarity across the class").
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import keyword
import re
import time
import tokenize
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable

import numpy as np

from grader import metrics, report
from grader.cells import GRADER_CELL
from grader.config import SimilarityThresholds
from grader.results import GradeResult

SIMILARITY_HTML = "similarity.html"
SIMILARITY_JSON = "similarity.json"  # what the gradebook's column reads
EXECUTED = "executed.ipynb"
NETWORK = "network.net"
TOLERANCE_MS = 2  # output F1 as the feedback's hit map and the rubric's f1_2ms pair spikes
MIN_OWN_SHINGLES = 8  # code beyond the handout and the reference solution: fewer than this is no evidence
MAX_NOTEBOOK_BYTES = 64 * 2**20
MAX_WEIGHTS = 16 * 2**20 // 4  # float32 values in a 16 MiB export (the rubric's hdf5_max_mb default)
KINDS = ("code", "weights", "output")

_PLACEHOLDER = "V"
_KEEP = frozenset(keyword.kwlist) | frozenset(dir(builtins))
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER,
         tokenize.ENCODING}
_FSTRING = {getattr(tokenize, n) for n in ("FSTRING_START", "FSTRING_MIDDLE", "FSTRING_END") if hasattr(tokenize, n)}
_MAGIC = re.compile(r"^\s*[%!]")
_WORD = re.compile(r"\w+|[^\w\s]")


# --- code -------------------------------------------------------------------------------------


def _tokens(source: str) -> list[tuple[int, str, int]]:
    """(token type, text, line) of a cell; IPython magics blanked; an untokenisable cell split on words."""
    source = "\n".join("" if _MAGIC.match(line) else line for line in source.splitlines())
    try:
        return [(t.type, t.string, t.start[0]) for t in tokenize.generate_tokens(io.StringIO(source).readline)
                if t.type not in _SKIP]
    except (tokenize.TokenError, IndentationError, SyntaxError):
        found = []
        for number, line in enumerate(source.splitlines(), 1):
            code = line.split("#", 1)[0]
            found += [(tokenize.NAME if w[0].isalnum() or w[0] == "_" else tokenize.OP, w, number)
                      for w in _WORD.findall(code)]
        return found


def _normalised(tokens: list[tuple[int, str, int]]) -> list[str]:
    """Names to one placeholder (keywords, builtins and attributes kept, except `self.x`); numbers and strings
    to one token each: a renamed variable or a changed constant is the same code. One out per token in."""
    out: list[str] = []
    for i, (kind, text, _) in enumerate(tokens):
        if kind == tokenize.NAME:
            after_dot = i > 0 and tokens[i - 1][1] == "."
            on_self = i > 1 and tokens[i - 2][1] == "self"
            keep = text in _KEEP or (after_dot and not on_self)
            out.append(text if keep else _PLACEHOLDER)
        elif kind == tokenize.NUMBER:
            out.append("0")
        elif kind == tokenize.STRING or kind in _FSTRING:
            out.append('"')
        else:
            out.append(text)
    return out


def _lines(tokens: list[tuple[int, str, int]], norm: list[str]) -> dict[int, str]:
    """Each line's normalised tokens: what is matched against the handout's lines (so a renamed copy of a
    handout line is still the handout's)."""
    out: dict[int, list[str]] = {}
    for (_, _, line), text in zip(tokens, norm):
        out.setdefault(line, []).append(text)
    return {line: " ".join(parts) for line, parts in out.items()}


def _hash(shingle: Iterable[str]) -> int:
    return int.from_bytes(hashlib.blake2b("\x1f".join(shingle).encode(), digest_size=8).digest(), "little")


def code_cells(notebook: dict) -> list[str]:
    """The sources of a notebook's code cells (a dict as in the .ipynb), the grader's own cells left out."""
    cells = []
    for cell in notebook.get("cells", []):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        if GRADER_CELL in (cell.get("metadata") or {}):
            continue
        source = cell.get("source", "")
        cells.append("".join(source) if isinstance(source, list) else str(source))
    return cells


def shingles(cells: list[str], k: int, leave_out: frozenset[str] = frozenset()) -> np.ndarray:
    """Sorted unique 64-bit hashes of the k-token shingles of every cell (one set: cell order does not
    matter), after the lines in `leave_out` (lines as `_lines` writes them) are dropped."""
    found: set[int] = set()
    for source in cells:
        tokens = _tokens(source)
        every = _normalised(tokens)
        dropped = {line for line, text in _lines(tokens, every).items() if text in leave_out}
        norm = [n for t, n in zip(tokens, every) if t[2] not in dropped]
        if 0 < len(norm) < k:
            found.add(_hash(norm))
        found.update(_hash(norm[i:i + k]) for i in range(len(norm) - k + 1))
    return np.array(sorted(found), dtype=np.uint64)


def _read_notebook(path: Path) -> dict:
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ValueError(f"{path.name} is larger than {MAX_NOTEBOOK_BYTES >> 20} MiB")
    return json.loads(path.read_text(encoding="utf-8", errors="replace"))


@lru_cache(maxsize=4)
def handout_lines(template: Path | None = None) -> frozenset[str]:
    """Every code line of the handout (assignment/train.ipynb), normalised as `_lines` writes them."""
    from grader.assign import ASSIGNMENT

    lines: set[str] = set()
    for source in code_cells(_read_notebook(Path(template or ASSIGNMENT))):
        tokens = _tokens(source)
        lines.update(_lines(tokens, _normalised(tokens)).values())
    return frozenset(lines)


@lru_cache(maxsize=4)
def reference_shingles(k: int, solution: Path | None = None) -> np.ndarray:
    """The reference solution's shingles (solution/train.ipynb): what every faithful solution shares."""
    from grader.assign import SOLUTION

    return shingles(code_cells(_read_notebook(Path(solution or SOLUTION))), k, handout_lines())


# --- what one submission brings ---------------------------------------------------------------


@dataclass
class Traits:
    """One submission's code, weights and output, as compared; None where it has none (and `missing` says)."""

    submission_id: str
    code: np.ndarray | None = None  # shingle hashes beyond the handout (grader.similarity.shingles)
    weights: list[np.ndarray] | None = None  # per layer, (out, in) float32
    output: np.ndarray | None = None  # (neurons, T) bool
    weights_origin: str | None = None  # "reference" or "untrained": exactly those weights (expected)
    f1_to_target: float | None = None  # the grader's f1_2ms against the target
    missing: list[str] = field(default_factory=list)

    @property
    def architecture(self) -> str:
        if not self.weights:
            return ""
        return " -> ".join([str(self.weights[0].shape[1]), *(str(w.shape[0]) for w in self.weights)])


def read_weights(path: Path) -> list[np.ndarray]:
    """layer/0/weight, layer/1/weight, ... of an export the grader already validated (sizes capped again)."""
    import h5py

    weights, left = [], MAX_WEIGHTS
    with h5py.File(path, "r") as h:
        layers = h["layer"]
        for name in sorted((k for k in layers if k.isdigit()), key=int):
            w = layers[name]["weight"]
            if w.ndim != 2 or w.size > left:
                raise ValueError(f"layer/{name}/weight: shape {w.shape} is not a weight matrix within limits")
            left -= w.size
            weights.append(np.asarray(w[()], dtype=np.float32))
    if not weights:
        raise ValueError("no layer/N/weight")
    return weights


def traits(result: GradeResult, folder: Path, k: int, leave_out: frozenset[str]) -> Traits:
    """What the batch left in OUT/<id>/ for this result, read defensively (a damaged file is only a gap)."""
    t = Traits(result.submission_id, weights_origin=result.measurements.get("weights_origin"))
    f1 = result.measurements.get(f"f1_{TOLERANCE_MS}ms")
    t.f1_to_target = float(f1) if isinstance(f1, (int, float)) else None
    try:
        t.code = shingles(code_cells(_read_notebook(folder / EXECUTED)), k, leave_out)
    except (OSError, ValueError, UnicodeError) as exc:
        t.missing.append(f"code ({type(exc).__name__})")
    if result.measurements.get("weights_sha256") and (folder / NETWORK).is_file():
        try:
            t.weights = read_weights(folder / NETWORK)
        except Exception as exc:  # h5py raises many kinds; a gap, never a crash
            t.missing.append(f"weights ({type(exc).__name__}: {exc})")
    else:
        t.missing.append("weights (no evaluable export)")
    if (folder / report.OUTPUT_RASTER).is_file():
        try:
            t.output = report.read_output_raster(folder / report.OUTPUT_RASTER)
        except (OSError, ValueError, KeyError) as exc:
            t.missing.append(f"output ({type(exc).__name__})")
    else:
        t.missing.append("output (no evaluable export)")
    return t


# --- the comparisons, for the whole class at once -----------------------------------------------


def _sparse_rows(sets: list[np.ndarray]):
    """A (len(sets), vocabulary) 0/1 CSR matrix with one row per set of hashes."""
    from scipy import sparse

    sizes = np.array([len(s) for s in sets])
    flat = np.concatenate(sets) if sets and sizes.sum() else np.zeros(0, np.uint64)
    _, columns = np.unique(flat, return_inverse=True)
    rows = np.repeat(np.arange(len(sets)), sizes)
    vocab = int(columns.max()) + 1 if columns.size else 1
    return sparse.csr_matrix((np.ones(len(columns), np.float32), (rows, columns)), shape=(len(sets), vocab)), sizes


def jaccard_matrix(sets: list[np.ndarray]) -> np.ndarray:
    """Pairwise Jaccard of sets of hashes: |A & B| / |A | B| from one sparse product (0 where both are empty)."""
    m, sizes = _sparse_rows(sets)
    inter = (m @ m.T).toarray()
    union = sizes[:, None] + sizes[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def correlation_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pearson correlation of every pair of rows: one product of standardised rows (NaN for a constant row)."""
    x = np.asarray(vectors, dtype=np.float64)
    x = x - x.mean(axis=1, keepdims=True)
    norms = np.linalg.norm(x, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = x / norms[:, None]
    return np.clip(z @ z.T, -1.0, 1.0)


def weight_correlations(weights: list[list[np.ndarray] | None]) -> tuple[np.ndarray, np.ndarray]:
    """(smallest per-layer correlation, layers) for every pair; NaN where the architectures differ."""
    n = len(weights)
    smallest = np.full((n, n), np.nan)
    layers = np.zeros((n, n), dtype=np.int64)
    groups: dict[tuple, list[int]] = {}
    for i, w in enumerate(weights):
        if w:
            groups.setdefault(tuple(x.shape for x in w), []).append(i)
    for shapes, members in groups.items():
        idx = np.array(members)
        low = np.ones((len(idx), len(idx)))
        for layer in range(len(shapes)):
            r = correlation_matrix(np.stack([weights[i][layer].ravel() for i in members]))
            low = np.minimum(low, r)  # a constant layer's NaN stays NaN: not comparable
        smallest[np.ix_(idx, idx)] = low
        layers[np.ix_(idx, idx)] = len(shapes)
    return smallest, layers


def _dilate(raster: np.ndarray, tolerance: int) -> np.ndarray:
    grown = raster.copy()
    for shift in range(1, tolerance + 1):
        grown[:, shift:] |= raster[:, :-shift]
        grown[:, :-shift] |= raster[:, shift:]
    return grown


def output_f1_bounds(outputs: list[np.ndarray | None], tolerance: int = TOLERANCE_MS) -> np.ndarray:
    """An upper bound of the spike F1 of every pair of outputs, from two sparse products; NaN where one is
    missing, silent or of another shape. The bound counts spikes with any partner within the tolerance,
    which is at least the matched pairs metrics.spike_f1 counts: a pair below it is below F1 too."""
    from scipy import sparse

    n = len(outputs)
    bound = np.full((n, n), np.nan)
    groups: dict[tuple, list[int]] = {}
    for i, o in enumerate(outputs):
        if o is not None and o.any():
            groups.setdefault(o.shape, []).append(i)
    for members in groups.values():
        spikes = sparse.csr_matrix(np.stack([outputs[i].ravel() for i in members])).astype(np.float32)
        near = sparse.csr_matrix(np.stack([_dilate(outputs[i], tolerance).ravel() for i in members])).astype(np.float32)
        covered = (spikes @ near.T).toarray()  # [a, b]: spikes of a with a spike of b within the tolerance
        counts = np.asarray(spikes.sum(axis=1)).ravel()
        matched = np.minimum(covered, covered.T)
        idx = np.array(members)
        bound[np.ix_(idx, idx)] = 2 * matched / (counts[:, None] + counts[None, :])
    return bound


# --- the class ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PairSimilarity:
    """Two submissions found alike in at least one kind (or expected alike), with every figure measured."""

    a: str
    b: str
    kinds: tuple[str, ...]  # the kinds above their thresholds: "code", "weights", "output"
    code: float | None = None  # Jaccard of the code beyond the handout and the reference solution
    code_all: float | None = None  # Jaccard of the code beyond the handout (reference solution included)
    weights: float | None = None  # the smallest per-layer correlation; None: not comparable
    weights_note: str = ""  # why not comparable, or "identical"
    output: float | None = None  # spike F1 between the two outputs
    output_to_target: tuple[float | None, float | None] = (None, None)
    expected: str = ""  # why this likeness is expected ("both export the reference's weights"), or ""

    @property
    def finding(self) -> bool:
        return bool(self.kinds)

    def what(self) -> str:
        """'code, weights' (what is alike), for the gradebook."""
        return ", ".join(self.kinds)


@dataclass
class ClassSimilarity:
    """The class's report: findings for a person to look at, the expected groups, what could not be compared."""

    submissions: list[str]
    findings: list[PairSimilarity]
    expected: dict[str, list[str]]  # "reference" / "untrained" -> the submissions exporting exactly those
    gaps: dict[str, list[str]]  # submission -> what it could not be compared by
    thresholds: SimilarityThresholds
    seconds: dict[str, float]  # "read", "compare", "total"
    candidates: int = 0  # pairs whose output bound passed and got an exact F1

    def most_similar(self) -> dict[str, str]:
        """Per submission, its strongest finding as 'other (kinds)': the gradebook's column."""
        best: dict[str, tuple[tuple, str]] = {}
        for p in self.findings:
            rank = (len(p.kinds), max(x for x in (p.code, p.weights, p.output) if x is not None))
            for me, other in ((p.a, p.b), (p.b, p.a)):
                if me not in best or rank > best[me][0]:
                    best[me] = (rank, f"{other} ({p.what()})")
        return {sid: text for sid, (_, text) in sorted(best.items())}

    def to_json(self) -> dict:
        return {"submissions": self.submissions, "findings": [asdict(p) for p in self.findings],
                "expected": self.expected, "gaps": self.gaps, "thresholds": asdict(self.thresholds),
                "seconds": self.seconds, "candidates": self.candidates, "most_similar": self.most_similar()}


def _value(x: float) -> float | None:
    return None if x is None or np.isnan(x) else round(float(x), 4)


def compare(class_traits: list[Traits], th: SimilarityThresholds) -> ClassSimilarity:
    """Every pair of the class against the thresholds: findings, expected groups, gaps."""
    start = time.perf_counter()
    ids = [t.submission_id for t in class_traits]
    n = len(ids)
    reference = reference_shingles(th.shingle)
    own = [np.setdiff1d(t.code, reference, assume_unique=True) if t.code is not None else np.zeros(0, np.uint64)
           for t in class_traits]
    code_own = jaccard_matrix(own) if n else np.zeros((0, 0))
    code_all = jaccard_matrix([t.code if t.code is not None else np.zeros(0, np.uint64) for t in class_traits]) \
        if n else np.zeros((0, 0))
    enough = np.array([len(o) >= MIN_OWN_SHINGLES for o in own])
    weights, _ = weight_correlations([t.weights for t in class_traits])
    bound = output_f1_bounds([t.output for t in class_traits])
    origin = [t.weights_origin for t in class_traits]

    code_hit = (code_own >= th.code) & enough[:, None] & enough[None, :]
    weight_hit = np.nan_to_num(weights, nan=-1.0) >= th.weights
    output_maybe = np.nan_to_num(bound, nan=-1.0) >= th.output
    # an export that is exactly the reference's (or the untrained one) is what the seed gives everyone:
    # likeness to it is expected, so its weights and output are no finding against anyone
    plain = np.array([not o for o in origin], dtype=bool)
    weight_hit &= plain[:, None] & plain[None, :]
    output_maybe &= plain[:, None] & plain[None, :]
    iu = np.triu_indices(n, k=1)
    listed = (code_hit | weight_hit | output_maybe)[iu]
    findings: list[PairSimilarity] = []
    candidates = 0
    for i, j in zip(iu[0][listed], iu[1][listed]):
        kinds = []
        if code_hit[i, j]:
            kinds.append("code")
        if weight_hit[i, j]:
            kinds.append("weights")
        f1 = None
        ti, tj = class_traits[i], class_traits[j]
        if output_maybe[i, j]:
            candidates += 1
            f1 = metrics.spike_f1(ti.output, tj.output, TOLERANCE_MS)[2]
            against = max(x for x in (ti.f1_to_target, tj.f1_to_target, 0.0) if x is not None)
            if f1 >= th.output and f1 - against >= th.output_margin:
                kinds.append("output")
        elif not np.isnan(bound[i, j]) and kinds:
            f1 = metrics.spike_f1(ti.output, tj.output, TOLERANCE_MS)[2]
        if not kinds:
            continue
        note = ""
        if ti.weights and tj.weights and np.isnan(weights[i, j]):
            note = f"not comparable: {ti.architecture} and {tj.architecture}"
        elif ti.weights and tj.weights and all(np.array_equal(x, y) for x, y in zip(ti.weights, tj.weights)):
            note = "identical"
        findings.append(PairSimilarity(
            ids[i], ids[j], tuple(kinds), _value(code_own[i, j]) if enough[i] and enough[j] else None,
            _value(code_all[i, j]), _value(weights[i, j]), note, None if f1 is None else round(float(f1), 4),
            (ti.f1_to_target, tj.f1_to_target)))
    findings.sort(key=lambda p: (-len(p.kinds), -max(x for x in (p.code, p.weights, p.output) if x is not None),
                                 p.a, p.b))
    expected: dict[str, list[str]] = {}
    for t in class_traits:
        if t.weights_origin:
            expected.setdefault(t.weights_origin, []).append(t.submission_id)
    gaps = {t.submission_id: t.missing for t in class_traits if t.missing}
    return ClassSimilarity(ids, findings, {k: v for k, v in expected.items() if len(v) > 1}, gaps, th,
                           {"compare": round(time.perf_counter() - start, 3)}, candidates)


def class_similarity(out_dir: Path, th: SimilarityThresholds,
                     results: list[GradeResult] | None = None) -> ClassSimilarity:
    """Read every graded submission of OUT (grader errors have nothing to compare) and compare them."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    results = report.collect(out_dir) if results is None else results
    leave_out = handout_lines()
    found = [traits(r, out_dir / r.submission_id, th.shingle, leave_out) for r in results if not r.is_grader_error]
    read = time.perf_counter() - start
    report_ = compare(found, th)
    report_.seconds = {"read": round(read, 3), **report_.seconds, "total": round(time.perf_counter() - start, 3)}
    return report_


def write_similarity(out_dir: Path, th: SimilarityThresholds) -> ClassSimilarity:
    """OUT/similarity.html and OUT/similarity.json (the gradebook's column), rebuilt from what OUT holds."""
    from grader.similarity_page import similarity_html

    out_dir = Path(out_dir)
    found = class_similarity(out_dir, th)
    report.atomic_write(out_dir / SIMILARITY_JSON, json.dumps(found.to_json(), indent=1) + "\n")
    report.atomic_write(out_dir / SIMILARITY_HTML, similarity_html(found, out_dir))
    return found


def read_most_similar(out_dir: Path) -> dict[str, str]:
    """The gradebook's column from OUT/similarity.json; {} when there is none or it does not parse."""
    try:
        data = json.loads((Path(out_dir) / SIMILARITY_JSON).read_text())
        return {str(k): str(v) for k, v in data.get("most_similar", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}
