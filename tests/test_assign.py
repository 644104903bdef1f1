"""The assign step: the committed template is what the generator makes from the solution,
it hides every solution, and the solved notebook itself runs end to end."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import nbformat
import pytest

from grader import assign

ROOT = Path(__file__).resolve().parent.parent
SOLUTION_NB = ROOT / "solution" / "train.ipynb"
ASSIGNMENT_NB = ROOT / "assignment" / "train.ipynb"


@pytest.fixture(scope="module")
def solution() -> nbformat.NotebookNode:
    return nbformat.read(str(SOLUTION_NB), as_version=4)


@pytest.fixture(scope="module")
def template() -> nbformat.NotebookNode:
    return nbformat.read(str(ASSIGNMENT_NB), as_version=4)


def _notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def _parameters_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]


def _text(nb: nbformat.NotebookNode) -> str:
    return "\n".join(c.source for c in nb.cells)


# -- the committed template -------------------------------------------------------------


def test_template_is_what_the_generator_writes(solution: nbformat.NotebookNode) -> None:
    generated = assign.render(assign.make_template(solution))
    assert ASSIGNMENT_NB.read_bytes() == generated.encode("utf-8"), (
        "assignment/train.ipynb is stale: run `nox -s assign`"
    )


def test_generator_is_deterministic(solution: nbformat.NotebookNode) -> None:
    assert assign.render(assign.make_template(solution)) == assign.render(
        assign.make_template(nbformat.reads(nbformat.writes(solution), as_version=4))
    )


def test_template_has_no_solution_code(
    template: nbformat.NotebookNode, solution: nbformat.NotebookNode
) -> None:
    assert assign.solution_leaks(template, solution) == []


def test_template_keeps_the_parameters_cell(template: nbformat.NotebookNode) -> None:
    (cell,) = _parameters_cells(template)
    assert cell.cell_type == "code"
    assert re.search(r"^epochs = 2000\b", cell.source, re.MULTILINE)
    assert re.search(r"^make_animations = True\b", cell.source, re.MULTILINE)


KIT_ONLY = ("slayer/oxford", "data/", "assignment version", "the kit")  # a student holds the zip, not the kit


def test_the_template_speaks_to_a_student_holding_the_zip(template: nbformat.NotebookNode) -> None:
    """Its words fit the one folder a student has: no kit folders, no 'the assignment version' from inside it."""
    text = _text(template)
    assert [word for word in KIT_ONLY if word in text] == []
    (cell,) = _parameters_cells(template)
    epochs_line = next(line for line in cell.source.splitlines() if line.startswith("epochs ="))
    assert "not the tutorial's 2000 time steps" in epochs_line  # beside "(200, 2000) -> (200, 600)", say which 2000
    part1 = next(c.source for c in template.cells if c.source.startswith("## Part 1"))
    assert "(200, 600) instead of (200, 2000)" in part1 and "`input_hw.bs1` and `output_hw.bs1`" in part1


def test_template_is_clean_and_says_where_code_goes(template: nbformat.NotebookNode) -> None:
    code = [c for c in template.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert sum(assign.PLACEHOLDER in c.source for c in code) >= 8
    for c in code:  # every placeholder still compiles
        compile(c.source, c.id, "exec")


def test_template_keeps_the_hw8_instructions(template: nbformat.NotebookNode) -> None:
    text = _text(template)
    for needle in ("input_hw.bs1", "output_hw.bs1", "(200, 600)", "Part 1 — skipped",
                   "Trained/network.pt", "Trained/network.net", "HDF5", "YOUR CODE HERE"):
        assert needle in text, needle


def test_main_check(tmp_path: Path) -> None:
    assert assign.main(["--check"]) == 0
    stale = tmp_path / "train.ipynb"
    stale.write_text(ASSIGNMENT_NB.read_text(encoding="utf-8").replace("YOUR CODE HERE", "x"))
    assert assign.main(["--check", "--output", str(stale)]) == 1
    assert assign.main(["--output", str(stale)]) == 0
    assert stale.read_bytes() == ASSIGNMENT_NB.read_bytes()


# -- the markers ------------------------------------------------------------------------


def test_solution_markers_are_balanced(solution: nbformat.NotebookNode) -> None:
    regions = assign.solution_regions(solution)
    assert sum(len(r) for r in regions.values()) >= 8
    for i, cell_regions in regions.items():
        lines = solution.cells[i].source.splitlines()
        for begin, end, _, hint in cell_regions:
            assert lines[begin].strip().startswith(assign.BEGIN)
            assert lines[end].strip() == assign.END
            assert hint.startswith("Part "), hint


def test_placeholder_keeps_indentation_and_hint() -> None:
    nb = _notebook(
        "def f():\n"
        "    x = 1\n"
        "    ### BEGIN SOLUTION: Part 2: return two\n"
        "    return 2\n"
        "    ### END SOLUTION\n"
        "\n"
        "### BEGIN SOLUTION\n"
        "y = f()\n"
        "### END SOLUTION\n"
        "print('scaffold')"
    )
    out = assign.make_template(nb).cells[0].source
    assert out == (
        "def f():\n"
        "    x = 1\n"
        "    # YOUR CODE HERE\n"
        "    raise NotImplementedError('Part 2: return two')\n"
        "\n"
        "# YOUR CODE HERE\n"
        f"raise NotImplementedError({assign.DEFAULT_HINT!r})\n"
        "print('scaffold')"
    )


@pytest.mark.parametrize(
    "source, message",
    [
        ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n### END SOLUTION\n", "without a matching"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "inside the region"),
        ("### BEGIN SOLUTIONS\nx = 1\n### END SOLUTION\n", "expected"),
    ],
)
def test_unbalanced_markers_raise(source: str, message: str) -> None:
    with pytest.raises(assign.MarkerError, match=message):
        assign.make_template(_notebook("a = 0", source))


def test_markers_outside_code_cells_raise() -> None:
    nb = _notebook("a = 0")
    nb.cells.append(nbformat.v4.new_markdown_cell("### BEGIN SOLUTION\nanswer\n### END SOLUTION"))
    with pytest.raises(assign.MarkerError, match="only allowed in code cells"):
        assign.make_template(nb)


def test_solution_leaks_finds_solution_code(
    template: nbformat.NotebookNode, solution: nbformat.NotebookNode
) -> None:
    leaky = nbformat.reads(nbformat.writes(template), as_version=4)
    leaky.cells.append(nbformat.v4.new_code_cell("output = assistant.train(input, target)"))
    leaky.cells.append(nbformat.v4.new_code_cell("self.target.t = self.target.t.astype(int)"))
    leaky.cells.append(nbformat.v4.new_code_cell("# ### END SOLUTION"))
    leaks = assign.solution_leaks(leaky, solution)
    assert len(leaks) == 3, leaks
    assert assign.solution_leaks(solution)  # the solved notebook is all leaks


# -- the solved notebook runs -----------------------------------------------------------


@pytest.mark.slow
def test_solution_notebook_runs(tmp_path: Path, solution: nbformat.NotebookNode) -> None:
    import h5py
    from nbclient import NotebookClient

    from grader.handout import beside_notebook

    for name, source in beside_notebook().items():  # the data and the notebook's checks
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(source, tmp_path / name)
    nb = nbformat.reads(nbformat.writes(solution), as_version=4)
    (params,) = _parameters_cells(nb)
    at = nb.cells.index(params) + 1
    nb.cells.insert(at, nbformat.v4.new_code_cell("epochs = 3\nmake_animations = False"))

    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()

    trained = tmp_path / "Trained"
    assert (trained / "network.pt").is_file()
    assert (trained / "loss.txt").is_file()
    with h5py.File(trained / "network.net", "r") as h:
        assert h["layer/0/weight"].shape == (256, 200)
        assert h["layer/1/weight"].shape == (200, 256)
    losses = [line for line in (trained / "loss.txt").read_text().splitlines()[1:] if line.strip()]
    assert len(losses) == 3
    assert not list(tmp_path.glob("*.gif"))  # make_animations = False was honoured
