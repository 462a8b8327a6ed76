"""Which HubSpot company and contact a QBO customer belongs to: link, create, or flag (pure).

The sync searches HubSpot first (companies by ``qbo_customer_id``, by domain and by name;
contacts by email) and hands the results here with the mapped customers. The rule
(docs/mapping.md#matching):

Company, first rule that decides wins:

1. a company whose ``qbo_customer_id`` is this customer's key → link;
2. among companies not yet linked to any QBO customer: one with the same domain (free-mail
   domains never count) → link; several → the one whose normalised name also matches → link;
   still several → ambiguous;
3. among those unlinked companies: exactly one with the same normalised name → link;
   several → ambiguous;
4. otherwise create a company. If a company linked to *another* QBO customer has the same
   domain or name, the new company is still created (QBO says they are different customers and
   ``qbo_customer_id`` is unique) and the likeness is reported for a human to review.

An ambiguous company is neither created nor written: the ambiguity is reported, and setting
``qbo_customer_id`` on the right company in HubSpot resolves it on the next sync (rule 1).

Contact (HubSpot keys contacts by email):

- no usable email → no contact;
- no contact with that email → create it, owned by this customer;
- a contact with that email owned by nobody or by this customer → link;
- owned by another QBO customer, or claimed earlier in the same batch → no contact link for
  this customer, and a ``shared_email`` ambiguity is reported. Two QBO customers sharing one
  email therefore never merge into one contact: the first keeps it. "First" is the customer
  already recorded on the contact, else the earliest created in QBO (then the lowest Id).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

# The identity rules are shared with the HubSpot -> QBO flow; re-exported for this room's users.
from ledgerlink.mapping.identity import (  # noqa: F401
    FREE_MAIL_DOMAINS,
    LEGAL_SUFFIXES,
    company_domain,
    email_domain,
    first_email,
    normalise_name,
    website_domain,
)
from ledgerlink.mapping.properties import QBO_CUSTOMER_ID

# Consumer mailbox providers: a shared domain there says nothing about the company.


@dataclass(frozen=True)
class HubSpotRecord:
    """A company or contact as HubSpot search returns it (SimplePublicObject: id + properties)."""

    id: str
    properties: Mapping[str, str | None]

    @classmethod
    def from_api(cls, obj: Mapping[str, Any]) -> HubSpotRecord:
        return cls(id=str(obj["id"]), properties=dict(obj.get("properties") or {}))

    def prop(self, name: str) -> str:
        return (self.properties.get(name) or "").strip()


@dataclass(frozen=True)
class CustomerIdentity:
    """What matching needs to know about one QBO customer."""

    key: str  # "<realm>:<Id>"
    qbo_id: str
    name: str
    email: str | None
    domain: str | None
    created_at: datetime | None

    @property
    def normalised_name(self) -> str:
        return normalise_name(self.name)


class Action(StrEnum):
    LINK = "link"
    CREATE = "create"
    AMBIGUOUS = "ambiguous"  # neither create nor write; a human decides
    NONE = "none"  # no record of this kind for this customer (contact without email, shared email)


class AmbiguityKind(StrEnum):
    SEVERAL_COMPANIES = "several_companies"
    SIMILAR_COMPANY_LINKED_ELSEWHERE = "similar_company_linked_elsewhere"
    SHARED_EMAIL = "shared_email"


@dataclass(frozen=True)
class Ambiguity:
    kind: AmbiguityKind
    customer_key: str
    message: str
    candidate_ids: tuple[str, ...] = ()
    other_customer_key: str | None = None

    def log_fields(self) -> dict[str, Any]:
        """Key/value fields for a structured log line or an event payload."""
        return {
            "ambiguity": self.kind.value,
            "customer_key": self.customer_key,
            "candidate_ids": list(self.candidate_ids),
            "other_customer_key": self.other_customer_key,
        }


@dataclass(frozen=True)
class Decision:
    action: Action
    hubspot_id: str | None = None
    matched_by: str | None = None  # qbo_customer_id | domain | domain+name | name | email


@dataclass(frozen=True)
class CustomerMatch:
    customer_key: str
    company: Decision
    contact: Decision
    ambiguities: tuple[Ambiguity, ...] = field(default=())


def match_customers(
    customers: Sequence[CustomerIdentity],
    companies: Sequence[HubSpotRecord],
    contacts: Sequence[HubSpotRecord],
) -> list[CustomerMatch]:
    """Decide company and contact for each customer of one batch; results in input order.

    Customers are decided earliest-created first, so within a batch the first customer claims
    a shared email or an unlinked company and later ones see it as taken.
    """
    claimed_companies: dict[str, str] = {}  # HubSpot company id → customer key
    claimed_emails: dict[str, str] = {}  # email → customer key
    contacts_by_email: dict[str, HubSpotRecord] = {}
    for record in contacts:
        email = record.prop("email").lower()
        if email:
            contacts_by_email.setdefault(email, record)
    results: dict[str, CustomerMatch] = {}
    for customer in sorted(customers, key=_creation_order):
        company, company_ambiguities = _decide_company(customer, companies, claimed_companies)
        if company.action in (Action.LINK, Action.CREATE) and company.hubspot_id:
            claimed_companies[company.hubspot_id] = customer.key
        contact, contact_ambiguities = _decide_contact(customer, contacts_by_email, claimed_emails)
        if contact.action in (Action.LINK, Action.CREATE) and customer.email:
            claimed_emails[customer.email] = customer.key
        results[customer.key] = CustomerMatch(
            customer_key=customer.key,
            company=company,
            contact=contact,
            ambiguities=company_ambiguities + contact_ambiguities,
        )
    return [results[customer.key] for customer in customers]


def _creation_order(customer: CustomerIdentity) -> tuple[float, int, str]:
    created = customer.created_at.timestamp() if customer.created_at else float("inf")
    numeric_id = int(customer.qbo_id) if customer.qbo_id.isdigit() else 2**63
    return (created, numeric_id, customer.qbo_id)


def _decide_company(
    customer: CustomerIdentity, companies: Sequence[HubSpotRecord], claimed: Mapping[str, str]
) -> tuple[Decision, tuple[Ambiguity, ...]]:
    for company in companies:
        if company.prop(QBO_CUSTOMER_ID) == customer.key:
            return Decision(Action.LINK, company.id, "qbo_customer_id"), ()

    def owner(company: HubSpotRecord) -> str:
        return company.prop(QBO_CUSTOMER_ID) or claimed.get(company.id, "")

    name = customer.normalised_name
    same_domain = [c for c in companies if customer.domain and _company_domain(c) == customer.domain]
    same_name = [c for c in companies if name and normalise_name(c.prop("name")) == name]
    free_by_domain = [c for c in same_domain if not owner(c)]
    free_by_name = [c for c in same_name if not owner(c)]

    if len(free_by_domain) == 1:
        return Decision(Action.LINK, free_by_domain[0].id, "domain"), ()
    if len(free_by_domain) > 1:
        narrowed = [c for c in free_by_domain if name and normalise_name(c.prop("name")) == name]
        if len(narrowed) == 1:
            return Decision(Action.LINK, narrowed[0].id, "domain+name"), ()
        return Decision(Action.AMBIGUOUS), (
            Ambiguity(
                AmbiguityKind.SEVERAL_COMPANIES,
                customer.key,
                f"{len(free_by_domain)} unlinked HubSpot companies share the domain {customer.domain}",
                candidate_ids=_ids(free_by_domain),
            ),
        )
    if len(free_by_name) == 1:
        return Decision(Action.LINK, free_by_name[0].id, "name"), ()
    if len(free_by_name) > 1:
        return Decision(Action.AMBIGUOUS), (
            Ambiguity(
                AmbiguityKind.SEVERAL_COMPANIES,
                customer.key,
                f"{len(free_by_name)} unlinked HubSpot companies have the name {name!r}",
                candidate_ids=_ids(free_by_name),
            ),
        )
    taken = _unique_records(same_domain + same_name)
    if taken:
        return Decision(Action.CREATE), (
            Ambiguity(
                AmbiguityKind.SIMILAR_COMPANY_LINKED_ELSEWHERE,
                customer.key,
                "a HubSpot company with the same domain or name is linked to another QBO customer; "
                "a separate company is created",
                candidate_ids=_ids(taken),
                other_customer_key=owner(taken[0]) or None,
            ),
        )
    return Decision(Action.CREATE), ()


def _decide_contact(
    customer: CustomerIdentity, contacts_by_email: Mapping[str, HubSpotRecord], claimed: Mapping[str, str]
) -> tuple[Decision, tuple[Ambiguity, ...]]:
    if not customer.email:
        return Decision(Action.NONE), ()
    existing = contacts_by_email.get(customer.email)
    owner = (existing.prop(QBO_CUSTOMER_ID) if existing else "") or claimed.get(customer.email, "")
    if owner and owner != customer.key:
        return Decision(Action.NONE), (
            Ambiguity(
                AmbiguityKind.SHARED_EMAIL,
                customer.key,
                "the email is already the contact of another QBO customer; "
                "this customer gets its company but no contact link",
                candidate_ids=(existing.id,) if existing else (),
                other_customer_key=owner,
            ),
        )
    if existing:
        return Decision(Action.LINK, existing.id, "email"), ()
    return Decision(Action.CREATE), ()


def _company_domain(company: HubSpotRecord) -> str | None:
    return website_domain(company.prop("domain")) or website_domain(company.prop("website"))


def _ids(records: Sequence[HubSpotRecord]) -> tuple[str, ...]:
    return tuple(record.id for record in records)


def _unique_records(records: Sequence[HubSpotRecord]) -> list[HubSpotRecord]:
    seen: dict[str, HubSpotRecord] = {}
    for record in records:
        seen.setdefault(record.id, record)
    return list(seen.values())
