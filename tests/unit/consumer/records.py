"""SQS records as Lambda hands them to a queue-fed flow, built from the recorded ones in tests/fixtures."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import FIXTURES

QUEUE = "ledgerlink-test-deal-sync"


def sqs_record(message_id: str, *, receive_count: int = 1, body: str | None = None) -> dict[str, Any]:
    """The recorded Lambda SQS record, carrying the recorded qbo.entity.changed event (unless ``body``)."""
    record: dict[str, Any] = json.loads((FIXTURES / "sqs" / "lambda-sqs-event-record.json").read_text())
    record.pop("_comment")
    event = json.loads((FIXTURES / "infra" / "qbo-entity-changed-invoice.eventbridge.json").read_text())
    event["detail"]["event_id"] = f"event-{message_id}"
    record.update(
        messageId=message_id,
        body=body if body is not None else json.dumps(event),
        eventSourceARN=f"arn:aws:sqs:us-east-1:123456789012:{QUEUE}",
    )
    record["attributes"] = {
        **record["attributes"],
        "ApproximateReceiveCount": str(receive_count),
        "AWSTraceHeader": "Root=1-6744a3f0-4c2a1b0e9f8d7c6b5a493827;Parent=53995c3f42cd8ad8;Sampled=1",
    }
    return record
