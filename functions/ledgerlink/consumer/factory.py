"""Builds a queue-fed flow's dead-letter router from :class:`~ledgerlink.config.Settings`
(``LEDGERLINK_DEAD_LETTER_QUEUE_NAME``, ``LEDGERLINK_MAX_RECEIVE_COUNT``, ``LEDGERLINK_RETRY_BASE_SECONDS``,
``LEDGERLINK_RETRY_MAX_DELAY_SECONDS``), the same way for every flow (each flow's factory calls it)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3

from ledgerlink.clock import Clock
from ledgerlink.config import ConfigError, EnvVar, Settings
from ledgerlink.consumer.deadletter import Counter, DeadLetterRouter, SqsDeadLetterQueue
from ledgerlink.consumer.redelivery import RedeliverySchedule, SqsRedelivery

if TYPE_CHECKING:
    from mypy_boto3_sqs.client import SQSClient


def dead_letter_router(
    settings: Settings, *, metrics: Counter, sqs: SQSClient | None = None, clock: Clock | None = None
) -> DeadLetterRouter:
    """``sqs`` is only used (and only created) when ``settings.dead_letter_queue_name`` or
    ``settings.max_receive_count`` is set (the function consumes a queue)."""
    # SQS is needed (and created) only by a function that dead-letters or delays its own records.
    sqs_client: SQSClient | None = sqs
    if sqs_client is None and (settings.dead_letter_queue_name or settings.max_receive_count):
        sqs_client = boto3.client("sqs")
    dead_letter_queue = (
        SqsDeadLetterQueue(settings.dead_letter_queue_name, sqs_client)
        if settings.dead_letter_queue_name and sqs_client is not None
        else None
    )
    now: Callable[[], datetime] = (
        (lambda: datetime.fromtimestamp(clock.now(), UTC)) if clock is not None else lambda: datetime.now(UTC)
    )
    return DeadLetterRouter(
        dead_letter_queue,
        max_receive_count=settings.max_receive_count,
        redelivery=SqsRedelivery(sqs_client) if sqs_client is not None else None,
        schedule=redelivery_schedule(settings),
        metrics=metrics,
        now=now,
    )


def redelivery_schedule(settings: Settings) -> RedeliverySchedule:
    """The retry delays of ``LEDGERLINK_RETRY_BASE_SECONDS`` / ``..._MAX_DELAY_SECONDS``; a bad pair names them."""
    try:
        return RedeliverySchedule(settings.retry_base_seconds, settings.retry_max_delay_seconds)
    except ValueError as error:
        raise ConfigError(
            f"{EnvVar.RETRY_BASE_SECONDS.value} / {EnvVar.RETRY_MAX_DELAY_SECONDS.value}: {error}"
        ) from None
