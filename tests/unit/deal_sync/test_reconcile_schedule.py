"""The scheduled reconciliation's report (ledgerlink.deal_sync.reconcile_schedule), with in-memory fakes:
given each connection's check (the reconcile engine's result, built here from recorded QBO invoices), the
run counts DriftRecords per connection, logs one line per drifted record naming the connection, the QBO
document, each field and both values, goes on past a connection that fails, and stops before the
Lambda's time runs short, naming the connections it did not reach."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest

from ledgerlink.deal_sync.diff import Snapshot
from ledgerlink.deal_sync.reconcile import Cause, FieldDrift, Reconciliation, RecordDrift
from ledgerlink.deal_sync.reconcile_schedule import reconcile_connections
from ledgerlink.http.errors import VendorHttpError
from ledgerlink.observability import Service, ServiceMetrics, get_metrics
from tests.unit.deal_sync.helpers import REALM, qbo_entity

SINCE = date(2025, 1, 1)


class RecordingMetrics:
    """Counts by (connection, metric name), as ServiceMetrics.for_connection(...).count(...) would emit."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}

    def for_connection(self, connection: str) -> RecordingCounter:
        return RecordingCounter(self, connection)


class RecordingCounter:
    def __init__(self, sink: RecordingMetrics, connection: str) -> None:
        self.sink = sink
        self.connection = connection

    def count(self, name: str, value: int = 1) -> None:
        key = (self.connection, name)
        self.sink.counts[key] = self.sink.counts.get(key, 0) + value


def amount_changed_in_hubspot(connection: str, invoice_file: str, hubspot_amount: str) -> RecordDrift:
    """A recorded invoice whose deal a person changed in HubSpot: the amount drifted."""
    invoice = qbo_entity(invoice_file)
    return RecordDrift(
        connection,
        "Invoice",
        f"{REALM}:{invoice['Id']}",
        str(invoice["DocNumber"]),
        "deal",
        ("91013",),
        [
            FieldDrift(
                "amount",
                str(invoice["TotalAmt"]),
                hubspot_amount,
                Cause.CHANGED_IN_HUBSPOT,
                "a person: CRM_UI",
            )
        ],
    )


def checked(connection: str, *drift: RecordDrift) -> Reconciliation:
    return Reconciliation(Snapshot(connection, REALM, SINCE, documents={}), list(drift))


def log_lines(caplog: pytest.LogCaptureFixture, message: str) -> list[dict[str, Any]]:
    """The function's log lines with ``message``: level and the structured keys it was logged with."""
    return [
        {"level": record.levelname, **vars(record)}
        for record in caplog.records
        if record.name == Service.QBO_RECONCILE and record.getMessage() == message
    ]


def total(value: float | list[float]) -> float:
    """An EMF value: one number, or the list Powertools writes for a metric counted more than once."""
    return sum(value) if isinstance(value, list) else value


def plenty_of_time() -> int:
    return 14 * 60 * 1000


def test_drifted_records_are_counted_per_connection_and_logged_with_both_values(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given connection "main" with a deal whose amount a person changed, and "emea" clean
    drifted = amount_changed_in_hubspot("main", "invoice_eur.json", "1.00")
    results = {"main": checked("main", drifted), "emea": checked("emea")}
    metrics = RecordingMetrics()

    # when the scheduled run checks both
    report = reconcile_connections(
        ["main", "emea"], results.__getitem__, metrics=metrics, remaining_ms=plenty_of_time
    )

    # then DriftRecords is 1 for main and 0 for emea (a clean run sends the alarm back to OK)
    assert metrics.counts[("main", "DriftRecords")] == 1
    assert metrics.counts[("emea", "DriftRecords")] == 0
    assert report.drifted == 1 and report.not_reached == [] and report.failures == {}
    # and the one drift line names the connection, the QBO document, the field and both values
    (line,) = log_lines(caplog, "reconcile drift")
    invoice = qbo_entity("invoice_eur.json")
    assert line["level"] == "WARNING"
    assert (line["connection"], line["qbo_id"], line["qbo_number"]) == (
        "main",
        f"{REALM}:{invoice['Id']}",
        invoice["DocNumber"],
    )
    assert line["fields"] == [
        {"field": "amount", "qbo": str(invoice["TotalAmt"]), "hubspot": "1.00", "cause": "changed_in_hubspot"}
    ]
    assert line["hubspot_ids"] == ["91013"]


def test_a_connection_that_fails_is_counted_and_the_next_is_still_checked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given HubSpot refuses main's token, and emea has one drifted record
    def check(name: str) -> Reconciliation:
        if name == "main":
            raise VendorHttpError(
                vendor="hubspot", status=401, method="POST", path="/crm/v3/objects/deals/search"
            )
        return checked("emea", amount_changed_in_hubspot("emea", "invoice_eur.json", "2.00"))

    metrics = RecordingMetrics()

    report = reconcile_connections(["main", "emea"], check, metrics=metrics, remaining_ms=plenty_of_time)

    # then main's failure is counted (and HubSpot's refusal alarmed), emea's drift still reported
    assert metrics.counts[("main", "UnexpectedErrors")] == 1
    assert metrics.counts[("main", "HubSpotTokenRejected")] == 1
    assert ("main", "DriftRecords") not in metrics.counts
    assert metrics.counts[("emea", "DriftRecords")] == 1
    assert "401" in report.failures["main"]
    (failed,) = log_lines(caplog, "reconcile of a connection failed")
    assert failed["connection"] == "main"


def test_the_run_stops_before_the_time_runs_short_and_names_the_connections_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # given a clock: each check takes 3 minutes, and the Lambda has 5 minutes left at the start
    now = [0.0]
    started_with_ms = 5 * 60 * 1000

    def monotonic() -> float:
        return now[0]

    def remaining_ms() -> int:
        return started_with_ms - int(now[0] * 1000)

    def check(name: str) -> Reconciliation:
        now[0] += 180
        return checked(name)

    metrics = RecordingMetrics()

    # when three connections are due
    report = reconcile_connections(
        ["a", "b", "c"], check, metrics=metrics, remaining_ms=remaining_ms, monotonic=monotonic
    )

    # then the first is checked; with 2 minutes left a second 3-minute check would not fit: b and c wait
    assert [each.connection for each in report.checked] == ["a"]
    assert report.not_reached == ["b", "c"]
    assert metrics.counts[("b", "ReconcileNotReached")] == metrics.counts[("c", "ReconcileNotReached")] == 1
    (stopped,) = log_lines(caplog, "reconcile stopped before the time ran out")
    assert stopped["connections_not_reached"] == ["b", "c"]
    assert "ledgerlink reconcile --connection NAME" in stopped["action"]


@pytest.fixture
def emitted(capsys: pytest.CaptureFixture[str]) -> Iterator[Callable[[], list[dict[str, Any]]]]:
    metrics = get_metrics(Service.QBO_RECONCILE)
    metrics.clear_metrics()

    def flush() -> list[dict[str, Any]]:
        metrics.flush_metrics()
        return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]

    yield flush
    metrics.clear_metrics()


def test_drift_records_land_where_the_alarm_and_the_dashboard_look(
    emitted: Callable[[], list[dict[str, Any]]],
) -> None:
    # given the function's real metrics sink and two drifted records on main
    results = {
        "main": checked(
            "main",
            amount_changed_in_hubspot("main", "invoice_eur.json", "1.00"),
            amount_changed_in_hubspot("main", "invoice_dst.json", "3.00"),
        )
    }

    reconcile_connections(
        ["main"],
        results.__getitem__,
        metrics=ServiceMetrics(Service.QBO_RECONCILE),
        remaining_ms=plenty_of_time,
    )

    # then DriftRecords is 2 under the service alone (the alarm) and under service and connection (dashboard)
    records = [record for record in emitted() if "DriftRecords" in record]
    by_dimensions = {
        tuple(record["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0]): record for record in records
    }
    assert total(by_dimensions[("service",)]["DriftRecords"]) == 2
    assert total(by_dimensions[("service", "connection")]["DriftRecords"]) == 2
    assert by_dimensions[("service", "connection")]["connection"] == "main"
    assert all(record["service"] == "qbo-reconcile" for record in records)
