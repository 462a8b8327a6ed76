"""App-only Microsoft Graph tokens (OAuth 2.0 client credentials with Microsoft Entra ID), per connection.

The connection's secret (``Connection.secret_name(stage, "graph")``) is a JSON object
``{"tenant_id", "client_id", "client_secret", "calendar_user"?}``. :class:`GraphAuth` asks Entra's token
endpoint (``Settings.graph_token_url``, a template with ``{tenant}``) for a token with
``grant_type=client_credentials`` and ``scope=https://graph.microsoft.com/.default`` (../shared/api-notes.md
§4 "Auth (app-only)") and keeps it in this process until shortly before it expires.

Why per process, not shared through DynamoDB like QBO's: a client-credentials token is minted from
the secret alone, with nothing rotating on use, so every Lambda may mint its own and none can lock
another out. A cold Lambda costs one token call (Entra issues them for about an hour).

The tenant is the connection's configured ``tenant_id``; a secret that names another tenant is a
configuration error, refused before anything is sent (:class:`GraphTenantMismatch`).

When Entra refuses the credentials (``invalid_client``: a wrong, revoked or expired secret,
AADSTS7000215/7000222; ``unauthorized_client``: the app is unknown in the tenant, AADSTS700016; an
unknown tenant, AADSTS90002), the secret is read once more past the cache: an operator who rotated it
(after the vendor refused the old one) is picked up at once rather than after the cache's lifetime. If
that copy differs, it is tried; if it is refused too, or is the same, the call fails with
:class:`GraphCredentialsRejected`, which names the secret and the AADSTS code, never a value.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlencode, urlsplit

from aws_lambda_powertools import Logger

from ledgerlink.clock import Clock, SystemClock
from ledgerlink.config import Settings
from ledgerlink.graph.errors import GraphAuthError, GraphCredentialsRejected, GraphTenantMismatch
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.policy import CONNECT_TIMEOUT_SECONDS, VendorPolicy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, RateLimit
from ledgerlink.secrets import SecretDict, SecretStore

logger = Logger(child=True)

GRAPH_SCOPE: Final = "https://graph.microsoft.com/.default"
# A token is replaced this long before Entra's expiry, so it never expires in the middle of a batch.
EXPIRY_MARGIN_SECONDS: Final = 300.0
# Entra's token errors that mean "these credentials will not work until someone changes them":
# invalid_client (wrong, revoked, expired or missing secret), unauthorized_client (the app is not in the
# tenant), and an unknown tenant (AADSTS90002, answered as invalid_request or invalid_tenant).
CREDENTIAL_ERRORS: Final = frozenset({"invalid_client", "unauthorized_client"})
UNKNOWN_TENANT_CODES: Final = frozenset({"AADSTS90002"})
_AADSTS = re.compile(r"\bAADSTS(\d+)\b")


@dataclass(frozen=True)
class _Credentials:
    client_id: str
    client_secret: str
    tenant_id: str | None

    def __repr__(self) -> str:
        return f"_Credentials(client_id={self.client_id!r}, client_secret=<redacted>)"


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float
    refresh_at: float

    def __repr__(self) -> str:
        return f"_Token(expires_at={self.expires_at}, refresh_at={self.refresh_at})"


@dataclass(frozen=True)
class _Refused:
    """Entra's refusal of a token request, parsed (never the body, which may echo a client id)."""

    status: int
    error: str
    aadsts: str | None
    description: str


class GraphAuth:
    """An :class:`~ledgerlink.http.client.AuthProvider` for one connection's Graph app:
    ``auth(force_refresh=...)`` returns the ``Authorization`` header.

    ``token_http`` calls the token endpoint (its own :class:`VendorHttpClient` on the token host, see
    :func:`token_policy`), ``token_url`` is ``Settings.graph_token_url`` (``{tenant}`` is filled in with
    ``tenant_id``, the connection's configured tenant).
    """

    def __init__(
        self,
        *,
        secret_name: str,
        tenant_id: str,
        secrets: SecretStore,
        token_http: VendorHttpClient,
        token_url: str,
        clock: Clock | None = None,
        expiry_margin_seconds: float = EXPIRY_MARGIN_SECONDS,
    ) -> None:
        if not tenant_id:
            raise ValueError("a Microsoft tenant id is required (the connection's microsoft.tenant_id)")
        self.secret_name = secret_name
        self.tenant_id = tenant_id
        self._secrets = secrets
        self._http = token_http
        self._token_path = token_path(token_url, tenant_id)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._margin = expiry_margin_seconds
        self._token: _Token | None = None
        self._lock = threading.Lock()
        self.tokens_minted = 0  # successful token calls made by this instance (tests, metrics)

    def __repr__(self) -> str:
        return f"GraphAuth(secret_name={self.secret_name!r}, tenant_id={self.tenant_id!r})"

    def __call__(self, *, force_refresh: bool = False) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.access_token(force_refresh=force_refresh)}"}

    @property
    def app_id(self) -> str:
        """The app's client id (from the secret, read when first needed): Outlook's limits are per app."""
        return self._credentials().client_id

    def access_token(self, *, force_refresh: bool = False) -> str:
        """The cached token while it is fresh; a new one when it is near expiry or after Graph refused it
        (``force_refresh``, asked for by the HTTP layer after a 401)."""
        with self._lock:
            token = self._token
            if not force_refresh and token is not None and self._clock.now() < token.refresh_at:
                return token.value
            self._token = None
            if force_refresh:
                # Graph refused the token: the app may have been reconnected (`ledgerlink connect
                # microsoft` stored other credentials), so the new token is minted from the secret's
                # current value, not this process's cached copy.
                self._secrets.invalidate(self.secret_name)
            token = self._mint()
            self._token = token
            return token.value

    def _mint(self) -> _Token:
        credentials = self._credentials()
        refused = self._request(credentials)
        if isinstance(refused, _Token):
            return refused
        if refused.error in CREDENTIAL_ERRORS:
            # An operator may have just rotated the secret: look past the cache once before giving up.
            self._secrets.invalidate(self.secret_name)
            fresh = self._credentials()
            if (fresh.client_id, fresh.client_secret) != (credentials.client_id, credentials.client_secret):
                logger.info(
                    "Graph app credentials refused; trying the secret's current value",
                    extra={"secret_name": self.secret_name, "aadsts": refused.aadsts},
                )
                retried = self._request(fresh)
                if isinstance(retried, _Token):
                    return retried
                refused = retried
        raise self._rejected(refused)

    def _request(self, credentials: _Credentials) -> _Token | _Refused:
        started = self._clock.now()
        # Minting a token twice is harmless (nothing rotates on use), so a retry after a lost answer is safe.
        response = self._http.post(
            self._token_path,
            scope=credentials.client_id,
            data=urlencode(
                {
                    "grant_type": "client_credentials",
                    "client_id": credentials.client_id,
                    "client_secret": credentials.client_secret,
                    "scope": GRAPH_SCOPE,
                }
            ),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            idempotent=True,
            accept=(400, 401),
        )
        body = _json_object(response)
        if response.status_code != 200:
            description = str(body.get("error_description") or "")
            found = _AADSTS.search(description)
            codes = body.get("error_codes")
            aadsts = (
                f"AADSTS{found.group(1)}"
                if found
                else (f"AADSTS{codes[0]}" if isinstance(codes, list) and codes else None)
            )
            return _Refused(
                status=response.status_code,
                error=str(body.get("error") or "no error code"),
                aadsts=aadsts,
                # Entra's description is the first sentence that explains the code; the trace and
                # correlation ids after it only help Microsoft support, and the rest may name the app.
                description=_first_sentence(description),
            )
        access_token = body.get("access_token")
        expires_in = body.get("expires_in")
        if not isinstance(access_token, str) or not access_token or not _seconds(expires_in):
            raise GraphAuthError(
                "Microsoft Entra ID answered the token request without access_token/expires_in",
                retryable=True,
            )
        lifetime = float(expires_in)  # type: ignore[arg-type]
        # A short-lived token (a test tenant's, or the sandbox's when configured so) is kept for at least
        # half its life rather than being refreshed on every call.
        margin = min(self._margin, lifetime / 2)
        self.tokens_minted += 1
        logger.info(
            "Graph access token obtained",
            extra={"secret_name": self.secret_name, "tenant_id": self.tenant_id, "expires_in": lifetime},
        )
        return _Token(access_token, started + lifetime, started + lifetime - margin)

    def _rejected(self, refused: _Refused) -> GraphAuthError:
        credential_error = refused.error in CREDENTIAL_ERRORS or refused.aadsts in UNKNOWN_TENANT_CODES
        logger.error(
            "Microsoft Entra ID refused the Graph token request",
            extra={
                "secret_name": self.secret_name,
                "tenant_id": self.tenant_id,
                "status": refused.status,
                "error": refused.error,
                "aadsts": refused.aadsts,
            },
        )
        if credential_error:
            return GraphCredentialsRejected(
                secret_name=self.secret_name,
                error=refused.error,
                aadsts=refused.aadsts,
                status=refused.status,
                detail=refused.description or "no description",
            )
        # invalid_scope, unsupported_grant_type, ...: the request LedgerLink builds is wrong, which no
        # retry changes.
        return GraphAuthError(
            f"Microsoft Entra ID refused the token request for secret {self.secret_name!r} "
            f"(HTTP {refused.status} {refused.error}, {refused.aadsts or 'no AADSTS code'}: "
            f"{refused.description or 'no description'})",
            retryable=False,
            code=refused.aadsts or refused.error,
            status=refused.status,
        )

    def _credentials(self) -> _Credentials:
        secret: SecretDict = self._secrets.get_json(self.secret_name)
        missing = [name for name in ("client_id", "client_secret") if not secret.get(name)]
        if missing:
            raise GraphAuthError(f"secret {self.secret_name!r} lacks {', '.join(missing)}", retryable=False)
        in_secret = str(secret["tenant_id"]) if secret.get("tenant_id") else None
        if in_secret is not None and in_secret.strip().lower() != self.tenant_id.strip().lower():
            raise GraphTenantMismatch(
                secret_name=self.secret_name, configured=self.tenant_id, in_secret=in_secret
            )
        return _Credentials(str(secret["client_id"]), str(secret["client_secret"]), in_secret)


def _json_object(response: Any) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _seconds(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value > 0


def _first_sentence(description: str) -> str:
    text = _AADSTS.sub("", description, count=1).lstrip(": ").strip()
    end = text.find(". ")
    return (text[: end + 1] if end >= 0 else text)[:200]


def token_url_for(token_url: str, tenant_id: str) -> str:
    """The token URL of ``tenant_id``: ``{tenant}`` in the template filled in (path-quoted)."""
    if "{tenant}" not in token_url:
        raise ValueError(f"the Graph token URL must contain {{tenant}}, got {token_url!r}")
    return token_url.replace("{tenant}", quote(tenant_id, safe=""))


def token_origin(token_url: str) -> str:
    """The origin (scheme://host[:port]) the token client is built on."""
    parts = urlsplit(token_url.replace("{tenant}", "tenant"))
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"the Graph token URL must be absolute, got {token_url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def token_path(token_url: str, tenant_id: str) -> str:
    """The absolute token URL of ``tenant_id`` (the HTTP client accepts URLs on its own origin)."""
    url = token_url_for(token_url, tenant_id)
    if token_origin(url) != token_origin(token_url):
        raise ValueError("{tenant} may only appear in the Graph token URL's path")
    return url


def token_policy(settings: Settings) -> VendorPolicy:
    """The token host's policy (Entra ID, not Graph): its own breaker, so a failing login endpoint does not
    open Graph's, and a modest client-side cap, because a burst of token requests is a bug."""
    return VendorPolicy(
        vendor="graph-oauth",
        base_url=token_origin(settings.graph_token_url),
        rate_limits={DEFAULT_GROUP: (RateLimit(10, 1.0),)},
        read_timeout_seconds=settings.http_timeout_seconds,
        connect_timeout_seconds=min(CONNECT_TIMEOUT_SECONDS, settings.http_timeout_seconds),
        breaker_failure_threshold=settings.breaker_failure_threshold,
        breaker_cool_down_seconds=settings.breaker_cool_down_seconds,
    )
