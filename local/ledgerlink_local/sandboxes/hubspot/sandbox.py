"""A faithful local HubSpot: CRM objects, properties, pipelines, owners, currencies,
associations v4, rate limits and v3-signed webhooks, for LedgerLink's tests, benchmarks and
``make run``. The same client code talks to ``https://api.hubapi.com`` in production.

Run it alone: ``python -m ledgerlink_local.sandboxes.hubspot --port 4012 [--webhook-url URL]``.
Auth: ``Authorization: Bearer <private app token>`` (``DEMO_ACCESS_TOKEN``); a missing or
unknown token answers 401 ``INVALID_AUTHENTICATION`` with HubSpot's message.

Endpoints (54; 58 routes, as the four label endpoints are also served under
``/crm/associations/v4/``; object endpoints take ``deals|contacts|companies|line_items|products``,
their singular, or the type id ``0-3|0-1|0-2|0-8|0-7``):

| method | path | what |
|---|---|---|
| GET | /crm/v3/objects/{type} | list (limit <= 100, after, properties, associations, archived) |
| POST | /crm/v3/objects/{type} | create (properties, inline associations) -> 201 |
| GET | /crm/v3/objects/{type}/{id} | read (idProperty, properties, propertiesWithHistory, associations, archived) |
| PATCH | /crm/v3/objects/{type}/{id} | update (idProperty) |
| DELETE | /crm/v3/objects/{type}/{id} | archive -> 204 |
| POST | /crm/v3/objects/{type}/batch/read | batch read (<= 100; 50 with history) -> 200 / 207 |
| POST | /crm/v3/objects/{type}/batch/create | batch create -> 201 / 207 (objectWriteTraceId opt-in) |
| POST | /crm/v3/objects/{type}/batch/update | batch update -> 200 / 207 |
| POST | /crm/v3/objects/{type}/batch/upsert | upsert by idProperty (unique property) -> 200 / 207, ``new`` |
| POST | /crm/v3/objects/{type}/batch/archive | batch archive -> 204 |
| POST | /crm/v3/objects/{type}/search | search (filterGroups, sorts, query, limit <= 200, after) |
| GET, POST | /crm/v3/properties/{type} | list, create (409 if it exists) |
| GET, PATCH, DELETE | /crm/v3/properties/{type}/{name} | read, update, archive |
| POST | /crm/v3/properties/{type}/batch/create, /batch/read, /batch/archive | batch |
| GET, POST | /crm/v3/properties/{type}/groups | list, create groups |
| GET, PATCH, DELETE | /crm/v3/properties/{type}/groups/{name} | read, update, archive a group |
| GET, POST | /crm/v3/pipelines/deals | list, create pipelines |
| GET, PATCH, DELETE | /crm/v3/pipelines/deals/{pipelineId} | read, update, archive |
| GET, POST | /crm/v3/pipelines/deals/{pipelineId}/stages | list, create stages |
| GET, PATCH, DELETE | /crm/v3/pipelines/deals/{pipelineId}/stages/{stageId} | read, update, archive |
| GET | /crm/v3/owners, /crm/v3/owners/{ownerId} | owners (email filter, idProperty=userId) |
| GET | /account-info/v3/details | the portal the token opens: ``portalId``, ``accountType``, ``timeZone``, ``companyCurrency``, ``uiDomain``, ``dataHostingLocation``, ... |
| POST | /oauth/v2/private-apps/get/access-token-info | a private-app token's ``hubId``, ``appId``, ``userId`` and ``scopes`` (body ``{"tokenKey"}``; the response's field names are unverified, seen in third-party clients) |
| GET | /settings/v3/currencies/company-currency | the company currency (``{"id": "USD", ...}``) |
| GET | /settings/v3/currencies/exchange-rates/current | the other enabled currencies and rates |
| GET | /settings/v3/currencies/codes | currency codes HubSpot supports |
| PUT | /crm/v4/objects/{from}/{id}/associations/default/{to}/{toId} | default (unlabeled) association |
| PUT | /crm/v4/objects/{from}/{id}/associations/{to}/{toId} | typed association (body: types) -> 201 |
| GET | /crm/v4/objects/{from}/{id}/associations/{to} | read (limit <= 500, after) |
| DELETE | /crm/v4/objects/{from}/{id}/associations/{to}/{toId} | remove all types -> 204 |
| POST | /crm/v4/associations/{from}/{to}/batch/associate/default, /create, /read, /archive, /labels/archive | batch |
| GET, POST, PUT | /crm/v4/associations/{from}/{to}/labels (also /crm/associations/v4/...) | labels |
| DELETE | /crm/v4/associations/{from}/{to}/labels/{typeId} (also /crm/associations/v4/...) | delete a label |

Demo portal (``reset``): portal ``DEMO_PORTAL_ID``, owners, 34 companies, 56 contacts,
10 products, 12 deals (see demo.py); pipelines ``default`` (HubSpot's sales stages) and
"Invoices" (``INVOICES_PIPELINE_ID``, stages ``INVOICE_STAGE_IDS``: open, overdue, partially
paid, paid, voided); company currency USD, EUR and CAD enabled, GBP not (a deal in GBP -> 400
INVALID_OPTION). Deal writes validate ``dealstage`` against the deal's pipeline, numbers,
dates, options, owners and currencies; unknown properties -> 400 ``PROPERTY_DOESNT_EXIST``
(HubSpot's ``Property values were not valid: [...]`` body). Unique values (a contact's email,
custom ``hasUniqueValue`` properties) -> 409 ``CONFLICT``. ``hasUniqueValue`` on line items and
products -> 400 ``VALIDATION_ERROR`` (HubSpot documents unique values for contacts, companies, deals,
tickets and custom objects only), unless the config key ``unique_values_on_line_items`` is true.

Rate limits (on by default; ``/_admin/config``): per token 100 requests per rolling 10 s
(``ten_secondly_limit``; HubSpot: 100 Free/Starter and OAuth apps, 190 Professional/Enterprise
private apps), ``daily_limit`` 250,000 per rolling 24 h (HubSpot resets at midnight in the
portal's time zone), search 5 requests/s (``search_per_second_limit``; HubSpot documented 4/s
in 2020, 5/s is cited today) and exempt from the 10-second limit. Every other call counts against
the 10-second limit, v4 association batch and label calls included (their spec's "ten-secondly"
exemption is documented nowhere else; see ``rate_limits``). Every response but search's carries
``X-HubSpot-RateLimit-Daily``, ``-Daily-Remaining``, ``-Interval-Milliseconds``, ``-Max``,
``-Remaining``, ``-Secondly``, ``-Secondly-Remaining``; search responses carry none. A 429 body is HubSpot's
``{"status":"error","message":"You have reached your ten_secondly_rolling limit.",
"errorType":"RATE_LIMIT","correlationId":..,"policyName":"TEN_SECONDLY_ROLLING","groupName":..}``
(``SECONDLY`` for search, ``DAILY``). No ``Retry-After``: HubSpot does not document one for
API rate limits (its SDKs back off by ``policyName``: 10 s, 1 s), so none is invented.

Webhooks: deal creation, deletion and changes of the subscribed properties
(``webhook_subscriptions``) are POSTed to ``webhook_url`` as HubSpot does; see
webhooks.py for payload, signatures and retries. API writes report ``changeSource``
``INTEGRATION`` (``sourceId`` = the app id); ``POST /_admin/ui_update`` simulates a user's edit
in HubSpot (``CRM_UI``).

Admin extras: ``POST /_admin/seed`` ``{"companies": [{props}], "contacts": [...], "deals": [...],
"line_items": [...], "products": [...], "associations": [{"from_type", "from_id", "to_type",
"to_id", "type_id"?, "category"?}]}``; ``POST /_admin/ui_update`` ``{"objectType", "id",
"properties"}``; ``POST /_admin/private-app/rotate-token`` (``{"token"?}``: the private app gets a new
access token, generated when not given and returned, and the old one stops working at once, as
HubSpot's "rotate and expire now" does); ``GET /_admin/webhook_events`` (every event published since the last reset,
delivered or not); config keys ``ten_secondly_limit``, ``daily_limit``, ``search_per_second_limit``,
``webhook_subscriptions`` (list of ``{"subscriptionType", "propertyName"?}``),
``company_currency``, ``exchange_rates`` (``{code: rate}``; the enabled currencies),
``unique_values_on_line_items`` (false: line items and products refuse ``hasUniqueValue``),
``private_app_scopes`` (the scopes the portal's private app was granted: what the token-info endpoint
reports; :data:`DEFAULT_PRIVATE_APP_SCOPES`). ``reset`` also restores these options and the app's
original token.

Associations: every association carries the pair's unlabeled type (HubSpot documents this);
primary (1, 5) replaces the record's previous primary; custom labels get portal ids from 101.

Not reproduced yet / unverified: merge, GDPR delete, restore of archived records, the v3
associations API, association limits other than one primary company, the association
definitions/configurations endpoints, webhook subscription management (``/webhooks/v3``),
OAuth, the enforcement of scopes (403 MISSING_SCOPES: every call is allowed whatever the token-info
endpoint reports), search index lag, generated properties beyond the few
calculated here (deal probability/closed/home-currency amount, line item amount), date
properties' exact output format, HubSpot's 404 body for a missing record (may be empty),
the wording of several errors (batch limit, unique-value conflict: HubSpot's status for a
custom unique property may be 400 rather than 409, association errors, search limits, an
existing property's 409 category ``OBJECT_ALREADY_EXISTS``; the refusal of ``hasUniqueValue`` on
line items and products, which HubSpot does not document), the v4 association batch limit
(1,000 here), the 429 ``groupName`` format for private apps, and rate-limit headers on 429s.
"""

from __future__ import annotations

import hmac
import itertools
import math
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from ledgerlink_local.sandboxes.core import (
    ADMIN_PREFIX,
    RateDecision,
    RateLimit,
    Request,
    Response,
    Sandbox,
    SandboxClock,
    WebhookDispatcher,
    run_from_command_line,
)
from ledgerlink_local.sandboxes.hubspot.associations_api import AssociationsApi
from ledgerlink_local.sandboxes.hubspot.demo import seed_demo_portal
from ledgerlink_local.sandboxes.hubspot.demo_sales import run_sales_demo
from ledgerlink_local.sandboxes.hubspot.errors import (
    AUTHENTICATION_MESSAGE,
    CORRELATION_HEADER,
    HubSpotError,
    PropertyValidationError,
    error_response,
    new_correlation_id,
    validation_error,
)
from ledgerlink_local.sandboxes.hubspot.model import (
    INVOICE_STAGE_IDS,
    INVOICES_PIPELINE_ID,
    OBJECT_TYPES,
    SUPPORTED_CURRENCIES,
    millis,
    object_type,
)
from ledgerlink_local.sandboxes.hubspot.objects_api import CrmObjectsApi
from ledgerlink_local.sandboxes.hubspot.setup_api import PortalSetupApi
from ledgerlink_local.sandboxes.hubspot.store import SOURCE_API, SOURCE_UI, ObjectChange, Portal
from ledgerlink_local.sandboxes.hubspot.webhooks import (
    BATCH_WINDOW_SECONDS,
    MAX_EVENTS_PER_REQUEST,
    RETRY_SCHEDULE_SECONDS,
    WebhookEvent,
    build_request,
)

__all__ = [
    "DEFAULT_PORT",
    "DEMO_ACCESS_TOKEN",
    "DEMO_APP_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_PORTAL",
    "DEMO_PORTALS",
    "DEMO_PORTAL_ID",
    "INVOICES_PIPELINE_ID",
    "INVOICE_STAGE_IDS",
    "THAMES_PORTAL",
    "DemoCredentials",
    "HubSpotSandbox",
    "PortalProfile",
    "main",
]

DEFAULT_PORT = 4012  # the local stack's hubspot port (qbo 4011, graph 4013)
# Local demo credentials (not secrets: they only open this sandbox).
DEMO_ACCESS_TOKEN = "pat-na1-0d5c7a1e-4b7f-4a2e-9c31-6f1d2e3b4a5c"
DEMO_CLIENT_SECRET = "5b9e2c71-3f4a-4d8e-a1c6-7e2f9b0d4c3a"
DEMO_PORTAL_ID = 48213570
DEMO_APP_ID = 3105112

DEFAULT_TEN_SECONDLY_LIMIT = 100
DEFAULT_DAILY_LIMIT = 250_000
DEFAULT_SEARCH_PER_SECOND = 5
DEFAULT_SUBSCRIPTIONS: tuple[tuple[str, str | None], ...] = (
    ("deal.creation", None),
    ("deal.deletion", None),
    ("deal.propertyChange", "dealname"),
    ("deal.propertyChange", "dealstage"),
    ("deal.propertyChange", "pipeline"),
    ("deal.propertyChange", "amount"),
    ("deal.propertyChange", "closedate"),
    ("deal.propertyChange", "deal_currency_code"),
)
SUBSCRIPTION_KINDS = ("creation", "deletion", "propertyChange")
# What the demo portals' private apps were granted in HubSpot's scope picker (HubSpot's scope names).
DEFAULT_PRIVATE_APP_SCOPES: tuple[str, ...] = (
    "oauth",
    "crm.objects.deals.read",
    "crm.objects.deals.write",
    "crm.objects.line_items.read",
    "crm.objects.line_items.write",
    "crm.objects.companies.read",
    "crm.objects.companies.write",
    "crm.objects.contacts.read",
    "crm.objects.contacts.write",
    "crm.objects.owners.read",
    "crm.schemas.deals.read",
    "crm.schemas.deals.write",
    "crm.schemas.companies.read",
    "crm.schemas.companies.write",
    "crm.schemas.contacts.read",
    "crm.schemas.contacts.write",
    "crm.schemas.line_items.read",
)
ACCOUNT_DETAILS_PATH = "/account-info/v3/details"
TOKEN_INFO_PATH = "/oauth/v2/private-apps/get/access-token-info"


@dataclass(frozen=True)
class PortalProfile:
    """Who a sandbox portal is: its ids, its private app's token, its company currency and the ids of its
    "Invoices" pipeline (HubSpot numbers pipelines and stages per portal)."""

    portal_id: int
    access_token: str
    client_secret: str
    app_id: int
    company_currency: str = "USD"
    # Units of company currency per unit of each other enabled currency (None: the demo portal's).
    exchange_rates: Mapping[str, Decimal] | None = None
    invoices_pipeline_id: str = INVOICES_PIPELINE_ID
    invoice_stage_ids: Mapping[str, str] = field(default_factory=lambda: dict(INVOICE_STAGE_IDS))
    # What GET /account-info/v3/details says of the portal besides its id and currency.
    time_zone: str = "US/Pacific"
    ui_domain: str = "app.hubspot.com"
    data_hosting_location: str = "na1"
    # The HubSpot user who created the private app (token info's userId).
    app_user_id: int = 71050001


DEMO_PORTAL = PortalProfile(DEMO_PORTAL_ID, DEMO_ACCESS_TOKEN, DEMO_CLIENT_SECRET, DEMO_APP_ID)
# The local stack's second portal ("thames" in local/config/local.toml): a UK business's CRM, company
# currency GBP, with its own private app and its own "Invoices" pipeline.
THAMES_ACCESS_TOKEN = "pat-eu1-7a2c9e41-58d3-4b6f-a0e2-3c9d1f7b6e85"
THAMES_CLIENT_SECRET = "c3e81f0a-6b2d-4a97-8e15-9d4f2a7c0b61"
THAMES_PORTAL = PortalProfile(
    portal_id=143920517,
    access_token=THAMES_ACCESS_TOKEN,
    client_secret=THAMES_CLIENT_SECRET,
    app_id=3105187,
    company_currency="GBP",
    exchange_rates={"USD": Decimal("0.79"), "EUR": Decimal("0.85"), "CAD": Decimal("0.58")},
    invoices_pipeline_id="1204511",
    invoice_stage_ids={
        "open": "1204512",
        "overdue": "1204513",
        "partially_paid": "1204514",
        "paid": "1204515",
        "voided": "1204516",
    },
    time_zone="Europe/London",
    ui_domain="app-eu1.hubspot.com",
    data_hosting_location="eu1",
    app_user_id=71050002,
)
DEMO_PORTALS = (DEMO_PORTAL, THAMES_PORTAL)
FIRST_SUBSCRIPTION_ID = 2_910_001


@dataclass(frozen=True)
class DemoCredentials:
    """What the local stack writes to ``.ledgerlink/local.json`` for HubSpot."""

    base_url: str
    access_token: str = DEMO_ACCESS_TOKEN
    client_secret: str = DEMO_CLIENT_SECRET
    portal_id: str = str(DEMO_PORTAL_ID)

    @classmethod
    def for_sandbox(cls, url: str) -> DemoCredentials:
        """The demo portal's credentials for a sandbox served at ``url`` (the API base, no path)."""
        return cls(base_url=url.rstrip("/"))

    @classmethod
    def for_portal(cls, url: str, profile: PortalProfile) -> DemoCredentials:
        """The credentials of ``profile``'s portal, served at ``url``."""
        return cls(url.rstrip("/"), profile.access_token, profile.client_secret, str(profile.portal_id))

    def as_dict(self) -> dict[str, str]:
        return {
            "base_url": self.base_url,
            "access_token": self.access_token,
            "client_secret": self.client_secret,
            "portal_id": self.portal_id,
        }


@dataclass(frozen=True)
class Subscription:
    subscription_id: int
    subscription_type: str  # e.g. deal.propertyChange
    property_name: str | None

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "subscriptionId": self.subscription_id,
            "subscriptionType": self.subscription_type,
        }
        if self.property_name:
            body["propertyName"] = self.property_name
        return body


def _subscriptions(raw: Any) -> list[Subscription]:
    if not isinstance(raw, list):
        raise ValueError("webhook_subscriptions must be a list of {subscriptionType, propertyName?}")
    found = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            item = {"subscriptionType": item}
        if not isinstance(item, Mapping):
            raise ValueError("each subscription must be an object or a subscription type string")
        kind = str(item.get("subscriptionType", ""))
        object_name, _, action = kind.partition(".")
        if action not in SUBSCRIPTION_KINDS or not any(t.singular == object_name for t in OBJECT_TYPES):
            raise ValueError(
                f"unknown subscriptionType {kind!r} (e.g. deal.propertyChange, contact.creation)"
            )
        prop = item.get("propertyName")
        if action == "propertyChange" and not prop:
            raise ValueError(f"{kind} needs a propertyName")
        found.append(Subscription(FIRST_SUBSCRIPTION_ID + index, kind, str(prop) if prop else None))
    return found


class HubSpotSandbox(Sandbox):
    vendor = "hubspot"

    def __init__(
        self,
        *,
        rate_limits_enabled: bool = True,
        clock: SandboxClock | None = None,
        profile: PortalProfile = DEMO_PORTAL,
    ) -> None:
        super().__init__(rate_limits_enabled=rate_limits_enabled, clock=clock)
        self.profile = profile
        self.portal_id = profile.portal_id
        self.app_id = profile.app_id
        self.client_secret = profile.client_secret
        self.access_tokens = (profile.access_token,)
        self._event_ids = itertools.count(3_000_000_001)
        self._event_sequence = itertools.count()
        self._recent: dict[str, deque[float]] = {}
        # Every event handed to the dispatcher since the last reset (GET /_admin/webhook_events).
        self.published_events: deque[WebhookEvent] = deque(maxlen=100_000)
        self.webhooks = WebhookDispatcher(
            build=lambda events: self._webhook_request(events, 1),
            retry_schedule_seconds=list(RETRY_SCHEDULE_SECONDS),
            batch_window_seconds=BATCH_WINDOW_SECONDS,
            group_key=lambda event: str(event.sequence // MAX_EVENTS_PER_REQUEST),
            build_attempt=self._webhook_request,
        )
        self.portal = self._new_portal()
        self._apply_default_options()
        self.objects_api = CrmObjectsApi(self)
        self.objects_api.register()
        PortalSetupApi(self).register()
        AssociationsApi(self).register()
        self.add_route("GET", ACCOUNT_DETAILS_PATH, self._account_details)
        self.add_route("POST", TOKEN_INFO_PATH, self._token_info, authenticated=False)
        self.reset_state()

    # ---- state

    def _apply_default_options(self) -> None:
        self.access_tokens = (self.profile.access_token,)
        self.private_app_scopes = DEFAULT_PRIVATE_APP_SCOPES
        self.ten_secondly_limit = DEFAULT_TEN_SECONDLY_LIMIT
        self.daily_limit = DEFAULT_DAILY_LIMIT
        self.search_per_second_limit = DEFAULT_SEARCH_PER_SECOND
        self.subscriptions = [
            Subscription(FIRST_SUBSCRIPTION_ID + i, kind, prop)
            for i, (kind, prop) in enumerate(DEFAULT_SUBSCRIPTIONS)
        ]

    def reset_state(self) -> None:
        """A fresh demo portal; HubSpot options (limits, subscriptions, currencies) back to defaults."""
        self._apply_default_options()
        self._recent.clear()
        self.published_events.clear()
        self.portal = self._new_portal()
        seed_demo_portal(self.portal)
        self.portal.listeners.append(self._on_change)

    def _new_portal(self) -> Portal:
        profile = self.profile
        portal = Portal(
            self.portal_id,
            self.clock,
            invoices_pipeline_id=profile.invoices_pipeline_id,
            invoice_stage_ids=profile.invoice_stage_ids,
        )
        portal.currencies.company_currency = profile.company_currency
        if profile.exchange_rates is not None:
            portal.currencies.rates = dict(profile.exchange_rates)
        return portal

    def seed(self, body: Any) -> Any:
        if not isinstance(body, Mapping):
            raise validation_error("seed body must be an object")
        created: dict[str, list[str]] = {}
        try:
            for kind in OBJECT_TYPES:
                for properties in body.get(kind.name, []) or []:
                    record = self.portal.create(kind, properties, source=SOURCE_UI)
                    created.setdefault(kind.name, []).append(record.id)
        except PropertyValidationError as error:
            raise error.as_http_error(self.portal_id) from None
        linked = 0
        for item in body.get("associations", []) or []:
            source, target = object_type(str(item["from_type"])), object_type(str(item["to_type"]))
            from_id, to_id = str(item["from_id"]), str(item["to_id"])
            if self.portal.get(source, from_id) is None or self.portal.get(target, to_id) is None:
                raise validation_error(
                    f"cannot associate missing records {source.name} {from_id} -> {target.name} {to_id}"
                )
            if item.get("type_id") is None:
                kind_found = self.portal.association_types.default(source.name, target.name)
            else:
                kind_found = self.portal.association_types.require(
                    source.name,
                    target.name,
                    str(item.get("category", "HUBSPOT_DEFINED")),
                    int(item["type_id"]),
                )
            self.portal.associations.add(source.name, from_id, target.name, to_id, kind_found)
            linked += 1
        return {"created": created, "associations": linked}

    def dump_state(self) -> Any:
        return {
            "portal_id": self.portal_id,
            "counts": {t.name: len(self.portal.live_objects(t)) for t in OBJECT_TYPES},
            "objects": {
                t.name: [
                    {
                        "id": r.id,
                        "properties": dict(sorted(r.values.items())),
                        "archived": r.archived,
                    }
                    for r in sorted(self.portal.objects[t.name].values(), key=lambda r: int(r.id))
                ]
                for t in OBJECT_TYPES
            },
            "associations": self.portal.associations.all(),
            "custom_properties": {
                t.name: sorted(d.name for d in self.portal.catalog(t).live() if not d.hubspot_defined)
                for t in OBJECT_TYPES
            },
            "pipelines": [p.describe() for p in self.portal.live_pipelines("deals")],
        }

    def admin_action(self, method: str, action: str, body: Any, request: Request) -> Response | None:
        if action == "ui_update" and method == "POST":
            with self.lock:
                return self._ui_update(body)
        if action == "private-app/rotate-token" and method == "POST":
            token = body.get("token") if isinstance(body, Mapping) else None
            token = str(token) if token else f"pat-{self.profile.data_hosting_location}-{uuid.uuid4()}"
            with self.lock:
                self.access_tokens = (token,)
            return Response(200, {"token": token})
        if action == "webhook_events" and method == "GET":
            with self.lock:
                events = [event.describe(0) for event in self.published_events]
            return Response(200, {"events": events, "count": len(events)})
        return None

    def run_demo_activity(
        self, stop: threading.Event, say: Callable[[str], None] = lambda _text: None, **timing: float
    ) -> str | None:
        """The demo portal's salesperson: one deal from quote to Closed Won (demo_sales.py)."""

        def seed(body: dict[str, Any]) -> dict[str, Any]:
            with self.lock:
                answer: dict[str, Any] = self.seed(body)
                return answer

        def move(deal_id: str, stage: str) -> None:
            with self.lock:
                self._ui_update({"objectType": "deals", "id": deal_id, "properties": {"dealstage": stage}})

        def company_id(name: str) -> str | None:
            with self.lock:
                companies = next(t for t in OBJECT_TYPES if t.name == "companies")
                return next(
                    (r.id for r in self.portal.live_objects(companies) if r.values.get("name") == name), None
                )

        return run_sales_demo(seed, move, company_id, stop, say=say, **timing)

    def _ui_update(self, body: Any) -> Response:
        """A HubSpot user edits a record in the CRM (webhooks report changeSource CRM_UI)."""
        if not isinstance(body, Mapping):
            raise validation_error("body must be {objectType, id, properties}")
        kind = object_type(str(body.get("objectType", "deals")))
        record = self.portal.get(kind, str(body.get("id")))
        if record is None:
            raise HubSpotError(404, f"No {kind.singular} {body.get('id')}", "OBJECT_NOT_FOUND")
        try:
            self.portal.update(record, body.get("properties") or {}, source=SOURCE_UI)
        except PropertyValidationError as error:
            raise error.as_http_error(self.portal_id) from None
        return Response(200, self.objects_api._describe(record, everything_set=True))

    # ---- options

    def config(self) -> dict[str, Any]:
        options = super().config()
        options.update(
            {
                "portal_id": self.portal_id,
                "app_id": self.app_id,
                "ten_secondly_limit": self.ten_secondly_limit,
                "daily_limit": self.daily_limit,
                "search_per_second_limit": self.search_per_second_limit,
                "webhook_subscriptions": [s.describe() for s in self.subscriptions],
                "company_currency": self.portal.currencies.company_currency,
                "exchange_rates": {
                    code: str(rate) for code, rate in sorted(self.portal.currencies.rates.items())
                },
                "unique_values_on_line_items": self.portal.unique_values_on_line_items,
                "private_app_scopes": list(self.private_app_scopes),
            }
        )
        return options

    def update_config(self, changes: Mapping[str, Any]) -> None:
        known = {
            "rate_limits_enabled", "webhook_url", "webhook_time_factor", "ten_secondly_limit", "daily_limit",
            "search_per_second_limit", "webhook_subscriptions", "company_currency", "exchange_rates",
            "unique_values_on_line_items", "private_app_scopes",
        }  # fmt: skip
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown HubSpot sandbox option(s): {', '.join(unknown)}")
        super().update_config(changes)
        for name in ("ten_secondly_limit", "daily_limit", "search_per_second_limit"):
            if name in changes:
                value = int(changes[name])
                if value < 1:
                    raise ValueError(f"{name} must be at least 1")
                setattr(self, name, value)
        if "webhook_subscriptions" in changes:
            self.subscriptions = _subscriptions(changes["webhook_subscriptions"])
        if "private_app_scopes" in changes:
            scopes = changes["private_app_scopes"]
            if not isinstance(scopes, list) or not all(isinstance(scope, str) for scope in scopes):
                raise ValueError("private_app_scopes must be a list of scope names")
            self.private_app_scopes = tuple(scopes)
        if "unique_values_on_line_items" in changes:
            allowed = changes["unique_values_on_line_items"]
            if not isinstance(allowed, bool):
                raise ValueError("unique_values_on_line_items must be true or false")
            self.portal.unique_values_on_line_items = allowed
        currencies = self.portal.currencies
        if "company_currency" in changes:
            code = str(changes["company_currency"]).upper()
            if code not in SUPPORTED_CURRENCIES:
                raise ValueError(f"{code} is not a currency HubSpot supports")
            currencies.company_currency = code
            currencies.rates.pop(code, None)
        if "exchange_rates" in changes:
            raw = changes["exchange_rates"]
            if not isinstance(raw, Mapping):
                raise ValueError("exchange_rates must map currency codes to rates")
            rates = {}
            for code, rate in raw.items():
                code = str(code).upper()
                if code not in SUPPORTED_CURRENCIES or code == currencies.company_currency:
                    raise ValueError(f"{code} cannot be an additional currency")
                try:
                    rates[code] = Decimal(str(rate))
                except InvalidOperation:
                    raise ValueError(f"rate for {code} must be a number") from None
                if rates[code] <= 0:
                    raise ValueError(f"rate for {code} must be greater than 0")
            currencies.rates = rates

    # ---- the account and the private app's token

    def _account_details(self, request: Request) -> Response:
        profile = self.profile
        currencies = self.portal.currencies
        offset = _utc_offset(profile.time_zone, self.clock.time())
        return Response(
            200,
            {
                "portalId": self.portal_id,
                "accountType": "STANDARD",
                "timeZone": profile.time_zone,
                "companyCurrency": currencies.company_currency,
                "additionalCurrencies": sorted(currencies.rates),
                "utcOffset": _offset_text(offset),
                "utcOffsetMilliseconds": offset * 1000,
                "uiDomain": profile.ui_domain,
                "dataHostingLocation": profile.data_hosting_location,
            },
        )

    def knows_token(self, token: str) -> bool:
        presented = token.encode("utf-8")
        return any(hmac.compare_digest(presented, known.encode("utf-8")) for known in self.access_tokens)

    def _token_info(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        token = body.get("tokenKey") if isinstance(body, Mapping) else None
        if not isinstance(token, str) or not token:
            raise validation_error("tokenKey is required")
        if not self.knows_token(token):
            # HubSpot's answer for an unknown or rotated token (status and body unverified).
            raise HubSpotError(401, AUTHENTICATION_MESSAGE, "INVALID_AUTHENTICATION")
        return Response(
            200,
            {
                "userId": self.profile.app_user_id,
                "hubId": self.portal_id,
                "appId": self.app_id,
                "scopes": list(self.private_app_scopes),
            },
        )

    # ---- auth, errors, rate limits

    def authenticate(self, request: Request) -> Any:
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        presented = token.strip().encode("utf-8")
        if scheme.lower() == "bearer" and presented:
            for known in self.access_tokens:
                if hmac.compare_digest(presented, known.encode("utf-8")):
                    return known
        raise HubSpotError(401, AUTHENTICATION_MESSAGE, "INVALID_AUTHENTICATION")

    def error_response(self, status: int, message: str) -> Response:
        return error_response(status, message)

    def not_found(self, request: Request) -> Response:
        return error_response(404, f"No HubSpot API at {request.method} {request.path}", "OBJECT_NOT_FOUND")

    def handle(self, request: Request) -> Response:
        response = super().handle(request)
        if not request.path.startswith(ADMIN_PREFIX):
            response.headers.setdefault(CORRELATION_HEADER, new_correlation_id())
        return response

    @staticmethod
    def _is_search(request: Request) -> bool:
        return (
            request.method == "POST"
            and request.path.startswith("/crm/v3/objects/")
            and request.path.rstrip("/").endswith("/search")
        )

    def rate_limits(self, request: Request) -> list[RateLimit]:
        # Search has its own per-second limit instead of the 10-second one (HubSpot's usage guidelines and
        # changelog). Every other call counts against the 10-second limit, v4 association batch and label
        # calls included: only HubSpot's OpenAPI files mark those "ten-secondly" exempt (an unexplained
        # x-hubspot-rate-limit-exemptions), no page or changelog says so, and a sandbox stricter than the
        # vendor costs a test some waiting where a laxer one would hide 429s from production.
        token = str(request.principal)
        limits = [RateLimit(f"daily:{token}", self.daily_limit, 86_400, "DAILY")]
        if self._is_search(request):
            limits.insert(0, RateLimit(f"search:{token}", self.search_per_second_limit, 1.0, "SECONDLY"))
        else:
            limits.insert(0, RateLimit(f"ten:{token}", self.ten_secondly_limit, 10.0, "TEN_SECONDLY_ROLLING"))
        return limits

    def _headers(self, ten_remaining: int, daily_remaining: int, secondly_remaining: int) -> dict[str, str]:
        secondly = math.ceil(self.ten_secondly_limit / 10)
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily_limit),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(0, daily_remaining)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(self.ten_secondly_limit),
            "X-HubSpot-RateLimit-Remaining": str(max(0, ten_remaining)),
            "X-HubSpot-RateLimit-Secondly": str(secondly),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(0, min(secondly, secondly_remaining))),
        }

    def rate_limit_headers(self, request: Request, decisions: list[RateDecision]) -> dict[str, str]:
        if self._is_search(request):
            return {}  # HubSpot's search responses carry no rate-limit headers
        by_policy = {d.limit.policy: d.remaining for d in decisions if d.limit is not None}
        token = str(request.principal)
        now = self.clock.time()
        with self.lock:
            recent = self._recent.setdefault(token, deque())
            recent.append(now)
            while recent and recent[0] <= now - 1.0:
                recent.popleft()
            in_last_second = len(recent)
        secondly = math.ceil(self.ten_secondly_limit / 10)
        return self._headers(
            by_policy.get("TEN_SECONDLY_ROLLING", self.ten_secondly_limit),
            by_policy.get("DAILY", self.daily_limit),
            secondly - in_last_second,
        )

    def rate_limited_response(self, request: Request, decision: RateDecision) -> Response:
        policy = decision.limit.policy if decision.limit is not None else "TEN_SECONDLY_ROLLING"
        message = {
            "TEN_SECONDLY_ROLLING": "You have reached your ten_secondly_rolling limit.",
            "SECONDLY": "You have reached your secondly limit.",
            "DAILY": "You have reached your daily limit.",
        }[policy]
        correlation_id = new_correlation_id()
        body: dict[str, Any] = {
            "status": "error",
            "message": message,
            "errorType": "RATE_LIMIT",
            "correlationId": correlation_id,
            "policyName": policy,
        }
        if policy == "TEN_SECONDLY_ROLLING":
            body["groupName"] = f"publicapi:private-app-api-calls-ten-secondly:{self.app_id}"
        headers = {CORRELATION_HEADER: correlation_id}
        if policy != "SECONDLY":
            headers.update(
                self._headers(
                    0 if policy == "TEN_SECONDLY_ROLLING" else self.ten_secondly_limit,
                    0 if policy == "DAILY" else self.daily_limit,
                    0,
                )
            )
        return Response(429, body, headers)

    # ---- webhooks

    def _on_change(self, change: ObjectChange) -> None:
        assert self.webhooks is not None
        singular = next(t.singular for t in OBJECT_TYPES if t.name == change.object_type)
        subscription_type = f"{singular}.{change.kind}"
        for subscription in self.subscriptions:
            if subscription.subscription_type != subscription_type:
                continue
            if change.kind == "propertyChange" and subscription.property_name != change.property_name:
                continue
            ui_user = next((o.user_id for o in self.portal.owners if not o.archived), 0)
            source_id = str(self.app_id) if change.source == SOURCE_API else f"userId:{ui_user}"
            if not self.webhooks.url:
                continue  # HubSpot sends nothing while the app has no target URL
            event = WebhookEvent(
                sequence=next(self._event_sequence),
                event_id=next(self._event_ids),
                subscription_id=subscription.subscription_id,
                portal_id=self.portal_id,
                app_id=self.app_id,
                occurred_at=millis(change.at),
                subscription_type=subscription_type,
                object_id=int(change.object_id),
                change_source=change.source,
                source_id=source_id,
                property_name=change.property_name,
                property_value=change.property_value,
                change_flag={"creation": "CREATED", "deletion": "DELETED"}.get(change.kind),
            )
            self.published_events.append(event)
            self.webhooks.enqueue(event)

    def _webhook_request(self, events: list[WebhookEvent], attempt: int) -> tuple[bytes, dict[str, str]]:
        assert self.webhooks is not None
        return build_request(events, attempt, url=self.webhooks.url or "", client_secret=self.client_secret)


def _utc_offset(zone: str, now: float) -> int:
    """Seconds east of UTC of ``zone`` (HubSpot's zone names are IANA ones, e.g. US/Eastern) at ``now``."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    offset = datetime.fromtimestamp(now, ZoneInfo(zone)).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    minutes = abs(seconds) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def main(argv: list[str] | None = None) -> None:
    def arguments(parser: Any) -> None:
        parser.add_argument(
            "--webhook-url", help="POST deal webhooks here (v3-signed with the demo client secret)"
        )
        parser.add_argument(
            "--ten-secondly-limit", type=int, help="requests per 10 s per token (default 100)"
        )

    def factory(options: Any) -> Sandbox:
        sandbox = HubSpotSandbox()
        changes: dict[str, Any] = {}
        if options.webhook_url:
            changes["webhook_url"] = options.webhook_url
        if options.ten_secondly_limit:
            changes["ten_secondly_limit"] = options.ten_secondly_limit
        sandbox.update_config(changes)
        return sandbox

    run_from_command_line(
        factory, "Local HubSpot sandbox (CRM v3/v4, properties, pipelines)", DEFAULT_PORT, argv, arguments
    )
