"""Set resource limits, drop privileges, then exec the given command: `python -m grader.limits ... -- CMD`.

A second layer under bubblewrap (and the only one without it): memory,
CPU time, file size and process count, applied to the kernel and all it
forks. RLIMIT_NPROC counts per user and is not enforced for root, so when
the grader runs as root the sandbox passes `--uid`/`--gid` and this drops
to that unprivileged user (its own per run) after setting the limits.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import resource
import signal
import sys

PR_SET_PDEATHSIG = 1
PR_SET_NO_NEW_PRIVS = 38


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, value, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), f"prctl({option}, {value}) failed")


def _tasks_of(uid: int) -> int:
    """Processes and threads of real uid `uid` on the machine (what RLIMIT_NPROC counts)."""
    n = 0
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
            if int(fields["Uid"].split()[0]) == uid:
                n += int(fields["Threads"])
        except (OSError, ValueError, KeyError):
            continue
    return n


def apply(memory_mb: int, file_size_mb: int, processes: int, cpu_time_s: int, own_uid: bool = False) -> None:
    """Lower this process's limits; every child inherits them.

    RLIMIT_NPROC counts every process of the user: with a uid of its own
    (`own_uid`) the kernel gets `processes`, else that many more than the
    user already runs (a grader run by an instructor shares their count).
    """
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * mb, memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_mb * mb, file_size_mb * mb))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_time_s, cpu_time_s))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    nproc = processes if own_uid else processes + _tasks_of(os.getuid())
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if hard == resource.RLIM_INFINITY or nproc < hard:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))


def drop_privileges(uid: int, gid: int) -> None:
    """Become `uid`/`gid` for good: no supplementary groups, no capabilities, no way back."""
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    if os.getuid() != uid or os.geteuid() != uid:  # pragma: no cover - the kernel would refuse first
        raise OSError("could not drop privileges")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.limits")
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--file-size-mb", type=int, required=True)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--cpu-time-s", type=int, required=True)
    parser.add_argument("--uid", type=int, help="run the command as this user (the grader must be root)")
    parser.add_argument("--gid", type=int, help="and this group (default: the uid)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    apply(args.memory_mb, args.file_size_mb, args.processes, args.cpu_time_s, own_uid=args.uid is not None)
    if args.uid is not None:
        drop_privileges(args.uid, args.gid if args.gid is not None else args.uid)
    # After the uid change (which clears it): die with the parent, gain nothing from setuid files.
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
