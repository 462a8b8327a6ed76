"""QBO customers → HubSpot companies and contacts, for one realm and one batch.

For the customers a batch must write (changed ones, and those its deals name that have no link yet):

1. map each with :func:`~ledgerlink.deal_sync.mapping.map_customer` (a :class:`MappingError` fails that
   customer only);
2. search HubSpot once for the candidates: companies by ``qbo_customer_id`` and by domain (one search
   with two filter groups), by the first word of the normalised name (CONTAINS_TOKEN, up to five
   names a search), and contacts by email (IN). Linked customers need no company search: the link
   names their company;
3. decide with :func:`~ledgerlink.deal_sync.matching.match_customers` (docs/mapping.md#matching): link to an
   existing record instead of duplicating it, create, or flag an ambiguity (logged and counted; a
   human sets ``qbo_customer_id`` on the right company and the next sync links it);
4. write: a created or already-owned company/contact gets the full mapped properties (batch upsert
   by ``qbo_customer_id`` / ``email``); an existing, unowned HubSpot record that matched by domain,
   name or email only gets the identity properties (``qbo_customer_id``, ``qbo_realm_id``) — its
   curated CRM data is left as the sales team wrote it; then contact → company associations.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aws_lambda_powertools import Logger

from ledgerlink.crosswalk import Link
from ledgerlink.deal_sync.mapping import CompanyContext, CustomerMapping, map_customer
from ledgerlink.deal_sync.matching import (
    Action,
    CustomerMatch,
    HubSpotRecord,
    match_customers,
    normalise_name,
)
from ledgerlink.hubspot.client import (
    MAX_FILTER_GROUPS,
    MAX_IN_VALUES,
    AssociationsFailed,
    HubSpotClient,
    HubSpotError,
    Update,
    Upsert,
)
from ledgerlink.mapping import properties as prop
from ledgerlink.mapping.errors import MappingError

logger = Logger(child=True)

COMPANY_SEARCH_PROPERTIES = ("name", "domain", "website", prop.QBO_CUSTOMER_ID)
CONTACT_SEARCH_PROPERTIES = ("email", "firstname", "lastname", prop.QBO_CUSTOMER_ID)


@dataclass
class Resolved:
    """Where one customer landed in HubSpot, or why it did not."""

    customer_key: str
    company_id: str | None = None
    contact_id: str | None = None
    email: str | None = None
    name: str | None = None
    error: Exception | None = None
    ambiguities: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class CustomerCounts:
    companies_created: int = 0
    companies_linked: int = 0
    contacts_created: int = 0
    contacts_linked: int = 0
    ambiguities: int = 0


def resolve_customers(
    hubspot: HubSpotClient,
    context: CompanyContext,
    customers: Mapping[str, Mapping[str, Any]],
    *,
    changed: set[str],
    links: Mapping[str, Link],
) -> tuple[dict[str, Resolved], CustomerCounts]:
    """Write the companies/contacts of ``customers`` (QBO Id → entity); results by QBO Id.

    ``changed`` are the Ids whose QBO data changed (their owned records get every property again);
    ``links`` are the existing customer links by QBO Id.
    """
    counts = CustomerCounts()
    results: dict[str, Resolved] = {}
    mapped: dict[str, CustomerMapping] = {}
    for qbo_id, raw in customers.items():
        key = context.key(qbo_id)
        try:
            mapped[qbo_id] = map_customer(raw, context)
        except MappingError as error:
            results[qbo_id] = Resolved(customer_key=key, error=error)
    if not mapped:
        return results, counts

    companies = _candidate_companies(hubspot, mapped, links)
    contacts = _candidate_contacts(hubspot, mapped.values())
    matches = match_customers([m.identity for m in mapped.values()], companies, contacts)
    by_key = {match.customer_key: match for match in matches}
    contacts_by_id = {record.id: record for record in contacts}

    company_upserts: list[Upsert] = []
    company_updates: list[Update] = []
    contact_upserts: list[Upsert] = []
    contact_updates: list[Update] = []
    for qbo_id, mapping in mapped.items():
        key = mapping.identity.key
        match = by_key[key]
        resolved = Resolved(customer_key=key, email=mapping.identity.email, name=mapping.identity.name)
        results[qbo_id] = resolved
        for ambiguity in match.ambiguities:
            counts.ambiguities += 1
            resolved.ambiguities.append(ambiguity.log_fields())
            logger.warning(
                "customer match is ambiguous", extra={**ambiguity.log_fields(), "detail": ambiguity.message}
            )
        _plan_company(mapping, match, qbo_id in changed, company_upserts, company_updates, resolved, counts)
        _plan_contact(
            mapping,
            match,
            qbo_id in changed,
            contacts_by_id,
            contact_upserts,
            contact_updates,
            resolved,
            counts,
        )

    # Upserts come back by their unique property (the identity key, the contact's email); updates by
    # HubSpot id, traced to their customer through the qbo_customer_id property they carry.
    key_owners = {mapping.identity.key: qbo_id for qbo_id, mapping in mapped.items()}
    email_owners = {m.contact.id: qbo_id for qbo_id, m in mapped.items() if m.contact is not None}
    companies_written = _write(
        hubspot, "companies", company_upserts, company_updates, key_owners, key_owners, results
    )
    for qbo_id, company_id in companies_written.items():
        results[qbo_id].company_id = company_id
    contacts_written = _write(
        hubspot, "contacts", contact_upserts, contact_updates, email_owners, key_owners, results
    )
    for qbo_id, contact_id in contacts_written.items():
        results[qbo_id].contact_id = contact_id

    pairs: dict[tuple[str, str], str] = {}  # (contact id, company id) -> QBO Id
    for qbo_id, resolved in results.items():
        link = links.get(qbo_id)
        known = (link.hubspot_id, link.contact_id) if link is not None else None
        pair = (resolved.company_id, resolved.contact_id)
        if resolved.error is None and resolved.company_id and resolved.contact_id and known != pair:
            pairs[(resolved.contact_id, resolved.company_id)] = qbo_id
    if pairs:
        try:
            hubspot.associate_default("contacts", "companies", pairs)
        except AssociationsFailed as error:
            # A refused pair fails its own customer (e.g. a record deleted in HubSpot meanwhile).
            for pair, reason in error.failed.items():
                if pair in pairs:
                    results[pairs[pair]].error = reason
    return results, counts


def identity_properties(mapping: CustomerMapping, realm_id: str) -> dict[str, str]:
    return {prop.QBO_CUSTOMER_ID: mapping.identity.key, prop.QBO_REALM_ID: realm_id}


def _plan_company(
    mapping: CustomerMapping,
    match: CustomerMatch,
    changed: bool,
    upserts: list[Upsert],
    updates: list[Update],
    resolved: Resolved,
    counts: CustomerCounts,
) -> None:
    decision = match.company
    company = mapping.company
    if decision.action is Action.CREATE:
        upserts.append(Upsert(company.id_property, company.id, company.properties))
        counts.companies_created += 1
    elif decision.action is Action.LINK and decision.hubspot_id:
        resolved.company_id = decision.hubspot_id
        if decision.matched_by == "qbo_customer_id":
            if changed:  # our own record: QBO's current data
                upserts.append(Upsert(company.id_property, company.id, company.properties))
        else:
            updates.append(Update(decision.hubspot_id, identity_properties(mapping, _realm(mapping))))
            counts.companies_linked += 1


def _plan_contact(
    mapping: CustomerMapping,
    match: CustomerMatch,
    changed: bool,
    contacts_by_id: Mapping[str, HubSpotRecord],
    upserts: list[Upsert],
    updates: list[Update],
    resolved: Resolved,
    counts: CustomerCounts,
) -> None:
    decision = match.contact
    contact = mapping.contact
    if contact is None:
        return
    if decision.action is Action.CREATE:
        upserts.append(Upsert(contact.id_property, contact.id, contact.properties))
        counts.contacts_created += 1
    elif decision.action is Action.LINK and decision.hubspot_id:
        resolved.contact_id = decision.hubspot_id
        existing = contacts_by_id.get(decision.hubspot_id)
        owner = existing.prop(prop.QBO_CUSTOMER_ID) if existing is not None else ""
        if owner == mapping.identity.key:
            if changed:
                upserts.append(Upsert(contact.id_property, contact.id, contact.properties))
        else:
            updates.append(Update(decision.hubspot_id, identity_properties(mapping, _realm(mapping))))
            counts.contacts_linked += 1


def _realm(mapping: CustomerMapping) -> str:
    return str(mapping.company.properties[prop.QBO_REALM_ID])


def _write(
    hubspot: HubSpotClient,
    object_type: str,
    upserts: list[Upsert],
    updates: list[Update],
    upsert_owners: Mapping[str, str],
    key_owners: Mapping[str, str],
    results: Mapping[str, Resolved],
) -> dict[str, str]:
    """Send the writes of one object type; a failure lands on its customer's result.

    Returns the upserted records' ids by QBO Id. ``upsert_owners`` maps each upsert id, ``key_owners``
    each customer key (an update's qbo_customer_id property), to its QBO Id.
    """
    written: dict[str, str] = {}
    if upserts:
        outcome = hubspot.batch_upsert(object_type, upserts)
        for upsert_id, record in outcome.written.items():
            written[upsert_owners[upsert_id]] = record.id
        for upsert_id, error in outcome.failed.items():
            results[upsert_owners[upsert_id]].error = error
    if updates:
        outcome = hubspot.batch_update(object_type, updates)
        for update in updates:
            if update.id in outcome.failed:
                qbo_id = key_owners[update.properties[prop.QBO_CUSTOMER_ID]]
                results[qbo_id].error = outcome.failed[update.id]
    return written


def _candidate_companies(
    hubspot: HubSpotClient, mapped: Mapping[str, CustomerMapping], links: Mapping[str, Link]
) -> list[HubSpotRecord]:
    """Linked customers' companies from their links; unlinked customers' candidates from HubSpot search."""
    found: dict[str, HubSpotRecord] = {}
    unlinked: list[CustomerMapping] = []
    for qbo_id, mapping in mapped.items():
        link = links.get(qbo_id)
        if link is not None and link.hubspot_id:
            found[link.hubspot_id] = HubSpotRecord(
                link.hubspot_id, {prop.QBO_CUSTOMER_ID: mapping.identity.key, "name": mapping.identity.name}
            )
        else:
            unlinked.append(mapping)
    if not unlinked:
        return list(found.values())
    groups: list[dict[str, Any]] = []
    keys = sorted({m.identity.key for m in unlinked})
    domains = sorted({m.identity.domain for m in unlinked if m.identity.domain})
    for chunk in _chunks(keys, MAX_IN_VALUES):
        groups.append(_in_group(prop.QBO_CUSTOMER_ID, chunk))
    for chunk in _chunks(domains, MAX_IN_VALUES):
        groups.append(_in_group("domain", chunk))
    tokens = sorted({_name_token(m.identity.name) for m in unlinked} - {""})
    groups.extend(
        {"filters": [{"propertyName": "name", "operator": "CONTAINS_TOKEN", "value": token}]}
        for token in tokens
    )
    for chunk in _chunks(groups, MAX_FILTER_GROUPS):
        for record in hubspot.search("companies", chunk, COMPANY_SEARCH_PROPERTIES):
            found.setdefault(record.id, HubSpotRecord(record.id, dict(record.properties)))
    return list(found.values())


def _candidate_contacts(hubspot: HubSpotClient, mapped: Iterable[CustomerMapping]) -> list[HubSpotRecord]:
    emails = sorted({m.identity.email for m in mapped if m.identity.email})
    groups = [_in_group("email", chunk) for chunk in _chunks(emails, MAX_IN_VALUES)]
    found: dict[str, HubSpotRecord] = {}
    for chunk in _chunks(groups, MAX_FILTER_GROUPS):
        for record in hubspot.search("contacts", chunk, CONTACT_SEARCH_PROPERTIES):
            found[record.id] = HubSpotRecord(record.id, dict(record.properties))
    return list(found.values())


def _in_group(property_name: str, values: Sequence[str]) -> dict[str, Any]:
    return {"filters": [{"propertyName": property_name, "operator": "IN", "values": list(values)}]}


def _name_token(name: str) -> str:
    """The first word of the normalised name: HubSpot's CONTAINS_TOKEN finds every company carrying it,
    and matching then compares whole normalised names."""
    words = normalise_name(name).split()
    return words[0] if words else ""


def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
    return [list(items[start : start + size]) for start in range(0, len(items), size)]


__all__ = ["CustomerCounts", "HubSpotError", "Resolved", "identity_properties", "resolve_customers"]
