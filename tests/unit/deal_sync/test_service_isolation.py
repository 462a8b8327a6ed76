"""One bad record never fails its neighbours: the deal sync isolates the record a failure belongs to.

Against the QBO and HubSpot sandboxes and moto (the ``world`` fixture): each test asserts the deals
that exist in HubSpot afterwards and the outcome of each record.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import requests

from ledgerlink.consumer.failures import FailureScope
from ledgerlink.consumer.outcome import OutcomeStatus
from ledgerlink.deal_sync import realm as realm_module
from ledgerlink_local.sandboxes.qbo import DEMO_REALM_ID
from tests.integration import test_deal_sync_support as support
from tests.integration.test_deal_sync_support import DealSyncWorld

world = support.world  # the fixture, shared with the integration tests

# Demo invoices: Acme Robotics, Bluebird Café, Summit Outdoor Supply (open, partly paid, overdue).
GOOD_INVOICES = ("1", "2", "4")


def key(invoice_id: str) -> str:
    return f"{DEMO_REALM_ID}:{invoice_id}"


def test_an_event_naming_an_id_qbo_could_never_have_fails_alone_and_its_neighbours_sync(
    world: DealSyncWorld,
) -> None:
    # given three real invoice changes and one whose id cannot be queried (it got past an old ingest)
    good = [world.change("Invoice", invoice_id, "Create") for invoice_id in GOOD_INVOICES]
    bad = dataclasses.replace(good[0], event_id="e-bad", message_id="m-bad", entity_id="INV-0001/A")

    # when they are synced in one batch
    outcomes = world.sync([*good, bad])

    # then the three deals exist and their events are synced
    assert all(outcomes[event.message_id].status is OutcomeStatus.SYNCED for event in good)
    assert {key(invoice_id) for invoice_id in GOOD_INVOICES} <= set(world.deals())
    # and the bad one failed alone, for good, with a reason naming the id
    failed = outcomes["m-bad"]
    assert failed.status is OutcomeStatus.FAILED and not failed.retryable
    assert "INV-0001/A" in (failed.reason or "")
    assert world.metrics.counts.get("BatchIsolations", 0) >= 1


def test_an_exception_nobody_classified_fails_only_its_record_at_once_and_is_counted(
    world: DealSyncWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a bug that breaks the mapping of one invoice (Summit's) and nothing else
    real_map_invoice = realm_module.map_invoice

    def map_invoice(raw: Any, *args: Any, **kwargs: Any) -> Any:
        if str(raw.get("Id")) == "4":
            raise KeyError("TxnTaxDetail")
        return real_map_invoice(raw, *args, **kwargs)

    monkeypatch.setattr(realm_module, "map_invoice", map_invoice)
    events = [world.change("Invoice", invoice_id, "Create") for invoice_id in GOOD_INVOICES]

    # when the batch is synced
    outcomes = world.sync(events)

    # then Acme's and the café's deals are written
    assert {key("1"), key("2")} <= set(world.deals())
    assert key("4") not in world.deals()
    # and Summit's event failed alone: not retried (retrying a bug helps nobody), marked unexpected
    summit = outcomes[events[2].message_id]
    assert summit.status is OutcomeStatus.FAILED
    assert (summit.retryable, summit.scope) == (False, FailureScope.UNEXPECTED)
    assert summit.reason is not None and "unexpected KeyError" in summit.reason
    assert all(outcomes[event.message_id].ok for event in events[:2])
    # and counted for the operator alarm
    assert world.metrics.counts.get("UnexpectedErrors") == 1


def test_a_vendor_outage_fails_the_batch_together_without_isolating(world: DealSyncWorld) -> None:
    # given QBO answering 503 to every API read
    requests.post(
        f"{world.qbo.url}/_admin/faults",
        json={"kind": "503", "path_prefix": "/v3/company/"},
        timeout=10,
    ).raise_for_status()
    events = [world.change("Invoice", invoice_id, "Create") for invoice_id in GOOD_INVOICES]

    # when the batch is synced
    outcomes = world.sync(events)

    # then every event fails retryably with the outage as its reason, in one pass (no halving)
    for event in events:
        outcome = outcomes[event.message_id]
        assert outcome.status is OutcomeStatus.FAILED and outcome.retryable
        assert outcome.scope is FailureScope.SHARED
    assert "BatchIsolations" not in world.metrics.counts
