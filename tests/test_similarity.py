"""grader.similarity: what makes two submissions alike, on code, weights and outputs built in memory.

Nothing here trains or runs a notebook: the code comes from the solved notebook and edits of it
(grader.samples), the weights and outputs are random matrices, and the class of 200 is
tests/synthetic_class.py's.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from grader import metrics, report, similarity
from grader.config import SimilarityThresholds, load_config
from grader.results import CheckResult, GradeResult
from grader.samples import make_sample
from grader.similarity import Traits, compare, shingles
from synthetic_class import write_class

TH = load_config().similarity
K = TH.shingle
OWN = '''def rate_profile(r, win=25):
    counts = r.reshape(r.shape[0], -1, win).sum(axis=-1)
    return counts.mean(axis=0)

o_arr = output.cpu().data.numpy().reshape(200, 600)
panels = plt.subplots(1, 2, figsize=(12, 3))[1]
panels[0].plot(rate_profile(o_arr), label='network')
panels[1].imshow(o_arr, aspect='auto', cmap='bwr')
for row in range(10):
    panels[0].axhline(row * 0.1, color='grey')
'''


def _cells(nb: nbformat.NotebookNode) -> list[str]:
    return similarity.code_cells(json.loads(nbformat.writes(nb)))


def _with_own(cells: list[str], own: str = OWN) -> list[str]:
    return [*cells, own]


def _code(cells: list[str]) -> np.ndarray:
    return shingles(cells, K, similarity.handout_lines())


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    return float(similarity.jaccard_matrix([a, b])[0, 1])


# --- code ------------------------------------------------------------------------------------


def test_the_handout_alone_has_no_code_of_its_own() -> None:
    assert len(_code(_cells(make_sample("template")))) == 0  # every line of it is the handout's
    solved = _code(_cells(make_sample("reference")))
    assert len(solved) > 100
    assert np.array_equal(solved, similarity.reference_shingles(K))


def test_renamed_variables_and_changed_constants_are_the_same_code() -> None:
    renamed = re.sub(r"\bo_arr\b", "mine", re.sub(r"\bpanels\b", "ax", OWN)).replace("25", "50")
    assert renamed != OWN
    assert np.array_equal(_code([OWN]), _code([renamed]))
    edited = OWN.replace(".reshape(", ".view(").replace("imshow", "pcolormesh")  # two calls changed
    assert 0.6 < _jaccard(_code([OWN]), _code([edited])) < 0.9  # still alike, no longer the same
    unrelated = "hist = np.histogram(training_set.target.t, bins=30)\nplt.bar(hist[1][:-1], hist[0])\n"
    assert _jaccard(_code([OWN]), _code([unrelated])) < 0.05  # one generic shingle (`V[0][:-0]`-like) at most


def test_reordered_cells_are_the_same_code() -> None:
    cells = _with_own(_cells(make_sample("reference")))
    assert np.array_equal(_code(cells), _code(list(reversed(cells))))


def test_comments_magics_and_a_broken_cell_do_not_break_it() -> None:
    noisy = ["%matplotlib inline\n!pip list\n" + OWN.replace("\n", "  # mine\n", 3)]
    assert np.array_equal(_code(noisy), _code([OWN]))
    broken = _code(["def f(:\n    return ("])  # cannot be tokenised: split on words instead
    assert len(broken) > 0


def test_grader_cells_are_not_the_students() -> None:
    nb = {"cells": [{"cell_type": "code", "source": "x = 1", "metadata": {}},
                    {"cell_type": "code", "source": ["import grader", ".probe"], "metadata": {"grader": "probe"}},
                    {"cell_type": "markdown", "source": "text", "metadata": {}}]}
    assert similarity.code_cells(nb) == ["x = 1"]


# --- the matrices ------------------------------------------------------------------------------


def test_jaccard_matrix_is_the_jaccard_of_the_sets() -> None:
    rng = np.random.default_rng(1)
    sets = [np.unique(rng.integers(0, 60, rng.integers(0, 40)).astype(np.uint64)) for _ in range(7)]
    sets[3] = np.zeros(0, np.uint64)
    got = similarity.jaccard_matrix(sets)
    for i, a in enumerate(sets):
        for j, b in enumerate(sets):
            union = len(set(a) | set(b))
            want = len(set(a) & set(b)) / union if union else 0.0
            assert got[i, j] == pytest.approx(want), (i, j)


def test_correlations_are_pearsons_and_another_architecture_is_not_comparable() -> None:
    rng = np.random.default_rng(2)
    nets = [[rng.standard_normal((6, 4)).astype(np.float32), rng.standard_normal((3, 6)).astype(np.float32)]
            for _ in range(4)]
    nets[1] = [nets[0][0] * 2 + 1, nets[0][1] + 0.1 * rng.standard_normal((3, 6)).astype(np.float32)]
    nets[3] = [rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)]
    low, layers = similarity.weight_correlations(nets)
    want = min(np.corrcoef(nets[0][k].ravel(), nets[1][k].ravel())[0, 1] for k in range(2))
    assert low[0, 1] == pytest.approx(want, abs=1e-6) and low[1, 0] == low[0, 1]
    assert low[0, 0] == pytest.approx(1.0) and layers[0, 1] == 2
    assert np.isnan(low[0, 3]) and layers[0, 3] == 0  # 4 -> 5 -> 3 against 4 -> 6 -> 3
    assert np.isnan(similarity.correlation_matrix(np.array([[1.0, 1.0], [1.0, 2.0]]))[0, 1])  # constant


def test_the_output_bound_never_misses_a_pair_above_its_f1() -> None:
    rng = np.random.default_rng(3)
    base = rng.random((20, 80)) < 0.08
    outs = [base ^ (rng.random(base.shape) < p) for p in (0.0, 0.01, 0.05, 0.2)] + [np.zeros_like(base), None]
    bound = similarity.output_f1_bounds(outs)
    for i in range(4):
        for j in range(4):
            exact = metrics.spike_f1(outs[i], outs[j], similarity.TOLERANCE_MS)[2]
            assert bound[i, j] >= exact - 1e-12, (i, j)
    assert bound[0, 0] == 1.0
    assert np.isnan(bound[0, 4]) and np.isnan(bound[0, 5])  # silent, missing: nothing to compare


# --- the class ---------------------------------------------------------------------------------


def _traits(sid: str, code: list[str] | None, weights=None, output=None, origin=None, f1=None) -> Traits:
    return Traits(sid, _code(code) if code is not None else None, weights, output, origin, f1)


@pytest.fixture(scope="module")
def people():
    """alice (her own cell), bob (alice renamed), carol (her own, other cell), two faithful ones, one other net."""
    rng = np.random.default_rng(4)
    solved = _cells(make_sample("reference"))
    init = [rng.standard_normal((256, 200)).astype(np.float32), rng.standard_normal((200, 256)).astype(np.float32)]
    alice_w = [w + 0.3 * rng.standard_normal(w.shape).astype(np.float32) for w in init]
    target = rng.random((200, 600)) < 0.02
    alice_out = target & (rng.random(target.shape) < 0.7) | (rng.random(target.shape) < 0.01)
    carol_out = target & (rng.random(target.shape) < 0.7) | (rng.random(target.shape) < 0.01)
    carol_own = ("hist = np.histogram(training_set.target.t, bins=30)\nplt.bar(hist[1][:-1], hist[0])\n"
                 "print(stats.training.min_loss, len(stats.training.loss_log))\nplt.show()\n")
    renamed = OWN.replace("o_arr", "mine").replace("panels", "ax")
    f1 = lambda o: metrics.spike_f1(o, target, 2)[2]  # noqa: E731
    return [
        _traits("alice", _with_own(solved), alice_w, alice_out, None, f1(alice_out)),
        _traits("bob", _with_own(list(reversed(solved)), renamed),
                [w + 0.01 * rng.standard_normal(w.shape).astype(np.float32) for w in alice_w], alice_out.copy(),
                None, f1(alice_out)),
        _traits("carol", _with_own(solved, carol_own), [w + 0.3 * rng.standard_normal(w.shape).astype(np.float32)
                                                         for w in init], carol_out, None, f1(carol_out)),
        _traits("faithful1", solved, init, target, "reference", 1.0),
        _traits("faithful2", solved, init, target, "reference", 1.0),
        _traits("hidden128", solved, [rng.standard_normal((128, 200)).astype(np.float32),
                                      rng.standard_normal((200, 128)).astype(np.float32)], None, None, None),
    ]


def test_a_disguised_copy_is_found_in_every_kind_and_the_rest_is_not(people) -> None:
    found = compare(people, TH)
    pairs = {(p.a, p.b): p for p in found.findings}
    assert list(pairs) == [("alice", "bob")]  # nothing else: carol wrote and trained her own
    p = pairs["alice", "bob"]
    assert p.kinds == ("code", "weights", "output")
    assert p.code == 1.0 and p.weights > 0.999 and p.output == 1.0
    assert found.most_similar() == {"alice": "bob (code, weights, output)", "bob": "alice (code, weights, output)"}
    assert found.expected == {"reference": ["faithful1", "faithful2"]}  # grouped, not findings
    assert found.candidates == 1  # one exact F1: the bound ruled out every other pair


def test_faithful_solutions_are_expected_alike_not_findings(people) -> None:
    found = compare(people, TH)
    assert not [p for p in found.findings if {"faithful1", "faithful2"} & {p.a, p.b}]


def test_only_what_passes_its_threshold_is_a_kind(people) -> None:
    strict = SimilarityThresholds(code=1.01, weights=TH.weights, output=TH.output, output_margin=TH.output_margin)
    (p,) = compare(people, strict).findings
    assert p.kinds == ("weights", "output") and p.code == 1.0  # measured and shown, not above 1.01
    nothing = SimilarityThresholds(code=1.01, weights=1.01, output=1.01, output_margin=0.0)
    assert compare(people, nothing).findings == []


def test_another_architecture_is_said_to_be_not_comparable(people) -> None:
    hidden = people[5]
    copy = Traits("copy128", hidden.code.copy() if hidden.code is not None else None, hidden.weights, None)
    code_twin = Traits("own_twin", people[0].code, [w.copy() for w in people[2].weights[:1]] +
                       [people[2].weights[1]], None)
    found = compare([people[0], hidden, copy, code_twin], TH)
    by = {(p.a, p.b): p for p in found.findings}
    assert by["hidden128", "copy128"].kinds == ("weights",) and by["hidden128", "copy128"].weights_note == "identical"
    assert by["alice", "own_twin"].kinds == ("code",)
    assert by["alice", "own_twin"].weights is not None  # both 200 -> 256 -> 200: compared, below the threshold
    assert found.gaps == {}


def test_a_class_on_disk_gets_its_page_and_gradebook_column(tmp_path: Path) -> None:
    copies = write_class(tmp_path, 12, seed=5, copy_every=6)
    assert copies == [("s004", "s005"), ("s010", "s011")]
    (tmp_path / "s003" / "network.net").write_bytes(b"not hdf5")  # damaged: a gap, not a crash
    found = similarity.write_similarity(tmp_path, TH)
    assert {(p.a, p.b) for p in found.findings} == set(copies)
    assert found.gaps == {"s003": [found.gaps["s003"][0]]} and found.gaps["s003"][0].startswith("weights (")
    page = (tmp_path / similarity.SIMILARITY_HTML).read_text()
    assert page.count("<tr>") == 1 + len(copies) and "<script" not in page
    report.write_gradebook(tmp_path)
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO((tmp_path / report.GRADEBOOK).read_text()))}
    assert rows["s004"]["most_similar"] == "s005 (code, weights, output)"
    assert rows["s000"]["most_similar"] == ""


def test_hostile_ids_are_escaped_on_the_page(people) -> None:
    from grader.similarity_page import similarity_html

    hostile = [Traits("<script>x</script>", *[getattr(people[0], f) for f in ("code", "weights", "output")]),
               Traits("a b#1", *[getattr(people[1], f) for f in ("code", "weights", "output")])]
    page = similarity_html(compare(hostile, TH), Path("/nonexistent"))
    assert "<script>x" not in page and "&lt;script&gt;x&lt;/script&gt;" in page


def test_a_grader_error_is_not_compared(tmp_path: Path) -> None:
    from grader.results import grader_error_result

    write_class(tmp_path, 3, seed=6)
    error = grader_error_result("zed", "0" * 64, 200, "boom")
    (tmp_path / "zed").mkdir()
    report.write_results(error, tmp_path / "zed" / report.RESULTS)
    found = similarity.class_similarity(tmp_path, TH)
    assert found.submissions == ["s000", "s001", "s002"]


@pytest.mark.slow
def test_a_class_of_200_finds_every_planted_copy(tmp_path: Path) -> None:
    """Its time is a figure for the README (python tests/synthetic_class.py 200), not a test's business."""
    copies = write_class(tmp_path, 200, seed=0)
    found = similarity.class_similarity(tmp_path, TH)
    assert {(p.a, p.b) for p in found.findings} == set(copies)  # every planted copy, nothing else
    assert set(found.seconds) == {"read", "compare", "total"} and found.seconds["total"] > 0
