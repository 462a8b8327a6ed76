"""The HubSpot sandbox (see ``sandbox.py``): what the rest of LedgerLink imports from it.

Modules, each depending only on the ones below it and on ``sandboxes.core``:

- ``portals``: ``HubSpotPortals``, several portals behind one API host (routed by token);
- ``sandbox``: ``HubSpotSandbox`` (auth, rate limits, webhook subscriptions, admin), demo credentials;
- ``objects_api``, ``setup_api``, ``associations_api``: the route groups (CRM objects; properties,
  pipelines, owners, currencies; associations v4);
- ``routing``: what the route groups share (``RouteGroup``, request parsing, batch envelopes);
- ``demo``, ``search``: the demo portal; CRM search;
- ``store``: the portal's records and their history;
- ``model``, ``associations``: the portal's schema; association types and the association store;
- ``errors``, ``webhooks``: HubSpot's error bodies; webhook payloads and signatures.
"""

from ledgerlink_local.sandboxes.hubspot.portals import HubSpotPortals
from ledgerlink_local.sandboxes.hubspot.sandbox import (
    DEFAULT_PORT,
    DEMO_ACCESS_TOKEN,
    DEMO_APP_ID,
    DEMO_CLIENT_SECRET,
    DEMO_PORTAL,
    DEMO_PORTAL_ID,
    DEMO_PORTALS,
    INVOICE_STAGE_IDS,
    INVOICES_PIPELINE_ID,
    THAMES_PORTAL,
    DemoCredentials,
    HubSpotSandbox,
    PortalProfile,
    main,
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
    "HubSpotPortals",
    "HubSpotSandbox",
    "PortalProfile",
    "main",
]
