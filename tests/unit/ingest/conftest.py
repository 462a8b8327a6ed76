"""The ingest handlers (QBO, HubSpot) read their configuration from the environment: set it, and forget
cached clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledgerlink.config import reset_settings_cache
from tests.unit.ingest.signed_requests import INGEST_ENVIRONMENT


@pytest.fixture
def ingest_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    from qbo_ingest import handler

    for name, value in INGEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    handler.reset_for_tests()
    yield dict(INGEST_ENVIRONMENT)
    reset_settings_cache()


@pytest.fixture
def hubspot_ingest_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The same environment for the HubSpot ingest handler, its cached ports forgotten before and after."""
    from hubspot_ingest import handler

    for name, value in INGEST_ENVIRONMENT.items():
        monkeypatch.setenv(name, value)
    reset_settings_cache()
    handler.reset_for_tests()
    yield dict(INGEST_ENVIRONMENT)
    handler.reset_for_tests()
    reset_settings_cache()
