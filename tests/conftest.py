"""Fixtures shared by every test layer."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["tests.sandbox_fixtures"]

REPO_ROOT = Path(__file__).resolve().parent.parent
# The vendors' own specs (HubSpot OpenAPI, Intuit XSD) sit beside the checkout, never inside it.
SHARED_SPECS = REPO_ROOT.parent / "shared" / "specs"
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
