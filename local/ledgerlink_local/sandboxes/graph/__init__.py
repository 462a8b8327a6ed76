"""The Microsoft Graph sandbox (see ``sandbox.py``): what the rest of LedgerLink imports from it.

Modules, each depending only on the ones below it and on ``sandboxes.core``:

- ``sandbox``: ``GraphSandbox`` (routes, throttling, admin), the demo tenant and its credentials;
- ``teams``, ``schedule``: Teams meetings; free/busy (getSchedule);
- ``events``, ``identity``: Outlook calendar events; users, app registrations and Entra ID tokens;
- ``odata``: the OData query subset;
- ``datetimes``: Outlook's dateTimeTimeZone values and time-zone names.
"""

from ledgerlink_local.sandboxes.graph.sandbox import (
    DEFAULT_PORT,
    DEMO_CALENDAR_USER,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_COMPANY_DOMAIN,
    DEMO_NO_TEAMS_USER,
    DEMO_TENANT_DOMAIN,
    DEMO_TENANT_ID,
    DemoCredentials,
    GraphSandbox,
    main,
)

__all__ = [
    "DEFAULT_PORT",
    "DEMO_CALENDAR_USER",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_COMPANY_DOMAIN",
    "DEMO_NO_TEAMS_USER",
    "DEMO_TENANT_DOMAIN",
    "DEMO_TENANT_ID",
    "DemoCredentials",
    "GraphSandbox",
    "main",
]
