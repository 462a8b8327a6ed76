"""The HubSpot ingest handler's answers, with in-memory ports and the recorded API Gateway event:
413, 400, 401, 503, 200, each with a body that says why, and the metrics that count them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from ledgerlink.configfile import deployment_config
from ledgerlink.ingest.archive import WebhookDelivery
from ledgerlink.ingest.fakes import InMemoryEventPublisher, InMemoryRawArchive
from ledgerlink.ingest.hubspot import HubSpotIngestPorts
from ledgerlink.ingest.signing_secret import SecretStoreSigningSecrets
from ledgerlink.secrets import InMemorySecretStore
from tests.unit.ingest.hubspot_requests import (
    CLIENT_SECRETS,
    OTHER_SECRET,
    PUBLIC_URL,
    SENT_MS,
    STAGE,
    apigw_event,
    body_of,
    malformed_cases,
    secret_name,
)

ARCHIVE_KEY = "hubspot/raw/2026/11/25/14/Hx7pRwYcIAMEbQw=.json"


@dataclass
class LambdaContext:
    function_name: str = "ledgerlink-test-hubspot-ingest"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-test-hubspot-ingest"
    )
    aws_request_id: str = "7c1e4a2b-3d5f-4e6a-9b8c-0d1e2f3a4b5c"


class CountingSecrets(InMemorySecretStore):
    def __init__(self) -> None:
        super().__init__(
            {
                secret_name(name): {"access_token": f"pat-{name}", "client_secret": secret}
                for name, secret in CLIENT_SECRETS.items()
            }
        )
        self.reads = 0

    def get(self, name: str) -> Any:
        self.reads += 1
        return super().get(name)


@dataclass
class World:
    archive: InMemoryRawArchive
    publisher: InMemoryEventPublisher
    secrets: CountingSecrets


@pytest.fixture
def world(hubspot_ingest_environment: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> World:
    from hubspot_ingest import handler

    fake = World(InMemoryRawArchive(), InMemoryEventPublisher(), CountingSecrets())
    # the configuration file of the environment: its connections serve the recorded portals
    ports = HubSpotIngestPorts(
        signing_secrets=SecretStoreSigningSecrets(fake.secrets, STAGE),
        archive=fake.archive,
        publisher=fake.publisher,
        served=deployment_config(),
    )
    monkeypatch.setattr(handler, "_ports", lambda: ports)
    return fake


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    from hubspot_ingest.handler import lambda_handler

    response = lambda_handler(event, LambdaContext())
    assert response["headers"] == {"content-type": "application/json"}
    return response["statusCode"], json.loads(response["body"])


def metric_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]


def test_a_signed_delivery_is_answered_200_with_what_was_accepted_and_skipped(world: World) -> None:
    # given HubSpot's signed delivery of one deal stage change and four events LedgerLink skips
    body = body_of("unsupported_types.json")

    # when API Gateway invokes the function with it
    status, answer = invoke(apigw_event(body))

    # then HubSpot gets a 200 with the counts, with no call to HubSpot
    assert (status, answer) == (200, {"accepted": 1, "skipped": 4, "delivery_id": "Hx7pRwYcIAMEbQw="})
    # and the stage change is on the bus, for the connection the configuration file gives the portal
    (detail,) = world.publisher.details()
    assert (detail["payload"]["connection"], detail["payload"]["change"]) == ("sample", "stage_changed")
    assert detail["payload"]["config_version"] == deployment_config().version
    # and the raw delivery is archived with the URL it was verified against
    archived = WebhookDelivery.from_json(world.archive.objects[ARCHIVE_KEY])
    assert (archived.body, archived.verified, archived.public_url) == (body, "v3", PUBLIC_URL)


def test_the_query_string_is_part_of_the_url_checked(world: World) -> None:
    # given HubSpot called the URL with a query (escapes in it), and signed that URL
    query = "portal=48213570&next=%2Fdeals%3A1&note=a%20b"
    body = body_of("deal_stage_changed.json")
    event = apigw_event(
        body, signed_url=f"{PUBLIC_URL}?portal=48213570&next=/deals:1&note=a%20b", raw_query=query
    )

    # then the rebuilt URL (host + rawPath + rawQueryString) verifies
    status, answer = invoke(event)
    assert (status, answer["accepted"]) == (200, 1)
    assert WebhookDelivery.from_json(world.archive.objects[ARCHIVE_KEY]).public_url == f"{PUBLIC_URL}?{query}"
    # and the same signature without the query in the URL is refused
    event["rawQueryString"] = ""
    assert invoke(event)[0] == 401


def test_behind_a_custom_domain_the_configured_url_is_the_one_checked(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledgerlink.config import EnvVar, reset_settings_cache

    # given HubSpot registered with https://hooks.example.com/ledgerlink/v1/webhooks/hubspot (an API
    # mapping with a base path), and calling it with a query
    registered = "https://hooks.example.com/ledgerlink/v1/webhooks/hubspot"
    body = body_of("deal_stage_changed.json")
    event = apigw_event(body, signed_url=f"{registered}?source=hubspot", raw_query="source=hubspot")
    event["headers"]["host"] = "hooks.example.com"

    # when the function does not know the registered URL, it cannot tell the base path
    assert invoke(event)[0] == 401

    # when it is configured with it, the request verifies
    monkeypatch.setenv(EnvVar.HUBSPOT_WEBHOOK_URL, registered)
    reset_settings_cache()
    status, answer = invoke(event)
    assert (status, answer["accepted"]) == (200, 1)


def test_a_base64_encoded_delivery_is_accepted(world: World) -> None:
    status, answer = invoke(apigw_event(body_of("deal_events.json"), base64_encoded=True))
    assert (status, answer["accepted"]) == (200, 9)


@pytest.mark.parametrize(
    ("options", "reason", "in_message"),
    [
        ({"secret": None}, "missing_signature", "x-hubspot-signature-v3 header is missing"),
        ({"timestamp": None}, "missing_signature", "x-hubspot-request-timestamp header is missing"),
        ({"secret": OTHER_SECRET}, "invalid_signature", "does not match this request"),
        ({"signature": "bm90IHRoZSBzaWduYXR1cmU="}, "invalid_signature", "does not match"),
        ({"timestamp": str(SENT_MS - 301_000)}, "stale_timestamp", "s old"),
        ({"timestamp": str(SENT_MS + 400_000)}, "stale_timestamp", "in the future"),
        ({"timestamp": "yesterday"}, "invalid_timestamp", "not a number of milliseconds"),
    ],
    ids=[
        "no signature",
        "no timestamp",
        "wrong secret",
        "wrong signature",
        "stale",
        "future",
        "not a number",
    ],
)
def test_an_unverified_delivery_is_answered_401_and_leaves_no_trace(
    world: World, options: dict[str, Any], reason: str, in_message: str
) -> None:
    status, answer = invoke(apigw_event(body_of("deal_stage_changed.json"), **options))
    assert (status, answer["error"]) == (401, reason)
    assert in_message in answer["message"]
    assert CLIENT_SECRETS["sample"] not in answer["message"]
    assert world.archive.objects == {}
    assert world.publisher.entries == []


def test_a_delivery_from_a_portal_no_connection_serves_is_answered_401_naming_it(world: World) -> None:
    status, answer = invoke(apigw_event(body_of("unknown_portal.json")))
    assert (status, answer["error"]) == (401, "unknown_portal")
    assert "HubSpot portal 99887766" in answer["message"]
    assert world.secrets.reads == 0
    assert world.archive.objects == {}


@pytest.mark.parametrize("case", malformed_cases(), ids=lambda case: case["name"])
def test_a_malformed_delivery_is_answered_400_naming_the_field(world: World, case: dict[str, str]) -> None:
    status, answer = invoke(apigw_event(case["body"].encode("utf-8")))
    assert (status, answer["error"]) == (400, "malformed")
    assert case["expect_in_message"] in answer["message"]
    assert world.publisher.entries == []


def test_an_oversize_delivery_is_answered_413_before_anything_else(world: World) -> None:
    # given a body one byte over the 1 MiB default, not even signed
    oversize = b"[" + b" " * (1024 * 1024 - 1) + b"]"
    status, answer = invoke(apigw_event(oversize, secret=None, timestamp=None))
    assert (status, answer) == (
        413,
        {"error": "payload_too_large", "message": "the body exceeds 1048576 bytes"},
    )
    # no secret was read, nothing stored
    assert world.secrets.reads == 0
    assert world.archive.objects == {}


def test_the_size_limit_comes_from_the_configuration(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledgerlink.config import EnvVar, reset_settings_cache

    monkeypatch.setenv(EnvVar.MAX_WEBHOOK_BYTES, "100")
    reset_settings_cache()
    assert invoke(apigw_event(body_of("deal_stage_changed.json")))[0] == 413


def test_the_event_cap_comes_from_the_configuration(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from ledgerlink.config import EnvVar, reset_settings_cache

    monkeypatch.setenv(EnvVar.MAX_WEBHOOK_EVENTS, "8")
    reset_settings_cache()
    status, answer = invoke(apigw_event(body_of("deal_events.json")))
    assert (status, answer["message"]) == (
        400,
        "$: 9 events, more than the 8 LedgerLink accepts in one delivery",
    )


def test_when_the_signing_secret_lacks_the_client_secret_the_answer_is_503(world: World) -> None:
    # given the connection's HubSpot secret holds its access token only
    world.secrets.put_json(secret_name("sample"), {"access_token": "pat-sample"})
    status, answer = invoke(apigw_event(body_of("deal_stage_changed.json")))
    assert (status, answer["error"]) == (503, "signing_secret_unavailable")
    assert "client_secret" in answer["message"]
    assert world.archive.objects == {}


def test_when_the_archive_is_down_the_answer_is_503_and_nothing_is_published(world: World) -> None:
    world.archive.fail_with = "S3 unreachable"
    status, answer = invoke(apigw_event(body_of("deal_events.json")))
    assert (status, answer["error"]) == (503, "archive_failed")
    assert world.publisher.entries == []


def test_an_unexpected_error_is_a_generic_500(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    from hubspot_ingest import handler

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a bug with a client_secret=abc in its message")

    monkeypatch.setattr(handler, "ingest_hubspot_delivery", broken)
    status, answer = invoke(apigw_event(body_of("deal_stage_changed.json")))
    assert (status, answer) == (500, {"error": "internal_error", "message": "internal error"})


def test_rejections_are_counted_by_reason_and_status(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(apigw_event(body_of("deal_stage_changed.json"), secret=OTHER_SECRET))
    lines = metric_lines(capsys)
    rejected, by_service = sorted(
        (m for m in lines if "DeliveriesRejected" in m), key=lambda m: "reason" not in m
    )
    assert (rejected["reason"], rejected["status"], rejected["service"]) == (
        "invalid_signature",
        "401",
        "hubspot-ingest",
    )
    assert rejected["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LedgerLink"
    # and once on the service alone, for the rejected-deliveries alarm
    assert by_service["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert by_service["service"] == "hubspot-ingest"
    assert [m["DeliveriesReceived"] for m in lines if "DeliveriesReceived" in m] == [[1.0]]


def test_accepted_deliveries_count_what_was_published_and_skipped(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    invoke(apigw_event(body_of("unsupported_types.json")))
    lines = metric_lines(capsys)
    (published,) = [m for m in lines if "EventsPublished" in m]
    assert (published["EventsPublished"], published["UnsupportedEventsSkipped"]) == ([1.0], [4.0])
    assert published["service"] == "hubspot-ingest"
    assert published["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
