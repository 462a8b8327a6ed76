"""What a QBO identifier may look like: one rule for the webhook ingest, the QBO client and the schemas.

QBO's XSD types an entity ``Id`` as a plain string (``../shared/specs/quickbooks/xsd/IntuitBaseTypes.xsd``,
simpleType ``id``, a restriction of ``xs:string``); QBO Online issues digits in practice. The rule
here is therefore an assumption, not Intuit's contract: it is the one the QBO client needs to put
ids in an ``Id IN ('...')`` query with no free text (1-64 letters, digits, ``-`` or ``_``). An id
outside it could never be read back from QBO by LedgerLink, so the ingest skips the event that
carries it (archived, counted, not published) instead of publishing an event the deal sync cannot
process. If Intuit ever issues ids outside the rule, this module and the ``entity_id`` /
``deleted_id`` patterns of ``schemas/events/qbo.entity.changed.v1.json`` change together (a test
checks that they agree).
"""

from __future__ import annotations

import re
from typing import Final, TypeGuard

ENTITY_ID_PATTERN: Final = r"[0-9A-Za-z_-]{1,64}"
"""Unanchored; always applied whole (``fullmatch``), never with ``$``, which lets a final newline through."""
ENTITY_ID_RULE: Final = "1-64 letters, digits, '-' or '_'"
REALM_ID_PATTERN: Final = r"[0-9]{1,32}"

_ENTITY_ID: Final = re.compile(ENTITY_ID_PATTERN)
_REALM_ID: Final = re.compile(REALM_ID_PATTERN)
_MAX_QUOTED: Final = 80


class InvalidEntityId(ValueError):
    """An entity id LedgerLink cannot use to read from QBO. Retrying cannot make it valid."""

    retryable = False
    reason = "invalid_entity_id"

    def __init__(self, value: object) -> None:
        self.value = value
        quoted = repr(value)
        if len(quoted) > _MAX_QUOTED:
            quoted = quoted[: _MAX_QUOTED - 1] + "…"
        super().__init__(f"{quoted} is not a QBO entity id LedgerLink can read ({ENTITY_ID_RULE})")


def is_entity_id(value: object) -> TypeGuard[str]:
    """True when ``value`` is a string that is, whole, an id of :data:`ENTITY_ID_PATTERN`."""
    return isinstance(value, str) and _ENTITY_ID.fullmatch(value) is not None


def checked_entity_id(value: object) -> str:
    """``value`` itself when it is an entity id; :class:`InvalidEntityId` otherwise."""
    if not is_entity_id(value):
        raise InvalidEntityId(value)
    return value


def is_realm_id(value: object) -> TypeGuard[str]:
    """True when ``value`` is a QBO company (realm) id: 1-32 digits, nothing after them."""
    return isinstance(value, str) and _REALM_ID.fullmatch(value) is not None
