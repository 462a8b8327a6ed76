"""The entity-name table matches Intuit's own sources: the webhook entity list and the XSD data model."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from ledgerlink.qbo.webhooks import ENTITY_NAME_BY_LOWER, OPERATION_BY_VERB, entity_name
from tests.conftest import SHARED_SPECS

XSD = SHARED_SPECS / "quickbooks" / "xsd"
# The table "entities that support webhooks" on developer.intuit.com/app/developer/qbo/docs/develop/webhooks.
WEBHOOK_ENTITIES = (
    "Account",
    "Bill",
    "BillPayment",
    "Budget",
    "Class",
    "CreditMemo",
    "Currency",
    "Customer",
    "Department",
    "Deposit",
    "Employee",
    "Estimate",
    "Invoice",
    "Item",
    "JournalCode",
    "JournalEntry",
    "Payment",
    "PaymentMethod",
    "Preferences",
    "Purchase",
    "PurchaseOrder",
    "RefundReceipt",
    "SalesReceipt",
    "TaxAgency",
    "Term",
    "TimeActivity",
    "Transfer",
    "Vendor",
    "VendorCredit",
)
XS = "{http://www.w3.org/2001/XMLSchema}"


def _xsd_entities() -> set[str]:
    """Every element Intuit declares as an IntuitObject (the entities of the Accounting API)."""
    names: set[str] = set()
    for path in XSD.glob("*.xsd"):
        # Intuit's published XSD, read from a local file: not untrusted input.
        root = ET.parse(path).getroot()  # noqa: S314
        for element in root.iter(f"{XS}element"):
            if element.get("substitutionGroup") == "IntuitObject":
                names.add(element.attrib["name"])
    return names


def _webhook_entities() -> set[str]:
    """The entities Intuit's webhooks page lists as sending webhooks (api-notes §1a)."""
    return set(WEBHOOK_ENTITIES)


@pytest.mark.skipif(not XSD.is_dir(), reason="vendor specs not beside the checkout")
def test_every_xsd_entity_and_every_webhook_entity_is_in_the_table() -> None:
    known = set(ENTITY_NAME_BY_LOWER.values())
    assert _xsd_entities() - known == set()
    assert _webhook_entities() - known == set()


@pytest.mark.skipif(not XSD.is_dir(), reason="vendor specs not beside the checkout")
def test_every_name_in_the_table_comes_from_one_of_the_sources() -> None:
    assert set(ENTITY_NAME_BY_LOWER.values()) - (_xsd_entities() | _webhook_entities()) == set()


@pytest.mark.parametrize(
    ("lower", "qbo"),
    [
        ("invoice", "Invoice"),
        ("timeactivity", "TimeActivity"),
        ("billpayment", "BillPayment"),
        ("journalentry", "JournalEntry"),
        ("creditmemo", "CreditMemo"),
        ("vendorcredit", "VendorCredit"),
        ("tdsmetadata", "TDSMetadata"),
        ("currency", "Currency"),
    ],
)
def test_lower_case_names_map_to_qbo_spelling(lower: str, qbo: str) -> None:
    assert entity_name(lower) == qbo


def test_an_unknown_name_is_kept_with_a_capital_first_letter() -> None:
    assert entity_name("projecttask") == "Projecttask"
    assert entity_name("Invoice") == "Invoice"


def test_every_cloudevents_verb_maps_to_a_legacy_operation() -> None:
    assert OPERATION_BY_VERB == {
        "created": "Create",
        "updated": "Update",
        "deleted": "Delete",
        "merged": "Merge",
        "voided": "Void",
        "emailed": "Emailed",
    }
