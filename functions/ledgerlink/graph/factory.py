"""Builds one connection's Graph client: its token provider (own secret, own tenant) and the HTTP clients
for Entra ID and Graph, with limits, slots and breakers shared through the vendor-state table (Lambda,
the local stack) or held in this process (tests, one-process tools)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledgerlink.clock import Clock
from ledgerlink.config import Settings
from ledgerlink.configfile import Connection
from ledgerlink.graph.auth import GraphAuth, token_policy
from ledgerlink.graph.client import GraphClient
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.factory import in_process_client, shared_state_client
from ledgerlink.http.policy import VendorPolicy, graph_policy
from ledgerlink.secrets import SecretStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass
class GraphParts:
    """The client and what tests and the flows look into (the token provider, the HTTP clients)."""

    client: GraphClient
    auth: GraphAuth
    http: VendorHttpClient
    token_http: VendorHttpClient

    def close(self) -> None:
        self.http.close()
        self.token_http.close()


def graph_client(
    connection: Connection,
    settings: Settings,
    *,
    secrets: SecretStore,
    shared_state: bool = True,
    dynamodb: DynamoDBClient | None = None,
    clock: Clock | None = None,
) -> GraphParts:
    """The Graph client of ``connection`` (which must name a Microsoft tenant). ``shared_state`` puts the
    rate limits, concurrency slots and breakers in ``settings.vendor_state_table_name`` (every Lambda
    shares them); otherwise they live in this process."""
    if not connection.tenant_id:
        raise ValueError(f"connection {connection.name!r} names no Microsoft tenant (microsoft.tenant_id)")

    def http_client(policy: VendorPolicy, auth: GraphAuth | None) -> VendorHttpClient:
        if shared_state:
            return shared_state_client(
                policy,
                auth,
                table_name=settings.vendor_state_table_name,
                dynamodb_client=dynamodb,
                clock=clock,
            )
        return in_process_client(policy, auth, clock=clock)

    token_http = http_client(token_policy(settings), None)
    # The connection's own secret and tenant: its own token, its own app id in every rate-limit scope.
    auth = GraphAuth(
        secret_name=connection.secret_name(settings.stage, "graph"),
        tenant_id=connection.tenant_id,
        secrets=secrets,
        token_http=token_http,
        token_url=settings.graph_token_url,
        clock=clock,
    )
    http = http_client(graph_policy(settings), auth)
    return GraphParts(GraphClient(http, auth), auth, http, token_http)
