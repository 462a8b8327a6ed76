"""Identity for the Graph sandbox: the demo tenant's users and app registrations, the Microsoft
Entra ID v2.0 token endpoint (client-credentials grant) and bearer-token checks on Graph calls.

Access tokens are JWT-shaped (header.payload.signature, base64url) with the claims an app-only
Graph token carries (``aud``, ``iss``, ``tid``, ``appid``, ``roles``, ``iat``/``nbf``/``exp``),
signed with HMAC-SHA256 under a key that lives only in this process: nothing outside the
sandbox can mint one, and a token outlives ``/_admin/reset`` until it expires, like a real one.
Real Entra tokens are RS256-signed; clients must not validate Graph tokens, so the difference is
invisible to them.

Entra error bodies follow Microsoft's documented sample: ``error``, ``error_description``
(``AADSTS<n>: ... Trace ID: ... Correlation ID: ... Timestamp: ...``), ``error_codes``,
``timestamp``, ``trace_id``, ``correlation_id``, ``error_uri``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledgerlink_local.sandboxes.core import HttpError, Request, Response

GRAPH_RESOURCE = "https://graph.microsoft.com"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"  # Microsoft Graph's well-known appId
# Entra also accepts the double slash some SDKs produce when joining resource and "/.default".
GRAPH_DEFAULT_SCOPES = (
    f"{GRAPH_RESOURCE}/.default",
    f"{GRAPH_RESOURCE}//.default",
    f"{GRAPH_APP_ID}/.default",
)
TOKEN_LIFETIME_SECONDS = 3599  # what Entra reports in expires_in for app-only tokens

ROLE_CALENDARS_READ = "Calendars.Read"
ROLE_CALENDARS_READBASIC = "Calendars.ReadBasic"  # getSchedule's least-privileged permission (its page)
ROLE_CALENDARS_READWRITE = "Calendars.ReadWrite"
ROLE_ONLINE_MEETINGS_READWRITE = "OnlineMeetings.ReadWrite.All"
ROLE_USERS_READ = "User.Read.All"


@dataclass(frozen=True)
class TenantUser:
    id: str
    user_principal_name: str
    mail: str
    display_name: str
    given_name: str | None = None
    surname: str | None = None
    job_title: str | None = None
    office_location: str | None = None
    preferred_language: str | None = "en-US"
    business_phones: tuple[str, ...] = ()
    mobile_phone: str | None = None
    has_mailbox: bool = True  # False: an unlicensed user, as Exchange answers for one
    # The user's default calendar: which online-meeting providers it offers (calendar resource); a
    # mailbox that cannot host Teams (no licence, a policy) offers none of teamsForBusiness.
    allowed_online_meeting_providers: tuple[str, ...] = ("teamsForBusiness",)
    default_online_meeting_provider: str | None = None  # None: teamsForBusiness if allowed, else the first
    # The zone of the user's working hours (mailboxSettings.workingHours.timeZone), a Windows name.
    time_zone: str = "Pacific Standard Time"

    @property
    def online_meeting_default(self) -> str:
        if self.default_online_meeting_provider:
            return self.default_online_meeting_provider
        if "teamsForBusiness" in self.allowed_online_meeting_providers:
            return "teamsForBusiness"
        return (
            self.allowed_online_meeting_providers[0] if self.allowed_online_meeting_providers else "unknown"
        )

    @property
    def allows_teams(self) -> bool:
        return "teamsForBusiness" in self.allowed_online_meeting_providers

    def resource(self) -> dict[str, Any]:
        return {
            "businessPhones": list(self.business_phones),
            "displayName": self.display_name,
            "givenName": self.given_name,
            "jobTitle": self.job_title,
            "mail": self.mail,
            "mobilePhone": self.mobile_phone,
            "officeLocation": self.office_location,
            "preferredLanguage": self.preferred_language,
            "surname": self.surname,
            "userPrincipalName": self.user_principal_name,
            "id": self.id,
        }

    def email_address(self) -> dict[str, str]:
        return {"name": self.display_name, "address": self.mail}


SECRET_ACTIVE = "active"
SECRET_EXPIRED = "expired"  # past its end date: Entra answers AADSTS7000222 for it
SECRET_REVOKED = "revoked"  # deleted from the app registration: it is just a wrong secret now (AADSTS7000215)
SECRET_STATES = (SECRET_ACTIVE, SECRET_EXPIRED, SECRET_REVOKED)


@dataclass(frozen=True)
class AppRegistration:
    client_id: str
    client_secret: str
    display_name: str
    roles: tuple[str, ...]
    service_principal_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    secret_state: str = SECRET_ACTIVE
    # Exchange RBAC for Applications: role -> the mailboxes (lower-case UPN, address or id) its
    # management scope holds ("Application Calendars.ReadWrite" scoped to the finance mailboxes). Such a
    # grant is not an Entra app role, so it is not in the token's roles claim; it adds to the roles.
    mailbox_roles: tuple[tuple[str, frozenset[str]], ...] = ()

    def scoped_roles(self, mailbox_names: tuple[str, ...]) -> tuple[str, ...]:
        """The roles Exchange RBAC grants this app on the mailbox known by ``mailbox_names``."""
        names = {name.lower() for name in mailbox_names if name}
        return tuple(role for role, scope in self.mailbox_roles if scope & names)

    def describe(self) -> dict[str, Any]:  # never the secret
        return {
            "clientId": self.client_id,
            "displayName": self.display_name,
            "roles": list(self.roles),
            "exchangeRoleAssignments": [
                {"role": role, "mailboxes": sorted(scope)} for role, scope in self.mailbox_roles
            ],
            "secretState": self.secret_state,
        }


@dataclass(frozen=True)
class TokenClaims:
    """What a verified bearer token says: which app, in which tenant, with which roles."""

    app_id: str
    tenant_id: str
    roles: tuple[str, ...]
    expires_at: int


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# --------------------------------------------------------------------------- Entra errors


def entra_error(status: int, error: str, code: int, description: str, now: datetime) -> HttpError:
    """An Entra ID token-endpoint error, shaped as Microsoft documents it."""
    trace_id, correlation_id = str(uuid.uuid4()), str(uuid.uuid4())
    timestamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": error,
        "error_description": (
            f"AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} "
            f"Timestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return HttpError(Response(status, body, dict(_NO_STORE), content_type="application/json; charset=utf-8"))


_NO_STORE = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


# --------------------------------------------------------------------------- token service


class TokenService:
    """Issues and verifies app-only access tokens for one tenant."""

    def __init__(self, tenant_id: str, tenant_domains: tuple[str, ...]) -> None:
        self.tenant_id = tenant_id
        self.tenant_domains = tuple(domain.lower() for domain in tenant_domains)
        self._signing_key = secrets.token_bytes(32)
        self.lifetime_seconds = TOKEN_LIFETIME_SECONDS

    def knows_tenant(self, tenant: str) -> bool:
        return tenant.lower() == self.tenant_id.lower() or tenant.lower() in self.tenant_domains

    # ---- the token endpoint

    def client_credentials(
        self, request: Request, tenant: str, apps: dict[str, AppRegistration], now: datetime
    ) -> Response:
        """``POST /{tenant}/oauth2/v2.0/token`` with the client-credentials grant."""
        if not self.knows_tenant(tenant):
            raise entra_error(
                400,
                "invalid_request",
                90002,
                f"Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are "
                "signing into the correct cloud. Check with your subscription administrator, this may "
                "happen if there are no active subscriptions for the tenant.",
                now,
            )
        form = _form(request)
        basic_id, basic_secret = _basic_credentials(request)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise _missing_parameter("grant_type", now)
        if grant_type != "client_credentials":
            raise entra_error(
                400,
                "unsupported_grant_type",
                70003,
                f"The app requested an unsupported grant type '{grant_type}'.",
                now,
            )
        client_id = form.get("client_id") or basic_id
        if not client_id:
            raise _missing_parameter("client_id", now)
        app = apps.get(client_id.lower())
        if app is None:
            raise entra_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory '{tenant}'. "
                "This can happen if the application has not been installed by the administrator of the "
                "tenant or consented to by any user in the tenant. You may have sent your authentication "
                "request to the wrong tenant.",
                now,
            )
        scope = form.get("scope")
        if not scope:
            raise _missing_parameter("scope", now)
        self._check_scope(scope, tenant, now)
        secret = form.get("client_secret") or basic_secret
        if not secret:
            raise entra_error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or "
                "'client_secret'.",
                now,
            )
        matches = hmac.compare_digest(secret.encode("utf-8"), app.client_secret.encode("utf-8"))
        if matches and app.secret_state == SECRET_EXPIRED:
            raise entra_error(
                401,
                "invalid_client",
                7000222,
                f"The provided client secret keys for app '{app.client_id}' are expired. Create a new client "
                "secret for the app in its registration and use that one.",
                now,
            )
        if not matches or app.secret_state == SECRET_REVOKED:
            raise entra_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is the "
                "client secret value, not the client secret ID, for a secret added to app "
                f"'{app.client_id}'.",
                now,
            )
        token = self.issue(app, now)
        body = {
            "token_type": "Bearer",
            "expires_in": self.lifetime_seconds,
            "ext_expires_in": self.lifetime_seconds,
            "access_token": token,
        }
        return Response(200, body, dict(_NO_STORE), content_type="application/json; charset=utf-8")

    def _check_scope(self, scope: str, tenant: str, now: datetime) -> None:
        scopes = scope.split()
        if len(scopes) != 1:
            raise entra_error(
                400,
                "invalid_scope",
                70011,
                f"The provided value for the input parameter 'scope' is not valid. The scope {scope} is "
                "not valid.",
                now,
            )
        requested = scopes[0]
        if not requested.endswith("/.default"):
            raise entra_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {requested} is not valid. Client credential flows must have "
                "a scope value with /.default suffixed to the resource identifier (application ID URI).",
                now,
            )
        if requested.lower() not in GRAPH_DEFAULT_SCOPES:
            resource = requested[: -len("/.default")]
            raise entra_error(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named {tenant}. "
                "This can happen if the application has not been installed by the administrator of the "
                "tenant or consented to by any user in the tenant. You might have sent your authentication "
                "request to the wrong tenant.",
                now,
            )

    def issue(self, app: AppRegistration, now: datetime) -> str:
        issued_at = int(now.timestamp())
        header = {"typ": "JWT", "alg": "HS256", "kid": "ledgerlink-graph-sandbox"}
        claims = {
            "aud": GRAPH_RESOURCE,
            "iss": f"https://sts.windows.net/{self.tenant_id}/",
            "iat": issued_at,
            "nbf": issued_at,
            "exp": issued_at + self.lifetime_seconds,
            "app_displayname": app.display_name,
            "appid": app.client_id,
            "appidacr": "1",
            "idp": f"https://sts.windows.net/{self.tenant_id}/",
            "idtyp": "app",
            "oid": app.service_principal_id,
            "roles": list(app.roles),
            "sub": app.service_principal_id,
            "tid": self.tenant_id,
            "uti": _b64url(secrets.token_bytes(16)),
            "ver": "1.0",
        }
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = hmac.new(self._signing_key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return signing_input + "." + _b64url(signature)

    # ---- Graph calls

    def verify(self, authorization: str | None, now: datetime) -> TokenClaims:
        """The claims of a valid bearer token; raises TokenRejected with Graph's message otherwise."""
        if not authorization or not authorization.strip():
            raise TokenRejected("Access token is empty.")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise TokenRejected("Access token is empty.")
        parts = token.split(".")
        if len(parts) != 3:
            raise TokenRejected(
                "IDX14100: JWT is not well formed, there are no dots (.).\nThe token needs to be in JWS or "
                "JWE Compact Serialization Format. (JWS): 'EncodedHeader.EndcodedPayload.EncodedSignature'. "
                "(JWE): 'EncodedProtectedHeader.EncodedEncryptedKey.EncodedInitializationVector."
                "EncodedCiphertext.EncodedAuthenticationTag'."
                if len(parts) == 1
                else "IDX14100: JWT is not well formed."
            )
        try:
            claims = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except (ValueError, binascii.Error) as exc:
            raise TokenRejected("IDX14100: JWT is not well formed.") from exc
        expected = hmac.new(
            self._signing_key, f"{parts[0]}.{parts[1]}".encode("ascii"), hashlib.sha256
        ).digest()
        if not isinstance(claims, dict) or not hmac.compare_digest(signature, expected):
            raise TokenRejected("Access token validation failure. Invalid signature.")
        if claims.get("aud") not in (GRAPH_RESOURCE, GRAPH_APP_ID):
            raise TokenRejected("Access token validation failure. Invalid audience.")
        if claims.get("tid") != self.tenant_id:
            raise TokenRejected("Access token validation failure. Invalid issuer.")
        if now.timestamp() >= float(claims.get("exp", 0)):
            raise TokenRejected("Lifetime validation failed, the token is expired.")
        return TokenClaims(
            app_id=str(claims.get("appid")),
            tenant_id=self.tenant_id,
            roles=tuple(str(role) for role in claims.get("roles", [])),
            expires_at=int(claims["exp"]),
        )


class TokenRejected(Exception):
    """A bearer token Graph would refuse; the message is Graph's."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _missing_parameter(name: str, now: datetime) -> HttpError:
    return entra_error(
        400,
        "invalid_request",
        900144,
        f"The request body must contain the following parameter: '{name}'.",
        now,
    )


def _form(request: Request) -> dict[str, str]:
    content_type = (request.headers.get("Content-Type") or "").lower()
    if "application/x-www-form-urlencoded" not in content_type:
        return {}  # Entra reads only form bodies; anything else lacks every parameter
    parsed = urllib.parse.parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[0] for name, values in parsed.items() if values}


def _basic_credentials(request: Request) -> tuple[str | None, str | None]:
    """client_secret_basic: the RFC 6749 alternative to form fields."""
    header = request.headers.get("Authorization") or ""
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        decoded = base64.b64decode(value.strip()).decode("utf-8")
    except (ValueError, binascii.Error):
        return None, None
    client_id, _, secret = decoded.partition(":")
    return urllib.parse.unquote_plus(client_id) or None, urllib.parse.unquote_plus(secret) or None
