"""The demo portal's salesperson (``make run``): one deal taken from quote to Closed Won, as a person does it
in HubSpot, so the HubSpot -> QBO flow has something to do.

A few seconds after the stack is up, Maria Alvarez makes "Greenhouse irrigation" for Orchard Valley Farms
(a CRM-only company) with a contact and line items — Rock Fountain and Pump (QBO items by SKU), Hours (by
name), Design (no QBO item: the connection's default item) — then moves it to "Contract sent" (the quote
stage: its QBO estimate) and later to "Closed won" (its invoice). Every change goes through the portal's
store as a user's edit (``changeSource`` ``CRM_UI``), so the subscribed webhooks fire as HubSpot's would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

# HubSpot's v4 association type ids (HUBSPOT_DEFINED).
LINE_ITEM_TO_DEAL = 20
DEAL_TO_COMPANY_PRIMARY = 5
DEAL_TO_CONTACT = 3
DEMO_COMPANY = "Orchard Valley Farms"
DEMO_DEAL = "Greenhouse irrigation"
DEMO_OWNER = "41700101"  # Maria Alvarez, a user of the Graph demo tenant
DEMO_LINES: tuple[dict[str, str], ...] = (
    {"name": "Rock Fountain", "hs_sku": "ROCKFTN", "quantity": "1", "price": "275"},
    {"name": "Pump", "hs_sku": "PUMP", "quantity": "2", "price": "15"},
    {"name": "Hours", "quantity": "6", "price": "45"},
    {"name": "Design", "quantity": "2", "price": "75", "discount": "10"},
)
QUOTE_STAGE = "contractsent"
WON_STAGE = "closedwon"


def run_sales_demo(
    seed: Callable[[dict[str, Any]], dict[str, Any]],
    move: Callable[[str, str], None],
    company_id: Callable[[str], str | None],
    stop: threading.Event,
    *,
    start_after_seconds: float = 15.0,
    quote_after_seconds: float = 10.0,
    won_after_seconds: float = 25.0,
    say: Callable[[str], None] = lambda _text: None,
) -> str | None:
    """Make the demo deal, quote it, win it (``seed``/``move`` are the sandbox's, as a user's edits); the
    deal id, or None when stopped first."""
    if stop.wait(start_after_seconds):
        return None
    existing = company_id(DEMO_COMPANY)
    created = seed(
        {
            "companies": [] if existing else [{"name": DEMO_COMPANY, "domain": "orchard-valley-farms.example"}],
            "contacts": [
                {"email": "gus@orchard-valley-farms.example", "firstname": "Gus", "lastname": "Fielding"}
            ],
            "deals": [
                {"dealname": DEMO_DEAL, "pipeline": "default", "dealstage": "qualifiedtobuy",
                 "hubspot_owner_id": DEMO_OWNER}
            ],
            "line_items": list(DEMO_LINES),
        }
    )["created"]  # fmt: skip
    deal_id = created["deals"][0]
    company = existing or created["companies"][0]
    associations = [
        {"from_type": "line_items", "from_id": line_id, "to_type": "deals", "to_id": deal_id, "type_id": LINE_ITEM_TO_DEAL}
        for line_id in created["line_items"]
    ]  # fmt: skip
    associations.append(
        {"from_type": "deals", "from_id": deal_id, "to_type": "companies", "to_id": company, "type_id": DEAL_TO_COMPANY_PRIMARY}
    )  # fmt: skip
    associations.append(
        {"from_type": "deals", "from_id": deal_id, "to_type": "contacts", "to_id": created["contacts"][0],
         "type_id": DEAL_TO_CONTACT}
    )  # fmt: skip
    seed({"associations": associations})
    say(
        f"demo     HubSpot: deal {deal_id} {DEMO_DEAL!r} for {DEMO_COMPANY} with {len(DEMO_LINES)} line items"
    )
    for stage, wait in ((QUOTE_STAGE, quote_after_seconds), (WON_STAGE, won_after_seconds)):
        if stop.wait(wait):
            return deal_id
        move(deal_id, stage)
        say(f"demo     HubSpot: deal {deal_id} moved to {stage}")
    return deal_id
