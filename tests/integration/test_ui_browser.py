"""``ledgerlink ui`` in a real headless Chromium: the page the operator sees, against moto.

Given the recorded history of two connections (``demo`` healthy, with Invoice 1006 through all four
flows; ``acme`` failing since its QBO grant was revoked) and a dead letter, the page shows each
connection's state and the plot, the failures grouped by reason with their fix, the trace of Invoice
1006, and its Replay button moves a dead letter back to its queue.

The screenshots go to a temporary directory, or to ``$LEDGERLINK_UI_SCREENSHOTS`` (relative to the
checkout): ``LEDGERLINK_UI_SCREENSHOTS=docs .venv/bin/python -m pytest -q tests/integration/test_ui_browser.py``
refreshes docs/ui-healthy.png, docs/ui-failures.png and docs/ui-trace.png (docs/status.md#the-web-page-ledgerlink-ui).
Skipped, saying so, where Chromium or chromedriver is not installed.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from ledgerlink.cli.ui import AwsHealthSource, UiServer
from ledgerlink.history import Category, Flow, HistoryRow, HistoryStore, RecordOutcome
from ledgerlink.tables import LINKS
from tests.aws_fixtures import create_tables
from tests.browser import Browser, chromium_paths, headless_chromium, wait_until
from tests.conftest import FIXTURES, REPO_ROOT

BROWSER, DRIVER = chromium_paths()
pytestmark = pytest.mark.skipif(
    BROWSER is None or DRIVER is None,
    reason=f"needs Chromium and chromedriver (Debian: apt-get install chromium chromium-driver); "
    f"found browser={BROWSER}, driver={DRIVER}",
)

PREFIX = "ledgerlink-uitest-"
TABLE = f"{PREFIX}links"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
SCREENSHOTS_VARIABLE = "LEDGERLINK_UI_SCREENSHOTS"


def _rows() -> list[HistoryRow]:
    recorded = json.loads((FIXTURES / "ui" / "history.json").read_text(encoding="utf-8"))["rows"]
    return [
        HistoryRow(
            **{
                **row,
                "flow": Flow(row["flow"]),
                "outcome": RecordOutcome(row["outcome"]),
                "category": Category(row["category"]),
            }
        )
        for row in recorded
    ]


def _dead_letter() -> dict[str, Any]:
    recorded = json.loads((FIXTURES / "ui" / "dead-letter.json").read_text(encoding="utf-8"))
    return {"MessageBody": recorded["MessageBody"], "MessageAttributes": recorded["MessageAttributes"]}


def _queue_pair(sqs: Any, name: str) -> tuple[str, str]:
    """A work queue and its dead-letter queue, as the stack creates them; their URLs."""
    dlq_url = sqs.create_queue(QueueName=f"{PREFIX}{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=f"{PREFIX}{name}",
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "9"})},
    )["QueueUrl"]
    return url, dlq_url


class World:
    def __init__(self, sqs: Any, server: UiServer, queues: dict[str, tuple[str, str]]) -> None:
        self.sqs = sqs
        self.server = server
        self.queues = queues

    def depth(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(
            attributes["ApproximateNumberOfMessagesNotVisible"]
        )


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        sqs = boto3.client("sqs", endpoint_url=endpoint, **CREDENTIALS)
        dynamodb = boto3.client("dynamodb", endpoint_url=endpoint, **CREDENTIALS)
        create_tables(dynamodb, [(TABLE, LINKS)])
        store = HistoryStore(TABLE, dynamodb)
        store.write(_rows())
        queues = {name: _queue_pair(sqs, name) for name in ("deal-sync", "calendar-sync")}
        sqs.send_message(QueueUrl=queues["deal-sync"][1], **_dead_letter())
        source = AwsHealthSource(
            sqs, store, ("demo", "acme"), where=f"{endpoint} (moto)", queue_prefix=PREFIX
        )
        server = UiServer(source, port=0)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield World(sqs, server, queues)
        finally:
            server.shutdown()
            server.server_close()
    finally:
        moto.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert BROWSER is not None and DRIVER is not None
    with headless_chromium(BROWSER, DRIVER) as session:
        yield session


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get(SCREENSHOTS_VARIABLE)
    return REPO_ROOT / configured if configured else tmp_path_factory.mktemp("ui-screenshots")


def test_the_health_view_shows_a_healthy_and_a_failing_connection_and_the_plot(
    world: World, browser: Browser, screenshots: Path
) -> None:
    # when the operator opens the page on demo
    browser.open(f"{world.server.url}?view=health&connection=demo")
    browser.wait_ready()
    # then demo is healthy, acme failing with its waiting retries and dead letter counted
    assert browser.script("return document.getElementById('health-demo').dataset.state") == "healthy"
    acme = browser.text("#health-acme")
    assert browser.script("return document.getElementById('health-acme').dataset.state") == "failing"
    assert "failing" in acme
    # and the plot draws demo's throughput and its latency, and no failure
    plot = browser.script(
        "const p = document.getElementById('plot'); return p && {bars: p.querySelectorAll('.bar-throughput').length,"
        " failures: p.querySelectorAll('.bar-failures').length, latency: !!p.querySelector('.line-p95')}"
    )
    assert plot["bars"] > 10 and plot["failures"] == 0 and plot["latency"]
    # and the queues are listed with their dead-letter depths
    assert f"{PREFIX}deal-sync-dlq" in browser.text("main")
    browser.screenshot(screenshots / "ui-healthy.png")


def test_the_failures_view_groups_failures_by_reason_with_the_fix_they_need(
    world: World, browser: Browser, screenshots: Path
) -> None:
    browser.open(f"{world.server.url}?view=failures&connection=acme")
    browser.wait_ready()
    # then the revoked grant is one group, auth, with its fix, before the rate-limited one
    auth = browser.text("#failure-auth")
    assert "auth: 4 attempts" in auth and "invalid_grant" in auth and "reconnect the account" in auth
    assert "nothing: it runs again" in browser.text("#failure-rate_limited")
    order = browser.script("return [...document.querySelectorAll('.group')].map(g => g.id)")
    assert order == ["failure-auth", "failure-rate_limited"]
    # and the dead letter is listed with its reason and a Replay button
    dead_letter = browser.text(f"#dlq-{PREFIX}deal-sync-dlq")
    assert (
        "Invoice/212 Update" in dead_letter and "invalid_grant" in dead_letter and "exhausted" in dead_letter
    )
    browser.screenshot(screenshots / "ui-failures.png")


def test_the_trace_view_shows_every_hop_of_an_invoice_across_the_four_flows(
    world: World, browser: Browser, screenshots: Path
) -> None:
    browser.open(f"{world.server.url}?view=trace&connection=demo&kind=invoice&ref=1006")
    browser.wait_ready()
    flows = browser.script("return [...document.querySelectorAll('tr.hop')].map(r => r.dataset.flow)")
    assert flows == ["deal_sync", "calendar_sync", "followups", "document_sync"]
    text = browser.text("main")
    assert "91013 (Invoice Open)" in text and "AAMkADk0ZTeamsMeeting7Q1" in text and "corr-1006" in text
    browser.screenshot(screenshots / "ui-trace.png")


def test_the_replay_button_moves_the_dead_letters_back_to_their_queue(world: World, browser: Browser) -> None:
    # given a dead letter in the calendar sync's dead-letter queue
    source_url, dlq_url = world.queues["calendar-sync"]
    world.sqs.send_message(QueueUrl=dlq_url, **_dead_letter())
    browser.open(f"{world.server.url}?view=failures&connection=acme")
    browser.wait_ready()
    assert (
        browser.script(f"return document.getElementById('dlq-{PREFIX}calendar-sync-dlq').dataset.depth")
        == "1"
    )
    # when the operator clicks its Replay button
    browser.click(f"#replay-{PREFIX}calendar-sync-dlq")
    # then the page reports it moved, and the message is back on the calendar sync's queue
    result = wait_until(
        lambda: (
            browser.text(f"#result-{PREFIX}calendar-sync-dlq") if browser.page_state() == "ready" else None
        ),
        "the replay's report",
    )
    assert "moved 1, skipped 0, failed 0" in result
    assert world.depth(dlq_url) == 0 and world.depth(source_url) == 1
    assert (
        browser.script(f"return document.getElementById('dlq-{PREFIX}calendar-sync-dlq').dataset.depth")
        == "0"
    )


def test_a_post_without_the_pages_token_or_to_another_host_is_refused(world: World) -> None:
    _source_url, dlq_url = world.queues["deal-sync"]
    replay = f"{world.server.url}api/dlq/replay"
    body = {"queue": f"{PREFIX}deal-sync-dlq"}
    # a page of another origin cannot read the token: without it, nothing moves
    assert requests.post(replay, json=body, timeout=10).status_code == 403
    # a DNS-rebinding page talks to 127.0.0.1 under its own host name
    token = {"X-LedgerLink-Token": world.server.token}
    rebound = requests.post(replay, json=body, headers={**token, "Host": "evil.example"}, timeout=10)
    assert rebound.status_code == 421
    assert (
        requests.get(
            f"{world.server.url}api/status", headers={"Host": "evil.example"}, timeout=10
        ).status_code
        == 421
    )
    # and the right token from another origin is refused too
    foreign = requests.post(replay, json=body, headers={**token, "Origin": "http://evil.example"}, timeout=10)
    assert foreign.status_code == 403
    assert world.depth(dlq_url) >= 1
