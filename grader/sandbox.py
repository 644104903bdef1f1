"""Where the student kernel runs: resource limits always, bubblewrap when available.

The kernel's command line is wrapped, never the grader itself:
    bwrap <binds> -- python -m grader.limits <limits> -- python -m ipykernel_launcher -f ...
"""

from __future__ import annotations

import os
import shutil
import sys
import warnings
from pathlib import Path

from jupyter_client.manager import KernelManager

from grader.config import Limits


class SandboxUnavailable(RuntimeError):
    """The configuration requires bubblewrap and it is not installed."""


_warned = False


def bwrap_path(limits: Limits) -> str | None:
    """The bwrap binary to use, or None; says once when it falls back to limits alone."""
    global _warned
    if limits.sandbox == "off":
        return None
    found = shutil.which("bwrap")
    if found is None:
        if limits.sandbox == "require":
            raise SandboxUnavailable(
                "the rubric asks for the bubblewrap sandbox (limits.sandbox = 'require') "
                "but `bwrap` is not installed: apt-get install bubblewrap"
            )
        if not _warned:
            warnings.warn(
                "bubblewrap (bwrap) is not installed: student kernels run with resource limits "
                "only, with network and file access (apt-get install bubblewrap)",
                RuntimeWarning,
                stacklevel=2,
            )
            _warned = True
    return found


def limits_prefix(limits: Limits) -> list[str]:
    return [
        sys.executable, "-m", "grader.limits",
        "--memory-mb", str(limits.memory_mb),
        "--file-size-mb", str(limits.file_size_mb),
        "--processes", str(limits.processes),
        "--cpu-time-s", str(limits.cpu_time_s),
        "--",
    ]


def _system_paths() -> list[str]:
    """What the kernel needs to read: the OS, the interpreter, the environment and the kit code."""
    kit_root = Path(__file__).resolve().parent.parent
    paths = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc", "/opt/conda"]
    paths += [sys.prefix, sys.base_prefix, os.path.realpath(sys.executable)]
    paths += [str(kit_root / name) for name in ("grader", "solution", "data", "pyproject.toml")]
    seen: list[str] = []
    for p in paths:
        if os.path.exists(p) and p not in seen:
            seen.append(p)
    return seen


def bwrap_prefix(bwrap: str, workdir: Path, runtime_dir: Path) -> list[str]:
    """A read-only view of the OS, Python and the kit; the working directory is the one writable place.

    Nothing else of the machine is mounted: not the instructor's home, not the
    other submissions, not the grader's output folder.
    """
    prefix = [bwrap]
    for p in _system_paths():
        prefix += ["--ro-bind", p, p]
    prefix += [
        "--dev", "/dev",
        "--proc", "/proc",
        "--tmpfs", "/tmp",
        "--bind", str(workdir), str(workdir),
        "--bind", str(runtime_dir), str(runtime_dir),
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
        "--die-with-parent", "--new-session",
        "--chdir", str(workdir),
        "--setenv", "HOME", str(workdir),
        "--setenv", "TMPDIR", "/tmp",
        # ipykernel polls its parent pid, which a pid namespace hides; --die-with-parent does that job.
        "--unsetenv", "JPY_PARENT_PID",
        "--setenv", "MPLCONFIGDIR", str(workdir / ".matplotlib"),
        "--",
    ]
    return prefix


class LimitedKernelManager(KernelManager):
    """A KernelManager whose kernel command starts under limits (and bubblewrap)."""

    prefix: list[str] = []

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        return list(self.prefix) + super().format_kernel_cmd(extra_arguments)


def kernel_manager(workdir: Path, limits: Limits) -> KernelManager:
    """A kernel manager for one submission's run in `workdir`."""
    runtime_dir = Path(workdir) / ".kernel"
    runtime_dir.mkdir(exist_ok=True)
    prefix = limits_prefix(limits)
    bwrap = bwrap_path(limits)
    km = LimitedKernelManager(kernel_name="python3")
    if bwrap is not None:
        # The kernel has no network: talk to it over unix sockets in a bound folder.
        prefix = bwrap_prefix(bwrap, workdir, runtime_dir) + prefix
        km.transport = "ipc"
        km.ip = str(runtime_dir / "kernel")
    km.connection_file = str(runtime_dir / "kernel.json")
    km.prefix = prefix
    return km
