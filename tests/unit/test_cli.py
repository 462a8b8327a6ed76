"""What every ``ledgerlink`` command shares (``ledgerlink.cli.main``): a closed pipe ends it quietly, and
``--version``."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT


def _ledgerlink_into_a_closed_pipe(*arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``ledgerlink <arguments>`` with its stdout a pipe whose reader has gone (``| head`` done)."""
    reader, writer = os.pipe()
    os.close(reader)
    try:
        return subprocess.run(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "ledgerlink.cli", *arguments],
            stdout=writer,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            timeout=120,
            check=False,
        )
    finally:
        os.close(writer)


@pytest.mark.parametrize(
    "arguments",
    [("local", "status"), ("--help",), ("local", "status", "--help")],
    ids=["local status", "--help", "local status --help"],
)
def test_a_closed_pipe_ends_a_command_quietly_with_0(tmp_path, arguments):
    # given a reader that stopped reading (`ledgerlink local status | head`), here before any output
    # when a command writes to it
    finished = _ledgerlink_into_a_closed_pipe(*arguments, "--state-dir", str(tmp_path), cwd=tmp_path)
    # then it exits 0 and says nothing: no traceback, no "Exception ignored" from the last flush
    assert finished.stderr == ""
    assert finished.returncode == 0


def test_version_prints_the_installed_package_version():
    # when `ledgerlink --version` runs
    finished = subprocess.run(
        [sys.executable, "-m", "ledgerlink.cli", "--version"],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=60,
        check=False,
    )
    # then it prints the version from the package's metadata, and exits 0
    assert finished.returncode == 0
    assert finished.stdout == f"ledgerlink {version('ledgerlink')}\n"
