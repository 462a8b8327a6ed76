"""What an adversarial run broke: ids QBO could not have issued, and bodies that crashed or stalled the parser.

Every body in tests/webhook_cases.py once got a 500 (RecursionError, a ValueError from the JSON
decoder, OverflowError) or took longer than the function's timeout; each must now be refused as
malformed with a message naming the problem, and an event with an impossible id must be skipped
without costing its delivery's other events.
"""

from __future__ import annotations

import json

import pytest

from ledgerlink.events import validate_detail
from ledgerlink.ingest.service import change_event
from ledgerlink.qbo.webhooks import (
    MalformedWebhook,
    UnsupportedEvent,
    normalize_timestamp,
    parse_delivery,
)
from tests.unit.ingest.signed_requests import body_of
from tests.webhook_cases import ADVERSARIAL, REALM, AdversarialCase


def test_an_event_whose_id_qbo_could_not_have_issued_is_skipped_and_the_other_20_are_changes() -> None:
    # given 21 invoice events, one of them with intuitentityid "INV-0001/A"
    body = body_of("cloudevents_invalid_entity_id.json")

    # when the delivery is parsed
    parsed = parse_delivery(body)

    # then the 20 others are changes, in delivery order
    assert [c.entity_id for c in parsed.changes] == [str(n) for n in range(1201, 1222) if n != 1214]
    # and the odd one is set apart with its reason, the field and the rule it breaks
    assert parsed.unsupported == (
        UnsupportedEvent(
            type="qbo.invoice.created.v1",
            cloudevent_id="7d1e4b20-5c3a-4f8e-b9d6-0a2c4e6f8b13-Invoice-INV-0001/A",
            realm_id=REALM,
            entity_id="INV-0001/A",
            time="2026-11-25T15:13:03.113Z",
            reason="invalid_entity_id",
            detail="$[13].intuitentityid: 'INV-0001/A' is not a QBO entity id LedgerLink can read "
            "(1-64 letters, digits, '-' or '_')",
        ),
    )


def test_legacy_entities_with_impossible_ids_or_merged_away_ids_are_skipped_too() -> None:
    parsed = parse_delivery(body_of("legacy_invalid_entity_id.json"))

    assert [(c.entity, c.entity_id, c.operation) for c in parsed.changes] == [
        ("Invoice", "1201", "Create"),
        ("Invoice", "1202", "Update"),
    ]
    assert [(s.type, s.entity_id, s.reason, s.source_format) for s in parsed.unsupported] == [
        ("Invoice.Update", "INV-0001/A", "invalid_entity_id", "legacy"),
        ("Customer.Merge", "58", "invalid_entity_id", "legacy"),
    ]
    assert parsed.unsupported[1].detail.startswith(
        "$.eventNotifications[0].dataChangeEvent.entities[2].deletedId: '27 OR 1=1' is not a QBO entity id"
    )
    # a legacy entity has no CloudEvent id; its log lines still get a stable correlation id
    assert parsed.unsupported[0].cloudevent_id is None
    assert len(parsed.unsupported[0].correlation_id) == 64


@pytest.mark.parametrize(
    "entity_id",
    ["INV-0001/A", "1038\n", "1038 ", " 1038", "\u0661\u0660\u0663\u0668", "a.b", "x" * 63 + "\n"],
)
def test_a_cloudevent_with_any_id_outside_the_rule_is_skipped_not_refused(entity_id: str) -> None:
    event = json.loads(body_of("cloudevents_invoice_created.json"))[0]
    parsed = parse_delivery(json.dumps([{**event, "intuitentityid": entity_id}]).encode())
    assert (parsed.changes, [s.reason for s in parsed.unsupported]) == ((), ["invalid_entity_id"])


def test_a_merge_whose_merged_away_id_is_impossible_is_skipped() -> None:
    event = json.loads(body_of("cloudevents_invoice_created.json"))[0]
    merge = {**event, "type": "qbo.customer.merged.v1", "data": {"deletedid": "27/B"}}
    parsed = parse_delivery(json.dumps([merge]).encode())
    assert parsed.changes == ()
    assert parsed.unsupported[0].detail.startswith("$[0].data.deletedid: '27/B'")


def test_an_unknown_type_with_an_impossible_id_is_skipped_as_an_invalid_id() -> None:
    # replaying it "once the type is supported" could never publish it
    event = json.loads(body_of("cloudevents_invoice_created.json"))[0]
    odd = {**event, "type": "qbo.invoice.sent.v1", "intuitentityid": "INV-0001/A"}
    parsed = parse_delivery(json.dumps([odd]).encode())
    assert [s.reason for s in parsed.unsupported] == ["invalid_entity_id"]


@pytest.mark.parametrize("case", ADVERSARIAL, ids=lambda case: case.name)
def test_an_adversarial_body_is_refused_as_malformed_naming_the_problem(case: AdversarialCase) -> None:
    with pytest.raises(MalformedWebhook) as caught:
        parse_delivery(case.body)
    assert case.expect_in_message in str(caught.value)


def test_the_event_cap_is_the_callers_and_a_delivery_at_the_cap_is_accepted() -> None:
    body = body_of("cloudevents_multi_realm.json")  # 7 events

    assert len(parse_delivery(body, max_events=7).changes) == 7
    one_more = [*json.loads(body), json.loads(body)[0]]
    with pytest.raises(MalformedWebhook, match=r"^\$: 8 events, more than the 7 LedgerLink accepts"):
        parse_delivery(json.dumps(one_more).encode(), max_events=7)


def test_the_legacy_cap_counts_the_entities_of_every_notification() -> None:
    body = body_of("legacy_multi_realm.json")  # 2 notifications, 3 entities each

    assert len(parse_delivery(body, max_events=6).changes) == 6
    with pytest.raises(MalformedWebhook, match=r"^\$\.eventNotifications: 6 entities, more than the 5"):
        parse_delivery(body, max_events=5)


@pytest.mark.parametrize(
    "written",
    [
        "0001-01-01T00:00:00+01:00",
        "0001-01-01T00:59:59+01:00",
        "9999-12-31T23:00:00-05:00",
        "9999-12-31T23:59:59-0001",
    ],
)
def test_a_time_that_leaves_the_years_0001_to_9999_once_in_utc_is_refused_naming_the_field(
    written: str,
) -> None:
    with pytest.raises(MalformedWebhook, match=r"^\$\.t: .* is outside the years 0001-9999 in UTC$"):
        normalize_timestamp(written, "$.t")


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("0001-01-01T00:00:00-01:00", "0001-01-01T01:00:00Z"),
        ("0999-06-30T12:00:00.5Z", "0999-06-30T12:00:00.5Z"),
        ("9999-12-31T23:00:00+05:00", "9999-12-31T18:00:00Z"),
    ],
)
def test_the_extreme_times_that_stay_in_range_are_kept_with_four_digit_years(
    written: str, normalised: str
) -> None:
    assert normalize_timestamp(written, "$.t") == normalised


def test_an_event_of_a_year_before_1000_is_published_with_a_four_digit_year() -> None:
    # the published last_updated must match the event schema, or publishing fails after the archive
    event = json.loads(body_of("cloudevents_invoice_created.json"))[0]
    change = parse_delivery(json.dumps([{**event, "time": "0999-01-01T00:00:00Z"}]).encode()).changes[0]
    envelope = change_event(change, "delivery", "qbo/raw/key.json")
    validate_detail(envelope.detail_type, envelope.detail())
    assert change.last_updated == "0999-01-01T00:00:00Z"


@pytest.mark.parametrize("written", ["2026-11-25T14:00:00Z\n", "\u0662\u0660\u0662\u0666-11-25T14:00:00Z"])
def test_a_time_with_a_trailing_newline_or_other_digits_is_refused(written: str) -> None:
    with pytest.raises(MalformedWebhook, match=r"^\$\.t: "):
        normalize_timestamp(written, "$.t")


@pytest.mark.parametrize(
    ("field", "value", "path"),
    [
        ("intuitaccountid", REALM + "\n", "$[0].intuitaccountid"),
        ("type", "qbo.invoice.created.v1\n", "$[0].type"),
        ("time", "2026-11-25T14:02:51Z\n", "$[0].time"),
        ("intuitaccountid", "\u0669\u0663\u0664\u0661", "$[0].intuitaccountid"),
    ],
)
def test_a_value_with_a_trailing_newline_is_refused_naming_the_field(
    field: str, value: str, path: str
) -> None:
    # Python's "$" matches before a final newline: "9341455130122367\n" used to pass ^[0-9]{1,32}$
    event = json.loads(body_of("cloudevents_invoice_created.json"))[0]
    with pytest.raises(MalformedWebhook) as caught:
        parse_delivery(json.dumps([{**event, field: value}]).encode())
    assert str(caught.value).startswith(f"{path}: ")


def test_a_legacy_realm_id_with_a_trailing_newline_is_refused() -> None:
    document = json.loads(body_of("legacy_multi_realm.json"))
    document["eventNotifications"][1]["realmId"] += "\n"
    with pytest.raises(MalformedWebhook, match=r"^\$\.eventNotifications\[1\]\.realmId: "):
        parse_delivery(json.dumps(document).encode())
