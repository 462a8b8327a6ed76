"""Which QBO customer a deal bills (docs/document-sync.md#customer).

First rule that finds one wins:

1. **the crosswalk**: the deal's company (else its first contact with one) carries ``qbo_customer_id`` =
   ``<realm>:<Id>`` of this company's books — written by the deal sync when it made or matched that
   record, or by this flow when it made the customer — and the customer still exists;
2. **matching, by the deal sync's identity rules** (:mod:`ledgerlink.mapping.identity`): one QBO customer
   whose ``PrimaryEmailAddr`` is a contact's e-mail; else one whose ``DisplayName`` or ``CompanyName``
   is the company's name (compared normalised: "Acme, Inc." is "ACME"). A candidate already linked to
   another HubSpot company is someone else's and never taken;
3. **create** one, named after the company (else the contact, else the e-mail). QBO refuses a
   ``DisplayName`` another customer has (Fault 6240), so a taken name gets a deterministic suffix — the
   company's domain or the contact's e-mail, then ``HubSpot <record id>`` — and a second contact of a
   company never fails.

The customer found or made is written back on the HubSpot record (``qbo_customer_id``) and in the
crosswalk (``<realm>#Customer#<Id>`` → the company or contact), so the next deal of that company, and the
deal sync, find it at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from aws_lambda_powertools import Logger

from ledgerlink.crosswalk import EntityKey, Link
from ledgerlink.document_sync.deal import CrmCompany, CrmContact, CrmDeal
from ledgerlink.document_sync.errors import DocumentRefused
from ledgerlink.hubspot.client import Update
from ledgerlink.mapping import properties as prop
from ledgerlink.mapping.identity import normalise_name
from ledgerlink.qbo.client import QboFault, quote

logger = Logger(child=True)

DISPLAY_NAME_MAX: Final = 100  # QBO's DisplayName limit
NAME_ATTEMPTS: Final = 3


class CustomerBooks(Protocol):
    """The QBO calls customer resolution makes (``ledgerlink.qbo.client.QboClient``)."""

    def query(self, realm_id: str, statement: str) -> list[dict[str, Any]]: ...

    def read(self, realm_id: str, entity: str, entity_id: str) -> dict[str, Any] | None: ...

    def create(
        self, realm_id: str, entity: str, body: Mapping[str, Any], *, request_id: str
    ) -> dict[str, Any]: ...


class CustomerLinks(Protocol):
    def get_many(self, keys: Sequence[EntityKey]) -> dict[EntityKey, Link]: ...

    def claim_for_deal(self, key: EntityKey, deal_id: str) -> None: ...


class CrmWriter(Protocol):
    def batch_update(self, object_type: str, updates: Sequence[Update]) -> Any: ...


@dataclass(frozen=True)
class QboCustomer:
    id: str
    display_name: str
    currency: str | None
    matched_by: str  # "crosswalk" | "email" | "name" | "created"


class CustomerResolver:
    def __init__(
        self,
        *,
        qbo: CustomerBooks,
        links: CustomerLinks,
        hubspot: CrmWriter,
        realm_id: str,
        connection: str,
    ) -> None:
        self.qbo = qbo
        self.links = links
        self.hubspot = hubspot
        self.realm_id = realm_id
        self.connection = connection

    def resolve(self, deal: CrmDeal, *, currency: str | None) -> QboCustomer:
        found = self._from_crosswalk(deal) or self._matched(deal)
        if found is None:
            found = self._create(deal, currency)
        self._remember(deal, found)
        return found

    # ---- 1. crosswalk

    def _from_crosswalk(self, deal: CrmDeal) -> QboCustomer | None:
        prefix = f"{self.realm_id}:"
        keys = [deal.company.qbo_customer_key] if deal.company and deal.company.qbo_customer_key else []
        for key in keys:
            if not key.startswith(prefix):
                continue  # another company's books (a portal can sync with several)
            customer = self.qbo.read(self.realm_id, "Customer", key[len(prefix) :])
            if customer is not None and customer.get("Active", True) is not False:
                return _customer(customer, "crosswalk")
        return None

    # ---- 2. matching

    def _matched(self, deal: CrmDeal) -> QboCustomer | None:
        for contact in deal.contacts:
            if not contact.email:
                continue
            statement = f"select * from Customer where PrimaryEmailAddr = {quote(contact.email)}"  # noqa: S608 - quoted
            rows = self._query(statement)
            candidates = self._free(deal, rows)
            if len(candidates) == 1:
                return _customer(candidates[0], "email")
            if len(candidates) > 1 and deal.company is not None:
                wanted = normalise_name(deal.company.name)
                named = [row for row in candidates if _names_match(row, wanted)]
                if len(named) == 1:
                    return _customer(named[0], "email")
        name = deal.company.name if deal.company is not None else ""
        if name:
            wanted = normalise_name(name)
            by_name: list[dict[str, Any]] = []
            for field in ("DisplayName", "CompanyName"):
                by_name.extend(self._query(f"select * from Customer where {field} = {quote(name)}"))  # noqa: S608
            unique = {str(row.get("Id")): row for row in by_name if _names_match(row, wanted)}
            candidates = self._free(deal, list(unique.values()))
            if len(candidates) == 1:
                return _customer(candidates[0], "name")
        return None

    def _query(self, statement: str) -> list[dict[str, Any]]:
        return [
            row for row in self.qbo.query(self.realm_id, statement) if row.get("Active", True) is not False
        ]

    def _free(self, deal: CrmDeal, rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """The candidates not linked to another HubSpot company than the deal's."""
        if not rows:
            return []
        keys = {str(row["Id"]): EntityKey(self.realm_id, "Customer", str(row["Id"])) for row in rows}
        links = self.links.get_many(list(keys.values()))
        mine = {deal.company.id} if deal.company else set()
        mine |= {contact.id for contact in deal.contacts}
        free = []
        for row in rows:
            link = links.get(keys[str(row["Id"])])
            if link is None or not link.hubspot_id or link.hubspot_id in mine:
                free.append(row)
        return free

    # ---- 3. create

    def _create(self, deal: CrmDeal, currency: str | None) -> QboCustomer:
        contact = next((c for c in deal.contacts if c.email), deal.contacts[0] if deal.contacts else None)
        record_id = deal.company.id if deal.company else (contact.id if contact else f"deal-{deal.id}")
        names = display_names(deal.company, contact, record_id)
        if not names:
            raise DocumentRefused(deal.id, "the deal has no company and no contact to bill")
        body = customer_body(deal.company, contact, currency)
        last: QboFault | None = None
        for attempt, name in enumerate(names[:NAME_ATTEMPTS]):
            request_id = _request_id(self.connection, record_id, "customer", attempt)
            try:
                created = self.qbo.create(
                    self.realm_id, "Customer", {**body, "DisplayName": name}, request_id=request_id
                )
            except QboFault as fault:
                if not fault.is_duplicate_name:
                    raise
                last = fault
                logger.info("customer name taken in QBO; trying the next", extra={"attempt": attempt + 1})
                continue
            return _customer(created, "created")
        raise DocumentRefused(
            deal.id,
            f"QBO refused every customer name tried ({', '.join(names[:NAME_ATTEMPTS])}): {last}",
            reason="customer_name_taken",
        )

    # ---- afterwards

    def _remember(self, deal: CrmDeal, customer: QboCustomer) -> None:
        key = f"{self.realm_id}:{customer.id}"
        record: CrmCompany | CrmContact | None = deal.company or (deal.contacts[0] if deal.contacts else None)
        if record is None:
            return
        object_type = "companies" if isinstance(record, CrmCompany) else "contacts"
        current = record.qbo_customer_key if isinstance(record, CrmCompany) else ""
        if current != key and not (current and not current.startswith(f"{self.realm_id}:")):
            self.hubspot.batch_update(object_type, [Update(record.id, {prop.QBO_CUSTOMER_ID: key})])
        if customer.matched_by in ("created", "email", "name"):
            self.links.claim_for_deal(EntityKey(self.realm_id, "Customer", customer.id), record.id)


def display_names(company: CrmCompany | None, contact: CrmContact | None, record_id: str) -> list[str]:
    """The DisplayNames to try, in order: the name, the name with the domain or e-mail, the name with the
    HubSpot id. Deterministic: the same record always tries the same names."""
    base = (company.name if company and company.name else "") or (contact.full_name if contact else "")
    base = base or (contact.email if contact and contact.email else "")
    base = " ".join(base.replace(":", " ").split())  # QBO refuses a colon in a name
    if not base:
        return []
    discriminator = (company.domain if company and company.domain else "") or (
        contact.email if contact and contact.email else ""
    )
    names = [base]
    if discriminator and discriminator.casefold() != base.casefold():
        names.append(f"{base} ({discriminator})")
    names.append(f"{base} (HubSpot {record_id})")
    return [_fit(name) for name in names]


def customer_body(
    company: CrmCompany | None, contact: CrmContact | None, currency: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {}
    if company is not None and company.name:
        body["CompanyName"] = company.name[:100]
    if contact is not None:
        if contact.first_name:
            body["GivenName"] = contact.first_name[:100]
        if contact.last_name:
            body["FamilyName"] = contact.last_name[:100]
        if contact.email:
            body["PrimaryEmailAddr"] = {"Address": contact.email}
    phone = (company.phone if company else "") or (contact.phone if contact else "")
    if phone:
        body["PrimaryPhone"] = {"FreeFormNumber": phone[:30]}
    if company is not None and company.website:
        body["WebAddr"] = {"URI": company.website[:1000]}
    if company is not None and company.address:
        address = company.address
        bill = {
            "Line1": address.get("address", ""),
            "Line2": address.get("address2", ""),
            "City": address.get("city", ""),
            "CountrySubDivisionCode": address.get("state", ""),
            "PostalCode": address.get("zip", ""),
            "Country": address.get("country", ""),
        }
        body["BillAddr"] = {key: value for key, value in bill.items() if value}
    if currency:
        body["CurrencyRef"] = {"value": currency}
    return body


def _names_match(row: Mapping[str, Any], wanted: str) -> bool:
    return bool(wanted) and wanted in {
        normalise_name(str(row.get("DisplayName") or "")),
        normalise_name(str(row.get("CompanyName") or "")),
    }


def _customer(row: Mapping[str, Any], matched_by: str) -> QboCustomer:
    currency = (row.get("CurrencyRef") or {}).get("value")
    return QboCustomer(
        id=str(row["Id"]),
        display_name=str(row.get("DisplayName") or ""),
        currency=str(currency) if currency else None,
        matched_by=matched_by,
    )


def _fit(name: str) -> str:
    if len(name) <= DISPLAY_NAME_MAX:
        return name
    # Keep the suffix (what makes the name unique) and shorten the base.
    if name.endswith(")") and " (" in name:
        base, _, suffix = name.rpartition(" (")
        suffix = " (" + suffix
        return base[: DISPLAY_NAME_MAX - len(suffix)].rstrip() + suffix
    return name[:DISPLAY_NAME_MAX]


def _request_id(connection: str, record_id: str, kind: str, attempt: int) -> str:
    digest = hashlib.sha256(f"{connection}|{record_id}|{kind}|{attempt}".encode()).hexdigest()
    return f"ll-{digest[:40]}"
