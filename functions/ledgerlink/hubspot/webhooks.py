"""HubSpot webhooks: the v3 request signature and the delivery format (a JSON array of events).

**Signature (v3).** HubSpot signs every delivery with the app's client secret:
``X-HubSpot-Signature-v3 = base64(HMAC-SHA256(key=client secret, msg=method + URI + body + timestamp))``,
where the URI is the full URL HubSpot called (scheme, host, path, query) and the timestamp is the
``X-HubSpot-Request-Timestamp`` header (epoch milliseconds). A timestamp more than :data:`MAX_AGE` old
is refused (HubSpot's rule), and so is one more than :data:`MAX_AGE` ahead: a clock that far off is
no clock HubSpot runs, and a future timestamp would otherwise let a captured request be replayed for
longer. Before signing, HubSpot decodes a fixed list of percent-escapes in the URI (:func:`signed_uri`;
the list is from ../shared/api-notes.md §3a; that it applies to the whole URI, path included, is
(unverified)). Signatures are compared in constant time on the decoded digests; no error message
holds the secret or the expected signature.

**Delivery.** A JSON array of at most 100 events (HubSpot's documented cap), each naming its
``portalId``, ``subscriptionType`` and ``objectId`` with the fields of its kind: ``propertyName`` /
``propertyValue`` for property changes, ``primaryObjectId`` / ``mergedObjectIds`` / ``newObjectId`` for
merges, ``associationType`` / ``fromObjectId`` / ``toObjectId`` / ``associationRemoved`` for association
changes. Legacy apps name the object in the type (``deal.propertyChange``, ``line_item.creation``);
apps on generic webhooks send ``object.<verb>`` with an ``objectTypeId`` (``0-3`` deals; ``0-8`` line
items, (unverified)). Ids arrive as JSON numbers; digit strings are accepted too, and both become
digit strings. :func:`parse_delivery` checks the shape and names the first offending field by its
JSON path (``$[3].objectId: is required``); it checks the fields it reads and lets any other field
through, so a field HubSpot adds later costs nothing.

The delivery is parsed *before* its signature can be checked: which portal sent it decides which
secret signed it (each connection's HubSpot app has its own). The parse is therefore bounded for any
body an attacker may send (the caller's byte limit; at most ``max_events`` events, counted before any
is looked at; only the known fields of each event are read) and never raises anything but
:class:`MalformedWebhook`.

Nothing here talks to AWS or to HubSpot: pure and fast, well inside HubSpot's 5-second timeout.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final

SIGNATURE_V3_HEADER: Final = "x-hubspot-signature-v3"
TIMESTAMP_HEADER: Final = "x-hubspot-request-timestamp"
MAX_AGE: Final = timedelta(minutes=5)
MAX_AGE_MS: Final = int(MAX_AGE.total_seconds() * 1000)
MAX_EVENTS_PER_DELIVERY: Final = 100
"""HubSpot's documented cap per request (../shared/api-notes.md §3b)."""

# The escapes HubSpot decodes before signing, by their upper-case hex digits; every other escape
# (%20, %7E, %25, ...) is signed as sent.
_DECODED_ESCAPES: Final[Mapping[str, str]] = {
    "3A": ":",
    "2F": "/",
    "3F": "?",
    "40": "@",
    "21": "!",
    "24": "$",
    "27": "'",
    "28": "(",
    "29": ")",
    "2A": "*",
    "2C": ",",
    "3B": ";",
}
_ESCAPE: Final = re.compile(r"%([0-9A-Fa-f]{2})")
# 1 to 15 ASCII digits: epoch milliseconds until the year 33658, and never a number too long to read.
_TIMESTAMP: Final = re.compile(r"[0-9]{1,15}")
# HubSpot ids: 64-bit at most, so 20 digits at most. [0-9], not \d (which matches other scripts' digits).
_DIGITS: Final = re.compile(r"[0-9]{1,20}")
# Generic webhooks (object.<verb>) name the object by its type id.
GENERIC_OBJECT: Final = "object"
OBJECT_NAME_BY_TYPE_ID: Final[Mapping[str, str]] = {"0-3": "deal", "0-8": "line_item"}
# Longest accepted text fields; anything longer is no HubSpot event (and would not fit an event bus entry).
MAX_NAME_CHARS: Final = 512
MAX_VALUE_CHARS: Final = 65_536
# Epoch milliseconds that datetime can represent (years 1970-9999).
MAX_EPOCH_MS: Final = 253_402_300_799_999


class HubSpotWebhookError(ValueError):
    """A delivery that cannot be accepted. ``reason`` is a short, stable label for metrics and logs."""

    reason: str = "invalid"


class MissingSignature(HubSpotWebhookError):
    """The v3 signature or its timestamp header is absent (or empty)."""

    reason = "missing_signature"


class InvalidSignature(HubSpotWebhookError):
    """The v3 signature is not base64, or not the signature of this request."""

    reason = "invalid_signature"


class StaleTimestamp(HubSpotWebhookError):
    """The request timestamp is more than :data:`MAX_AGE` away from now (past or future)."""

    reason = "stale_timestamp"


class InvalidTimestamp(StaleTimestamp):
    """The request timestamp is not a number of milliseconds: no moment, so never a fresh one."""

    reason = "invalid_timestamp"


class MalformedWebhook(HubSpotWebhookError):
    """The body is not a HubSpot delivery; the message names the field by its JSON path."""

    reason = "malformed"


@dataclass(frozen=True)
class HubSpotEvent:
    """One event of a delivery, as HubSpot sent it (ids as digit strings; absent fields None)."""

    event_id: str
    subscription_id: str | None
    portal_id: str
    app_id: str | None
    occurred_at_ms: int
    subscription_type: str
    attempt_number: int
    object_id: str
    property_name: str | None = None
    property_value: str | None = None
    change_source: str | None = None
    source_id: str | None = None
    merged_object_ids: tuple[str, ...] = ()
    primary_object_id: str | None = None
    new_object_id: str | None = None
    association_type: str | None = None
    from_object_id: str | None = None
    to_object_id: str | None = None
    association_removed: bool | None = None
    object_type_id: str | None = None
    """Generic webhooks only (``object.<verb>``): the object's type id, e.g. ``0-3``."""
    from_object_type_id: str | None = None
    """Generic association changes only: the type ids of both ends."""
    to_object_type_id: str | None = None

    @property
    def object_name(self) -> str | None:
        """``deal``, ``line_item``, ``contact`` ...: from the type (legacy) or the type id (generic);
        None for a generic event whose type id LedgerLink does not know."""
        name = self.subscription_type.partition(".")[0]
        if name == GENERIC_OBJECT:
            return OBJECT_NAME_BY_TYPE_ID.get(self.object_type_id or "")
        return name

    @property
    def action(self) -> str:
        """The verb of the type: ``propertyChange``, ``creation``, ``deletion``, ``merge`` ..."""
        return self.subscription_type.partition(".")[2]


def signed_uri(public_url: str) -> str:
    """The URI as HubSpot signs it: only the escapes of :data:`_DECODED_ESCAPES` decoded (hex in either
    case), every other escape left as sent. One pass, so ``%253A`` stays ``%253A``."""

    def decode(match: re.Match[str]) -> str:
        return _DECODED_ESCAPES.get(match.group(1).upper(), match.group(0))

    return _ESCAPE.sub(decode, public_url)


def compute_signature_v3(secret: str, method: str, public_url: str, body: bytes, timestamp: str) -> str:
    """``base64(HMAC-SHA256(secret, method + signed URI + body + timestamp))``, as HubSpot computes it."""
    return base64.b64encode(_digest(secret, method, public_url, body, timestamp)).decode("ascii")


def check_request(signature: str | None, timestamp: str | None, now_ms: int) -> int:
    """What can be checked without the secret: both headers there, the timestamp a number of
    milliseconds within :data:`MAX_AGE` of ``now_ms``. Returns the timestamp."""
    if signature is None or not signature.strip():
        raise MissingSignature(f"the {SIGNATURE_V3_HEADER} header is missing")
    if timestamp is None or not timestamp.strip():
        raise MissingSignature(f"the {TIMESTAMP_HEADER} header is missing")
    if _TIMESTAMP.fullmatch(timestamp) is None:
        raise InvalidTimestamp(f"the {TIMESTAMP_HEADER} header is not a number of milliseconds")
    moment = int(timestamp)
    age_ms = now_ms - moment
    if age_ms > MAX_AGE_MS:
        raise StaleTimestamp(
            f"the {TIMESTAMP_HEADER} header is {age_ms // 1000} s old; requests older than "
            f"{MAX_AGE_MS // 1000} s are refused"
        )
    if -age_ms > MAX_AGE_MS:
        raise StaleTimestamp(
            f"the {TIMESTAMP_HEADER} header is {-age_ms // 1000} s in the future; more than "
            f"{MAX_AGE_MS // 1000} s ahead is refused"
        )
    return moment


def verify_v3(
    secret: str,
    method: str,
    public_url: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    now_ms: int,
) -> None:
    """Raise unless ``signature`` is HubSpot's v3 signature of this request, made within
    :data:`MAX_AGE` of ``now_ms``: :class:`MissingSignature`, :class:`StaleTimestamp` (or
    :class:`InvalidTimestamp`), :class:`InvalidSignature`. Compared in constant time."""
    check_request(signature, timestamp, now_ms)
    assert signature is not None and timestamp is not None  # check_request refused None
    try:
        presented = base64.b64decode(signature.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSignature(f"the {SIGNATURE_V3_HEADER} header is not base64") from None
    expected = _digest(secret, method, public_url, body, timestamp)
    if not hmac.compare_digest(presented, expected):
        raise InvalidSignature(
            f"the {SIGNATURE_V3_HEADER} header does not match this request (method, URL, body and "
            "timestamp, signed with the portal's app client secret)"
        )


def _digest(secret: str, method: str, public_url: str, body: bytes, timestamp: str) -> bytes:
    message = (
        method.encode("utf-8") + signed_uri(public_url).encode("utf-8") + body + timestamp.encode("utf-8")
    )
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def parse_delivery(body: bytes, max_events: int = MAX_EVENTS_PER_DELIVERY) -> list[HubSpotEvent]:
    """The events of one delivery, in the order sent; :class:`MalformedWebhook` naming the first
    offending field otherwise (not JSON, not a non-empty array, more than ``max_events`` events, a
    required field missing, a field of the wrong type, events from more than one portal)."""
    document = _load_json(body)
    if not isinstance(document, list):
        raise MalformedWebhook(f"$: expected a JSON array of HubSpot events, got {_json_type(document)}")
    if not document:
        raise MalformedWebhook("$: an empty array; a HubSpot delivery carries at least one event")
    # Before looking at any event: refusing 100,000 tiny events must not cost 100,000 checks.
    if len(document) > max_events:
        raise MalformedWebhook(
            f"$: {len(document)} events, more than the {max_events} LedgerLink accepts in one delivery"
        )
    events = [_event(item, f"$[{index}]") for index, item in enumerate(document)]
    delivery_portal_id(events)
    return events


def delivery_portal_id(events: Sequence[HubSpotEvent]) -> str:
    """The portal a delivery comes from. Every event of a delivery must name the same one: the
    portal decides which secret signed the delivery, so a mixed one cannot be verified."""
    if not events:
        raise MalformedWebhook("$: an empty array; a HubSpot delivery carries at least one event")
    first = events[0].portal_id
    for index, event in enumerate(events):
        if event.portal_id != first:
            raise MalformedWebhook(
                f"$[{index}].portalId: {event.portal_id} differs from $[0].portalId {first}; "
                "one delivery must come from one portal"
            )
    return first


def _event(item: Any, path: str) -> HubSpotEvent:
    if not isinstance(item, dict):
        raise MalformedWebhook(f"{path}: must be an object, got {_json_type(item)}")
    fields = _Fields(item, path)
    subscription_type = fields.text("subscriptionType", required=True, pattern=_SUBSCRIPTION_TYPE)
    assert subscription_type is not None
    return HubSpotEvent(
        event_id=fields.required_id("eventId"),
        subscription_id=fields.id("subscriptionId"),
        portal_id=fields.required_id("portalId"),
        app_id=fields.id("appId"),
        occurred_at_ms=fields.epoch_ms("occurredAt"),
        subscription_type=subscription_type,
        attempt_number=fields.count("attemptNumber"),
        object_id=fields.required_id("objectId"),
        property_name=fields.text("propertyName"),
        property_value=fields.value("propertyValue"),
        change_source=fields.text("changeSource"),
        source_id=fields.text("sourceId", numbers=True),
        merged_object_ids=fields.ids("mergedObjectIds"),
        primary_object_id=fields.id("primaryObjectId"),
        new_object_id=fields.id("newObjectId"),
        association_type=fields.text("associationType"),
        from_object_id=fields.id("fromObjectId"),
        to_object_id=fields.id("toObjectId"),
        association_removed=fields.flag("associationRemoved"),
        object_type_id=fields.text("objectTypeId", pattern=_TYPE_ID),
        from_object_type_id=fields.text("fromObjectTypeId", pattern=_TYPE_ID),
        to_object_type_id=fields.text("toObjectTypeId", pattern=_TYPE_ID),
    )


# <object>.<verb>: letters, digits and underscores on both sides (deal.propertyChange, line_item.creation,
# object.associationChange, p12345_car.creation for a custom object).
_SUBSCRIPTION_TYPE: Final = re.compile(r"[A-Za-z0-9_]{1,100}\.[A-Za-z]{1,100}")
_TYPE_ID: Final = re.compile(r"[0-9]{1,10}-[0-9]{1,20}")


class _Fields:
    """Reads the known fields of one event, each checked, naming ``<path>.<field>`` in every error.
    A field that is absent or JSON null is None (or the field's empty value)."""

    def __init__(self, item: dict[str, Any], path: str) -> None:
        self._item = item
        self._path = path

    def _where(self, name: str) -> str:
        return f"{self._path}.{name}"

    def _raw(self, name: str, required: bool) -> Any:
        value = self._item.get(name)
        if value is None and required:
            raise MalformedWebhook(f"{self._where(name)}: is required")
        return value

    def id(self, name: str, *, required: bool = False) -> str | None:
        value = self._raw(name, required)
        if value is None:
            return None
        return _object_id(value, self._where(name))

    def required_id(self, name: str) -> str:
        value = self.id(name, required=True)
        assert value is not None
        return value

    def ids(self, name: str) -> tuple[str, ...]:
        value = self._raw(name, False)
        if value is None:
            return ()
        if not isinstance(value, list):
            raise MalformedWebhook(f"{self._where(name)}: must be an array of ids, got {_json_type(value)}")
        return tuple(_object_id(item, f"{self._where(name)}[{index}]") for index, item in enumerate(value))

    def epoch_ms(self, name: str) -> int:
        value = self._raw(name, True)
        if not _is_integer(value) or not 0 <= value <= MAX_EPOCH_MS:
            raise MalformedWebhook(
                f"{self._where(name)}: must be epoch milliseconds (an integer from 0 to {MAX_EPOCH_MS}), "
                f"got {_quote(value)}"
            )
        return int(value)

    def count(self, name: str) -> int:
        # attemptNumber: HubSpot counts from 0; an event without one is taken as a first attempt.
        value = self._raw(name, False)
        if value is None:
            return 0
        if not _is_integer(value) or not 0 <= value <= 10_000:
            raise MalformedWebhook(f"{self._where(name)}: must be an integer from 0, got {_quote(value)}")
        return int(value)

    def text(
        self,
        name: str,
        *,
        required: bool = False,
        pattern: re.Pattern[str] | None = None,
        numbers: bool = False,
    ) -> str | None:
        value = self._raw(name, required)
        if value is None:
            return None
        if numbers and _is_integer(value):
            value = str(value)
        if not isinstance(value, str) or not value or len(value) > MAX_NAME_CHARS:
            raise MalformedWebhook(
                f"{self._where(name)}: must be a string of 1 to {MAX_NAME_CHARS} characters, got {_quote(value)}"
            )
        if pattern is not None and pattern.fullmatch(value) is None:
            raise MalformedWebhook(
                f"{self._where(name)}: {_quote(value)} is not of the form {pattern.pattern}"
            )
        return value

    def value(self, name: str) -> str | None:
        # propertyValue: HubSpot sends the new value as a string; a number or a boolean is taken as its
        # JSON text, so no genuine event is refused for its value's type.
        value = self._raw(name, False)
        if value is None:
            return None
        if isinstance(value, bool | int | float):
            value = json.dumps(value)
        if not isinstance(value, str) or len(value) > MAX_VALUE_CHARS:
            raise MalformedWebhook(
                f"{self._where(name)}: must be a string of at most {MAX_VALUE_CHARS} characters, "
                f"got {_quote(value)}"
            )
        return value

    def flag(self, name: str) -> bool | None:
        value = self._raw(name, False)
        if value is None or isinstance(value, bool):
            return value
        raise MalformedWebhook(f"{self._where(name)}: must be true or false, got {_quote(value)}")


def _object_id(value: Any, where: str) -> str:
    """An id as a digit string without leading zeros: from a JSON integer or a string of digits."""
    if _is_integer(value) and 0 <= value < 10**20:
        return str(value)
    if isinstance(value, str) and _DIGITS.fullmatch(value):
        return str(int(value))
    raise MalformedWebhook(f"{where}: must be an integer or a string of digits, got {_quote(value)}")


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _quote(value: Any) -> str:
    """A value for an error message, cut short: a 1 MiB value must not become a 1 MiB answer."""
    text = repr(value) if isinstance(value, str) else _json_type(value)
    return text if len(text) <= 80 else text[:79] + "…"


def _json_type(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"the number {value}" if len(str(value)) <= 40 else "a number"
    return "a string"


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
        # The decoder recurses once per level of nesting and gives up past Python's limit.
        raise MalformedWebhook("$: arrays and objects are nested too deep") from None
    except ValueError:
        # An integer longer than Python converts (sys.get_int_max_str_digits()).
        raise MalformedWebhook(
            f"$: the body holds an integer of more than {sys.get_int_max_str_digits()} digits"
        ) from None
