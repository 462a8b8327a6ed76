"""Both QBO webhook formats become the same EntityChange records; anything else is refused, field named."""

from __future__ import annotations

import json

import pytest
from ledgerlink.qbo.webhooks import (
    EntityChange,
    MalformedWebhook,
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
    source_format, changes = parse_delivery(body)

    # then every event is a change, in delivery order, with QBO's entity and operation names
    assert source_format == "cloudevents"
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
    _, changes = parse_delivery(body_of("cloudevents_invoice_created.json"))
    assert changes[0].last_updated == "2026-11-25T14:02:51.483921337Z"
    _, changes = parse_delivery(body_of("cloudevents_multi_realm.json"))
    # "2026-11-25T09:05:14.000-05:00" is the same instant as 14:05:14Z
    assert changes[2].last_updated == "2026-11-25T14:05:14Z"


def test_an_event_without_data_or_datacontenttype_is_accepted() -> None:
    _, changes = parse_delivery(body_of("cloudevents_without_data.json"))
    assert changes == [
        EntityChange(
            realm_id=REALM_A,
            entity="SalesReceipt",
            entity_id="150",
            operation="Update",
            last_updated="2026-11-25T14:19:17Z",
            source_format="cloudevents",
            cloudevent_id="c3d4e5f6-0718-4c9d-8e1f-2a3b4c5d6e7f-SalesReceipt-150",
        )
    ]


def test_an_unknown_but_well_formed_entity_type_is_accepted() -> None:
    # consumers filter on entity; a new QBO entity must not block the delivery
    _, changes = parse_delivery(body_of("cloudevents_unknown_entity.json"))
    assert [(c.entity, c.entity_id, c.operation) for c in changes] == [("Projecttask", "12", "Create")]


def test_the_same_change_listed_twice_is_kept_once() -> None:
    _, changes = parse_delivery(body_of("cloudevents_duplicate_change.json"))
    assert len(changes) == 1


def test_a_legacy_delivery_becomes_one_change_per_entity_across_realms() -> None:
    # given the legacy eventNotifications body, two realms, with a Merge carrying deletedId
    source_format, changes = parse_delivery(body_of("legacy_multi_realm.json"))

    assert source_format == "legacy"
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
    assert parse_delivery(body_of("legacy_empty_entities.json")) == ("legacy", [])


def test_the_same_change_in_either_format_has_the_same_change_id() -> None:
    # given the fixtures announce the same six changes, with different offsets and precisions
    _, cloud = parse_delivery(body_of("cloudevents_multi_realm.json"))
    _, legacy = parse_delivery(body_of("legacy_multi_realm.json"))

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
    _, changes = parse_delivery(json.dumps([event]).encode())
    assert [(c.entity_id, c.deleted_id) for c in changes] == [("145", None)]


def test_a_huge_offending_value_does_not_make_a_huge_message() -> None:
    # given eventNotifications is a 200 kB object instead of an array
    body = json.dumps({"eventNotifications": {"padding": "x" * 200_000}}).encode()

    with pytest.raises(MalformedWebhook) as caught:
        parse_delivery(body)

    message = str(caught.value)
    assert message.startswith("$.eventNotifications: ")
    assert len(message) <= 300
