"""The ingest domain with in-memory ports: what is stored and what is published for each delivery."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

import pytest

from ledgerlink.events import DetailType, EventSource, validate_detail
from ledgerlink.ingest.fakes import FakeServedRealms, InMemoryEventPublisher, InMemoryRawArchive
from ledgerlink.ingest.ports import ArchiveError
from ledgerlink.ingest.service import IngestPorts, WebhookDelivery, ingest_delivery
from ledgerlink.observability import Service, get_logger
from ledgerlink.publisher import PublishError
from ledgerlink.qbo.webhooks import (
    InvalidSignature,
    MalformedWebhook,
    MissingSignature,
    compute_signature,
    parse_delivery,
)
from tests.unit.ingest.signed_requests import (
    OTHER_TOKEN,
    RECORDED_REALMS,
    VERIFIER_TOKEN,
    body_of,
    malformed_cases,
)
from tests.webhook_cases import ADVERSARIAL, AdversarialCase

RECEIVED_AT = datetime(2026, 11, 25, 14, 2, 52, 123000, tzinfo=UTC)
DELIVERY_ID = "Bq9kTgYcIAMEbXw="
EXPECTED_KEY = "qbo/raw/2026/11/25/14/Bq9kTgYcIAMEbXw=.json"


class Ports:
    def __init__(self) -> None:
        self.archive = InMemoryRawArchive()
        self.publisher = InMemoryEventPublisher()
        self.token_reads = 0

    def token(self) -> str:
        self.token_reads += 1
        return VERIFIER_TOKEN

    def ports(self) -> IngestPorts:
        return IngestPorts(
            verifier_token=self.token,
            archive=self.archive,
            publisher=self.publisher,
            served=FakeServedRealms(RECORDED_REALMS),
        )


@pytest.fixture
def world() -> Ports:
    return Ports()


def delivery(
    body: bytes, *, signature: str | None = None, token: str = VERIFIER_TOKEN, delivery_id: str = DELIVERY_ID
) -> WebhookDelivery:
    headers = {
        "content-type": "application/json; charset=utf-8",
        "user-agent": "intuit-webhooks/1.0",
        "intuit-t-id": "1-6745e0bc-4b7e2c1d3f5a6b7c8d9e0f1a",
        "authorization": "Bearer should-never-be-archived",
        "x-forwarded-for": "52.41.100.21",
    }
    headers["intuit-signature"] = signature if signature is not None else compute_signature(token, body)
    return WebhookDelivery(delivery_id=delivery_id, received_at=RECEIVED_AT, headers=headers, body=body)


def test_a_signed_cloudevents_delivery_is_archived_and_published_one_event_per_change(world: Ports) -> None:
    # given a signed delivery of seven changes across two realms
    body = body_of("cloudevents_multi_realm.json")

    # when it is ingested
    result = ingest_delivery(delivery(body), world.ports())

    # then the raw delivery is stored under the hour it arrived, byte for byte
    assert list(world.archive.objects) == [EXPECTED_KEY]
    stored = WebhookDelivery.from_json(world.archive.objects[EXPECTED_KEY])
    assert stored.body == body
    assert stored.delivery_id == DELIVERY_ID
    assert stored.received_at == RECEIVED_AT
    # and only the headers a replay needs were kept (never the authorization header)
    assert set(stored.headers) == {"intuit-signature", "content-type", "user-agent", "intuit-t-id"}

    # and one qbo.entity.changed event per change went to the bus, each valid against its schema
    entries = world.publisher.entries
    assert len(entries) == 7 == len(result.events)
    for entry in entries:
        assert entry["Source"] == EventSource.QBO_INGEST
        assert entry["DetailType"] == DetailType.QBO_ENTITY_CHANGED
        validate_detail(DetailType.QBO_ENTITY_CHANGED, json.loads(entry["Detail"]))
    merged = world.publisher.details()[1]
    assert merged["payload"] == {
        "realm_id": "9341455130122367",
        "entity": "Customer",
        "entity_id": "58",
        "operation": "Merge",
        "last_updated": "2026-11-25T14:05:13Z",
        "delivery_id": DELIVERY_ID,
        "source_format": "cloudevents",
        "cloudevent_id": "7c31d9e0-2f4a-4b6d-8e15-c0a9b7d3e4f2-Customer-58",
        "deleted_id": "27",
        "raw_object_key": EXPECTED_KEY,
        # the connection serving the realm, and the configuration it was published under
        "connection": "sample",
        "config_version": "test-config",
    }
    # the correlation id of a CloudEvents change is Intuit's event id
    assert merged["correlation_id"] == "7c31d9e0-2f4a-4b6d-8e15-c0a9b7d3e4f2-Customer-58"
    assert merged["occurred_at"] == "2026-11-25T14:05:13Z"


def test_a_legacy_delivery_publishes_the_same_event_ids_as_its_cloudevents_twin(world: Ports) -> None:
    # given the same six changes, once in each format, in two deliveries
    ingest_delivery(delivery(body_of("cloudevents_multi_realm.json"), delivery_id="first"), world.ports())
    ingest_delivery(delivery(body_of("legacy_multi_realm.json"), delivery_id="second"), world.ports())

    # then the legacy events carry the ids the CloudEvents ones had: downstream deduplicates them
    details = world.publisher.details()
    cloud_ids = {(d["payload"]["entity"], d["payload"]["entity_id"]): d["event_id"] for d in details[:7]}
    for legacy in details[7:]:
        key = (legacy["payload"]["entity"], legacy["payload"]["entity_id"])
        assert legacy["event_id"] == cloud_ids[key]
        assert legacy["payload"]["source_format"] == "legacy"
        assert "cloudevent_id" not in legacy["payload"]
        # without a CloudEvent id, the correlation id is the deterministic change id
        assert legacy["correlation_id"] == legacy["event_id"]
    for detail in details:
        validate_detail(DetailType.QBO_ENTITY_CHANGED, detail)


def test_a_redelivery_yields_the_same_event_ids(world: Ports) -> None:
    body = body_of("cloudevents_multi_realm.json")
    first = ingest_delivery(delivery(body, delivery_id="attempt-1"), world.ports())
    second = ingest_delivery(delivery(body, delivery_id="attempt-2"), world.ports())

    assert [e.event_id for e in first.events] == [e.event_id for e in second.events]
    # each attempt is archived on its own, so nothing Intuit sent is ever overwritten
    assert len(world.archive.objects) == 2


@pytest.mark.parametrize(
    ("signature", "token", "error"),
    [
        ("", VERIFIER_TOKEN, MissingSignature),
        (None, OTHER_TOKEN, InvalidSignature),
        ("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", VERIFIER_TOKEN, InvalidSignature),
    ],
    ids=["missing", "wrong key", "wrong signature"],
)
def test_an_unverified_delivery_stores_nothing_and_publishes_nothing(
    world: Ports, signature: str | None, token: str, error: type[Exception]
) -> None:
    body = body_of("cloudevents_multi_realm.json")
    with pytest.raises(error):
        ingest_delivery(delivery(body, signature=signature, token=token), world.ports())
    assert world.archive.objects == {}
    assert world.publisher.entries == []


def test_a_tampered_body_stores_nothing_and_publishes_nothing(world: Ports) -> None:
    body = body_of("cloudevents_invoice_created.json")
    signed = delivery(body)
    tampered = WebhookDelivery(
        delivery_id=signed.delivery_id,
        received_at=signed.received_at,
        headers=signed.headers,
        body=body.replace(b'"145"', b'"146"'),
    )
    with pytest.raises(InvalidSignature):
        ingest_delivery(tampered, world.ports())
    assert world.archive.objects == {}
    assert world.publisher.entries == []


@pytest.mark.parametrize("case", malformed_cases()[:8], ids=lambda case: case["name"])
def test_a_signed_but_malformed_delivery_is_archived_for_inspection_and_nothing_is_published(
    world: Ports, case: dict[str, str]
) -> None:
    body = case["body"].encode("utf-8")
    with pytest.raises(MalformedWebhook) as caught:
        ingest_delivery(delivery(body), world.ports())
    assert case["expect_in_message"] in str(caught.value)
    assert WebhookDelivery.from_json(world.archive.objects[EXPECTED_KEY]).body == body
    assert world.publisher.entries == []


def test_a_malformed_delivery_is_still_refused_when_the_archive_is_down(world: Ports) -> None:
    world.archive.fail_with = "S3 unreachable"
    with pytest.raises(MalformedWebhook):
        ingest_delivery(delivery(b"[]"), world.ports())


def test_when_the_archive_fails_nothing_is_published(world: Ports) -> None:
    world.archive.fail_with = "S3 unreachable"
    with pytest.raises(ArchiveError):
        ingest_delivery(delivery(body_of("cloudevents_multi_realm.json")), world.ports())
    assert world.publisher.entries == []


def test_when_some_events_are_refused_the_archive_is_kept_and_the_error_says_how_many(world: Ports) -> None:
    # given the bus refuses two of the seven events
    body = body_of("cloudevents_multi_realm.json")
    _, event_ids = _event_ids_of(body)
    world.publisher.refuse_event_ids = {event_ids[2], event_ids[5]}

    with pytest.raises(PublishError, match="2 of 7 events were not published") as caught:
        ingest_delivery(delivery(body), world.ports())

    assert caught.value.failed_count == 2
    assert EXPECTED_KEY in world.archive.objects
    assert len(world.publisher.entries) == 5


def test_a_notification_naming_no_entity_is_archived_and_publishes_nothing(world: Ports) -> None:
    result = ingest_delivery(delivery(body_of("legacy_empty_entities.json")), world.ports())
    assert result.events == ()
    assert EXPECTED_KEY in world.archive.objects
    assert world.publisher.entries == []


def test_events_of_unknown_types_are_archived_but_not_published(world: Ports) -> None:
    # given a signed delivery of two known events and three of types LedgerLink does not know yet
    body = body_of("cloudevents_unsupported_types.json")

    # when it is ingested
    result = ingest_delivery(delivery(body), world.ports())

    # then only the known events went to the bus
    published = [(d["payload"]["entity"], d["payload"]["entity_id"]) for d in world.publisher.details()]
    assert published == [("Invoice", "145"), ("Payment", "902")]
    assert [d["payload"]["operation"] for d in world.publisher.details()] == ["Create", "Create"]
    # and the others are reported as skipped, each once
    assert [skipped.type for skipped in result.unsupported] == [
        "qbo.invoice.sent.v1",
        "qbo.invoice.updated.v2",
        "qbo.estimate.accepted.v1",
    ]
    # and the raw delivery, skipped events included, is archived byte for byte for a later replay
    assert WebhookDelivery.from_json(world.archive.objects[EXPECTED_KEY]).body == body


def test_a_delivery_of_only_unknown_types_is_archived_and_publishes_nothing(world: Ports) -> None:
    event = json.loads(body_of("cloudevents_invoice_created.json"))[0]
    body = json.dumps([{**event, "type": "qbo.invoice.sent.v1"}]).encode()

    result = ingest_delivery(delivery(body), world.ports())

    assert (result.events, len(result.unsupported)) == ((), 1)
    assert world.publisher.entries == []
    assert WebhookDelivery.from_json(world.archive.objects[EXPECTED_KEY]).body == body


def test_replaying_the_archive_once_a_type_is_supported_publishes_the_skipped_event(
    world: Ports, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledgerlink.qbo import webhooks

    # given a delivery whose qbo.invoice.updated.v2 event was skipped and archived
    body = body_of("cloudevents_unsupported_types.json")
    ingest_delivery(delivery(body), world.ports())
    first_event_ids = {detail["event_id"] for detail in world.publisher.details()}
    published_before = len(world.publisher.entries)

    # when LedgerLink learns version 2 and the archived document is ingested again
    monkeypatch.setattr(webhooks, "SUPPORTED_TYPE_VERSIONS", frozenset({1, 2}))
    archived = WebhookDelivery.from_json(world.archive.objects[EXPECTED_KEY])
    replayed = ingest_delivery(
        WebhookDelivery(
            delivery_id="replay-1",
            received_at=archived.received_at,
            headers=archived.headers,
            body=archived.body,
        ),
        world.ports(),
    )

    # then the invoice update is published, and the two changes published the first time come
    # again with the same event ids (consumers deduplicate them)
    details = world.publisher.details()[published_before:]
    assert [(d["payload"]["entity_id"], d["payload"]["operation"]) for d in details] == [
        ("145", "Create"),
        ("1038", "Update"),
        ("902", "Create"),
    ]
    assert first_event_ids <= {d["event_id"] for d in details}
    assert [skipped.type for skipped in replayed.unsupported] == [
        "qbo.invoice.sent.v1",
        "qbo.estimate.accepted.v1",
    ]


def test_each_skipped_event_is_logged_at_warning_with_its_type_and_cloudevent_id(world: Ports) -> None:
    records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    capture = Capture()
    logging.getLogger(Service.QBO_INGEST).addHandler(capture)
    try:
        ingest_delivery(delivery(body_of("cloudevents_unsupported_types.json")), world.ports())
    finally:
        logging.getLogger(Service.QBO_INGEST).removeHandler(capture)

    skipped = [r for r in records if r.getMessage() == "unsupported event type skipped"]
    fields = [(r.levelno, r.__dict__["cloudevent_type"], r.__dict__["cloudevent_id"]) for r in skipped]
    assert fields == [
        (logging.WARNING, "qbo.invoice.sent.v1", "8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d-Invoice-145"),
        (logging.WARNING, "qbo.invoice.updated.v2", "3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f-Invoice-1038"),
        (logging.WARNING, "qbo.estimate.accepted.v1", "6f7a8b9c-0d1e-4f2a-9b3c-4d5e6f7a8b9c-Estimate-2044"),
    ]
    assert {r.__dict__["raw_object_key"] for r in skipped} == {EXPECTED_KEY}


def test_each_published_change_is_logged_under_its_own_correlation_id(world: Ports) -> None:
    # given the invocation's correlation id is the delivery id (as the handler's decorator sets it)
    logger = get_logger(Service.QBO_INGEST)
    logger.set_correlation_id(DELIVERY_ID)
    powertools_format = logger.registered_handler.format
    formatted: list[dict[str, object]] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            formatted.append(json.loads(powertools_format(record)))

    capture = Capture()
    logging.getLogger(Service.QBO_INGEST).addHandler(capture)
    try:
        ingest_delivery(delivery(body_of("cloudevents_multi_realm.json")), world.ports())
    finally:
        logging.getLogger(Service.QBO_INGEST).removeHandler(capture)
        logger.set_correlation_id(None)

    published = [line for line in formatted if line["message"] == "event published"]
    expected = [detail["correlation_id"] for detail in world.publisher.details()]
    assert [line["correlation_id"] for line in published] == expected
    assert published[1]["entity"] == "Customer"
    # while the lines about the delivery as a whole keep the delivery's own
    archived = next(line for line in formatted if line["message"] == "delivery archived")
    assert archived["correlation_id"] == DELIVERY_ID
    assert VERIFIER_TOKEN not in json.dumps(formatted)


def _event_ids_of(body: bytes) -> tuple[str, list[str]]:
    parsed = parse_delivery(body)
    return parsed.source_format, [change.change_id for change in parsed.changes]


def test_an_event_whose_id_qbo_could_not_have_issued_costs_its_delivery_nothing(world: Ports) -> None:
    # given a signed delivery of 21 invoice events, one with intuitentityid "INV-0001/A"
    records: list[logging.LogRecord] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    capture = Capture()
    logging.getLogger(Service.QBO_INGEST).addHandler(capture)
    try:
        # when it is ingested
        result = ingest_delivery(delivery(body_of("cloudevents_invalid_entity_id.json")), world.ports())
    finally:
        logging.getLogger(Service.QBO_INGEST).removeHandler(capture)

    # then the 20 others are published and the delivery is archived whole
    assert len(world.publisher.entries) == 20
    assert "INV-0001/A" not in {detail["payload"]["entity_id"] for detail in world.publisher.details()}
    assert EXPECTED_KEY in world.archive.objects
    # and the skipped event is returned with its reason and logged at WARNING saying why
    assert [(s.entity_id, s.reason) for s in result.unsupported] == [("INV-0001/A", "invalid_entity_id")]
    assert (result.skipped("invalid_entity_id"), result.skipped("unsupported_type")) == (1, 0)
    warned = [r for r in records if r.getMessage() == "event with an invalid entity id skipped"]
    assert [(r.levelno, r.__dict__["entity_id"], r.__dict__["reason"]) for r in warned] == [
        (logging.WARNING, "INV-0001/A", "invalid_entity_id")
    ]
    assert (
        warned[0].__dict__["detail"].startswith("$[13].intuitentityid: 'INV-0001/A' is not a QBO entity id")
    )


def test_legacy_entities_with_impossible_ids_are_skipped_and_the_others_published(world: Ports) -> None:
    result = ingest_delivery(delivery(body_of("legacy_invalid_entity_id.json")), world.ports())
    assert sorted(detail["payload"]["entity_id"] for detail in world.publisher.details()) == ["1201", "1202"]
    assert [(s.entity_id, s.source_format) for s in result.unsupported] == [
        ("INV-0001/A", "legacy"),
        ("58", "legacy"),
    ]
    assert EXPECTED_KEY in world.archive.objects


@pytest.mark.parametrize("case", ADVERSARIAL, ids=lambda case: case.name)
def test_a_signed_body_that_used_to_crash_ingest_is_refused_and_archived(
    world: Ports, case: AdversarialCase
) -> None:
    with pytest.raises(MalformedWebhook, match=re.escape(case.expect_in_message)):
        ingest_delivery(delivery(case.body), world.ports())
    assert WebhookDelivery.from_json(world.archive.objects[EXPECTED_KEY]).body == case.body
    assert world.publisher.entries == []


def test_a_company_no_connection_serves_is_archived_and_skipped_while_the_served_one_is_published(
    world: Ports,
) -> None:
    # given a deployment serving only Intuit's sample company, and a delivery naming two companies
    ports = IngestPorts(
        verifier_token=world.token,
        archive=world.archive,
        publisher=world.publisher,
        served=FakeServedRealms({"9341455130122367": "sample"}, version="cfg-1"),
    )
    body = body_of("cloudevents_multi_realm.json")
    every_realm = {event["intuitaccountid"] for event in json.loads(body)}
    assert every_realm == {"9341455130122367", "4620816365215648290"}

    # when it is ingested
    result = ingest_delivery(delivery(body), ports)

    # then only the served company's changes are published, each naming its connection and config
    published = world.publisher.details()
    assert published and {d["payload"]["realm_id"] for d in published} == {"9341455130122367"}
    assert {(d["payload"]["connection"], d["payload"]["config_version"]) for d in published} == {
        ("sample", "cfg-1")
    }
    # and the other company's are skipped with the reason, the delivery archived whole (so a replay
    # after adding its connection publishes them)
    unserved = [s for s in result.unsupported if s.reason == "unserved_realm"]
    assert unserved and {s.realm_id for s in unserved} == {"4620816365215648290"}
    assert "no connection of this deployment serves realm 4620816365215648290" in unserved[0].detail
    assert EXPECTED_KEY in world.archive.objects
