"""The HubSpot deal sync domain: QBO → HubSpot mapping (pure), matching, and (elsewhere) orchestration.

The mapping rules are written down in docs/mapping.md; the modules here implement them:
``mapping`` (deals, line items, companies, contacts), ``matching`` (link/create/ambiguous),
``stages`` (document status and the status → pipeline/stage map), ``money``, ``dates``,
``properties`` (the custom HubSpot properties) and ``errors``.
"""
