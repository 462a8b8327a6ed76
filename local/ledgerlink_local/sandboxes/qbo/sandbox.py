"""A faithful local QuickBooks Online (Accounting API v3) with Intuit's OAuth 2.0 token endpoint.

Run it alone with ``python -m ledgerlink_local.sandboxes.qbo --port 4011``; the tests serve it in-process
(``qbo_sandbox`` fixture). Point any QBO client at it by using the sandbox URL as both the API base URL
and the OAuth host (token URL ``<base>/oauth2/v1/tokens/bearer``); :class:`DemoCredentials` holds the
demo app's credentials and realm. Facts come from ../shared/api-notes.md §1-2 and Intuit's XSD
(../shared/specs/quickbooks/xsd/); error bodies were checked against bodies quoted in public issue
threads (see faults.py).

Endpoints (15, on 13 routes: the POST /{entity} route serves create/update, delete and void):

| method | path | what |
|---|---|---|
| POST | /oauth2/v1/tokens/bearer | token endpoint: ``refresh_token`` and ``authorization_code`` grants, HTTP Basic client auth |
| POST | /oauth2/v1/tokens/revoke | revoke a refresh or access token (the whole connection) |
| POST | /v2/oauth2/tokens/revoke | the same, at Intuit's documented revoke path |
| GET | /connect/oauth2 | authorize (``client_id``, ``response_type=code``, ``scope``, ``redirect_uri``, ``state``): consents at once and redirects to ``redirect_uri`` with ``code``, ``state``, ``realmId`` (the company the user picks: ``realm_id``, a sandbox-only parameter, else the demo company); ``authorize_decision: "deny"`` redirects with ``error=access_denied`` instead |
| GET | /.well-known/openid_configuration | discovery document (so Intuit's ``intuit-oauth`` client can be pointed here) |
| GET | /.well-known/openid_sandbox_configuration | the same |
| GET | /v3/company/{realmId}/{entity}/{id} | read (Customer, Item, Invoice, Estimate, Payment, TimeActivity, Employee, TaxCode, TaxRate, Term, Account, PaymentMethod; ``companyinfo/{realmId}``) |
| GET | /v3/company/{realmId}/preferences | read Preferences |
| POST | /v3/company/{realmId}/{entity} | create; full update (Id + SyncToken); sparse update (``"sparse": true``) |
| POST | /v3/company/{realmId}/{entity}?operation=delete | delete (Invoice, Estimate, Payment, TimeActivity) |
| POST | /v3/company/{realmId}/{entity}?operation=void | void (Invoice, Payment; also ``operation=update&include=void``) |
| GET | /v3/company/{realmId}/query?query=... | query language (query.py) |
| POST | /v3/company/{realmId}/query | the same, statement as an ``application/text`` body |
| GET | /v3/company/{realmId}/cdc?entities=...&changedSince=... | change data capture (30 days, 1000 objects) |
| POST | /v3/company/{realmId}/batch | batch: up to 30 create/update/delete/void/query items, per-item faults |

Behaviour: ``minorversion`` accepted on every call; writes honour ``requestid`` (per realm: the same id
returns the first successful response and creates nothing twice; ids over 50 characters are refused);
access tokens expire after 3600 s of sandbox clock; refresh tokens rotate on every refresh (config
``refresh_token_rotation: "daily"`` keeps one for 24 h, like Intuit), a rotated or revoked one is
``invalid_grant``; limits per realm: 500 requests/min, 10/s per realm and app, 40 batch requests/min
(429 with Intuit's ThrottleExceeded fault and ``Retry-After``); webhooks on every entity change,
batched per realm over ``webhook_batch_window_seconds`` (1 s), CloudEvents by default or legacy
``eventNotifications`` (``webhook_format``), signed ``intuit-signature`` = base64(HMAC-SHA256(verifier
token, body)), retried at 10 s, 20 s, 30 s, 5 min, 20 min, 2 h, 4 h, 6 h, each times ``webhook_time_factor``.

Admin (besides core's): ``POST /_admin/oauth/revoke`` (``{"realm_id"?}``: revoke connections),
``POST /_admin/oauth/expire-access-tokens``, ``POST /_admin/demo-activity`` (``{"steps": n}``),
``POST /_admin/seed`` (``{"companies": [{"realm_id", "refresh_token"?}]}`` adds a demo company;
``{"realm_id"?, "entities": {"Customer": [...], ...}}`` creates objects), ``POST /_admin/preferences``
(``{"realm_id"?, "SalesFormsPrefs": {"CustomTxnNumbers": false}}``: merges Preferences sections into a
company's as a sparse update would, without a webhook; the API's own sparse update of Preferences does
the same with one), ``GET /_admin/state``.
Config keys: ``refresh_token_rotation``, ``access_token_lifetime_seconds``,
``refresh_token_lifetime_seconds``, ``rate_limit_per_minute``, ``rate_limit_per_second``,
``batch_rate_limit_per_minute``, ``batch_max_items``, ``cdc_max_age_days``, ``cdc_max_objects``,
``webhook_format``, ``webhook_batch_window_seconds``, ``verifier_token``, ``authorize_decision``, and two assumed QBO rules
(unverified, model.py): ``doc_number_when_auto_numbering`` (``kept`` | ``replaced``: a DocNumber sent
while CustomTxnNumbers is off), ``display_names_case_sensitive`` (false) (reset restores the defaults).

Documented behaviours NOT reproduced yet: XML bodies (JSON only, whatever ``Accept`` says — real QBO
answers some errors, e.g. throttling, in XML); entities other than those listed (Vendor, Bill,
SalesReceipt, CreditMemo, ...), writes to TaxCode/TaxRate/Term/Account, Merge, attachments/uploads,
reports, ``/send`` and PDF; GroupLineDetail (bundles), shipping lines, tax-inclusive amounts,
automated sales tax (AST), non-US tax models, exchange-rate history (one rate per currency), sub-customers
/jobs and projects; field validation below the top level of a body (unknown nested keys are ignored,
where QBO answers 2010); webhooks held back while a delivery is failing; the name change QBO makes on
inactive list objects ("(deleted)"); the sandbox-host throttle of 100 requests/min per app (production's
limits are enforced).

Unverified choices (no primary source found; each kept plausible and easy to change): ``requestid``
remembers successful answers only, so a refused write can be retried under the same id; an invoice a
payment is applied to gets a new SyncToken and an ``Update`` webhook; a customer's Balance changes without
one; a voided payment keeps no lines; CDC answers ``{}`` for a requested entity without changes; the
``detail`` of expired/revoked-token 401s; the fault codes for an over-long CDC window (500) and an
oversized batch (6000). More in faults.py, model.py and query.py.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, timedelta
from typing import Any

from ledgerlink_local.sandboxes.core import (
    HttpError,
    JsonBody,
    RateDecision,
    RateLimit,
    Request,
    Response,
    Sandbox,
    SandboxClock,
    WebhookDispatcher,
    run_from_command_line,
)
from ledgerlink_local.sandboxes.qbo import faults
from ledgerlink_local.sandboxes.qbo.demo import demo_activity_step, seed_demo_company
from ledgerlink_local.sandboxes.qbo.demo_thames import TIME_ZONE as THAMES_TIME_ZONE
from ledgerlink_local.sandboxes.qbo.demo_thames import seed_thames_company
from ledgerlink_local.sandboxes.qbo.faults import QboFault
from ledgerlink_local.sandboxes.qbo.model import (
    DOC_NUMBER_POLICIES,
    ENTITIES,
    ENTITY_BY_LOWER,
    Change,
    Company,
    parse_changed_since,
)
from ledgerlink_local.sandboxes.qbo.query import MAX_RESULTS_LIMIT, execute, parse

# ---------------------------------------------------------------------------- demo credentials

DEMO_REALM_ID = "9341453908059321"
DEMO_CLIENT_ID = "ABLedgerLinkLocalDemoClientId000000000000000000"
DEMO_CLIENT_SECRET = "ledgerlink-local-demo-client-secret-0000"  # a local demo value, not a real secret
# The app's grant to the demo company: the local stack's secret holds it, and rotates it.
DEMO_REFRESH_TOKEN = "AB11LedgerLinkLocalDemoRefreshToken00000000000000"
# A grant of its own for the person at the keyboard (local.json), as Postman or Intuit's OAuth playground
# would get by connecting to the company: rotating it never touches the app's (see docs/local.md).
DEMO_PERSON_REFRESH_TOKEN = "AB11LedgerLinkLocalDemoPersonGrant000000000000000"
# The second demo company (the "thames" connection: a UK business, GBP, VAT; demo_thames.py).
THAMES_REALM_ID = "4620816365287349190"
THAMES_REFRESH_TOKEN = "AB11LedgerLinkLocalThamesRefreshToken000000000000"
THAMES_PERSON_REFRESH_TOKEN = "AB11LedgerLinkLocalThamesPersonGrant0000000000000"
DEMO_VERIFIER_TOKEN = "ledgerlink-local-demo-verifier-token"
DEMO_REDIRECT_URI = "http://localhost:8000/oauth/callback"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
REVOKE_PATH = "/oauth2/v1/tokens/revoke"
DEFAULT_PORT = 4011
COMPANY_TIME_ZONE = "America/Los_Angeles"


@dataclass(frozen=True)
class DemoCompany:
    """A company the sandbox starts with: its realm, its data, and two grants to it: the app's (the local
    stack's secret) and the person's at the keyboard (local.json)."""

    realm_id: str
    app_refresh_token: str
    person_refresh_token: str
    time_zone: str
    seed: Callable[[Company], dict[str, Any]]


DEMO_COMPANY = DemoCompany(
    DEMO_REALM_ID, DEMO_REFRESH_TOKEN, DEMO_PERSON_REFRESH_TOKEN, COMPANY_TIME_ZONE, seed_demo_company
)
THAMES_COMPANY = DemoCompany(
    THAMES_REALM_ID, THAMES_REFRESH_TOKEN, THAMES_PERSON_REFRESH_TOKEN, THAMES_TIME_ZONE, seed_thames_company
)
DEMO_COMPANIES = (DEMO_COMPANY, THAMES_COMPANY)


@dataclass(frozen=True)
class DemoCredentials:
    """What a QBO client needs to talk to a running sandbox (``.ledgerlink/local.json``'s ``qbo``).

    ``refresh_token`` is the person's own grant; ``app_refresh_token`` the app's (the local stack's
    secret). QBO rotates refresh tokens, so whoever refreshes with the other's token revokes it."""

    base_url: str
    token_url: str
    realm_id: str = DEMO_REALM_ID
    client_id: str = DEMO_CLIENT_ID
    client_secret: str = DEMO_CLIENT_SECRET
    refresh_token: str = DEMO_PERSON_REFRESH_TOKEN
    verifier_token: str = DEMO_VERIFIER_TOKEN
    app_refresh_token: str = DEMO_REFRESH_TOKEN

    @classmethod
    def for_sandbox(cls, url: str, company: DemoCompany = DEMO_COMPANY) -> DemoCredentials:
        base = url.rstrip("/")
        return cls(
            base_url=base,
            token_url=base + TOKEN_PATH,
            realm_id=company.realm_id,
            refresh_token=company.person_refresh_token,
            app_refresh_token=company.app_refresh_token,
        )

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


# ---------------------------------------------------------------------------- settings

WEBHOOK_RETRY_SCHEDULE_SECONDS = [10.0, 20.0, 30.0, 300.0, 1200.0, 7200.0, 14400.0, 21600.0]
WEBHOOK_FORMATS = ("cloudevents", "legacy")
ROTATIONS = ("every_refresh", "daily")
REQUEST_ID_MAX_LENGTH = 50
AUTH_CODE_LIFETIME_SECONDS = 600


@dataclass
class QboOptions:
    refresh_token_rotation: str = "every_refresh"
    access_token_lifetime_seconds: int = 3600
    refresh_token_lifetime_seconds: int = 8_726_400  # what Intuit answers in x_refresh_token_expires_in
    rate_limit_per_minute: int = 500
    rate_limit_per_second: int = 10
    batch_rate_limit_per_minute: int = 40
    batch_max_items: int = 30
    cdc_max_age_days: int = 30
    cdc_max_objects: int = 1000
    webhook_format: str = "cloudevents"
    webhook_batch_window_seconds: float = 1.0
    # While true, changes are recorded (CDC, queries see them) but no webhook is sent for them, then or
    # after release: the change a lost webhook leaves behind, which only the CDC catch-up recovers.
    webhooks_held: bool = False
    verifier_token: str = DEMO_VERIFIER_TOKEN
    # Assumed QBO rules, both unverified (model.py's docstring): a DocNumber sent while the company's
    # CustomTxnNumbers is off is "kept" (unchecked) or "replaced" by QBO's own number; names (6240)
    # compare ignoring case unless display_names_case_sensitive.
    doc_number_when_auto_numbering: str = "kept"
    display_names_case_sensitive: bool = False
    # What the user answers on the consent page: "consent" (connect) or "deny" (Cancel).
    authorize_decision: str = "consent"

    def update(self, changes: Mapping[str, Any]) -> None:
        for name, current in asdict(self).items():
            if name not in changes:
                continue
            value = changes[name]
            if isinstance(current, bool):
                if not isinstance(value, bool):
                    raise ValueError(f"{name} must be true or false")
            elif isinstance(current, str):
                value = str(value)
            elif isinstance(current, int):
                value = int(value)
                if value <= 0:
                    raise ValueError(f"{name} must be a positive number")
            else:
                value = float(value)
                if value < 0:
                    raise ValueError(f"{name} can't be negative")
            setattr(self, name, value)
        if self.refresh_token_rotation not in ROTATIONS:
            raise ValueError(f"refresh_token_rotation must be one of {', '.join(ROTATIONS)}")
        if self.authorize_decision not in ("consent", "deny"):
            raise ValueError("authorize_decision must be consent or deny")
        if self.webhook_format not in WEBHOOK_FORMATS:
            raise ValueError(f"webhook_format must be one of {', '.join(WEBHOOK_FORMATS)}")
        if self.doc_number_when_auto_numbering not in DOC_NUMBER_POLICIES:
            raise ValueError(
                f"doc_number_when_auto_numbering must be one of {', '.join(DOC_NUMBER_POLICIES)}"
            )


# ---------------------------------------------------------------------------- OAuth state


@dataclass
class Grant:
    """One app's connection to one company; revoking it kills every token issued under it."""

    grant_id: str
    realm_id: str
    client_id: str
    revoked: bool = False


@dataclass
class RefreshToken:
    grant_id: str
    issued_at: float
    expires_at: float
    superseded: bool = False


@dataclass
class AccessToken:
    grant_id: str
    expires_at: float


@dataclass
class AuthorizationCode:
    client_id: str
    realm_id: str
    redirect_uri: str
    expires_at: float


# ---------------------------------------------------------------------------- the sandbox


class QboSandbox(Sandbox):
    vendor = "qbo"

    def __init__(self, *, rate_limits_enabled: bool = True, clock: SandboxClock | None = None) -> None:
        super().__init__(rate_limits_enabled=rate_limits_enabled, clock=clock)
        self.options = QboOptions()
        self.clients: dict[str, str] = {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET}
        self.companies: dict[str, Company] = {}
        self.grants: dict[str, Grant] = {}
        self.refresh_tokens: dict[str, RefreshToken] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.authorization_codes: dict[str, AuthorizationCode] = {}
        self.request_cache: dict[tuple[str, str], Response] = {}
        self.demo_ids: dict[str, Any] = {}
        self._demo_step = 0
        self.webhooks = WebhookDispatcher(
            build=self._webhook_body,
            retry_schedule_seconds=list(WEBHOOK_RETRY_SCHEDULE_SECONDS),
            batch_window_seconds=self.options.webhook_batch_window_seconds,
            group_key=lambda change: str(change.realm_id),
        )
        self.add_route("POST", TOKEN_PATH, self._token, authenticated=False)
        self.add_route("POST", REVOKE_PATH, self._revoke, authenticated=False)
        self.add_route("POST", "/v2/oauth2/tokens/revoke", self._revoke, authenticated=False)
        self.add_route("GET", "/connect/oauth2", self._authorize, authenticated=False)
        self.add_route("GET", "/.well-known/openid_configuration", self._discovery, authenticated=False)
        self.add_route(
            "GET", "/.well-known/openid_sandbox_configuration", self._discovery, authenticated=False
        )
        company = "/v3/company/{realm_id}"
        self.add_route("GET", company + "/query", self._query)
        self.add_route("POST", company + "/query", self._query)
        self.add_route("GET", company + "/cdc", self._cdc)
        self.add_route("POST", company + "/batch", self._batch)
        self.add_route("GET", company + "/{entity}/{entity_id}", self._read)
        self.add_route("GET", company + "/{entity}", self._read_singleton)
        self.add_route("POST", company + "/{entity}", self._write)
        self.reset_state()

    # ---- state

    def reset_state(self) -> None:
        # Core resets the clock after this hook; the demo history must be dated against the real time.
        self.clock.reset()
        self.options = QboOptions()
        if self.webhooks is not None:
            self.webhooks.batch_window_seconds = self.options.webhook_batch_window_seconds
        self.clients = {DEMO_CLIENT_ID: DEMO_CLIENT_SECRET}
        self.companies = {}
        self.grants = {}
        self.refresh_tokens = {}
        self.access_tokens = {}
        self.authorization_codes = {}
        self.request_cache = {}
        self._demo_step = 0
        self.webhooks_withheld = 0  # changes no webhook was sent for (webhooks_held)
        self.company_ids: dict[str, dict[str, Any]] = {}
        for demo in DEMO_COMPANIES:
            self.company_ids[demo.realm_id] = self._add_company(
                demo.realm_id, demo.app_refresh_token, seed=demo.seed, time_zone=demo.time_zone
            )
            self._add_grant(demo.realm_id, demo.person_refresh_token)
        self.demo_ids = self.company_ids[DEMO_REALM_ID]

    def _add_company(
        self,
        realm_id: str,
        refresh_token: str,
        *,
        seed: Callable[[Company], dict[str, Any]] = seed_demo_company,
        time_zone: str = COMPANY_TIME_ZONE,
    ) -> dict[str, Any]:
        company = Company(realm_id, self.clock.now, time_zone)
        ids = seed(company)
        company.on_change = self._on_change
        self.companies[realm_id] = company
        self._apply_rules(company)
        self._add_grant(realm_id, refresh_token)
        return ids

    def _add_grant(self, realm_id: str, refresh_token: str) -> Grant:
        """A connection of the demo app to ``realm_id`` with its own refresh-token family, as each
        authorization (the app's, a person's in Postman) gets from Intuit: rotating or reusing a token
        of one family never touches another's."""
        grant = Grant(uuid.uuid4().hex, realm_id, DEMO_CLIENT_ID)
        self.grants[grant.grant_id] = grant
        now = self.clock.time()
        self.refresh_tokens[refresh_token] = RefreshToken(
            grant.grant_id, now, now + self.options.refresh_token_lifetime_seconds
        )
        return grant

    def seed(self, body: JsonBody) -> JsonBody:
        if not isinstance(body, Mapping):
            raise ValueError("seed body must be a JSON object")
        added: list[dict[str, str]] = []
        for spec in body.get("companies", []):
            realm_id = str(spec.get("realm_id", ""))
            if not realm_id.isdigit() or realm_id in self.companies:
                raise ValueError("each company needs a new, numeric realm_id")
            token = str(spec.get("refresh_token") or "AB11" + secrets.token_urlsafe(36))
            self._add_company(realm_id, token)
            added.append({"realm_id": realm_id, "refresh_token": token})
        created: dict[str, list[str]] = {}
        entities = body.get("entities", {})
        if entities:
            company = self.companies.get(str(body.get("realm_id", DEMO_REALM_ID)))
            if company is None:
                raise ValueError("unknown realm_id")
            listener, company.on_change = company.on_change, None  # seeding sends no webhooks
            try:
                for entity, objects in entities.items():
                    if entity not in ENTITIES:
                        raise ValueError(f"unknown entity {entity}")
                    for obj in objects:
                        created.setdefault(entity, []).append(company.create(entity, obj)["Id"])
            except QboFault as fault:
                raise ValueError(f"{fault.code} {fault.message}: {fault.detail}") from None
            finally:
                company.on_change = listener
        return {"companies": added, "created": created}

    def dump_state(self) -> JsonBody:
        now = self.clock.time()
        return {
            "webhooks_withheld": self.webhooks_withheld,
            "realms": {
                realm_id: {entity: list(objects.values()) for entity, objects in company.objects.items()}
                for realm_id, company in self.companies.items()
            },
            "oauth": {
                "connections": [
                    {"realm_id": grant.realm_id, "client_id": grant.client_id, "revoked": grant.revoked}
                    for grant in self.grants.values()
                ],
                "live_access_tokens": sum(
                    1 for token in self.access_tokens.values() if token.expires_at > now
                ),
            },
        }

    def config(self) -> dict[str, Any]:
        return {**super().config(), **asdict(self.options)}

    def update_config(self, changes: Mapping[str, Any]) -> None:
        super().update_config(changes)
        candidate = QboOptions(**asdict(self.options))
        candidate.update(changes)
        self.options = candidate
        if self.webhooks is not None:
            self.webhooks.batch_window_seconds = candidate.webhook_batch_window_seconds
        for company in self.companies.values():
            self._apply_rules(company)

    def _apply_rules(self, company: Company) -> None:
        """The assumed (unverified) QBO rules the config chooses, on one company."""
        company.sent_doc_number_policy = self.options.doc_number_when_auto_numbering
        company.names_case_sensitive = self.options.display_names_case_sensitive

    def _set_preferences(self, body: JsonBody) -> dict[str, Any]:
        """``POST /_admin/preferences``: merge Preferences sections into one company's, as a sparse
        update through the API would (new SyncToken), but out of band: no webhook is sent."""
        if not isinstance(body, Mapping):
            raise ValueError("preferences body must be a JSON object")
        company = self.companies.get(str(body.get("realm_id", DEMO_REALM_ID)))
        if company is None:
            raise ValueError("unknown realm_id")
        sections = {key: value for key, value in body.items() if key != "realm_id"}
        if not sections or not all(isinstance(value, Mapping) for value in sections.values()):
            raise ValueError(
                'give Preferences sections, e.g. {"SalesFormsPrefs": {"CustomTxnNumbers": false}}'
            )
        current = company.preferences()
        listener, company.on_change = company.on_change, None
        try:
            updated = company.update(
                "Preferences",
                {"Id": current["Id"], "SyncToken": current["SyncToken"], "sparse": True, **sections},
            )
        except QboFault as fault:
            raise ValueError(f"{fault.code} {fault.message}: {fault.detail}") from None
        finally:
            company.on_change = listener
        return {"realm_id": company.realm_id, "Preferences": updated}

    def admin_action(self, method: str, action: str, body: JsonBody, request: Request) -> Response | None:
        if method != "POST":
            return None
        with self.lock:
            if action == "oauth/revoke":
                realm_id = body.get("realm_id") if isinstance(body, Mapping) else None
                revoked = 0
                for grant in self.grants.values():
                    if not grant.revoked and (realm_id is None or grant.realm_id == str(realm_id)):
                        grant.revoked = True
                        revoked += 1
                return Response(200, {"revoked_connections": revoked})
            if action == "oauth/expire-access-tokens":
                now = self.clock.time()
                for token in self.access_tokens.values():
                    token.expires_at = min(token.expires_at, now)
                return Response(200, {"expired_access_tokens": len(self.access_tokens)})
            if action == "preferences":
                return Response(200, self._set_preferences(body))  # bad input: ValueError -> 400
            if action == "demo-activity":
                steps = int(body.get("steps", 1)) if isinstance(body, Mapping) else 1
                realm = (
                    str(body.get("realm_id", DEMO_REALM_ID)) if isinstance(body, Mapping) else DEMO_REALM_ID
                )
                if realm not in self.companies:
                    return Response(400, {"error": f"unknown realm_id {realm}"})
                changes = [self.demo_activity_step(realm_id=realm) for _ in range(steps)]
                return Response(200, {"changes": changes})
        return None

    # ---- demo activity (the local stack's `make run`)

    def demo_activity_step(self, step: int | None = None, realm_id: str = DEMO_REALM_ID) -> dict[str, Any]:
        """One realistic change in a demo company (new invoice, payment, estimate, moved due date)."""
        with self.lock:
            if step is None:
                step = self._demo_step
                self._demo_step += 1
            return {"realm_id": realm_id, **demo_activity_step(self.companies[realm_id], step)}

    def run_demo_activity(
        self, stop: threading.Event, steps: int = 6, interval_seconds: float = 10.0
    ) -> None:
        """Every ``interval_seconds``, one change in each demo company (the same kind in each)."""
        for _ in range(steps):
            if stop.wait(interval_seconds):
                return
            with self.lock:
                step = self._demo_step
                self._demo_step += 1
            for demo in DEMO_COMPANIES:
                if demo.realm_id in self.companies:
                    self.demo_activity_step(step, realm_id=demo.realm_id)

    # ---- hooks: auth, limits, error bodies

    def authenticate(self, request: Request) -> Grant:
        header = request.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        token = token.strip()
        epoch_ms = int(self.clock.time() * 1000)
        if scheme.lower() != "bearer" or not token:
            raise self._unauthorized("Authorization header is missing or is not a bearer token", epoch_ms)
        with self.lock:
            access = self.access_tokens.get(token)
            if access is None:
                detail = (
                    "Malformed bearer token: too short or too long"
                    if not 20 <= len(token) <= 2048
                    else "Token invalid"
                )
                raise self._unauthorized(detail, epoch_ms)
            grant = self.grants[access.grant_id]
            if grant.revoked:
                raise self._unauthorized("Token revoked", epoch_ms)
            if self.clock.time() >= access.expires_at:
                raise self._unauthorized("Token expired", epoch_ms)
        realm_id = request.path_params.get("realm_id")
        if realm_id is not None and realm_id != grant.realm_id:
            raise HttpError(self._respond(403, faults.authorization_failed(epoch_ms)))
        return grant

    def _unauthorized(self, detail: str, epoch_ms: int) -> HttpError:
        response = self._respond(401, faults.authentication_failed(detail, epoch_ms))
        response.headers["WWW-Authenticate"] = 'Bearer realm="Intuit", error="invalid_token"'
        return HttpError(response)

    def rate_limits(self, request: Request) -> list[RateLimit]:
        realm_id = request.path_params.get("realm_id")
        if realm_id is None:
            return []
        client = request.principal.client_id if isinstance(request.principal, Grant) else ""
        options = self.options
        limits = [
            RateLimit(
                f"qbo:{realm_id}:minute", options.rate_limit_per_minute, 60, "500 requests/min per realm"
            ),
            RateLimit(f"qbo:{realm_id}:{client}:second", options.rate_limit_per_second, 1, "10 requests/s"),
        ]
        if request.path.rstrip("/").endswith("/batch"):
            limits.append(
                RateLimit(f"qbo:{realm_id}:batch", options.batch_rate_limit_per_minute, 60, "40 batch/min")
            )
        return limits

    def rate_limited_response(self, request: Request, decision: RateDecision) -> Response:
        response = self._respond(429, faults.fault_body(faults.throttled(), self._time(request)))
        response.headers["Retry-After"] = str(max(1, int(decision.retry_after + 0.999)))
        return response

    def rate_limit_headers(self, request: Request, decisions: list[RateDecision]) -> dict[str, str]:
        return {"intuit_tid": _tid()}

    def error_response(self, status: int, message: str) -> Response:
        time = self._company_time(None)
        if status == 429:
            return self._respond(429, faults.fault_body(faults.throttled(), time), {"Retry-After": "60"})
        if status >= 500:
            fault = faults.system_error(message)
            fault.status = status
            return self._respond(status, faults.fault_body(fault, time))
        return self._respond(status, faults.fault_body(faults.unsupported_operation(message), time))

    def not_found(self, request: Request) -> Response:
        if request.path.startswith("/v3/company/"):
            detail = (
                f"Operation Could not find resource for relative : {request.path} of full path: "
                f"{self.base_url}{request.path} is not supported."
            )
            return self._respond(
                400, faults.fault_body(faults.unsupported_operation(detail), self._time(request))
            )
        return self.error_response(404, f"no resource at {request.path}")

    # ---- OAuth 2.0

    def _client(self, request: Request) -> str:
        header = request.headers.get("Authorization") or ""
        scheme, _, encoded = header.partition(" ")
        client_id, secret = "", ""
        if scheme.lower() == "basic":
            try:
                client_id, _, secret = base64.b64decode(encoded.strip()).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                client_id = ""
        expected = self.clients.get(client_id)
        # Compare in constant time whatever the client id, so timing says nothing about the secret.
        known = hmac.compare_digest(secret.encode(), (expected or "\x00" * len(secret)).encode())
        if expected is None or not known:
            raise HttpError(_oauth_error(401, "invalid_client"))
        return client_id

    def _form(self, request: Request) -> dict[str, str]:
        try:
            text = request.text()
        except UnicodeDecodeError:
            raise HttpError(_oauth_error(400, "invalid_request")) from None
        content_type = (request.headers.get("Content-Type") or "").lower()
        if "json" in content_type:
            try:
                data = json.loads(text or "{}")
            except ValueError:
                raise HttpError(_oauth_error(400, "invalid_request")) from None
            return {str(k): str(v) for k, v in data.items()} if isinstance(data, Mapping) else {}
        return {key: values[0] for key, values in urllib.parse.parse_qs(text).items()}

    def _token(self, request: Request) -> Response:
        client_id = self._client(request)
        form = self._form(request)
        grant_type = form.get("grant_type")
        now = self.clock.time()
        if not grant_type:
            return _oauth_error(400, "invalid_request")
        if grant_type == "refresh_token":
            presented = form.get("refresh_token")
            if not presented:
                return _oauth_error(400, "invalid_request")
            stored = self.refresh_tokens.get(presented)
            grant = self.grants.get(stored.grant_id) if stored else None
            if (
                stored is None
                or grant is None
                or stored.superseded
                or grant.revoked
                or grant.client_id != client_id
                or now >= stored.expires_at
            ):
                return _oauth_error(400, "invalid_grant")
            keep = self.options.refresh_token_rotation == "daily" and now - stored.issued_at < 24 * 3600
            refresh_token = presented if keep else self._issue_refresh_token(grant, stored)
            return self._token_response(grant, refresh_token)
        if grant_type == "authorization_code":
            code = self.authorization_codes.pop(form.get("code", ""), None)
            if (
                code is None
                or code.client_id != client_id
                or code.redirect_uri != form.get("redirect_uri")
                or now >= code.expires_at
            ):
                return _oauth_error(400, "invalid_grant")
            grant = Grant(uuid.uuid4().hex, code.realm_id, client_id)
            self.grants[grant.grant_id] = grant
            return self._token_response(grant, self._issue_refresh_token(grant, None))
        return _oauth_error(400, "unsupported_grant_type")

    def _issue_refresh_token(self, grant: Grant, previous: RefreshToken | None) -> str:
        if previous is not None:
            previous.superseded = True
        token = "AB11" + secrets.token_urlsafe(36)
        now = self.clock.time()
        self.refresh_tokens[token] = RefreshToken(
            grant.grant_id, now, now + self.options.refresh_token_lifetime_seconds
        )
        return token

    def _token_response(self, grant: Grant, refresh_token: str) -> Response:
        access_token = "eyJsZWRnZXJsaW5rIjoicWJvLXNhbmRib3gifQ." + secrets.token_urlsafe(96)
        now = self.clock.time()
        lifetime = self.options.access_token_lifetime_seconds
        self.access_tokens[access_token] = AccessToken(grant.grant_id, now + lifetime)
        refresh = self.refresh_tokens[refresh_token]
        body = {
            "token_type": "bearer",
            "expires_in": lifetime,
            "refresh_token": refresh_token,
            "x_refresh_token_expires_in": max(0, int(refresh.expires_at - now)),
            "access_token": access_token,
        }
        return Response(200, body, {"Cache-Control": "no-store", "Pragma": "no-cache"}, "application/json")

    def _revoke(self, request: Request) -> Response:
        client_id = self._client(request)
        token = self._form(request).get("token")
        if not token:
            return _oauth_error(400, "invalid_request")
        found: RefreshToken | AccessToken | None = self.refresh_tokens.get(token) or self.access_tokens.get(
            token
        )
        if found is not None:
            grant = self.grants[found.grant_id]
            if grant.client_id == client_id:
                grant.revoked = True  # Intuit disconnects the app from the company: every token dies
        return Response(200, None, {"Cache-Control": "no-store"})

    def _authorize(self, request: Request) -> Response:
        client_id = request.arg("client_id") or ""
        redirect_uri = request.arg("redirect_uri") or ""
        if client_id not in self.clients or not redirect_uri:
            return _oauth_error(400, "invalid_request")
        if request.arg("response_type") != "code":
            return _oauth_error(400, "unsupported_response_type")
        # Intuit's authorize request requires a scope; an Accounting connection asks for
        # com.intuit.quickbooks.accounting (the error's name for a missing one is unverified).
        if not (request.arg("scope") or "").split():
            return _oauth_error(400, "invalid_scope")
        if self.options.authorize_decision == "deny":
            # The user clicked Cancel on the consent page: RFC 6749's error redirect, with the state
            # (Intuit's exact parameters for it are unverified).
            query = {"error": "access_denied"}
            if request.arg("state") is not None:
                query["state"] = request.arg("state") or ""
            separator = "&" if "?" in redirect_uri else "?"
            return Response(302, None, {"Location": redirect_uri + separator + urllib.parse.urlencode(query)})
        realm_id = request.arg("realm_id") or DEMO_REALM_ID  # the company the user "picks"
        if realm_id not in self.companies:
            return _oauth_error(400, "invalid_request")
        code = "AB11" + secrets.token_urlsafe(24)
        self.authorization_codes[code] = AuthorizationCode(
            client_id, realm_id, redirect_uri, self.clock.time() + AUTH_CODE_LIFETIME_SECONDS
        )
        query = {"code": code, "realmId": realm_id}
        if request.arg("state") is not None:
            query["state"] = request.arg("state") or ""
        separator = "&" if "?" in redirect_uri else "?"
        return Response(302, None, {"Location": redirect_uri + separator + urllib.parse.urlencode(query)})

    def _discovery(self, request: Request) -> Response:
        base = self._public_base(request)
        return Response(
            200,
            {
                "issuer": "https://oauth.platform.intuit.com/op/v1",
                "authorization_endpoint": base + "/connect/oauth2",
                "token_endpoint": base + TOKEN_PATH,
                "userinfo_endpoint": base + "/v1/openid_connect/userinfo",
                "revocation_endpoint": base + REVOKE_PATH,
                "jwks_uri": base + "/oauth2/v1/keys",
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": ["openid", "email", "profile", "address", "phone"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
            },
            content_type="application/json",
        )

    def _public_base(self, request: Request) -> str:
        host = request.headers.get("Host")
        return f"http://{host}" if host else self.base_url

    # ---- Accounting API

    def _company(self, request: Request) -> Company:
        realm_id = request.path_params["realm_id"]
        company = self.companies.get(realm_id)
        if company is None:  # a token can only name its own realm, so this is a deleted company
            raise HttpError(self._respond(403, faults.authorization_failed(int(self.clock.time() * 1000))))
        return company

    def _time(self, request: Request) -> str:
        return self._company_time(request.path_params.get("realm_id"))

    def _company_time(self, realm_id: str | None) -> str:
        company = self.companies.get(realm_id or "") or self.companies.get(DEMO_REALM_ID)
        if company is None:  # only while reset_state rebuilds the companies: still the sandbox's time
            return self.clock.now().isoformat(timespec="milliseconds")
        return company.response_time()

    def _respond(self, status: int, body: JsonBody, headers: Mapping[str, str] | None = None) -> Response:
        # Encoded here, while the handler holds the sandbox lock: the body may share objects with the store.
        encoded = Response(status, body).encode()
        return Response(status, encoded, {"intuit_tid": _tid(), **(headers or {})})

    def _fault(self, request: Request, fault: QboFault) -> Response:
        return self._respond(fault.status, faults.fault_body(fault, self._time(request)))

    def _entity(self, segment: str) -> str:
        entity = ENTITY_BY_LOWER.get(segment.lower())
        if entity is None:
            raise faults.unsupported_operation(
                f"Operation Could not find resource for entity {segment} is not supported."
            )
        return entity

    def _read(self, request: Request) -> Response:
        company = self._company(request)
        try:
            entity = self._entity(request.path_params["entity"])
            entity_id = request.path_params["entity_id"]
            if entity == "CompanyInfo":
                obj = company.singleton("CompanyInfo")
                if entity_id not in (company.realm_id, obj["Id"]):
                    raise faults.object_not_found("Id")
            elif ENTITIES[entity].singleton:
                obj = company.singleton(entity)
            else:
                obj = company.read(entity, entity_id)
        except QboFault as fault:
            return self._fault(request, fault)
        return self._respond(200, {entity: obj, "time": company.response_time()})

    def _read_singleton(self, request: Request) -> Response:
        company = self._company(request)
        try:
            entity = self._entity(request.path_params["entity"])
            if not ENTITIES[entity].singleton:
                raise faults.unsupported_operation(
                    f"Operation Could not find resource for relative : {request.path} is not supported."
                )
        except QboFault as fault:
            return self._fault(request, fault)
        return self._respond(200, {entity: company.singleton(entity), "time": company.response_time()})

    def _json_body(self, request: Request) -> Any:
        try:
            return request.json()
        except (ValueError, UnicodeDecodeError):
            raise faults.invalid_value("request body", "it is not valid JSON") from None

    def _idempotent(self, request: Request, run: Callable[[], Response]) -> Response:
        """Honour ``requestid``: the first successful response to an id is the answer to every repeat."""
        request_id = request.arg("requestid")
        if request_id is None:
            return run()
        if len(request_id) > REQUEST_ID_MAX_LENGTH:
            return self._fault(
                request,
                faults.business_error(
                    f"You cannot enter more than {REQUEST_ID_MAX_LENGTH} characters in the request_id field. "
                    f"You tried entering {request_id[:10]}..., which is {len(request_id)} characters."
                ),
            )
        key = (request.path_params["realm_id"], request_id)
        cached = self.request_cache.get(key)
        if cached is not None:
            return Response(cached.status, cached.body, {**cached.headers, "intuit_tid": _tid()})
        response: Response = run()
        if 200 <= response.status < 300:
            self.request_cache[key] = response
        return response

    def _write(self, request: Request) -> Response:
        company = self._company(request)

        def run() -> Response:
            try:
                entity = self._entity(request.path_params["entity"])
                body = self._json_body(request)
                operation = (request.arg("operation") or "").lower()
                include = (request.arg("include") or "").lower()
                if operation == "delete":
                    obj = company.delete(entity, body)
                elif operation == "void" or (operation == "update" and include == "void"):
                    obj = company.void(entity, body)
                elif operation in ("", "update", "create"):
                    is_update = isinstance(body, Mapping) and body.get("Id") not in (None, "")
                    if operation == "update" or (operation == "" and is_update):
                        obj = company.update(entity, body)
                    else:
                        obj = company.create(entity, body)
                else:
                    raise faults.unsupported_operation(f"Operation {operation} is not supported.")
            except QboFault as fault:
                return self._fault(request, fault)
            return self._respond(200, {entity: obj, "time": company.response_time()})

        return self._idempotent(request, run)

    def _run_query(self, company: Company, text: str) -> dict[str, Any]:
        query = parse(text, MAX_RESULTS_LIMIT)
        result = execute(query, company.all(query.entity), company.tz)
        if isinstance(result, int):
            return {"totalCount": result}
        if not result:
            return {}
        return {query.entity: result, "startPosition": query.start_position, "maxResults": len(result)}

    def _query(self, request: Request) -> Response:
        company = self._company(request)
        text = request.arg("query") if request.method == "GET" else request.body.decode("utf-8", "replace")
        try:
            answer = self._run_query(company, text or "")
        except QboFault as fault:
            return self._fault(request, fault)
        return self._respond(200, {"QueryResponse": answer, "time": company.response_time()})

    def _cdc(self, request: Request) -> Response:
        company = self._company(request)
        try:
            names = request.arg("entities")
            if not names:
                raise faults.required_missing("entities")
            since_text = request.arg("changedSince")
            if not since_text:
                raise faults.required_missing("changedSince")
            try:
                since = parse_changed_since(since_text, company.tz)
            except ValueError:
                raise faults.invalid_value(
                    "changedSince", "an ISO 8601 date or date-time is required"
                ) from None
            if since < self.clock.now() - timedelta(days=self.options.cdc_max_age_days):
                raise faults.unsupported_operation(
                    f"Operation cdc with changedSince date {since_text} which is older than fixed days is not "
                    "supported."
                )
            entities: list[str] = []
            for name in names.split(","):
                entity = ENTITY_BY_LOWER.get(name.strip().lower())
                if entity is None or ENTITIES[entity].singleton:
                    raise faults.unsupported_operation(
                        f"Operation cdc for entity {name.strip()} is not supported."
                    )
                entities.append(entity)
        except QboFault as fault:
            return self._fault(request, fault)
        budget = self.options.cdc_max_objects
        responses: list[dict[str, Any]] = []
        for entity in entities:
            changed = company.changed_since(entity, since)[: max(budget, 0)]
            budget -= len(changed)
            if changed:
                responses.append({entity: changed, "startPosition": 1, "maxResults": len(changed)})
            else:
                responses.append({})
        return self._respond(
            200, {"CDCResponse": [{"QueryResponse": responses}], "time": company.response_time()}
        )

    def _batch(self, request: Request) -> Response:
        company = self._company(request)

        def run() -> Response:
            try:
                body = self._json_body(request)
                items = body.get("BatchItemRequest") if isinstance(body, Mapping) else None
                if not isinstance(items, list) or not items:
                    raise faults.required_missing("BatchItemRequest")
                if len(items) > self.options.batch_max_items:
                    raise faults.business_error(
                        f"The maximum number of payloads in a single batch request is "
                        f"{self.options.batch_max_items}; this request has {len(items)}."
                    )
            except QboFault as fault:
                return self._fault(request, fault)
            answers = []
            for item in items:
                bid = item.get("bId") if isinstance(item, Mapping) else None
                try:
                    answers.append({"bId": bid, **self._batch_item(company, item)})
                except QboFault as fault:
                    answers.append({"bId": bid, "Fault": fault.fault()})
            return self._respond(200, {"BatchItemResponse": answers, "time": company.response_time()})

        return self._idempotent(request, run)

    def _batch_item(self, company: Company, item: Any) -> dict[str, Any]:
        if not isinstance(item, Mapping):
            raise faults.invalid_value("BatchItemRequest", "each item must be an object")
        if "Query" in item:
            return {"QueryResponse": self._run_query(company, str(item["Query"]))}
        entity_keys = [key for key in item if key in ENTITIES]
        if len(entity_keys) != 1:
            raise faults.required_missing("BatchItemRequest entity")
        entity = entity_keys[0]
        body = item[entity]
        operation = str(item.get("operation", "create")).lower()
        options = str(item.get("optionsData", "")).lower()
        if operation == "create":
            return {entity: company.create(entity, body)}
        if operation == "update" and options == "void":
            return {entity: company.void(entity, body)}
        if operation == "update":
            return {entity: company.update(entity, body)}
        if operation == "delete":
            return {entity: company.delete(entity, body)}
        raise faults.unsupported_operation(f"Operation {operation} is not supported in a batch.")

    # ---- webhooks

    def _on_change(self, change: Change) -> None:
        if self.options.webhooks_held:
            self.webhooks_withheld += 1
            return
        if self.webhooks is not None:
            self.webhooks.enqueue(change)

    def _webhook_body(self, changes: list[Change]) -> tuple[bytes, dict[str, str]]:
        with self.lock:
            options = QboOptions(**asdict(self.options))
            zones = {realm: company.tz for realm, company in self.companies.items()}
        if options.webhook_format == "legacy":
            by_realm: dict[str, list[dict[str, str]]] = {}
            for change in changes:
                tz = zones.get(change.realm_id, UTC)
                by_realm.setdefault(change.realm_id, []).append(
                    {
                        "name": change.entity,
                        "id": change.entity_id,
                        "operation": change.operation,
                        "lastUpdated": change.at.astimezone(tz).isoformat(timespec="milliseconds"),
                    }
                )
            payload: Any = {
                "eventNotifications": [
                    {"realmId": realm, "dataChangeEvent": {"entities": entities}}
                    for realm, entities in by_realm.items()
                ]
            }
        else:
            source = "intuit." + base64.b64encode(hashlib.sha256(DEMO_CLIENT_ID.encode()).digest()).decode()
            verbs = {
                "Create": "created",
                "Update": "updated",
                "Delete": "deleted",
                "Void": "voided",
                "Merge": "merged",
            }
            payload = [
                {
                    "specversion": "1.0",
                    "id": str(uuid.uuid4()),
                    "source": source,
                    "type": f"qbo.{change.entity.lower()}.{verbs[change.operation]}.v1",
                    "datacontenttype": "application/json",
                    "time": change.at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z",
                    "intuitentityid": change.entity_id,
                    "intuitaccountid": change.realm_id,
                    "data": {},
                }
                for change in changes
            ]
        body = json.dumps(payload, separators=(",", ":")).encode("utf-8")
        signature = base64.b64encode(
            hmac.new(options.verifier_token.encode("utf-8"), body, hashlib.sha256).digest()
        ).decode("ascii")
        return body, {
            "Content-Type": "application/json",
            "intuit-signature": signature,
            "intuit-t-id": _tid(),
        }


def _tid() -> str:
    return "1-" + uuid.uuid4().hex[:8] + "-" + uuid.uuid4().hex[:24]


def _oauth_error(status: int, error: str) -> Response:
    return Response(status, {"error": error}, {"Cache-Control": "no-store"}, "application/json")


def main(argv: list[str] | None = None) -> None:
    run_from_command_line(
        lambda _arguments: QboSandbox(),
        "A faithful local QuickBooks Online (Accounting API v3 + OAuth 2.0) for LedgerLink.",
        DEFAULT_PORT,
        argv,
    )
