"""The DisplayNames a new QBO customer tries: deterministic, unique-making suffixes."""

from __future__ import annotations

from ledgerlink.document_sync.customers import display_names
from ledgerlink.document_sync.deal import CrmCompany, CrmContact

ACME = CrmCompany(
    id="21001",
    name="Acme: Rockets",
    domain="acme.example",
    website="",
    phone="",
    address={},
    qbo_customer_key="",
)
JANE = CrmContact(id="51001", email="jane@two.example", first_name="Jane", last_name="Doe", phone="")  # fmt: skip


def test_a_company_tries_its_name_then_its_domain_then_its_hubspot_id_without_colons() -> None:
    assert display_names(ACME, JANE, "21001") == [
        "Acme Rockets",
        "Acme Rockets (acme.example)",
        "Acme Rockets (HubSpot 21001)",
    ]


def test_a_person_without_a_company_tries_the_name_then_the_email() -> None:
    assert display_names(None, JANE, "51001")[:2] == ["Jane Doe", "Jane Doe (jane@two.example)"]


def test_names_keep_their_suffix_within_qbos_100_characters() -> None:
    long = CrmCompany(id="1", name="A" * 120, domain="x.example", website="", phone="", address={}, qbo_customer_key="")  # fmt: skip
    names = display_names(long, None, "1")
    assert all(len(name) <= 100 for name in names) and names[1].endswith("(x.example)")


def test_nothing_to_name_gives_no_names() -> None:
    assert display_names(None, None, "deal-1") == []
