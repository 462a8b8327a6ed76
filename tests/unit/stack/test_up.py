"""What ``ledgerlink local up`` decides before anything runs: options, local.json, secrets, conflicts."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledgerlink_local.stack.hops import read_hops
from ledgerlink_local.stack.settings import LocalSettings, LocalSettingsError, Ports, resolve
from ledgerlink_local.stack.status import summarise
from ledgerlink_local.stack.up import (
    LOCAL_JSON_KEYS,
    ClosedPipeStops,
    UpError,
    fresh_state_dir,
    hint_lines,
    local_description,
    previous_run_line,
    refuse_if_running,
    secret_values,
    vendor_urls,
    write_local_json,
)
from tests.conftest import FIXTURES, REPO_ROOT

RECORDED_EVENT_LOG = FIXTURES / "stack" / "events.jsonl"

CREDENTIALS = {
    "qbo": {
        "base_url": "http://127.0.0.1:4011",
        "token_url": "http://127.0.0.1:4011/oauth2/v1/tokens/bearer",
        "realm_id": "9341453908059321",
        "client_id": "qbo-client",
        "client_secret": "qbo-secret",
        "refresh_token": "qbo-person-grant",
        "verifier_token": "qbo-verifier",
        "app_refresh_token": "qbo-app-grant",
    },
    "hubspot": {
        "base_url": "http://127.0.0.1:4012",
        "access_token": "hs-token",
        "client_secret": "hs-secret",
        "portal_id": "1",
    },
    "graph": {
        "base_url": "http://127.0.0.1:4013/v1.0",
        "token_url": "http://127.0.0.1:4013/4f1c2a8e-7b3d-4c59-9e21-6a0d5b8c3f17/oauth2/v2.0/token",
        "tenant_id": "4f1c2a8e-7b3d-4c59-9e21-6a0d5b8c3f17",
        "client_id": "graph-client",
        "client_secret": "graph-secret",
        "calendar_user": "finance@example.test",
    },
}


def test_flags_win_over_environment_which_wins_over_defaults():
    environ = {
        "LEDGERLINK_LOCAL_GATEWAY_PORT": "5010",
        "LEDGERLINK_LOCAL_AWS_PORT": "5566",
        "LEDGERLINK_DEMO": "0",
    }
    settings = resolve(gateway_port=6010, environ=environ)
    assert (settings.ports.gateway, settings.ports.aws, settings.ports.qbo) == (6010, 5566, 4011)
    assert settings.demo is False
    assert resolve(environ={}).demo is True
    assert resolve(state_dir="/tmp/other", environ={}).local_json == Path("/tmp/other/local.json")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LEDGERLINK_LOCAL_QBO_PORT": "http"}, "LEDGERLINK_LOCAL_QBO_PORT must be a port number"),
        ({"LEDGERLINK_LOCAL_AWS_PORT": "70000"}, "between 0 and 65535"),
        ({"LEDGERLINK_DEMO": "maybe"}, "LEDGERLINK_DEMO must be 1/0"),
        ({"LEDGERLINK_LOCAL_KEEP_RUNS": "all"}, "LEDGERLINK_LOCAL_KEEP_RUNS must be a whole number"),
        ({"LEDGERLINK_LOCAL_KEEP_RUNS": "-1"}, "LEDGERLINK_LOCAL_KEEP_RUNS must be 0 or more"),
        ({"LEDGERLINK_LOCAL_SWEEP_SECONDS": "daily"}, "LEDGERLINK_LOCAL_SWEEP_SECONDS must be a number"),
        ({"LEDGERLINK_LOCAL_SWEEP_SECONDS": "0"}, "LEDGERLINK_LOCAL_SWEEP_SECONDS must be more than 0"),
        ({"LEDGERLINK_LOCAL_SWEEP_SECONDS": "nan"}, "LEDGERLINK_LOCAL_SWEEP_SECONDS must be more than 0"),
    ],
)
def test_a_bad_option_names_the_variable(environ, message):
    with pytest.raises(LocalSettingsError, match=message):
        resolve(environ=environ)


def test_the_sweep_runs_on_its_deployed_schedule_unless_told_to_every_few_seconds():
    # without the option the stack fires the sweep on the topology's schedule
    assert resolve(environ={}).sweep_seconds is None
    # with it, every so many seconds (fractions too); the flag wins over the variable
    assert resolve(environ={"LEDGERLINK_LOCAL_SWEEP_SECONDS": "2.5"}).sweep_seconds == 2.5
    assert resolve(sweep_seconds=30, environ={"LEDGERLINK_LOCAL_SWEEP_SECONDS": "2.5"}).sweep_seconds == 30
    with pytest.raises(LocalSettingsError, match="--sweep-seconds must be more than 0"):
        resolve(sweep_seconds=-1, environ={})


def test_the_reconciliation_runs_on_its_deployed_schedule_unless_told_to_every_few_seconds():
    assert resolve(environ={}).reconcile_seconds is None
    assert resolve(environ={"LEDGERLINK_LOCAL_RECONCILE_SECONDS": "5"}).reconcile_seconds == 5
    assert (
        resolve(reconcile_seconds=30, environ={"LEDGERLINK_LOCAL_RECONCILE_SECONDS": "5"}).reconcile_seconds
        == 30
    )
    with pytest.raises(LocalSettingsError, match="--reconcile-seconds must be more than 0"):
        resolve(reconcile_seconds=0, environ={})


SECOND = {
    "qbo": {
        **CREDENTIALS["qbo"],
        "realm_id": "4620816365287349190",
        "refresh_token": "thames-person-grant",
        "app_refresh_token": "thames-app-grant",
    },
    "hubspot": {
        **CREDENTIALS["hubspot"],
        "access_token": "hs-token-2",
        "client_secret": "hs-secret-2",
        "portal_id": "2",
    },
    "graph": CREDENTIALS["graph"],
}
CONNECTIONS = {"demo": CREDENTIALS, "thames": SECOND}


def test_local_json_has_exactly_the_documented_keys_and_only_the_owner_reads_it(tmp_path):
    description = local_description(
        "http://127.0.0.1:4010", CREDENTIALS, "http://127.0.0.1:4566", "us-east-1", CONNECTIONS
    )
    write_local_json(tmp_path / "local.json", description)
    written = json.loads((tmp_path / "local.json").read_text())
    assert list(written) == ["gateway_url", "qbo", "hubspot", "graph", "aws", "connections"]
    for section, keys in LOCAL_JSON_KEYS.items():
        assert tuple(written[section]) == keys
    assert written["aws"] == {"endpoint_url": "http://127.0.0.1:4566", "region": "us-east-1"}
    # one object per connection: its name and the same sections, with the same keys
    assert [c["name"] for c in written["connections"]] == ["demo", "thames"]
    for connection in written["connections"]:
        assert list(connection) == ["name", "qbo", "hubspot", "graph"]
        for section in ("qbo", "hubspot", "graph"):
            assert tuple(connection[section]) == LOCAL_JSON_KEYS[section]
    assert written["connections"][1]["qbo"]["realm_id"] == "4620816365287349190"
    assert written["connections"][1]["hubspot"]["portal_id"] == "2"
    # the refresh tokens there are the person's own grants, never the app's
    assert [c["qbo"]["refresh_token"] for c in written["connections"]] == [
        "qbo-person-grant",
        "thames-person-grant",
    ]
    assert "app-grant" not in (tmp_path / "local.json").read_text()
    assert stat.S_IMODE(os.stat(tmp_path / "local.json").st_mode) == 0o600


def test_secrets_hold_what_the_functions_read():
    values = {key: json.loads(value) for key, value in secret_values(CREDENTIALS, CONNECTIONS).items()}
    assert values["qbo-webhook"] == {"verifier_token": "qbo-verifier"}
    # each connection of local/config/local.toml gets its own secrets, named <connection>:<kind>,
    # from its own company and portal; the QBO secret holds the app's grant
    assert values["demo:qbo-oauth"] == {
        "client_id": "qbo-client",
        "client_secret": "qbo-secret",
        "refresh_token": "qbo-app-grant",
        "realm_id": "9341453908059321",
    }
    assert values["thames:qbo-oauth"]["refresh_token"] == "thames-app-grant"
    assert values["thames:qbo-oauth"]["realm_id"] == "4620816365287349190"
    assert values["demo:hubspot"]["access_token"] == "hs-token"
    assert (values["thames:hubspot"]["access_token"], values["thames:hubspot"]["portal_id"]) == (
        "hs-token-2",
        "2",
    )
    assert (
        values["demo:graph"]["tenant_id"]
        == values["thames:graph"]["tenant_id"]
        == CREDENTIALS["graph"]["tenant_id"]
    )


def test_each_connections_hubspot_secret_holds_its_apps_client_secret_for_the_webhook_signatures():
    values = {key: json.loads(value) for key, value in secret_values(CREDENTIALS, CONNECTIONS).items()}
    # the HubSpot ingest verifies each portal's webhooks with its own app's client secret
    assert (values["demo:hubspot"]["client_secret"], values["thames:hubspot"]["client_secret"]) == (
        "hs-secret",
        "hs-secret-2",
    )


def test_only_the_function_behind_the_hubspot_route_is_told_the_gateways_url_of_it():
    from ledgerlink_local.stack.wiring import gateway_variables, local_topology

    topology = local_topology(vendor_urls(CREDENTIALS))
    assert gateway_variables(topology, "hubspot_ingest", "http://127.0.0.1:4010/") == {
        "LEDGERLINK_HUBSPOT_WEBHOOK_URL": "http://127.0.0.1:4010/v1/webhooks/hubspot"
    }
    for function in topology.functions:
        if function.key != "hubspot_ingest":
            assert gateway_variables(topology, function.key, "http://127.0.0.1:4010") == {}, function.key


def test_the_graph_token_url_keeps_the_tenant_placeholder_of_the_configuration():
    urls = vendor_urls(CREDENTIALS)
    assert urls.graph_token_url == "http://127.0.0.1:4013/{tenant}/oauth2/v2.0/token"
    assert urls.qbo_token_url == CREDENTIALS["qbo"]["token_url"]


def test_a_second_stack_on_the_same_state_directory_is_refused(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        (tmp_path / "local.json").write_text(
            json.dumps({"aws": {"endpoint_url": f"http://127.0.0.1:{port}"}})
        )
        with pytest.raises(UpError, match="already runs with state directory"):
            refuse_if_running(tmp_path / "local.json")
    finally:
        listener.close()
    # once that stack is gone, its leftover description is no obstacle
    refuse_if_running(tmp_path / "local.json")


# --- the previous runs' logs


def _settings(state_dir: Path, keep_runs: int) -> LocalSettings:
    return LocalSettings(
        ports=Ports(gateway=0, aws=0, qbo=0, hubspot=0, graph=0),
        state_dir=state_dir,
        demo=False,
        keep_runs=keep_runs,
    )


def _run_writes_logs(settings: LocalSettings, name: str) -> None:
    """What a run leaves behind: its hop log and a function's log (named after the run)."""
    shutil.copy(RECORDED_EVENT_LOG, settings.event_log)
    settings.log_dir.mkdir(exist_ok=True)
    (settings.log_dir / "qbo_ingest.log").write_text(f"{name}\n")


def _start(settings: LocalSettings, hour: int) -> Path | None:
    return fresh_state_dir(settings, now=datetime(2026, 3, 10, hour, 0, 0, tzinfo=UTC))


def test_a_restart_moves_the_previous_runs_logs_aside_and_keeps_the_newest_runs(tmp_path):
    settings = _settings(tmp_path, keep_runs=2)
    # given three runs, started at 09:00, 10:00 and 11:00, each leaving its logs
    assert _start(settings, 9) is None  # a fresh state directory: nothing to move
    _run_writes_logs(settings, "run at 9")
    first = _start(settings, 10)
    _run_writes_logs(settings, "run at 10")
    second = _start(settings, 11)
    _run_writes_logs(settings, "run at 11")
    # when the stack starts a fourth time
    third = _start(settings, 12)
    # then each start moved the run before it to previous/<its start>, and only the newest 2 are left
    assert (first, second, third) == (
        tmp_path / "previous" / "20260310T090000Z",
        tmp_path / "previous" / "20260310T100000Z",
        tmp_path / "previous" / "20260310T110000Z",
    )
    assert sorted(path.name for path in (tmp_path / "previous").iterdir()) == [
        "20260310T100000Z",
        "20260310T110000Z",
    ]
    assert second is not None and third is not None
    assert (second / "logs" / "qbo_ingest.log").read_text() == "run at 10\n"
    assert (third / "logs" / "qbo_ingest.log").read_text() == "run at 11\n"
    assert (third / "events.jsonl").read_bytes() == RECORDED_EVENT_LOG.read_bytes()
    # and the current run starts with no hop log and no function logs: status sees only this run
    assert not settings.event_log.exists() and not settings.log_dir.exists()
    assert summarise(read_hops(settings.event_log)) == ([], [])
    assert summarise(read_hops(third / "events.jsonl")) == summarise(read_hops(RECORDED_EVENT_LOG))


def test_a_run_that_left_no_start_note_is_named_by_its_last_log_and_same_second_runs_both_stay(tmp_path):
    settings = _settings(tmp_path, keep_runs=5)
    # given logs from before runs noted their start, last written at 2026-03-10 08:30:00 UTC
    _run_writes_logs(settings, "old run")
    last_write = datetime(2026, 3, 10, 8, 30, 0, tzinfo=UTC).timestamp()
    for path in (settings.event_log, settings.log_dir / "qbo_ingest.log"):
        os.utime(path, (last_write, last_write))
    # and a directory in previous/ that rotation did not make
    (tmp_path / "previous" / "notes").mkdir(parents=True)
    assert _start(settings, 9) == tmp_path / "previous" / "20260310T083000Z"
    # when two runs start within the same second
    _run_writes_logs(settings, "run at 9")
    assert _start(settings, 9) == tmp_path / "previous" / "20260310T090000Z"
    _run_writes_logs(settings, "run at 9 again")
    assert _start(settings, 9) == tmp_path / "previous" / "20260310T090000Z-2"
    # then nothing is lost and what rotation did not make is left alone
    assert (tmp_path / "previous" / "notes").is_dir()
    assert (tmp_path / "previous" / "20260310T090000Z-2" / "logs" / "qbo_ingest.log").read_text() == (
        "run at 9 again\n"
    )


def test_with_no_runs_kept_a_restart_deletes_the_previous_runs_logs(tmp_path):
    settings = _settings(tmp_path, keep_runs=0)
    _start(settings, 9)
    _run_writes_logs(settings, "run at 9")
    assert _start(settings, 10) is None
    assert not settings.event_log.exists() and not settings.log_dir.exists()
    assert list((tmp_path / "previous").iterdir()) == []


def test_the_summary_says_where_the_previous_runs_logs_went(tmp_path):
    settings = _settings(tmp_path / ".ledgerlink", keep_runs=5)
    moved = tmp_path / ".ledgerlink" / "previous" / "20260310T090000Z"
    assert previous_run_line(settings, moved) == (
        f"{moved}/ (the previous run's hops and function logs; the last 5 runs are kept)"
    )
    assert "no logs from a previous run" in previous_run_line(settings, None)
    assert "not kept" in previous_run_line(_settings(tmp_path, keep_runs=0), None)
    assert resolve(environ={}).keep_runs == 5
    assert resolve(environ={"LEDGERLINK_LOCAL_KEEP_RUNS": "2"}).keep_runs == 2


def test_the_summarys_hints_carry_the_state_directory_the_stack_was_started_with(tmp_path, monkeypatch):
    # given a stack started with --state-dir (or LEDGERLINK_LOCAL_STATE_DIR) somewhere of its own
    monkeypatch.chdir(REPO_ROOT)
    elsewhere = tmp_path / "stack b"
    # when the summary suggests the next commands
    (hint,) = hint_lines(_settings(elsewhere, keep_runs=5))
    # then each carries that state directory, quoted for the shell, so pasting it finds this stack
    assert hint == (
        f"  inspect    ledgerlink local status --state-dir '{elsewhere}'   |   "
        f"replay: ledgerlink dlq replay <queue> --state-dir '{elsewhere}'"
    )


def test_the_summarys_hints_need_no_flag_for_the_checkouts_own_state_directory(monkeypatch):
    # given a stack started with the default state directory (found from the checkout's root)
    monkeypatch.chdir(REPO_ROOT / "docs")
    settings = _settings(REPO_ROOT / ".ledgerlink", keep_runs=5)
    # then its hints are the plain commands, which find it by themselves
    assert hint_lines(settings) == [
        "  inspect    ledgerlink local status   |   replay: ledgerlink dlq replay <queue>"
    ]


class _ReaderGone(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


def test_a_closed_console_pipe_stops_the_stack_and_fails_no_thread():
    # given `make run | head`, the reader gone
    stop = threading.Event()
    console = ClosedPipeStops(_ReaderGone(), stop)
    # when a thread of the stack prints a line (a hop, a record line, the demo)
    console.write("11:47:15  demo     Invoice 1001 ...\n")
    console.flush()
    # then nothing fails, the stack is told to stop, and what follows is dropped
    assert stop.is_set() and console.closed_pipe
    assert console.write("more\n") == len("more\n")
