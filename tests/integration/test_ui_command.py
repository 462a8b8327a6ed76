"""``ledgerlink ui`` as the operator runs it against AWS (moto standing in): the links table named by
``LEDGERLINK_LINKS_TABLE_NAME``, the connections by ``--connection``, the endpoint by ``--endpoint-url``;
it serves on 127.0.0.1 until stopped, and says what to pass when something is missing."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from ledgerlink.cli import main
from ledgerlink.cli.ui import UiServer, run_ui_command
from ledgerlink.history import Category, Flow, HistoryRow, HistoryStore, RecordOutcome
from ledgerlink.tables import LINKS
from tests.aws_fixtures import create_tables
from tests.browser import wait_until

TABLE = "ledgerlink-uicmd-links"


@pytest.fixture
def moto_endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _args(endpoint: str, *extra: str) -> Any:
    """The command's parsed arguments, as ``ledgerlink ui ...`` gives them."""
    import argparse

    from ledgerlink.cli.ui import register

    parser = argparse.ArgumentParser()
    register(parser)
    return parser.parse_args(["--endpoint-url", endpoint, "--port", "0", "--no-browser", *extra])


def test_it_serves_the_history_of_the_named_connection_until_stopped(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a links table in "AWS" with one synced invoice of connection demo
    dynamodb = boto3.client("dynamodb", endpoint_url=moto_endpoint)
    create_tables(dynamodb, [(TABLE, LINKS)])
    HistoryStore(TABLE, dynamodb).write(
        [
            HistoryRow(
                connection="demo",
                flow=Flow.DEAL_SYNC,
                at="2026-12-02T06:30:01.000Z",
                message_id="m-1",
                receive_count=1,
                outcome=RecordOutcome.WRITTEN,
                category=Category.NONE,
                reason="",
                correlation_id="corr-1",
                event_id="e-1",
                source_entity="Invoice",
                source_id="130",
                source_number="1006",
            )
        ]
    )
    monkeypatch.setenv("LEDGERLINK_LINKS_TABLE_NAME", TABLE)
    started: list[UiServer] = []
    out = io.StringIO()
    # when the operator runs ledgerlink ui --connection demo
    command = threading.Thread(
        target=lambda: run_ui_command(
            _args(moto_endpoint, "--connection", "demo"), out, ready=started.append
        ),
        daemon=True,
    )
    command.start()
    server = wait_until(lambda: started[0] if started else None, "the server to listen")
    try:
        # then the page's status names demo, healthy, from that table
        status = requests.get(f"{server.url}api/status", timeout=10).json()
        assert [(c["connection"], c["state"]) for c in status["connections"]] == [("demo", "healthy")]
        assert f"{server.url} reading {moto_endpoint}" in out.getvalue()
    finally:
        server.shutdown()
    command.join(timeout=10)
    assert not command.is_alive()


def test_without_connections_or_a_table_it_says_what_to_pass(
    moto_endpoint: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("LEDGERLINK_LINKS_TABLE_NAME", raising=False)
    assert main(["ui", "--endpoint-url", moto_endpoint, "--no-browser", "--port", "0"]) == 1
    assert "LEDGERLINK_LINKS_TABLE_NAME" in capsys.readouterr().err
    monkeypatch.setenv("LEDGERLINK_LINKS_TABLE_NAME", TABLE)
    monkeypatch.delenv("LEDGERLINK_CONFIG_FILE", raising=False)
    assert main(["ui", "--endpoint-url", moto_endpoint, "--no-browser", "--port", "0"]) == 2
    assert "--connection" in capsys.readouterr().err
