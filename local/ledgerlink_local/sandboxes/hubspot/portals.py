"""Several HubSpot portals behind one API host, as HubSpot serves them (``api.hubapi.com`` for every account).

HubSpot has one API base URL; which portal a call reaches is decided by its token alone. The deal sync
therefore has one ``LEDGERLINK_HUBSPOT_BASE_URL`` and a token per connection. :class:`HubSpotPortals`
holds one :class:`HubSpotSandbox` per portal (each with its own records, limits, subscriptions and
webhooks) and hands each request to the portal whose private app token it carries. A call with no
known token gets the first portal's 401. Admin calls (``/_admin/...``) go to the portal named by
``?portal_id=``, else to the first portal.

Attributes other than those below are the first portal's, so code written for one sandbox (``.portal``,
``.reset_state()``) keeps working.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any

from ledgerlink_local.sandboxes.core import ADMIN_PREFIX, Request, Response, SandboxClock
from ledgerlink_local.sandboxes.hubspot.sandbox import (
    DEMO_PORTALS,
    TOKEN_INFO_PATH,
    HubSpotSandbox,
    PortalProfile,
)


class HubSpotPortals:
    """One HTTP server, several portals (see the module docstring)."""

    vendor = "hubspot"

    def __init__(
        self,
        profiles: Sequence[PortalProfile] = DEMO_PORTALS,
        *,
        rate_limits_enabled: bool = True,
        clock: SandboxClock | None = None,
    ) -> None:
        if not profiles or len({p.portal_id for p in profiles}) != len(profiles):
            raise ValueError("each portal needs its own portal_id")
        self.portals: dict[int, HubSpotSandbox] = {
            profile.portal_id: HubSpotSandbox(
                rate_limits_enabled=rate_limits_enabled, clock=clock, profile=profile
            )
            for profile in profiles
        }
        self._base_url = ""

    @property
    def first(self) -> HubSpotSandbox:
        return next(iter(self.portals.values()))

    @property
    def base_url(self) -> str:
        return self._base_url

    @base_url.setter
    def base_url(self, url: str) -> None:
        self._base_url = url
        for sandbox in self.portals.values():
            sandbox.base_url = url

    def portal_sandbox(self, portal_id: int | str) -> HubSpotSandbox:
        return self.portals[int(portal_id)]

    def handle(self, request: Request) -> Response:
        return self._route(request).handle(request)

    def error_response(self, status: int, message: str) -> Response:
        return self.first.error_response(status, message)

    def close(self) -> None:
        for sandbox in self.portals.values():
            sandbox.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.first, name)

    def _route(self, request: Request) -> HubSpotSandbox:
        if request.path == ADMIN_PREFIX or request.path.startswith(ADMIN_PREFIX + "/"):
            named = request.arg("portal_id")
            if named and named.isdigit() and int(named) in self.portals:
                return self.portals[int(named)]
            return self.first
        if request.path == TOKEN_INFO_PATH:
            # The token to describe is in the body; it decides the portal, as HubSpot's token does.
            try:
                body = request.json()
            except ValueError:
                body = None
            key = body.get("tokenKey") if isinstance(body, dict) else None
            if isinstance(key, str) and key:
                for sandbox in self.portals.values():
                    if sandbox.knows_token(key):
                        return sandbox
            return self.first
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        presented = token.strip().encode("utf-8")
        if scheme.lower() == "bearer" and presented:
            for sandbox in self.portals.values():
                if any(
                    hmac.compare_digest(presented, known.encode("utf-8")) for known in sandbox.access_tokens
                ):
                    return sandbox
        return self.first
