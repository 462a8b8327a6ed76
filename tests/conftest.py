"""Fixtures shared by every test layer."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.sandbox_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent


def _find_shared_specs() -> Path:
    """The vendors' own specs (HubSpot OpenAPI, Intuit XSD) sit beside the checkout, never inside it.

    Looked for in ``$LEDGERLINK_SHARED_SPECS``, then ``../shared/specs`` next to the checkout, then the
    workplace's ``/work/shared/specs`` (a scratch clone elsewhere on the same machine still finds them).
    """
    candidates = [
        Path(os.environ["LEDGERLINK_SHARED_SPECS"]) if os.environ.get("LEDGERLINK_SHARED_SPECS") else None,
        REPO_ROOT.parent / "shared" / "specs",
        Path("/work/shared/specs"),
    ]
    for candidate in candidates:
        if candidate is not None and (candidate / "hubspot").is_dir():
            return candidate
    raise RuntimeError(
        "The vendor specs (shared/specs with hubspot/ and quickbooks/xsd/) were not found beside the "
        "checkout or in /work/shared/specs; set LEDGERLINK_SHARED_SPECS to their folder."
    )


SHARED_SPECS = _find_shared_specs()
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(autouse=True)
def _no_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test may reach a real AWS account: fake credentials and a fixed region everywhere."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "1")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "LedgerLinkTest")
    from ledgerlink.config import reset_settings_cache

    reset_settings_cache()
