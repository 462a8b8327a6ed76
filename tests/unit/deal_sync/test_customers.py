"""QBO Customer → HubSpot company and contact properties (docs/mapping.md#company-and-contact)."""

from __future__ import annotations

import pytest

from ledgerlink.deal_sync.mapping import map_customer
from ledgerlink.mapping.errors import MappingError
from tests.unit.deal_sync.helpers import REALM, at, company, qbo_entity, qbo_payload


def test_us_customer_becomes_a_company_and_a_contact() -> None:
    # given a US customer with a website, a mixed-case email and a ZIP+4
    customer = qbo_entity("customer_us.json")

    # when it is mapped
    result = map_customer(customer, company())

    # then the company is keyed by the realm-scoped customer id and named after CompanyName
    assert result.company.id_property == "qbo_customer_id"
    assert result.company.id == f"{REALM}:58"
    assert result.company.properties == {
        "name": "Acme Corp.",
        "domain": "acme-corp.com",
        "website": "https://www.acme-corp.com/",
        "phone": "(650) 555-0142",
        "address": "123 Desert Rd",
        "address2": "Suite 4",
        "city": "Mountain View",
        "state": "CA",
        "zip": "94043-1351",
        "country": "USA",
        "qbo_customer_id": f"{REALM}:58",
        "qbo_realm_id": REALM,
    }
    # and the contact is keyed by its lower-cased email
    assert result.contact is not None
    assert (result.contact.id_property, result.contact.id) == ("email", "wile.coyote@acme-corp.com")
    assert result.contact.properties["firstname"] == "Wile"
    assert result.contact.properties["lastname"] == "Coyote"
    assert result.contact.properties["company"] == "Acme Corp."
    assert result.contact.properties["qbo_customer_id"] == f"{REALM}:58"
    assert result.identity.created_at == at("2024-01-10T09:00:00-08:00")


def test_non_us_address_is_carried_as_written() -> None:
    # given a London customer (no ZIP, county-style subdivision, extra address lines)
    result = map_customer(qbo_entity("customer_uk.json"), company())

    # then the lines, city, postcode and country arrive unchanged, and the email domain is the domain
    props = result.company.properties
    assert (props["address"], props["address2"]) == ("Flat 2", "14 Marlborough Road, Islington")
    assert (props["city"], props["state"], props["zip"], props["country"]) == (
        "London",
        "Greater London",
        "N19 4NB",
        "United Kingdom",
    )
    assert props["domain"] == "harbourfinch.co.uk"
    assert props["phone"] == "+44 20 7946 0958"


def test_free_mail_email_gives_no_company_domain() -> None:
    # given two customers that share jane.doe@gmail.com and have no website
    first, second = qbo_payload("customers_shared_email.json")["QueryResponse"]["Customer"]

    # when they are mapped
    results = [map_customer(customer, company()) for customer in (first, second)]

    # then neither company gets gmail.com as its domain; both still map a contact for the email
    assert [r.company.properties["domain"] for r in results] == ["", ""]
    assert [r.contact.id if r.contact else None for r in results] == ["jane.doe@gmail.com"] * 2
    assert results[1].company.properties["name"] == "Doe Snow Removal LLC"


def test_display_name_names_the_company_when_company_name_is_empty() -> None:
    customer = qbo_entity("customer_us.json")
    del customer["CompanyName"]

    assert map_customer(customer, company()).company.properties["name"] == "Acme Corp"


def test_several_emails_in_one_field_use_the_first() -> None:
    customer = qbo_entity("customer_us.json")
    customer["PrimaryEmailAddr"]["Address"] = "AP@acme-corp.com, wile@acme-corp.com"

    result = map_customer(customer, company())

    assert result.contact is not None
    assert result.contact.id == "ap@acme-corp.com"


def test_customer_without_a_valid_email_has_no_contact_and_says_why() -> None:
    customer = qbo_entity("customer_us.json")
    customer["PrimaryEmailAddr"]["Address"] = "call the office"

    result = map_customer(customer, company())

    assert result.contact is None
    assert result.notes == ("PrimaryEmailAddr.Address holds no valid email address; no contact is mapped",)
    # the website still gives the company its domain
    assert result.company.properties["domain"] == "acme-corp.com"


def test_sub_customer_reports_its_parent() -> None:
    customer = qbo_entity("customer_us.json")
    customer.update(Job=True, ParentRef={"value": "57"}, Id="59", DisplayName="Acme Corp:Warehouse")

    assert map_customer(customer, company()).parent_key == f"{REALM}:57"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda c: c.pop("Id"), r"^Customer Id: is required$"),
        (
            lambda c: (c.pop("CompanyName"), c.pop("DisplayName")),
            r"^Customer 58 DisplayName: is required when CompanyName is empty$",
        ),
    ],
)
def test_bad_customer_fields_are_named(mutate: object, message: str) -> None:
    customer = qbo_entity("customer_us.json")
    mutate(customer)  # type: ignore[operator]

    with pytest.raises(MappingError, match=message):
        map_customer(customer, company())
