"""The per-event idempotency ledger of a queue-fed flow, against moto's DynamoDB; the claim tests run
against the in-memory persistence too (what benchmarks run the flow on), so the two cannot drift."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink.consumer.ledger import Claim, EventLedger, InMemoryPersistence
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


LedgerFactory = Callable[[str], EventLedger]


@pytest.fixture(params=["dynamodb", "in_memory"])
def make_ledger(request: pytest.FixtureRequest) -> LedgerFactory:
    """Ledgers of a namespace over one idempotency table: DynamoDB's (moto) or in memory (one
    persistence layer per namespace, as ledger.InMemoryPersistence wants)."""
    if request.param == "in_memory":
        tables: dict[str, InMemoryPersistence] = {}
        return lambda namespace: EventLedger(
            "in-memory",
            3600,
            namespace=namespace,
            persistence=tables.setdefault(namespace, InMemoryPersistence()),
        )
    client = request.getfixturevalue("dynamodb")
    return lambda namespace: EventLedger(
        TABLES["idempotency"], 3600, namespace=namespace, dynamodb_client=client
    )


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


def test_a_released_claim_can_be_claimed_again(make_ledger: LedgerFactory) -> None:
    ledger = make_ledger(NAMESPACE)
    assert ledger.claim_all(["a", "b"], remaining_ms=60_000) == {"a": Claim.NEW, "b": Claim.NEW}
    ledger.release_all(["a"])
    assert ledger.claim_all(["a", "b"], remaining_ms=60_000) == {"a": Claim.NEW, "b": Claim.IN_PROGRESS}


def test_two_flows_consuming_the_same_event_each_claim_it_under_their_own_namespace(
    make_ledger: LedgerFactory,
) -> None:
    # given the deal sync completed an event
    deals = make_ledger(NAMESPACE)
    assert deals.claim("event-1", remaining_ms=60_000) is Claim.NEW
    deals.complete_all({"event-1": {"status": "synced"}})

    # when another flow consuming the same event claims it
    other_flow = make_ledger("calendar-sync")

    # then it is new to that flow, and still a duplicate to the deal sync
    assert other_flow.claim("event-1", remaining_ms=60_000) is Claim.NEW
    assert deals.claim("event-1", remaining_ms=60_000) is Claim.COMPLETED


def test_a_claim_held_by_another_worker_is_in_progress_until_completed(make_ledger: LedgerFactory) -> None:
    # given two workers of one flow claiming the same event
    first, second = make_ledger(NAMESPACE), make_ledger(NAMESPACE)
    assert first.claim("event-1", remaining_ms=60_000) is Claim.NEW
    assert second.claim("event-1", remaining_ms=60_000) is Claim.IN_PROGRESS
    # when the first completes it, then the second sees it completed
    first.complete_all({"event-1": {"status": "synced", "deal_id": "91"}})
    assert second.claim("event-1", remaining_ms=60_000) is Claim.COMPLETED
