"""HubSpot deliveries parsed: every subscription type LedgerLink reads, ids as numbers or digit
strings, and the malformed ones refused with the offending field named."""

from __future__ import annotations

import json

import pytest

from ledgerlink.hubspot.webhooks import (
    MAX_EVENTS_PER_DELIVERY,
    HubSpotEvent,
    MalformedWebhook,
    delivery_portal_id,
    parse_delivery,
)
from tests.unit.ingest.hubspot_requests import body_of, malformed_cases


def test_a_deal_stage_change_is_read_field_by_field() -> None:
    (event,) = parse_delivery(body_of("deal_stage_changed.json"), max_events=100)
    assert event == HubSpotEvent(
        event_id="3000000101",
        subscription_id="2910004",
        portal_id="48213570",
        app_id="3105112",
        occurred_at_ms=1795615370120,
        subscription_type="deal.propertyChange",
        attempt_number=0,
        object_id="91027",
        property_name="dealstage",
        property_value="contractsent",
        change_source="CRM_UI",
        source_id="userId:52119347",
    )
    assert (event.object_name, event.action) == ("deal", "propertyChange")


def test_every_legacy_deal_event_type_is_read_with_its_own_fields() -> None:
    events = parse_delivery(body_of("deal_events.json"), max_events=100)
    assert [e.subscription_type for e in events] == [
        "deal.creation",
        "deal.propertyChange",
        "deal.propertyChange",
        "deal.propertyChange",
        "deal.deletion",
        "deal.merge",
        "deal.restore",
        "deal.associationChange",
        "deal.associationChange",
    ]
    assert [(e.property_name, e.property_value) for e in events[1:4]] == [
        ("dealstage", "contractsent"),
        ("pipeline", "1204511"),
        ("amount", "1250.00"),
    ]
    merge = events[5]
    assert (merge.primary_object_id, merge.merged_object_ids, merge.new_object_id) == (
        "91034",
        ("91035", "91036"),
        "91040",
    )
    added, removed = events[7], events[8]
    assert (added.association_type, added.from_object_id, added.to_object_id, added.association_removed) == (
        "DEAL_TO_LINE_ITEM",
        "91031",
        "81007",
        False,
    )
    assert (removed.association_type, removed.association_removed) == ("COMPANY_TO_DEAL", True)
    assert {e.object_name for e in events} == {"deal"}


def test_line_item_events_are_read() -> None:
    events = parse_delivery(body_of("line_item_events.json"), max_events=100)
    assert [(e.object_name, e.action, e.object_id, e.property_name) for e in events] == [
        ("line_item", "creation", "81007", None),
        ("line_item", "propertyChange", "81007", "quantity"),
        ("line_item", "propertyChange", "81007", "price"),
        ("line_item", "deletion", "81008", None),
    ]


def test_generic_events_name_their_object_by_its_type_id() -> None:
    events = parse_delivery(body_of("generic_events.json"), max_events=100)
    assert [(e.subscription_type, e.object_type_id, e.object_name) for e in events] == [
        ("object.propertyChange", "0-3", "deal"),
        ("object.creation", "0-8", "line_item"),
        ("object.deletion", "0-3", "deal"),
        ("object.associationChange", "0-8", "line_item"),
        # a contact: a type id LedgerLink does not name
        ("object.creation", "0-1", None),
    ]
    association = events[3]
    assert (
        association.from_object_type_id,
        association.from_object_id,
        association.to_object_type_id,
        association.to_object_id,
    ) == ("0-8", "81009", "0-3", "91027")


def test_ids_sent_as_digit_strings_read_like_numbers_and_optional_fields_default() -> None:
    first, merge = parse_delivery(body_of("string_ids.json"), max_events=100)
    assert (first.event_id, first.subscription_id, first.portal_id, first.app_id, first.object_id) == (
        "3000000701",
        "2910004",
        "48213570",
        "3105112",
        "91027",
    )
    assert first.attempt_number == 2
    # a minimal event: no subscriptionId, appId or attemptNumber (taken as a first attempt)
    assert (merge.subscription_id, merge.app_id, merge.attempt_number) == (None, None, 0)
    assert merge.merged_object_ids == ("91035", "91036")


def test_fields_hubspot_may_add_later_are_let_through() -> None:
    event = json.loads(body_of("deal_stage_changed.json"))[0]
    event["isSensitive"] = False
    event["sourceMetadata"] = {"nested": [1, 2, {"deeper": True}]}
    (parsed,) = parse_delivery(json.dumps([event]).encode(), max_events=100)
    assert parsed.object_id == "91027"


def test_a_numeric_property_value_is_taken_as_its_json_text() -> None:
    event = json.loads(body_of("deal_stage_changed.json"))[0]
    event.update(propertyName="amount", propertyValue=1250.5)
    (parsed,) = parse_delivery(json.dumps([event]).encode(), max_events=100)
    assert parsed.property_value == "1250.5"


@pytest.mark.parametrize("case", malformed_cases(), ids=lambda case: case["name"])
def test_a_malformed_delivery_is_refused_naming_the_field(case: dict[str, str]) -> None:
    with pytest.raises(MalformedWebhook) as raised:
        parse_delivery(case["body"].encode("utf-8"), max_events=100)
    assert case["expect_in_message"] in str(raised.value)
    assert raised.value.reason == "malformed"


def test_more_events_than_allowed_are_refused_before_any_is_looked_at() -> None:
    # given 101 "events" that are not even objects
    body = json.dumps([0] * (MAX_EVENTS_PER_DELIVERY + 1)).encode()
    # then the count alone refuses the delivery
    with pytest.raises(MalformedWebhook, match=r"^\$: 101 events, more than the 100 LedgerLink accepts"):
        parse_delivery(body, max_events=MAX_EVENTS_PER_DELIVERY)


def test_the_cap_is_the_callers() -> None:
    body = body_of("deal_events.json")
    with pytest.raises(MalformedWebhook, match="9 events, more than the 8"):
        parse_delivery(body, max_events=8)
    assert len(parse_delivery(body, max_events=9)) == 9


def test_a_delivery_from_two_portals_is_refused_naming_the_second() -> None:
    with pytest.raises(MalformedWebhook) as raised:
        parse_delivery(body_of("mixed_portals.json"), max_events=100)
    assert str(raised.value) == (
        "$[1].portalId: 48213571 differs from $[0].portalId 48213570; one delivery must come from one portal"
    )


def test_the_portal_of_a_delivery_is_its_events_one() -> None:
    assert delivery_portal_id(parse_delivery(body_of("deal_events.json"), max_events=100)) == "48213570"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\xff\xfe[]", "$: the body is not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "$: arrays and objects are nested too deep"),
        (b'[{"objectId": ' + b"9" * 5000 + b"}]", "$: the body holds an integer of more than"),
        (b"", "$: the body is not valid JSON"),
    ],
    ids=["not utf-8", "nested too deep", "a huge integer", "empty"],
)
def test_bodies_that_are_no_json_document_are_malformed(body: bytes, message: str) -> None:
    with pytest.raises(MalformedWebhook) as raised:
        parse_delivery(body, max_events=100)
    assert str(raised.value).startswith(message)


def test_a_long_value_in_an_error_is_cut_short() -> None:
    event = json.loads(body_of("deal_stage_changed.json"))[0]
    event["objectId"] = "x" * 100_000
    with pytest.raises(MalformedWebhook) as raised:
        parse_delivery(json.dumps([event]).encode(), max_events=100)
    assert len(str(raised.value)) < 200
