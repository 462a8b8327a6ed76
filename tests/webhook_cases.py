"""QBO webhook bodies an adversary sends, and a seeded generator of mutated real deliveries.

Shared by the regression and fuzz tests (tests/unit/qbo, tests/unit/ingest, tests/integration) and
by the ingest benchmark (tests/bench/bench_ingest.py), so the cases the benchmark times are the ones
the tests refuse. Every adversarial body is one an earlier version answered with a 500 (never
archived) or took seconds over; each comes with text its 400 message must contain.

The generator works on the recorded deliveries in tests/fixtures/qbo_webhooks/: it parses one,
applies a few random edits (a field set to an odd value, a key dropped, an event duplicated, the
text truncated, ...) and serialises it again. It takes a ``random.Random``, so the benchmark seeds
it and the hypothesis tests hand it one hypothesis controls (``st.randoms()``).
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

WEBHOOKS = Path(__file__).resolve().parent / "fixtures" / "qbo_webhooks"
REALM = "9341455130122367"


@dataclass(frozen=True)
class AdversarialCase:
    name: str
    build: Callable[[], bytes]
    expect_in_message: str

    @property
    def body(self) -> bytes:
        return _built(self)


@cache
def _built(case: AdversarialCase) -> bytes:
    return case.build()


def _event(**fields: Any) -> dict[str, Any]:
    template: dict[str, Any] = json.loads((WEBHOOKS / "cloudevents_invoice_created.json").read_bytes())[0]
    return {**template, **fields}


def _with_raw_data(raw: bytes) -> bytes:
    """A one-event CloudEvents delivery whose ``data`` is ``raw``, spliced in as text (json.dumps
    could not write it: too deep to serialise, or a number it would not print)."""
    return json.dumps([_event(data="@DATA@")]).encode().replace(b'"@DATA@"', raw)


def _legacy(realm_id: str = REALM, **entity: Any) -> bytes:
    fields = {"name": "Invoice", "id": "1038", "operation": "Update", "lastUpdated": "2026-11-25T14:05:12Z"}
    notification = {"realmId": realm_id, "dataChangeEvent": {"entities": [{**fields, **entity}]}}
    return json.dumps({"eventNotifications": [notification]}).encode()


ADVERSARIAL: tuple[AdversarialCase, ...] = (
    AdversarialCase("depth 100,000", lambda: b"[" * 100_000 + b"]" * 100_000, "nested more than 64 deep"),
    AdversarialCase(
        "depth 995 in data", lambda: _with_raw_data(b"[" * 995 + b"]" * 995), "nested more than 64 deep"
    ),
    AdversarialCase(
        "depth 65 in data (just over the cap)",
        lambda: _with_raw_data(b"[" * 63 + b"]" * 63),
        "nested more than 64 deep",
    ),
    AdversarialCase(
        "legacy depth 100,000 in an entity",
        lambda: _legacy().replace(
            b'"id": "1038"', b'"id": "1038", "extra": ' + b"[" * 100_000 + b"]" * 100_000
        ),
        "nested more than 64 deep",
    ),
    AdversarialCase(
        "5,000-digit integer", lambda: _with_raw_data(b"9" * 5000), "integer of more than 4300 digits"
    ),
    AdversarialCase(
        "time 0001-01-01T00:00:00+01:00",
        lambda: json.dumps([_event(time="0001-01-01T00:00:00+01:00")]).encode(),
        "$[0].time: '0001-01-01T00:00:00+01:00' is outside the years 0001-9999 in UTC",
    ),
    AdversarialCase(
        "time 9999-12-31T23:00:00-05:00",
        lambda: json.dumps([_event(time="9999-12-31T23:00:00-05:00")]).encode(),
        "$[0].time: '9999-12-31T23:00:00-05:00' is outside the years 0001-9999 in UTC",
    ),
    AdversarialCase(
        "legacy lastUpdated 9999-12-31T23:59:59-0100",
        lambda: _legacy(lastUpdated="9999-12-31T23:59:59-0100"),
        "$.eventNotifications[0].dataChangeEvent.entities[0].lastUpdated",
    ),
    AdversarialCase(
        "[{}] x 200,000",
        lambda: json.dumps([{}] * 200_000).encode(),
        "$: 200000 events, more than the 5000 LedgerLink accepts in one delivery",
    ),
    AdversarialCase(
        "[{}] x 5,000 (at the cap)",
        lambda: json.dumps([{}] * 5000).encode(),
        "$[0]: 'specversion' is a required",
    ),
    AdversarialCase(
        "legacy 200,000 empty entities",
        lambda: json.dumps(
            {"eventNotifications": [{"realmId": REALM, "dataChangeEvent": {"entities": [{}] * 200_000}}]}
        ).encode(),
        "$.eventNotifications: 200000 entities, more than the 5000 LedgerLink accepts in one delivery",
    ),
    AdversarialCase(
        "legacy 100,000 notifications",
        lambda: json.dumps({"eventNotifications": [{}] * 100_000}).encode(),
        "$.eventNotifications: 100000 notifications, more than the 5000",
    ),
    AdversarialCase(
        "realm id with a trailing newline",
        lambda: json.dumps([_event(intuitaccountid=REALM + "\n")]).encode(),
        "$[0].intuitaccountid",
    ),
    AdversarialCase(
        "legacy realmId with a trailing newline",
        lambda: _legacy(realm_id=REALM + "\n"),
        "$.eventNotifications[0].realmId",
    ),
    AdversarialCase("NaN in data", lambda: _with_raw_data(b"NaN"), "NaN is not a JSON value"),
)


def adversarial_case(name: str) -> AdversarialCase:
    return next(case for case in ADVERSARIAL if case.name == name)


# ----------------------------------------------------------------------------------- generated


def fixture_bodies(*, malformed: bool = True) -> list[bytes]:
    """Every recorded delivery as bytes: the valid ones, then (unless told not to) the malformed cases."""
    paths = sorted(WEBHOOKS.glob("*.json"))
    bodies = [path.read_bytes() for path in paths if path.name != "apigw_v2_event.json"]
    if malformed:
        cases = json.loads((WEBHOOKS / "malformed" / "cases.json").read_text(encoding="utf-8"))["cases"]
        bodies += [case["body"].encode("utf-8") for case in cases]
    return bodies


# Values close to what the schemas and the parser allow, and values well outside.
ODD_STRINGS: tuple[str, ...] = (
    "",
    " ",
    "\n",
    "INV-0001/A",
    "1038\n",
    "1038 ",
    "0",
    "x" * 64,
    "x" * 65,
    "\u0663\u0664\u0665",
    REALM + "\n",
    "9" * 33,
    "1') or ('1'='1",
    "qbo.invoice.created.v1\n",
    "qbo.invoice.created.v2",
    "qbo.invoice.sent.v1",
    "qbo.Invoice.created.v1",
    "qbo.projecttask.created.v1",
    "qbo.invoice.created.v999999999",
    "0001-01-01T00:00:00+01:00",
    "0001-01-01T00:00:00-01:00",
    "9999-12-31T23:59:59-00:01",
    "9999-12-31T23:59:59+00:01",
    "0000-01-01T00:00:00Z",
    "2026-02-29T00:00:00Z",
    "2026-11-25T14:00:00+23:59",
    "2026-11-25T14:00:00.1234567890Z",
    "2026-11-25T14:00:00Z\n",
    "\u0662\u0660\u0662\u0666-\u0661\u0661-\u0662\u0665T14:00:00Z",
    "1.0",
    "\ud7ff\ue000",
    "\u0000",
)
ODD_VALUES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    1.5,
    1e308,
    10**20,
    [],
    {},
    [{}],
    {"deletedid": "27"},
)


def random_json(rng: random.Random, depth: int = 3) -> Any:
    """A small random JSON value, odd strings favoured."""
    roll = rng.random()
    if depth <= 0 or roll < 0.5:
        # a copy: the edits that follow must not change the shared [] and {} (or nest one in itself)
        return rng.choice(ODD_STRINGS) if rng.random() < 0.6 else copy.deepcopy(rng.choice(ODD_VALUES))
    if roll < 0.75:
        return [random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))]
    return {rng.choice(_KEYS): random_json(rng, depth - 1) for _ in range(rng.randint(0, 3))}


_KEYS = (
    "specversion",
    "id",
    "source",
    "type",
    "time",
    "intuitaccountid",
    "intuitentityid",
    "datacontenttype",
    "data",
    "deletedid",
    "eventNotifications",
    "realmId",
    "dataChangeEvent",
    "entities",
    "name",
    "operation",
    "lastUpdated",
    "deletedId",
)


def _containers(node: Any) -> Iterator[Any]:
    """Every list and dict in the document, the root included."""
    pending = [node]
    while pending:
        current = pending.pop()
        if isinstance(current, dict | list):
            yield current
            pending.extend(current.values() if isinstance(current, dict) else current)


def _edit_document(document: Any, rng: random.Random) -> Any:
    containers = list(_containers(document))
    if not containers:
        return random_json(rng)
    target = rng.choice(containers)
    action = rng.randrange(5)
    if isinstance(target, dict):
        keys = list(target)
        if action == 0 and keys:
            del target[rng.choice(keys)]
        elif action in (1, 2) and keys:
            target[rng.choice(keys)] = random_json(rng)
        else:
            target[rng.choice(_KEYS)] = random_json(rng)
    elif target:
        index = rng.randrange(len(target))
        if action == 0:
            del target[index]
        elif action == 1:
            target.append(json.loads(json.dumps(target[index])))  # a copy: listed twice
        else:
            target[index] = random_json(rng)
    else:
        target.append(random_json(rng))
    return document


def _edit_text(body: bytes, rng: random.Random) -> bytes:
    if not body:
        return bytes([rng.randrange(256)])
    at = rng.randrange(len(body))
    action = rng.randrange(4)
    if action == 0:
        return body[:at]
    if action == 1:
        return body[:at] + bytes([rng.randrange(256)]) + body[at + 1 :]
    if action == 2:
        return body[:at] + rng.choice((b"[", b"{", b"]", b"}", b",", b'"', b"\\", b"9" * 50)) + body[at:]
    return body[:at] + body[at : at + rng.randrange(1, 200)] * 2 + body[at:]


def mutate(body: bytes, rng: random.Random) -> bytes:
    """``body`` with one to three random edits, mostly to its JSON structure, sometimes to its bytes."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        document = None
    edits = rng.randint(1, 3)
    if document is None or rng.random() < 0.2:
        for _ in range(edits):
            body = _edit_text(body, rng)
        return body
    for _ in range(edits):
        document = _edit_document(document, rng)
    return json.dumps(document, ensure_ascii=rng.random() < 0.5).encode("utf-8", "surrogatepass")


def generated_bodies(count: int, seed: int) -> Iterator[bytes]:
    """``count`` mutated recorded deliveries, the same ones for the same seed."""
    rng = random.Random(seed)
    # Mostly valid deliveries: a mutated malformed one is nearly always refused at the same place.
    valid, every = fixture_bodies(malformed=False), fixture_bodies()
    for _ in range(count):
        yield mutate(rng.choice(valid if rng.random() < 0.75 else every), rng)
