"""Configuration: parsed once from documented environment variables, with errors that name the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ledgerlink.config import ConfigError, EnvVar, Settings, get_settings, reset_settings_cache
from ledgerlink.qbo.webhooks import MAX_EVENTS_PER_DELIVERY
from tests.conftest import REPO_ROOT

REQUIRED = {
    EnvVar.EVENT_BUS_NAME.value: "bus",
    EnvVar.RAW_BUCKET_NAME.value: "bucket",
    EnvVar.IDEMPOTENCY_TABLE_NAME.value: "idem",
    EnvVar.LINKS_TABLE_NAME.value: "links",
    EnvVar.VENDOR_STATE_TABLE_NAME.value: "state",
    EnvVar.QBO_WEBHOOK_SECRET_NAME.value: "qbo-webhook",
}


def test_defaults_are_the_vendors_production_hosts_and_documented_limits() -> None:
    settings = Settings.from_env(REQUIRED)
    assert settings.qbo_base_url == "https://quickbooks.api.intuit.com"
    assert settings.hubspot_base_url == "https://api.hubapi.com"
    assert (settings.limits.qbo_per_minute, settings.limits.qbo_per_second) == (500, 10)
    assert settings.config_file == "ledgerlink-config.toml"  # beside the package in the code asset
    assert settings.max_webhook_bytes == 1024 * 1024
    # the parser's own default, so a caller that passes no limit gets the deployed one
    assert settings.max_webhook_events == MAX_EVENTS_PER_DELIVERY == 5000


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        (EnvVar.EVENT_BUS_NAME.value, "", "LEDGERLINK_EVENT_BUS_NAME is required"),
        (
            EnvVar.QBO_REQUESTS_PER_SECOND.value,
            "ten",
            "LEDGERLINK_QBO_REQUESTS_PER_SECOND must be an integer",
        ),
        (EnvVar.QBO_REQUESTS_PER_SECOND.value, "0", "LEDGERLINK_QBO_REQUESTS_PER_SECOND must be positive"),
        (
            EnvVar.HUBSPOT_BASE_URL.value,
            "api.hubapi.com",
            "LEDGERLINK_HUBSPOT_BASE_URL must be an http(s) URL",
        ),
        (EnvVar.HTTP_TIMEOUT_SECONDS.value, "-1", "LEDGERLINK_HTTP_TIMEOUT_SECONDS must be positive"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Settings.from_env({**REQUIRED, name: value})


def test_settings_are_parsed_on_first_use_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv(EnvVar.HTTP_TIMEOUT_SECONDS.value, "7")
    reset_settings_cache()
    first = get_settings()
    monkeypatch.setenv(EnvVar.HTTP_TIMEOUT_SECONDS.value, "9")
    assert get_settings() is first
    reset_settings_cache()
    assert get_settings().http_timeout_seconds == 9


def test_importing_config_reads_no_environment() -> None:
    # An empty environment would make parsing fail: importing must not parse.
    result = subprocess.run(
        [sys.executable, "-c", "import ledgerlink.config"],
        env={"PYTHONPATH": str(REPO_ROOT / "functions")},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_environment_variable_is_documented_in_the_readme() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert [name.value for name in EnvVar if f"`{name.value}`" not in readme] == []


def test_the_hubspot_webhook_url_is_optional_and_kept_exactly_as_written() -> None:
    assert Settings.from_env(REQUIRED).hubspot_webhook_url is None
    # a trailing slash is part of the URL HubSpot signs: it is not trimmed
    registered = "https://hooks.example.com/ledgerlink/v1/webhooks/hubspot/"
    assert Settings.from_env(
        {**REQUIRED, EnvVar.HUBSPOT_WEBHOOK_URL.value: registered}
    ).hubspot_webhook_url == (registered)


@pytest.mark.parametrize(
    "value",
    [
        "hooks.example.com/v1/webhooks/hubspot",
        "https:///v1/webhooks/hubspot",
        "https://hooks.example.com/v1/webhooks/hubspot?source=hubspot",
        "https://hooks.example.com/v1/webhooks/hubspot?",
        "https://hooks.example.com/v1/webhooks/hubspot#top",
        "ftp://hooks.example.com/v1/webhooks/hubspot",
    ],
)
def test_a_hubspot_webhook_url_with_a_query_or_without_a_host_is_refused(value: str) -> None:
    # (the query, if the registered URL has one, is taken from each request's rawQueryString)
    with pytest.raises(ConfigError, match="LEDGERLINK_HUBSPOT_WEBHOOK_URL must be an http"):
        Settings.from_env({**REQUIRED, EnvVar.HUBSPOT_WEBHOOK_URL.value: value})
