"""The QBO ingest Lambda end to end on moto: API Gateway v2 event in, S3 object and bus events out."""

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
from tests.unit.ingest.signed_requests import (
    INGEST_ENVIRONMENT,
    OTHER_TOKEN,
    VERIFIER_TOKEN,
    apigw_event,
    body_of,
)

BUS = INGEST_ENVIRONMENT["LEDGERLINK_EVENT_BUS_NAME"]
BUCKET = INGEST_ENVIRONMENT["LEDGERLINK_RAW_BUCKET_NAME"]
SECRET = INGEST_ENVIRONMENT["LEDGERLINK_QBO_WEBHOOK_SECRET_NAME"]
EXPECTED_KEY = "qbo/raw/2026/11/25/14/Bq9kTgYcIAMEbXw=.json"


@dataclass
class LambdaContext:
    function_name: str = "ledgerlink-test-qbo-ingest"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-test-qbo-ingest"
    aws_request_id: str = "5b9e3c1a-0d7f-4e2b-8a64-1f3c5d7e9b20"


class Aws:
    """The resources the stack would create, on moto, plus an SQS queue subscribed to the bus."""

    def __init__(self) -> None:
        self.s3 = boto3.client("s3")
        self.sqs = boto3.client("sqs")
        self.events = boto3.client("events")
        self.s3.create_bucket(Bucket=BUCKET)
        self.events.create_event_bus(Name=BUS)
        self.queue_url = self.sqs.create_queue(QueueName="qbo-entity-changed-probe")["QueueUrl"]
        queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        pattern = {"source": [EventSource.QBO_INGEST], "detail-type": [DetailType.QBO_ENTITY_CHANGED]}
        self.events.put_rule(Name="probe", EventBusName=BUS, EventPattern=json.dumps(pattern))
        self.events.put_targets(Rule="probe", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}])
        boto3.client("secretsmanager").create_secret(Name=SECRET, SecretString=VERIFIER_TOKEN)

    def bus_events(self) -> list[dict[str, Any]]:
        """Every event the rule delivered to the queue (EventBridge's JSON, detail as an object)."""
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

    def archived(self, key: str) -> WebhookDelivery:
        return WebhookDelivery.from_json(self.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


class RecordedSleeps:
    def __init__(self) -> None:
        self.asked: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.asked.append(seconds)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> RecordedSleeps:
    from qbo_ingest import handler

    recorded = RecordedSleeps()
    monkeypatch.setattr(handler, "backoff_sleep", recorded)
    return recorded


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, sleeps: RecordedSleeps) -> Iterator[Aws]:
    from qbo_ingest import handler

    for name, value in INGEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    handler.reset_for_tests()
    with mock_aws():
        yield Aws()
    handler.reset_for_tests()
    reset_settings_cache()


def invoke(event: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    from qbo_ingest.handler import lambda_handler

    response = lambda_handler(event, LambdaContext())
    return response["statusCode"], json.loads(response["body"])


def test_a_signed_delivery_lands_in_s3_and_its_changes_land_on_the_bus(aws: Aws) -> None:
    # given Intuit's CloudEvents delivery of seven changes in two realms
    body = body_of("cloudevents_multi_realm.json")

    # when API Gateway invokes the Lambda with it
    status, answer = invoke(apigw_event(body))

    # then Intuit gets a 200 with the count
    assert (status, answer) == (200, {"accepted": 7, "skipped": 0, "delivery_id": "Bq9kTgYcIAMEbXw="})
    # and the raw delivery is in the bucket under the hour it arrived, byte for byte, with its signature
    assert aws.archived_keys() == [EXPECTED_KEY]
    archived = aws.archived(EXPECTED_KEY)
    assert archived.body == body
    assert archived.headers["intuit-signature"] == apigw_event(body)["headers"]["intuit-signature"]
    assert archived.headers["intuit-t-id"] == "1-6745e0bc-4b7e2c1d3f5a6b7c8d9e0f1a"
    # and seven qbo.entity.changed events reached a rule on the bus, each a valid envelope
    delivered = aws.bus_events()
    envelopes = [Envelope.from_eventbridge(event) for event in delivered]
    assert sorted((e.payload["entity"], e.payload["entity_id"]) for e in envelopes) == [
        ("BillPayment", "311"),
        ("Customer", "58"),
        ("Employee", "000000011"),
        ("Estimate", "2044"),
        ("Invoice", "1038"),
        ("Payment", "902"),
        ("TimeActivity", "77"),
    ]
    assert {e.payload["raw_object_key"] for e in envelopes} == {EXPECTED_KEY}
    assert all(event["source"] == EventSource.QBO_INGEST for event in delivered)


def test_a_legacy_delivery_sent_base64_encoded_lands_too(aws: Aws) -> None:
    body = body_of("legacy_multi_realm.json")
    status, answer = invoke(apigw_event(body, base64_encoded=True))
    assert (status, answer["accepted"]) == (200, 6)
    assert aws.archived(EXPECTED_KEY).body == body
    assert len(aws.bus_events()) == 6


def test_events_of_unknown_types_are_archived_in_s3_but_never_reach_the_bus(aws: Aws) -> None:
    # given a delivery of 2 known events and 3 of types LedgerLink does not know yet
    body = body_of("cloudevents_unsupported_types.json")

    # when API Gateway invokes the Lambda with it
    status, answer = invoke(apigw_event(body))

    # then Intuit gets a 200 with both counts, so it neither retries nor holds back later events
    assert (status, answer) == (200, {"accepted": 2, "skipped": 3, "delivery_id": "Bq9kTgYcIAMEbXw="})
    # and the raw delivery, skipped events included, is in the bucket byte for byte
    assert aws.archived_keys() == [EXPECTED_KEY]
    assert aws.archived(EXPECTED_KEY).body == body
    # and only the two known changes reached the rule on the bus
    delivered = [Envelope.from_eventbridge(event) for event in aws.bus_events()]
    assert sorted((e.payload["entity"], e.payload["operation"]) for e in delivered) == [
        ("Invoice", "Create"),
        ("Payment", "Create"),
    ]


def test_an_event_whose_id_qbo_could_not_have_issued_never_reaches_the_bus_and_costs_the_others_nothing(
    aws: Aws,
) -> None:
    # given a signed delivery of 21 invoice events, one with intuitentityid "INV-0001/A" (the deal
    # sync's QBO query cannot carry it, and used to fail the whole batch of 21 on it)
    body = body_of("cloudevents_invalid_entity_id.json")

    # when API Gateway invokes the Lambda with it
    status, answer = invoke(apigw_event(body))

    # then Intuit gets a 200, the raw delivery is in the bucket, and the 20 others reach the rule
    assert (status, answer) == (200, {"accepted": 20, "skipped": 1, "delivery_id": "Bq9kTgYcIAMEbXw="})
    assert aws.archived(EXPECTED_KEY).body == body
    delivered = [Envelope.from_eventbridge(event) for event in aws.bus_events()]
    assert sorted(int(e.payload["entity_id"]) for e in delivered) == [
        n for n in range(1201, 1222) if n != 1214
    ]


def test_a_badly_signed_delivery_is_401_and_leaves_nothing_behind(aws: Aws) -> None:
    status, answer = invoke(apigw_event(body_of("cloudevents_multi_realm.json"), token=OTHER_TOKEN))
    assert (status, answer["error"]) == (401, "invalid_signature")
    assert aws.archived_keys() == []
    assert aws.bus_events() == []


def test_a_malformed_signed_delivery_is_400_kept_for_inspection_and_not_published(aws: Aws) -> None:
    body = (
        b'[{"specversion": "1.0", "id": "x", "source": "intuit.x", "type": "qbo.invoice.created.v1",'
        b' "intuitentityid": "145", "intuitaccountid": "9341455130122367"}]'
    )
    status, answer = invoke(apigw_event(body))
    assert status == 400
    assert "'time' is a required property" in answer["message"]
    assert aws.archived(EXPECTED_KEY).body == body
    assert aws.bus_events() == []


class RefusingEventBridge:
    """The real (moto) EventBridge client, except that PutEvents refuses the entries ``refuse`` picks.

    Refused entries are not forwarded, and the answer reports them as EventBridge does: a
    ``FailedEntryCount`` and an ``ErrorCode`` in their position of ``Entries``.
    """

    def __init__(self, real: Any, refuse: Any) -> None:
        self._real = real
        self._refuse = refuse
        self.calls: list[list[str]] = []

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        call = len(self.calls)
        self.calls.append([json.loads(entry["Detail"])["event_id"] for entry in Entries])
        refused = {i for i, entry in enumerate(Entries) if self._refuse(call, json.loads(entry["Detail"]))}
        forwarded = [entry for i, entry in enumerate(Entries) if i not in refused]
        forwarded_results = iter(self._real.put_events(Entries=forwarded)["Entries"] if forwarded else [])
        results = [
            {"ErrorCode": "ThrottlingException", "ErrorMessage": "Rate exceeded"}
            if i in refused
            else next(forwarded_results)
            for i in range(len(Entries))
        ]
        return {"FailedEntryCount": len(refused), "Entries": results}


def test_entries_refused_by_put_events_are_retried_until_they_land(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, sleeps: RecordedSleeps
) -> None:
    from qbo_ingest import handler

    # given PutEvents refuses the Customer and the Payment events on its first call
    flaky = RefusingEventBridge(
        aws.events, lambda call, detail: call == 0 and detail["payload"]["entity"] in {"Customer", "Payment"}
    )
    monkeypatch.setattr(handler, "_events", lambda: flaky)

    # when the delivery comes in
    status, answer = invoke(apigw_event(body_of("cloudevents_multi_realm.json")))

    # then the second call carried exactly the two refused entries, after one backoff
    assert (status, answer["accepted"]) == (200, 7)
    assert len(flaky.calls) == 2
    assert len(flaky.calls[1]) == 2
    assert len(sleeps.asked) == 1
    # and every change is on the bus exactly once
    delivered = [Envelope.from_eventbridge(event) for event in aws.bus_events()]
    assert sorted(e.payload["entity"] for e in delivered) == sorted(
        ["Invoice", "Customer", "Payment", "TimeActivity", "BillPayment", "Estimate", "Employee"]
    )


def test_entries_that_keep_being_refused_answer_503_with_the_delivery_archived(
    aws: Aws, monkeypatch: pytest.MonkeyPatch
) -> None:
    from qbo_ingest import handler

    # given PutEvents refuses the Payment event every time
    stubborn = RefusingEventBridge(aws.events, lambda call, detail: detail["payload"]["entity"] == "Payment")
    monkeypatch.setattr(handler, "_events", lambda: stubborn)

    # when the delivery comes in
    status, answer = invoke(apigw_event(body_of("cloudevents_multi_realm.json")))

    # then Intuit is told to retry, the raw delivery is stored, and the Payment never reached the bus
    assert (status, answer["error"]) == (503, "publish_failed")
    assert answer["message"] == "1 of 7 events were not published (ThrottlingException x1)"
    assert aws.archived_keys() == [EXPECTED_KEY]
    delivered = [Envelope.from_eventbridge(event) for event in aws.bus_events()]
    assert "Payment" not in {e.payload["entity"] for e in delivered}
    assert len(delivered) == 6
    # and Intuit's retry, once the bus accepts again (a new container), publishes the Payment too,
    # with the same event ids as before for the six that had gone out
    monkeypatch.setattr(handler, "_events", lambda: aws.events)
    handler.reset_for_tests()
    retry = apigw_event(body_of("cloudevents_multi_realm.json"), request_id="Bq9kTgYcIAMEbXx=")
    assert invoke(retry)[0] == 200
    redelivered = {e.payload["entity"]: e.event_id for e in map(Envelope.from_eventbridge, aws.bus_events())}
    assert set(redelivered) == {
        "Invoice",
        "Customer",
        "Payment",
        "TimeActivity",
        "BillPayment",
        "Estimate",
        "Employee",
    }
    assert {e.payload["entity"]: e.event_id for e in delivered}.items() <= redelivered.items()


def test_a_missing_bucket_answers_503_and_publishes_nothing(aws: Aws) -> None:
    aws.s3.delete_bucket(Bucket=BUCKET)
    status, answer = invoke(apigw_event(body_of("cloudevents_invoice_created.json")))
    assert (status, answer["error"]) == (503, "archive_failed")
    assert "NoSuchBucket" in answer["message"]
    assert aws.bus_events() == []


def test_clients_are_created_once_and_reused_across_invocations(aws: Aws) -> None:
    from qbo_ingest import handler

    invoke(apigw_event(body_of("cloudevents_invoice_created.json")))
    first = (handler._s3(), handler._events(), handler._ports())
    invoke(apigw_event(body_of("cloudevents_invoice_created.json"), request_id="second"))
    assert (handler._s3(), handler._events(), handler._ports()) == first


def test_a_verifier_token_stored_as_json_is_used(aws: Aws) -> None:
    boto3.client("secretsmanager").put_secret_value(
        SecretId=SECRET, SecretString=json.dumps({"verifier_token": VERIFIER_TOKEN})
    )
    assert invoke(apigw_event(body_of("cloudevents_invoice_created.json")))[0] == 200


def test_a_missing_verifier_secret_answers_503_and_stores_nothing(aws: Aws) -> None:
    boto3.client("secretsmanager").delete_secret(SecretId=SECRET, ForceDeleteWithoutRecovery=True)
    status, answer = invoke(apigw_event(body_of("cloudevents_invoice_created.json")))
    assert (status, answer["error"]) == (503, "verifier_unavailable")
    assert SECRET in answer["message"]
    assert aws.archived_keys() == []
