"""What became of one consumed event: the result a flow's sync gives back for each SQS message.

Every queue-fed flow returns an :class:`Outcome` per message; :mod:`ledgerlink.consumer.batch` turns the
failed ones into a :class:`~ledgerlink.consumer.deadletter.RecordFailure` (retry with a delay, or the
dead-letter queue with the reason), and the idempotency ledger stores :meth:`Outcome.result` for the
completed ones.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from ledgerlink.consumer.failures import Classified, FailureScope, classify


class OutcomeStatus(StrEnum):
    SYNCED = "synced"  # the target system now shows this change
    STALE = "stale"  # the target already shows this version or a newer one
    DUPLICATE = "duplicate"  # this event was processed before
    UNCHANGED = "unchanged"  # nothing in the target depends on it (e.g. an unknown entity that is gone)
    IGNORED = "ignored"  # an entity this flow does not sync
    FAILED = "failed"


@dataclass(frozen=True)
class Outcome:
    status: OutcomeStatus
    reason: str | None = None
    retryable: bool = False
    error_type: str | None = None
    detail: Mapping[str, str] = field(default_factory=dict)
    scope: FailureScope | None = None
    """Whose failure it is (failed outcomes only; ledgerlink.consumer.failures)."""
    retry_after: float | None = None
    """At least this many seconds before a retry can help (Retry-After, breaker), when known."""
    refused_by: str | None = None
    """The vendor that refused the connection's credentials (failed outcomes only; ``Classified``)."""

    @property
    def ok(self) -> bool:
        return self.status is not OutcomeStatus.FAILED

    @property
    def unexpected(self) -> bool:
        return self.scope is FailureScope.UNEXPECTED

    @classmethod
    def failure(cls, error: BaseException) -> Outcome:
        return cls.classified(classify(error))

    @classmethod
    def classified(cls, failure: Classified) -> Outcome:
        return cls(
            OutcomeStatus.FAILED,
            reason=failure.reason,
            retryable=failure.retryable,
            error_type=failure.error_type,
            scope=failure.scope,
            retry_after=failure.retry_after,
            refused_by=failure.refused_by,
        )

    def result(self) -> dict[str, Any]:
        """What the idempotency record stores for a completed event."""
        return {"status": self.status.value, **dict(self.detail)}


class Counter(Protocol):
    """A flow's metrics sink."""

    def count(self, name: str, value: int = 1) -> None: ...


class NoMetrics:
    """A sink that counts nothing (tests, tools)."""

    def count(self, name: str, value: int = 1) -> None:
        return None


def count_failure(metrics: Counter, outcome: Outcome) -> None:
    """The metrics of one failed record: ``EventsFailed``, ``EventsFailedPermanently`` when it will not be
    retried, ``UnexpectedErrors`` for a bug, and the alarmed error types under their own names."""
    metrics.count("EventsFailed")
    if not outcome.retryable:
        metrics.count("EventsFailedPermanently")
    if outcome.unexpected:
        metrics.count("UnexpectedErrors")
    # Failures a human must act on have metrics of their own, which the alarms watch.
    if outcome.error_type == "GraphCredentialsRejected":
        metrics.count("GraphCredentialsRejected")
    if outcome.error_type == "TeamsMeetingNotOnline":
        metrics.count("TeamsMeetingsNotOnline")
    if outcome.refused_by == "hubspot":
        # HubSpot refused the connection's private-app token (401) or its scopes (403): alarmed per
        # flow (infra/topology.py VENDOR_CREDENTIALS).
        metrics.count("HubSpotTokenRejected")
