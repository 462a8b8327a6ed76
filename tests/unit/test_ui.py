"""``ledgerlink ui`` without a browser: a connection's health and the plot's series from history rows,
and the server's checks (loopback Host only, POSTs with the page's token and from its own origin),
against a source that records what it was asked. The page in a real Chromium:
tests/integration/test_ui_browser.py."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from ledgerlink.cli import main
from ledgerlink.cli.ui import (
    TOKEN_HEADER,
    UiRequestError,
    UiServer,
    bucket_width,
    connection_health,
    series,
)
from ledgerlink.cli.ui_page import render_page
from ledgerlink.history import Category, HistoryRow, RecordOutcome
from tests.unit.history_rows import history_row


def _row(**changes: Any) -> HistoryRow:
    return history_row(**changes)


def test_a_connection_whose_records_all_settled_is_healthy_and_one_failing_now_is_not() -> None:
    # given a record that failed once and then synced, and another written at once
    recovered = [
        _row(outcome=RecordOutcome.FAILED, category=Category.RATE_LIMITED, reason="429"),
        _row(at="2026-12-02T06:31:00.000Z", receive_count=2),
        _row(at="2026-12-02T06:32:00.000Z", source_id="131", source_number="1007"),
    ]
    health = connection_health("demo", recovered)
    assert (health.state, health.records, health.failing_records) == ("healthy", 2, 0)
    assert health.last_success_at == "2026-12-02T06:32:00.000Z"
    # the failed attempt still counts among the failures by reason, as ledgerlink status shows them
    assert [group["category"] for group in health.failures] == ["rate_limited"]
    # when a record's latest attempt is dead-lettered, the connection is failing
    dead = _row(at="2026-12-02T06:33:00.000Z", outcome=RecordOutcome.DEAD_LETTERED, category=Category.AUTH)
    failing = connection_health("demo", [*recovered, dead])
    assert (failing.state, failing.failing_records, failing.dead_lettered_records) == ("failing", 1, 1)
    assert "reconnect" in failing.failures[0]["fix"]
    # and without rows it is idle
    assert connection_health("demo", []).state == "idle"


def test_the_series_counts_throughput_and_failures_per_bucket_with_latency_percentiles() -> None:
    rows = [
        _row(at="2026-12-02T06:00:10.000Z", queued_at="2026-12-02T06:00:09.000Z"),  # 1000 ms
        _row(at="2026-12-02T06:00:50.000Z", queued_at="2026-12-02T06:00:47.000Z"),  # 3000 ms
        _row(at="2026-12-02T06:02:05.000Z", outcome=RecordOutcome.FAILED, category=Category.AUTH),
    ]
    plotted = series(rows)
    assert plotted["bucket_seconds"] == 60
    # every minute from the first row's to the last row's, the empty one too
    assert [bucket["start"] for bucket in plotted["buckets"]] == [
        "2026-12-02T06:00:00Z",
        "2026-12-02T06:01:00Z",
        "2026-12-02T06:02:00Z",
    ]
    first, empty, last = plotted["buckets"]
    assert (first["throughput"], first["failures"]) == (2, 0)
    assert (first["latency_p50_ms"], first["latency_p95_ms"]) == (1000, 3000)
    assert (empty["throughput"], empty["latency_p50_ms"]) == (0, None)
    assert (last["throughput"], last["failures"], last["latency_p95_ms"]) == (0, 1, None)
    assert series([]) == {"bucket_seconds": 60, "buckets": []}


@pytest.mark.parametrize(
    ("span_seconds", "width"),
    [(0, 60), (48 * 60, 60), (49 * 60, 300), (2 * 3600, 300), (30 * 86_400, 86_400)],
)
def test_the_bucket_width_keeps_the_plot_to_about_48_bars(span_seconds: float, width: int) -> None:
    assert bucket_width(span_seconds) == width


class RecordingSource:
    connections = ("demo", "acme")

    def __init__(self) -> None:
        self.replayed: list[str] = []

    def status(self) -> dict[str, Any]:
        return {"where": "test", "connections": [], "queues": [], "problems": []}

    def series(self, connection: str, bucket_seconds: int | None) -> dict[str, Any]:
        return {"connection": connection, "bucket_seconds": bucket_seconds, "buckets": []}

    def trace(self, connection: str, kind: str, reference: str) -> dict[str, Any]:
        if kind not in ("invoice", "deal"):
            raise UiRequestError("kind is invoice or deal")
        return {"connection": connection, "kind": kind, "reference": reference, "hops": []}

    def dead_letters(self) -> dict[str, Any]:
        return {"queues": [], "problems": []}

    def replay(self, queue: str) -> dict[str, Any]:
        self.replayed.append(queue)
        return {"dlq": queue, "moved": 1}


@pytest.fixture
def served() -> Iterator[tuple[UiServer, RecordingSource]]:
    source = RecordingSource()
    server = UiServer(source, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, source
    finally:
        server.shutdown()
        server.server_close()


def test_it_listens_on_the_loopback_address_only(served: tuple[UiServer, RecordingSource]) -> None:
    server, _source = served
    assert server.server_address[0] == "127.0.0.1"
    assert server.url == f"http://127.0.0.1:{server.port}/"


def test_the_page_embeds_its_token_and_fetches_nothing_from_elsewhere(
    served: tuple[UiServer, RecordingSource],
) -> None:
    server, _source = served
    page = requests.get(server.url, timeout=10)
    assert page.status_code == 200
    assert f'<meta name="ledgerlink-token" content="{server.token}">' in page.text
    # no CDN, no font, no image from the internet: the only URL is the SVG namespace
    assert re.findall(r"https?://[^\s\"'<>]+", page.text) == ["http://www.w3.org/2000/svg"]
    policy = page.headers["Content-Security-Policy"]
    assert "connect-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert "unsafe-inline" not in policy


def test_a_replay_needs_the_pages_token_the_loopback_host_and_its_own_origin(
    served: tuple[UiServer, RecordingSource],
) -> None:
    server, source = served
    replay = f"{server.url}api/dlq/replay"
    body = {"queue": "ledgerlink-dev-deal-sync-dlq"}
    token = {TOKEN_HEADER: server.token}
    assert requests.post(replay, json=body, timeout=10).status_code == 403
    assert requests.post(replay, json=body, headers={TOKEN_HEADER: "guess"}, timeout=10).status_code == 403
    assert (
        requests.post(replay, json=body, headers={**token, "Host": "rebound.example"}, timeout=10).status_code
        == 421
    )
    foreign = {**token, "Origin": "http://rebound.example"}
    assert requests.post(replay, json=body, headers=foreign, timeout=10).status_code == 403
    assert source.replayed == []
    # with all three, from the page itself (localhost works as well as 127.0.0.1)
    own = {**token, "Origin": f"http://localhost:{server.port}", "Host": f"localhost:{server.port}"}
    answer = requests.post(replay, json=body, headers=own, timeout=10)
    assert answer.status_code == 200 and answer.json()["moved"] == 1
    assert source.replayed == ["ledgerlink-dev-deal-sync-dlq"]
    # and a body that names no queue is refused
    assert requests.post(replay, data=b"[]", headers=token, timeout=10).status_code == 400


def test_reads_under_another_host_name_are_refused_and_bad_queries_say_why(
    served: tuple[UiServer, RecordingSource],
) -> None:
    server, _source = served
    assert (
        requests.get(f"{server.url}api/status", headers={"Host": "rebound.example"}, timeout=10).status_code
        == 421
    )
    trace = requests.get(f"{server.url}api/trace?kind=invoice&ref=1006", timeout=10).json()
    assert (trace["connection"], trace["reference"]) == ("demo", "1006")  # the first connection by default
    wrong = requests.get(f"{server.url}api/trace?kind=estimate&ref=1", timeout=10)
    assert wrong.status_code == 400 and "invoice or deal" in wrong.json()["error"]
    assert requests.get(f"{server.url}api/series?bucket=soon", timeout=10).status_code == 400
    assert requests.get(f"{server.url}api/series?bucket=300&connection=acme", timeout=10).json() == {
        "connection": "acme",
        "bucket_seconds": 300,
        "buckets": [],
    }
    assert requests.get(f"{server.url}nothing", timeout=10).status_code == 404


def test_connection_names_cannot_end_the_pages_data_early() -> None:
    page = render_page(token="t", nonce="n", connections=["</script><script>alert(1)</script>"])
    data = page.split('id="connections">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data) == ["</script><script>alert(1)</script>"]


def test_the_command_is_registered_with_its_port(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        main(["ui", "--help"])
    assert ended.value.code == 0
    help_text = capsys.readouterr().out
    assert "--port" in help_text and "127.0.0.1" in help_text and "--no-browser" in help_text
