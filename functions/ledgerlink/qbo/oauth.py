"""QBO OAuth 2.0: one access token shared by every Lambda, refreshed by exactly one of them.

The connection's credentials live in Secrets Manager (``EnvVar.QBO_OAUTH_SECRET_NAME``), a JSON object
``{"client_id", "client_secret", "refresh_token", "realm_id"?}``. Intuit rotates the refresh token on
refresh and the one before stops working (../shared/api-notes.md §2 "OAuth 2.0"), so two Lambdas that
refresh at once lock the connection out. Hence one shared state item in the vendor-state table
(pk ``oauth#qbo#<secret name>``, sk ``token``) holding:

- ``access_token`` and ``token_expires_at``: the current access token, reused by every Lambda until
  :data:`EXPIRY_MARGIN_SECONDS` before it expires. The table is encrypted at rest (DynamoDB always
  is; the token lives at most an hour);
- ``lease_owner`` / ``lease_until``: the refresh lease. A Lambda that finds the token stale takes the
  lease with one conditional ``UpdateItem`` ("no live lease, and the token is still stale or is the
  one the vendor just rejected"); exactly one of any number of concurrent Lambdas wins. The others
  poll the item (on the injected clock) and use the token the winner stores;
- ``refresh_token``: the newest refresh token. The winner writes it here and back to the secret; the
  copy here is what the next refresh uses, because Secrets Manager reads are cached per Lambda and
  can be minutes old. If the secret's value differs (an operator re-authorised the app), it is tried
  when the one here is refused;
- ``revoked_fingerprint``: a short SHA-256 fingerprint of the secret's refresh token that Intuit
  refused with ``invalid_grant``. While the secret still holds that token every Lambda fails fast
  with :class:`QboConnectionRevoked` (alarmed: ERROR log + metric) instead of calling Intuit again;
  a new token in the secret clears it.

Nothing here logs, raises or stores a token in a message; tokens appear only in the state item, the
secret and the ``Authorization`` header.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import urlencode, urlsplit

import boto3
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from ledgerlink.clock import Clock, SystemClock
from ledgerlink.config import Settings
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.errors import VendorError
from ledgerlink.http.policy import CONNECT_TIMEOUT_SECONDS, VendorPolicy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, RateLimit
from ledgerlink.secrets import SecretDict, SecretError, SecretStore
from ledgerlink.tables import VENDOR_STATE

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient

logger = Logger(child=True)

# Refresh this long before Intuit's expiry, so a token never expires in the middle of a batch.
EXPIRY_MARGIN_SECONDS: Final = 300.0
# A refresh is one HTTPS call (10 s read timeout); a lease four times that cannot expire under a
# live refresher, and a crashed one blocks the others for at most this long.
LEASE_SECONDS: Final = 45.0
POLL_SECONDS: Final = 0.2
# How long a Lambda waits for another's refresh before giving the work back to SQS.
MAX_WAIT_SECONDS: Final = 60.0
STATE_SK: Final = "token"

PK = VENDOR_STATE.partition_key
SK = VENDOR_STATE.sort_key or "sk"


class QboAuthError(VendorError):
    """The QBO connection cannot give an access token. ``retryable`` says whether waiting helps."""

    connection_wide = True  # no token, no call: every record of the realm fails the same way

    def __init__(self, message: str, *, retryable: bool) -> None:
        super().__init__(message, vendor="qbo")
        self.retryable = retryable


class QboConnectionRevoked(QboAuthError):
    """Intuit refused the refresh token (``invalid_grant``): the app was disconnected or the token was
    superseded. Nothing works until someone re-authorises the app and stores the new refresh token in the
    secret, so the work is dead-lettered rather than retried."""

    reason = "qbo_connection_revoked"

    def __init__(self, secret_name: str) -> None:
        super().__init__(
            f"QBO refused the refresh token in secret {secret_name!r} (invalid_grant): the connection is "
            "revoked or the token was superseded; re-authorise the app and store the new refresh token "
            "(ledgerlink connect qbo --connection NAME does both), then replay the dead letters",
            retryable=False,
        )


class QboRefreshBusy(QboAuthError):
    """Another Lambda holds the refresh lease and did not finish in time: retry later."""

    reason = "qbo_refresh_busy"


@dataclass(frozen=True)
class TokenState:
    """The shared state item; ``None`` fields are absent."""

    access_token: str | None = None
    token_expires_at: float | None = None
    refresh_token: str | None = None
    lease_owner: str | None = None
    lease_until: float | None = None
    revoked_fingerprint: str | None = None

    def __repr__(self) -> str:  # tokens never reach a log line through a repr
        return (
            f"TokenState(expires_at={self.token_expires_at}, lease_owner={self.lease_owner}, "
            f"lease_until={self.lease_until}, revoked={self.revoked_fingerprint is not None})"
        )

    def fresh(self, now: float, margin: float = EXPIRY_MARGIN_SECONDS) -> bool:
        return bool(self.access_token) and (self.token_expires_at or 0.0) > now + margin


class TokenStateStore(Protocol):
    """Where the shared token state lives (DynamoDB in Lambda)."""

    def load(self, key: str) -> TokenState: ...

    def try_lease(self, key: str, owner: str, now: float, lease_seconds: float, rejected: str | None) -> bool:
        """Take the refresh lease iff no live lease exists and the stored token is stale (expires within
        the margin) or equals ``rejected``. True for exactly one of concurrent callers."""
        ...

    def store_token(self, key: str, access_token: str, expires_at: float, refresh_token: str) -> None:
        """Store the new tokens and release the lease (one write)."""
        ...

    def release(self, key: str, owner: str) -> None: ...

    def mark_revoked(self, key: str, fingerprint: str, owner: str) -> None:
        """Record the refused refresh token's fingerprint and release the lease."""
        ...


def state_key(secret_name: str) -> str:
    """The shared token state's partition key of the connection whose QBO secret is ``secret_name``
    (``ledgerlink connect qbo`` writes a new grant's tokens there too)."""
    return f"oauth#qbo#{secret_name}"


def fingerprint(token: str) -> str:
    """16 hex digits of SHA-256: enough to recognise a token again, useless for recovering it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:16]


def _number(value: float) -> dict[str, str]:
    return {"N": str(Decimal(repr(float(value))))}


class DynamoDBTokenStateStore:
    """:class:`TokenStateStore` on the vendor-state table (see the module docstring for the item)."""

    def __init__(self, table_name: str, client: DynamoDBClient | None = None) -> None:
        if not table_name:
            raise ValueError("a vendor-state table name is required")
        self.table_name = table_name
        self._client: DynamoDBClient = client if client is not None else boto3.client("dynamodb")

    def _key(self, key: str) -> dict[str, Any]:
        return {PK: {"S": key}, SK: {"S": STATE_SK}}

    def _failed(self, operation: str, error: ClientError) -> QboAuthError:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        return QboAuthError(
            f"vendor-state table {self.table_name}: QBO token {operation} failed ({code})", retryable=True
        )

    def load(self, key: str) -> TokenState:
        try:
            item = self._client.get_item(
                TableName=self.table_name, Key=self._key(key), ConsistentRead=True
            ).get("Item")
        except ClientError as error:
            raise self._failed("read", error) from None
        if not item:
            return TokenState()

        def text(name: str) -> str | None:
            return item[name]["S"] if name in item and "S" in item[name] else None

        def number(name: str) -> float | None:
            return float(item[name]["N"]) if name in item and "N" in item[name] else None

        return TokenState(
            access_token=text("access_token"),
            token_expires_at=number("token_expires_at"),
            refresh_token=text("refresh_token"),
            lease_owner=text("lease_owner"),
            lease_until=number("lease_until"),
            revoked_fingerprint=text("revoked_fingerprint"),
        )

    def try_lease(self, key: str, owner: str, now: float, lease_seconds: float, rejected: str | None) -> bool:
        stale = "(attribute_not_exists(token_expires_at) OR token_expires_at <= :stale_before)"
        if rejected is not None:
            stale = f"({stale} OR access_token = :rejected)"
        values: dict[str, Any] = {
            ":now": _number(now),
            ":until": _number(now + lease_seconds),
            ":owner": {"S": owner},
            ":stale_before": _number(now + EXPIRY_MARGIN_SECONDS),
        }
        if rejected is not None:
            values[":rejected"] = {"S": rejected}
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._key(key),
                UpdateExpression="SET lease_owner = :owner, lease_until = :until",
                ConditionExpression=f"(attribute_not_exists(lease_until) OR lease_until <= :now) AND {stale}",
                ExpressionAttributeValues=values,
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return False
            raise self._failed("lease", error) from None
        return True

    def store_token(self, key: str, access_token: str, expires_at: float, refresh_token: str) -> None:
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._key(key),
                UpdateExpression=(
                    "SET access_token = :access, token_expires_at = :expires, refresh_token = :refresh "
                    "REMOVE lease_owner, lease_until, revoked_fingerprint"
                ),
                ExpressionAttributeValues={
                    ":access": {"S": access_token},
                    ":expires": _number(expires_at),
                    ":refresh": {"S": refresh_token},
                },
            )
        except ClientError as error:
            raise self._failed("store", error) from None

    def release(self, key: str, owner: str) -> None:
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._key(key),
                UpdateExpression="REMOVE lease_owner, lease_until",
                ConditionExpression="lease_owner = :owner",
                ExpressionAttributeValues={":owner": {"S": owner}},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise self._failed("lease release", error) from None

    def mark_revoked(self, key: str, fingerprint: str, owner: str) -> None:
        try:
            self._client.update_item(
                TableName=self.table_name,
                Key=self._key(key),
                UpdateExpression=(
                    "SET revoked_fingerprint = :fingerprint "
                    "REMOVE lease_owner, lease_until, access_token, token_expires_at"
                ),
                ExpressionAttributeValues={":fingerprint": {"S": fingerprint}},
            )
        except ClientError as error:
            raise self._failed("revocation mark", error) from None


class InMemoryTokenStateStore:
    """:class:`TokenStateStore` in this process, with the DynamoDB store's conditions (one lease holder,
    a lease only for a stale or rejected token): for tests, benchmarks and one-process tools. Every OAuth
    provider given the same instance shares one token, as Lambdas share the vendor-state item."""

    def __init__(self) -> None:
        self.states: dict[str, TokenState] = {}
        self._lock = threading.Lock()

    def load(self, key: str) -> TokenState:
        with self._lock:
            return self.states.get(key, TokenState())

    def try_lease(self, key: str, owner: str, now: float, lease_seconds: float, rejected: str | None) -> bool:
        with self._lock:
            state = self.states.get(key, TokenState())
            if state.lease_until is not None and state.lease_until > now:
                return False
            stale = state.token_expires_at is None or state.token_expires_at <= now + EXPIRY_MARGIN_SECONDS
            if not (stale or (rejected is not None and state.access_token == rejected)):
                return False
            self.states[key] = replace(state, lease_owner=owner, lease_until=now + lease_seconds)
            return True

    def store_token(self, key: str, access_token: str, expires_at: float, refresh_token: str) -> None:
        with self._lock:
            self.states[key] = TokenState(
                access_token=access_token, token_expires_at=expires_at, refresh_token=refresh_token
            )

    def release(self, key: str, owner: str) -> None:
        with self._lock:
            state = self.states.get(key)
            if state is not None and state.lease_owner == owner:
                self.states[key] = replace(state, lease_owner=None, lease_until=None)

    def mark_revoked(self, key: str, fingerprint: str, owner: str) -> None:
        with self._lock:
            state = self.states.get(key, TokenState())
            self.states[key] = replace(
                state,
                revoked_fingerprint=fingerprint,
                lease_owner=None,
                lease_until=None,
                access_token=None,
                token_expires_at=None,
            )


@dataclass(frozen=True)
class _Credentials:
    client_id: str
    client_secret: str
    refresh_token: str
    realm_id: str | None

    def __repr__(self) -> str:
        return f"_Credentials(client_id=<redacted>, realm_id={self.realm_id!r})"


@dataclass(frozen=True)
class _Refreshed:
    access_token: str
    expires_at: float
    refresh_token: str


AlarmHook = Callable[[str, Mapping[str, Any]], None]
"""Called with (metric name, log fields) when something an operator must act on happens."""


def _no_alarm(name: str, fields: Mapping[str, Any]) -> None:
    return None


class QboOAuth:
    """An :class:`~ledgerlink.http.client.AuthProvider` for QBO: ``auth(force_refresh=...)`` returns the
    ``Authorization`` header; see the module docstring for how refreshes are coordinated.

    ``token_http`` calls the token endpoint (its own :class:`VendorHttpClient`, because the token host is
    not the API host); ``token_path`` is the endpoint's path on that host.
    """

    def __init__(
        self,
        *,
        secret_name: str,
        secrets: SecretStore,
        state: TokenStateStore,
        token_http: VendorHttpClient,
        token_path: str,
        clock: Clock | None = None,
        alarm: AlarmHook = _no_alarm,
        owner: str | None = None,
        max_wait_seconds: float = MAX_WAIT_SECONDS,
    ) -> None:
        self.secret_name = secret_name
        self._secrets = secrets
        self._state = state
        self._http = token_http
        self._token_path = token_path
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._alarm = alarm
        self._owner = owner or uuid.uuid4().hex
        self._max_wait = max_wait_seconds
        self._key = state_key(secret_name)
        self._memo: TokenState | None = None
        self._lock = threading.Lock()
        self.refreshes = 0  # token endpoint calls made by this instance (tests, metrics)

    def __repr__(self) -> str:
        return f"QboOAuth(secret_name={self.secret_name!r})"

    def __call__(self, *, force_refresh: bool = False) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.access_token(force_refresh=force_refresh)}"}

    def realm_id(self) -> str | None:
        """The realm the secret is for, when it says (a secret without one serves any realm it can)."""
        return self._credentials().realm_id

    def access_token(self, *, force_refresh: bool = False) -> str:
        with self._lock:
            memo = self._memo
            now = self._clock.now()
            if not force_refresh and memo is not None and memo.fresh(now):
                return str(memo.access_token)
            rejected = memo.access_token if force_refresh and memo is not None else None
            token = self._shared_token(rejected)
            return token

    def _shared_token(self, rejected: str | None) -> str:
        deadline = self._clock.now() + self._max_wait
        while True:
            now = self._clock.now()
            state = self._state.load(self._key)
            if state.fresh(now) and state.access_token != rejected:
                self._memo = state
                return str(state.access_token)
            credentials = self._credentials()
            if state.revoked_fingerprint is not None and state.revoked_fingerprint == fingerprint(
                credentials.refresh_token
            ):
                # Intuit already refused this token. An operator may have just re-authorised the app
                # (`ledgerlink connect qbo`), and this process's copy of the secret can be minutes old:
                # look past the cache once before failing.
                credentials = self._credentials(fresh=True)
                if state.revoked_fingerprint == fingerprint(credentials.refresh_token):
                    # Asking Intuit again would only repeat the refusal.
                    raise QboConnectionRevoked(self.secret_name)
            if self._state.try_lease(self._key, self._owner, now, LEASE_SECONDS, rejected):
                return self._refresh_holding_lease(state, credentials)
            if now >= deadline:
                raise QboRefreshBusy(
                    "another worker is refreshing the QBO access token and has not finished; retry later",
                    retryable=True,
                )
            self._clock.sleep(POLL_SECONDS)

    def _refresh_holding_lease(self, state: TokenState, credentials: _Credentials) -> str:
        candidates = [token for token in (state.refresh_token, credentials.refresh_token) if token]
        # The stored copy is newer than a cached secret read; the secret is newer after a re-authorisation.
        ordered = list(dict.fromkeys(candidates))
        try:
            refreshed = self._first_accepted(credentials, ordered)
            if refreshed is None:
                # Every token this process knows was refused. The secret may hold a newer grant than its
                # cached copy (an operator re-authorised minutes ago): read it past the cache and try
                # its token once, so a reconnect takes effect now rather than when the cache expires.
                current = self._credentials(fresh=True)
                if current.refresh_token not in ordered or current.client_id != credentials.client_id:
                    logger.info(
                        "QBO refused the known refresh tokens; trying the secret's current one",
                        extra={"secret_name": self.secret_name, "realm_id": current.realm_id},
                    )
                    credentials = current
                    refreshed = self._first_accepted(current, [current.refresh_token])
            if refreshed is not None:
                self._state.store_token(
                    self._key, refreshed.access_token, refreshed.expires_at, refreshed.refresh_token
                )
                self._memo = TokenState(
                    access_token=refreshed.access_token, token_expires_at=refreshed.expires_at
                )
                self._store_rotated(credentials, refreshed.refresh_token)
                return refreshed.access_token
        except BaseException:
            self._state.release(self._key, self._owner)
            raise
        self._state.mark_revoked(self._key, fingerprint(credentials.refresh_token), self._owner)
        self._memo = None
        self._alarm(
            "QboConnectionRevoked",
            {"secret_name": self.secret_name, "realm_id": credentials.realm_id},
        )
        logger.error(
            "QBO refused the refresh token (invalid_grant): the connection must be re-authorised",
            extra={"secret_name": self.secret_name, "realm_id": credentials.realm_id},
        )
        raise QboConnectionRevoked(self.secret_name)

    def _first_accepted(self, credentials: _Credentials, refresh_tokens: list[str]) -> _Refreshed | None:
        for refresh_token in refresh_tokens:
            refreshed = self._call_token_endpoint(credentials, refresh_token)
            if refreshed is not None:
                return refreshed
        return None

    def _call_token_endpoint(self, credentials: _Credentials, refresh_token: str) -> _Refreshed | None:
        """The new tokens, or None when Intuit answered ``invalid_grant`` for this refresh token."""
        basic = base64.b64encode(f"{credentials.client_id}:{credentials.client_secret}".encode()).decode()
        self.refreshes += 1
        started = self._clock.now()
        # Not idempotent: a repeat after a lost answer would present a refresh token Intuit already
        # rotated. A timeout therefore fails this attempt; the lease expires and a later one retries.
        response = self._http.post(
            self._token_path,
            scope=credentials.client_id,
            data=urlencode({"grant_type": "refresh_token", "refresh_token": refresh_token}),
            headers={
                "Authorization": f"Basic {basic}",
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
            idempotent=False,
            accept=(400, 401),
        )
        body = _json_object(response)
        if response.status_code == 400 and body.get("error") == "invalid_grant":
            return None
        if response.status_code == 401 or body.get("error") == "invalid_client":
            self._alarm("QboClientRejected", {"secret_name": self.secret_name})
            logger.error(
                "QBO refused the app's client credentials (invalid_client)",
                extra={"secret_name": self.secret_name},
            )
            raise QboAuthError(
                f"QBO refused the client id/secret in secret {self.secret_name!r} (invalid_client)",
                retryable=False,
            )
        if response.status_code != 200:
            raise QboAuthError(
                f"QBO token endpoint answered HTTP {response.status_code} ({body.get('error', 'no error code')})",
                retryable=False,
            )
        access_token = body.get("access_token")
        new_refresh = body.get("refresh_token") or refresh_token
        expires_in = body.get("expires_in")
        if not isinstance(access_token, str) or not access_token or not isinstance(expires_in, int | float):
            raise QboAuthError("QBO token endpoint answered without access_token/expires_in", retryable=True)
        logger.info(
            "QBO access token refreshed",
            extra={
                "secret_name": self.secret_name,
                "expires_in": expires_in,
                "refresh_token_rotated": new_refresh != refresh_token,
            },
        )
        return _Refreshed(str(access_token), started + float(expires_in), str(new_refresh))

    def _store_rotated(self, credentials: _Credentials, new_refresh_token: str) -> None:
        """Write a rotated refresh token back to the secret; the state item already holds it."""
        if new_refresh_token == credentials.refresh_token:
            return
        try:
            # Past the cache: the write keeps every other field, and a stale copy would put back values
            # an operator has replaced since (a reconnect's client id or realm).
            self._secrets.invalidate(self.secret_name)
            current = self._secrets.get_json(self.secret_name)
            if str(current.get("client_id") or "") != credentials.client_id or str(
                current.get("realm_id") or ""
            ) != (credentials.realm_id or ""):
                # The secret now holds another app's or company's grant (a reconnect while this refresh
                # ran): keep it.
                logger.warning(
                    "QBO secret was replaced during a refresh; the rotated token was not written to it",
                    extra={"secret_name": self.secret_name},
                )
                return
            self._secrets.put_json(self.secret_name, {**current, "refresh_token": new_refresh_token})
        except SecretError as error:
            # Not fatal: the state item holds the newest token and the next refresh writes it again.
            self._alarm("QboRefreshTokenNotStored", {"secret_name": self.secret_name})
            logger.error(
                "rotated QBO refresh token could not be written to the secret; kept in the vendor-state table",
                extra={"secret_name": self.secret_name, "error": str(error)},
            )

    def _credentials(self, *, fresh: bool = False) -> _Credentials:
        """The secret's credentials; ``fresh`` reads it past this process's cache."""
        if fresh:
            self._secrets.invalidate(self.secret_name)
        secret: SecretDict = self._secrets.get_json(self.secret_name)
        missing = [name for name in ("client_id", "client_secret", "refresh_token") if not secret.get(name)]
        if missing:
            raise QboAuthError(f"secret {self.secret_name!r} lacks {', '.join(missing)}", retryable=False)
        realm = secret.get("realm_id")
        return _Credentials(
            client_id=str(secret["client_id"]),
            client_secret=str(secret["client_secret"]),
            refresh_token=str(secret["refresh_token"]),
            realm_id=str(realm) if realm else None,
        )


def _json_object(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def token_endpoint(token_url: str) -> tuple[str, str]:
    """``(origin, path)`` of the token URL: the HTTP client is built on the origin."""
    parts = urlsplit(token_url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"QBO token URL must be absolute, got {token_url!r}")
    return f"{parts.scheme}://{parts.netloc}", parts.path or "/"


def token_policy(settings: Settings) -> VendorPolicy:
    """The token host's policy: Intuit's token endpoint is not rate-limited like the API, but a burst of
    refreshes is a bug, so a modest client-side cap stays in place."""
    origin, _ = token_endpoint(settings.qbo_token_url)
    return VendorPolicy(
        vendor="qbo-oauth",
        base_url=origin,
        rate_limits={DEFAULT_GROUP: (RateLimit(10, 1.0),)},
        read_timeout_seconds=settings.http_timeout_seconds,
        connect_timeout_seconds=min(CONNECT_TIMEOUT_SECONDS, settings.http_timeout_seconds),
        breaker_failure_threshold=settings.breaker_failure_threshold,
        breaker_cool_down_seconds=settings.breaker_cool_down_seconds,
    )
