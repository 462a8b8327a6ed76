"""Typed configuration, read from documented environment variables when first needed.

The names live in :class:`EnvVar` so that the CDK app (which sets them), the local
stack and the tests (which set them too) all use one spelling. Nothing here runs at
import time: :func:`get_settings` parses the environment on first call and caches it.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class EnvVar(StrEnum):
    """Every environment variable LedgerLink reads. Documented in README.md#configuration."""

    STAGE = "LEDGERLINK_STAGE"
    EVENT_BUS_NAME = "LEDGERLINK_EVENT_BUS_NAME"
    RAW_BUCKET_NAME = "LEDGERLINK_RAW_BUCKET_NAME"
    IDEMPOTENCY_TABLE_NAME = "LEDGERLINK_IDEMPOTENCY_TABLE_NAME"
    LINKS_TABLE_NAME = "LEDGERLINK_LINKS_TABLE_NAME"
    VENDOR_STATE_TABLE_NAME = "LEDGERLINK_VENDOR_STATE_TABLE_NAME"
    IDEMPOTENCY_TTL_SECONDS = "LEDGERLINK_IDEMPOTENCY_TTL_SECONDS"
    MAX_WEBHOOK_BYTES = "LEDGERLINK_MAX_WEBHOOK_BYTES"
    # Events (CloudEvents, or legacy entities) one webhook delivery may carry; more is refused with 400
    # before the schema is applied. ~3,100 real CloudEvents fit in 1 MiB, so the default leaves room.
    MAX_WEBHOOK_EVENTS = "LEDGERLINK_MAX_WEBHOOK_EVENTS"
    SECRETS_MAX_AGE_SECONDS = "LEDGERLINK_SECRETS_MAX_AGE_SECONDS"
    # The level from which a `ledgerlink` command shows the flows' own log lines (on stderr).
    CLI_LOG_LEVEL = "LEDGERLINK_CLI_LOG_LEVEL"

    QBO_BASE_URL = "LEDGERLINK_QBO_BASE_URL"
    QBO_TOKEN_URL = "LEDGERLINK_QBO_TOKEN_URL"
    QBO_MINOR_VERSION = "LEDGERLINK_QBO_MINOR_VERSION"
    QBO_WEBHOOK_SECRET_NAME = "LEDGERLINK_QBO_WEBHOOK_SECRET_NAME"
    QBO_REQUESTS_PER_MINUTE = "LEDGERLINK_QBO_REQUESTS_PER_MINUTE"
    QBO_REQUESTS_PER_SECOND = "LEDGERLINK_QBO_REQUESTS_PER_SECOND"

    HUBSPOT_BASE_URL = "LEDGERLINK_HUBSPOT_BASE_URL"
    HUBSPOT_REQUESTS_PER_10S = "LEDGERLINK_HUBSPOT_REQUESTS_PER_10S"
    HUBSPOT_SEARCH_PER_SECOND = "LEDGERLINK_HUBSPOT_SEARCH_PER_SECOND"
    # The URL registered with HubSpot as the webhook target, when it is not the API's own
    # (https://<host><rawPath>): e.g. behind a custom domain with a base path. HubSpot signs the URL
    # it called, so the HubSpot ingest must know it exactly (docs/hubspot-webhooks.md). Optional.
    HUBSPOT_WEBHOOK_URL = "LEDGERLINK_HUBSPOT_WEBHOOK_URL"

    GRAPH_BASE_URL = "LEDGERLINK_GRAPH_BASE_URL"
    GRAPH_TOKEN_URL = "LEDGERLINK_GRAPH_TOKEN_URL"
    GRAPH_REQUESTS_PER_10MIN = "LEDGERLINK_GRAPH_REQUESTS_PER_10MIN"
    # Seconds added to every client-side rate-limit window (clock skew, send-latency spread; 0 allowed).
    RATE_LIMIT_HEADROOM_SECONDS = "LEDGERLINK_RATE_LIMIT_HEADROOM_SECONDS"

    HTTP_TIMEOUT_SECONDS = "LEDGERLINK_HTTP_TIMEOUT_SECONDS"
    BREAKER_FAILURE_THRESHOLD = "LEDGERLINK_BREAKER_FAILURE_THRESHOLD"
    BREAKER_COOL_DOWN_SECONDS = "LEDGERLINK_BREAKER_COOL_DOWN_SECONDS"

    # A function fed by an SQS queue: that queue's dead-letter queue (the function sends a record that
    # cannot succeed there itself, with its reason) and the queue's maxReceiveCount (a retryable failure
    # on that receive is the last chance). Optional: without them the queue's redrive policy alone
    # dead-letters, without a reason.
    DEAD_LETTER_QUEUE_NAME = "LEDGERLINK_DEAD_LETTER_QUEUE_NAME"
    # The backfill job's own queue (backfill-jobs): `ledgerlink backfill --in-aws` sends the start there,
    # and the qbo_backfill Lambda its continuations. Optional: only that function and command need it.
    BACKFILL_QUEUE_NAME = "LEDGERLINK_BACKFILL_QUEUE_NAME"
    MAX_RECEIVE_COUNT = "LEDGERLINK_MAX_RECEIVE_COUNT"
    # A record given back to SQS returns after its own delay (ledgerlink.consumer.redelivery): exponential from
    # the base to the cap, with equal jitter. The CDK app sizes maxReceiveCount from the same two values.
    # The configuration file (ledgerlink.configfile): connections, stage and property maps, tax tables,
    # calendar and follow-up settings. Relative paths start at the code root (the Lambda task root).
    CONFIG_FILE = "LEDGERLINK_CONFIG_FILE"
    RETRY_BASE_SECONDS = "LEDGERLINK_RETRY_BASE_SECONDS"
    RETRY_MAX_DELAY_SECONDS = "LEDGERLINK_RETRY_MAX_DELAY_SECONDS"
    # The CDC catch-up (docs/catchup.md): the QBO entities it reads (comma-separated), how far its first
    # run looks back, and the overlap (clock skew) subtracted when its cursor advances.
    CATCHUP_ENTITIES = "LEDGERLINK_CATCHUP_ENTITIES"
    # Days a sync-history row is kept (ledgerlink.history; the links table's TTL attribute); 30 by default.
    HISTORY_TTL_DAYS = "LEDGERLINK_HISTORY_TTL_DAYS"
    CATCHUP_LOOK_BACK_SECONDS = "LEDGERLINK_CATCHUP_LOOK_BACK_SECONDS"
    CATCHUP_OVERLAP_SECONDS = "LEDGERLINK_CATCHUP_OVERLAP_SECONDS"


class ConfigError(ValueError):
    """A required variable is missing or a value does not parse; the message names the variable."""


# Vendor defaults: the production hosts and the vendors' documented limits (../shared/api-notes.md).
DEFAULTS: dict[EnvVar, str] = {
    EnvVar.STAGE: "dev",
    EnvVar.IDEMPOTENCY_TTL_SECONDS: str(7 * 24 * 3600),
    EnvVar.MAX_WEBHOOK_BYTES: str(1024 * 1024),
    EnvVar.MAX_WEBHOOK_EVENTS: "5000",
    EnvVar.SECRETS_MAX_AGE_SECONDS: "300",
    EnvVar.QBO_BASE_URL: "https://quickbooks.api.intuit.com",
    EnvVar.QBO_TOKEN_URL: "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
    EnvVar.QBO_MINOR_VERSION: "75",
    EnvVar.QBO_REQUESTS_PER_MINUTE: "500",
    EnvVar.QBO_REQUESTS_PER_SECOND: "10",
    EnvVar.HUBSPOT_BASE_URL: "https://api.hubapi.com",
    EnvVar.HUBSPOT_REQUESTS_PER_10S: "100",
    EnvVar.HUBSPOT_SEARCH_PER_SECOND: "4",
    EnvVar.GRAPH_BASE_URL: "https://graph.microsoft.com/v1.0",
    EnvVar.GRAPH_TOKEN_URL: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token",
    EnvVar.GRAPH_REQUESTS_PER_10MIN: "10000",
    EnvVar.RATE_LIMIT_HEADROOM_SECONDS: "0.2",
    EnvVar.HTTP_TIMEOUT_SECONDS: "10",
    EnvVar.BREAKER_FAILURE_THRESHOLD: "5",
    EnvVar.BREAKER_COOL_DOWN_SECONDS: "30",
    EnvVar.CONFIG_FILE: "ledgerlink-config.toml",
    EnvVar.RETRY_BASE_SECONDS: "2",
    EnvVar.RETRY_MAX_DELAY_SECONDS: "120",
    EnvVar.CATCHUP_ENTITIES: "Invoice,Estimate,Payment,Customer",
    EnvVar.HISTORY_TTL_DAYS: "30",
    EnvVar.CLI_LOG_LEVEL: "WARNING",
    EnvVar.CATCHUP_LOOK_BACK_SECONDS: str(24 * 3600),
    EnvVar.CATCHUP_OVERLAP_SECONDS: "300",
}


# Variables a function may go without (no default either): only some functions need them.
OPTIONAL: frozenset[EnvVar] = frozenset(
    {
        EnvVar.DEAD_LETTER_QUEUE_NAME,
        EnvVar.MAX_RECEIVE_COUNT,
        EnvVar.HUBSPOT_WEBHOOK_URL,
        EnvVar.BACKFILL_QUEUE_NAME,
    }
)


@dataclass(frozen=True)
class VendorLimits:
    """Client-side rate limits, set a little under what each vendor enforces."""

    qbo_per_minute: int
    qbo_per_second: int
    hubspot_per_10s: int
    hubspot_search_per_second: int
    graph_per_10min: int
    # Every admitted call counts for its window plus this (docs/http-layer.md#rate-limits).
    headroom_seconds: float


@dataclass(frozen=True)
class Settings:
    stage: str
    event_bus_name: str
    raw_bucket_name: str
    idempotency_table_name: str
    links_table_name: str
    vendor_state_table_name: str
    idempotency_ttl_seconds: int
    max_webhook_bytes: int
    max_webhook_events: int
    secrets_max_age_seconds: int
    qbo_base_url: str
    qbo_token_url: str
    qbo_minor_version: str
    qbo_webhook_secret_name: str
    hubspot_base_url: str
    graph_base_url: str
    graph_token_url: str
    http_timeout_seconds: float
    breaker_failure_threshold: int
    breaker_cool_down_seconds: float
    limits: VendorLimits
    dead_letter_queue_name: str | None = None
    max_receive_count: int | None = None
    backfill_queue_name: str | None = None
    config_file: str = "ledgerlink-config.toml"
    retry_base_seconds: float = 2.0
    retry_max_delay_seconds: float = 120.0
    catchup_entities: tuple[str, ...] = ("Invoice", "Estimate", "Payment", "Customer")
    catchup_look_back_seconds: float = 24 * 3600.0
    catchup_overlap_seconds: float = 300.0
    hubspot_webhook_url: str | None = None
    """Scheme, host and path of the URL HubSpot calls, when set (EnvVar.HUBSPOT_WEBHOOK_URL)."""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        reader = _Reader(os.environ if environ is None else environ)
        return cls(
            stage=reader.text(EnvVar.STAGE),
            event_bus_name=reader.text(EnvVar.EVENT_BUS_NAME),
            raw_bucket_name=reader.text(EnvVar.RAW_BUCKET_NAME),
            idempotency_table_name=reader.text(EnvVar.IDEMPOTENCY_TABLE_NAME),
            links_table_name=reader.text(EnvVar.LINKS_TABLE_NAME),
            vendor_state_table_name=reader.text(EnvVar.VENDOR_STATE_TABLE_NAME),
            idempotency_ttl_seconds=reader.integer(EnvVar.IDEMPOTENCY_TTL_SECONDS),
            max_webhook_bytes=reader.integer(EnvVar.MAX_WEBHOOK_BYTES),
            max_webhook_events=reader.integer(EnvVar.MAX_WEBHOOK_EVENTS),
            secrets_max_age_seconds=reader.integer(EnvVar.SECRETS_MAX_AGE_SECONDS),
            qbo_base_url=reader.url(EnvVar.QBO_BASE_URL),
            qbo_token_url=reader.url(EnvVar.QBO_TOKEN_URL),
            qbo_minor_version=reader.text(EnvVar.QBO_MINOR_VERSION),
            qbo_webhook_secret_name=reader.text(EnvVar.QBO_WEBHOOK_SECRET_NAME),
            hubspot_base_url=reader.url(EnvVar.HUBSPOT_BASE_URL),
            graph_base_url=reader.url(EnvVar.GRAPH_BASE_URL),
            graph_token_url=reader.url(EnvVar.GRAPH_TOKEN_URL),
            http_timeout_seconds=reader.number(EnvVar.HTTP_TIMEOUT_SECONDS),
            breaker_failure_threshold=reader.integer(EnvVar.BREAKER_FAILURE_THRESHOLD),
            breaker_cool_down_seconds=reader.number(EnvVar.BREAKER_COOL_DOWN_SECONDS),
            limits=VendorLimits(
                qbo_per_minute=reader.integer(EnvVar.QBO_REQUESTS_PER_MINUTE),
                qbo_per_second=reader.integer(EnvVar.QBO_REQUESTS_PER_SECOND),
                hubspot_per_10s=reader.integer(EnvVar.HUBSPOT_REQUESTS_PER_10S),
                hubspot_search_per_second=reader.integer(EnvVar.HUBSPOT_SEARCH_PER_SECOND),
                graph_per_10min=reader.integer(EnvVar.GRAPH_REQUESTS_PER_10MIN),
                headroom_seconds=reader.non_negative_number(EnvVar.RATE_LIMIT_HEADROOM_SECONDS),
            ),
            dead_letter_queue_name=reader.optional_text(EnvVar.DEAD_LETTER_QUEUE_NAME),
            backfill_queue_name=reader.optional_text(EnvVar.BACKFILL_QUEUE_NAME),
            max_receive_count=reader.optional_integer(EnvVar.MAX_RECEIVE_COUNT),
            config_file=reader.text(EnvVar.CONFIG_FILE),
            retry_base_seconds=reader.number(EnvVar.RETRY_BASE_SECONDS),
            retry_max_delay_seconds=reader.number(EnvVar.RETRY_MAX_DELAY_SECONDS),
            catchup_entities=tuple(
                name.strip() for name in reader.text(EnvVar.CATCHUP_ENTITIES).split(",") if name.strip()
            ),
            catchup_look_back_seconds=reader.number(EnvVar.CATCHUP_LOOK_BACK_SECONDS),
            catchup_overlap_seconds=reader.non_negative_number(EnvVar.CATCHUP_OVERLAP_SECONDS),
            hubspot_webhook_url=reader.optional_webhook_url(EnvVar.HUBSPOT_WEBHOOK_URL),
        )


class _Reader:
    """Reads one variable at a time, falling back to DEFAULTS, and names the variable in every error."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def text(self, name: EnvVar) -> str:
        value = self._environ.get(name.value, DEFAULTS.get(name))
        if value is None or value.strip() == "":
            raise ConfigError(f"environment variable {name.value} is required but not set")
        return value.strip()

    def optional_text(self, name: EnvVar) -> str | None:
        value = self._environ.get(name.value)
        return None if value is None or value.strip() == "" else value.strip()

    def optional_integer(self, name: EnvVar) -> int | None:
        return None if self.optional_text(name) is None else self.integer(name)

    def integer(self, name: EnvVar) -> int:
        raw = self.text(name)
        try:
            value = int(raw)
        except ValueError:
            raise ConfigError(f"environment variable {name.value} must be an integer, got {raw!r}") from None
        if value <= 0:
            raise ConfigError(f"environment variable {name.value} must be positive, got {value}")
        return value

    def number(self, name: EnvVar) -> float:
        raw = self.text(name)
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"environment variable {name.value} must be a number, got {raw!r}") from None
        if value <= 0:
            raise ConfigError(f"environment variable {name.value} must be positive, got {value}")
        return value

    def non_negative_number(self, name: EnvVar) -> float:
        raw = self.text(name)
        try:
            value = float(raw)
        except ValueError:
            raise ConfigError(f"environment variable {name.value} must be a number, got {raw!r}") from None
        if not value >= 0:  # also refuses NaN
            raise ConfigError(f"environment variable {name.value} must be zero or more, got {value}")
        return value

    def url(self, name: EnvVar) -> str:
        raw = self.text(name)
        if not raw.startswith(("https://", "http://")):
            raise ConfigError(f"environment variable {name.value} must be an http(s) URL, got {raw!r}")
        return raw.rstrip("/")

    def optional_webhook_url(self, name: EnvVar) -> str | None:
        """An http(s) URL with a host and no query or fragment, kept exactly as written (a trailing
        slash is part of what a webhook sender signs)."""
        raw = self.optional_text(name)
        if raw is None:
            return None
        parts = urllib.parse.urlsplit(raw)
        if parts.scheme not in ("https", "http") or not parts.netloc or "?" in raw or "#" in raw:
            raise ConfigError(
                f"environment variable {name.value} must be an http(s) URL with a host and a path, "
                f"without a query or fragment, got {raw!r}"
            )
        return raw

    def zone(self, name: EnvVar) -> ZoneInfo:
        raw = self.text(name)
        try:
            return ZoneInfo(raw)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(
                f"environment variable {name.value} is not an IANA time zone: {raw!r}"
            ) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, parsed on first use (never at import)."""
    return Settings.from_env()


def reset_settings_cache() -> None:
    """For tests and the local stack, which change the environment between handler runs."""
    get_settings.cache_clear()


def config_file_setting(environ: Mapping[str, str] | None = None) -> str:
    """``LEDGERLINK_CONFIG_FILE`` alone: the CLI reads the configuration file without a deployment's
    other variables."""
    return _Reader(os.environ if environ is None else environ).text(EnvVar.CONFIG_FILE)


def links_table_setting(environ: Mapping[str, str] | None = None) -> str:
    """``LEDGERLINK_LINKS_TABLE_NAME`` alone: ``ledgerlink audit deal`` reads the links table without a
    deployment's other variables."""
    return _Reader(os.environ if environ is None else environ).text(EnvVar.LINKS_TABLE_NAME)


def history_ttl_days_setting(environ: Mapping[str, str] | None = None) -> int:
    """``LEDGERLINK_HISTORY_TTL_DAYS``: days a sync-history row is kept (30 when unset; positive)."""
    days = _Reader(os.environ if environ is None else environ).integer(EnvVar.HISTORY_TTL_DAYS)
    if days <= 0:
        raise ConfigError(f"{EnvVar.HISTORY_TTL_DAYS.value} must be a positive number of days, got {days}")
    return days


CLI_LOG_LEVELS: tuple[str, ...] = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def cli_log_level_setting(environ: Mapping[str, str] | None = None) -> str:
    """``LEDGERLINK_CLI_LOG_LEVEL``: from which level a ``ledgerlink`` command shows the flows' own JSON
    log lines, on stderr (WARNING when unset)."""
    level = _Reader(os.environ if environ is None else environ).text(EnvVar.CLI_LOG_LEVEL).strip().upper()
    if level not in CLI_LOG_LEVELS:
        raise ConfigError(
            f"{EnvVar.CLI_LOG_LEVEL.value} must be one of {', '.join(CLI_LOG_LEVELS)}, got {level!r}"
        )
    return level
