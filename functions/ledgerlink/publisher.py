"""Publishes envelopes to an EventBridge bus with PutEvents, losing none without saying so.

PutEvents takes at most 10 entries per call and can accept some entries of a call while refusing
others (``FailedEntryCount`` > 0, an ``ErrorCode`` on each refused entry, e.g. throttling or an
internal failure). Only the refused entries are sent again, after a backoff with full jitter; a call
that fails as a whole (a botocore error) is retried the same way. If entries are still refused after
the last attempt, :class:`PublishError` says how many and why, so the caller can answer "try again"
to whoever sent the work (a webhook sender, an SQS queue). Entries that did go through are not
withdrawn: every envelope has a deterministic ``event_id`` and consumers deduplicate on it.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from ledgerlink.events import Envelope

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

MAX_ENTRIES_PER_CALL: Final = 10


class PublishError(RuntimeError):
    """Some envelopes were not accepted by EventBridge after every attempt.

    The message carries counts and error codes only (never the event details).
    """

    reason = "publish_failed"

    def __init__(self, failed_count: int, total_count: int, error_codes: Mapping[str, int]) -> None:
        codes = ", ".join(f"{code} x{count}" for code, count in sorted(error_codes.items()))
        super().__init__(f"{failed_count} of {total_count} events were not published ({codes})")
        self.failed_count = failed_count
        self.total_count = total_count
        self.error_codes = dict(error_codes)


@dataclass(frozen=True)
class RetryPolicy:
    """``attempts`` calls at most per entry; sleep ``uniform(0, min(cap, base * 2**retry))`` between.

    The defaults keep the worst case (about 0.35 s of sleeping) well inside a webhook's 3 s deadline.
    """

    attempts: int = 4
    base_seconds: float = 0.05
    cap_seconds: float = 0.2

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("a retry policy needs at least one attempt")
        if self.base_seconds < 0 or self.cap_seconds < 0:
            raise ValueError("backoff base and cap cannot be negative")

    def delay(self, retry_number: int, uniform: Callable[[float, float], float]) -> float:
        return uniform(0.0, min(self.cap_seconds, self.base_seconds * (2 ** min(retry_number, 32))))


class EventBridgePublisher:
    """Sends envelopes to one bus; see the module docstring for the retry rules."""

    def __init__(
        self,
        client: EventBridgeClient,
        event_bus_name: str,
        *,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        uniform: Callable[[float, float], float] = random.uniform,
    ) -> None:
        self._client = client
        self._bus = event_bus_name
        self._policy = policy or RetryPolicy()
        self._sleep = sleep
        self._uniform = uniform

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        """Publish every envelope or raise :class:`PublishError` naming how many were refused.

        Each entry's detail is validated against its schema before anything is sent.
        """
        entries = [envelope.to_put_events_entry(self._bus) for envelope in envelopes]
        refused: dict[str, int] = {}
        failed = 0
        for start in range(0, len(entries), MAX_ENTRIES_PER_CALL):
            codes = self._publish_chunk(entries[start : start + MAX_ENTRIES_PER_CALL])
            failed += len(codes)
            for code in codes:
                refused[code] = refused.get(code, 0) + 1
        if failed:
            raise PublishError(failed, len(entries), refused)

    def _publish_chunk(self, chunk: list[dict[str, Any]]) -> list[str]:
        """Error codes of the entries still refused after the last attempt (empty when all went through)."""
        pending = chunk
        codes: list[str] = []
        for attempt in range(self._policy.attempts):
            if attempt:
                self._sleep(self._policy.delay(attempt - 1, self._uniform))
            pending, codes = self._put(pending)
            if not pending:
                return []
        return codes

    def _put(self, entries: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
        """(entries refused, their error codes) for one PutEvents call."""
        try:
            response = self._client.put_events(Entries=entries)  # type: ignore[arg-type]
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "ClientError"))
            return entries, [code] * len(entries)
        except BotoCoreError as error:
            return entries, [type(error).__name__] * len(entries)
        if not response.get("FailedEntryCount"):
            return [], []
        results = response.get("Entries", [])
        refused: list[dict[str, Any]] = []
        codes: list[str] = []
        for index, entry in enumerate(entries):
            # The result list is positional; a missing result counts as refused rather than as sent.
            result: Mapping[str, Any] = results[index] if index < len(results) else {"ErrorCode": "NoResult"}
            if result.get("ErrorCode") or not result.get("EventId"):
                refused.append(entry)
                codes.append(str(result.get("ErrorCode") or "NoEventId"))
        return refused, codes
