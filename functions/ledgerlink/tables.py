"""Key schemas of the DynamoDB tables, shared by the code, the CDK stack and the local stack.

| table | partition key | sort key | TTL attribute | holds |
|---|---|---|---|---|
| idempotency | ``id`` | — | ``expiration`` | Powertools Idempotency records (one per processed event) |
| links | ``pk`` | ``sk`` | ``expires_at`` | the crosswalk: QBO realm + entity + id ↔ HubSpot object id, last synced LastUpdatedTime; the Outlook items of each invoice; the HubSpot → QBO audit trail of each deal (``ledgerlink.audit``, kept for ever: written without ``expires_at``); the sync history (``ledgerlink.history``, ``history#`` rows, kept ``LEDGERLINK_HISTORY_TTL_DAYS``) |
| vendor state | ``pk`` | ``sk`` | ``expires_at`` | state shared by concurrent Lambdas: rate-limit windows, circuit breakers, OAuth token + refresh lease |
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TableKeys:
    partition_key: str
    sort_key: str | None
    ttl_attribute: str | None


@dataclass(frozen=True)
class IndexKeys:
    """A global secondary index: its name and key attributes (projection ALL)."""

    name: str
    partition_key: str
    sort_key: str


IDEMPOTENCY = TableKeys(partition_key="id", sort_key=None, ttl_attribute="expiration")
# Only rows that carry ``expires_at`` expire (the sync history); crosswalk and audit rows never do.
LINKS = TableKeys(partition_key="pk", sort_key="sk", ttl_attribute="expires_at")
VENDOR_STATE = TableKeys(partition_key="pk", sort_key="sk", ttl_attribute="expires_at")
# Owed invoices by due date, per connection: the calendar items of invoices still owed carry
# ``owed_connection`` (a sparse index: paid ones drop out), so the follow-up sweep reads the invoices whose
# rule windows opened since its last run without scanning anything.
LINKS_OWED_BY_DUE_DATE = IndexKeys(
    name="owed-by-due-date", partition_key="owed_connection", sort_key="due_date"
)
