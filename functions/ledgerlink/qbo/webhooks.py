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
company's later events meanwhile, ../shared/api-notes.md §1c).

Nothing here talks to AWS or to Intuit: it is pure and fast, so it can run inside Intuit's 3 s budget.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Final, Literal

from ledgerlink import schemas

SIGNATURE_HEADER: Final = "intuit-signature"
CLOUDEVENTS_SCHEMA: Final = "webhooks/qbo-cloudevents.v1.json"
LEGACY_SCHEMA: Final = "webhooks/qbo-legacy.v1.json"
MAX_MESSAGE_CHARS: Final = 300

SourceFormat = Literal["cloudevents", "legacy"]

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

_TIMESTAMP = re.compile(
    r"^(?P<seconds>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?P<fraction>\d{1,9}))?"
    r"(?P<offset>Z|[+-]\d{2}:?\d{2})$"
)


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
    """A well-formed CloudEvent whose verb or version LedgerLink does not know: skipped, not published.

    It stays in the archived raw delivery, so it can be replayed once LedgerLink supports its type.
    """

    type: str
    cloudevent_id: str
    realm_id: str
    entity_id: str
    time: str
    """Normalised like :attr:`EntityChange.last_updated`."""


@dataclass(frozen=True)
class ParsedDelivery:
    """What one delivery announced: the changes to publish and the events to skip, in delivery order."""

    source_format: SourceFormat
    changes: tuple[EntityChange, ...]
    """Duplicates removed (Intuit may list the same change twice in one batch)."""
    unsupported: tuple[UnsupportedEvent, ...] = ()
    """Always empty for the legacy format, whose operations are a closed list."""


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


def parse_delivery(body: bytes) -> ParsedDelivery:
    """The changes announced by one delivery, and the CloudEvents LedgerLink cannot handle yet.

    Every event must be well formed, whatever its type: a malformed one (a missing
    ``intuitentityid``, an impossible ``time``, a ``type`` that is not ``qbo.<entity>.<verb>.v<N>``,
    ...) is a :class:`MalformedWebhook` naming the first offending field, and the delivery is
    refused. A well-formed CloudEvent whose verb or version is not known (not in
    :data:`OPERATION_BY_VERB`, or a version outside :data:`SUPPORTED_TYPE_VERSIONS`) is returned in
    :attr:`ParsedDelivery.unsupported` instead of :attr:`ParsedDelivery.changes`: the caller
    archives the raw delivery anyway, so those events can be replayed from the archive once
    LedgerLink supports their type, and the rest of the delivery goes through.
    """
    try:
        document = json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedWebhook("$: the body is not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise MalformedWebhook(
            f"$: the body is not valid JSON ({error.msg} at line {error.lineno} column {error.colno})"
        ) from None
    if isinstance(document, list):
        _validate(CLOUDEVENTS_SCHEMA, document)
        return _from_cloudevents(document)
    if isinstance(document, dict) and "eventNotifications" in document:
        _validate(LEGACY_SCHEMA, document)
        return ParsedDelivery(source_format="legacy", changes=_unique(_from_legacy(document)))
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
    match = _TIMESTAMP.match(value)
    if match is None:
        raise MalformedWebhook(f"{field_path}: {value!r} is not an ISO 8601 date-time with an offset")
    offset_text = match["offset"]
    try:
        offset = UTC if offset_text == "Z" else _parse_offset(offset_text)
        moment = datetime.strptime(match["seconds"], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=offset)
    except ValueError:
        raise MalformedWebhook(f"{field_path}: {value!r} is not a valid date-time") from None
    fraction = (match["fraction"] or "").rstrip("0")
    utc_seconds = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{utc_seconds}.{fraction}Z" if fraction else f"{utc_seconds}Z"


def _parse_offset(text: str) -> timezone:
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueError(text)
    delta = timedelta(hours=hours, minutes=minutes)
    return timezone(-delta if text[0] == "-" else delta)


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
    unsupported: dict[tuple[str, ...], UnsupportedEvent] = {}
    for index, event in enumerate(events):
        type_parts = _CLOUDEVENT_TYPE.fullmatch(event["type"])
        if type_parts is None:
            raise MalformedWebhook(f"$[{index}].type: {event['type']!r} is not qbo.<entity>.<verb>.v<N>")
        moment = normalize_timestamp(event["time"], f"$[{index}].time")
        operation = OPERATION_BY_VERB.get(type_parts["verb"])
        if operation is None or int(type_parts["version"]) not in SUPPORTED_TYPE_VERSIONS:
            skipped = UnsupportedEvent(
                type=event["type"],
                cloudevent_id=event["id"],
                realm_id=event["intuitaccountid"],
                entity_id=event["intuitentityid"],
                time=moment,
            )
            # Listed twice in one batch, like a duplicate change: skipped (and counted) once.
            unsupported.setdefault((skipped.realm_id, skipped.type, skipped.entity_id, moment), skipped)
            continue
        data = event.get("data")
        changes.append(
            EntityChange(
                realm_id=event["intuitaccountid"],
                entity=entity_name(type_parts["entity"]),
                entity_id=event["intuitentityid"],
                operation=operation,
                last_updated=moment,
                source_format="cloudevents",
                cloudevent_id=event["id"],
                deleted_id=data.get("deletedid") if isinstance(data, dict) else None,
            )
        )
    return ParsedDelivery(
        source_format="cloudevents", changes=_unique(changes), unsupported=tuple(unsupported.values())
    )


def _from_legacy(document: dict[str, Any]) -> Iterator[EntityChange]:
    for n_index, notification in enumerate(document["eventNotifications"]):
        for e_index, entity in enumerate(notification["dataChangeEvent"]["entities"]):
            path = f"$.eventNotifications[{n_index}].dataChangeEvent.entities[{e_index}].lastUpdated"
            yield EntityChange(
                realm_id=notification["realmId"],
                entity=entity_name(entity["name"]),
                entity_id=entity["id"],
                operation=entity["operation"],
                last_updated=normalize_timestamp(entity["lastUpdated"], path),
                source_format="legacy",
                deleted_id=entity.get("deletedId"),
            )


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
