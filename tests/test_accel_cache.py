"""A kernel that may not write beside kernels.py loads the compiled kernels instead of compiling them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import nbformat
import pytest

from conftest import sandbox_missing
from grader.accel import cache, kernels
from grader.config import Limits, load_config
from grader.sandbox import SandboxUnavailable, bwrap_path

# In a fresh process: where numba looks, what seed() copied, and numba's own hit/miss counters.
PROBE = """
import json, sys
from grader.accel import cache
where = cache.target()
copied = cache.seed()
from grader.accel import kernels
kernels.warm_up()
fns = [kernels.li_forward, kernels.li_backward, kernels.fir_rows]
print(json.dumps({"where": str(where), "copied": copied,
                  "hits": sum(sum(f.stats.cache_hits.values()) for f in fns),
                  "misses": sum(sum(f.stats.cache_misses.values()) for f in fns)}))
"""


def _in_tree_cache() -> list[str]:
    from grader.exact import kernels as exact_kernels

    kernels.warm_up()  # this (unsandboxed) process may write the in-tree cache: make sure it is there
    exact_kernels.warm_up()
    return sorted(p.name for p in cache.IN_TREE.glob("kernels.*.nb[ic]"))


def _probe(env: dict[str, str]) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_seeded_cache_is_loaded_not_compiled(tmp_path: Path) -> None:
    files = _in_tree_cache()
    assert any(name.endswith(".nbi") for name in files) and any(name.endswith(".nbc") for name in files)
    got = _probe({"NUMBA_CACHE_DIR": str(tmp_path)})  # numba now looks here first, as in a sandbox's home
    where = Path(got["where"])
    assert where.parent == tmp_path and where.name.startswith("accel_")
    assert got["copied"] == len(files)
    assert sorted(p.name for p in where.glob("kernels.*.nb[ic]")) == files
    assert got["misses"] == 0 and got["hits"] >= 3


def test_without_seeding_the_kernels_are_compiled(tmp_path: Path) -> None:
    """The control: the same empty cache folder, not seeded, compiles (what every sandboxed kernel did)."""
    script = PROBE.replace("copied = cache.seed()", "copied = 0")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)})
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["misses"] >= 3 and got["hits"] == 0


def test_nothing_is_copied_where_numba_uses_the_kit_cache_itself() -> None:
    _in_tree_cache()
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=300, env=env)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(got["where"]) == cache.IN_TREE
    assert got["copied"] == 0 and got["misses"] == 0


def test_a_missing_source_folder_copies_nothing(tmp_path: Path) -> None:
    assert cache.seed(source=tmp_path / "absent") == 0


@pytest.mark.slow
def test_a_sandboxed_kernel_loads_the_kernels_from_the_kit_cache() -> None:
    """The grader's preamble installs the kit's orders and the accelerator in the sandbox: numba must hit, not compile."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            bwrap_path(Limits(sandbox="require"))
        except SandboxUnavailable:
            sandbox_missing("bubblewrap is not installed or cannot run here")
    from grader.execute import execute, prepare_workdir

    _in_tree_cache()
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(
        "import json\nfrom grader.accel import kernels as k\nfrom grader.exact import kernels as e\n"
        "fns = [k.li_forward, k.li_backward, k.fir_rows, e.matmul, e.matmul_skipping_zeros, e.exp, e.fir]\n"
        "print(json.dumps([sum(sum(f.stats.cache_hits.values()) for f in fns), "
        "sum(sum(f.stats.cache_misses.values()) for f in fns)]))")]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp) / "w"
        prepare_workdir(work)
        run = execute(nb, work, load_config(None), 5)
        assert run.error is None, run.error
        cell = next(c for c in run.notebook.cells if "cache_hits" in c.source)
        hits, misses = json.loads(cell.outputs[0]["text"])
    assert misses == 0 and hits >= 7
