"""The customers of one realm's pass: which must be resolved, their links, and the stale links healed.

The customers that changed and the customers the deals to write name without a link yet are resolved
against HubSpot (:func:`~ledgerlink.deal_sync.customers.resolve_customers`: matched, created or written);
the other deals use the customer's link. A link naming a company or contact a user deleted in HubSpot is
dropped and its customer resolved like a new one (docs/deal-sync.md#records-deleted-in-hubspot).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_lambda_powertools import Logger

from ledgerlink.consumer.outcome import Outcome, OutcomeStatus
from ledgerlink.crosswalk import EntityKey, Link
from ledgerlink.deal_sync.customers import CustomerCounts, Resolved, resolve_customers
from ledgerlink.deal_sync.documents import Doc, entity_version, lost_race
from ledgerlink.deal_sync.inbox import ChangeEvent
from ledgerlink.deal_sync.mapping import CompanyContext
from ledgerlink.deal_sync.ports import SyncServices

logger = Logger(child=True)


class RealmCustomers:
    """Resolves one realm's customers for its pass and records their links."""

    def __init__(self, service: SyncServices, realm_id: str) -> None:
        self.s = service
        self.realm_id = realm_id

    def key(self, customer_id: str) -> EntityKey:
        return EntityKey(self.realm_id, "Customer", customer_id)

    def _fetch(self, ids: set[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        return self.s.qbo.read_many(self.realm_id, "Customer", ids)

    def resolve(
        self,
        live: list[ChangeEvent],
        docs: list[Doc],
        links: dict[EntityKey, Link],
        context: CompanyContext,
        *,
        gone: Mapping[str, set[str]] | None = None,
    ) -> tuple[dict[str, Resolved], dict[str, Outcome]]:
        """Resolve the customers that changed and the unlinked customers of the deals to write.

        A customer whose link names a company or contact HubSpot no longer has (in ``gone``, by object
        type, when HubSpot refused a write naming it; else found by :meth:`_stale_customer_links`) has
        its link dropped and is resolved like a new customer.
        """
        s = self.s
        changed_ids = {e.entity_id for e in live if e.entity == "Customer"}
        doc_customers = {
            str((doc.raw.get("CustomerRef") or {}).get("value"))
            for doc in docs
            if doc.raw is not None and (doc.raw.get("CustomerRef") or {}).get("value") is not None
        }
        wanted = changed_ids | doc_customers
        new_keys = [self.key(cid) for cid in wanted if self.key(cid) not in links]
        links.update(s.links.get_many(new_keys))
        customer_links = {cid: links[self.key(cid)] for cid in wanted if self.key(cid) in links}
        stale = self._stale_customer_links(docs, customer_links, changed_ids, gone)
        for cid, stale_link in stale.items():
            s.links.forget(stale_link)
            del customer_links[cid]
            links.pop(stale_link.key, None)
        unlinked = {
            cid for cid in doc_customers if cid not in customer_links or not customer_links[cid].hubspot_id
        }
        fetched = self._fetch(changed_ids | unlinked)

        outcomes: dict[str, Outcome] = {}
        to_resolve: dict[str, dict[str, Any]] = {}
        versions: dict[str, tuple[int, int]] = {}
        for cid, raw in fetched.items():
            versions[cid] = entity_version(raw, context)
            link = customer_links.get(cid)
            if (
                cid in changed_ids
                and cid not in unlinked
                and link is not None
                and link.already_synced(*versions[cid])
            ):
                outcomes[cid] = Outcome(OutcomeStatus.STALE)
                s.metrics.count("StaleEventsSkipped")
                continue
            to_resolve[cid] = raw
        for cid in changed_ids - set(fetched):
            outcomes[cid] = Outcome(OutcomeStatus.UNCHANGED)  # gone from QBO: the CRM keeps its records

        results: dict[str, Resolved] = {}
        if to_resolve:
            results, counts = resolve_customers(
                s.hubspot, context, to_resolve, changed=changed_ids, links=customer_links
            )
            self._count_customers(counts)
        for cid, resolved in results.items():
            if resolved.error is not None:
                outcomes[cid] = Outcome.failure(resolved.error)
                continue
            if not resolved.company_id and not resolved.contact_id:
                # Ambiguous: nothing linked, so nothing recorded; the next change tries again.
                outcomes[cid] = Outcome(OutcomeStatus.SYNCED, detail={"ambiguous": "true"})
                continue
            link = Link(
                key=self.key(cid),
                hubspot_id=resolved.company_id,
                contact_id=resolved.contact_id,
                synced_ms=versions[cid][0],
                sync_token=versions[cid][1],
                status="linked",
            )
            # A customer written because a deal names it records the deal's event instead.
            event_id = next(
                (e.event_id for e in live if e.entity == "Customer" and e.entity_id == cid), "via-deal"
            )
            if s.links.save(link, event_id=event_id):
                links[link.key] = link
                outcomes[cid] = Outcome(
                    OutcomeStatus.SYNCED,
                    detail={
                        k: v
                        for k, v in (("company_id", resolved.company_id), ("contact_id", resolved.contact_id))
                        if v
                    },
                )
            else:
                outcomes[cid] = lost_race()
        self._report_healed(stale, results)
        # Deals of customers whose link was known and unchanged use the link.
        for cid, link in customer_links.items():
            if cid not in results and link.hubspot_id:
                results[cid] = Resolved(
                    customer_key=context.key(cid), company_id=link.hubspot_id, contact_id=link.contact_id
                )
        return results, outcomes

    def _stale_customer_links(
        self,
        docs: list[Doc],
        customer_links: Mapping[str, Link],
        changed_ids: set[str],
        gone: Mapping[str, set[str]] | None,
    ) -> dict[str, Link]:
        """The customer links that name a company or contact HubSpot no longer has (a user deleted it).

        Known from ``gone`` when HubSpot refused a write naming it. Otherwise checked only where no write
        would tell: a deal already associated with the customer's recorded company/contact gets no
        association call (they are made only where new), so those ids are batch-read, one call per
        object type and batch. Deals still to be associated, and changed customers (written again
        anyway), need no read: their writes name the records and HubSpot's refusal says which are gone.
        """
        missing: dict[str, set[str]] = {t: set(ids) for t, ids in (gone or {}).items()}
        if gone is None:
            to_check: dict[str, set[str]] = {"companies": set(), "contacts": set()}
            for doc in docs:
                cid = _customer_id(doc)
                link = customer_links.get(cid) if cid is not None else None
                deal = doc.link
                # Changed and company-less customers are resolved (searched, written) again anyway.
                if link is None or not link.hubspot_id or cid in changed_ids:
                    continue
                if deal is None or not deal.hubspot_id:
                    continue
                if link.hubspot_id == deal.company_id:
                    to_check["companies"].add(link.hubspot_id)
                if link.contact_id and link.contact_id == deal.contact_id:
                    to_check["contacts"].add(link.contact_id)
            for object_type, ids in to_check.items():
                if ids:
                    found = self.s.hubspot.batch_read(object_type, ids, ["hs_object_id"])
                    missing.setdefault(object_type, set()).update(ids - set(found))
        companies, contacts = missing.get("companies", set()), missing.get("contacts", set())
        return {
            cid: link
            for cid, link in customer_links.items()
            if (link.hubspot_id and link.hubspot_id in companies)
            or (link.contact_id and link.contact_id in contacts)
        }

    def _report_healed(self, stale: Mapping[str, Link], results: Mapping[str, Resolved]) -> None:
        for cid, old in stale.items():
            resolved = results.get(cid)
            fields = {
                "realm_id": self.realm_id,
                "entity": "Customer",
                "entity_id": cid,
                "old_company_id": old.hubspot_id,
                "old_contact_id": old.contact_id,
                "new_company_id": resolved.company_id if resolved is not None else None,
                "new_contact_id": resolved.contact_id if resolved is not None else None,
            }
            if resolved is None or resolved.error is not None:
                logger.warning("stale link dropped, customer not resolved again", extra=fields)
                continue
            logger.info("stale link healed", extra=fields)
            self.s.metrics.count("StaleLinksHealed")

    def _count_customers(self, counts: CustomerCounts) -> None:
        metrics = self.s.metrics
        for name, value in (
            ("CompaniesCreated", counts.companies_created),
            ("CompaniesLinked", counts.companies_linked),
            ("ContactsCreated", counts.contacts_created),
            ("ContactsLinked", counts.contacts_linked),
            ("AmbiguousMatches", counts.ambiguities),
        ):
            if value:
                metrics.count(name, value)


def _customer_id(doc: Doc) -> str | None:
    """The QBO Id of the customer a document names, if it has one."""
    value = ((doc.raw or {}).get("CustomerRef") or {}).get("value")
    return str(value) if value is not None else None
