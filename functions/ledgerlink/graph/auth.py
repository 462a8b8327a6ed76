"""The connection's Graph app, app-only: client-credentials tokens from Microsoft Entra ID.

``POST https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token`` (form: ``grant_type=
client_credentials``, ``client_id``, ``client_secret``, ``scope=https://graph.microsoft.com/.default``)
answers a bearer token and its ``expires_in``. Client credentials have no refresh token and nothing to
rotate, so each process mints its own token and keeps it until :data:`EXPIRY_MARGIN_SECONDS` before it
expires (or until Graph answers 401, when the HTTP layer asks once for a fresh one).

The secret (``ledgerlink/<stage>/connections/<name>/graph/app``) holds ``client_id`` and
``client_secret`` (and may hold ``tenant_id``, which must then be the configuration file's). When Entra
refuses the app (a wrong, expired or revoked secret, ``invalid_client``), the secret is read again
bypassing the cache, since an operator may just have rotated it; if Entra refuses that too,
:class:`~ledgerlink.graph.errors.GraphCredentialsRejected` fails the connection's records with the
secret's name and Entra's AADSTS code (never the secret).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from aws_lambda_powertools import Logger

from ledgerlink.clock import Clock, SystemClock
from ledgerlink.config import Settings
from ledgerlink.graph.errors import GraphCredentialsRejected
from ledgerlink.http.client import VendorHttpClient
from ledgerlink.http.policy import CONNECT_TIMEOUT_SECONDS, VendorPolicy
from ledgerlink.http.ratelimit import DEFAULT_GROUP, RateLimit
from ledgerlink.secrets import SecretStore

logger = Logger(child=True)

GRAPH_SCOPE: Final = "https://graph.microsoft.com/.default"
# A token is renewed this long before Entra says it expires: a call that starts with it must not
# arrive with an expired one, and Entra's tokens live about an hour.
EXPIRY_MARGIN_SECONDS: Final = 300.0


@dataclass(frozen=True)
class _Token:
    value: str
    expires_at: float

    def __repr__(self) -> str:  # a token never reaches a log line through a repr
        return f"_Token(expires_at={self.expires_at})"


class GraphAuth:
    """An :class:`~ledgerlink.http.client.AuthProvider` for one connection's Graph app."""

    def __init__(
        self,
        *,
        secrets: SecretStore,
        secret_name: str,
        tenant_id: str,
        token_http: VendorHttpClient,
        token_path: str,
        clock: Clock | None = None,
    ) -> None:
        self.secrets = secrets
        self.secret_name = secret_name
        self.tenant_id = tenant_id
        self._http = token_http
        self._path = token_path.replace("{tenant}", tenant_id)
        self._clock: Clock = clock if clock is not None else SystemClock()
        self._token: _Token | None = None
        self._lock = threading.Lock()
        self.tokens_minted = 0

    def __repr__(self) -> str:
        return f"GraphAuth(secret_name={self.secret_name!r}, tenant_id={self.tenant_id!r})"

    @classmethod
    def for_connection(
        cls,
        settings: Settings,
        *,
        secrets: SecretStore,
        secret_name: str,
        tenant_id: str,
        http_factory: Callable[[VendorPolicy], VendorHttpClient],
        clock: Clock | None = None,
    ) -> tuple[GraphAuth, VendorHttpClient]:
        """The provider and the token host's HTTP client (built with ``http_factory``)."""
        origin, path = token_endpoint(settings.graph_token_url)
        token_http = http_factory(token_policy(settings, origin))
        auth = cls(
            secrets=secrets,
            secret_name=secret_name,
            tenant_id=tenant_id,
            token_http=token_http,
            token_path=path,
            clock=clock,
        )
        return auth, token_http

    def __call__(self, *, force_refresh: bool = False) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.access_token(force_refresh=force_refresh)}"}

    @property
    def app_id(self) -> str:
        """The app's client id (Outlook's limits are per app and mailbox)."""
        return str(self._credentials()["client_id"])

    def access_token(self, *, force_refresh: bool = False) -> str:
        with self._lock:
            now = self._clock.now()
            if (
                not force_refresh
                and self._token is not None
                and self._token.expires_at - EXPIRY_MARGIN_SECONDS > now
            ):
                return self._token.value
            self._token = self._mint()
            return self._token.value

    def _credentials(self, *, fresh: bool = False) -> Mapping[str, Any]:
        if fresh:
            invalidate = getattr(self.secrets, "invalidate", None)
            if callable(invalidate):
                invalidate(self.secret_name)
        secret = self.secrets.get_json(self.secret_name)
        missing = [key for key in ("client_id", "client_secret") if not secret.get(key)]
        if missing:
            raise GraphCredentialsRejected(
                f"secret {self.secret_name!r} lacks {', '.join(missing)}: put the Graph app's client id and "
                "secret there (docs/calendar-sync.md), then replay"
            )
        named = secret.get("tenant_id")
        if named and str(named) != self.tenant_id:
            raise GraphCredentialsRejected(
                f"secret {self.secret_name!r} is for tenant {named}, but the configuration file names tenant "
                f"{self.tenant_id} for this connection: fix one of them, then replay"
            )
        return secret

    def _mint(self) -> _Token:
        refusal = ""
        for fresh in (False, True):
            credentials = self._credentials(fresh=fresh)
            response = self._http.post(
                self._path,
                scope=self.tenant_id,
                data={
                    "grant_type": "client_credentials",
                    "client_id": str(credentials["client_id"]),
                    "client_secret": str(credentials["client_secret"]),
                    "scope": GRAPH_SCOPE,
                },
                # Minting a token changes nothing: a repeat is harmless.
                idempotent=True,
                accept=(400, 401),
            )
            if response.status_code == 200:
                body = response.json()
                self.tokens_minted += 1
                expires_in = float(body.get("expires_in") or 3599)
                return _Token(str(body["access_token"]), self._clock.now() + expires_in)
            refusal = _entra_refusal(response)
            if "invalid_client" not in refusal:
                break
            logger.warning(
                "Entra ID refused the Graph app's secret: reading the secret again",
                extra={"secret_name": self.secret_name, "tenant_id": self.tenant_id, "refusal": refusal},
            )
        raise GraphCredentialsRejected(
            f"Entra ID refused the Graph app of secret {self.secret_name!r} for tenant {self.tenant_id} "
            f"({refusal}): put the app's current client secret there, then `ledgerlink dlq replay`"
        )


def _entra_refusal(response: Any) -> str:
    """``invalid_client AADSTS7000215``: Entra's error and its AADSTS codes, never its description
    (which can echo the request)."""
    try:
        body = response.json()
    except ValueError:
        return f"HTTP {response.status_code}"
    codes = " ".join(f"AADSTS{code}" for code in body.get("error_codes") or [])
    return " ".join(
        part for part in (str(body.get("error") or f"HTTP {response.status_code}"), codes) if part
    )


def token_endpoint(token_url: str) -> tuple[str, str]:
    """``(origin, path template)`` of the token URL (a template with ``{tenant}``)."""
    parts = urlsplit(token_url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"Graph token URL must be absolute, got {token_url!r}")
    return f"{parts.scheme}://{parts.netloc}", parts.path or "/"


def token_policy(settings: Settings, origin: str) -> VendorPolicy:
    """Entra's token host: a token per process per hour is the normal load; a burst is a bug."""
    return VendorPolicy(
        vendor="graph-oauth",
        base_url=origin,
        rate_limits={DEFAULT_GROUP: (RateLimit(10, 1.0),)},
        read_timeout_seconds=settings.http_timeout_seconds,
        connect_timeout_seconds=min(CONNECT_TIMEOUT_SECONDS, settings.http_timeout_seconds),
        breaker_failure_threshold=settings.breaker_failure_threshold,
        breaker_cool_down_seconds=settings.breaker_cool_down_seconds,
    )
