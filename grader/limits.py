"""Set resource limits, then exec the given command: `python -m grader.limits ... -- CMD`.

A second layer under bubblewrap (and the only one without it): memory,
CPU time, file size and process count, applied to the kernel and all it forks.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys


def apply(memory_mb: int, file_size_mb: int, processes: int, cpu_time_s: int) -> None:
    mb = 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (memory_mb * mb, memory_mb * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_mb * mb, file_size_mb * mb))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_time_s, cpu_time_s))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if hard == resource.RLIM_INFINITY or processes < hard:
        resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m grader.limits")
    parser.add_argument("--memory-mb", type=int, required=True)
    parser.add_argument("--file-size-mb", type=int, required=True)
    parser.add_argument("--processes", type=int, required=True)
    parser.add_argument("--cpu-time-s", type=int, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to run")
    apply(args.memory_mb, args.file_size_mb, args.processes, args.cpu_time_s)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
