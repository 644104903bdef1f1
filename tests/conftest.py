"""Shared test set-up: `--runslow` turns on the end-to-end tests (CI passes it)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from solution import numerics

numerics.pin()  # before anything imports torch: the tests run in the kit's numerical mode


IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def workdir_is_tmpfs() -> bool:
    """Whether this machine gives a kernel's working directory a tmpfs of the disk limit (root, mount allowed):
    a filling notebook then gets "No space left on device" from the kernel instead of the watchdog's kill."""
    from grader import sandbox
    from grader.config import Limits

    with tempfile.TemporaryDirectory() as tmp:
        mounted = sandbox.mount_workdir(Path(tmp), Limits(disk_mb=1, disk_files=10))
        sandbox.unmount_under(Path(tmp))
    return bool(mounted)


def enterable_tmp(prefix: str) -> Path:
    """A fresh folder in the system's temp folder that every user may enter (0711: enter, not list).

    A kernel that runs as a uid of its own without bubblewrap must reach its working directory,
    and pytest's own temporary folders are closed to other users (0700). The caller removes it.
    """
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o711)
    return path


def sandbox_missing(reason: str) -> None:
    """Skip where a developer's machine has no bubblewrap; fail in CI, which must run the sandbox tests."""
    if IN_CI:
        pytest.fail(f"{reason}: CI must run the sandbox tests (.ci/run installs bubblewrap: "
                    "apt-get install bubblewrap)", pytrace=False)
    pytest.skip(reason)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="run tests marked slow")


def pytest_configure(config: pytest.Config) -> None:
    import torch

    torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow (nox -s tests does)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
