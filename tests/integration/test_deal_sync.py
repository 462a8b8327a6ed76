"""The deal sync end to end on moto and the sandboxes: replays, vendor faults, the SQS handler and the
dead-letter queue, a revoked QBO connection. Request bodies are checked against the vendors' specs by
the ``world`` fixture."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
import requests
from moto import mock_aws

from infra.topology import build_topology, environment_from_cdk_json
from ledgerlink.clock import ManualClock
from ledgerlink.config import EnvVar, reset_settings_cache
from ledgerlink.consumer.outcome import OutcomeStatus
from ledgerlink.deal_sync.factory import build_deal_sync
from ledgerlink.deal_sync.inbox import parse_record
from ledgerlink.hubspot.setup import setup_portal
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.integration import test_deal_sync_support as support
from tests.integration.test_deal_sync_support import TABLES, DealSyncWorld, environment

world = support.world  # the fixture

ACME, CAFE, SUMMIT, EUR = "1", "2", "4", "5"


# ---- a scenario of QBO changes, and HubSpot's state in comparable form


def run_scenario(world: DealSyncWorld) -> list[dict[str, Any]]:
    """Real QBO changes, each followed by the SQS record its webhook would produce."""
    records = [world.record("Invoice", invoice_id, "Create") for invoice_id in (ACME, CAFE, SUMMIT, EUR)]
    created = world.qbo_write(
        "Invoice",
        "create",
        {
            "CustomerRef": {"value": "6"},
            "Line": [
                {
                    "Amount": "240.00",
                    "DetailType": "SalesItemLineDetail",
                    "SalesItemLineDetail": {"ItemRef": {"value": "4"}, "Qty": 2, "UnitPrice": "120.00"},
                }
            ],
        },
    )
    records.append(world.record("Invoice", created["Id"], "Create"))
    acme = world.qbo_entity("Invoice", ACME)
    assert acme is not None
    payment = world.qbo_write(
        "Payment",
        "create",
        {
            "CustomerRef": {"value": "1"},
            "TotalAmt": "500.00",
            "Line": [{"Amount": "500.00", "LinkedTxn": [{"TxnId": ACME, "TxnType": "Invoice"}]}],
        },
    )
    records.append(world.record("Payment", payment["Id"], "Create"))
    summit = world.qbo_entity("Invoice", SUMMIT)
    assert summit is not None
    world.qbo_write("Invoice", "void", {"Id": SUMMIT, "SyncToken": summit["SyncToken"]})
    records.append(world.record("Invoice", SUMMIT, "Void"))
    customer = world.qbo_entity("Customer", "6")
    assert customer is not None
    world.qbo_write(
        "Customer",
        "update",
        {
            "Id": "6",
            "SyncToken": customer["SyncToken"],
            "sparse": True,
            "PrimaryPhone": {"FreeFormNumber": "(650) 555-0100"},
        },
    )
    records.append(world.record("Customer", "6", "Update"))
    current = world.qbo_entity("Invoice", created["Id"])
    assert current is not None
    world.qbo_write("Invoice", "delete", {"Id": created["Id"], "SyncToken": current["SyncToken"]})
    records.append(world.record("Invoice", created["Id"], "Delete", last_updated=_now()))
    return records


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime())


VOLATILE = {"hs_object_id", "createdate", "hs_createdate", "hs_lastmodifieddate", "lastmodifieddate"}


def comparable_state(world: DealSyncWorld) -> dict[str, Any]:
    """HubSpot's records keyed by their QBO keys (HubSpot ids and timestamps differ between runs)."""
    state = world.hubspot_state()
    keys: dict[tuple[str, str], str] = {}
    records: dict[str, Any] = {}
    for object_type, key_property in (
        ("deals", "qbo_invoice_id"),
        ("line_items", "qbo_line_id"),
        ("companies", "qbo_customer_id"),
        ("contacts", "qbo_customer_id"),
    ):
        for record in state["objects"][object_type]:
            props = record["properties"]
            if not props.get(key_property):
                continue  # the demo portal's own records, untouched
            name = f"{object_type}:{props[key_property]}" + (
                f":{props.get('email')}" if object_type == "contacts" else ""
            )
            keys[(object_type, record["id"])] = name
            records[name] = {
                "archived": record["archived"],
                "properties": {k: v for k, v in props.items() if k not in VOLATILE},
            }
    associations = sorted(
        (keys[(a["fromObjectType"], str(a["fromObjectId"]))], keys[(a["toObjectType"], str(a["toObjectId"]))])
        for a in state["associations"]
        if (a["fromObjectType"], str(a["fromObjectId"])) in keys
        and (a["toObjectType"], str(a["toObjectId"])) in keys
    )
    return {"records": records, "associations": associations}


def fresh_run(world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch) -> DealSyncWorld:
    """HubSpot and LedgerLink's tables back to nothing, QBO as it is: a second deployment's first day."""
    world.parts.close()
    requests.post(f"{world.hubspot.url}/_admin/reset", timeout=10)
    dynamodb = world.aws["dynamodb"]
    for name in TABLES.values():
        dynamodb.delete_table(TableName=name)
    for name, keys in (("idempotency", "id"), ("links", None), ("vendor-state", None)):
        schema = [{"AttributeName": keys or "pk", "KeyType": "HASH"}]
        attributes = [{"AttributeName": keys or "pk", "AttributeType": "S"}]
        if keys is None:
            schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
            attributes.append({"AttributeName": "sk", "AttributeType": "S"})
        dynamodb.create_table(
            TableName=TABLES[name],
            KeySchema=schema,
            AttributeDefinitions=attributes,
            BillingMode="PAY_PER_REQUEST",
        )
    secrets = support.PowertoolsSecretStore(max_age_seconds=300, client=world.aws["secretsmanager"])
    parts = build_deal_sync(
        world.settings,
        secrets=secrets,
        config=support.load_config(support.CONFIG_FILE),
        dynamodb=dynamodb,
        events=world.aws["events"],
        publisher_sleep=lambda s: None,
    )
    setup_portal(parts.hubspot)
    world.parts = parts
    return world


def test_every_event_delivered_twice_and_shuffled_gives_the_state_of_one_ordered_delivery(
    world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a day of QBO changes and the SQS records their webhooks produced
    records = run_scenario(world)

    # when they are delivered once, in order, in one batch
    once = world.sync([parse_record(record) for record in records])
    assert all(outcome.ok for outcome in once.values()), once
    expected = comparable_state(world)

    # and, on a fresh HubSpot and fresh tables, every record twice, shuffled, in batches of three,
    # the second copies as SQS redeliveries of the same messages
    fresh_run(world, monkeypatch)
    doubled = [*records, *({**r, "attributes": {"ApproximateReceiveCount": "2"}} for r in records)]
    random.Random(20251109).shuffle(doubled)
    for start in range(0, len(doubled), 3):
        outcomes = world.sync([parse_record(record) for record in doubled[start : start + 3]])
        assert all(outcome.ok for outcome in outcomes.values()), outcomes

    # then HubSpot ends in the same state
    assert comparable_state(world) == expected
    assert any(r["properties"].get("qbo_status") == "voided" for r in expected["records"].values())
    statuses = {name: r["properties"].get("qbo_status") for name, r in expected["records"].items()}
    assert statuses[f"deals:{DEMO_REALM_ID}:{ACME}"] == "partially_paid"  # the payment was applied
    # the invoice created and deleted before any delivery never gets a deal, in either run
    assert len([name for name in statuses if name.startswith("deals:")]) == 4


def test_429s_and_5xx_from_both_vendors_are_retried_and_end_in_the_right_state(
    qbo_sandbox: SandboxServer, hubspot_sandbox: SandboxServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with mock_aws():
        # given a clock that sleeps instantly (waits are asked for, not spent) and faulty vendors
        clock = ManualClock(start=time.time())
        faulty = support.build_world(qbo_sandbox, hubspot_sandbox, monkeypatch, clock=clock)
        try:
            for fault in (
                {"kind": "429", "path_prefix": f"/v3/company/{DEMO_REALM_ID}/query", "count": 1},
                {"kind": "503", "path_prefix": f"/v3/company/{DEMO_REALM_ID}/query", "count": 1},
                {"kind": "500", "path_prefix": f"/v3/company/{DEMO_REALM_ID}/preferences", "count": 1},
            ):
                faulty.qbo_admin("POST", "faults", fault)
            for fault in (
                {"kind": "429", "path_prefix": "/crm/v3/objects/deals/batch/upsert", "count": 2},
                # A create is never resent blindly: the sync looks for what landed, then creates the rest.
                {"kind": "503", "path_prefix": "/crm/v3/objects/line_items/batch/create", "count": 1},
                {"kind": "500", "path_prefix": "/crm/v3/objects/companies/search", "count": 1},
                {"kind": "429", "path_prefix": "/crm/v4/associations", "count": 1},
            ):
                faulty.hubspot_admin("POST", "faults", fault)

            # when a batch is synced
            events = [faulty.change("Invoice", invoice_id, "Create") for invoice_id in (ACME, CAFE, SUMMIT)]
            outcomes = faulty.sync(events)

            # then every fault was met and retried, and HubSpot shows the right deals
            assert all(outcome.status is OutcomeStatus.SYNCED for outcome in outcomes.values()), outcomes
            qbo_statuses = [r["status"] for r in faulty.requests_to(faulty.qbo)]
            hubspot_statuses = [r["status"] for r in faulty.requests_to(faulty.hubspot)]
            assert sorted(s for s in qbo_statuses if s >= 400) == [429, 500, 503]
            assert sorted(s for s in hubspot_statuses if s >= 400) == [429, 429, 429, 500, 503]
            deals = faulty.deals()
            for invoice_id in (ACME, CAFE, SUMMIT):
                invoice = faulty.qbo_entity("Invoice", invoice_id)
                assert invoice is not None
                deal = deals[f"{DEMO_REALM_ID}:{invoice_id}"]
                assert deal["properties"]["amount"] == f"{float(invoice['TotalAmt']):.2f}"
                assert len(faulty.associated("deals", deal["id"], "line_items")) >= 1
            # the waits were honoured (QBO's Retry-After), on the injected clock
            assert clock.sleeps and max(clock.sleeps) >= 1.0
            support.assert_requests_conform(faulty)
        finally:
            faulty.parts.close()


def test_a_revoked_qbo_connection_fails_the_batch_for_good_and_alarms_once(world: DealSyncWorld) -> None:
    # given a connection that worked, then the user disconnected the app in QBO
    world.sync([world.change("Invoice", ACME, "Create")])
    world.qbo_admin("POST", "oauth/revoke", {})

    # when the next batch arrives
    events = [
        world.change("Invoice", invoice_id, "Update", last_updated=_now()) for invoice_id in (CAFE, SUMMIT)
    ]
    outcomes = world.sync(events)

    # then every record fails, not retryable, saying what to do; one alarm was raised
    for outcome in outcomes.values():
        assert outcome.status is OutcomeStatus.FAILED and not outcome.retryable
        assert "re-authorise the app" in (outcome.reason or "")
    assert [name for name, _ in world.metrics.alarms] == ["QboConnectionRevoked"]
    token_calls = [r for r in world.requests_to(world.qbo) if r["path"].startswith("/oauth2/")]

    # and a later batch fails fast: no new call to Intuit's token endpoint, no new alarm
    later = world.sync([world.change("Invoice", EUR, "Update", last_updated=_now())])
    assert not next(iter(later.values())).retryable
    assert [r for r in world.requests_to(world.qbo) if r["path"].startswith("/oauth2/")] == token_calls
    assert len(world.metrics.alarms) == 1


# ---- the Lambda handler and the dead-letter queue


@dataclass
class FakeContext:
    function_name: str = "ledgerlink-test-hubspot-deal-sync"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = (
        "arn:aws:lambda:us-east-1:123456789012:function:ledgerlink-test-hubspot-deal-sync"
    )
    aws_request_id: str = "5b0f7e2a-0000-4000-8000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 100_000


@pytest.fixture
def handler(world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The Lambda handler module, configured by environment like the deployed function."""
    for name, value in environment(world.qbo.url, world.hubspot.url).items():
        monkeypatch.setenv(str(name), value)
    reset_settings_cache()
    from hubspot_deal_sync import handler as module

    module.reset_for_tests()
    yield module
    module.reset_for_tests()


def test_the_handler_fails_exactly_the_records_that_failed(world: DealSyncWorld, handler: Any) -> None:
    # given a batch with a malformed message, an invoice in a currency the portal lacks and a good one
    world.hubspot_admin("PATCH", "config", {"exchange_rates": {}})
    good = world.record("Invoice", ACME, "Create")
    unsupported = world.record("Invoice", EUR, "Create")
    malformed = {**world.record("Invoice", CAFE, "Create"), "body": '{"detail-type": "something else"}'}

    # when the Lambda runs
    response = handler.lambda_handler({"Records": [malformed, unsupported, good]}, FakeContext())

    # then exactly the two bad records are reported for retry / dead-lettering, and the good one is done
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    assert failed == {malformed["messageId"], unsupported["messageId"]}
    assert f"{DEMO_REALM_ID}:{ACME}" in world.deals()


@dataclass
class DealSyncQueues:
    """The deal-sync queue and its dead-letter queue as the stack declares them, in moto."""

    sqs: Any
    url: str
    arn: str
    dlq_url: str
    name: str
    dlq_name: str
    max_receive_count: int

    def send(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.url, MessageBody=body)

    def poll_until_empty(self, handler: Any) -> int:
        """Lambda's event source mapping: receive, invoke, delete what the handler did not report.

        The function gives each failed message a delay of its own (ChangeMessageVisibility); this loop
        checks that they are hidden, then lets their delay pass at once (visibility 0) so the test needs
        no waiting. Returns the number of receives."""
        receives = 0
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
            ).get("Messages", [])
            if not messages:
                return receives
            receives += 1
            assert receives <= 200, "the queue never drained"
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m.get("Attributes", {}),
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": self.arn,
                    }
                    for m in messages
                ]
            }
            failed = {
                item["itemIdentifier"]
                for item in handler.lambda_handler(event, FakeContext())["batchItemFailures"]
            }
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"])
            visible_again = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            assert not visible_again, (
                "a failed message came back before its delay (the queue's visibility is 0)"
            )
            for message in messages:
                if message["MessageId"] in failed:
                    self.sqs.change_message_visibility(
                        QueueUrl=self.url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                    )

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.sqs.receive_message(
            QueueUrl=self.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        ).get("Messages", [])


@pytest.fixture
def queues(world: DealSyncWorld) -> DealSyncQueues:
    topology = build_topology(environment_from_cdk_json("dev"), account="123456789012", region="us-east-1")
    spec = topology.queue("deal-sync")
    sqs = boto3.client("sqs", region_name="us-east-1")
    dlq_url = sqs.create_queue(QueueName=spec.dlq_name)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    url = sqs.create_queue(
        QueueName=spec.name,
        Attributes={
            "VisibilityTimeout": "0",  # failed messages come back at once: the test needs no waiting
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(spec.max_receive_count)}
            ),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return DealSyncQueues(sqs, url, arn, dlq_url, spec.name, spec.dlq_name, spec.max_receive_count)


@pytest.fixture
def dead_lettering(handler: Any, queues: DealSyncQueues, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The handler with the dead-letter variables the topology gives the deployed function."""
    topology = build_topology(environment_from_cdk_json("dev"), account="123456789012", region="us-east-1")
    function_environment = topology.function("hubspot_deal_sync").environment
    for name in (EnvVar.DEAD_LETTER_QUEUE_NAME, EnvVar.MAX_RECEIVE_COUNT):
        monkeypatch.setenv(name.value, function_environment[name.value])
    reset_settings_cache()
    handler.reset_for_tests()
    yield handler
    reset_settings_cache()


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()}


def test_a_record_that_cannot_succeed_is_dead_lettered_on_its_first_receive_with_its_reason(
    world: DealSyncWorld, dead_lettering: Any, queues: DealSyncQueues
) -> None:
    # given a portal without EUR, and four invoice changes plus a malformed message on the queue
    world.hubspot_admin("PATCH", "config", {"exchange_rates": {}})
    bodies = {
        invoice_id: world.record("Invoice", invoice_id, "Create")["body"]
        for invoice_id in (ACME, CAFE, EUR, SUMMIT)
    }
    for body in bodies.values():
        queues.send(body)
    queues.send('{"detail-type": "qbo.entity.changed", "detail": {}}')

    # when Lambda polls the queue until it is empty
    receives = queues.poll_until_empty(dead_lettering)

    # then one receive was enough: nothing was given back to SQS
    assert receives == 1
    # and the EUR invoice and the malformed message are in the dead-letter queue, each saying why
    dead = {m["Body"]: _attributes(m) for m in queues.dead_letters()}
    assert set(dead) == {bodies[EUR], '{"detail-type": "qbo.entity.changed", "detail": {}}'}
    eur = dead[bodies[EUR]]
    assert "currency EUR is not enabled in the HubSpot portal" in eur["ledgerlink.failure_reason"]
    assert (eur["ledgerlink.failure_kind"], eur["ledgerlink.receive_count"]) == ("permanent", "1")
    assert eur["ledgerlink.source_queue"] == queues.name
    malformed = dead['{"detail-type": "qbo.entity.changed", "detail": {}}']
    assert malformed["ledgerlink.failure_kind"] == "permanent"
    # the first missing field of the envelope is named (validation stops at the first error)
    assert "'schema_version' is a required property" in malformed["ledgerlink.failure_reason"]
    # and the other three are synced
    assert {f"{DEMO_REALM_ID}:{i}" for i in (ACME, CAFE, SUMMIT)} <= set(world.deals())
    # and the reason is on record in the links table too (`ledgerlink local status` shows both)
    (failure,) = world.parts.service.links.recent_failures()
    assert failure.entity_id == EUR and not failure.retryable
    # and QBO was asked for the EUR invoice once
    invoice_reads = [
        sent.body.decode()
        for sent in world.capture.to(world.qbo.url)
        if sent.path.endswith("/query") and sent.body and b"from Invoice" in sent.body
    ]
    assert sum(f"'{EUR}'" in statement for statement in invoice_reads) == 1


def test_a_record_that_keeps_failing_is_dead_lettered_on_its_last_receive_as_exhausted(
    world: DealSyncWorld, dead_lettering: Any, queues: DealSyncQueues
) -> None:
    # given an invoice change whose event another invocation holds (its claim outlives this test)
    record = world.record("Invoice", ACME, "Create")
    event = parse_record(record)
    world.parts.service.ledger.claim(event.event_id, remaining_ms=600_000)
    queues.send(record["body"])

    # when Lambda polls the queue until it is empty
    receives = queues.poll_until_empty(dead_lettering)

    # then it was offered maxReceiveCount times, and on the last the function dead-lettered it itself
    # (the queue's redrive, one receive later, would have moved it without a reason)
    assert receives == queues.max_receive_count
    (dead,) = queues.dead_letters()
    attributes = _attributes(dead)
    assert attributes["ledgerlink.failure_kind"] == "exhausted"
    assert attributes["ledgerlink.receive_count"] == str(queues.max_receive_count)
    assert "being processed by another invocation" in attributes["ledgerlink.failure_reason"]
    assert dead["Body"] == record["body"]


def test_when_a_dead_letter_cannot_be_sent_the_record_is_retried_and_the_redrive_still_catches_it(
    world: DealSyncWorld, handler: Any, queues: DealSyncQueues, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a function whose dead-letter queue name does not resolve (a broken deployment)
    monkeypatch.setenv(EnvVar.DEAD_LETTER_QUEUE_NAME.value, "ledgerlink-dev-no-such-dlq")
    monkeypatch.setenv(EnvVar.MAX_RECEIVE_COUNT.value, str(queues.max_receive_count))
    reset_settings_cache()
    handler.reset_for_tests()
    world.hubspot_admin("PATCH", "config", {"exchange_rates": {}})
    body = world.record("Invoice", EUR, "Create")["body"]
    queues.send(body)

    # when Lambda polls the queue until it is empty
    receives = queues.poll_until_empty(handler)

    # then the record was never lost: given back on every receive, then moved by the queue's redrive
    assert receives == queues.max_receive_count
    (dead,) = queues.dead_letters()
    assert dead["Body"] == body
    assert _attributes(dead) == {}  # the redrive attaches no reason; the logs and links table have it
    reset_settings_cache()
