"""The configuration file: the connections a deployment serves, and their mapping, in one versioned file.

One human-edited TOML file per environment (``infra/config/<stage>.toml``; the local stack's is
``local/config/local.toml``), kept in the repository and deployed inside the Lambda code asset, so a
deployment's code and its configuration change together and roll back together (no second source of
truth to keep in step, nothing to fetch at cold start). TOML because it takes comments and Python
reads it without a dependency (``tomllib``). Its JSON schema is
``schemas/config/ledgerlink-config.v1.json``; :func:`load` checks it, then what a schema cannot
(unique names, realms and portals; time zones in the zone database; complete stage maps), and every
error names the file, the field's path and why: ``infra/config/dev.toml: connections[0].stages.
invoice.stages: unknown key 'opn' (expected one of ...; did you mean 'open'?)``.

A *connection* pairs one QBO company (realm), one HubSpot portal and, optionally, one Microsoft 365
tenant, each with its own secrets (:meth:`Connection.secret_name`), rate-limit budgets (per realm,
portal and mailbox) and mapping. :attr:`DeploymentConfig.version` is the content hash of the file:
every event, audit record and log line of a sync names it, so what ran under which mapping can be
told afterwards.

Parsed when first needed (:func:`deployment_config`, cached per process), never at import.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from jsonschema.exceptions import ValidationError

from ledgerlink import schemas
from ledgerlink.config import ConfigError, config_file_setting
from ledgerlink.mapping.errors import StageMapError
from ledgerlink.mapping.stages import (
    DEFAULT_ESTIMATE_STAGE_CONFIG,
    DEFAULT_INVOICE_STAGE_CONFIG,
    EstimateStatus,
    InvoiceStatus,
    StageMap,
)

SCHEMA: Final = "config/ledgerlink-config.v1.json"
VERSION_CHARS: Final = 12
DEFAULT_TIME_ZONE: Final = "America/New_York"
# What each connection's secret holds, by kind (the names: Connection.secret_name).
SECRET_KINDS: Final = ("qbo-oauth", "hubspot", "graph")


class ConfigFileError(ConfigError):
    """The configuration file is missing, not TOML, or not valid; the message names file, path and why."""

    def __init__(self, source: str, path: str, reason: str) -> None:
        self.source = source
        self.path = path
        self.reason = reason
        super().__init__(f"{source}: {path}: {reason}")


@dataclass(frozen=True)
class CustomFieldMap:
    qbo_name: str
    hubspot_property: str


@dataclass(frozen=True)
class TaxCode:
    name: str
    rate_percent: float | None = None


@dataclass(frozen=True)
class CalendarSettings:
    """The calendar flow's settings (docs/calendar-sync.md)."""

    enabled: bool = False
    reminder_days_before: int = 3
    show_as: str = "free"
    # Whose calendar: "deal_owner" (the deal owner's mailbox when the owner is a user of the tenant, else
    # the accounts-receivable mailbox) or "accounts_receivable" (always that one).
    mailbox: str = "deal_owner"
    # The Windows zone name to send Graph when the company's IANA zone is not in LedgerLink's table.
    outlook_time_zone: str | None = None
    # Where the event's links point: the portal's HubSpot app host (app-eu1.hubspot.com for EU portals)
    # and QBO's web app.
    hubspot_app_url: str = "https://app.hubspot.com"
    qbo_app_url: str = "https://app.qbo.intuit.com"


@dataclass(frozen=True)
class FollowUpSettings:
    enabled: bool = False
    days_before_due: tuple[int, ...] = ()
    days_past_due: tuple[int, ...] = (1,)
    meeting_minutes: int = 30
    lead_time_hours: int = 24
    business_hours: tuple[str, str] = ("09:00", "17:00")
    working_days: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri")
    finance_attendees: tuple[str, ...] = ()


@dataclass(frozen=True)
class DocumentNumbering:
    """DocNumbers for the documents LedgerLink creates, used only when the company's ``CustomTxnNumbers``
    preference is on (off: QBO numbers them, and LedgerLink sends none)."""

    # Prefixes of their own, so LedgerLink's numbers never run into the ones people type in QBO.
    estimate_prefix: str = "HSE-"
    invoice_prefix: str = "HS-"
    first: int = 1001
    # Numbers tried when QBO answers Fault 6140 (the number is taken) before the record fails.
    attempts: int = 5


@dataclass(frozen=True)
class QboDocumentSettings:
    """The document sync's settings (HubSpot -> QBO, docs/document-sync.md)."""

    enabled: bool = False
    default_item: str | None = None
    default_tax_code: str | None = None
    estimate_expiration_days: int | None = None
    numbering: DocumentNumbering = field(default_factory=DocumentNumbering)
    # Events whose sourceId is the webhook app's own id are LedgerLink's writes echoed back (unverified).
    ignore_own_writes: bool = True


@dataclass(frozen=True)
class DocumentStages:
    """One pipeline's deal stages that make a QBO Estimate (quote) and its Invoice (won)."""

    quote_stages: tuple[str, ...] = ()
    won_stages: tuple[str, ...] = ()


# HubSpot's default sales pipeline: "Contract sent" quotes, "Closed won" invoices.
DEFAULT_DOCUMENT_STAGES: Final = MappingProxyType(
    {"default": DocumentStages(quote_stages=("contractsent",), won_stages=("closedwon",))}
)


@dataclass(frozen=True)
class Connection:
    """One QBO company + one HubSpot portal (+ one Microsoft 365 tenant), and how they are mapped."""

    name: str
    realm_id: str
    portal_id: str
    time_zone: ZoneInfo
    invoice_stages: StageMap
    estimate_stages: StageMap
    tenant_id: str | None = None
    accounts_receivable_mailbox: str | None = None
    country: str | None = None
    documents: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    property_map: Mapping[str, tuple[CustomFieldMap, ...]] = field(default_factory=dict)
    tax_codes: Mapping[str, Mapping[str, TaxCode]] = field(default_factory=dict)
    calendar: CalendarSettings = field(default_factory=CalendarSettings)
    follow_up: FollowUpSettings = field(default_factory=FollowUpSettings)
    qbo_documents: QboDocumentSettings = field(default_factory=QboDocumentSettings)

    @property
    def document_stages(self) -> Mapping[str, DocumentStages]:
        """Per pipeline id, the stages that make QBO documents (``stages.documents``; HubSpot's default
        pipeline's ``contractsent`` / ``closedwon`` when the file names none)."""
        if not self.documents:
            return DEFAULT_DOCUMENT_STAGES
        return MappingProxyType(
            {
                pipeline: DocumentStages(
                    quote_stages=tuple(kinds.get("quote_stages", ())),
                    won_stages=tuple(kinds.get("won_stages", ())),
                )
                for pipeline, kinds in self.documents.items()
            }
        )

    def secret_name(self, stage: str, kind: str) -> str:
        """The Secrets Manager secret of this connection's ``kind`` (:data:`SECRET_KINDS`)."""
        suffix = {"qbo-oauth": "qbo/oauth", "hubspot": "hubspot/app", "graph": "graph/app"}.get(kind)
        if suffix is None:
            raise ValueError(f"unknown secret kind {kind!r} (known: {', '.join(SECRET_KINDS)})")
        return f"ledgerlink/{stage}/connections/{self.name}/{suffix}"

    def tax_code(self, code: str) -> TaxCode | None:
        """The label of a QBO tax code in this company's country's table, when the file has one."""
        return (self.tax_codes.get(self.country or "") or {}).get(code)


@dataclass(frozen=True)
class ReconcileSettings:
    """``[reconcile]``: how ``ledgerlink reconcile --repair`` treats drift (docs/reconcile.md)."""

    qbo_wins: bool = True
    """A deal field a person changed in HubSpot is written over with QBO's value (the books win);
    when False the record is reported and left as the person made it."""


@dataclass(frozen=True)
class DeploymentConfig:
    source: str
    version: str
    """The file's content hash (first 12 hex digits of its SHA-256)."""
    connections: tuple[Connection, ...]
    reconcile: ReconcileSettings = field(default_factory=ReconcileSettings)

    def by_realm(self, realm_id: str) -> Connection | None:
        return next((c for c in self.connections if c.realm_id == realm_id), None)

    def by_portal(self, portal_id: str) -> Connection | None:
        return next((c for c in self.connections if c.portal_id == portal_id), None)

    def by_name(self, name: str) -> Connection | None:
        return next((c for c in self.connections if c.name == name), None)


def load(path: Path | str) -> DeploymentConfig:
    """The file at ``path``, checked (module docstring); :class:`ConfigFileError` when it is not right."""
    source = str(path)
    try:
        content = Path(path).read_bytes()
    except OSError as error:
        raise ConfigFileError(source, "$", f"cannot be read ({error.strerror or error})") from None
    return parse(content, source)


def parse(content: bytes, source: str) -> DeploymentConfig:
    try:
        document = tomllib.loads(content.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigFileError(source, "$", "is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigFileError(source, "$", f"is not valid TOML ({error})") from None
    problem = schemas.first_error(SCHEMA, document)
    if problem is not None:
        raise ConfigFileError(source, _path(problem), _reason(problem))
    version = hashlib.sha256(content).hexdigest()[:VERSION_CHARS]
    defaults = document.get("defaults") or {}
    connections = tuple(
        _connection(source, index, raw, defaults) for index, raw in enumerate(document["connections"])
    )
    _check_unique(source, connections)
    reconcile = document.get("reconcile") or {}
    return DeploymentConfig(
        source=source,
        version=version,
        connections=connections,
        reconcile=ReconcileSettings(qbo_wins=bool(reconcile.get("qbo_wins", True))),
    )


def _path(error: ValidationError) -> str:
    text = ""
    for part in error.absolute_path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "$"


def _reason(error: ValidationError) -> str:
    """The schema's complaint, in the words of the file (an unknown key names the keys it may be)."""
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = sorted((error.schema.get("properties") or {}) if isinstance(error.schema, Mapping) else ())
        unknown = sorted(set(error.instance) - set(allowed))
        if allowed and unknown:
            key = unknown[0]
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            where = list(error.absolute_path)
            if len(where) >= 2 and where[-1] == "stages" and where[-2] in ("invoice", "estimate"):
                # A stage map's keys are the document's statuses (ledgerlink.mapping.stages).
                return f"{key!r} is not an {where[-2]} status (statuses: {', '.join(allowed)}{hint})"
            return f"unknown key {key!r} (expected one of: {', '.join(allowed)}{hint})"
    if error.validator == "required":
        return str(error.message).replace("is a required property", "is required")
    message = str(error.message)
    return message if len(message) <= 300 else message[:299] + "…"


def _connection(source: str, index: int, raw: Mapping[str, Any], defaults: Mapping[str, Any]) -> Connection:
    where = f"connections[{index}]"
    zone_name = raw.get("time_zone") or defaults.get("time_zone") or DEFAULT_TIME_ZONE
    try:
        zone = ZoneInfo(zone_name)
    except (ZoneInfoNotFoundError, ValueError):
        path = f"{where}.time_zone" if raw.get("time_zone") else "defaults.time_zone"
        raise ConfigFileError(
            source, path, f"{zone_name!r} is not a time zone of the IANA database"
        ) from None
    stages = _merged(defaults.get("stages"), raw.get("stages"))
    invoice = _stage_map(
        source, f"{where}.stages.invoice", stages.get("invoice"), DEFAULT_INVOICE_STAGE_CONFIG, InvoiceStatus
    )
    estimate = _stage_map(
        source,
        f"{where}.stages.estimate",
        stages.get("estimate"),
        DEFAULT_ESTIMATE_STAGE_CONFIG,
        EstimateStatus,
    )
    follow_up = FollowUpSettings(**_follow_up(_merged(defaults.get("follow_up"), raw.get("follow_up"))))
    start, end = follow_up.business_hours
    if start >= end:
        raise ConfigFileError(
            source, f"{where}.follow_up.business_hours", f"start {start} must be before end {end}"
        )
    microsoft = raw.get("microsoft") or {}
    return Connection(
        name=raw["name"],
        realm_id=raw["qbo"]["realm_id"],
        portal_id=raw["hubspot"]["portal_id"],
        time_zone=zone,
        invoice_stages=invoice,
        estimate_stages=estimate,
        tenant_id=microsoft.get("tenant_id"),
        accounts_receivable_mailbox=microsoft.get("accounts_receivable_mailbox"),
        country=raw.get("country"),
        documents=MappingProxyType(
            {
                pipeline: MappingProxyType({kind: tuple(ids) for kind, ids in kinds.items()})
                for pipeline, kinds in (stages.get("documents") or {}).items()
            }
        ),
        property_map=MappingProxyType(
            {
                document: tuple(CustomFieldMap(**entry) for entry in entries)
                for document, entries in (raw.get("property_map") or {}).items()
            }
        ),
        tax_codes=MappingProxyType(
            {
                country: MappingProxyType({code: TaxCode(**entry) for code, entry in table.items()})
                for country, table in (raw.get("tax_codes") or {}).items()
            }
        ),
        calendar=CalendarSettings(**_merged(defaults.get("calendar"), raw.get("calendar"))),
        follow_up=follow_up,
        qbo_documents=_qbo_documents(_merged(defaults.get("qbo_documents"), raw.get("qbo_documents"))),
    )


def _qbo_documents(raw: Mapping[str, Any]) -> QboDocumentSettings:
    values = dict(raw)
    if "numbering" in values:
        values["numbering"] = DocumentNumbering(**values["numbering"])
    return QboDocumentSettings(**values)


def _merged(default: Mapping[str, Any] | None, own: Mapping[str, Any] | None) -> dict[str, Any]:
    """A connection's section over the file's defaults, key by key (one level)."""
    return {**(default or {}), **(own or {})}


def _follow_up(raw: Mapping[str, Any]) -> dict[str, Any]:
    values = dict(raw)
    for key in ("days_before_due", "days_past_due", "working_days", "finance_attendees"):
        if key in values:
            values[key] = tuple(values[key])
    if "business_hours" in values:
        values["business_hours"] = (values["business_hours"]["start"], values["business_hours"]["end"])
    return values


def _stage_map(
    source: str, where: str, raw: Mapping[str, Any] | None, default: Mapping[str, Any], statuses: Any
) -> StageMap:
    try:
        return StageMap.from_config(raw if raw is not None else default, statuses, where=where)
    except StageMapError as error:
        path, _, reason = str(error).partition(": ")
        raise ConfigFileError(source, path or where, reason or str(error)) from None


def _check_unique(source: str, connections: Sequence[Connection]) -> None:
    for label, values in (
        ("name", [c.name for c in connections]),
        ("qbo.realm_id", [c.realm_id for c in connections]),
        ("hubspot.portal_id", [c.portal_id for c in connections]),
    ):
        seen: dict[str, int] = {}
        for index, value in enumerate(values):
            if value in seen:
                raise ConfigFileError(
                    source,
                    f"connections[{index}].{label}",
                    f"{value!r} is already connections[{seen[value]}]'s: a {label.split('.')[0]} "
                    "belongs to one connection only",
                )
            seen[value] = index


def shipped_files(repo_root: Path) -> list[Path]:
    """Every configuration file the repository ships: one per environment, and the local stack's."""
    return sorted((repo_root / "infra" / "config").glob("*.toml")) + sorted(
        (repo_root / "local" / "config").glob("*.toml")
    )


@cache
def deployment_config() -> DeploymentConfig:
    """The file ``LEDGERLINK_CONFIG_FILE`` names (relative paths: from the code root), loaded once per
    process on first use."""
    path = Path(config_file_setting())
    if not path.is_absolute():
        path = Path(os.environ.get("LAMBDA_TASK_ROOT") or _code_root()) / path
    return load(path)


def _code_root() -> Path:
    """functions/ in the checkout, the asset's root in Lambda (the folder holding ``ledgerlink/``)."""
    return Path(__file__).resolve().parent.parent


def reset_for_tests() -> None:
    deployment_config.cache_clear()
