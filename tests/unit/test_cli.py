"""What every ``ledgerlink`` command shares (``ledgerlink.cli.main``): a closed pipe ends it quietly,
``--version``, and the local stack's state directory found from any directory of the checkout."""

from __future__ import annotations

import argparse
import io
import logging
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from ledgerlink import cli
from ledgerlink.cli.endpoints import DEFAULT_STATE_DIR, default_state_dir
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


def test_the_state_directory_is_found_from_any_directory_of_the_checkout(tmp_path):
    # given a checkout with the local stack's state directory at its root
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'ledgerlink'\n", encoding="utf-8")
    (tmp_path / DEFAULT_STATE_DIR).mkdir()
    deep = tmp_path / "functions" / "ledgerlink" / "cli"
    deep.mkdir(parents=True)
    # when a command looks for it from a directory deep in the checkout, or from the root
    # then it finds the root's
    assert default_state_dir(deep) == tmp_path / DEFAULT_STATE_DIR
    assert default_state_dir(tmp_path) == tmp_path / DEFAULT_STATE_DIR


def test_before_the_first_run_the_state_directory_is_the_checkout_roots(tmp_path):
    # given a checkout without a state directory yet
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'ledgerlink'\n", encoding="utf-8")
    (tmp_path / "docs").mkdir()
    # then `make run` from a subdirectory and every command agree on the root's
    assert default_state_dir(tmp_path / "docs") == tmp_path / DEFAULT_STATE_DIR


def test_outside_a_checkout_the_state_directory_is_the_working_directorys(tmp_path):
    assert default_state_dir(tmp_path) == tmp_path / DEFAULT_STATE_DIR


def test_every_command_gets_the_checkouts_state_directory_unless_told(monkeypatch, tmp_path):
    # given a command with the usual --state-dir option, run from a subdirectory of a checkout
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'ledgerlink'\n", encoding="utf-8")
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path / "docs")
    seen: list[str] = []

    def register(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
        parser.set_defaults(func=lambda args: seen.append(args.state_dir) or 0)

    monkeypatch.setattr(cli, "COMMAND_GROUPS", (cli.CommandGroup("probe", "probe:register", "probe"),))
    monkeypatch.setattr(cli, "_load", lambda _reference: register)
    # when it runs without and with the option
    assert cli.main(["probe"]) == 0
    assert cli.main(["probe", "--state-dir", "/tmp/elsewhere"]) == 0
    # then the default is the checkout root's, and the option wins
    assert seen == [str(tmp_path / DEFAULT_STATE_DIR), "/tmp/elsewhere"]


def test_local_status_and_up_find_the_checkouts_state_directory_from_a_subdirectory(monkeypatch, tmp_path):
    from ledgerlink_local.stack.settings import state_dir_from

    # given `make run` ran at the checkout's root, and the developer is now in docs/
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'ledgerlink'\n", encoding="utf-8")
    (tmp_path / DEFAULT_STATE_DIR).mkdir()
    (tmp_path / "docs").mkdir()
    monkeypatch.chdir(tmp_path / "docs")
    # then `ledgerlink local status` (and `up`) use the root's, unless the flag or variable says otherwise
    assert state_dir_from(None, {}) == tmp_path / DEFAULT_STATE_DIR
    assert state_dir_from(None, {"LEDGERLINK_LOCAL_STATE_DIR": "/tmp/x"}) == Path("/tmp/x")
    assert state_dir_from("/tmp/y", {"LEDGERLINK_LOCAL_STATE_DIR": "/tmp/x"}) == Path("/tmp/y")


class _ClosedPipe(io.StringIO):
    """A stdout whose reader has gone: every write fails as a pipe's does."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_command_that_reports_its_own_errors_still_ends_a_closed_pipe_quietly(monkeypatch, capsys):
    # given `ledgerlink dlq replay ... | head`, the reader gone before the first line
    monkeypatch.setattr(sys, "stdout", _ClosedPipe())
    # when the command writes its first line
    code = cli.main(
        ["dlq", "replay", "q", "--dry-run", "--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1"]
    )
    # then it ends with 0 and reports no error of its own (no "BrokenPipeError" on stderr)
    assert code == 0
    assert capsys.readouterr().err == ""


def _probe_that_logs(monkeypatch: pytest.MonkeyPatch, stdout: io.TextIOBase) -> None:
    """A `ledgerlink probe` command that runs flow code which logs, as `backfill` or `catchup` do: the
    deal sync's logger writes its JSON lines to ``stdout`` (Powertools' default stream)."""
    from ledgerlink.observability import Service, get_logger

    logger = get_logger(Service.HUBSPOT_DEAL_SYNC)
    handler = next(h for h in logger.handlers if isinstance(h, logging.StreamHandler))
    monkeypatch.setattr(handler, "stream", stdout)

    def register(parser: argparse.ArgumentParser) -> None:
        def run(_args: argparse.Namespace) -> int:
            logger.info("backfill page settled", extra={"connection": "demo"})
            logger.warning("customer match is ambiguous", extra={"connection": "demo"})
            print("demo: Invoice 5/5 · finished")
            return 0

        parser.set_defaults(func=run)

    monkeypatch.setattr(cli, "COMMAND_GROUPS", (cli.CommandGroup("probe", "probe:register", "probe"),))
    monkeypatch.setattr(cli, "_load", lambda _reference: register)


def test_a_command_keeps_the_flows_json_log_lines_off_its_output(monkeypatch, capsys):
    # given a command whose flow code logs an INFO and a WARNING line
    stdout = io.StringIO()
    _probe_that_logs(monkeypatch, stdout)
    # when the operator runs it
    assert cli.main(["probe"]) == 0
    # then its output is its own lines alone; the warning is on stderr, as JSON naming the connection
    captured = capsys.readouterr()
    assert stdout.getvalue() == ""
    assert captured.out == "demo: Invoice 5/5 · finished\n"
    assert '"message":"customer match is ambiguous"' in captured.err
    assert '"connection":"demo"' in captured.err
    assert "backfill page settled" not in captured.err


def test_the_cli_log_level_shows_every_line_on_stderr_and_is_put_back_afterwards(monkeypatch, capsys):
    # given LEDGERLINK_CLI_LOG_LEVEL=INFO
    stdout = io.StringIO()
    _probe_that_logs(monkeypatch, stdout)
    monkeypatch.setenv("LEDGERLINK_CLI_LOG_LEVEL", "info")
    from ledgerlink.observability import Service, get_logger

    before = logging.getLogger(get_logger(Service.HUBSPOT_DEAL_SYNC).name).level
    # when the command runs
    assert cli.main(["probe"]) == 0
    # then the INFO line is on stderr too, and the logger is as it was once the command is over
    assert "backfill page settled" in capsys.readouterr().err
    assert logging.getLogger(get_logger(Service.HUBSPOT_DEAL_SYNC).name).level == before
    get_logger(Service.HUBSPOT_DEAL_SYNC).info("after the command")
    assert "after the command" in stdout.getvalue()


def test_a_logger_left_holding_a_closed_stream_does_not_break_the_command(monkeypatch, capsys):
    # given a flow logger created while another owner had stdout, which has closed it since (as a
    # previous test's capture does)
    closed = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    _probe_that_logs(monkeypatch, closed)
    closed.close()
    # when the command runs
    status = cli.main(["probe"])
    # then it runs and its warning reaches stderr
    assert status == 0
    captured = capsys.readouterr()
    assert "customer match is ambiguous" in captured.err
    assert captured.out == "demo: Invoice 5/5 · finished\n"


def test_a_log_level_that_is_not_one_is_refused_naming_the_variable(monkeypatch, capsys):
    stdout = io.StringIO()
    _probe_that_logs(monkeypatch, stdout)
    monkeypatch.setenv("LEDGERLINK_CLI_LOG_LEVEL", "chatty")
    assert cli.main(["probe"]) == 2
    assert (
        "LEDGERLINK_CLI_LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"
        in capsys.readouterr().err
    )


def test_a_module_logger_created_while_the_command_runs_keeps_to_the_level(monkeypatch, capsys):
    # given a command whose code creates a module's child logger only when it runs (a lazy import),
    # outside Lambda (no POWERTOOLS_SERVICE_NAME), as the QBO OAuth module's logger is
    from aws_lambda_powertools import Logger

    monkeypatch.delenv("POWERTOOLS_SERVICE_NAME", raising=False)

    def register(parser: argparse.ArgumentParser) -> None:
        def run(_args: argparse.Namespace) -> int:
            child = Logger(child=True)
            child.info("QBO access token refreshed")
            child.warning("secret rotation failed")
            return 0

        parser.set_defaults(func=run)

    monkeypatch.setattr(cli, "COMMAND_GROUPS", (cli.CommandGroup("probe", "probe:register", "probe"),))
    monkeypatch.setattr(cli, "_load", lambda _reference: register)
    # when the operator runs it with the default level (WARNING)
    assert cli.main(["probe"]) == 0
    # then the INFO line is not shown anywhere, the WARNING is on stderr and stdout stays empty
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "secret rotation failed" in captured.err
    assert "QBO access token refreshed" not in captured.err
