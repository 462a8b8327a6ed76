"""Concurrency slots shared through the vendor-state table (moto DynamoDB).

Each "Lambda" has its own boto3 client and its own store; all they share is the table, as in production.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ledgerlink.clock import SystemClock
from ledgerlink.http.concurrency import Slot, concurrency_key
from ledgerlink.http.dynamodb import SK, SLOT_GRACE_SECONDS, DynamoDBConcurrencyStore
from ledgerlink.http.factory import shared_state_client
from ledgerlink.tables import VENDOR_STATE
from tests.unit.http.support import GatedVendor, make_policy, start_gated_server

TABLE = "ledgerlink-vendor-state"
BUCKET = concurrency_key("graph", "app-1/finance@example.com")
T0 = 1_700_000_000.0


@pytest.fixture
def table() -> Iterator[None]:
    with mock_aws():
        boto3.client("dynamodb", region_name="us-east-1").create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": VENDOR_STATE.partition_key, "KeyType": "HASH"},
                {"AttributeName": SK, "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": VENDOR_STATE.partition_key, "AttributeType": "S"},
                {"AttributeName": SK, "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield


def lambda_store(client: Any = None) -> DynamoDBConcurrencyStore:
    """A store with its own boto3 client, as a separate Lambda instance would have."""
    return DynamoDBConcurrencyStore(TABLE, client or boto3.client("dynamodb", region_name="us-east-1"))


def slot_item(number: int) -> dict[str, Any] | None:
    return (
        boto3.client("dynamodb", region_name="us-east-1")
        .get_item(TableName=TABLE, Key={"pk": {"S": f"concurrency#{BUCKET}"}, "sk": {"S": f"slot#{number}"}})
        .get("Item")
    )


def test_four_lambdas_take_the_four_slots_and_a_fifth_gets_none(table: None) -> None:
    # when five Lambdas ask for a slot of the same mailbox
    taken = [lambda_store().try_acquire(BUCKET, 4, f"lambda-{n}", T0, 18.0) for n in range(5)]
    # then four hold distinct slots and the fifth got none (and wrote nothing)
    held = [slot for slot in taken[:4] if slot is not None]
    assert sorted(slot.number for slot in held) == [0, 1, 2, 3]
    assert taken[4] is None
    # and each slot is one item naming its owner, its lease and a TTL past the lease
    item = slot_item(held[0].number)
    assert item is not None
    assert item["owner"]["S"] == held[0].owner
    assert float(item["lease_until"]["N"]) == pytest.approx(T0 + 18.0)
    assert int(item["expires_at"]["N"]) == int(T0 + 18.0) + SLOT_GRACE_SECONDS
    assert [holder.owner for holder in lambda_store().holders(BUCKET, T0)] == [
        slot.owner for slot in sorted(held, key=lambda slot: slot.number)
    ]


def test_a_release_deletes_the_slot_only_for_its_owner(table: None) -> None:
    store = lambda_store()
    mine = store.try_acquire(BUCKET, 1, "mine", T0, 18.0)
    assert mine is not None
    # when someone who does not hold it tries to release it, then nothing changes
    assert store.release(Slot(BUCKET, mine.number, "impostor", mine.lease_until)) is False
    assert slot_item(mine.number) is not None
    # when its owner releases it, then the item is gone and the slot is free again
    assert store.release(mine) is True
    assert slot_item(mine.number) is None
    assert lambda_store().try_acquire(BUCKET, 1, "next", T0, 18.0) is not None


def test_a_crashed_lambdas_slot_is_taken_over_after_its_lease_and_its_late_release_is_refused(
    table: None,
) -> None:
    # given a Lambda that took the only slot and crashed (its lease ends at T0 + 18)
    crashed = lambda_store().try_acquire(BUCKET, 1, "crashed", T0, 18.0)
    assert crashed is not None
    # when another asks before the lease ends, then it gets none
    assert lambda_store().try_acquire(BUCKET, 1, "live", T0 + 17.9, 18.0) is None
    # when it asks once the lease has ended, then it takes the slot over
    live = lambda_store().try_acquire(BUCKET, 1, "live", T0 + 18.0, 18.0)
    assert live is not None and live.number == crashed.number
    # and the crashed one's release, were it to come, does not free the live holder's slot
    assert lambda_store().release(crashed) is False
    item = slot_item(live.number)
    assert item is not None and item["owner"]["S"] == "live"


class RivalBeforeWrite:
    """A DynamoDB client that lets a rival Lambda act between this one's Query and its PutItem."""

    def __init__(self, rival: Callable[[], None]) -> None:
        self._client = boto3.client("dynamodb", region_name="us-east-1")
        self._rival: Callable[[], None] | None = rival

    def query(self, **kwargs: Any) -> Any:
        return self._client.query(**kwargs)

    def put_item(self, **kwargs: Any) -> Any:
        if self._rival is not None:
            rival, self._rival = self._rival, None
            rival()
        return self._client.put_item(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_a_slot_a_rival_takes_between_query_and_write_is_not_taken_twice(table: None) -> None:
    # given two free slots, and a rival that takes one of them right after this Lambda's query
    rival: list[Slot | None] = []

    def rival_takes_a_slot() -> None:
        rival.append(lambda_store().try_acquire(BUCKET, 2, "rival", T0, 18.0))

    # when this Lambda writes a slot its query showed free
    mine = lambda_store(RivalBeforeWrite(rival_takes_a_slot)).try_acquire(BUCKET, 2, "mine", T0, 18.0)
    # then each got a different slot (a lost conditional write moves on to the next candidate)
    assert mine is not None and rival[0] is not None
    assert {mine.number, rival[0].number} == {0, 1}


def test_the_loser_of_a_race_for_the_last_slot_gets_none(table: None) -> None:
    # given one slot, taken by a rival between this Lambda's query and its write
    other = concurrency_key("graph", "app-1/other@example.com")

    def rival_takes_it() -> None:
        assert lambda_store().try_acquire(other, 1, "rival", T0, 18.0) is not None

    # when this Lambda writes, then it gets nothing, and the rival keeps its slot
    assert lambda_store(RivalBeforeWrite(rival_takes_it)).try_acquire(other, 1, "mine", T0, 18.0) is None
    assert [holder.owner for holder in lambda_store().holders(other, T0)] == ["rival"]


class Serialized:
    """A boto3 client whose calls are applied one at a time: what DynamoDB guarantees for each
    conditional write, and what moto does not under real threads."""

    def __init__(self, client: Any, lock: threading.Lock) -> None:
        self._client = client
        self._lock = lock

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._client, name)
        if not callable(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return method(*args, **kwargs)

        return call


def test_eight_threads_in_two_lambdas_never_have_more_than_four_in_flight(table: None) -> None:
    # given two Lambdas' Graph-like clients (their own DynamoDB clients, one table), a limit of 4 per
    # mailbox, and a vendor that holds every request
    gated = GatedVendor()
    server = start_gated_server(gated)
    lock = threading.Lock()
    try:
        lambdas = [
            shared_state_client(
                make_policy(gated.url, vendor="graph", max_concurrent_per_scope=4, read_timeout_seconds=30.0),
                table_name=TABLE,
                dynamodb_client=Serialized(boto3.client("dynamodb", region_name="us-east-1"), lock),
                clock=SystemClock(),
            )
            for _ in range(2)
        ]
        with ThreadPoolExecutor(max_workers=8) as pool:
            # when 8 threads, 4 in each Lambda, call the same mailbox
            calls = [
                pool.submit(lambdas[n % 2].get, "/x", scope="app-1/finance@example.com") for n in range(8)
            ]
            # then 4 reach the vendor, the table shows 4 held slots, and the others wait
            assert gated.wait_in_flight(4)
            assert len(lambda_store().holders(BUCKET, SystemClock().now())) == 4
            gated.open()
            assert [call.result(timeout=30).status_code for call in calls] == [200] * 8
        # and never more than 4 were in flight at once; every slot was given back
        assert gated.peak == 4 and gated.served == 8
        assert lambda_store().holders(BUCKET, SystemClock().now()) == []
    finally:
        gated.open()
        server.shutdown()
        server.server_close()
