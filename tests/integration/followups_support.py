"""The follow-up flow's test world: the calendar world (tests/integration/calendar_sync_support.py) with
the follow-up flow built beside it, as the Teams invite Lambda builds it, on a clock the tests set.
An invoice's deal.synced goes through the real calendar sync; the calendar.synced events it publishes
are what the follow-up flow consumes, as on the deployed chain."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ledgerlink.clock import ManualClock
from ledgerlink.configfile import load as load_config
from ledgerlink.consumer.outcome import Outcome
from ledgerlink.followups.factory import FollowUpParts, build_follow_ups
from ledgerlink.followups.inbox import Trigger, parse_record
from ledgerlink.secrets import PowertoolsSecretStore
from ledgerlink_local.sandboxes.core import SandboxServer
from tests.conftest import FIXTURES
from tests.integration.calendar_sync_support import REGION, CalendarWorld, build_world

CONFIG_FILE = FIXTURES / "config" / "followups.toml"


def at(text: str) -> float:
    return datetime.fromisoformat(text).astimezone(UTC).timestamp()


@dataclass
class FollowUpWorld:
    calendar: CalendarWorld
    parts: FollowUpParts
    clock: ManualClock
    _sequence: int = 0
    consumed: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)

    def sync(self, triggers: list[Trigger]) -> dict[str, Outcome]:
        return self.parts.service.sync(triggers, remaining_ms=60_000)

    def invoice_changes(self, **payload: Any) -> list[Trigger]:
        """The deal.synced of an invoice through the real calendar sync: the calendar.synced events it
        published, as teams-invite records."""
        self.calendar.sync_one(self.calendar.deal_synced(**payload))
        return self.new_calendar_synced()

    def new_calendar_synced(self) -> list[Trigger]:
        published = self.calendar.published()
        fresh = published[self.consumed :]
        self.consumed = len(published)
        return [
            parse_record(self.record("ledgerlink.calendar.synced", "ledgerlink.outlook", detail))
            for detail in fresh
        ]

    def record(self, detail_type: str, source: str, detail: dict[str, Any]) -> dict[str, Any]:
        self._sequence += 1
        body = {
            "version": "0",
            "id": f"eb-{self._sequence}",
            "detail-type": detail_type,
            "source": source,
            "account": "123456789012",
            "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": REGION,
            "resources": [],
            "detail": detail,
        }
        return {
            "messageId": f"teams-{self._sequence}",
            "receiptHandle": f"rh-{self._sequence}",
            "body": json.dumps(body),
            "attributes": {"ApproximateReceiveCount": "1"},
        }

    def sweep_record(self, when: str) -> Trigger:
        self._sequence += 1
        body = {
            "version": "0",
            "id": f"sched-{self._sequence}",
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": when,
            "region": REGION,
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/ledgerlink-test-followup-sweep"],
            "detail": {},
        }
        return parse_record(
            {"messageId": f"sweep-{self._sequence}", "body": json.dumps(body), "attributes": {}}
        )

    def followups_due(self) -> list[Trigger]:
        """The followup.due events the sweep published (captured on the bus), as teams-invite records."""
        sqs = self.calendar.aws["sqs"]
        url = self.calendar.aws["followup_queue_url"]
        found = []
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                detail = json.loads(message["Body"])["detail"]
                self.seen.append(detail)
                found.append(parse_record(self.record("ledgerlink.followup.due", "ledgerlink.teams", detail)))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def build_followup_world(
    hubspot: SandboxServer, graph: SandboxServer, monkeypatch: Any, now: str
) -> FollowUpWorld:
    from tests.aws_fixtures import capture_queue

    # One clock for both flows: they share the vendor-state table (rate limits, breakers), whose
    # windows assume time only moves forward.
    clock = ManualClock(at(now))
    calendar = build_world(hubspot, graph, monkeypatch, CONFIG_FILE, clock)
    calendar.aws["followup_queue_url"] = capture_queue(
        calendar.aws["events"],
        calendar.aws["sqs"],
        bus=calendar.settings.event_bus_name,
        detail_type="ledgerlink.followup.due",
        queue_name="ledgerlink-test-followup-due-capture",
    )
    parts = build_follow_ups(
        calendar.settings,
        secrets=PowertoolsSecretStore(max_age_seconds=0),
        config=load_config(CONFIG_FILE),
        dynamodb=calendar.aws["dynamodb"],
        events=calendar.aws["events"],
        clock=clock,
        metrics=calendar.metrics,
    )
    return FollowUpWorld(calendar, parts, clock)
