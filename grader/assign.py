"""The "assign" step: derive the student template from the solved notebook.

solution/train.ipynb is the one source of truth. Inside its code cells, what
students must write sits between nbgrader-style lines

    ### BEGIN SOLUTION: Part 2: what goes here (the hint is optional)
    ...solution code...
    ### END SOLUTION

make_template() swaps each region for a placeholder at the marker's indentation

    # YOUR CODE HERE
    raise NotImplementedError('Part 2: what goes here')

so the template stays valid Python and fails loudly, with the hint, where work
is missing. Everything else (markdown, the `parameters` cell, scaffold code)
is kept. The template is written byte-for-byte reproducibly so that `--check`
can catch a stale assignment/train.ipynb in CI.
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solution" / "train.ipynb"
ASSIGNMENT = ROOT / "assignment" / "train.ipynb"

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
PLACEHOLDER = "# YOUR CODE HERE"
DEFAULT_HINT = "replace these two lines with your code"

_BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?:\s*:\s*(?P<hint>.*?))?\s*$")
_END_RE = re.compile(r"^[ \t]*### END SOLUTION\s*$")

# Calls only the solution makes; the scaffold never does (checked on code cells only,
# so the markdown may still name them). Keep each one specific: the scaffold defines
# `def export_hdf5(`, so the bare name would be a false alarm.
DISTINCTIVE = (
    "slayer.io.read_1d_spikes(",
    ".fill_tensor(",
    "slayer.block.cuba.Dense(",
    "torch.optim.Adam(",
    "DataLoader(dataset=",
    "slayer.loss.SpikeTime(",
    "slayer.utils.LearningStats(",
    "slayer.utils.Assistant(",
    "assistant.train(",
    "torch.save(",
    "stats.update(",
    "stats.save(",
    "net.load_state_dict(",
    "net.export_hdf5(",
    "b.export_hdf5(",
    "block.export_hdf5(",
    "h5py.File(",
    "slayer.io.tensor_to_event(",
)
# Solution lines shorter than this are too generic (`)`, `return spike`) to flag as leaks.
MIN_LEAK_LINE = 20


class MarkerError(ValueError):
    """A BEGIN/END SOLUTION region is malformed; the message names the cell and line."""


def _regions(source: str, where: str) -> list[tuple[int, int, str, str]]:
    """(begin, end, indent, hint) per region, 0-based line numbers; MarkerError if unbalanced."""
    regions: list[tuple[int, int, str, str]] = []
    open_at: tuple[int, str, str] | None = None
    for n, line in enumerate(source.splitlines()):
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            m = _BEGIN_RE.match(line)
            if m is None:
                raise MarkerError(
                    f"{where}, line {n + 1}: expected '{BEGIN}' or '{BEGIN}: hint', got {line!r}"
                )
            if open_at is not None:
                raise MarkerError(
                    f"{where}, line {n + 1}: {BEGIN} inside the region opened on line {open_at[0] + 1}"
                )
            open_at = (n, m.group("indent"), m.group("hint") or "")
        elif stripped.startswith(END):
            if not _END_RE.match(line):
                raise MarkerError(f"{where}, line {n + 1}: stray text after {END}: {line!r}")
            if open_at is None:
                raise MarkerError(f"{where}, line {n + 1}: {END} without a matching {BEGIN}")
            regions.append((open_at[0], n, open_at[1], open_at[2]))
            open_at = None
    if open_at is not None:
        raise MarkerError(f"{where}, line {open_at[0] + 1}: {BEGIN} is never closed by {END}")
    return regions


def solution_regions(nb: nbformat.NotebookNode) -> dict[int, list[tuple[int, int, str, str]]]:
    """Regions per code cell index; MarkerError on unbalanced markers or markers outside code."""
    found: dict[int, list[tuple[int, int, str, str]]] = {}
    for i, cell in enumerate(nb.cells):
        where = f"cell {i} ({cell.cell_type})"
        if cell.cell_type != "code":
            if BEGIN in cell.source or END in cell.source:
                raise MarkerError(f"{where}: solution markers are only allowed in code cells")
            continue
        regions = _regions(cell.source, where)
        if regions:
            found[i] = regions
    return found


_RAISE = "raise NotImplementedError("


def _placeholder(indent: str, hint: str) -> list[str]:
    return [f"{indent}{PLACEHOLDER}", f"{indent}{_RAISE}{(hint or DEFAULT_HINT)!r})"]


def _strip_source(source: str, regions: list[tuple[int, int, str, str]]) -> str:
    lines = source.splitlines()
    out: list[str] = []
    pos = 0
    for begin, end, indent, hint in regions:
        out.extend(lines[pos:begin])
        out.extend(_placeholder(indent, hint))
        pos = end + 1
    out.extend(lines[pos:])
    return "\n".join(out)


def make_template(solution_nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student notebook: regions replaced by placeholders, outputs and counts cleared.

    Cell metadata keeps only `tags` (the `parameters` tag matters to the grader);
    execution timings and the like would make the bytes depend on who ran it last.
    """
    regions = solution_regions(solution_nb)
    nb = copy.deepcopy(solution_nb)
    for i, cell in enumerate(nb.cells):
        tags = list(cell.get("metadata", {}).get("tags", []))
        cell.metadata = nbformat.NotebookNode({"tags": tags} if tags else {})
        if cell.cell_type == "code":
            if i in regions:
                cell.source = _strip_source(cell.source, regions[i])
            cell.outputs = []
            cell.execution_count = None
        cell.id = f"cell-{i:03d}"
    nb.metadata = nbformat.NotebookNode(
        {
            "kernelspec": dict(
                solution_nb.metadata.get("kernelspec")
                or {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
            ),
            "language_info": {"name": "python"},
        }
    )
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def render(nb: nbformat.NotebookNode) -> str:
    """The exact text written to disk: sorted keys, one-space indent, trailing newline."""
    nbformat.validate(nb)
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def _solution_lines(solution_nb: nbformat.NotebookNode) -> set[str]:
    """Distinctive stripped lines written only inside the solution's regions."""
    regions = solution_regions(solution_nb)
    inside: set[str] = set()
    outside: set[str] = set()
    for i, cell in enumerate(solution_nb.cells):
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        spans = [(b, e) for b, e, _, _ in regions.get(i, [])]
        for n, line in enumerate(lines):
            target = inside if any(b < n < e for b, e in spans) else outside
            target.add(line.strip())
    return {s for s in inside - outside if len(s) >= MIN_LEAK_LINE and not s.startswith("#")}


def solution_leaks(
    nb: nbformat.NotebookNode, solution: nbformat.NotebookNode | None = None
) -> list[str]:
    """Solution code still present in a template: markers, distinctive calls, and (given
    the solved notebook) any long line that only its solution regions contain."""
    own = _solution_lines(solution) if solution is not None else set()
    leaks: list[str] = []
    for i, cell in enumerate(nb.cells):
        for n, line in enumerate(cell.source.splitlines(), start=1):
            where = f"cell {i}, line {n}: {line.strip()!r}"
            if BEGIN in line or END in line:
                leaks.append(f"{where} (solution marker)")
            elif cell.cell_type != "code" or line.strip().startswith(_RAISE):
                continue  # markdown may name the calls; so may a placeholder's hint
            elif hit := next((p for p in DISTINCTIVE if p in line), None):
                leaks.append(f"{where} (solution call {hit!r})")
            elif line.strip() in own:
                leaks.append(f"{where} (line from a solution region)")
    return leaks


def generate(solution_path: Path = SOLUTION) -> tuple[str, list[str]]:
    """(template text, leaks) for the solved notebook at solution_path."""
    solution_nb = nbformat.read(str(solution_path), as_version=4)
    template = make_template(solution_nb)
    return render(template), solution_leaks(template, solution_nb)


def main(argv: list[str] | None = None) -> int:
    """`python -m grader assign [--check]`: 0 ok, 1 stale template (--check), 2 bad solution."""
    parser = argparse.ArgumentParser(
        prog="python -m grader assign",
        description="Generate the student notebook from the solved one (BEGIN/END SOLUTION regions).",
    )
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if OUTPUT differs from the generated template")
    parser.add_argument("--solution", type=Path, default=SOLUTION, help="solved notebook (default: %(default)s)")
    parser.add_argument("--output", type=Path, default=ASSIGNMENT, help="template to write (default: %(default)s)")
    args = parser.parse_args(argv)

    try:
        text, leaks = generate(args.solution)
    except MarkerError as exc:
        print(f"assign: {args.solution}: {exc}", file=sys.stderr)
        return 2
    if leaks:
        print(f"assign: the template would leak solution code; fix the markers in {args.solution}:",
              file=sys.stderr)
        for leak in leaks:
            print(f"  {leak}", file=sys.stderr)
        return 2

    if args.check:
        current = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
        if current == text:
            print(f"assign: {args.output} is up to date")
            return 0
        diff = difflib.unified_diff(current.splitlines(), text.splitlines(),
                                    str(args.output), "generated", lineterm="", n=1)
        shown = list(diff)[:40]
        print(f"assign: {args.output} is stale; regenerate it with `nox -s assign`", file=sys.stderr)
        print("\n".join(shown), file=sys.stderr)
        return 1

    args.output.parent.mkdir(parents=True, exist_ok=True)
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"assign: wrote {args.output}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
