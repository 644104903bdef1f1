"""The sandbox's parts, one at a time and without a kernel (the corpus, tests/test_corpus.py, runs kernels).

Some tests need root (dropping to the sandbox uid) or a working bubblewrap;
they are skipped, with the reason, where the machine has neither; in CI a
missing bubblewrap fails them instead (conftest.sandbox_missing).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from conftest import sandbox_missing
from grader import sandbox
from grader.artifacts import HDF5_PATH, own_file
from grader.config import Limits
from grader.execute import _kernel_env, error_hint
from grader.sandbox import (
    KIT_ROOT, SANDBOX_HOME, Mode, SandboxUnavailable, Watchdog, bwrap_path, bwrap_prefix, count_tasks,
    describe_exit, disk_usage, limits_prefix, reap,
)

ROOT = os.geteuid() == 0
UID = sandbox.UID_BASE + 4242
needs_root = pytest.mark.skipif(not ROOT, reason="dropping to the sandbox uid needs root")


def _bwrap() -> str | None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return bwrap_path(Limits(sandbox="require"))
        except SandboxUnavailable:
            return None


BWRAP = _bwrap()


@pytest.fixture
def needs_bwrap() -> str:
    if BWRAP is None:
        sandbox_missing("bubblewrap is not installed or cannot run here")
    return BWRAP


def _sh(prefix: list[str], script: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, "/bin/sh", "-c", script], capture_output=True, text=True, timeout=60, **kwargs)


# --- grader.limits -------------------------------------------------------------------------------


def test_limits_are_set_before_the_command_runs() -> None:
    limits = Limits(memory_mb=1024, file_size_mb=3, processes=4000, cpu_time_s=77)
    done = _sh(limits_prefix(limits), "ulimit -v; ulimit -f; ulimit -t; ulimit -c; grep NoNewPrivs /proc/self/status")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    assert lines[:4] == [str(1024 * 1024), str(3 * 1024 * 1024 // 512), "77", "0"]  # KiB, 512-byte blocks, s
    assert lines[4].split() == ["NoNewPrivs:", "1"]


@needs_root
def test_limits_drop_to_the_sandbox_uid() -> None:
    done = _sh(limits_prefix(Limits(processes=32), uid=UID), "id -u; id -g; id -G; grep -E 'Max processes' /proc/self/limits | tr -s ' ' | cut -d' ' -f3; grep CapEff /proc/self/status")
    assert done.returncode == 0, done.stderr
    uid, gid, groups, nproc, caps = done.stdout.strip().split("\n")
    assert (uid, gid, groups, nproc) == (str(UID), str(UID), str(UID), "32")
    assert caps.split() == ["CapEff:", "0000000000000000"]


@needs_root
def test_process_limit_holds_for_the_sandbox_uid() -> None:
    script = "for i in 1 2 3 4 5 6 7 8 9 10; do sleep 5 & done; wait"
    done = _sh(limits_prefix(Limits(processes=4), uid=UID), script)
    assert "fork" in done.stderr or "Resource temporarily unavailable" in done.stderr
    reap(SimpleNamespace(sandbox=Mode(None, UID), kernel_pid=None, runtime_dir=None))
    assert count_tasks(uid=UID) == 0


# --- bubblewrap ----------------------------------------------------------------------------------


def test_the_sandbox_binds_only_the_system_the_kit_code_and_the_workdir(tmp_path: Path) -> None:
    (tmp_path / ".kernel").mkdir()
    args = bwrap_prefix("/usr/bin/bwrap", tmp_path / "w", tmp_path / ".kernel", privileged=True)
    ro = [args[i + 2] for i, a in enumerate(args) if a == "--ro-bind"]
    rw = {args[i + 2]: args[i + 1] for i, a in enumerate(args) if a == "--bind"}
    assert str(KIT_ROOT / "grader") in ro and str(KIT_ROOT / "data") in ro
    assert str(KIT_ROOT / "solution" / "dataset.py") in ro
    assert str(KIT_ROOT) not in ro and str(KIT_ROOT / "solution") not in ro  # the solved notebook stays out
    assert str(Path.home()) not in ro + list(rw)
    assert rw == {"/tmp": str(tmp_path / "w" / ".tmp"), SANDBOX_HOME: str(tmp_path / "w"),
                  "/dev/shm": str(tmp_path / "w" / ".shm"), "/run/kernel": str(tmp_path / ".kernel")}
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--new-session"):
        assert flag in args
    assert args[args.index("--cap-drop") + 1] == "ALL"
    dirs = [i for i, a in enumerate(args) if a == "--dir"]
    assert dirs and all(args[i - 2:i] == ["--perms", "0755"] for i in dirs)  # bwrap would make them 0700


def test_parent_folders_are_made_traversable_except_inside_read_only_binds() -> None:
    targets = ["/opt/kit/grader", "/usr/lib/python3/x", "/tmp/ci/kit/data", "/home/student"]
    assert sandbox._parent_dirs(targets, readonly=["/usr"]) == ["/opt", "/opt/kit", "/tmp/ci", "/tmp/ci/kit", "/home"]


@needs_root
def test_inside_the_sandbox(tmp_path: Path, needs_bwrap: str) -> None:
    work, runtime = tmp_path / "w", tmp_path / "k"
    (work / ".kernel").mkdir(parents=True), runtime.mkdir()
    sandbox.prepare(work, UID)
    os.chown(runtime, UID, UID)
    (runtime / "empty.py").touch()
    prefix = bwrap_prefix(BWRAP, work, runtime, privileged=True) + limits_prefix(Limits(), uid=UID)
    script = (
        "id -u; pwd; ls /home; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' '; "
        f"touch {KIT_ROOT}/grader/x 2>&1 | sed 's/.*: //'; ls {KIT_ROOT}/solution; "
        "echo t > /tmp/t; echo s > /dev/shm/s; echo h > h; ls /root 2>&1 | sed 's/.*: //'"
    )
    done = _sh(prefix, script)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:10] == [
        str(UID), SANDBOX_HOME, "student", "lo", "Read-only file system",
        "__init__.py", "dataset.py", "homework.py", "numerics.py", "",
    ]
    assert (work / ".tmp" / "t").read_text() == "t\n" and (work / ".shm" / "s").read_text() == "s\n"
    assert (work / "h").stat().st_uid == UID


def test_require_refuses_without_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(SandboxUnavailable, match="apt-get install bubblewrap"):
        bwrap_path(Limits(sandbox="require"))
    assert bwrap_path(Limits(sandbox="off")) is None


def test_auto_says_once_that_it_runs_without_bwrap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    monkeypatch.setattr(sandbox, "_warned", set())
    with pytest.warns(RuntimeWarning, match="resource limits only") as record:
        assert bwrap_path(Limits(sandbox="auto")) is None
        assert bwrap_path(Limits(sandbox="auto")) is None
    assert len([w for w in record if "resource limits only" in str(w.message)]) == 1


def test_a_bwrap_that_cannot_run_is_no_sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = tmp_path / "bwrap"
    fake.write_text("#!/bin/sh\necho 'bwrap: Creating new namespace failed: Operation not permitted' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: str(fake))
    with pytest.raises(SandboxUnavailable, match="cannot create a sandbox here: bwrap: Creating new namespace"):
        bwrap_path(Limits(sandbox="require"))


# --- the watchdog and the clean-up ---------------------------------------------------------------


def test_disk_usage_counts_blocks_and_entries_and_stops_early(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    for i in range(5):
        (tmp_path / "d" / f"f{i}").write_bytes(b"x" * 100_000)
    (tmp_path / "sparse").open("wb").truncate(10**9)  # a gigabyte that takes no disk
    (tmp_path / "link").symlink_to("/usr")  # not followed
    used, entries = disk_usage(tmp_path)
    assert entries == 8
    assert 500_000 <= used < 1_000_000
    assert disk_usage(tmp_path, stop_files=3)[1] == 4


def test_the_watchdog_names_the_limit_that_was_passed(tmp_path: Path) -> None:
    km = SimpleNamespace(sandbox=Mode(None, None), kernel_pid=None)
    dog = Watchdog(km, tmp_path, Limits(disk_mb=1, disk_files=10))
    assert dog.check() is None
    (tmp_path / "big").write_bytes(b"x" * 2 * 2**20)
    assert dog.check() == "its working directory grew past the 1 MiB disk limit"
    (tmp_path / "big").unlink()
    for i in range(11):
        (tmp_path / f"f{i}").touch()
    assert dog.check() == "its working directory grew past the limit of 10 files and folders"


def test_the_watchdog_counts_tasks_once_a_second_and_the_disk_at_every_poll(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Scanning /proc at every 0.25 s poll cost a grading 1.2 % of a core; once a second is enough."""
    km = SimpleNamespace(sandbox=Mode(None, None), kernel_pid=None)
    dog = Watchdog(km, tmp_path, Limits(processes=5), interval=0.02)
    calls = {"tasks": 0, "disk": 0}

    def tasks() -> int:
        calls["tasks"] += 1
        return 5 if calls["disk"] >= 40 else 1  # the limit is reached only after 40 polls

    def disk(*args, **kwargs) -> tuple[int, int]:
        calls["disk"] += 1
        return 0, 0

    monkeypatch.setattr(dog, "tasks", tasks)
    monkeypatch.setattr(sandbox, "disk_usage", disk)
    monkeypatch.setattr(sandbox, "TASKS_EVERY_S", 0.3)
    monkeypatch.setattr(dog, "stop_kernel", lambda reason: setattr(dog, "reason", reason))
    start = time.monotonic()
    dog.start()
    dog.join(timeout=10)
    elapsed = time.monotonic() - start
    assert not dog.is_alive()
    assert dog.reason == "it reached the limit of 5 processes and threads (a fork bomb?)"
    assert calls["disk"] >= 40
    assert calls["tasks"] <= elapsed / 0.3 + 2  # not at each of the >= 40 disk polls


def test_the_watchdog_still_counts_tasks_when_asked_to_check_now(tmp_path: Path) -> None:
    km = SimpleNamespace(sandbox=Mode(None, None), kernel_pid=None)
    dog = Watchdog(km, tmp_path, Limits(processes=2))
    dog.tasks = lambda: 2  # type: ignore[method-assign]
    assert dog.check() == "it reached the limit of 2 processes and threads (a fork bomb?)"
    assert dog.check(tasks=False) is None


@needs_root
def test_the_watchdog_bounds_the_memory_of_the_kernel_and_its_children_together(tmp_path: Path) -> None:
    """RLIMIT_AS bounds each process: three children under it each can hold three times it together."""
    hog = "import time\nb = b'x' * (40 * 2**20)\ntime.sleep(30)"
    python = next((p for p in ("/usr/bin/python3", sys.executable) if not sandbox.unreachable(p)), None)
    if python is None:
        pytest.skip("no Python here that the sandbox uid can reach")
    procs = [subprocess.Popen([python, "-c", hog], user=UID, group=UID, extra_groups=[],
                              start_new_session=True) for _ in range(3)]  # each its own session
    try:
        time.sleep(2)
        km = SimpleNamespace(sandbox=Mode(None, UID), kernel_pid=None)
        reason = Watchdog(km, tmp_path, Limits(memory_mb=100, processes=100)).check()
        assert re.fullmatch(r"the kernel and the processes it started used \d+ MiB of memory together, "
                            r"past the limit of 100 MiB", reason or ""), reason
        assert int(reason.split(" used ")[1].split()[0]) >= 120
        assert Watchdog(km, tmp_path, Limits(memory_mb=2048, processes=100)).check() is None
        assert Watchdog(km, tmp_path, Limits(memory_mb=100, processes=100)).check(tasks=False) is None
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


def test_among_many_processes_the_watchdog_counts_them_and_leaves_memory_alone(tmp_path: Path, monkeypatch) -> None:
    """A fork bomb's processes hold their memory maps' locks as they fork: reading them stalled the watchdog
    (a fork bomb then ran into the cell's time limit instead of being stopped). Memory is summed while the
    processes are at most a quarter of their limit; past that, only the task limit is checked."""
    km = SimpleNamespace(sandbox=Mode(None, 1_900_000_001), kernel_pid=None)
    dog = Watchdog(km, tmp_path, Limits(memory_mb=100, processes=256))
    scanned: list[int] = []
    monkeypatch.setattr(dog, "memory", lambda: scanned.append(1) or 10**12)  # far past the memory limit
    for count, said in ((65, None), (255, None), (256, "it reached the limit of 256 processes and threads (a fork bomb?)")):
        monkeypatch.setattr(dog, "tasks", lambda c=count: c)
        assert dog.check() == said
    assert scanned == []
    monkeypatch.setattr(dog, "tasks", lambda: 64)
    assert dog.check().startswith("the kernel and the processes it started used ") and scanned == [1]


@needs_root
def test_reap_ends_every_process_of_the_sandbox_uid(tmp_path: Path) -> None:
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    for _ in range(3):
        subprocess.Popen(["/bin/sleep", "60"], user=UID, group=UID, extra_groups=[], start_new_session=True)
    time.sleep(0.2)
    assert count_tasks(uid=UID) == 3
    reap(SimpleNamespace(sandbox=Mode("/usr/bin/bwrap", UID), kernel_pid=None, runtime_dir=str(runtime)))
    assert count_tasks(uid=UID) == 0
    assert not runtime.exists()


@pytest.mark.parametrize(("status", "bwrap", "words"), [
    (-11, False, "the kernel crashed with a segmentation fault (SIGSEGV"),
    (139, True, "the kernel crashed with a segmentation fault (SIGSEGV"),
    (139, False, "the kernel exited with status 139"),
    (-24, False, "the kernel used up its CPU time limit of 7200 s (SIGXCPU)"),
    (-9, False, "the kernel was killed (SIGKILL), most likely because the machine ran out of memory"),
    (3, True, "the kernel exited with status 3 (os._exit"),
    (0, True, "the kernel exited normally: the notebook called exit() or quit()"),
    (None, True, "the kernel stopped answering"),
])
def test_a_dead_kernel_is_described(status: int | None, bwrap: bool, words: str) -> None:
    assert describe_exit(status, Mode("/usr/bin/bwrap" if bwrap else None, None), Limits()).startswith(words)


# --- what crosses the sandbox's edge -------------------------------------------------------------


def test_the_kernel_gets_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("S2S_CACHE", "/cache")
    env = _kernel_env()
    assert "GITHUB_TOKEN" not in env and "AWS_SECRET_ACCESS_KEY" not in env
    assert env["S2S_CACHE"] == "/cache" and env["OMP_NUM_THREADS"] == "1" and env["PATH"] == os.environ["PATH"]


def test_artifacts_behind_links_are_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside.net"
    outside.write_bytes(b"another submission's export")
    work = tmp_path / "w"
    (work / "Trained").mkdir(parents=True)
    (work / HDF5_PATH).symlink_to(outside)
    assert own_file(work, HDF5_PATH) == (None, "Trained/network.net is a symbolic link: refused "
                                                "(the grader reads only files the notebook wrote)")
    (work / HDF5_PATH).unlink()
    (work / "Trained").rmdir()
    (work / "Trained").symlink_to(tmp_path)
    assert own_file(work, HDF5_PATH)[1].startswith("Trained is a symbolic link")
    (work / "Trained").unlink()
    (work / "Trained").mkdir()
    os.mkfifo(work / HDF5_PATH)  # reading it would block the grader
    assert own_file(work, HDF5_PATH) == (None, "Trained/network.net is not a regular file: refused")
    assert own_file(work, Path("Trained") / "loss.txt") == (None, None)


@pytest.mark.parametrize(("ename", "evalue", "sandboxed", "hint"), [
    ("MemoryError", "", True, " (the kernel may use at most 6144 MiB of memory)"),
    ("OSError", "[Errno 27] File too large", False, " (each file the notebook writes is limited to 256 MiB)"),
    ("BlockingIOError", "[Errno 11] Resource temporarily unavailable", True,
     " (the sandbox allows 256 processes and threads)"),
    ("OSError", "[Errno 101] Network is unreachable", True, " (the sandbox has no network)"),
    ("OSError", "[Errno 101] Network is unreachable", False, ""),
    ("ValueError", "bad value", True, ""),
])
def test_errors_name_the_limit_behind_them(ename: str, evalue: str, sandboxed: bool, hint: str) -> None:
    assert error_hint(ename, evalue, Limits(), sandboxed) == hint


def test_reap_ends_a_daemon_that_left_the_kernels_session(tmp_path: Path) -> None:
    """A double fork with setsid() leaves the process group; the run's token in its environment does not."""
    token = "t" + os.urandom(4).hex()
    kernel = subprocess.Popen(["/bin/sh", "-c", "setsid sh -c 'sleep 60 & sleep 60' & sleep 60"],
                              env={**os.environ, sandbox.RUN_TOKEN: token}, start_new_session=True)
    time.sleep(0.5)
    assert len(sandbox.carrying(token)) >= 3
    reap(SimpleNamespace(sandbox=Mode(None, None), kernel_pid=kernel.pid, runtime_dir=None, run_token=token))
    kernel.wait()
    time.sleep(0.2)
    assert sandbox.carrying(token) == []


def test_the_kit_is_protected_from_a_kernel_without_bubblewrap(tmp_path: Path) -> None:
    """protect_kit: the solution's code unreadable to other users, the kit not writable by them."""
    kit = tmp_path / "kit"
    for rel in ("solution/__init__.py", "solution/homework.py", "solution/dataset.py", "solution/numerics.py",
                "solution/network.py", "solution/training.py", "solution/train.ipynb",
                "solution/__pycache__/network.cpython-311.pyc", "solution/__pycache__/homework.cpython-311.pyc",
                "grader/evaluate.py", "data/input_hw.bs1"):
        (kit / rel).parent.mkdir(parents=True, exist_ok=True)
        (kit / rel).write_text("x")
        os.chmod(kit / rel, 0o666)
    os.chmod(kit / "grader", 0o777)
    private = sandbox.protect_kit(kit)
    assert [p.relative_to(kit).as_posix() for p in private] == [
        "solution/__pycache__/network.cpython-311.pyc", "solution/network.py", "solution/train.ipynb",
        "solution/training.py"]
    modes = {p.relative_to(kit).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in kit.rglob("*")}
    assert modes["solution/network.py"] == modes["solution/train.ipynb"] == 0o600
    assert modes["solution/homework.py"] == modes["grader/evaluate.py"] == modes["data/input_hw.bs1"] == 0o644
    assert modes["grader"] == 0o755 and modes["solution/__pycache__/homework.cpython-311.pyc"] == 0o644
