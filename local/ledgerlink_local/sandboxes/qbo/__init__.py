"""The QuickBooks Online sandbox (see ``sandbox.py``): what the rest of LedgerLink imports from it.

Modules, each depending only on the ones below it and on ``sandboxes.core``:

- ``sandbox``: ``QboSandbox`` (routes, OAuth 2.0 token endpoint, CDC, webhooks), demo credentials;
- ``demo``: the demo company the sandbox starts with and its demo activity;
- ``query``: the query language;
- ``model``: one company in memory (entities, validation, totals, links);
- ``faults``: QBO's error bodies.
"""

from ledgerlink_local.sandboxes.qbo.sandbox import (
    COMPANY_TIME_ZONE,
    DEFAULT_PORT,
    DEMO_CLIENT_ID,
    DEMO_CLIENT_SECRET,
    DEMO_COMPANIES,
    DEMO_COMPANY,
    DEMO_PERSON_REFRESH_TOKEN,
    DEMO_REALM_ID,
    DEMO_REDIRECT_URI,
    DEMO_REFRESH_TOKEN,
    DEMO_VERIFIER_TOKEN,
    REVOKE_PATH,
    THAMES_COMPANY,
    THAMES_PERSON_REFRESH_TOKEN,
    THAMES_REALM_ID,
    THAMES_REFRESH_TOKEN,
    TOKEN_PATH,
    DemoCompany,
    DemoCredentials,
    QboSandbox,
    main,
)

__all__ = [
    "COMPANY_TIME_ZONE",
    "DEFAULT_PORT",
    "DEMO_CLIENT_ID",
    "DEMO_CLIENT_SECRET",
    "DEMO_COMPANIES",
    "DEMO_COMPANY",
    "DEMO_PERSON_REFRESH_TOKEN",
    "DEMO_REALM_ID",
    "DEMO_REDIRECT_URI",
    "DEMO_REFRESH_TOKEN",
    "DEMO_VERIFIER_TOKEN",
    "REVOKE_PATH",
    "THAMES_COMPANY",
    "THAMES_PERSON_REFRESH_TOKEN",
    "THAMES_REALM_ID",
    "THAMES_REFRESH_TOKEN",
    "TOKEN_PATH",
    "DemoCompany",
    "DemoCredentials",
    "QboSandbox",
    "main",
]
