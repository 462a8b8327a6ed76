"""``ledgerlink followups sweep``: its arguments, where it sweeps (the local stack or AWS) and with which
settings, and what it prints. The sweep itself (``ledgerlink.followups.sweep.run_sweep``) is the follow-up
flow's; here a stand-in takes its place and records what the command hands it."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra import topology as topo
from ledgerlink import cli
from ledgerlink.cli import followups
from ledgerlink.config import EnvVar, Settings, reset_settings_cache
from ledgerlink.configfile import DeploymentConfig
from ledgerlink.configfile import reset_for_tests as reset_deployment_config
from tests.conftest import REPO_ROOT

LOCAL_ENDPOINT = "http://127.0.0.1:4566"
# What `make run` writes to <state dir>/local.json (the parts the command reads).
LOCAL_JSON = {
    "gateway_url": "http://127.0.0.1:4010",
    "qbo": {
        "base_url": "http://127.0.0.1:4011",
        "token_url": "http://127.0.0.1:4011/oauth2/v1/tokens/bearer",
    },
    "hubspot": {"base_url": "http://127.0.0.1:4012"},
    "graph": {
        "base_url": "http://127.0.0.1:4013/v1.0",
        "token_url": "http://127.0.0.1:4013/4d2c9a5e-0000-4000-8000-00000000abcd/oauth2/v2.0/token",
        "tenant_id": "4d2c9a5e-0000-4000-8000-00000000abcd",
    },
    "aws": {"endpoint_url": LOCAL_ENDPOINT, "region": "us-east-1"},
}


@dataclass
class Report:
    per_connection: dict[str, int]

    def lines(self) -> list[str]:
        return [f"  {name}: {count} follow-up(s) due" for name, count in sorted(self.per_connection.items())]


@dataclass
class StandInSweep:
    """Takes run_sweep's place: records each call, reports each connection's line as progress (unless
    ``quiet``), answers ``report`` (or raises ``error``)."""

    report: Report = field(default_factory=lambda: Report({"demo": 2, "thames": 1}))
    error: Exception | None = None
    quiet: bool = False
    calls: list[dict[str, Any]] = field(default_factory=list)

    def __call__(
        self,
        settings: Settings,
        config: DeploymentConfig,
        *,
        dynamodb: Any,
        events: Any,
        connection: str | None = None,
        now: datetime | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> Report:
        self.calls.append(
            {
                "settings": settings,
                "config": config,
                "dynamodb": dynamodb,
                "events": events,
                "connection": connection,
                "now": now,
            }
        )
        if self.error is not None:
            raise self.error
        if progress is not None and not self.quiet:
            for line in self.report.lines():
                progress(line)
        return self.report


@pytest.fixture
def sweep(monkeypatch: pytest.MonkeyPatch) -> StandInSweep:
    stand_in = StandInSweep()
    monkeypatch.setattr(followups, "load_run_sweep", lambda: stand_in)
    return stand_in


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Any:
    """No endpoint or LedgerLink settings from the developer's shell; caches forgotten either way."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_EVENTS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    for name in EnvVar:
        monkeypatch.delenv(name.value, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    reset_settings_cache()
    reset_deployment_config()
    yield
    reset_settings_cache()
    reset_deployment_config()


@pytest.fixture
def local_stack(tmp_path: Path) -> Path:
    """A state directory describing a running local stack."""
    (tmp_path / "local.json").write_text(json.dumps(LOCAL_JSON), encoding="utf-8")
    return tmp_path


def _deployed_dev(monkeypatch: pytest.MonkeyPatch) -> None:
    """The dev Teams invite's variables in this process, as an operator sets them for AWS."""
    topology = topo.build_topology(
        topo.environment_from_cdk_json("dev"), account="123456789012", region="us-east-1"
    )
    for name, value in topology.function("teams_invite").environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(EnvVar.CONFIG_FILE.value, str(REPO_ROOT / "infra" / "config" / "dev.toml"))


def _run(*arguments: str) -> tuple[int, str, str]:
    """``ledgerlink followups sweep <arguments>`` through the real entry point: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    parser = argparse.ArgumentParser(prog="ledgerlink followups")
    followups.register(parser)
    args = parser.parse_args(["sweep", *arguments])
    with contextlib.redirect_stderr(err):
        code = args.func(args, out)
    return code, out.getvalue(), err.getvalue()


# --- against the local stack


def test_on_the_local_stack_the_sweep_runs_with_the_local_teams_invites_settings(
    sweep: StandInSweep, local_stack: Path
) -> None:
    # when the sweep is asked for with the local stack's state directory
    code, out, err = _run("--state-dir", str(local_stack))

    # then it ran once, for every connection, with the local Teams invite's own settings
    assert (code, err) == (0, "")
    (call,) = sweep.calls
    settings: Settings = call["settings"]
    assert (settings.stage, settings.links_table_name, settings.event_bus_name) == (
        "local",
        "ledgerlink-local-links",
        "ledgerlink-local-events",
    )
    assert settings.dead_letter_queue_name == "ledgerlink-local-teams-invite-dlq"
    assert settings.graph_base_url == LOCAL_JSON["graph"]["base_url"]
    assert Path(call["config"].source) == REPO_ROOT / "local" / "config" / "local.toml"
    assert call["connection"] is None and call["now"] is None
    # and its DynamoDB and EventBridge clients talk to the local stack's moto
    assert call["dynamodb"].meta.endpoint_url == call["events"].meta.endpoint_url == LOCAL_ENDPOINT
    assert call["dynamodb"].meta.region_name == "us-east-1"
    # and it said where it swept, what, and how many followup.due it published
    assert out.splitlines() == [
        f"endpoint: {LOCAL_ENDPOINT} (from {local_stack / 'local.json'})",
        f"sweeping demo, thames with the settings of the local stack ({local_stack / 'local.json'}): owed "
        "invoices from ledgerlink-local-links, followup.due to ledgerlink-local-events",
        "  demo: 2 follow-up(s) due",
        "  thames: 1 follow-up(s) due",
        "swept: 3 followup.due published (demo 2, thames 1)",
    ]


def test_a_sweep_that_reports_no_progress_has_its_lines_printed_at_the_end(
    sweep: StandInSweep, local_stack: Path
) -> None:
    sweep.quiet = True
    code, out, _ = _run("--state-dir", str(local_stack))
    assert code == 0
    assert out.splitlines()[-3:] == [
        "  demo: 2 follow-up(s) due",
        "  thames: 1 follow-up(s) due",
        "swept: 3 followup.due published (demo 2, thames 1)",
    ]


def test_one_connection_is_swept_when_named(sweep: StandInSweep, local_stack: Path) -> None:
    sweep.report = Report({"thames": 0})
    code, out, _ = _run("--connection", "thames", "--state-dir", str(local_stack))
    assert code == 0
    assert [call["connection"] for call in sweep.calls] == ["thames"]
    assert "sweeping thames with" in out
    assert out.splitlines()[-1] == "swept: 0 followup.due published (thames 0)"


def test_an_unknown_connection_is_refused_naming_the_known_ones_and_nothing_is_swept(
    sweep: StandInSweep, local_stack: Path
) -> None:
    code, _, err = _run("--connection", "londn", "--state-dir", str(local_stack))
    assert code == 1
    assert "no connection 'londn' in" in err and "local.toml (connections: demo, thames)" in err
    assert sweep.calls == []


def test_a_broken_local_stack_description_is_refused_with_the_reason(
    sweep: StandInSweep, tmp_path: Path
) -> None:
    (tmp_path / "local.json").write_text(json.dumps({"aws": LOCAL_JSON["aws"]}), encoding="utf-8")
    code, _, err = _run("--state-dir", str(tmp_path))
    assert code == 1
    assert err.startswith("ledgerlink followups sweep: the local stack's settings are unusable")
    assert sweep.calls == []


# --- against AWS


def test_with_aws_the_local_stack_is_ignored_and_the_deployments_settings_are_used(
    sweep: StandInSweep, local_stack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the dev Teams invite's variables in the environment, and a local stack running too
    _deployed_dev(monkeypatch)
    # when the sweep is asked for in AWS
    code, out, err = _run("--aws", "--state-dir", str(local_stack))
    # then it ran with dev's names and configuration file, against AWS's own endpoints
    assert (code, err) == (0, "")
    (call,) = sweep.calls
    assert (call["settings"].stage, call["settings"].links_table_name) == ("dev", "ledgerlink-dev-links")
    assert [c.name for c in call["config"].connections] == ["main"]
    assert call["dynamodb"].meta.endpoint_url == "https://dynamodb.us-east-1.amazonaws.com"
    assert call["events"].meta.endpoint_url == "https://events.us-east-1.amazonaws.com"
    assert out.splitlines()[0] == "endpoint: AWS (from AWS)"
    assert "with the settings of stage dev (" in out


def test_without_a_local_stack_the_sweep_goes_to_aws(
    sweep: StandInSweep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deployed_dev(monkeypatch)
    code, out, _ = _run("--state-dir", str(tmp_path))
    assert code == 0
    assert out.splitlines()[0] == "endpoint: AWS (from AWS)"
    assert sweep.calls[0]["settings"].stage == "dev"


def test_an_endpoint_url_is_used_for_both_clients(
    sweep: StandInSweep, local_stack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deployed_dev(monkeypatch)
    code, out, _ = _run(
        "--endpoint-url", "http://127.0.0.1:5999", "--region", "eu-west-1", "--state-dir", str(local_stack)
    )
    assert code == 0
    (call,) = sweep.calls
    assert call["dynamodb"].meta.endpoint_url == call["events"].meta.endpoint_url == "http://127.0.0.1:5999"
    assert call["events"].meta.region_name == "eu-west-1"
    assert out.splitlines()[0] == "endpoint: http://127.0.0.1:5999 (from --endpoint-url)"


def test_boto3s_own_endpoint_setting_for_dynamodb_counts_as_configured(
    sweep: StandInSweep, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given AWS_ENDPOINT_URL_DYNAMODB (boto3 applies it by itself) and a local stack description
    _deployed_dev(monkeypatch)
    (tmp_path / "local.json").write_text(json.dumps(LOCAL_JSON), encoding="utf-8")
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:6001")
    code, out, _ = _run("--state-dir", str(tmp_path))
    # then the command leaves the endpoint to boto3 and does not take the local stack's
    assert code == 0
    assert "AWS_ENDPOINT_URL / AWS config (http://127.0.0.1:6001)" in out.splitlines()[0]
    assert sweep.calls[0]["dynamodb"].meta.endpoint_url == "http://127.0.0.1:6001"


def test_with_aws_but_no_deployment_settings_the_command_says_what_to_set(
    sweep: StandInSweep, tmp_path: Path
) -> None:
    code, _, err = _run("--aws", "--state-dir", str(tmp_path))
    assert code == 1
    assert "no deployment settings (environment variable LEDGERLINK_EVENT_BUS_NAME is required" in err
    assert "LEDGERLINK_CONFIG_FILE" in err
    assert sweep.calls == []


def test_aws_and_an_endpoint_url_together_are_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["followups", "sweep", "--aws", "--endpoint-url", "http://127.0.0.1:5999"])
    assert exit_info.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


# --- failures of the sweep itself


def test_a_sweep_that_fails_exits_1_with_the_reason_and_no_traceback(
    sweep: StandInSweep, local_stack: Path
) -> None:
    sweep.error = ClientError(
        {"Error": {"Code": "ResourceNotFoundException", "Message": "Requested resource not found"}}, "Query"
    )
    code, out, err = _run("--state-dir", str(local_stack))
    assert code == 1
    assert err == (
        "ledgerlink followups sweep: ClientError: An error occurred (ResourceNotFoundException) when calling "
        "the Query operation: Requested resource not found\n"
    )
    assert "Traceback" not in err and "swept:" not in out


# --- the entry point


def test_the_group_is_registered_and_runs_the_command(
    sweep: StandInSweep, local_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["followups", "sweep", "--state-dir", str(local_stack)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "swept: 3 followup.due published (demo 2, thames 1)"
    assert len(sweep.calls) == 1


def test_the_sweep_and_the_local_stack_are_imported_only_when_the_command_runs() -> None:
    # given a fresh interpreter running `ledgerlink followups sweep --help`
    probe = (
        "import sys\nfrom ledgerlink.cli import main\n"
        "try:\n    main(['followups', 'sweep', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('ledgerlink.followups', 'ledgerlink_local', 'moto'))))"
    )
    output = subprocess.run(  # noqa: S603 - our own interpreter and a literal program
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=True
    ).stdout
    # then it printed the command's help, and neither the flow, the local stack nor moto was imported
    assert "--connection NAME" in output
    assert output.strip().splitlines()[-1] == "[]"
