"""Which QBO documents are CRM-born and what they write on their deal (docs/mapping.md#crm-born-documents)."""

from __future__ import annotations

import pytest

from ledgerlink.crosswalk import EntityKey, Link
from ledgerlink.deal_sync.crm_born import books_properties, crm_deal, estimate_invoiced
from ledgerlink.deal_sync.mapping import map_estimate, map_invoice
from ledgerlink.mapping.origin import ORIGIN_HUBSPOT, origin_marker
from ledgerlink.mapping.properties import HUBSPOT_DEFAULT_PROPERTIES
from ledgerlink.mapping.stages import default_estimate_stages, default_invoice_stages
from tests.unit.deal_sync.helpers import REALM, at, company, qbo_entity

PORTAL = "48213570"
KEY = EntityKey(REALM, "Invoice", "130")
NOW = at("2025-03-20T12:00:00-04:00")


def test_the_link_claimed_for_a_deal_names_it() -> None:
    link = Link(KEY, hubspot_id="91013", origin=ORIGIN_HUBSPOT)
    assert crm_deal(link, {"PrivateNote": ""}, PORTAL) == "91013"
    assert crm_deal(link, None, PORTAL) == "91013"  # deleted in QBO: the link still says whose it was


def test_the_note_names_the_deal_before_the_link_does() -> None:
    note = {"PrivateNote": f"Quote. {origin_marker('91013', PORTAL)}"}
    assert crm_deal(None, note, PORTAL) == "91013"
    assert crm_deal(Link(KEY, hubspot_id="91013", synced_ms=1), note, PORTAL) == "91013"


def test_a_link_to_another_deal_wins_over_the_note() -> None:
    # given a document whose marked deal was gone, so the sync wrote it to a deal of its own (no origin)
    note = {"PrivateNote": origin_marker("91013", PORTAL)}
    assert crm_deal(Link(KEY, hubspot_id="92000", synced_ms=1), note, PORTAL) is None


def test_documents_qbo_users_make_are_not_crm_born() -> None:
    assert crm_deal(None, {"PrivateNote": "Call before delivery."}, PORTAL) is None
    assert crm_deal(Link(KEY, hubspot_id="92000", synced_ms=1), {}, PORTAL) is None
    assert crm_deal(None, {"PrivateNote": origin_marker("91013", "77777777")}, PORTAL) is None


@pytest.mark.parametrize(
    ("fields", "invoiced"),
    [
        ({"TxnStatus": "Pending"}, False),
        ({"TxnStatus": "Accepted"}, False),
        ({"TxnStatus": "Closed"}, True),
        ({"TxnStatus": "Converted"}, True),
        ({"TxnStatus": "Accepted", "LinkedTxn": [{"TxnId": "7", "TxnType": "Invoice"}]}, True),
        ({"TxnStatus": "Pending", "LinkedTxn": [{"TxnId": "7", "TxnType": "PurchaseOrder"}]}, False),
    ],
)
def test_an_estimate_is_invoiced_when_qbo_links_or_closes_it(
    fields: dict[str, object], invoiced: bool
) -> None:
    assert estimate_invoiced(fields) is invoiced


def test_an_invoice_writes_only_the_books_properties() -> None:
    invoice = qbo_entity("invoice_plain.json")
    mapped = map_invoice(invoice, company(), default_invoice_stages(), now=NOW)

    written = books_properties("Invoice", invoice, mapped)

    assert set(written) == {
        "qbo_invoice_id",
        "qbo_realm_id",
        "qbo_doc_number",
        "qbo_customer_id",
        "qbo_txn_date",
        "qbo_due_date",
        "qbo_balance",
        "qbo_tax_amount",
        "qbo_discount_amount",
        "qbo_status",
        "qbo_last_updated",
    }
    assert not set(written) & HUBSPOT_DEFAULT_PROPERTIES["deals"]
    assert written["qbo_status"] == "open" and written["qbo_invoice_id"] == f"{REALM}:130"


def test_a_pending_estimate_writes_its_books_properties_and_an_invoiced_one_its_key_only() -> None:
    estimate = qbo_entity("estimate_pending.json")
    pending = books_properties(
        "Estimate", estimate, map_estimate(estimate, company(), default_estimate_stages(), now=NOW)
    )
    assert pending["qbo_status"] == "pending" and "qbo_expiration_date" in pending
    assert not set(pending) & HUBSPOT_DEFAULT_PROPERTIES["deals"]

    estimate["TxnStatus"] = "Closed"
    closed = books_properties(
        "Estimate", estimate, map_estimate(estimate, company(), default_estimate_stages(), now=NOW)
    )
    assert closed == {"qbo_estimate_id": f"{REALM}:100"}
