"""When a failed record comes back: its own delay, in seconds to minutes, instead of the visibility timeout.

A Lambda-polled queue's visibility timeout must be at least six times the function's timeout (AWS's
rule, so a record in flight is never handed to a second invocation): 725 s for the deal sync. A record
reported failed in ``batchItemFailures`` is only received again when that timeout ends, so one 500
from a token endpoint held a record for twelve minutes. The consumer therefore gives each record it
reports failed a visibility of its own with ``ChangeMessageVisibility`` (AWS documents that a message's
visibility can be changed while it is in flight, and that a failed message reappears when its
visibility ends): :meth:`RedeliverySchedule.delay`.

The delay grows with the record's receive count, exponentially from ``base_seconds`` to
``cap_seconds`` by :data:`GROWTH` a receive, with *equal* jitter (uniformly between half the step and
the whole step). The growth is 1.25, not the usual doubling, because the step in force when an outage
ends is what the records wait after it: doubling makes each step about as long as all the failing
time before it (a two-minute outage could leave records waiting 60-120 s more), while 1.25 keeps it
near a quarter of it (about 30 s after two minutes), and the cap bounds it after long outages. The half
that is fixed is what lets :meth:`RedeliverySchedule.receives_to_span` guarantee how long a record
keeps being retried before its last receive, which sizes the queue's ``maxReceiveCount`` so a vendor
outage of :data:`OUTAGE_SPAN_SECONDS` (an hour) never dead-letters anything; the half that is random
keeps records that failed together from returning together. The delay is never shorter than what the
vendor asked for (``Retry-After``) or than the time until the vendor's circuit breaker lets its probe
through: retrying earlier cannot succeed.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient

logger = Logger(child=True)

# SQS: a visibility timeout is 0..43,200 s (12 hours); ChangeMessageVisibilityBatch takes 10 entries.
SQS_MAX_VISIBILITY_SECONDS: Final = 43_200
SQS_BATCH_MAX: Final = 10
# How long a vendor outage may last before anything is dead-lettered as exhausted.
OUTAGE_SPAN_SECONDS: Final = 3600.0
DEFAULT_BASE_SECONDS: Final = 2.0
DEFAULT_CAP_SECONDS: Final = 120.0
# Each receive's step is this many times the previous one (module docstring: why not 2).
GROWTH: Final = 1.25


class Uniform(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class RedeliverySchedule:
    """``delay(n)`` for a record that failed on its n-th receive (module docstring)."""

    base_seconds: float = DEFAULT_BASE_SECONDS
    cap_seconds: float = DEFAULT_CAP_SECONDS

    def __post_init__(self) -> None:
        if not (0 < self.base_seconds <= self.cap_seconds <= SQS_MAX_VISIBILITY_SECONDS):
            raise ValueError(
                "redelivery needs 0 < base <= cap <= 43200 s, "
                f"got base {self.base_seconds} s and cap {self.cap_seconds} s"
            )

    def step(self, receive_count: int) -> float:
        """The whole step after the ``receive_count``-th receive (1 for the first)."""
        exponent = max(0, receive_count - 1)
        if exponent >= 400:  # 1.25**400 is past any cap: a huge count cannot overflow
            return self.cap_seconds
        return min(self.cap_seconds, self.base_seconds * GROWTH**exponent)

    def delay(self, receive_count: int, *, at_least: float | None = None, rng: Uniform | None = None) -> int:
        """Whole seconds before the record is received again (SQS counts visibility in seconds)."""
        step = self.step(receive_count)
        chosen = (rng or random).uniform(step / 2, step)
        if at_least is not None and at_least > chosen:
            chosen = at_least
        return min(SQS_MAX_VISIBILITY_SECONDS, math.ceil(chosen))

    def guaranteed_seconds(self, receives: int) -> float:
        """The least time from the first receive to the ``receives``-th, whatever the jitter drew."""
        return sum(self.step(count) / 2 for count in range(1, receives))

    def receives_to_span(self, seconds: float = OUTAGE_SPAN_SECONDS) -> int:
        """The smallest ``maxReceiveCount`` whose last receive comes at least ``seconds`` after the first."""
        receives = 1
        while self.guaranteed_seconds(receives) < seconds:
            receives += 1
        return receives


@dataclass(frozen=True)
class Delayed:
    """One failed record to be received again in ``seconds``."""

    message_id: str
    queue_arn: str
    receipt_handle: str
    seconds: int


class Redelivery(Protocol):
    def delay(self, records: Sequence[Delayed]) -> Mapping[str, str]:
        """Change each record's visibility; message id -> why it could not be changed."""
        ...


class SqsRedelivery:
    """``ChangeMessageVisibilityBatch`` on the queues the records came from (their URLs looked up once)."""

    def __init__(self, client: SQSClient) -> None:
        self._client = client
        self._urls: dict[str, str] = {}

    def _url(self, queue_arn: str) -> str:
        if queue_arn not in self._urls:
            parts = queue_arn.split(":")
            if len(parts) < 6 or not parts[5]:
                raise ValueError(f"not an SQS queue ARN: {queue_arn!r}")
            self._urls[queue_arn] = self._client.get_queue_url(
                QueueName=parts[5], QueueOwnerAWSAccountId=parts[4]
            )["QueueUrl"]
        return self._urls[queue_arn]

    def delay(self, records: Sequence[Delayed]) -> Mapping[str, str]:
        errors: dict[str, str] = {}
        for queue_arn, chunk in _chunks(records):
            try:
                response: Any = self._client.change_message_visibility_batch(
                    QueueUrl=self._url(queue_arn),
                    Entries=[
                        {
                            "Id": str(index),
                            "ReceiptHandle": record.receipt_handle,
                            "VisibilityTimeout": record.seconds,
                        }
                        for index, record in enumerate(chunk)
                    ],
                )
            except (ClientError, BotoCoreError, ValueError) as error:
                code = (
                    error.response.get("Error", {}).get("Code", "Unknown")
                    if isinstance(error, ClientError)
                    else type(error).__name__
                )
                errors.update(
                    {record.message_id: f"ChangeMessageVisibilityBatch failed ({code})" for record in chunk}
                )
                continue
            for refused in response.get("Failed", []):
                errors[chunk[int(refused["Id"])].message_id] = (
                    f"visibility not changed ({refused.get('Code')})"
                )
        return errors


def _chunks(records: Sequence[Delayed]) -> Iterator[tuple[str, list[Delayed]]]:
    by_queue: dict[str, list[Delayed]] = {}
    for record in records:
        by_queue.setdefault(record.queue_arn, []).append(record)
    for queue_arn, queue_records in by_queue.items():
        for start in range(0, len(queue_records), SQS_BATCH_MAX):
            yield queue_arn, queue_records[start : start + SQS_BATCH_MAX]
