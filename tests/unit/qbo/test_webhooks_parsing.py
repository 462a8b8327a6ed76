"""Both QBO webhook formats become the same EntityChange records; anything else is refused, field named."""

from __future__ import annotations

import json

import pytest

from ledgerlink.qbo.webhooks import (
    EntityChange,
    MalformedWebhook,
    ParsedDelivery,
    UnsupportedEvent,
    normalize_timestamp,
    parse_delivery,
)
from tests.unit.ingest.signed_requests import body_of, fixture_path, malformed_cases

REALM_A = "9341455130122367"
REALM_B = "4620816365215648290"


def test_a_cloudevents_delivery_becomes_one_change_per_event() -> None:
    # given Intuit's CloudEvents array covering two realms and six operations
    body = body_of("cloudevents_multi_realm.json")

    # when it is parsed
    parsed = parse_delivery(body)

    # then every event is a change, in delivery order, with QBO's entity and operation names
    assert parsed.source_format == "cloudevents"
    assert parsed.unsupported == ()
    changes = parsed.changes
    assert [(c.realm_id, c.entity, c.entity_id, c.operation) for c in changes] == [
        (REALM_A, "Invoice", "1038", "Update"),
        (REALM_A, "Customer", "58", "Merge"),
        (REALM_B, "Payment", "902", "Void"),
        (REALM_B, "TimeActivity", "77", "Delete"),
        (REALM_B, "BillPayment", "311", "Create"),
        (REALM_A, "Estimate", "2044", "Emailed"),
        (REALM_A, "Employee", "000000011", "Create"),
    ]
    assert changes[1].deleted_id == "27"
    assert changes[0].cloudevent_id == "0b8e2a44-61f3-4d0e-b7c2-93e1f5a8c210-Invoice-1038"
    assert all(c.source_format == "cloudevents" for c in changes)


def test_cloudevent_times_are_normalised_to_utc_keeping_every_fraction_digit() -> None:
    changes = parse_delivery(body_of("cloudevents_invoice_created.json")).changes
    assert changes[0].last_updated == "2026-11-25T14:02:51.483921337Z"
    changes = parse_delivery(body_of("cloudevents_multi_realm.json")).changes
    # "2026-11-25T09:05:14.000-05:00" is the same instant as 14:05:14Z
    assert changes[2].last_updated == "2026-11-25T14:05:14Z"


def test_an_event_without_data_or_datacontenttype_is_accepted() -> None:
    changes = parse_delivery(body_of("cloudevents_without_data.json")).changes
    assert changes == (
        EntityChange(
            realm_id=REALM_A,
            entity="SalesReceipt",
            entity_id="150",
            operation="Update",
            last_updated="2026-11-25T14:19:17Z",
            source_format="cloudevents",
            cloudevent_id="c3d4e5f6-0718-4c9d-8e1f-2a3b4c5d6e7f-SalesReceipt-150",
        ),
    )


def test_an_unknown_but_well_formed_entity_type_is_accepted() -> None:
    # consumers filter on entity; a new QBO entity must not block the delivery
    changes = parse_delivery(body_of("cloudevents_unknown_entity.json")).changes
    assert [(c.entity, c.entity_id, c.operation) for c in changes] == [("Projecttask", "12", "Create")]


def test_events_of_types_ledgerlink_does_not_know_are_set_apart_from_the_changes() -> None:
    # given a delivery mixing known types with a new verb (listed twice), a new version and another verb
    body = body_of("cloudevents_unsupported_types.json")

    # when it is parsed
    parsed = parse_delivery(body)

    # then the known events are changes, in delivery order
    assert [(c.realm_id, c.entity, c.entity_id, c.operation) for c in parsed.changes] == [
        (REALM_A, "Invoice", "145", "Create"),
        (REALM_B, "Payment", "902", "Create"),
    ]
    # and the others are set apart once each, with what a replay or an operator needs to find them
    assert parsed.unsupported == (
        UnsupportedEvent(
            type="qbo.invoice.sent.v1",
            cloudevent_id="8a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d-Invoice-145",
            realm_id=REALM_A,
            entity_id="145",
            time="2026-11-25T14:03:05Z",
        ),
        UnsupportedEvent(
            type="qbo.invoice.updated.v2",
            cloudevent_id="3c4d5e6f-7a8b-4c9d-8e0f-1a2b3c4d5e6f-Invoice-1038",
            realm_id=REALM_A,
            entity_id="1038",
            time="2026-11-25T14:03:07.25Z",
        ),
        UnsupportedEvent(
            type="qbo.estimate.accepted.v1",
            cloudevent_id="6f7a8b9c-0d1e-4f2a-9b3c-4d5e6f7a8b9c-Estimate-2044",
            realm_id=REALM_A,
            entity_id="2044",
            time="2026-11-25T14:03:11Z",
        ),
    )


@pytest.mark.parametrize(
    ("event_type", "supported"),
    [
        ("qbo.invoice.created.v1", True),
        ("qbo.invoice.emailed.v1", True),
        ("qbo.invoice.sent.v1", False),
        ("qbo.invoice.created.v2", False),
        ("qbo.invoice.created.v10", False),
        ("qbo.invoice.created.v0", False),
        ("qbo.projecttask.archived.v1", False),
    ],
)
def test_a_type_is_published_only_when_both_its_verb_and_its_version_are_known(
    event_type: str, supported: bool
) -> None:
    event = json.loads(body_of("cloudevents_invoice_created.json"))[0]
    event["type"] = event_type

    parsed = parse_delivery(json.dumps([event]).encode())

    assert (len(parsed.changes), len(parsed.unsupported)) == ((1, 0) if supported else (0, 1))


def test_the_same_change_listed_twice_is_kept_once() -> None:
    parsed = parse_delivery(body_of("cloudevents_duplicate_change.json"))
    assert len(parsed.changes) == 1


def test_a_legacy_delivery_becomes_one_change_per_entity_across_realms() -> None:
    # given the legacy eventNotifications body, two realms, with a Merge carrying deletedId
    parsed = parse_delivery(body_of("legacy_multi_realm.json"))

    assert (parsed.source_format, parsed.unsupported) == ("legacy", ())
    changes = parsed.changes
    assert [(c.realm_id, c.entity, c.entity_id, c.operation, c.last_updated) for c in changes] == [
        (REALM_A, "Invoice", "1038", "Update", "2026-11-25T14:05:12.5Z"),
        (REALM_A, "Customer", "58", "Merge", "2026-11-25T14:05:13Z"),
        (REALM_A, "Estimate", "2044", "Emailed", "2026-11-25T14:05:17.25Z"),
        (REALM_B, "Payment", "902", "Void", "2026-11-25T14:05:14Z"),
        (REALM_B, "TimeActivity", "77", "Delete", "2026-11-25T14:05:15.12Z"),
        (REALM_B, "BillPayment", "311", "Create", "2026-11-25T14:05:16Z"),
    ]
    assert changes[1].deleted_id == "27"
    assert all(c.cloudevent_id is None and c.source_format == "legacy" for c in changes)


def test_a_legacy_notification_naming_no_entity_is_accepted_with_no_change() -> None:
    assert parse_delivery(body_of("legacy_empty_entities.json")) == ParsedDelivery("legacy", changes=())


def test_the_same_change_in_either_format_has_the_same_change_id() -> None:
    # given the fixtures announce the same six changes, with different offsets and precisions
    cloud = parse_delivery(body_of("cloudevents_multi_realm.json")).changes
    legacy = parse_delivery(body_of("legacy_multi_realm.json")).changes

    # then each legacy change has the id of its CloudEvents twin (the employee is CloudEvents-only)
    cloud_ids = {(c.entity, c.entity_id): c.change_id for c in cloud}
    for change in legacy:
        assert change.change_id == cloud_ids[(change.entity, change.entity_id)]


def test_change_ids_differ_when_any_identifying_field_differs() -> None:
    base = EntityChange(REALM_A, "Invoice", "1", "Update", "2026-11-25T14:00:00Z", "cloudevents")
    variants = [
        EntityChange(REALM_B, "Invoice", "1", "Update", "2026-11-25T14:00:00Z", "cloudevents"),
        EntityChange(REALM_A, "Estimate", "1", "Update", "2026-11-25T14:00:00Z", "cloudevents"),
        EntityChange(REALM_A, "Invoice", "2", "Update", "2026-11-25T14:00:00Z", "cloudevents"),
        EntityChange(REALM_A, "Invoice", "1", "Void", "2026-11-25T14:00:00Z", "cloudevents"),
        EntityChange(REALM_A, "Invoice", "1", "Update", "2026-11-25T14:00:01Z", "cloudevents"),
    ]
    assert len({base.change_id, *(v.change_id for v in variants)}) == 6


@pytest.mark.parametrize("case", malformed_cases(), ids=lambda case: case["name"])
def test_a_malformed_delivery_is_refused_naming_the_field(case: dict[str, str]) -> None:
    with pytest.raises(MalformedWebhook) as caught:
        parse_delivery(case["body"].encode("utf-8"))
    assert case["expect_in_message"] in str(caught.value)


def test_a_body_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(MalformedWebhook, match="not UTF-8"):
        parse_delivery(fixture_path("malformed/not_utf8.bin").read_bytes())


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("2015-10-05T14:42:19-0700", "2015-10-05T21:42:19Z"),
        ("2015-10-05T14:42:19-07:00", "2015-10-05T21:42:19Z"),
        ("2026-03-08T01:59:59.999999999-05:00", "2026-03-08T06:59:59.999999999Z"),
        ("2026-12-31T23:30:00.100-01:00", "2027-01-01T00:30:00.1Z"),
        ("2026-11-25T14:00:00.000Z", "2026-11-25T14:00:00Z"),
        ("2026-11-25T14:00:00+05:45", "2026-11-25T08:15:00Z"),
    ],
)
def test_timestamps_are_normalised_to_the_same_instant_in_utc(written: str, normalised: str) -> None:
    assert normalize_timestamp(written, "$.t") == normalised


@pytest.mark.parametrize(
    "written", ["2026-02-30T10:00:00Z", "2026-11-25T14:00:00+24:00", "2026-11-25 14:00:00Z"]
)
def test_impossible_timestamps_are_refused_naming_the_field(written: str) -> None:
    with pytest.raises(MalformedWebhook, match=r"^\$\.t: "):
        normalize_timestamp(written, "$.t")


def test_data_that_is_not_an_object_is_tolerated() -> None:
    # data varies by entity and operation; LedgerLink only reads deletedid from it
    event = json.loads(body_of("cloudevents_invoice_created.json"))[0]
    event["data"] = "a string payload"
    changes = parse_delivery(json.dumps([event]).encode()).changes
    assert [(c.entity_id, c.deleted_id) for c in changes] == [("145", None)]


def test_a_huge_offending_value_does_not_make_a_huge_message() -> None:
    # given eventNotifications is a 200 kB object instead of an array
    body = json.dumps({"eventNotifications": {"padding": "x" * 200_000}}).encode()

    with pytest.raises(MalformedWebhook) as caught:
        parse_delivery(body)

    message = str(caught.value)
    assert message.startswith("$.eventNotifications: ")
    assert len(message) <= 300
