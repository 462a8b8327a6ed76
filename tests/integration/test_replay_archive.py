"""``ledgerlink replay archive`` on moto: deliveries archived by the real ingests from recorded payloads,
replayed onto the bus, compared with what the live ingest published."""

from __future__ import annotations

import argparse
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main
from ledgerlink.cli.replay import hour_prefixes, parse_moment, run_replay_archive
from ledgerlink.config import reset_settings_cache
from ledgerlink.configfile import load
from ledgerlink.configfile import reset_for_tests as reset_deployment_config
from ledgerlink.events import DetailType
from ledgerlink.ingest.archive import S3RawArchive, WebhookDelivery
from ledgerlink.ingest.hubspot import HubSpotIngestPorts, ingest_hubspot_delivery
from ledgerlink.ingest.service import IngestPorts, ingest_delivery
from ledgerlink.ingest.signing_secret import SecretStoreSigningSecrets
from ledgerlink.observability import Service
from ledgerlink.publisher import EventBridgePublisher
from ledgerlink.qbo.webhooks import compute_signature
from ledgerlink.secrets import InMemorySecretStore
from tests.aws_fixtures import capture_queue
from tests.unit.ingest import hubspot_requests as hubspot
from tests.unit.ingest.signed_requests import INGEST_ENVIRONMENT, VERIFIER_TOKEN, body_of

BUS = INGEST_ENVIRONMENT["LEDGERLINK_EVENT_BUS_NAME"]
BUCKET = INGEST_ENVIRONMENT["LEDGERLINK_RAW_BUCKET_NAME"]
CONFIG = load(INGEST_ENVIRONMENT["LEDGERLINK_CONFIG_FILE"])
# Deliveries received in three hours of one day: QBO at 14h and 15h, HubSpot at 14h and 16h.
QBO_DELIVERIES = (
    ("qbo-1400", datetime(2026, 11, 25, 14, 2, 52, tzinfo=UTC), "cloudevents_multi_realm.json"),
    ("qbo-1530", datetime(2026, 11, 25, 15, 30, 0, tzinfo=UTC), "legacy_multi_realm.json"),
)
HUBSPOT_DELIVERIES = (
    ("hs-1405", datetime(2026, 11, 25, 14, 5, 0, tzinfo=UTC), "deal_events.json"),
    ("hs-1610", datetime(2026, 11, 25, 16, 10, 0, tzinfo=UTC), "line_item_events.json"),
)


@dataclass
class Aws:
    s3: Any
    sqs: Any
    events: Any
    queues: dict[str, str]

    def bus_events(self) -> list[dict[str, Any]]:
        """The detail of every qbo.entity.changed and hubspot.deal.changed the bus delivered since last
        asked (each capture queue drained until empty: moto delivers synchronously)."""
        return [detail for detail_type in self.queues for detail in self.drain(detail_type)]

    def bus_event_ids(self) -> list[str]:
        return ids(self.bus_events())

    def drain(self, detail_type: str) -> list[dict[str, Any]]:
        url, details = self.queues[detail_type], []
        while batch := self.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
            for message in batch:
                details.append(json.loads(message["Body"])["detail"])
                self.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return details


def ids(details: list[dict[str, Any]]) -> list[str]:
    return sorted(detail["event_id"] for detail in details)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    for name, value in INGEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    reset_deployment_config()
    with mock_aws():
        s3, sqs, events = boto3.client("s3"), boto3.client("sqs"), boto3.client("events")
        s3.create_bucket(Bucket=BUCKET)
        events.create_event_bus(Name=BUS)
        queues = {
            detail_type: capture_queue(
                events, sqs, bus=BUS, detail_type=detail_type, queue_name=detail_type.replace(".", "-")
            )
            for detail_type in (DetailType.QBO_ENTITY_CHANGED, DetailType.HUBSPOT_DEAL_CHANGED)
        }
        yield Aws(s3, sqs, events, queues)
    reset_settings_cache()
    reset_deployment_config()


def ingest_live(aws: Aws) -> list[dict[str, Any]]:
    """Every recorded delivery through the real ingests (signed, verified, archived to S3, published);
    the event details the bus received."""
    archive = S3RawArchive(aws.s3, BUCKET)
    publisher = EventBridgePublisher(aws.events, BUS)
    qbo_ports = IngestPorts(
        verifier_token=lambda: VERIFIER_TOKEN, archive=archive, publisher=publisher, served=CONFIG
    )
    for delivery_id, received_at, fixture in QBO_DELIVERIES:
        body = body_of(fixture)
        headers = {
            "intuit-signature": compute_signature(VERIFIER_TOKEN, body),
            "content-type": "application/json",
        }
        ingest_delivery(WebhookDelivery(delivery_id, received_at, headers, body), qbo_ports)
    secrets = InMemorySecretStore(
        {
            hubspot.secret_name(name): {"access_token": f"pat-{name}", "client_secret": secret}
            for name, secret in hubspot.CLIENT_SECRETS.items()
        }
    )
    hubspot_ports = HubSpotIngestPorts(
        signing_secrets=SecretStoreSigningSecrets(secrets, hubspot.STAGE),
        archive=archive,
        publisher=publisher,
        served=CONFIG,
    )
    timestamp = str(hubspot.SENT_MS)
    for delivery_id, received_at, fixture in HUBSPOT_DELIVERIES:
        body = hubspot.body_of(fixture)
        signature = hubspot.hubspot_signature(
            hubspot.CLIENT_SECRETS["sample"], "POST", hubspot.PUBLIC_URL, body, timestamp
        )
        headers = {"x-hubspot-signature-v3": signature, "x-hubspot-request-timestamp": timestamp}
        ingest_hubspot_delivery(
            WebhookDelivery(delivery_id, received_at, headers, body),
            hubspot_ports,
            public_url=hubspot.PUBLIC_URL,
            now_ms=hubspot.RECEIVED_MS,
            max_events=100,
        )
    return aws.bus_events()


def replay(*arguments: str) -> tuple[int, str]:
    """``ledgerlink replay archive --aws ...`` (the deployment's settings are in the environment)."""
    out = io.StringIO()
    parser = argparse.ArgumentParser()
    from ledgerlink.cli.replay import register

    register(parser)
    args = parser.parse_args(["archive", "--aws", *arguments])
    return run_replay_archive(args, out), out.getvalue()


def test_replaying_the_day_publishes_exactly_the_event_ids_the_live_ingest_published(aws: Aws) -> None:
    # given a day of QBO and HubSpot deliveries ingested live
    live = ids(ingest_live(aws))
    assert live, "the recorded deliveries publish events"
    # when the day is replayed
    status, output = replay("--since", "2026-11-25", "--until", "2026-11-26")
    # then the bus receives the same events again, by id, and the summary counts them
    assert status == EXIT_OK, output
    assert aws.bus_event_ids() == live
    assert f"{len(live)} published" in output
    assert "deliveries: 4 read, 4 replayed" in output


def test_replaying_twice_publishes_the_same_ids_again_and_nothing_more(aws: Aws) -> None:
    # given a day ingested live and replayed once
    live = ids(ingest_live(aws))
    replay("--since", "2026-11-25", "--until", "2026-11-26")
    first = aws.bus_event_ids()
    # when it is replayed again
    status, _ = replay("--since", "2026-11-25", "--until", "2026-11-26")
    # then the second replay's events are the first's, which are the live ones (consumers dedupe by id)
    assert status == EXIT_OK
    assert aws.bus_event_ids() == first == live


def test_a_dry_run_publishes_nothing_and_says_what_it_would_publish(aws: Aws) -> None:
    # given a day ingested live
    live = ids(ingest_live(aws))
    # when it is replayed with --dry-run
    status, output = replay("--since", "2026-11-25", "--until", "2026-11-26", "--dry-run")
    # then nothing reaches the bus, and the summary names what a replay would publish
    assert status == EXIT_OK
    assert aws.bus_event_ids() == []
    assert f"{len(live)} would publish" in output


def test_since_and_until_bound_the_window_to_the_deliveries_received_in_it(aws: Aws) -> None:
    # given deliveries at 14:02, 14:05, 15:30 and 16:10
    live = ingest_live(aws)
    # when only 14:04 to 15:31 is replayed (a window that cuts the 14h hour)
    status, output = replay("--since", "2026-11-25T14:04:00Z", "--until", "2026-11-25T15:31")
    # then only the HubSpot delivery of 14:05 and the QBO one of 15:30 are replayed
    assert status == EXIT_OK
    assert "deliveries: 2 read, 2 replayed" in output
    kept = {"qbo/raw/2026/11/25/15/qbo-1530.json", "hubspot/raw/2026/11/25/14/hs-1405.json"}
    assert aws.bus_event_ids() == ids([d for d in live if d["payload"]["raw_object_key"] in kept])


def test_source_keeps_one_vendors_deliveries(aws: Aws) -> None:
    # given a day ingested live
    ingest_live(aws)
    # when only HubSpot's deliveries are replayed
    status, output = replay("--since", "2026-11-25", "--until", "2026-11-26", "--source", "hubspot")
    # then only hubspot.deal.changed events are published
    assert status == EXIT_OK
    assert "deliveries: 2 read, 2 replayed" in output
    assert aws.drain(DetailType.QBO_ENTITY_CHANGED) == []
    assert aws.drain(DetailType.HUBSPOT_DEAL_CHANGED)


def test_connection_keeps_only_that_connections_events(aws: Aws) -> None:
    # given a day of deliveries for both connections (the QBO ones name both realms; HubSpot's are "sample")
    live = ingest_live(aws)
    # when only "second" is replayed
    status, output = replay("--since", "2026-11-25", "--until", "2026-11-26", "--connection", "second")
    # then every event published is the second connection's, and the others are counted as skipped
    assert status == EXIT_OK
    published = aws.drain(DetailType.QBO_ENTITY_CHANGED) + aws.drain(DetailType.HUBSPOT_DEAL_CHANGED)
    assert published
    assert {detail["payload"]["connection"] for detail in published} == {"second"}
    assert ids(published) == ids([d for d in live if d["payload"]["connection"] == "second"])
    others = sum(1 for d in live if d["payload"]["connection"] != "second")
    assert f"{others} of another connection" in output


def test_an_unknown_connection_is_refused(aws: Aws) -> None:
    status, _ = replay("--since", "2026-11-25", "--connection", "nobody")
    assert status == EXIT_FAILED


def test_a_malformed_archived_document_is_reported_and_skipped(aws: Aws) -> None:
    # given a day ingested live, and two broken documents among its deliveries
    live = ids(ingest_live(aws))
    aws.s3.put_object(Bucket=BUCKET, Key="qbo/raw/2026/11/25/14/broken.json", Body=b"{not json")
    not_verified = WebhookDelivery("forged", datetime(2026, 11, 25, 14, 9, tzinfo=UTC), {}, b"[]")
    aws.s3.put_object(Bucket=BUCKET, Key="hubspot/raw/2026/11/25/14/forged.json", Body=not_verified.to_json())
    # when the day is replayed
    status, output = replay("--since", "2026-11-25", "--until", "2026-11-26")
    # then the good deliveries are replayed, each broken one is named, and the run still succeeds
    assert status == EXIT_OK
    assert aws.bus_event_ids() == live
    assert "malformed: qbo/raw/2026/11/25/14/broken.json" in output
    assert "malformed: hubspot/raw/2026/11/25/14/forged.json" in output
    assert "skipped 2 malformed" in output


def test_a_window_that_ends_before_it_starts_is_a_usage_error(aws: Aws) -> None:
    assert replay("--since", "2026-11-26", "--until", "2026-11-25")[0] == EXIT_USAGE
    assert replay("--since", "yesterday")[0] == EXIT_USAGE


def test_the_command_is_a_ledgerlink_group(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    # given a day ingested live; when `ledgerlink replay archive` runs through the entry point
    ingest_live(aws)
    level_before = logging.getLogger(Service.QBO_INGEST).level
    status = main(
        ["replay", "archive", "--aws", "--since", "2026-11-25", "--until", "2026-11-26", "--dry-run"]
    )
    # then it reports the deliveries, the ingests' logs stay off stdout, and their logger is as it was
    assert status == EXIT_OK
    assert logging.getLogger(Service.QBO_INGEST).level == level_before
    out = capsys.readouterr().out
    assert "deliveries: 4 read, 4 replayed" in out
    assert '"level"' not in out


def test_progress_is_a_plain_line_every_n_deliveries_off_a_terminal() -> None:
    from ledgerlink.cli.replay import Progress, ReplayReport

    out = io.StringIO()
    progress, report = Progress(out, every=2), ReplayReport(dry_run=False)
    for _ in range(5):
        report.deliveries["read"] += 1
        progress.update(report)
    progress.finish()
    assert out.getvalue().splitlines() == [
        "progress: 2 deliveries read, 0 events published",
        "progress: 4 deliveries read, 0 events published",
    ]


def test_the_window_lists_every_hour_it_overlaps() -> None:
    since, until = parse_moment("2026-11-25T23:30"), parse_moment("2026-11-26T01:00:00+00:00")
    assert hour_prefixes("qbo/raw", since, until) == ["qbo/raw/2026/11/25/23/", "qbo/raw/2026/11/26/00/"]
    assert parse_moment("2026-11-25") == datetime(2026, 11, 25, tzinfo=UTC)
    assert parse_moment("2026-11-25T15:00+01:00") == datetime(2026, 11, 25, 14, tzinfo=UTC)


def test_events_the_ingest_skips_are_counted_as_skipped_again(aws: Aws) -> None:
    # given a signed QBO delivery whose events include types LedgerLink does not know, archived live
    body = body_of("cloudevents_unsupported_types.json")
    headers = {"intuit-signature": compute_signature(VERIFIER_TOKEN, body)}
    ports = IngestPorts(
        verifier_token=lambda: VERIFIER_TOKEN,
        archive=S3RawArchive(aws.s3, BUCKET),
        publisher=EventBridgePublisher(aws.events, BUS),
        served=CONFIG,
    )
    live = ingest_delivery(
        WebhookDelivery("qbo-skips", datetime(2026, 11, 25, 9, tzinfo=UTC), headers, body), ports
    )
    aws.bus_events()
    # when its hour is replayed
    status, output = replay("--since", "2026-11-25T09:00", "--until", "2026-11-25T10:00")
    # then the same events are published and the same ones skipped, as the summary says
    assert status == EXIT_OK
    assert aws.bus_event_ids() == sorted(envelope.event_id for envelope in live.events)
    assert f"skipped {len(live.unsupported)} unsupported" in output


class ClosedPipe(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError


def test_a_closed_pipe_ends_the_command_quietly(aws: Aws, capsys: pytest.CaptureFixture[str]) -> None:
    # given a day ingested live, and an output whose reader has gone (`| head`)
    ingest_live(aws)
    parser = argparse.ArgumentParser()
    from ledgerlink.cli.replay import register

    register(parser)
    args = parser.parse_args(["archive", "--aws", "--since", "2026-11-25", "--until", "2026-11-26"])
    # when the replay runs, then it ends with status 0 and says nothing on stderr
    assert run_replay_archive(args, ClosedPipe()) == EXIT_OK
    assert capsys.readouterr().err == ""
