"""The per-event idempotency ledger of a queue-fed flow, against moto's DynamoDB."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink.consumer.ledger import Claim, EventLedger
from ledgerlink.idempotency import IdempotentRunner
from tests.integration.test_deal_sync_support import TABLES, create_aws_resources

# The deal sync's namespace: its claims are the records run_once("hubspot-deal-sync", ...) finds.
NAMESPACE = "hubspot-deal-sync"


class RemainingTime:
    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        create_aws_resources()
        yield boto3.client("dynamodb", region_name="us-east-1")


def test_an_event_is_claimed_once_and_its_completion_is_what_run_once_would_find(dynamodb: Any) -> None:
    # given two invocations claiming the same event
    ledger = EventLedger(TABLES["idempotency"], 3600, namespace=NAMESPACE, dynamodb_client=dynamodb)
    other = EventLedger(TABLES["idempotency"], 3600, namespace=NAMESPACE, dynamodb_client=dynamodb)
    assert ledger.claim("event-1", remaining_ms=60_000) is Claim.NEW
    assert other.claim("event-1", remaining_ms=60_000) is Claim.IN_PROGRESS

    # when the first completes it
    ledger.complete_all({"event-1": {"status": "synced", "deal_id": "91"}})

    # then later claims see a duplicate, and run_once on the same key returns the stored outcome
    assert other.claim("event-1", remaining_ms=60_000) is Claim.COMPLETED
    runner = IdempotentRunner(TABLES["idempotency"], 3600, dynamodb_client=dynamodb)
    runner.register_lambda_context(RemainingTime())  # type: ignore[arg-type]
    assert runner.run_once(NAMESPACE, "event-1", lambda: {"status": "ran again"}) == {
        "status": "synced",
        "deal_id": "91",
    }


def test_a_released_claim_can_be_claimed_again(dynamodb: Any) -> None:
    ledger = EventLedger(TABLES["idempotency"], 3600, namespace=NAMESPACE, dynamodb_client=dynamodb)
    assert ledger.claim_all(["a", "b"], remaining_ms=60_000) == {"a": Claim.NEW, "b": Claim.NEW}
    ledger.release_all(["a"])
    assert ledger.claim_all(["a", "b"], remaining_ms=60_000) == {"a": Claim.NEW, "b": Claim.IN_PROGRESS}


def test_two_flows_consuming_the_same_event_each_claim_it_under_their_own_namespace(dynamodb: Any) -> None:
    # given the deal sync completed an event
    deals = EventLedger(TABLES["idempotency"], 3600, namespace=NAMESPACE, dynamodb_client=dynamodb)
    assert deals.claim("event-1", remaining_ms=60_000) is Claim.NEW
    deals.complete_all({"event-1": {"status": "synced"}})

    # when another flow consuming the same event claims it
    other_flow = EventLedger(TABLES["idempotency"], 3600, namespace="calendar-sync", dynamodb_client=dynamodb)

    # then it is new to that flow, and still a duplicate to the deal sync
    assert other_flow.claim("event-1", remaining_ms=60_000) is Claim.NEW
    assert deals.claim("event-1", remaining_ms=60_000) is Claim.COMPLETED
