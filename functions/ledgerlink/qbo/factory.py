"""Builds one connection's QBO client: its OAuth provider (own secret, own rotating refresh token, one
refresh at a time through the vendor-state table) and the HTTP clients for Intuit's token endpoint and the
Accounting API, with limits and breakers shared by every Lambda. Every flow that reads or writes the
books builds its client here."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledgerlink.clock import Clock
from ledgerlink.config import Settings
from ledgerlink.configfile import Connection
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.factory import shared_state_client
from ledgerlink.http.policy import VendorPolicy, qbo_policy
from ledgerlink.qbo.client import QboClient
from ledgerlink.qbo.oauth import (
    AlarmHook,
    DynamoDBTokenStateStore,
    QboOAuth,
    token_endpoint,
    token_policy,
)
from ledgerlink.secrets import SecretStore

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient


@dataclass
class QboParts:
    client: QboClient
    oauth: QboOAuth
    http: VendorHttpClient
    token_http: VendorHttpClient

    def close(self) -> None:
        self.http.close()
        self.token_http.close()

    def realm_refusal(self, realm_id: str) -> str | None:
        """Why the connection's secret cannot reach ``realm_id`` (it holds another company's grant), or None."""
        connected = self.oauth.realm_id()
        if connected is not None and connected != realm_id:
            return f"no QBO connection for realm {realm_id}: secret {self.oauth.secret_name!r} is for realm {connected}"
        return None


def qbo_client(
    connection: Connection,
    settings: Settings,
    *,
    secrets: SecretStore,
    dynamodb: DynamoDBClient,
    clock: Clock | None = None,
    alarm: AlarmHook | None = None,
) -> QboParts:
    def shared(policy: VendorPolicy, auth: QboOAuth | None = None) -> VendorHttpClient:
        return shared_state_client(
            policy,
            auth,
            table_name=settings.vendor_state_table_name,
            dynamodb_client=dynamodb,
            clock=clock,
        )

    _, token_path = token_endpoint(settings.qbo_token_url)
    token_http = shared(token_policy(settings))
    oauth = QboOAuth(
        secret_name=connection.secret_name(settings.stage, "qbo-oauth"),
        secrets=secrets,
        state=DynamoDBTokenStateStore(settings.vendor_state_table_name, dynamodb),
        token_http=token_http,
        token_path=token_path,
        clock=clock,
        alarm=alarm if alarm is not None else _no_alarm,
    )
    http = shared(qbo_policy(settings), oauth)
    return QboParts(QboClient(http, minor_version=settings.qbo_minor_version), oauth, http, token_http)


def _no_alarm(name: str, fields: Mapping[str, Any]) -> None:
    return None
