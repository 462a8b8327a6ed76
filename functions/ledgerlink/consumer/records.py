"""An SQS record of a queue fed by an EventBridge rule → the envelope it carries, validated.

The rule delivers the whole EventBridge event as the message body; its ``detail`` is a LedgerLink
envelope (:mod:`ledgerlink.events`), checked against its detail-type's schema here. Every flow's record
parser starts with :func:`read_envelope`; a record that does not parse raises
:class:`~ledgerlink.consumer.batch.MalformedRecord` naming what is wrong: it can never succeed, so it
goes to the dead-letter queue with that reason.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ledgerlink.consumer.batch import MalformedRecord
from ledgerlink.events import Envelope, EnvelopeError


@dataclass(frozen=True)
class ReceivedEnvelope:
    message_id: str
    receive_count: int
    envelope: Envelope


def read_envelope(record: Mapping[str, Any], detail_type: str) -> ReceivedEnvelope:
    """The envelope of ``detail_type`` one SQS record (Lambda's SQS event shape) carries."""
    message_id = str(record.get("messageId") or "")
    if not message_id:
        raise MalformedRecord("SQS record has no messageId")
    try:
        event = json.loads(record.get("body") or "")
    except ValueError:
        raise MalformedRecord(f"message {message_id}: body is not JSON") from None
    if not isinstance(event, dict):
        raise MalformedRecord(f"message {message_id}: body is not a JSON object")
    if event.get("detail-type") != detail_type:
        raise MalformedRecord(
            f"message {message_id}: detail-type is {event.get('detail-type')!r}, expected {detail_type!r}"
        )
    try:
        envelope = Envelope.from_eventbridge(event)
    except EnvelopeError as error:
        raise MalformedRecord(f"message {message_id}: {error}") from None
    attributes = record.get("attributes") or {}
    try:
        receive_count = int(attributes.get("ApproximateReceiveCount", "1"))
    except (TypeError, ValueError):
        receive_count = 1
    return ReceivedEnvelope(message_id, receive_count, envelope)
