"""Where the student kernel runs: resource limits always, bubblewrap when available.

The kernel's command line is wrapped, never the grader itself:
    bwrap <binds> -- python -m grader.limits <limits> [--uid U] -- python -m ipykernel_launcher -f ...

With bubblewrap the kernel sees a read-only OS, Python environment and kit
code, its own working directory (the one writable place; its /tmp and
/dev/shm are folders inside it), no network and only its own processes.
When the grader is root the kernel runs as an unprivileged uid of its own,
with bubblewrap or without it, so RLIMIT_NPROC holds, no capability
survives, the kit is read-only to it (and the solution's code unreadable:
`protect_kit`), and after the run every process of that uid is killed,
whatever its session (`reap`). As root the working directory is also a
tmpfs of the disk limit's size (`mount_workdir`), so the kernel, not a poll,
refuses a burst past it. What no rlimit bounds is watched from outside
(`Watchdog`): the working directory's size and file count, the kernel's
processes, and the memory of the kernel and its children together.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager

from grader.config import Limits

KIT_ROOT = Path(__file__).resolve().parent.parent
# What the kernel may read of the kit: the grader (preamble, probe, accel), the data, the probe's
# loader (solution/dataset.py) and the public facts it reads (the homework, the numerical mode). The
# package's __init__ (which exports the solved network and training loop) is replaced by an empty
# file, so the reference solution stays out of the sandbox.
KIT_PATHS = ("grader", "solution/dataset.py", "solution/homework.py", "solution/numerics.py", "data", "pyproject.toml")
EMPTY_MODULE = "solution/__init__.py"
UID_BASE, UID_SPAN = 1_900_000_000, 1_000_000  # far from real users, system and subuid ranges
PRIVATE_DIRS = (".tmp", ".shm")  # mounted as /tmp and /dev/shm inside the sandbox
SANDBOX_HOME = "/home/student"  # the working directory, as the kernel sees it
SANDBOX_RUNTIME = "/run/kernel"  # the kernel's connection file and sockets, as it sees them
RUNTIME_DIR = ".run"  # ... and in the working directory (bwrap only)


class SandboxUnavailable(RuntimeError):
    """The configuration requires bubblewrap and it is not installed or cannot run here."""


@dataclass(frozen=True)
class Mode:
    """How one kernel is confined: the bwrap binary (None: limits alone) and its uid (None: the grader's)."""

    bwrap: str | None
    uid: int | None


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, RuntimeWarning, stacklevel=3)


@functools.lru_cache(maxsize=4)
def _bwrap_error(bwrap: str) -> str | None:
    """None when `bwrap` can build a sandbox here (a container may forbid namespaces), else why not."""
    probe = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
             "--unshare-net", "--unshare-pid", "--die-with-parent", "--", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return str(exc)
    return None if done.returncode == 0 else (done.stderr.strip() or f"exit status {done.returncode}")


def why_no_sandbox() -> str | None:
    """None when bubblewrap can build a sandbox on this machine, else why not (in words)."""
    found = shutil.which("bwrap")
    if found is None:
        return "`bwrap` is not installed (apt-get install bubblewrap)"
    error = _bwrap_error(found)
    return None if error is None else f"`bwrap` cannot create a sandbox here: {error}"


def bwrap_path(limits: Limits) -> str | None:
    """The bwrap binary to use, or None; says once when it falls back to limits alone."""
    if limits.sandbox == "off":
        return None
    error = why_no_sandbox()
    if error is None:
        return shutil.which("bwrap")
    if limits.sandbox == "require":
        raise SandboxUnavailable(f"the rubric asks for the bubblewrap sandbox (limits.sandbox = 'require') but {error}")
    _warn_once(
        f"{error}: student kernels run with resource limits only, with network and with the "
        f"grader's own file access{' (as root)' if os.geteuid() == 0 else ''}"
    )
    return None


def sandbox_uid() -> int | None:
    """The unprivileged uid (= gid) for kernels started by this grader process; None unless root.

    One per grading process, so concurrent workers never share a process count;
    runs within one process follow each other and `reap` ends each one's leftovers.
    """
    if os.geteuid() != 0:
        return None
    return UID_BASE + os.getpid() % UID_SPAN


def unreachable(path: str) -> str | None:
    """Why a user with no rights of its own ("other") cannot reach `path`, or None (it can).

    Only the folders on the way that exist are looked at: a working directory not made yet is
    reachable when its existing parents are.
    """
    path = os.path.realpath(path)
    parts = Path(path).parts
    for i in range(1, len(parts)):
        folder = str(Path(*parts[:i]))
        if not os.path.exists(folder):
            break
        try:
            if not os.stat(folder).st_mode & 0o001:
                return f"{folder} is not open to other users (mode {stat.S_IMODE(os.stat(folder).st_mode):o})"
        except OSError as exc:
            return f"{folder}: {exc.strerror}"
    return None


def _own_uid_blocked() -> str | None:
    """Without bubblewrap the kernel's uid needs the real paths of Python and the kit; why not, or None."""
    for path in (os.path.realpath(sys.executable), sys.prefix, sys.base_prefix, str(KIT_ROOT)):
        why = unreachable(os.path.join(path, ".")) if os.path.isdir(path) else unreachable(path)
        if why:
            return why
    return None


def mode(limits: Limits, workdir: Path | None = None) -> Mode:
    """The confinement a kernel gets under `limits` on this machine: its own uid whenever the grader is root.

    Without bubblewrap the uid sees the real filesystem, so it must be able to reach the Python
    environment, the kit and its working directory (`workdir`, when given); where a folder on the
    way is closed to other users (a pyenv under /root, an output folder in a private home), the
    kernel runs as root, as said once, and only the session and run-token sweep of `reap` ends
    what it leaves.
    """
    bwrap = bwrap_path(limits)
    uid = sandbox_uid()
    if bwrap is None and uid is not None:
        if why := _own_uid_blocked():
            _warn_once(f"without bubblewrap the kernel cannot run as a uid of its own here ({why}: it could not "
                       "start the kit's Python): it runs as root, with the kit writable to it. Install the kit's "
                       "environment where every user can read it, or install bubblewrap")
            return Mode(None, None)
        if workdir is not None and (why := unreachable(str(workdir))):
            _warn_once(f"without bubblewrap the kernel cannot run as a uid of its own here ({why}: it could not "
                       "enter its working directory): it runs as root, with the kit writable to it. Write the "
                       "grades to a folder every user can enter (--out), or install bubblewrap")
            return Mode(None, None)
    return Mode(bwrap, uid)


# What of solution/ a kernel may read without bubblewrap (with it, only KIT_PATHS are mounted at all):
# the package's __init__ (which only names the exports, lazily) and the public modules. The rest (the
# network, the training loop, the solved notebook, the reference's record, their bytecode) is the
# instructor's: unreadable to the sandbox uid. Grading itself imports the network and the training loop
# (the fingerprint check trains the reference; the untrained digest builds its network), so they stay.
PUBLIC_SOLUTION = ("__init__", *(Path(p).stem for p in KIT_PATHS if p.startswith("solution/")))
KIT_CODE = ("grader", "solution", "data")


def private_files(root: Path = KIT_ROOT) -> list[Path]:
    """The solution's files a kernel must not read (bytecode included), sorted."""
    folder = Path(root) / "solution"
    found = [p for p in folder.iterdir() if p.is_file() and p.stem not in PUBLIC_SOLUTION]
    cache = folder / "__pycache__"
    if cache.is_dir():
        found += [p for p in cache.iterdir() if p.name.split(".", 1)[0] not in PUBLIC_SOLUTION]
    return sorted(found)


def protect_kit(root: Path = KIT_ROOT) -> list[Path]:
    """Make the kit read-only to every other user and the solution's code unreadable to them; returns
    the private files. For a kernel that runs as its own uid without bubblewrap (the uid owns nothing
    and has no group: the "other" bits are all it gets). Idempotent; the kit's owner keeps its access."""
    for top in KIT_CODE:
        for dirpath, dirnames, filenames in os.walk(Path(root) / top):
            for name in [*dirnames, *filenames, "."]:
                path = os.path.join(dirpath, name)
                st = os.lstat(path)
                if st.st_mode & 0o022 and not stat.S_ISLNK(st.st_mode):
                    os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o022)
    private = private_files(root)
    for path in private:
        os.chmod(path, stat.S_IMODE(os.lstat(path).st_mode) & ~0o077)
    return private


# --- the working directory on a filesystem of the disk limit's size (root only) ------------------

def mount_workdir(workdir: Path, limits: Limits) -> bool:
    """Root: mount a tmpfs of `disk_mb` and `disk_files` inodes on the (empty) working directory.

    The kernel then gets ENOSPC at the limit, however fast it writes (a burst of
    fallocate outruns any poll). False where it cannot be done (not root, a
    container without CAP_SYS_ADMIN): the watchdog's poll is then the only bound.
    """
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    options = f"size={limits.disk_mb}m,nr_inodes={limits.disk_files + 64},mode=0755"
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "s2s-work", str(workdir)],
                              capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below `root` (deepest first), from /proc/self/mounts."""
    root_s = str(Path(root).resolve())
    try:
        lines = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return []
    points = [line.split()[1].encode().decode("unicode_escape") for line in lines if len(line.split()) > 1]
    return sorted({p for p in points if _within(p, root_s)}, key=len, reverse=True)


def unmount_under(root: Path) -> None:
    """Unmount every working-directory tmpfs at or below `root` (after a run, or left by a killed batch)."""
    for point in mounts_under(root):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30, check=False)


def limits_prefix(limits: Limits, uid: int | None = None) -> list[str]:
    prefix = [
        sys.executable, "-m", "grader.limits",
        "--memory-mb", str(limits.memory_mb),
        "--file-size-mb", str(limits.file_size_mb),
        "--processes", str(limits.processes),
        "--cpu-time-s", str(limits.cpu_time_s),
    ]
    if uid is not None:
        prefix += ["--uid", str(uid), "--gid", str(uid)]
    return prefix + ["--"]


def _system_paths() -> list[str]:
    """What the kernel needs to read: the OS, the interpreter, the environment and the kit code.

    Parents first; a path inside one already listed is dropped (the outer bind shows it).
    """
    paths = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/libx32", "/etc", "/opt/conda"]
    paths += [sys.prefix, sys.base_prefix, os.path.realpath(sys.executable)]
    paths += [str(KIT_ROOT / name) for name in KIT_PATHS]
    seen: list[str] = []
    for p in paths:
        if os.path.exists(p) and not any(_within(p, q) for q in seen):
            seen.append(p)
    return seen


def _within(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _parent_dirs(targets: list[str], readonly: list[str]) -> list[str]:
    """Folders bwrap would create on the way to `targets` (it makes them 0700): listed to make them 0755.

    Those inside a read-only bind exist already; those inside /tmp (the kit in /tmp) are made there.
    """
    out: list[str] = []
    for target in targets:
        parts = Path(target).parts
        for i in range(2, len(parts)):
            parent = str(Path(*parts[:i]))
            if parent not in out and parent != "/tmp" and not any(_within(parent, m) for m in readonly):
                out.append(parent)
    return out


def bwrap_prefix(bwrap: str, workdir: Path, runtime_dir: Path, privileged: bool = False) -> list[str]:
    """A read-only view of the OS, Python and the kit; the working directory is the one writable place.

    Nothing else of the machine is mounted: not the instructor's home, not the
    other submissions, not the grader's output folder. Inside, the working
    directory is SANDBOX_HOME whatever its path outside, the kernel's sockets are
    in SANDBOX_RUNTIME, and /tmp and /dev/shm are folders of the working
    directory, so the disk watchdog counts them and they cost disk, not memory.
    """
    workdir = Path(workdir)
    system = _system_paths()
    prefix = [bwrap, "--bind", str(workdir / ".tmp"), "/tmp"]  # first: the kit may live in /tmp
    for parent in _parent_dirs([*system, SANDBOX_HOME, SANDBOX_RUNTIME, str(KIT_ROOT / EMPTY_MODULE)], system):
        prefix += ["--perms", "0755", "--dir", parent]
    for p in system:
        prefix += ["--ro-bind", p, p]
    prefix += [
        "--ro-bind", str(Path(runtime_dir) / "empty.py"), str(KIT_ROOT / EMPTY_MODULE),
        "--dev", "/dev",
        "--proc", "/proc",
        "--bind", str(workdir), SANDBOX_HOME,
        "--bind", str(workdir / ".shm"), "/dev/shm",
        "--bind", str(runtime_dir), SANDBOX_RUNTIME,
        "--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
        "--hostname", "sandbox",
        "--die-with-parent", "--new-session",
        "--chdir", SANDBOX_HOME,
        "--setenv", "HOME", SANDBOX_HOME,
        "--setenv", "TMPDIR", "/tmp",
        "--setenv", "USER", "student",
        "--setenv", "LOGNAME", "student",
        # ipykernel polls its parent pid, which a pid namespace hides; --die-with-parent does that job.
        "--unsetenv", "JPY_PARENT_PID",
        "--setenv", "MPLCONFIGDIR", SANDBOX_HOME + "/.matplotlib",
    ]
    if privileged:  # root: keep only what grader.limits needs to become the sandbox uid
        prefix += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    return prefix + ["--"]


class LimitedKernelManager(AsyncKernelManager):
    """A KernelManager whose kernel command starts under limits (and bubblewrap).

    With bubblewrap the kernel reads its own copy of the connection file, whose
    socket paths are the sandbox's (SANDBOX_RUNTIME) rather than the host's.
    """

    prefix: list[str] = []
    sandbox: Mode = Mode(None, None)
    runtime_dir: str | None = None  # host folder of the kernel's sockets (bwrap only)
    run_token: str | None = None  # RUN_TOKEN's value in the kernel's environment (execute sets it)

    def _inside(self) -> str:
        return os.path.join(self.runtime_dir or "", "sandbox.json")

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        cmd = super().format_kernel_cmd(extra_arguments)
        if self.runtime_dir:
            inside = SANDBOX_RUNTIME + "/sandbox.json"
            cmd = [inside if arg == self.connection_file else arg for arg in cmd]
        return list(self.prefix) + cmd

    def write_connection_file(self, **kwargs) -> None:  # type: ignore[override]
        super().write_connection_file(**kwargs)
        kernel_file = self.connection_file
        if self.runtime_dir:
            info = json.loads(Path(self.connection_file).read_text())
            info["ip"] = SANDBOX_RUNTIME + "/kernel"
            kernel_file = self._inside()
            Path(kernel_file).write_text(json.dumps(info))
            os.chmod(kernel_file, 0o600)
        if self.sandbox.uid is not None:  # the kernel, once the sandbox uid, must still read it
            os.chown(kernel_file, self.sandbox.uid, self.sandbox.uid)

    @property
    def kernel_pid(self) -> int | None:
        process = getattr(self.provisioner, "process", None)
        return None if process is None else process.pid

    def exit_status(self) -> int | None:
        """The kernel process's exit status (negative: killed by that signal), None while it runs."""
        process = getattr(self.provisioner, "process", None)
        return None if process is None else process.poll()


def prepare(workdir: Path, uid: int | None) -> None:
    """Create the kernel's private folders; hand the working directory to the sandbox uid."""
    for name in PRIVATE_DIRS:
        (workdir / name).mkdir(exist_ok=True)
    if uid is None:
        return
    for path in (workdir, workdir / ".kernel", *(workdir / n for n in PRIVATE_DIRS)):
        os.chown(path, uid, uid)  # bwrap, capabilities dropped, must still enter it: keep 0755


def kernel_manager(workdir: Path, limits: Limits) -> LimitedKernelManager:
    """A kernel manager for one submission's run in `workdir`."""
    workdir = Path(workdir)
    (workdir / ".kernel").mkdir(exist_ok=True)
    sandbox = mode(limits, workdir)
    prepare(workdir, sandbox.uid)
    km = LimitedKernelManager(kernel_name="python3")
    prefix = limits_prefix(limits, sandbox.uid)
    if sandbox.bwrap is None and sandbox.uid is not None:
        protect_kit()  # no mount namespace to hide the solution: its files' modes must
    if sandbox.bwrap is not None:
        # No network: talk to the kernel over unix sockets. They live in the working directory (so what
        # the kernel writes there counts against its disk limit), reached through a short link in the
        # host's temp folder (a socket's path allows 107 bytes), which the kernel never sees.
        real = workdir / RUNTIME_DIR
        real.mkdir(exist_ok=True)
        if sandbox.uid is not None:
            os.chown(real, sandbox.uid, sandbox.uid)
        os.chmod(real, 0o700)
        Path(real, "empty.py").touch(0o644)  # bound over solution/__init__.py
        runtime = os.path.join(tempfile.gettempdir(), f"s2s-kernel-{secrets.token_hex(6)}")
        os.symlink(real, runtime)
        prefix = bwrap_prefix(sandbox.bwrap, workdir, Path(runtime), privileged=sandbox.uid is not None) + prefix
        km.transport = "ipc"
        km.ip = os.path.join(runtime, "kernel")
        km.runtime_dir = runtime
    km.connection_file = str(workdir / ".kernel" / "kernel.json")
    km.prefix = prefix
    km.sandbox = sandbox
    return km


RUN_TOKEN = "S2S_RUN"  # in the kernel's environment: what every process it starts inherits


def carrying(token: str) -> list[int]:
    """Pids of the processes whose environment holds RUN_TOKEN=token (a process whose environ cannot be
    read, another user's, is not this grader's to end)."""
    needle = f"{RUN_TOKEN}={token}".encode() + b"\0"
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/environ", "rb") as f:
                if needle in f.read() + b"\0":
                    found.append(int(name))
        except OSError:
            continue
    return found


def reap(km: LimitedKernelManager) -> None:
    """End whatever the kernel left running (every process of its uid, or its process group); drop its sockets."""
    uid = km.sandbox.uid
    if uid is not None:
        # kill(-1) from the sandbox uid reaches exactly that uid's processes, in any namespace.
        deadline = time.monotonic() + 10
        while count_tasks(uid=uid) and time.monotonic() < deadline:
            subprocess.run(["/bin/sh", "-c", "kill -KILL -1 2>/dev/null; true"],
                           user=uid, group=uid, extra_groups=[], check=False, timeout=30)
            time.sleep(0.05)
    else:
        pid = km.kernel_pid
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)  # the kernel leads its own session (start_new_session)
            except OSError:
                pass
        if km.run_token:  # a daemon that left the session (setsid) still carries the run's token
            deadline = time.monotonic() + 10
            while (left := carrying(km.run_token)) and time.monotonic() < deadline:
                for other in left:
                    with contextlib.suppress(OSError):
                        os.kill(other, signal.SIGKILL)
                time.sleep(0.05)
    if km.runtime_dir:
        if os.path.islink(km.runtime_dir):
            target = os.readlink(km.runtime_dir)
            os.unlink(km.runtime_dir)
            shutil.rmtree(target, ignore_errors=True)
        else:
            shutil.rmtree(km.runtime_dir, ignore_errors=True)


SIGNALS = {
    signal.SIGSEGV: "crashed with a segmentation fault (SIGSEGV: invalid memory access in native code, "
                    "e.g. ctypes or a C extension)",
    signal.SIGBUS: "crashed with a bus error (SIGBUS: invalid memory access in native code)",
    signal.SIGILL: "crashed on an illegal instruction (SIGILL)",
    signal.SIGFPE: "crashed on an arithmetic fault (SIGFPE)",
    signal.SIGABRT: "aborted (SIGABRT: a fatal error in native code)",
    signal.SIGXFSZ: "wrote a file past the size limit (SIGXFSZ)",
}


def describe_exit(status: int | None, sandbox: Mode, limits: Limits) -> str:
    """Why a kernel died, from its exit status, in words a student can act on."""
    if status is None:
        return "the kernel stopped answering"
    sig = -status if status < 0 else (status - 128 if sandbox.bwrap and status > 128 else None)
    if sig is None:
        if status == 0:
            return "the kernel exited normally: the notebook called exit() or quit(), which stops the kernel"
        return f"the kernel exited with status {status} (os._exit or sys.exit outside a cell's main thread)"
    if sig == signal.SIGXCPU:
        return f"the kernel used up its CPU time limit of {limits.cpu_time_s} s (SIGXCPU)"
    if sig == signal.SIGKILL:
        return "the kernel was killed (SIGKILL), most likely because the machine ran out of memory"
    try:
        name = signal.Signals(sig).name
    except ValueError:
        name = f"signal {sig}"
    return "the kernel " + SIGNALS.get(sig, f"was killed by {name}")


def disk_usage(root: Path, stop_bytes: int | None = None, stop_files: int | None = None) -> tuple[int, int]:
    """(bytes on disk, entries) under `root`, not following links; stops early past either bound."""
    total = count = 0
    stack = [str(root)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                count += 1
                try:
                    st = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += st.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                if (stop_bytes is not None and total > stop_bytes) or (stop_files is not None and count > stop_files):
                    return total, count
    return total, count


TASKS_EVERY_S = 1.0  # how often the watchdog counts the kernel's processes (its disk, every interval)
MEMORY_SCAN_SHARE = 4  # the watchdog sums memory only while the tasks are at most 1/4 of their limit
_STATUS_FIELDS = re.compile(rb"^(State|Uid|Threads):\s*(\S+)", re.M)


def count_tasks(uid: int | None = None, sid: int | None = None) -> int:
    """Processes and threads (what RLIMIT_NPROC counts) of real uid `uid`, or of session `sid`."""
    return usage(uid, sid)[0]


def _proportional_bytes(pid: str) -> int | None:
    """The process's proportional set size (shared pages split between their users), or None."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def usage(uid: int | None = None, sid: int | None = None, memory: bool = False) -> tuple[int, int]:
    """(processes and threads, memory in bytes: their PSS summed when `memory`, else 0) of uid `uid` or session `sid`."""
    n = total = 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if sid is not None:
                with open(f"/proc/{name}/stat", "rb") as f:
                    fields = f.read().rsplit(b")", 1)[1].split()  # state ppid pgrp session ...
                if int(fields[3]) != sid:
                    continue
            with open(f"/proc/{name}/status", "rb") as f:
                status = dict(_STATUS_FIELDS.findall(f.read()))  # only the three lines it needs: a poll runs often
        except (OSError, ValueError, IndexError):
            continue
        if status.get(b"State") in (b"Z", b"X"):  # dead, waiting to be reaped
            continue
        if uid is not None and int(status.get(b"Uid", b"-1")) != uid:
            continue
        n += int(status.get(b"Threads", b"1"))
        if memory:
            total += _proportional_bytes(name) or 0
    return n, total


class Watchdog(threading.Thread):
    """Stops the kernel when its working directory or its process count outgrows the limits.

    rlimits bound one file and one process's memory; nothing bounds how many
    files a notebook writes, nor the memory of several processes together, hence
    this poll (the second line where the working directory is a tmpfs). RLIMIT_NPROC does bound the
    processes of the sandbox uid, but a fork bomb that fills it leaves the
    kernel too starved to answer; and a root kernel without bubblewrap has no
    such limit at all. `reason` says why it stopped a kernel.
    """

    def __init__(self, km: LimitedKernelManager, workdir: Path, limits: Limits, interval: float = 0.25) -> None:
        super().__init__(daemon=True, name="s2s-watchdog")
        self.km, self.workdir, self.limits, self.interval = km, Path(workdir), limits, interval
        self.reason: str | None = None
        self._stop_event = threading.Event()

    def tasks(self) -> int | None:
        """The kernel's processes and threads, where they can be told apart from the grader's: the
        sandbox uid's, whatever their session."""
        uid, pid = self.km.sandbox.uid, self.km.kernel_pid
        if uid is not None:
            return count_tasks(uid=uid)
        if self.km.sandbox.bwrap is None and os.geteuid() == 0 and pid:
            return count_tasks(sid=pid)  # a root kernel (no uid of its own here) leads its own session
        return None

    def memory(self) -> int | None:
        """Bytes of memory (PSS) of the kernel and every process it started, where they can be told apart."""
        uid = self.km.sandbox.uid
        return None if uid is None else usage(uid=uid, memory=True)[1]

    def check(self, tasks: bool = True) -> str | None:
        """Why the kernel must stop now, or None (`tasks`: count its processes too)."""
        lim = self.limits
        used, files = disk_usage(self.workdir, lim.disk_mb * 2**20, lim.disk_files)
        if used > lim.disk_mb * 2**20:
            return f"its working directory grew past the {lim.disk_mb} MiB disk limit"
        if files > lim.disk_files:
            return f"its working directory grew past the limit of {lim.disk_files} files and folders"
        n = self.tasks() if tasks else None
        if n is not None and n >= lim.processes:
            return f"it reached the limit of {lim.processes} processes and threads (a fork bomb?)"
        # Reading a process's memory map waits for its lock, which a process in the middle of fork()
        # holds: among hundreds of forking processes the scan stalls, and the watchdog with it, while the
        # task limit above goes unchecked. So memory is summed only while the processes are few; a storm
        # of them is the task limit's business (and RLIMIT_AS bounds each one's memory).
        memory = self.memory() if tasks and (n is None or n <= lim.processes // MEMORY_SCAN_SHARE) else None
        if memory is not None and memory > lim.memory_mb * 2**20:  # RLIMIT_AS bounds each process; this, all
            return (f"the kernel and the processes it started used {memory / 2**20:.0f} MiB of memory together, "
                    f"past the limit of {lim.memory_mb} MiB")
        return None

    def stop_kernel(self, reason: str) -> None:
        self.reason = reason
        pid = self.km.kernel_pid
        if pid is not None:
            try:
                os.killpg(pid, signal.SIGKILL)  # with bwrap: its --die-with-parent ends the sandbox
            except OSError:
                pass

    def run(self) -> None:
        # Counting tasks scans /proc (~2 ms): once a second, not at every disk poll, keeps the
        # watchdog near 0.2 % of a core, which a second grading worker would otherwise lose.
        # A disk scan that grows costly (a notebook writing thousands of files) is spaced out
        # to stay under 2 % of a core.
        wait, next_tasks = self.interval, 0.0
        while not self._stop_event.wait(wait):
            start = time.monotonic()
            reason = self.check(tasks=start >= next_tasks)
            if start >= next_tasks:
                next_tasks = start + TASKS_EVERY_S
            if reason is not None:
                self.stop_kernel(reason)
                return
            wait = max(self.interval, 50 * (time.monotonic() - start))

    def stop(self) -> None:
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout=5)
