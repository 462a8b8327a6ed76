"""The HubSpot ingest Lambda on moto with its real ports: the connection's secret in Secrets Manager,
the API Gateway v2 event in, the S3 object and the bus event out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink.config import reset_settings_cache
from ledgerlink.events import DetailType, Envelope, EventSource
from ledgerlink.ingest.archive import WebhookDelivery
from tests.unit.ingest.hubspot_requests import (
    CLIENT_SECRETS,
    OTHER_SECRET,
    PUBLIC_URL,
    apigw_event,
    body_of,
    secret_name,
)
from tests.unit.ingest.signed_requests import INGEST_ENVIRONMENT

BUS = INGEST_ENVIRONMENT["LEDGERLINK_EVENT_BUS_NAME"]
BUCKET = INGEST_ENVIRONMENT["LEDGERLINK_RAW_BUCKET_NAME"]
EXPECTED_KEY = "hubspot/raw/2026/11/25/14/Hx7pRwYcIAMEbQw=.json"


@dataclass
class LambdaContext:
    function_name: str = "ledgerlink-test-hubspot-ingest"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-test-hubspot-ingest"
    )
    aws_request_id: str = "7c1e4a2b-3d5f-4e6a-9b8c-0d1e2f3a4b5c"


class Aws:
    """The resources the stack would create, on moto, plus an SQS queue subscribed to the bus."""

    def __init__(self) -> None:
        self.s3 = boto3.client("s3")
        self.sqs = boto3.client("sqs")
        self.events = boto3.client("events")
        self.secrets = boto3.client("secretsmanager")
        self.s3.create_bucket(Bucket=BUCKET)
        self.events.create_event_bus(Name=BUS)
        self.queue_url = self.sqs.create_queue(QueueName="hubspot-deal-changed-probe")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        pattern = {"source": [EventSource.HUBSPOT_INGEST], "detail-type": [DetailType.HUBSPOT_DEAL_CHANGED]}
        self.events.put_rule(Name="probe", EventBusName=BUS, EventPattern=json.dumps(pattern))
        self.events.put_targets(Rule="probe", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}])
        # each connection's HubSpot secret: its token and its app's client secret
        for name, client_secret in CLIENT_SECRETS.items():
            self.secrets.create_secret(
                Name=secret_name(name),
                SecretString=json.dumps({"access_token": f"pat-{name}", "client_secret": client_secret}),
            )

    def bus_events(self) -> list[dict[str, Any]]:
        received: list[dict[str, Any]] = []
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return received
            for message in batch:
                received.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def archived_keys(self) -> list[str]:
        return [item["Key"] for item in self.s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    from hubspot_ingest import handler

    for name, value in INGEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(handler, "backoff_sleep", lambda seconds: None)
    reset_settings_cache()
    handler.reset_for_tests()
    with mock_aws():
        yield Aws()
    handler.reset_for_tests()
    reset_settings_cache()


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    from hubspot_ingest.handler import lambda_handler

    response = lambda_handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_signed_delivery_lands_in_s3_and_its_deal_changes_on_the_bus(aws: Aws) -> None:
    # given HubSpot's delivery of nine deal events from the "sample" connection's portal
    body = body_of("deal_events.json")

    # when API Gateway invokes the Lambda with it
    status, answer = invoke(apigw_event(body))

    # then HubSpot gets a 200 with the count
    assert (status, answer) == (200, {"accepted": 9, "skipped": 0, "delivery_id": "Hx7pRwYcIAMEbQw="})
    # and the raw delivery is in the bucket under the hour it arrived, verified against the URL
    assert aws.archived_keys() == [EXPECTED_KEY]
    archived = WebhookDelivery.from_json(aws.s3.get_object(Bucket=BUCKET, Key=EXPECTED_KEY)["Body"].read())
    assert (archived.body, archived.verified, archived.public_url) == (body, "v3", PUBLIC_URL)
    # and nine hubspot.deal.changed events reached a rule on the bus, each a valid envelope
    envelopes = [Envelope.from_eventbridge(event) for event in aws.bus_events()]
    assert sorted(e.payload["change"] for e in envelopes) == sorted(
        [
            "created",
            "stage_changed",
            "stage_changed",
            "property_changed",
            "deleted",
            "merged",
            "restored",
            "associations_changed",
            "associations_changed",
        ]
    )
    assert {(e.payload["connection"], e.payload["raw_object_key"]) for e in envelopes} == {
        ("sample", EXPECTED_KEY)
    }


def test_a_delivery_signed_with_another_secret_leaves_nothing_in_s3_or_on_the_bus(aws: Aws) -> None:
    status, answer = invoke(apigw_event(body_of("deal_events.json"), secret=OTHER_SECRET))
    assert (status, answer["error"]) == (401, "invalid_signature")
    assert aws.archived_keys() == []
    assert aws.bus_events() == []


def test_a_secret_without_the_client_secret_is_a_503_until_it_is_put_there(aws: Aws) -> None:
    # given the connection's secret holds only its token
    name = secret_name("sample")
    aws.secrets.put_secret_value(SecretId=name, SecretString=json.dumps({"access_token": "pat-sample"}))
    status, answer = invoke(apigw_event(body_of("deal_stage_changed.json")))
    assert (status, answer["error"]) == (503, "signing_secret_unavailable")
    assert CLIENT_SECRETS["sample"] not in answer["message"]
