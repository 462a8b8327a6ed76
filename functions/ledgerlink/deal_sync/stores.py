"""Where the deal sync keeps its state: the crosswalk, the idempotency ledger, the QBO token, the
vendors' rate limits, slots and breakers, and where it publishes ``deal.synced``.

:class:`AwsStores` is what the Lambda, the command line and the local stack use: the DynamoDB tables
and the EventBridge bus named by :class:`~ledgerlink.config.Settings`. :class:`InMemoryStores` keeps the
same state in this process with the same conditions (versions only move forward, one claim per event,
one refresh lease, the rate-limit logs), so a benchmark or a test can run the flow without an AWS
emulator. Every deal sync built over one ``InMemoryStores`` shares its state, as the Lambdas of one
deployment share the tables: a backfill and the live "Lambdas" built over the same instance draw on one
rate-limit budget per realm and per portal.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from ledgerlink.clock import Clock
from ledgerlink.config import Settings
from ledgerlink.consumer.ledger import EventLedger, InMemoryPersistence
from ledgerlink.crosswalk import InMemoryLinksTable, InMemoryLinkStore, LinkStore
from ledgerlink.deal_sync.ports import EventPublisher
from ledgerlink.events import Envelope
from ledgerlink.http.breaker import InMemoryBreakerStore
from ledgerlink.http.client import AuthProvider, VendorHttpClient
from ledgerlink.http.concurrency import InMemoryConcurrencyStore
from ledgerlink.http.factory import shared_state_client
from ledgerlink.http.policy import VendorPolicy
from ledgerlink.http.ratelimit import InMemoryRateLimitStore
from ledgerlink.publisher import EventBridgePublisher
from ledgerlink.qbo.oauth import DynamoDBTokenStateStore, InMemoryTokenStateStore, TokenStateStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient


class DealSyncStores(Protocol):
    """What :func:`~ledgerlink.deal_sync.factory.build_deal_sync` builds a connection's state from."""

    def links(self, connection: str, config_version: str) -> LinkStore: ...

    def ledger(self, namespace: str) -> EventLedger: ...

    def token_state(self) -> TokenStateStore: ...

    def vendor_client(self, policy: VendorPolicy, auth: AuthProvider | None = None) -> VendorHttpClient: ...

    def publisher(self) -> EventPublisher: ...


class AwsStores:
    """The tables and the bus of :class:`~ledgerlink.config.Settings` (moto's or AWS's, by the clients)."""

    def __init__(
        self,
        settings: Settings,
        *,
        dynamodb: DynamoDBClient,
        events: EventBridgeClient,
        clock: Clock | None = None,
        publisher_sleep: Any = None,
    ) -> None:
        self.settings = settings
        self.dynamodb = dynamodb
        self.events = events
        self.clock = clock
        self.publisher_sleep = publisher_sleep

    def links(self, connection: str, config_version: str) -> LinkStore:
        return LinkStore(
            self.settings.links_table_name,
            self.dynamodb,
            connection=connection,
            config_version=config_version,
        )

    def ledger(self, namespace: str) -> EventLedger:
        return EventLedger(
            self.settings.idempotency_table_name,
            self.settings.idempotency_ttl_seconds,
            namespace=namespace,
            dynamodb_client=self.dynamodb,
        )

    def token_state(self) -> TokenStateStore:
        return DynamoDBTokenStateStore(self.settings.vendor_state_table_name, self.dynamodb)

    def vendor_client(self, policy: VendorPolicy, auth: AuthProvider | None = None) -> VendorHttpClient:
        return shared_state_client(
            policy,
            auth,
            table_name=self.settings.vendor_state_table_name,
            dynamodb_client=self.dynamodb,
            clock=self.clock,
        )

    def publisher(self) -> EventPublisher:
        options = {"sleep": self.publisher_sleep} if self.publisher_sleep is not None else {}
        return EventBridgePublisher(self.events, self.settings.event_bus_name, **options)


class CountingPublisher:
    """Publication into a list: the envelopes a deal sync built over :class:`InMemoryStores` published."""

    def __init__(self) -> None:
        self.envelopes: list[Envelope] = []
        self._lock = threading.Lock()

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        with self._lock:
            self.envelopes.extend(envelopes)


class InMemoryStores:
    """All of the deal sync's state in this process (see the module docstring); one instance is one
    deployment's tables and bus."""

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock = clock
        self.links_table = InMemoryLinksTable()
        self.ledgers: dict[str, InMemoryPersistence] = {}
        self.tokens = InMemoryTokenStateStore()
        self.rate_limits = InMemoryRateLimitStore()
        self.breakers = InMemoryBreakerStore()
        self.slots = InMemoryConcurrencyStore()
        self.published = CountingPublisher()
        self._lock = threading.Lock()

    def links(self, connection: str, config_version: str) -> LinkStore:
        return InMemoryLinkStore(self.links_table, connection=connection, config_version=config_version)

    def ledger(self, namespace: str) -> EventLedger:
        # One persistence layer per namespace: Powertools configures a layer with its key prefix.
        with self._lock:
            persistence = self.ledgers.setdefault(namespace, InMemoryPersistence())
        return EventLedger(
            "in-memory", self.settings.idempotency_ttl_seconds, namespace=namespace, persistence=persistence
        )

    def token_state(self) -> TokenStateStore:
        return self.tokens

    def vendor_client(self, policy: VendorPolicy, auth: AuthProvider | None = None) -> VendorHttpClient:
        return VendorHttpClient(
            policy,
            auth=auth,
            rate_limit_store=self.rate_limits,
            breaker_store=self.breakers,
            concurrency_store=self.slots,
            clock=self.clock,
        )

    def publisher(self) -> EventPublisher:
        return self.published
