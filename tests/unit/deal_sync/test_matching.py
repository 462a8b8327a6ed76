"""Matching QBO customers to HubSpot companies and contacts (docs/mapping.md#matching)."""

from __future__ import annotations

from typing import Any

import pytest

from ledgerlink.deal_sync.mapping import map_customer
from ledgerlink.deal_sync.matching import (
    Action,
    AmbiguityKind,
    CustomerIdentity,
    Decision,
    HubSpotRecord,
    company_domain,
    match_customers,
    normalise_name,
)
from tests.unit.deal_sync.helpers import REALM, company, qbo_entity, qbo_payload


def hubspot_company(record_id: str, name: str, domain: str = "", owner: str = "") -> HubSpotRecord:
    """A company as HubSpot's search returns it (SimplePublicObject)."""
    return HubSpotRecord.from_api(
        {
            "id": record_id,
            "properties": {"name": name, "domain": domain or None, "qbo_customer_id": owner or None},
            "createdAt": "2024-02-01T10:00:00Z",
            "updatedAt": "2024-02-01T10:00:00Z",
            "archived": False,
        }
    )


def hubspot_contact(record_id: str, email: str, owner: str = "") -> HubSpotRecord:
    return HubSpotRecord.from_api(
        {"id": record_id, "properties": {"email": email, "qbo_customer_id": owner or None}, "archived": False}
    )


def acme() -> CustomerIdentity:
    return map_customer(qbo_entity("customer_us.json"), company()).identity


def shared_email_customers() -> list[CustomerIdentity]:
    customers: list[dict[str, Any]] = qbo_payload("customers_shared_email.json")["QueryResponse"]["Customer"]
    return [map_customer(customer, company()).identity for customer in customers]


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("Acme Corp.", "acme"),
        ("ACME, Inc", "acme"),
        ("Acme Co. Inc.", "acme"),
        ("  acme   corporation ", "acme"),
        ("Müller Maschinenbau GmbH", "muller maschinenbau"),
        ("Harbour & Finch Ltd", "harbour finch"),
        ("O'Brien L.L.C.", "obrien"),
        ("Smith-Jones Corp", "smith jones"),
        ("Co", "co"),  # a suffix is never the whole name
        ("", ""),
    ],
)
def test_company_names_are_normalised(name: str, normalised: str) -> None:
    assert normalise_name(name) == normalised


def test_company_domain_prefers_the_website_and_ignores_free_mail() -> None:
    assert company_domain("https://www.Acme-Corp.com/about", "ap@other.com") == "acme-corp.com"
    assert company_domain("acme-corp.com", None) == "acme-corp.com"
    assert company_domain(None, "Jane@Acme-Corp.com") == "acme-corp.com"
    assert company_domain(None, "jane.doe@gmail.com") is None
    assert company_domain("not a url", "jane@outlook.com") is None


def test_company_already_carrying_the_qbo_key_is_linked_first() -> None:
    # given a company linked by key and another that matches by domain
    companies = [
        hubspot_company("501", "Acme (old)", "acme-corp.com"),
        hubspot_company("502", "Something else", owner=f"{REALM}:58"),
    ]

    # when Acme is matched
    (match,) = match_customers([acme()], companies, [])

    # then the key wins
    assert (match.company.action, match.company.hubspot_id, match.company.matched_by) == (
        Action.LINK,
        "502",
        "qbo_customer_id",
    )


def test_unlinked_company_with_the_same_domain_is_linked() -> None:
    companies = [
        hubspot_company("501", "ACME Corporation", "acme-corp.com"),
        hubspot_company("503", "Globex"),
    ]

    (match,) = match_customers([acme()], companies, [])

    assert (match.company.action, match.company.hubspot_id, match.company.matched_by) == (
        Action.LINK,
        "501",
        "domain",
    )
    assert match.ambiguities == ()


def test_same_domain_twice_is_settled_by_the_name() -> None:
    companies = [
        hubspot_company("501", "Acme Rentals", "acme-corp.com"),
        hubspot_company("504", "ACME, Inc.", "www.acme-corp.com"),
    ]

    (match,) = match_customers([acme()], companies, [])

    assert (match.company.action, match.company.hubspot_id, match.company.matched_by) == (
        Action.LINK,
        "504",
        "domain+name",
    )


def test_same_domain_twice_without_a_name_match_is_ambiguous() -> None:
    # given two unlinked companies on acme-corp.com, neither named like the customer
    companies = [
        hubspot_company("501", "Acme Rentals", "acme-corp.com"),
        hubspot_company("505", "Acme Labs", "acme-corp.com"),
    ]

    # when Acme Corp. is matched
    (match,) = match_customers([acme()], companies, [])

    # then nothing is linked or created and the candidates are reported
    assert match.company.action is Action.AMBIGUOUS
    (ambiguity,) = match.ambiguities
    assert ambiguity.kind is AmbiguityKind.SEVERAL_COMPANIES
    assert ambiguity.candidate_ids == ("501", "505")
    assert ambiguity.log_fields() == {
        "ambiguity": "several_companies",
        "customer_key": f"{REALM}:58",
        "candidate_ids": ["501", "505"],
        "other_customer_key": None,
    }


def test_name_match_links_when_no_domain_is_known() -> None:
    # given a customer with only a gmail address, and a HubSpot company "Doe Landscaping, Inc."
    landscaping, _ = shared_email_customers()
    companies = [hubspot_company("601", "Doe Landscaping, Inc.", "gmail.com")]

    (match,) = match_customers([landscaping], companies, [])

    # then gmail.com is never a domain match, but the normalised name is
    assert (match.company.action, match.company.hubspot_id, match.company.matched_by) == (
        Action.LINK,
        "601",
        "name",
    )


def test_two_unlinked_companies_with_the_same_name_are_ambiguous() -> None:
    landscaping, _ = shared_email_customers()
    companies = [hubspot_company("601", "Doe Landscaping"), hubspot_company("602", "DOE LANDSCAPING LLC")]

    (match,) = match_customers([landscaping], companies, [])

    assert match.company.action is Action.AMBIGUOUS
    assert match.ambiguities[0].candidate_ids == ("601", "602")


def test_similar_company_linked_to_another_customer_gives_a_new_company_and_a_note() -> None:
    # given the only name match already belongs to another QBO customer
    companies = [hubspot_company("501", "Acme Corp", "acme-corp.com", owner=f"{REALM}:12")]

    (match,) = match_customers([acme()], companies, [])

    assert match.company.action is Action.CREATE
    (ambiguity,) = match.ambiguities
    assert ambiguity.kind is AmbiguityKind.SIMILAR_COMPANY_LINKED_ELSEWHERE
    assert ambiguity.other_customer_key == f"{REALM}:12"


def test_no_candidate_means_create_both() -> None:
    (match,) = match_customers([acme()], [], [])

    assert (match.company.action, match.contact.action) == (Action.CREATE, Action.CREATE)


def test_existing_contact_with_the_email_is_linked() -> None:
    contacts = [hubspot_contact("901", "wile.coyote@acme-corp.com")]

    (match,) = match_customers([acme()], [], contacts)

    assert (match.contact.action, match.contact.hubspot_id, match.contact.matched_by) == (
        Action.LINK,
        "901",
        "email",
    )


def test_two_new_customers_sharing_an_email_do_not_merge_into_one_contact() -> None:
    # given two QBO customers (created 2024-05 and 2024-11) sharing jane.doe@gmail.com, nothing in HubSpot
    landscaping, snow_removal = shared_email_customers()

    # when they are matched in one batch, in either order
    for batch in ([landscaping, snow_removal], [snow_removal, landscaping]):
        by_key = {match.customer_key: match for match in match_customers(batch, [], [])}

        # then the earlier customer gets the contact, the later one gets its company but no contact link
        first, second = by_key[landscaping.key], by_key[snow_removal.key]
        assert (first.company.action, first.contact.action) == (Action.CREATE, Action.CREATE)
        assert (second.company.action, second.contact.action) == (Action.CREATE, Action.NONE)
        (ambiguity,) = second.ambiguities
        assert ambiguity.kind is AmbiguityKind.SHARED_EMAIL
        assert ambiguity.other_customer_key == landscaping.key
        assert first.ambiguities == ()


def test_contact_already_owned_by_another_customer_stays_with_it() -> None:
    # given HubSpot already has the shared contact, recorded for the later customer
    landscaping, snow_removal = shared_email_customers()
    contacts = [hubspot_contact("902", "Jane.Doe@gmail.com", owner=snow_removal.key)]

    by_key = {m.customer_key: m for m in match_customers([landscaping, snow_removal], [], contacts)}

    # then the recorded owner keeps it, whatever the creation order, and the other is flagged
    assert (by_key[snow_removal.key].contact.action, by_key[snow_removal.key].contact.hubspot_id) == (
        Action.LINK,
        "902",
    )
    assert by_key[landscaping.key].contact.action is Action.NONE
    assert by_key[landscaping.key].ambiguities[0].candidate_ids == ("902",)


def test_unowned_existing_contact_goes_to_the_first_customer_only() -> None:
    landscaping, snow_removal = shared_email_customers()
    contacts = [hubspot_contact("903", "jane.doe@gmail.com")]

    by_key = {m.customer_key: m for m in match_customers([snow_removal, landscaping], [], contacts)}

    assert by_key[landscaping.key].contact == Decision(Action.LINK, "903", "email")
    assert by_key[snow_removal.key].contact.action is Action.NONE


def test_one_unlinked_company_is_claimed_by_one_customer_per_batch() -> None:
    # given two QBO customers on the same domain and one unlinked HubSpot company there
    first = acme()
    second = CustomerIdentity(
        key=f"{REALM}:90",
        qbo_id="90",
        name="Acme Corp West",
        email="west@acme-corp.com",
        domain="acme-corp.com",
        created_at=None,
    )
    companies = [hubspot_company("501", "Acme", "acme-corp.com")]

    matches = match_customers([second, first], companies, [])

    # then the earlier customer links it and the other gets a new company, with a note
    by_key = {m.customer_key: m for m in matches}
    assert by_key[first.key].company.hubspot_id == "501"
    assert by_key[second.key].company.action is Action.CREATE
    assert by_key[second.key].ambiguities[0].other_customer_key == first.key


def test_customer_without_email_gets_no_contact() -> None:
    identity = CustomerIdentity(
        key=f"{REALM}:91", qbo_id="91", name="Cash Sales", email=None, domain=None, created_at=None
    )

    (match,) = match_customers([identity], [], [hubspot_contact("904", "someone@example.com")])

    assert match.contact.action is Action.NONE
    assert match.ambiguities == ()
