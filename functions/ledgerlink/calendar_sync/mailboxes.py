"""Whose calendar an invoice's due date goes on.

Per connection (``calendar.mailbox`` in the configuration file): the HubSpot deal owner's mailbox when
the owner's e-mail is a user of the connection's Microsoft tenant, otherwise the connection's
accounts-receivable mailbox. An owner is resolved once (HubSpot's owner → e-mail, then Graph's user with
that mail or UPN) and the answer, "no tenant user" included, is cached: in process, and in the
vendor-state table for ``owner_cache_seconds`` so every Lambda shares it.

Whether the chosen mailbox exists is Graph's to say when the event is written: an unknown user or one
without a mailbox is a permanent failure of that record with Graph's reason
(:class:`~ledgerlink.graph.errors.MailboxNotFound`), not a retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import boto3
from botocore.exceptions import ClientError

from ledgerlink.calendar_sync.ports import Calendar, CalendarConfig, OwnerDirectory
from ledgerlink.clock import Clock, SystemClock

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

DEAL_OWNER: Final = "deal_owner"
ACCOUNTS_RECEIVABLE: Final = "accounts_receivable"


class NoMailbox(ValueError):
    """The connection names no accounts-receivable mailbox and the deal owner has none: nothing to do
    until the configuration file names one (permanent for this record)."""

    retryable = False
    reason = "no_mailbox"


@dataclass(frozen=True)
class Mailbox:
    address: str
    source: str  # DEAL_OWNER or ACCOUNTS_RECEIVABLE


class OwnerMailboxCache(Protocol):
    """Resolved owners: ``""`` means "not a user of the tenant"; None means "not known (or expired)"."""

    def get(self, connection: str, owner_id: str, now: float) -> str | None: ...

    def put(self, connection: str, owner_id: str, mailbox: str, expires_at: float) -> None: ...


class InMemoryOwnerMailboxCache:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[str, float]] = {}

    def get(self, connection: str, owner_id: str, now: float) -> str | None:
        entry = self._entries.get((connection, owner_id))
        return entry[0] if entry is not None and entry[1] > now else None

    def put(self, connection: str, owner_id: str, mailbox: str, expires_at: float) -> None:
        self._entries[(connection, owner_id)] = (mailbox, expires_at)


class DynamoDBOwnerMailboxCache:
    """Rows ``owner-mailbox#<connection>`` / ``<owner id>`` in the vendor-state table, expiring by TTL.
    A cache: a table that does not answer costs a fresh resolution, never a failed record."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        self.table_name = table_name
        self._client: DynamoDBClient = client if client is not None else boto3.client("dynamodb")
        self._local = InMemoryOwnerMailboxCache()

    def _key(self, connection: str, owner_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"owner-mailbox#{connection}"}, "sk": {"S": owner_id}}

    def get(self, connection: str, owner_id: str, now: float) -> str | None:
        known = self._local.get(connection, owner_id, now)
        if known is not None:
            return known
        try:
            item = self._client.get_item(TableName=self.table_name, Key=self._key(connection, owner_id)).get(
                "Item"
            )
        except ClientError:
            return None
        if not item:
            return None
        expires_at = float(item.get("expires_at", {}).get("N", "0"))
        if expires_at <= now:
            return None
        mailbox = str(item.get("mailbox", {}).get("S", ""))
        self._local.put(connection, owner_id, mailbox, expires_at)
        return mailbox

    def put(self, connection: str, owner_id: str, mailbox: str, expires_at: float) -> None:
        self._local.put(connection, owner_id, mailbox, expires_at)
        try:
            self._client.put_item(
                TableName=self.table_name,
                Item={
                    **self._key(connection, owner_id),
                    "mailbox": {"S": mailbox},
                    "expires_at": {"N": str(int(expires_at))},
                },
            )
        except ClientError:
            return


class MailboxResolver:
    def __init__(
        self,
        config: CalendarConfig,
        owners: OwnerDirectory,
        calendar: Calendar,
        cache: OwnerMailboxCache,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.owners = owners
        self.calendar = calendar
        self.cache = cache
        self.clock: Clock = clock if clock is not None else SystemClock()

    def mailbox_for(self, owner_id: str | None) -> Mailbox:
        """The calendar for a deal with this owner (module docstring)."""
        if self.config.settings.mailbox == DEAL_OWNER and owner_id:
            owned = self.owner_mailbox(owner_id)
            if owned:
                return Mailbox(owned, DEAL_OWNER)
        fallback = self.config.accounts_receivable_mailbox
        if not fallback:
            raise NoMailbox(
                f"connection {self.config.connection!r} has no microsoft.accounts_receivable_mailbox in the "
                "configuration file, and the deal's owner is not a user of its Microsoft tenant; name one, "
                "then replay"
            )
        return Mailbox(fallback, ACCOUNTS_RECEIVABLE)

    def owner_mailbox(self, owner_id: str) -> str:
        """The owner's mailbox in the tenant, or "" when the owner is none of its users."""
        now = self.clock.now()
        cached = self.cache.get(self.config.connection, owner_id, now)
        if cached is not None:
            return cached
        email = self.owners.owner_email(owner_id)
        user = self.calendar.find_user(email) if email else None
        mailbox = (user.mail or user.upn) if user is not None else ""
        self.cache.put(self.config.connection, owner_id, mailbox, now + self.config.owner_cache_seconds)
        return mailbox
