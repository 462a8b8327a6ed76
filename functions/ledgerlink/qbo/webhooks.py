"""QuickBooks Online webhooks: the ``intuit-signature`` check and the two payload formats.

Intuit signs every delivery with ``base64(HMAC-SHA256(key=verifier token, msg=raw body))`` and sends
either the CloudEvents format (a JSON array, one event per changed entity; the only format since
2026-05-15) or the legacy ``eventNotifications`` object (older apps, archived deliveries). Both are
turned into the same :class:`EntityChange` records. Each shape is described by a JSON schema in
``schemas/webhooks/``; anything that does not match is a :class:`MalformedWebhook` whose message
names the offending field by its JSON path.

A well-formed CloudEvent whose ``type`` LedgerLink does not know (a new verb such as
``qbo.invoice.sent.v1``, or a new version such as ``qbo.invoice.updated.v2``) is not malformed: it
comes back as an :class:`UnsupportedEvent` beside the changes, so that one new type from Intuit
does not get the whole delivery refused (Intuit retries a refused delivery and may hold back the
company's later events meanwhile, ../shared/api-notes.md §1c). The same goes for an event, in
either format, whose entity id (or merged-away id) is not one LedgerLink can read back from QBO
(:mod:`ledgerlink.qbo.ids`): it is skipped with reason ``invalid_entity_id`` and costs the other
events of its delivery nothing.

Every delivery costs bounded work, whatever its bytes: at most ``max_events`` events (checked
before the schema is applied), arrays and objects nested at most :data:`MAX_NESTING_DEPTH` deep,
and schema validation stops at the first error. A body past any of these limits, an integer too
long to read, a time outside the years 0001-9999 in UTC: all are :class:`MalformedWebhook` naming
the problem, never another exception.

Nothing here talks to AWS or to Intuit: it is pure and fast, so it can run inside Intuit's 3 s budget.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Literal

from ledgerlink import schemas
from ledgerlink.qbo.ids import InvalidEntityId, is_entity_id

SIGNATURE_HEADER: Final = "intuit-signature"
CLOUDEVENTS_SCHEMA: Final = "webhooks/qbo-cloudevents.v1.json"
LEGACY_SCHEMA: Final = "webhooks/qbo-legacy.v1.json"
MAX_MESSAGE_CHARS: Final = 300
MAX_EVENTS_PER_DELIVERY: Final = 5000
"""Default for ``Settings.max_webhook_events``. About 3,100 real CloudEvents fit in the 1 MiB body
limit, so no genuine delivery reaches it; a body of thousands of tiny invalid events does."""
MAX_NESTING_DEPTH: Final = 64
"""A real delivery nests about five deep. The cap keeps every later step (the schema, the error
message quoting a value) far from Python's recursion limit."""

# "cdc": not a webhook format, the catch-up (ledgerlink.catchup) reading QBO change data capture;
# "backfill": the historical backfill (ledgerlink.deal_sync.backfill) reading the query API.
SourceFormat = Literal["cloudevents", "legacy", "cdc", "backfill"]
SkipReason = Literal["unsupported_type", "invalid_entity_id", "unserved_realm"]

# The CloudEvents ``type`` versions whose meaning LedgerLink knows; another version of a known verb
# may mean something else, so it is skipped like an unknown verb.
SUPPORTED_TYPE_VERSIONS: Final = frozenset({1})

# CloudEvents verb (in ``type``) -> the operation name the legacy format and the QBO API use.
OPERATION_BY_VERB: Final[Mapping[str, str]] = {
    "created": "Create",
    "updated": "Update",
    "deleted": "Delete",
    "merged": "Merge",
    "voided": "Void",
    "emailed": "Emailed",
}

# Lower-case entity name (as in a CloudEvents ``type``) -> QBO's entity name. The names are the
# entities Intuit lists as sending webhooks (../shared/api-notes.md §1a: Currency is a webhook-only
# name) plus every IntuitObject in Intuit's XSD (../shared/specs/quickbooks/xsd/), so a name that
# gains webhook support later is already spelled right. tests/unit/qbo/test_webhooks_entities.py
# checks this table against both sources.
_QBO_ENTITY_NAMES: Final = (
    "Account",
    "Attachable",
    "Bill",
    "BillPayment",
    "BooleanTypeCustomFieldDefinition",
    "Budget",
    "ChargeCredit",
    "Class",
    "Company",
    "CompanyCurrency",
    "CompanyInfo",
    "CreditCardPaymentTxn",
    "CreditMemo",
    "Currency",
    "Customer",
    "CustomFieldDefinition",
    "CustomerType",
    "DateTypeCustomFieldDefinition",
    "Department",
    "Deposit",
    "EmailDeliveryInfo",
    "Employee",
    "Estimate",
    "ExchangeRate",
    "FixedAsset",
    "InventoryAdjustment",
    "InventorySite",
    "Invoice",
    "Item",
    "JournalCode",
    "JournalEntry",
    "MasterAccount",
    "NumberTypeCustomFieldDefinition",
    "OtherName",
    "Payment",
    "PaymentMethod",
    "Preferences",
    "PriceLevel",
    "Purchase",
    "PurchaseOrder",
    "QbdtEntityIdMapping",
    "RecurringTransaction",
    "RefundReceipt",
    "ReimburseCharge",
    "SalesOrder",
    "SalesReceipt",
    "SalesRep",
    "StatementCharge",
    "Status",
    "StringTypeCustomFieldDefinition",
    "SyncActivity",
    "Tag",
    "Task",
    "TaxAgency",
    "TaxClassification",
    "TaxCode",
    "TaxPayment",
    "TaxRate",
    "TaxReturn",
    "TaxService",
    "TDSMetadata",
    "Term",
    "TimeActivity",
    "Transfer",
    "UserAlert",
    "Vendor",
    "VendorCredit",
    "VendorType",
)
ENTITY_NAME_BY_LOWER: Final[Mapping[str, str]] = {name.lower(): name for name in _QBO_ENTITY_NAMES}

# The schema has already checked ``type`` against qbo.<entity>.<verb>.v<N>; this splits it, whole
# (jsonschema's ``$`` also matches before a trailing newline, which fullmatch does not let through).
_CLOUDEVENT_TYPE = re.compile(r"qbo\.(?P<entity>[A-Za-z]+)\.(?P<verb>[a-z]+)\.v(?P<version>[0-9]+)")

# Applied whole (fullmatch). [0-9], not \d: Python's \d also matches other scripts' digits.
_TIMESTAMP = re.compile(
    r"(?P<seconds>[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2})(?:\.(?P<fraction>[0-9]{1,9}))?"
    r"(?P<offset>Z|[+-][0-9]{2}:?[0-9]{2})"
)
_TOO_DEEP: Final = f"$: arrays and objects are nested more than {MAX_NESTING_DEPTH} deep"


class WebhookError(ValueError):
    """A delivery that cannot be accepted. ``reason`` is a short, stable label for metrics and logs."""

    reason: str = "invalid"


class MissingSignature(WebhookError):
    reason = "missing_signature"


class InvalidSignature(WebhookError):
    reason = "invalid_signature"


class MalformedWebhook(WebhookError):
    """The body is not JSON, or not one of the two shapes; the message names the field."""

    reason = "malformed"


@dataclass(frozen=True)
class EntityChange:
    """One changed QBO entity, whichever format announced it."""

    realm_id: str
    entity: str
    entity_id: str
    operation: str
    last_updated: str
    """UTC, RFC 3339 with ``Z``, fraction kept to the digit Intuit sent (nanoseconds included)."""
    source_format: SourceFormat
    cloudevent_id: str | None = None
    deleted_id: str | None = None

    @property
    def change_id(self) -> str:
        """The same for every delivery of this change, in either format (Intuit redelivers on failure).

        Downstream idempotency keys on it, so a redelivery or a replayed archive changes nothing twice.
        """
        key = "\x1f".join((self.realm_id, self.entity, self.entity_id, self.operation, self.last_updated))
        return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class UnsupportedEvent:
    """A well-formed event LedgerLink does not publish, and why (``reason``); it stays in the archive.

    - ``unsupported_type``: a CloudEvent whose verb or version LedgerLink does not know. It can be
      replayed from the archived raw delivery once LedgerLink supports its type.
    - ``invalid_entity_id``: its entity id (or merged-away id) is not one LedgerLink can read from
      QBO (:mod:`ledgerlink.qbo.ids`), in either format. Publishing it would only make the deal sync
      fail on it; no replay can change that.
    - ``unserved_realm``: its company (realm) is not one of this deployment's connections
      (ledgerlink.configfile). Answered 200 all the same, so Intuit stops retrying; once a
      connection for the realm is configured, the archived delivery can be replayed.
    """

    type: str
    """The CloudEvents ``type``; for a legacy entity ``<Name>.<Operation>``, e.g. ``Invoice.Update``."""
    cloudevent_id: str | None
    """None for a legacy entity (that format has no event id)."""
    realm_id: str
    entity_id: str
    time: str
    """Normalised like :attr:`EntityChange.last_updated`."""
    reason: SkipReason = "unsupported_type"
    detail: str = ""
    """For ``invalid_entity_id``: the field, by its JSON path, and what is wrong with it."""
    source_format: SourceFormat = "cloudevents"

    @property
    def correlation_id(self) -> str:
        """Intuit's event id when there is one, else a hash of what identifies the event (like a change id)."""
        if self.cloudevent_id is not None:
            return self.cloudevent_id
        key = "\x1f".join((self.realm_id, self.type, self.entity_id, self.time))
        return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ParsedDelivery:
    """What one delivery announced: the changes to publish and the events to skip, in delivery order."""

    source_format: SourceFormat
    changes: tuple[EntityChange, ...]
    """Duplicates removed (Intuit may list the same change twice in one batch)."""
    unsupported: tuple[UnsupportedEvent, ...] = ()
    """Every skipped event, whatever its :attr:`~UnsupportedEvent.reason`, listed once. For the legacy
    format (whose operations are a closed list) only ``invalid_entity_id``."""


def compute_signature(verifier_token: str, body: bytes) -> str:
    """``base64(HMAC-SHA256(key=verifier token, msg=body))``, as Intuit computes it."""
    digest = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def verify_signature(verifier_token: str, body: bytes, signature: str | None) -> None:
    """Raise unless ``signature`` is Intuit's signature of exactly these bytes.

    The comparison is on the decoded digests, in constant time; neither the expected value nor the
    token ever appears in an error.
    """
    if signature is None or not signature.strip():
        raise MissingSignature(f"the {SIGNATURE_HEADER} header is missing")
    try:
        presented = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSignature(f"the {SIGNATURE_HEADER} header is not base64") from None
    expected = hmac.new(verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
    if not hmac.compare_digest(presented, expected):
        raise InvalidSignature(f"the {SIGNATURE_HEADER} header does not match the body")


def parse_delivery(body: bytes, *, max_events: int = MAX_EVENTS_PER_DELIVERY) -> ParsedDelivery:
    """The changes announced by one delivery, and the events LedgerLink skips.

    Every event must be well formed, whatever its type: a malformed one (a missing
    ``intuitentityid``, an impossible ``time``, a ``type`` that is not ``qbo.<entity>.<verb>.v<N>``,
    ...) is a :class:`MalformedWebhook` naming the first offending field, and the delivery is
    refused; so is a delivery of more than ``max_events`` events or nested deeper than
    :data:`MAX_NESTING_DEPTH`. A well-formed event that LedgerLink does not publish is returned in
    :attr:`ParsedDelivery.unsupported` instead of :attr:`ParsedDelivery.changes`, with its reason:
    a CloudEvent whose verb or version is not known (not in :data:`OPERATION_BY_VERB`, or a version
    outside :data:`SUPPORTED_TYPE_VERSIONS`), or an event of either format whose entity id or
    merged-away id QBO could not have issued (:func:`ledgerlink.qbo.ids.is_entity_id`). The caller
    archives the raw delivery anyway, and the rest of the delivery goes through.
    """
    document = _load_json(body)
    if isinstance(document, list):
        _check_count(len(document), max_events, "$", "events")
        _check_depth(document)
        _validate(CLOUDEVENTS_SCHEMA, document)
        return _from_cloudevents(document)
    if isinstance(document, dict) and "eventNotifications" in document:
        _check_legacy_count(document["eventNotifications"], max_events)
        _check_depth(document)
        _validate(LEGACY_SCHEMA, document)
        return _from_legacy(document)
    if isinstance(document, dict) and "specversion" in document:
        raise MalformedWebhook("$: a single CloudEvent object; Intuit sends a JSON array of CloudEvents")
    raise MalformedWebhook(
        "$: expected a JSON array of CloudEvents or an object with eventNotifications, "
        f"got {_json_type(document)}"
    )


def entity_name(lower_or_qbo_name: str) -> str:
    """QBO's spelling of an entity name; an unknown name keeps its letters with a capital first one."""
    known = ENTITY_NAME_BY_LOWER.get(lower_or_qbo_name.lower())
    if known is not None:
        return known
    return lower_or_qbo_name[:1].upper() + lower_or_qbo_name[1:]


def normalize_timestamp(value: str, field_path: str) -> str:
    """The same instant in UTC (``...Z``), keeping every fraction digit sent (Python keeps only 6)."""
    match = _TIMESTAMP.fullmatch(value)
    if match is None:
        raise MalformedWebhook(f"{field_path}: {value!r} is not an ISO 8601 date-time with an offset")
    offset_text = match["offset"]
    try:
        offset = UTC if offset_text == "Z" else _parse_offset(offset_text)
        moment = datetime.strptime(match["seconds"], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=offset)
    except ValueError:
        raise MalformedWebhook(f"{field_path}: {value!r} is not a valid date-time") from None
    try:
        in_utc = moment.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is in year 0 in UTC, 9999-12-31T23:00:00-05:00 in year 10000.
        raise MalformedWebhook(f"{field_path}: {value!r} is outside the years 0001-9999 in UTC") from None
    fraction = (match["fraction"] or "").rstrip("0")
    # isoformat, not strftime: glibc's %Y writes year 999 as "999", which no schema accepts.
    utc_seconds = in_utc.replace(tzinfo=None).isoformat(timespec="seconds")
    return f"{utc_seconds}.{fraction}Z" if fraction else f"{utc_seconds}Z"


def _parse_offset(text: str) -> timezone:
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError(text)
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


class _NotJson(Exception):
    """NaN, Infinity, -Infinity: Python's json reads them, but they are not JSON (RFC 8259)."""


def _refuse_constant(name: str) -> Any:
    raise _NotJson(name)


def _load_json(body: bytes) -> Any:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedWebhook("$: the body is not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise MalformedWebhook(
            f"$: the body is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    except _NotJson as error:
        raise MalformedWebhook(f"$: the body is not valid JSON ({error} is not a JSON value)") from None
    except RecursionError:
        # The decoder recurses once per level; past Python's limit it gives up, before our own check.
        raise MalformedWebhook(_TOO_DEEP) from None
    except ValueError:
        # The one other ValueError the decoder raises: an integer longer than Python converts
        # (sys.get_int_max_str_digits(), a guard against quadratic conversion time).
        raise MalformedWebhook(
            f"$: the body holds an integer of more than {sys.get_int_max_str_digits()} digits"
        ) from None


def _check_count(count: int, max_events: int, path: str, what: str) -> None:
    # Before the schema: refusing 200,000 empty events must not cost 200,000 validations.
    if count > max_events:
        raise MalformedWebhook(
            f"{path}: {count} {what}, more than the {max_events} LedgerLink accepts in one delivery"
        )


def _check_legacy_count(notifications: Any, max_events: int) -> None:
    """Notifications and entities, counted where the shape allows; the schema names any other shape."""
    if not isinstance(notifications, list):
        return
    _check_count(len(notifications), max_events, "$.eventNotifications", "notifications")
    entities = 0
    for notification in notifications:
        change = notification.get("dataChangeEvent") if isinstance(notification, dict) else None
        listed = change.get("entities") if isinstance(change, dict) else None
        entities += len(listed) if isinstance(listed, list) else 0
    _check_count(entities, max_events, "$.eventNotifications", "entities")


def _check_depth(document: Any) -> None:
    """Refuse nesting deeper than MAX_NESTING_DEPTH. Iterative, one look at each array and object."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_NESTING_DEPTH:
            raise MalformedWebhook(_TOO_DEEP)
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, list | dict):
                pending.append((child, depth + 1))


def _validate(schema: str, document: Any) -> None:
    error = schemas.first_error(schema, document)
    if error is not None:
        raise MalformedWebhook(_shorten(schemas.describe(error)))


def _shorten(message: str) -> str:
    """jsonschema quotes the offending value whole: a 1 MiB value must not become a 1 MiB answer."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def _from_cloudevents(events: list[dict[str, Any]]) -> ParsedDelivery:
    changes: list[EntityChange] = []
    skipped = _Skipped()
    for index, event in enumerate(events):
        type_parts = _CLOUDEVENT_TYPE.fullmatch(event["type"])
        if type_parts is None:
            raise MalformedWebhook(f"$[{index}].type: {event['type']!r} is not qbo.<entity>.<verb>.v<N>")
        moment = normalize_timestamp(event["time"], f"$[{index}].time")
        data = event.get("data")
        deleted_id = data.get("deletedid") if isinstance(data, dict) else None
        invalid = _invalid_id(
            (f"$[{index}].intuitentityid", event["intuitentityid"]),
            (f"$[{index}].data.deletedid", deleted_id),
        )
        operation = OPERATION_BY_VERB.get(type_parts["verb"])
        # An invalid id comes first: "replay once the type is supported" would never work for it.
        if (
            invalid is not None
            or operation is None
            or int(type_parts["version"]) not in SUPPORTED_TYPE_VERSIONS
        ):
            skipped.add(
                UnsupportedEvent(
                    type=event["type"],
                    cloudevent_id=event["id"],
                    realm_id=event["intuitaccountid"],
                    entity_id=event["intuitentityid"],
                    time=moment,
                    reason="unsupported_type" if invalid is None else "invalid_entity_id",
                    detail=invalid or "",
                )
            )
            continue
        changes.append(
            EntityChange(
                realm_id=event["intuitaccountid"],
                entity=entity_name(type_parts["entity"]),
                entity_id=event["intuitentityid"],
                operation=operation,
                last_updated=moment,
                source_format="cloudevents",
                cloudevent_id=event["id"],
                deleted_id=deleted_id,
            )
        )
    return ParsedDelivery(source_format="cloudevents", changes=_unique(changes), unsupported=skipped.events())


def _from_legacy(document: dict[str, Any]) -> ParsedDelivery:
    changes: list[EntityChange] = []
    skipped = _Skipped()
    for n_index, notification in enumerate(document["eventNotifications"]):
        for e_index, entity in enumerate(notification["dataChangeEvent"]["entities"]):
            path = f"$.eventNotifications[{n_index}].dataChangeEvent.entities[{e_index}]"
            moment = normalize_timestamp(entity["lastUpdated"], f"{path}.lastUpdated")
            invalid = _invalid_id(
                (f"{path}.id", entity["id"]), (f"{path}.deletedId", entity.get("deletedId"))
            )
            if invalid is not None:
                skipped.add(
                    UnsupportedEvent(
                        type=f"{entity_name(entity['name'])}.{entity['operation']}",
                        cloudevent_id=None,
                        realm_id=notification["realmId"],
                        entity_id=entity["id"],
                        time=moment,
                        reason="invalid_entity_id",
                        detail=invalid,
                        source_format="legacy",
                    )
                )
                continue
            changes.append(
                EntityChange(
                    realm_id=notification["realmId"],
                    entity=entity_name(entity["name"]),
                    entity_id=entity["id"],
                    operation=entity["operation"],
                    last_updated=moment,
                    source_format="legacy",
                    deleted_id=entity.get("deletedId"),
                )
            )
    return ParsedDelivery(source_format="legacy", changes=_unique(changes), unsupported=skipped.events())


def _invalid_id(*fields: tuple[str, str | None]) -> str | None:
    """What is wrong with the first id (path, value) QBO could not have issued; None when all are fine.

    A None value is an optional id that is absent. The webhook schemas accept any 1-64 characters here
    so that such an event is skipped instead of its whole delivery being refused.
    """
    for path, value in fields:
        if value is not None and not is_entity_id(value):
            return f"{path}: {InvalidEntityId(value)}"
    return None


class _Skipped:
    """Skipped events in delivery order; one listed twice in a batch (like a duplicate change) counts once."""

    def __init__(self) -> None:
        self._events: dict[tuple[str, ...], UnsupportedEvent] = {}

    def add(self, event: UnsupportedEvent) -> None:
        key = (event.reason, event.realm_id, event.type, event.entity_id, event.time)
        self._events.setdefault(key, event)

    def events(self) -> tuple[UnsupportedEvent, ...]:
        return tuple(self._events.values())


def _unique(changes: Iterable[EntityChange]) -> tuple[EntityChange, ...]:
    """Intuit batches changes over a window; the same change listed twice is published once."""
    unique: dict[str, EntityChange] = {}
    for change in changes:
        unique.setdefault(change.change_id, change)
    return tuple(unique.values())


def _json_type(document: Any) -> str:
    if isinstance(document, dict):
        return "an object without eventNotifications"
    if document is None:
        return "null"
    if isinstance(document, bool):
        return "a boolean"
    if isinstance(document, int | float):
        return "a number"
    return "a string"
