"""The demo portal's salesperson: one deal with a company, a contact and line items, quoted, then won."""

from __future__ import annotations

import threading

from ledgerlink_local.sandboxes.hubspot.model import OBJECT_TYPES
from ledgerlink_local.sandboxes.hubspot.sandbox import HubSpotSandbox
from ledgerlink_local.sandboxes.hubspot.store import SOURCE_UI

NO_WAIT = {"start_after_seconds": 0, "quote_after_seconds": 0, "won_after_seconds": 0}
DEALS = next(t for t in OBJECT_TYPES if t.name == "deals")


def test_the_salesperson_makes_the_deal_then_quotes_it_then_wins_it_as_user_edits() -> None:
    sandbox = HubSpotSandbox()

    deal_id = sandbox.run_demo_activity(threading.Event(), **NO_WAIT)

    assert deal_id is not None
    deal = sandbox.portal.get(DEALS, deal_id)
    assert deal is not None and deal.values["dealname"] == "Greenhouse irrigation"
    stages = [(entry.value, entry.source_type) for entry in deal.history["dealstage"]]
    assert stages == [("qualifiedtobuy", SOURCE_UI), ("contractsent", SOURCE_UI), ("closedwon", SOURCE_UI)]
    line_items = sandbox.portal.associations.targets("deals", deal_id, "line_items")
    companies = sandbox.portal.associations.targets("deals", deal_id, "companies")
    assert len(list(line_items)) == 4 and len(list(companies)) == 1


def test_a_stopped_stack_makes_no_deal() -> None:
    sandbox = HubSpotSandbox()
    stop = threading.Event()
    stop.set()
    before = len(sandbox.portal.live_objects(DEALS))

    assert sandbox.run_demo_activity(stop) is None
    assert len(sandbox.portal.live_objects(DEALS)) == before
