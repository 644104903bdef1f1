"""The one numerical mode in which everything that trains or evaluates runs.

Seeded float32 training is deterministic on one machine, but two CPUs sum in
different orders: MKL's sgemm takes AVX-512 kernels on Intel and other ones on
AMD, and torch's own vectorised kernels follow the CPU capability it detects.
After a few hundred epochs the runs drift apart, and a grade against a shipped
calibration would depend on the CPU that graded it. So the kit pins:

* ``MKL_CBWR=COMPATIBLE``: MKL's Conditional Numerical Reproducibility branch
  documented for "Intel and compatible" CPUs (its AVX2/AVX512 branches are only
  honoured on Intel; elsewhere MKL falls back to its automatic choice);
* ``ATEN_CPU_CAPABILITY=avx2``: torch's vectorised kernels at AVX2, which every
  x86-64 Intel CPU since Haswell (2013) and AMD CPU since Zen (2017) runs;
* ``ONEDNN_MAX_CPU_ISA=AVX2`` for oneDNN, where torch routes through it;
* one thread for OpenMP, MKL and numba: a parallel sum's order depends on
  the thread count (and two busy cores run one thread each fastest).

``S2S_NUMERICS=native`` keeps one thread but lets the libraries pick their ISA;
only the bench uses it, to measure what the pinned mode costs.

The variables are read when the libraries load, so ``pin()`` runs before torch
is imported: ``solution/__init__``, ``grader/__init__`` and the tests'
conftest call it first thing, and child processes (notebook kernels, batch
workers) inherit it through the environment. ``describe()`` reports what is
really in force, read back from torch and MKL, never assumed; the grader's
fingerprint check (``grader/fingerprint.py``) then proves the mode reproduces
the shipped reference on this machine before a batch trusts the shipped
calibrations.

Stdlib only, so that it can run before torch is imported.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
from functools import lru_cache
from typing import Any

NAME = "mkl-compatible/avx2/1-thread"
NATIVE = "native"
SWITCH = "S2S_NUMERICS"  # "native": the libraries pick their own ISA (the bench measures the cost)

ONE_THREAD: dict[str, str] = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "NUMBA_NUM_THREADS": "1",
}
PINNED: dict[str, str] = {
    "MKL_CBWR": "COMPATIBLE",
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "DNNL_MAX_CPU_ISA": "AVX2",  # oneDNN's older spelling
    **ONE_THREAD,
}
EXPECTED_TORCH_CAPABILITY = "AVX2"
EXPECTED_MKL_CNR = "COMPATIBLE"


def requested() -> str:
    """The mode this process is asked for: NAME, or NATIVE when S2S_NUMERICS=native."""
    return NATIVE if os.environ.get(SWITCH, "").strip().lower() == NATIVE else NAME


def environment() -> dict[str, str]:
    """The variables a child process (kernel, worker) needs to run in the requested mode."""
    if requested() == NATIVE:
        return {SWITCH: NATIVE, **ONE_THREAD}
    return dict(PINNED)


def pin() -> str:
    """Put the requested mode into os.environ (before torch loads); returns its name.

    If torch is already loaded, the variables are still set (children inherit
    them) but this process keeps what it has: ``describe()`` says so, and the
    fingerprint check then refuses the shipped calibrations here.
    """
    os.environ.update(environment())
    return requested()


def cpu_model() -> str:
    """The CPU's model name as the kernel reports it (for records, not for decisions)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _mkl_cnr() -> str | None:
    """MKL's CNR branch in force, as MKL's own verbose line reports it ('OFF' when unset)."""
    import torch

    if not torch.backends.mkl.is_available():
        return None
    saved = os.dup(1)
    try:
        with tempfile.TemporaryFile() as f:
            sys.stdout.flush()
            os.dup2(f.fileno(), 1)
            try:
                with torch.backends.mkl.verbose(torch.backends.mkl.VERBOSE_ON):
                    torch.mm(torch.ones(8, 8), torch.ones(8, 8))
            finally:
                os.dup2(saved, 1)
            f.seek(0)
            text = f.read().decode("utf-8", "replace")
    finally:
        os.close(saved)
    for word in text.split():
        if word.startswith("CNR:"):
            return word[4:]
    return None


@lru_cache(maxsize=1)
def _read_back() -> tuple[str | None, str | None]:
    import torch

    return torch.backends.cpu.get_cpu_capability(), _mkl_cnr()


def describe() -> dict[str, Any]:
    """The mode asked for and what torch and MKL report in this process (imports torch)."""
    capability, cnr = _read_back()
    mode = requested()
    in_force = mode == NAME and capability == EXPECTED_TORCH_CAPABILITY and cnr == EXPECTED_MKL_CNR
    return {
        "mode": mode,
        "in_force": in_force,
        "torch_cpu_capability": capability,
        "mkl_cnr": cnr,
        "cpu": cpu_model(),
        "machine": platform.machine(),
    }


def label(info: dict[str, Any] | None = None) -> str:
    """One line for a report: the mode, and what breaks it when it is not in force."""
    info = info or describe()
    if info["in_force"]:
        return f"{info['mode']} (torch {info['torch_cpu_capability']}, MKL CNR {info['mkl_cnr']})"
    return (f"{info['mode']} NOT in force (torch {info['torch_cpu_capability']}, "
            f"MKL CNR {info['mkl_cnr']}, asked for {EXPECTED_TORCH_CAPABILITY} and {EXPECTED_MKL_CNR})"
            if info["mode"] == NAME else f"{NATIVE} (torch {info['torch_cpu_capability']}, "
            f"MKL CNR {info['mkl_cnr']})")


__all__ = ["NAME", "NATIVE", "PINNED", "describe", "environment", "label", "pin", "requested"]
