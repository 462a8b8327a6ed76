"""The handler's answers to Intuit, with in-memory ports: one status per outcome, bodies that say why."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from ledgerlink.ingest.archive import WebhookDelivery
from ledgerlink.ingest.fakes import FakeServedRealms, InMemoryEventPublisher, InMemoryRawArchive
from ledgerlink.ingest.ports import VerifierUnavailable
from ledgerlink.ingest.service import IngestPorts
from tests.unit.ingest.signed_requests import (
    OTHER_TOKEN,
    RECORDED_REALMS,
    VERIFIER_TOKEN,
    apigw_event,
    body_of,
    malformed_cases,
)
from tests.webhook_cases import ADVERSARIAL, AdversarialCase

ARCHIVE_KEY = "qbo/raw/2026/11/25/14/Bq9kTgYcIAMEbXw=.json"


@dataclass
class LambdaContext:
    function_name: str = "ledgerlink-test-qbo-ingest"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-test-qbo-ingest"
    aws_request_id: str = "5b9e3c1a-0d7f-4e2b-8a64-1f3c5d7e9b20"


class FakeWorld:
    def __init__(self) -> None:
        self.archive = InMemoryRawArchive()
        self.publisher = InMemoryEventPublisher()
        self.token_reads = 0
        self.token_error: Exception | None = None

    def token(self) -> str:
        self.token_reads += 1
        if self.token_error is not None:
            raise self.token_error
        return VERIFIER_TOKEN


@pytest.fixture
def world(ingest_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> FakeWorld:
    from qbo_ingest import handler

    fake = FakeWorld()
    ports = IngestPorts(
        verifier_token=fake.token,
        archive=fake.archive,
        publisher=fake.publisher,
        served=FakeServedRealms(RECORDED_REALMS),
    )
    monkeypatch.setattr(handler, "_ports", lambda: ports)
    return fake


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    from qbo_ingest.handler import lambda_handler

    response = lambda_handler(event, LambdaContext())
    assert response["headers"] == {"content-type": "application/json"}
    return response["statusCode"], json.loads(response["body"])


def test_a_signed_delivery_is_answered_200_with_the_count_of_events_accepted(world: FakeWorld) -> None:
    status, body = invoke(apigw_event(body_of("cloudevents_multi_realm.json")))
    assert (status, body) == (200, {"accepted": 7, "skipped": 0, "delivery_id": "Bq9kTgYcIAMEbXw="})
    assert len(world.publisher.entries) == 7
    assert list(world.archive.objects) == ["qbo/raw/2026/11/25/14/Bq9kTgYcIAMEbXw=.json"]


def test_a_delivery_with_unknown_event_types_is_answered_200_with_both_counts(world: FakeWorld) -> None:
    # given a signed delivery of 2 known events and 3 of types LedgerLink does not know yet
    body = body_of("cloudevents_unsupported_types.json")

    # when it comes in
    status, answer = invoke(apigw_event(body))

    # then Intuit is told it was received (no retry, no held-back events), with both counts
    assert (status, answer) == (200, {"accepted": 2, "skipped": 3, "delivery_id": "Bq9kTgYcIAMEbXw="})
    # and only the known events were published
    assert [d["payload"]["entity_id"] for d in world.publisher.details()] == ["145", "902"]
    # and the raw delivery, skipped events included, is archived as received
    archived = world.archive.objects["qbo/raw/2026/11/25/14/Bq9kTgYcIAMEbXw=.json"]
    assert WebhookDelivery.from_json(archived).body == body


def test_a_base64_encoded_delivery_is_accepted(world: FakeWorld) -> None:
    status, body = invoke(apigw_event(body_of("legacy_multi_realm.json"), base64_encoded=True))
    assert (status, body["accepted"]) == (200, 6)


@pytest.mark.parametrize(
    ("event_options", "reason"),
    [
        ({"signature": None}, "missing_signature"),
        ({"token": OTHER_TOKEN}, "invalid_signature"),
        ({"signature": "bm90IHRoZSBzaWduYXR1cmU="}, "invalid_signature"),
    ],
    ids=["missing", "wrong key", "wrong"],
)
def test_an_unverified_delivery_is_answered_401_and_leaves_no_trace(
    world: FakeWorld, event_options: dict[str, Any], reason: str
) -> None:
    status, body = invoke(apigw_event(body_of("cloudevents_multi_realm.json"), **event_options))
    assert status == 401
    assert body["error"] == reason
    assert "intuit-signature" in body["message"]
    assert world.archive.objects == {}
    assert world.publisher.entries == []


@pytest.mark.parametrize("case", malformed_cases(), ids=lambda case: case["name"])
def test_a_malformed_delivery_is_answered_400_naming_the_field(
    world: FakeWorld, case: dict[str, str]
) -> None:
    status, body = invoke(apigw_event(case["body"].encode("utf-8")))
    assert status == 400
    assert body["error"] == "malformed"
    assert case["expect_in_message"] in body["message"]
    assert world.publisher.entries == []


def test_an_oversize_delivery_is_answered_413_before_anything_else(world: FakeWorld) -> None:
    # given a body one byte over the 1 MiB default, not even signed
    oversize = b"[" + b" " * (1024 * 1024 - 1) + b"]"
    status, body = invoke(apigw_event(oversize, signature=None))

    assert status == 413
    assert body == {"error": "payload_too_large", "message": "the body exceeds 1048576 bytes"}
    # the verifier token was not even read
    assert world.token_reads == 0
    assert world.archive.objects == {}


def test_the_limit_comes_from_the_configuration(world: FakeWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledgerlink.config import EnvVar, reset_settings_cache

    monkeypatch.setenv(EnvVar.MAX_WEBHOOK_BYTES, "100")
    reset_settings_cache()
    status, _ = invoke(apigw_event(body_of("cloudevents_invoice_created.json")))
    assert status == 413


def test_when_the_archive_is_down_the_answer_is_503_and_nothing_is_published(world: FakeWorld) -> None:
    world.archive.fail_with = "S3 unreachable"
    status, body = invoke(apigw_event(body_of("cloudevents_multi_realm.json")))
    assert (status, body["error"]) == (503, "archive_failed")
    assert world.publisher.entries == []


def test_when_events_are_refused_the_answer_is_503_and_the_archive_is_kept(world: FakeWorld) -> None:
    from ledgerlink.qbo.webhooks import parse_delivery

    changes = parse_delivery(body_of("cloudevents_multi_realm.json")).changes
    world.publisher.refuse_event_ids = {changes[0].change_id}

    status, body = invoke(apigw_event(body_of("cloudevents_multi_realm.json")))

    assert (status, body["error"]) == (503, "publish_failed")
    assert body["message"] == "1 of 7 events were not published (InternalFailure x1)"
    assert len(world.archive.objects) == 1


def test_when_the_verifier_token_cannot_be_read_the_answer_is_503(world: FakeWorld) -> None:
    world.token_error = VerifierUnavailable("could not read secret ledgerlink/test/qbo-webhook (Throttling)")
    status, body = invoke(apigw_event(body_of("cloudevents_invoice_created.json")))
    assert (status, body["error"]) == (503, "verifier_unavailable")
    assert world.archive.objects == {}


def test_an_unexpected_error_is_a_generic_500(world: FakeWorld) -> None:
    world.token_error = RuntimeError("a bug with a token=abc in its message")
    status, body = invoke(apigw_event(body_of("cloudevents_invoice_created.json")))
    assert (status, body) == (500, {"error": "internal_error", "message": "internal error"})


def test_rejections_are_counted_by_reason(world: FakeWorld, capsys: pytest.CaptureFixture[str]) -> None:
    invoke(apigw_event(body_of("cloudevents_invoice_created.json"), signature=None))

    metric_lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    rejected = [m for m in metric_lines if "DeliveriesRejected" in m]
    by_reason, by_service = sorted(rejected, key=lambda m: "reason" not in m)
    assert by_reason["reason"] == "missing_signature"
    assert by_reason["status"] == "401"
    assert by_reason["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LedgerLink"
    assert by_reason["DeliveriesRejected"] == [1.0]
    # and once on the service alone: the series the rejected-deliveries alarm divides by the received
    assert by_service["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert (by_service["service"], by_service["DeliveriesRejected"]) == ("qbo-ingest", [1.0])
    received = [m for m in metric_lines if "DeliveriesReceived" in m]
    assert [m["DeliveriesReceived"] for m in received] == [[1.0]]


def test_accepted_deliveries_count_the_events_published(
    world: FakeWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(apigw_event(body_of("cloudevents_multi_realm.json")))

    metric_lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    published = [m for m in metric_lines if "EventsPublished" in m]
    assert len(published) == 1
    assert published[0]["EventsPublished"] == [7.0]
    assert published[0]["service"] == "qbo-ingest"


def test_skipped_events_are_counted_in_one_metric_without_a_per_type_dimension(
    world: FakeWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(apigw_event(body_of("cloudevents_unsupported_types.json")))

    metric_lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    skipped = [m for m in metric_lines if "UnsupportedEventsSkipped" in m]
    assert len(skipped) == 1
    assert skipped[0]["UnsupportedEventsSkipped"] == [3.0]
    assert skipped[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert [m["EventsPublished"] for m in metric_lines if "EventsPublished" in m] == [[2.0]]


def test_an_event_whose_id_qbo_could_not_have_issued_is_skipped_and_the_other_20_are_published(
    world: FakeWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    # given a signed delivery of 21 invoice events, one with intuitentityid "INV-0001/A"
    body = body_of("cloudevents_invalid_entity_id.json")

    # when it comes in
    status, answer = invoke(apigw_event(body))

    # then Intuit gets a 200 reporting it skipped, and the 20 others are on the bus
    assert (status, answer) == (200, {"accepted": 20, "skipped": 1, "delivery_id": "Bq9kTgYcIAMEbXw="})
    published = [detail["payload"]["entity_id"] for detail in world.publisher.details()]
    assert len(published) == 20
    assert "INV-0001/A" not in published
    # and the raw delivery, the skipped event included, is archived
    assert WebhookDelivery.from_json(world.archive.objects[ARCHIVE_KEY]).body == body
    # and it is counted in its own metric, without a per-id dimension
    metric_lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    counted = [m for m in metric_lines if "InvalidEventsSkipped" in m]
    assert [(m["InvalidEventsSkipped"], m["UnsupportedEventsSkipped"]) for m in counted] == [([1.0], [0.0])]
    assert counted[0]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]


@pytest.mark.parametrize("case", ADVERSARIAL, ids=lambda case: case.name)
def test_a_body_that_used_to_crash_or_stall_ingest_is_answered_400_and_archived(
    world: FakeWorld, case: AdversarialCase
) -> None:
    # given a signed body an adversarial run answered with a 500 (never archived) or a timeout
    # when it comes in
    status, answer = invoke(apigw_event(case.body))

    # then it is refused as malformed, naming the problem, and kept for inspection
    assert (status, answer["error"]) == (400, "malformed")
    assert case.expect_in_message in answer["message"]
    assert WebhookDelivery.from_json(world.archive.objects[ARCHIVE_KEY]).body == case.body
    assert world.publisher.entries == []


def test_the_event_cap_comes_from_the_configuration(
    world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledgerlink.config import EnvVar, reset_settings_cache

    monkeypatch.setenv(EnvVar.MAX_WEBHOOK_EVENTS, "6")
    reset_settings_cache()
    status, answer = invoke(apigw_event(body_of("cloudevents_multi_realm.json")))
    assert (status, answer["message"]) == (
        400,
        "$: 7 events, more than the 6 LedgerLink accepts in one delivery",
    )
    assert len(world.archive.objects) == 1


def test_a_parser_bug_is_a_500_but_the_signed_delivery_is_archived(
    world: FakeWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledgerlink.ingest import service

    def broken_parser(body: bytes, *, max_events: int) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(service, "parse_delivery", broken_parser)
    status, _ = invoke(apigw_event(body_of("cloudevents_invoice_created.json")))
    assert status == 500
    assert list(world.archive.objects) == [ARCHIVE_KEY]
