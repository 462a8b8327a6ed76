"""The HubSpot ingest's domain with in-memory ports: what is published, archived, skipped and refused."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from ledgerlink.hubspot.webhooks import (
    HubSpotWebhookError,
    InvalidSignature,
    MalformedWebhook,
    MissingSignature,
    StaleTimestamp,
)
from ledgerlink.ingest.archive import WebhookDelivery
from ledgerlink.ingest.fakes import FakeServedPortals, InMemoryEventPublisher, InMemoryRawArchive
from ledgerlink.ingest.hubspot import HubSpotIngestPorts, UnknownPortal, ingest_hubspot_delivery
from ledgerlink.ingest.ports import ArchiveError, SigningSecretUnavailable
from ledgerlink.ingest.signing_secret import SecretStoreSigningSecrets
from ledgerlink.publisher import PublishError
from ledgerlink.secrets import InMemorySecretStore
from tests.unit.ingest.hubspot_requests import (
    CLIENT_SECRETS,
    OTHER_SECRET,
    PUBLIC_URL,
    RECEIVED_MS,
    RECORDED_PORTALS,
    SENT_MS,
    STAGE,
    body_of,
    hubspot_signature,
    secret_name,
)

DELIVERY_ID = "Hx7pRwYcIAMEbQw="
ARCHIVE_KEY = "hubspot/raw/2026/11/25/14/Hx7pRwYcIAMEbQw=.json"


@dataclass
class World:
    archive: InMemoryRawArchive = field(default_factory=InMemoryRawArchive)
    publisher: InMemoryEventPublisher = field(default_factory=InMemoryEventPublisher)
    secrets: InMemorySecretStore = field(
        default_factory=lambda: InMemorySecretStore(
            {
                secret_name(name): {"access_token": f"pat-{name}", "client_secret": secret}
                for name, secret in CLIENT_SECRETS.items()
            }
        )
    )

    def ports(self) -> HubSpotIngestPorts:
        return HubSpotIngestPorts(
            signing_secrets=SecretStoreSigningSecrets(self.secrets, STAGE),
            archive=self.archive,
            publisher=self.publisher,
            served=FakeServedPortals(RECORDED_PORTALS, version="cfg-1234abcd"),
        )

    def payloads(self) -> list[dict[str, Any]]:
        return [detail["payload"] for detail in self.publisher.details()]


def delivery(
    body: bytes,
    *,
    secret: str = CLIENT_SECRETS["sample"],
    url: str = PUBLIC_URL,
    timestamp: str = str(SENT_MS),
    extra_headers: dict[str, str] | None = None,
) -> WebhookDelivery:
    headers = {
        "content-type": "application/json",
        "user-agent": "HubSpot Connect 2.0 (http://dev.hubspot.com/) - WebhooksExecutorDaemon-executor",
        "x-hubspot-request-timestamp": timestamp,
        "x-hubspot-signature-v3": hubspot_signature(secret, "POST", url, body, timestamp),
        "x-hubspot-timeout-millis": "10000",
        "x-forwarded-for": "54.174.62.3",
        **(extra_headers or {}),
    }
    return WebhookDelivery(
        delivery_id=DELIVERY_ID,
        received_at=datetime.fromtimestamp(RECEIVED_MS / 1000, tz=UTC),
        headers=headers,
        body=body,
    )


def ingest(world: World, incoming: WebhookDelivery, *, url: str = PUBLIC_URL, max_events: int = 100) -> Any:
    return ingest_hubspot_delivery(
        incoming, world.ports(), public_url=url, now_ms=RECEIVED_MS, max_events=max_events
    )


def test_a_deal_stage_change_is_archived_then_published_as_hubspot_deal_changed() -> None:
    # given a signed delivery of one deal stage change from the "sample" connection's portal
    world = World()
    body = body_of("deal_stage_changed.json")

    # when it is ingested
    result = ingest(world, delivery(body))

    # then one hubspot.deal.changed event is on the bus, naming the connection and the deal
    (entry,) = world.publisher.entries
    assert (entry["Source"], entry["DetailType"]) == ("ledgerlink.hubspot.webhooks", "hubspot.deal.changed")
    detail = json.loads(entry["Detail"])
    assert detail["payload"] == {
        "connection": "sample",
        "config_version": "cfg-1234abcd",
        "portal_id": "48213570",
        "change": "stage_changed",
        "object_type": "deal",
        "object_id": "91027",
        "deal_id": "91027",
        "subscription_type": "deal.propertyChange",
        "property_name": "dealstage",
        "property_value": "contractsent",
        "change_source": "CRM_UI",
        "source_id": "userId:52119347",
        "app_id": "3105112",
        "subscription_id": "2910004",
        "occurred_at_ms": 1795615370120,
        "hubspot_event_id": "3000000101",
        "attempt_number": 0,
        "merged_object_ids": [],
        "delivery_id": DELIVERY_ID,
        "raw_object_key": ARCHIVE_KEY,
    }
    assert detail["occurred_at"] == "2026-11-25T14:02:50.120Z"
    assert detail["correlation_id"] == detail["event_id"]
    assert len(detail["event_id"]) == 64
    assert (result.connection, result.portal_id, len(result.events), result.skipped) == (
        "sample",
        "48213570",
        1,
        (),
    )
    # and the raw delivery is archived, byte for byte, with what re-verifies it and how it was verified
    archived = json.loads(world.archive.objects[ARCHIVE_KEY])
    assert archived["verified"] == "v3"
    assert archived["public_url"] == PUBLIC_URL
    assert sorted(archived["headers"]) == [
        "content-type",
        "user-agent",
        "x-hubspot-request-timestamp",
        "x-hubspot-signature-v3",
    ]
    restored = WebhookDelivery.from_json(world.archive.objects[ARCHIVE_KEY])
    assert restored.body == body
    assert (restored.verified, restored.public_url) == ("v3", PUBLIC_URL)


def test_every_deal_event_type_becomes_its_change() -> None:
    world = World()
    ingest(world, delivery(body_of("deal_events.json")))
    assert [(p["change"], p["object_id"], p["deal_id"]) for p in world.payloads()] == [
        ("created", "91031", "91031"),
        ("stage_changed", "91031", "91031"),
        # a pipeline move changes the stage too
        ("stage_changed", "91032", "91032"),
        ("property_changed", "91031", "91031"),
        ("deleted", "91033", "91033"),
        # the deal that remains after a merge, with the ones merged away
        ("merged", "91034", "91040"),
        ("restored", "91033", "91033"),
        # the deal end of the association, whichever side it is on
        ("associations_changed", "91031", "91031"),
        ("associations_changed", "21004", "91032"),
    ]
    assert world.payloads()[5]["merged_object_ids"] == ["91035", "91036"]


def test_a_merge_without_a_new_record_names_the_primary_deal() -> None:
    world = World()
    ingest(world, delivery(body_of("string_ids.json")))
    merge = world.payloads()[1]
    assert (merge["change"], merge["deal_id"], merge["subscription_id"], merge["app_id"]) == (
        "merged",
        "91034",
        None,
        None,
    )


def test_line_item_events_are_line_item_changes_without_a_deal() -> None:
    world = World()
    ingest(world, delivery(body_of("line_item_events.json")))
    assert [
        (p["change"], p["object_type"], p["object_id"], p["deal_id"], p["property_name"])
        for p in world.payloads()
    ] == [
        ("line_item_changed", "line_item", "81007", None, None),
        ("line_item_changed", "line_item", "81007", None, "quantity"),
        ("line_item_changed", "line_item", "81007", None, "price"),
        ("line_item_changed", "line_item", "81008", None, None),
    ]


def test_generic_events_of_deals_and_line_items_are_understood_and_others_skipped() -> None:
    world = World()
    result = ingest(world, delivery(body_of("generic_events.json")))
    assert [
        (p["subscription_type"], p["change"], p["object_type"], p["deal_id"]) for p in world.payloads()
    ] == [
        ("object.propertyChange", "stage_changed", "deal", "91027"),
        ("object.creation", "line_item_changed", "line_item", None),
        ("object.deletion", "deleted", "deal", "91028"),
    ]
    # a line item's association change and a contact's creation are not LedgerLink's to act on
    assert [(e.subscription_type, e.object_type_id) for e in result.skipped] == [
        ("object.associationChange", "0-8"),
        ("object.creation", "0-1"),
    ]


def test_unknown_types_are_skipped_logged_and_kept_in_the_archive(caplog: pytest.LogCaptureFixture) -> None:
    # given a delivery of one deal stage change and four events LedgerLink does not act on
    world = World()
    body = body_of("unsupported_types.json")

    # when it is ingested
    result = ingest(world, delivery(body))

    # then the stage change alone is published
    assert [p["hubspot_event_id"] for p in world.payloads()] == ["3000000602"]
    # and the others are skipped, each with a WARNING line naming its type
    assert [e.subscription_type for e in result.skipped] == [
        "contact.creation",
        "company.propertyChange",
        "line_item.associationChange",
        "object.creation",
    ]
    warnings = [r for r in caplog.records if r.levelname == "WARNING" and "skipped" in r.getMessage()]
    assert len(warnings) == 4
    # and the archive holds the whole delivery, skipped events included
    assert WebhookDelivery.from_json(world.archive.objects[ARCHIVE_KEY]).body == body


def test_identical_events_are_published_once_and_a_retry_has_the_same_event_id() -> None:
    # given a delivery repeating one stage change (a retried copy, one under another eventId) and a
    # later change that reuses the first eventId
    world = World()
    result = ingest(world, delivery(body_of("duplicates.json")))

    # then two events are published: the change once, and the later change
    assert [(p["property_value"], p["hubspot_event_id"]) for p in world.payloads()] == [
        ("closedwon", "3000000501"),
        ("closedlost", "3000000501"),
    ]
    assert result.duplicates == 2
    first_id = result.events[0].event_id

    # when HubSpot delivers the first change again in a later request (attempt 1, another eventId)
    event = json.loads(body_of("duplicates.json"))[0]
    event.update(eventId=3000009999, attemptNumber=3)
    again = World()
    ingest(again, delivery(json.dumps([event]).encode()))

    # then it carries the same event id, for the consumers to deduplicate on
    assert [json.loads(e["Detail"])["event_id"] for e in again.publisher.entries] == [first_id]


def test_events_that_differ_only_in_what_happened_get_different_event_ids() -> None:
    world = World()
    base = json.loads(body_of("deal_events.json"))[7]
    removed = {**base, "associationRemoved": True}
    other_end = {**base, "toObjectId": 81008}
    result = ingest(world, delivery(json.dumps([base, removed, other_end]).encode()))
    assert len({envelope.event_id for envelope in result.events}) == 3


def test_a_delivery_from_a_portal_no_connection_serves_is_refused_and_leaves_no_trace() -> None:
    world = World()
    with pytest.raises(UnknownPortal) as raised:
        ingest(world, delivery(body_of("unknown_portal.json")))
    assert raised.value.reason == "unknown_portal"
    assert "HubSpot portal 99887766" in str(raised.value)
    assert "cfg-1234abcd" in str(raised.value)
    assert world.archive.objects == {}
    assert world.publisher.entries == []


def test_the_signing_secret_is_the_portals_own() -> None:
    # given a delivery from the "second" connection's portal signed with the first's secret
    world = World()
    event = json.loads(body_of("deal_stage_changed.json"))[0]
    body = json.dumps([{**event, "portalId": 48213571}]).encode()
    with pytest.raises(InvalidSignature):
        ingest(world, delivery(body, secret=CLIENT_SECRETS["sample"]))
    # then signed with its own app's secret it is accepted, as that connection's
    result = ingest(world, delivery(body, secret=CLIENT_SECRETS["second"]))
    assert result.connection == "second"
    assert world.payloads()[0]["connection"] == "second"


@pytest.mark.parametrize(
    ("make", "error", "reason"),
    [
        (lambda b: delivery(b, secret=OTHER_SECRET), InvalidSignature, "invalid_signature"),
        (
            lambda b: delivery(
                b, url="https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com/v1/webhooks/qbo"
            ),
            InvalidSignature,
            "invalid_signature",
        ),
        (lambda b: delivery(b, timestamp=str(SENT_MS - 301_000)), StaleTimestamp, "stale_timestamp"),
        (lambda b: delivery(b, timestamp=str(RECEIVED_MS + 301_000)), StaleTimestamp, "stale_timestamp"),
        (
            lambda b: delivery(b, extra_headers={"x-hubspot-signature-v3": ""}),
            MissingSignature,
            "missing_signature",
        ),
    ],
    ids=["wrong secret", "another URL", "stale", "from the future", "signature missing"],
)
def test_an_unverified_delivery_is_refused_and_leaves_no_trace(
    make: Any, error: type[HubSpotWebhookError], reason: str
) -> None:
    world = World()
    with pytest.raises(error) as raised:
        ingest(world, make(body_of("deal_stage_changed.json")))
    assert raised.value.reason == reason
    assert world.archive.objects == {}
    assert world.publisher.entries == []


def test_a_stale_timestamp_is_refused_before_the_body_is_read() -> None:
    # given a stale request whose body is not even JSON
    world = World()
    with pytest.raises(StaleTimestamp):
        ingest(world, delivery(b"not json", timestamp=str(SENT_MS - 3_600_000)))


def test_a_malformed_delivery_names_the_field_and_is_not_archived() -> None:
    world = World()
    event = json.loads(body_of("deal_stage_changed.json"))[0]
    del event["objectId"]
    with pytest.raises(MalformedWebhook, match=r"\$\[0\]\.objectId: is required"):
        ingest(world, delivery(json.dumps([event]).encode()))
    # (unverifiable: no portal, no secret; nothing unverified is stored)
    assert world.archive.objects == {}


def test_when_the_archive_is_down_nothing_is_published() -> None:
    world = World()
    world.archive.fail_with = "S3 unreachable"
    with pytest.raises(ArchiveError):
        ingest(world, delivery(body_of("deal_events.json")))
    assert world.publisher.entries == []


def test_when_events_are_refused_the_archive_is_kept_and_the_error_says_how_many() -> None:
    world = World()
    first = ingest(World(), delivery(body_of("deal_events.json"))).events[0].event_id
    world.publisher.refuse_event_ids = {first}
    with pytest.raises(PublishError, match="1 of 9 events were not published"):
        ingest(world, delivery(body_of("deal_events.json")))
    assert list(world.archive.objects) == [ARCHIVE_KEY]


@pytest.mark.parametrize(
    ("secret_value", "expect"),
    [
        ({"access_token": "pat-sample"}, "has no 'client_secret' string"),
        ({"access_token": "pat-sample", "client_secret": "  "}, "has no 'client_secret' string"),
        ("pat-sample", "must be a JSON object"),
    ],
    ids=["field missing", "field blank", "not JSON"],
)
def test_a_secret_without_the_client_secret_is_a_clear_503_reason(secret_value: Any, expect: str) -> None:
    world = World()
    world.secrets = InMemorySecretStore({secret_name("sample"): secret_value})
    with pytest.raises(SigningSecretUnavailable) as raised:
        ingest(world, delivery(body_of("deal_stage_changed.json")))
    assert raised.value.reason == "signing_secret_unavailable"
    assert expect in str(raised.value)
    assert secret_name("sample") in str(raised.value)
    assert "pat-sample" not in str(raised.value)
    assert world.archive.objects == {}


def test_an_unreadable_secret_is_unavailable_naming_it_only() -> None:
    world = World()
    world.secrets = InMemorySecretStore({})
    with pytest.raises(SigningSecretUnavailable, match="could not be read"):
        ingest(world, delivery(body_of("deal_stage_changed.json")))


def test_the_secret_never_appears_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    world = World()
    ingest(world, delivery(body_of("deal_events.json")))
    with pytest.raises(InvalidSignature):
        ingest(world, delivery(body_of("deal_events.json"), secret=OTHER_SECRET))
    assert caplog.records
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert CLIENT_SECRETS["sample"] not in text


def test_a_very_long_property_value_is_published_as_null_and_kept_in_the_archive() -> None:
    world = World()
    event = json.loads(body_of("deal_stage_changed.json"))[0]
    event.update(propertyName="description", propertyValue="x" * 5000)
    body = json.dumps([event]).encode()
    ingest(world, delivery(body))
    (payload,) = world.payloads()
    assert (payload["change"], payload["property_value"]) == ("property_changed", None)
    assert WebhookDelivery.from_json(world.archive.objects[ARCHIVE_KEY]).body == body


def test_the_event_cap_is_the_callers() -> None:
    world = World()
    with pytest.raises(MalformedWebhook, match="9 events, more than the 5"):
        ingest(world, delivery(body_of("deal_events.json")), max_events=5)
