"""EventBridgePublisher: at most 10 entries per PutEvents, only refused entries retried, refusal reported."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from ledgerlink.events import DetailType, Envelope, EventSource
from ledgerlink.publisher import MAX_ENTRIES_PER_CALL, EventBridgePublisher, PublishError, RetryPolicy

BUS = "ledgerlink-dev"

# Decides, for one call, which entries (by index in that call) EventBridge refuses and with what code.
Refusal = Callable[[int, list[dict[str, Any]]], dict[int, str]]


class ScriptedEventBridge:
    """Answers PutEvents like EventBridge does, refusing what ``refuse`` says; records every call."""

    def __init__(
        self, refuse: Refusal | None = None, raise_on_calls: dict[int, Exception] | None = None
    ) -> None:
        self.calls: list[list[dict[str, Any]]] = []
        self.accepted: list[dict[str, Any]] = []
        self._refuse = refuse or (lambda call, entries: {})
        self._raise_on_calls = raise_on_calls or {}

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        call = len(self.calls)
        self.calls.append(list(Entries))
        if call in self._raise_on_calls:
            raise self._raise_on_calls[call]
        refused = self._refuse(call, Entries)
        results: list[dict[str, Any]] = []
        for index, entry in enumerate(Entries):
            if index in refused:
                results.append({"ErrorCode": refused[index], "ErrorMessage": "refused by the script"})
            else:
                self.accepted.append(entry)
                results.append({"EventId": f"eb-{call}-{index}"})
        return {"FailedEntryCount": len(refused), "Entries": results}


class Sleeps:
    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


def envelopes(count: int) -> list[Envelope]:
    return [
        Envelope(
            source=EventSource.QBO_INGEST,
            detail_type=DetailType.QBO_ENTITY_CHANGED,
            payload={
                "realm_id": "9341455130122367",
                "entity": "Invoice",
                "entity_id": str(1000 + n),
                "operation": "Update",
                "last_updated": "2026-11-25T14:05:12Z",
                "delivery_id": "Bq9kTgYcIAMEbXw=",
                "source_format": "cloudevents",
            },
            correlation_id=f"correlation-{n}",
            event_id=f"event-{n:03d}",
            occurred_at="2026-11-25T14:05:12Z",
        )
        for n in range(count)
    ]


def publisher(client: ScriptedEventBridge, sleeps: Sleeps, attempts: int = 4) -> EventBridgePublisher:
    return EventBridgePublisher(
        client,  # type: ignore[arg-type]
        BUS,
        policy=RetryPolicy(attempts=attempts, base_seconds=0.05, cap_seconds=0.2),
        sleep=sleeps,
        uniform=lambda low, high: high,  # the ceiling of the jitter range, so the sleeps are predictable
    )


def event_ids(entries: list[dict[str, Any]]) -> list[str]:
    return [json.loads(entry["Detail"])["event_id"] for entry in entries]


def test_twenty_three_events_go_out_in_calls_of_at_most_ten() -> None:
    client, sleeps = ScriptedEventBridge(), Sleeps()
    publisher(client, sleeps).publish(envelopes(23))

    assert [len(call) for call in client.calls] == [10, 10, 3]
    assert event_ids(client.accepted) == [f"event-{n:03d}" for n in range(23)]
    assert all(entry["EventBusName"] == BUS for entry in client.accepted)
    assert sleeps.asked == []
    assert MAX_ENTRIES_PER_CALL == 10


def test_only_the_refused_entries_are_sent_again_after_a_backoff() -> None:
    # given EventBridge refuses entries 1 and 4 of the first call only
    client = ScriptedEventBridge(
        refuse=lambda call, _: {1: "ThrottlingException", 4: "InternalFailure"} if call == 0 else {}
    )
    sleeps = Sleeps()

    # when six events are published
    publisher(client, sleeps).publish(envelopes(6))

    # then the second call carries exactly the two refused entries, and every event is on the bus once
    assert event_ids(client.calls[1]) == ["event-001", "event-004"]
    assert sorted(event_ids(client.accepted)) == [f"event-{n:03d}" for n in range(6)]
    assert sleeps.asked == [0.05]


def test_backoff_grows_until_the_cap_and_the_error_reports_counts_and_codes() -> None:
    # given EventBridge keeps refusing two entries of the second chunk
    def refuse(call: int, entries: list[dict[str, Any]]) -> dict[int, str]:
        ids = event_ids(entries)
        return {
            i: "InternalFailure" for i, event_id in enumerate(ids) if event_id in {"event-012", "event-013"}
        }

    client, sleeps = ScriptedEventBridge(refuse=refuse), Sleeps()

    # when 15 events are published
    with pytest.raises(PublishError) as caught:
        publisher(client, sleeps, attempts=4).publish(envelopes(15))

    # then the others went out, the two were tried four times, and the error says so without any detail
    assert caught.value.failed_count == 2
    assert caught.value.total_count == 15
    assert caught.value.error_codes == {"InternalFailure": 2}
    assert str(caught.value) == "2 of 15 events were not published (InternalFailure x2)"
    assert len(client.accepted) == 13
    assert [event_ids(call) for call in client.calls[2:]] == [["event-012", "event-013"]] * 3
    assert sleeps.asked == [0.05, 0.1, 0.2]
    assert "9341455130122367" not in str(caught.value)


def test_a_call_that_fails_as_a_whole_is_retried() -> None:
    throttled = ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "PutEvents"
    )
    client = ScriptedEventBridge(raise_on_calls={0: throttled})
    sleeps = Sleeps()

    publisher(client, sleeps).publish(envelopes(3))

    assert len(client.calls) == 2
    assert event_ids(client.accepted) == ["event-000", "event-001", "event-002"]


def test_a_network_failure_on_every_attempt_is_a_publish_error() -> None:
    down = EndpointConnectionError(endpoint_url="https://events.us-east-1.amazonaws.com")
    client = ScriptedEventBridge(raise_on_calls={n: down for n in range(4)})

    with pytest.raises(PublishError) as caught:
        publisher(client, Sleeps(), attempts=4).publish(envelopes(2))

    assert caught.value.error_codes == {"EndpointConnectionError": 2}
    assert client.accepted == []


def test_an_entry_without_a_result_counts_as_refused() -> None:
    class ShortAnswer(ScriptedEventBridge):
        def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            self.calls.append(list(Entries))
            return {"FailedEntryCount": 1, "Entries": [{"EventId": "only-one"}]}

    with pytest.raises(PublishError, match="NoResult"):
        publisher(ShortAnswer(), Sleeps(), attempts=1).publish(envelopes(2))


def test_publishing_nothing_makes_no_call() -> None:
    client = ScriptedEventBridge()
    publisher(client, Sleeps()).publish([])
    assert client.calls == []


def test_an_envelope_off_its_schema_is_never_sent() -> None:
    from ledgerlink.events import EnvelopeError

    bad = Envelope(
        source=EventSource.QBO_INGEST,
        detail_type=DetailType.QBO_ENTITY_CHANGED,
        payload={"realm_id": "not a realm"},
        correlation_id="c",
        event_id="e",
    )
    client = ScriptedEventBridge()
    with pytest.raises(EnvelopeError):
        publisher(client, Sleeps()).publish([bad])
    assert client.calls == []


def test_the_default_policy_sleeps_well_under_a_second_in_the_worst_case() -> None:
    policy = RetryPolicy()
    worst = sum(policy.delay(n, lambda low, high: high) for n in range(policy.attempts - 1))
    assert worst < 0.5
