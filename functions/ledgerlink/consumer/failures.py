"""What a failure means for the records of a batch: whether retrying helps, and whose failure it is.

Every flow that consumes a queue (the deal sync today; calendar, Teams and HubSpot → QBO next) asks
:func:`classify` about an exception and gets a :class:`Classified`:

- ``retryable``: may the same record succeed later? (SQS delivers it again, with a delay, or the
  record goes to the dead-letter queue with its reason at once);
- ``scope``: :attr:`FailureScope.SHARED` when every record behind the same vendor, connection or
  table fails the same way (a vendor outage, a 429, an open breaker, a revoked QBO connection, a
  DynamoDB table that does not answer): the batch fails together, there is nothing to isolate;
  :attr:`FailureScope.RECORD` when the vendor or LedgerLink refused one input (a 4xx about one
  document, an id QBO could never have, a document that cannot be mapped): the record that caused it
  fails alone and its neighbours go on; :attr:`FailureScope.UNEXPECTED` when nobody classified the
  exception — a bug. An unexpected failure is isolated to its record like a record failure and is
  *not* retried: retrying a bug costs every neighbour an hour of redeliveries and fixes nothing. It
  is dead-lettered at once with its reason (kind ``unexpected``), counted (``UnexpectedErrors``) and
  alarmed, so the bug is seen the first time; after the fix, ``ledgerlink dlq replay`` brings it back.
- ``retry_after``: at least this many seconds before a retry can help (a vendor's ``Retry-After``,
  the time until a breaker lets its probe through), when known.

Messages never carry secrets: LedgerLink's errors are built without them, and the dead-letter reason is
masked again (:func:`ledgerlink.consumer.deadletter.safe_reason`) in case an unexpected error's text has one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from botocore.exceptions import BotoCoreError, ClientError


class FailureScope(StrEnum):
    SHARED = "shared"  # the vendor, connection or table is down for everybody: fail the batch together
    RECORD = "record"  # this record's own problem: fail it alone
    UNEXPECTED = "unexpected"  # nobody classified it (a bug): fail it alone, loudly, at once


# Errors of LedgerLink's own infrastructure that say nothing about one record. Named by class name so
# this module imports none of the flows (they import it).
_SHARED_INFRASTRUCTURE: Final = frozenset(
    {"LinkStoreError", "VendorStateStoreError", "SecretError", "PublishError", "IdempotencyError"}
)


@dataclass(frozen=True)
class Classified:
    reason: str
    retryable: bool
    scope: FailureScope
    error_type: str
    retry_after: float | None = None
    refused_by: str | None = None
    """The vendor (``qbo``, ``hubspot``, ``graph``) that refused the connection's credentials or their
    scopes (HTTP 401/403 on any call), when that is the failure: a human must act."""


def classify(error: BaseException) -> Classified:
    """How a failure caused by ``error`` is handled (module docstring)."""
    classified = _classify(error)
    refused_by = refused_credentials(error)
    if refused_by is None:
        return classified
    return Classified(
        classified.reason,
        classified.retryable,
        classified.scope,
        classified.error_type,
        classified.retry_after,
        refused_by,
    )


def refused_credentials(error: BaseException) -> str | None:
    """The vendor whose 401/403 ``error`` is (its credentials or their scopes refused), else None."""
    vendor = getattr(error, "vendor", None)
    status = getattr(error, "status", None)
    if isinstance(vendor, str) and status in (401, 403) and getattr(error, "connection_wide", False):
        return vendor
    return None


def _classify(error: BaseException) -> Classified:
    error_type = type(error).__name__
    text = str(error) or error_type
    retry_after = _retry_after(error)
    retryable = getattr(error, "retryable", None)
    if isinstance(error, ClientError | BotoCoreError):
        # DynamoDB, SQS, EventBridge or Secrets Manager did not answer as it should: throttling and
        # outages pass, and an access or configuration problem is fixed for every record at once.
        return Classified(f"AWS call failed: {text}", True, FailureScope.SHARED, error_type, retry_after)
    if any(klass.__name__ in _SHARED_INFRASTRUCTURE for klass in type(error).__mro__):
        return Classified(text, True, FailureScope.SHARED, error_type, retry_after)
    if isinstance(retryable, bool):
        if retryable and getattr(error, "record_scoped", False):
            # e.g. HubSpot records deleted under a link: retrying helps, but only these records.
            return Classified(text, True, FailureScope.RECORD, error_type, retry_after)
        if retryable:
            return Classified(text, True, FailureScope.SHARED, error_type, retry_after)
        # A refused connection (QBO's invalid_grant) is the connection's, not one record's.
        scope = FailureScope.SHARED if getattr(error, "connection_wide", False) else FailureScope.RECORD
        return Classified(text, False, scope, error_type, retry_after)
    return Classified(
        f"unexpected {error_type} (a LedgerLink bug; replay after the fix): {text}",
        False,
        FailureScope.UNEXPECTED,
        error_type,
        retry_after,
    )


def _retry_after(error: BaseException) -> float | None:
    value = getattr(error, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value >= 0:
        return float(value)
    return None
