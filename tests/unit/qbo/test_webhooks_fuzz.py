"""Property tests of the QBO webhook parser: whatever the body, a ParsedDelivery or a MalformedWebhook.

Nothing else may come out of :func:`parse_delivery`: any other exception is a 500 to Intuit, which
retries a delivery that was never archived. And what it accepts must be publishable: every change
it returns must make an event its schema accepts (a change the bus refuses is a 500 too).

Hypothesis (rather than a hand-rolled seeded generator) because it shrinks a failing body to a
small one and replays it first on the next run. Runs are deterministic (``derandomize``), keep no
example database, have no deadline (a loaded CI machine must not fail them), and each test stays
well under ten seconds. The bodies an adversarial run broke are explicit ``@example``s.
"""

from __future__ import annotations

import json
import random
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from ledgerlink.ingest.service import change_event
from ledgerlink.qbo.webhooks import MalformedWebhook, ParsedDelivery, parse_delivery
from tests.webhook_cases import ADVERSARIAL, ODD_STRINGS, REALM, WEBHOOKS, fixture_bodies, mutate

FUZZ = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def parse_or_refuse(body: bytes, *, max_events: int = 5000) -> ParsedDelivery | MalformedWebhook:
    """The parser's answer; any exception other than MalformedWebhook fails the test."""
    try:
        parsed = parse_delivery(body, max_events=max_events)
    except MalformedWebhook as refused:
        assert str(refused).startswith("$"), "the message names the field by its JSON path"
        assert len(str(refused)) <= 300
        return refused
    for change in parsed.changes:
        # raises EnvelopeError if the event schema would refuse what the parser let through
        change_event(change, "fuzz-delivery", "qbo/raw/fuzz.json").to_put_events_entry("bus")
    assert all(skipped.reason in ("unsupported_type", "invalid_entity_id") for skipped in parsed.unsupported)
    return parsed


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
    st.sampled_from(ODD_STRINGS),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(
            st.sampled_from(["id", "type", "time", "data", "entities", "x"]) | st.text(max_size=10),
            children,
            max_size=5,
        )
    ),
    max_leaves=30,
)

TEMPLATE: dict[str, Any] = json.loads((WEBHOOKS / "cloudevents_invoice_created.json").read_bytes())[0]

# A field keeps its good value, or takes one near the rules, or anything at all.
odd_field_values = st.one_of(
    st.sampled_from(ODD_STRINGS),
    st.from_regex(r"[0-9A-Za-z_/. -]{1,66}", fullmatch=True),
    st.from_regex(r"qbo\.[a-z]{1,8}\.[a-z]{1,8}\.v[0-9]{1,3}", fullmatch=True),
    st.from_regex(
        r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,10})?(Z|[+-][0-9]{2}:?[0-9]{2})",
        fullmatch=True,
    ),
    json_values,
)


@st.composite
def cloudevents(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = []
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        event = dict(TEMPLATE)
        for name in draw(st.lists(st.sampled_from([*TEMPLATE, "deletedid"]), max_size=3)):
            if name == "deletedid":
                event["data"] = {"deletedid": draw(odd_field_values)}
            elif draw(st.booleans()):
                event[name] = draw(odd_field_values)
            else:
                event.pop(name, None)
        events.append(event)
    return events


@st.composite
def legacy_deliveries(draw: st.DrawFn) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "name": "Invoice",
        "id": "1038",
        "operation": "Update",
        "lastUpdated": "2026-11-25T14:05:12Z",
    }
    entities = []
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        edited = dict(entity)
        for name in draw(
            st.lists(st.sampled_from(["name", "id", "operation", "lastUpdated", "deletedId"]), max_size=3)
        ):
            edited[name] = draw(odd_field_values | st.sampled_from(["Merge", "Void", "Customer"]))
        entities.append(edited)
    realm = draw(st.sampled_from([REALM, REALM + "\n", "", "12ab"]) | json_values)
    return {"eventNotifications": [{"realmId": realm, "dataChangeEvent": {"entities": entities}}]}


@settings(FUZZ, max_examples=300)
@given(document=json_values)
def test_any_json_document_is_parsed_or_refused_as_malformed(document: Any) -> None:
    parse_or_refuse(json.dumps(document).encode())


@settings(FUZZ, max_examples=300)
@given(events=cloudevents())
def test_cloudevents_with_fields_near_or_past_the_rules_are_parsed_or_refused(
    events: list[dict[str, Any]],
) -> None:
    outcome = parse_or_refuse(json.dumps(events).encode())
    if isinstance(outcome, ParsedDelivery):
        assert len(outcome.changes) + len(outcome.unsupported) <= len(events)


@settings(FUZZ, max_examples=200)
@given(document=legacy_deliveries())
def test_legacy_deliveries_with_fields_near_or_past_the_rules_are_parsed_or_refused(
    document: dict[str, Any],
) -> None:
    parse_or_refuse(json.dumps(document).encode())


@settings(FUZZ, max_examples=600)
@given(
    original=st.sampled_from(fixture_bodies(malformed=False)) | st.sampled_from(fixture_bodies()),
    rng=st.randoms(use_true_random=False),
)
def test_mutated_real_deliveries_are_parsed_or_refused(original: bytes, rng: random.Random) -> None:
    parse_or_refuse(mutate(original, rng))


def with_adversarial_examples(test: Any) -> Any:
    """Every body an adversarial run broke, tried first on every run, before the generated ones."""
    for case in ADVERSARIAL:
        test = example(body=case.body)(test)
    return test


@settings(FUZZ, max_examples=200)
@given(body=st.binary(max_size=300))
@example(body=b"")
@example(body=b"\xef\xbb\xbf[]")
@with_adversarial_examples
def test_any_bytes_are_parsed_or_refused(body: bytes) -> None:
    parse_or_refuse(body)
