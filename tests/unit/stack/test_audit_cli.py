"""``ledgerlink audit deal <id>``: a deal's audit trail read from the links table (moto), on the local
stack (a moto server, as ``make run`` has) or in AWS, as a table or JSON."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from ledgerlink import cli
from ledgerlink.audit import AuditStore, Decision
from ledgerlink.cli import audit as audit_cli
from ledgerlink.config import EnvVar, reset_settings_cache
from ledgerlink.configfile import reset_for_tests as reset_deployment_config
from ledgerlink.tables import LINKS, LINKS_OWED_BY_DUE_DATE
from ledgerlink_local.stack.aws import MotoServer
from tests.aws_fixtures import create_tables
from tests.conftest import REPO_ROOT
from tests.unit.test_audit import QUOTED, REVERTED, WON

LOCAL_LINKS = "ledgerlink-local-links"
DEV_LINKS = "ledgerlink-dev-links"
DEAL = QUOTED.deal_id


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No endpoint or LedgerLink settings from the developer's shell; caches forgotten either way."""
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE", "COLUMNS"):
        monkeypatch.delenv(name, raising=False)
    for name in EnvVar:
        monkeypatch.delenv(name.value, raising=False)
    reset_settings_cache()
    reset_deployment_config()
    yield
    reset_settings_cache()
    reset_deployment_config()


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()


def _links_table(endpoint_url: str | None, name: str) -> Any:
    """The links table as the stack creates it (keys, owed-by-due-date index); a DynamoDB client."""
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoint_url, region_name="us-east-1")
    create_tables(dynamodb, [(name, LINKS)], indexes={name: (LINKS_OWED_BY_DUE_DATE,)})
    return dynamodb


@pytest.fixture
def local_links(moto: MotoServer) -> Any:
    """A fresh moto behind the local stack's links table; a DynamoDB client of it."""
    requests.post(moto.endpoint_url + "/moto-api/reset", timeout=10).raise_for_status()
    return _links_table(moto.endpoint_url, LOCAL_LINKS)


@pytest.fixture
def local_stack(tmp_path: Path, moto: MotoServer) -> Path:
    """A state directory describing the running local stack (the part the command reads)."""
    (tmp_path / "local.json").write_text(
        json.dumps({"aws": {"endpoint_url": moto.endpoint_url, "region": "us-east-1"}}), encoding="utf-8"
    )
    return tmp_path


def _run(*arguments: str, out: io.StringIO | None = None) -> tuple[int, str, str]:
    """``ledgerlink audit deal <arguments>``: (status, stdout, stderr)."""
    out = out or io.StringIO()
    err = io.StringIO()
    parser = argparse.ArgumentParser(prog="ledgerlink audit")
    audit_cli.register(parser)
    args = parser.parse_args(["deal", *arguments])
    with contextlib.redirect_stderr(err):
        code = args.func(args, out)
    return code, out.getvalue(), err.getvalue()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# --- the local stack


def test_a_deals_history_prints_as_a_table_oldest_first(
    moto: MotoServer, local_links: Any, local_stack: Path
) -> None:
    # given the flow recorded three decisions about a deal of connection demo (and one about the same
    # deal id in thames)
    store = AuditStore(LOCAL_LINKS, local_links)
    for record in (WON, QUOTED, REVERTED, replace(REVERTED, connection="thames", reason="thames' own")):
        store.record(record)

    # when its trail is asked for on the local stack
    code, out, err = _run(DEAL, "--connection", "demo", "--state-dir", str(local_stack))

    # then each decision is a row, in time order, with its document, stage, numbers/ids and whole reason
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"endpoint: {moto.endpoint_url} (from {local_stack / 'local.json'})",
        f"deal {DEAL} of connection demo ({LOCAL_LINKS}): 3 audit record(s), oldest first",
        "time                      decision  document  stage         estimate no/id  invoice no/id  reason",
        "------------------------  --------  --------  ------------  --------------  -------------  "
        + "-" * 88,
        "2026-12-02T06:30:01.123Z  created   Estimate  contractsent  1001/130        -              "
        "deal is at quote stage contractsent (pipeline default)",
        "2026-12-02T07:00:00.000Z  skipped   -         -             -               -              "
        "the webhook said closedwon but the deal is at appointmentscheduled now: nothing to write",
        "2026-12-02T09:15:44.007Z  created   Invoice   closedwon     1001/130        1002/131       "
        "deal is at won stage closedwon (pipeline default); invoice linked to estimate 1001",
    ]


def test_json_gives_every_field_of_every_record_whole(local_links: Any, local_stack: Path) -> None:
    # given a failure whose reason is long
    failed = replace(
        WON,
        at="2026-12-02T09:20:00.000Z",
        event_id="evt-4",
        decision=Decision.FAILED,
        reason="QBO ignored the link to estimate 1001 (it is Closed): "
        + "the invoice carries no LinkedTxn. " * 20,
    )
    store = AuditStore(LOCAL_LINKS, local_links)
    for record in (QUOTED, failed):
        store.record(record)

    code, out, err = _run(DEAL, "--connection", "demo", "--format", "json", "--state-dir", str(local_stack))

    # then stdout is JSON alone: the records as written, None as null, the reason not cut
    assert (code, err) == (0, "")
    document = json.loads(out)
    assert (document["connection"], document["deal_id"], document["table"]) == ("demo", DEAL, LOCAL_LINKS)
    assert document["records"] == [json.loads(json.dumps(asdict(r))) for r in (QUOTED, failed)]
    assert document["records"][1]["reason"] == failed.reason
    assert document["records"][0]["invoice_id"] is None


def test_a_limit_shows_the_newest_records(local_links: Any, local_stack: Path) -> None:
    store = AuditStore(LOCAL_LINKS, local_links)
    for record in (QUOTED, REVERTED, WON):
        store.record(record)
    code, out, _ = _run(DEAL, "--connection", "demo", "--limit", "1", "--state-dir", str(local_stack))
    assert code == 0
    lines = out.splitlines()
    assert (
        lines[1]
        == f"deal {DEAL} of connection demo ({LOCAL_LINKS}): 1 audit record(s), the newest 1, oldest first"
    )
    assert [line[:24] for line in lines[4:]] == [WON.at]


def test_on_a_terminal_a_long_reason_wraps_in_its_column_and_nothing_is_cut(
    local_links: Any, local_stack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a reason far wider than a 120-column terminal
    reason = " ".join(f"word{index}" for index in range(60))
    AuditStore(LOCAL_LINKS, local_links).record(replace(REVERTED, reason=reason))
    monkeypatch.setenv("COLUMNS", "120")

    code, out, _ = _run(DEAL, "--connection", "demo", "--state-dir", str(local_stack), out=Terminal())

    # then the reason continues on lines of its own under the reason column, every word there
    assert code == 0
    header, _, *rows = out.splitlines()[2:]
    column = header.index("reason")
    assert len(rows) > 1 and all(len(row) <= 120 for row in rows)
    assert all(row[:column].strip() == "" for row in rows[1:])
    assert " ".join(row[column:] for row in rows).split() == reason.split()


def test_an_unknown_deal_says_so_and_exits_0(local_links: Any, local_stack: Path) -> None:
    AuditStore(LOCAL_LINKS, local_links).record(QUOTED)

    code, out, err = _run("999", "--connection", "demo", "--state-dir", str(local_stack))
    assert (code, err) == (0, "")
    assert out.splitlines()[-1] == "no audit records for deal 999 of connection demo"

    # and in JSON, stdout stays JSON (no records) and the sentence goes to stderr
    code, out, err = _run("999", "--connection", "demo", "--format", "json", "--state-dir", str(local_stack))
    assert code == 0 and json.loads(out)["records"] == []
    assert err == "no audit records for deal 999 of connection demo\n"


def test_with_several_connections_one_must_be_named(local_links: Any, local_stack: Path) -> None:
    # given the local stack's two connections, demo and thames
    code, _, err = _run(DEAL, "--state-dir", str(local_stack))
    assert code == 2
    assert err.startswith("ledgerlink audit deal: ")
    assert "local/config/local.toml has several connections: name one with --connection (demo, thames)" in err

    code, _, err = _run(DEAL, "--connection", "londn", "--state-dir", str(local_stack))
    assert code == 2
    assert "no connection 'londn' in" in err and "(connections: demo, thames)" in err


def test_a_missing_links_table_exits_1_with_the_reason(moto: MotoServer, local_stack: Path) -> None:
    requests.post(moto.endpoint_url + "/moto-api/reset", timeout=10).raise_for_status()
    code, _, err = _run(DEAL, "--connection", "demo", "--state-dir", str(local_stack))
    assert code == 1
    assert err == (
        f"ledgerlink audit deal: links table {LOCAL_LINKS}: audit Query failed (ResourceNotFoundException)\n"
    )


def test_output_into_a_pipe_closed_early_ends_quietly(local_links: Any, local_stack: Path) -> None:
    # given a history longer than a pipe holds (about 150 kB of table)
    store = AuditStore(LOCAL_LINKS, local_links)
    for index in range(200):
        store.record(
            replace(
                REVERTED,
                at=f"2026-12-02T07:{index // 60:02d}:{index % 60:02d}.000Z",
                event_id=f"e{index}",
                reason="r" * 600,
            )
        )

    # when it is printed into `| head -1`
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [
            sys.executable,
            "-m",
            "ledgerlink.cli",
            "audit",
            "deal",
            DEAL,
            "--connection",
            "demo",
            "--state-dir",
            str(local_stack),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=REPO_ROOT,
    )
    assert process.stdout is not None and process.stderr is not None
    first = process.stdout.readline()
    process.stdout.close()
    error = process.stderr.read()
    status = process.wait(timeout=60)

    # then it printed its first line, and stopped without a word or a failure status
    assert first.startswith(b"endpoint: ")
    assert (status, error) == (0, b"")


# --- AWS


def _deployed(monkeypatch: pytest.MonkeyPatch, *, config_file: bool = True) -> None:
    """The variables an operator sets to read a deployment's trail: dev's links table and file."""
    monkeypatch.setenv(EnvVar.LINKS_TABLE_NAME.value, DEV_LINKS)
    if config_file:
        monkeypatch.setenv(EnvVar.CONFIG_FILE.value, str(REPO_ROOT / "infra" / "config" / "dev.toml"))


def test_with_aws_the_deployments_table_and_only_connection_are_used(
    local_stack: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given dev's links table in AWS holding a record of its one connection, main; a local stack runs too
    _deployed(monkeypatch)
    with mock_aws():
        AuditStore(DEV_LINKS, _links_table(None, DEV_LINKS)).record(replace(QUOTED, connection="main"))

        # when the trail is asked for in AWS, no connection named
        code, out, err = _run(DEAL, "--aws", "--state-dir", str(local_stack))

    # then it read dev's table, for main
    assert (code, err) == (0, "")
    assert out.splitlines()[:2] == [
        "endpoint: AWS (from AWS)",
        f"deal {DEAL} of connection main ({DEV_LINKS}): 1 audit record(s), oldest first",
    ]


def test_an_endpoint_url_reads_the_table_named_in_the_environment(
    moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    requests.post(moto.endpoint_url + "/moto-api/reset", timeout=10).raise_for_status()
    _deployed(monkeypatch)
    AuditStore(DEV_LINKS, _links_table(moto.endpoint_url, DEV_LINKS)).record(replace(WON, connection="main"))
    code, out, _ = _run(DEAL, "--endpoint-url", moto.endpoint_url, "--state-dir", str(tmp_path))
    assert code == 0
    assert out.splitlines()[0] == f"endpoint: {moto.endpoint_url} (from --endpoint-url)"
    assert "1002/131" in out.splitlines()[-1]


def test_without_a_configuration_file_the_connection_is_named_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _deployed(monkeypatch, config_file=False)
    with mock_aws():
        AuditStore(DEV_LINKS, _links_table(None, DEV_LINKS)).record(QUOTED)
        refused = _run(DEAL, "--aws", "--state-dir", str(tmp_path))
        named = _run(DEAL, "--aws", "--connection", "demo", "--state-dir", str(tmp_path))
    assert (
        refused[0] == 2
        and "name the connection with --connection, or set LEDGERLINK_CONFIG_FILE" in refused[2]
        and "ledgerlink-config.toml: $: cannot be read" in refused[2]
    )
    assert named[0] == 0 and "1001/130" in named[1]


def test_with_aws_but_no_table_named_the_command_says_what_to_set(tmp_path: Path) -> None:
    code, _, err = _run(DEAL, "--aws", "--state-dir", str(tmp_path))
    assert code == 1
    assert err == (
        "ledgerlink audit deal: no links table (environment variable LEDGERLINK_LINKS_TABLE_NAME is required "
        "but not set); set LEDGERLINK_LINKS_TABLE_NAME (ledgerlink-<stage>-links), or run it against the "
        "local stack\n"
    )


# --- the entry point


def test_the_group_is_registered_and_bad_usage_exits_2(
    local_links: Any, local_stack: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    AuditStore(LOCAL_LINKS, local_links).record(QUOTED)
    assert cli.main(["audit", "deal", DEAL, "--connection", "demo", "--state-dir", str(local_stack)]) == 0
    assert "1001/130" in capsys.readouterr().out
    for wrong in (["--limit", "0"], ["--format", "csv"], ["--aws", "--endpoint-url", "http://127.0.0.1:9"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["audit", "deal", DEAL, *wrong])
        assert exit_info.value.code == 2


def test_help_imports_neither_the_local_stack_nor_moto() -> None:
    probe = (
        "import sys\nfrom ledgerlink.cli import main\n"
        "try:\n    main(['audit', 'deal', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('ledgerlink_local', 'moto'))))"
    )
    output = subprocess.run(  # noqa: S603 - our own interpreter and a literal program
        [sys.executable, "-c", probe], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60, check=True
    ).stdout
    assert "--connection NAME" in output
    assert output.strip().splitlines()[-1] == "[]"
