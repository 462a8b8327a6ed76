"""The whole LedgerLink deployment of one stage, declared once, in plain Python (no CDK imports).

Both builders read this module and nothing else for names, sizes and wiring:

- the CDK app (``infra/app.py`` and the construct modules beside it) turns a :class:`Topology` into
  CloudFormation;
- the local stack (``local/ledgerlink_local/stack/``) turns the same :class:`Topology` into moto
  resources, SQS pollers and an HTTP front,

so the cloud and the local choreography cannot drift apart. Usage::

    from infra.topology import build_topology, environment_from_cdk_json

    environment = environment_from_cdk_json("dev")           # cdk.json context "environments.dev"
    topology = build_topology(environment, account="123456789012", region="us-east-1")
    topology.function("qbo_ingest").environment              # the exact env the Lambda gets
    topology.rule("qbo-entity-to-deal-sync").event_pattern   # the EventBridge pattern, as JSON data

Per-environment facts (vendor hosts, time zone, API throttling, log retention, alarm e-mail, removal
policy) live in ``cdk.json`` under ``context.environments.<stage>`` and are parsed, with an error that
names the offending key, by :meth:`EnvironmentConfig.from_context`. Everything else (names, sizes,
patterns) is decided here so that every stage has the same shape.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from ledgerlink import tables
from ledgerlink.config import DEFAULTS, OPTIONAL, EnvVar
from ledgerlink.configfile import ConfigFileError, DeploymentConfig
from ledgerlink.configfile import load as load_config
from ledgerlink.consumer.redelivery import OUTAGE_SPAN_SECONDS, RedeliverySchedule
from ledgerlink.events import DetailType, EventSource

REPO_ROOT: Final = Path(__file__).resolve().parent.parent
CDK_JSON: Final = REPO_ROOT / "cdk.json"
# One configuration file per environment (ledgerlink.configfile), deployed in the code asset.
CONFIG_DIR: Final = REPO_ROOT / "infra" / "config"

PREFIX: Final = "ledgerlink"
STAGES: Final = ("dev", "staging", "prod")

# One runtime and one architecture for every function; infra/asset.py builds the code for exactly these.
LAMBDA_PYTHON_VERSION: Final = "3.14"
LAMBDA_ARCHITECTURE: Final = "arm64"

# The values CloudWatch Logs accepts for a log group's retention.
LOG_RETENTION_DAYS_ALLOWED: Final = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653}
)
# SQS accepts 60 s to 14 days of retention; a dead-letter queue keeps messages the longest allowed.
SQS_MAX_RETENTION_SECONDS: Final = 14 * 24 * 3600
# AWS: the visibility timeout of a Lambda-polled queue should be at least six times the function timeout
# (plus the batching window), so that a batch retried by Lambda is not delivered twice meanwhile.
VISIBILITY_TIMEOUT_FACTOR: Final = 6
# SQS event sources: more than 10 messages a batch needs a batching window of at least one second.
SQS_BATCH_WITHOUT_WINDOW_MAX: Final = 10
SQS_BATCH_MAX: Final = 10_000
# The values an SQS event source's maximum concurrency may take.
SQS_MAX_CONCURRENCY_RANGE: Final = range(2, 1001)
# EventBridge schedule expressions: rate(<n> <unit>) (singular unit for 1, plural otherwise; a minute at
# least) or cron(<6 fields>), in UTC. The local stack's scheduler parses both in full.
_RATE_EXPRESSION: Final = re.compile(
    r"^rate\((?P<value>[1-9][0-9]*) (?P<unit>minute|minutes|hour|hours|day|days)\)$"
)
_CRON_EXPRESSION: Final = re.compile(r"^cron\(\S+( \S+){5}\)$")
# How often the follow-up sweep runs when cdk.json does not say (environments.<stage>.followup_sweep_schedule).
DEFAULT_FOLLOWUP_SWEEP_SCHEDULE: Final = "rate(1 day)"
# The scheduled rule that starts the sweep (the local stack can fire it every few seconds instead).
FOLLOWUP_SWEEP_RULE: Final = "followup-sweep"
# How often the CDC catch-up runs when cdk.json does not say (environments.<stage>.catchup_schedule).
DEFAULT_CATCHUP_SCHEDULE: Final = "rate(15 minutes)"
# The scheduled rule that starts the catch-up (the local stack can fire it every few seconds instead).
CATCHUP_RULE: Final = "qbo-catchup"
# How often the scheduled reconciliation reports drift when cdk.json does not say
# (environments.<stage>.reconcile_schedule), and its rule (the local stack can fire it sooner).
DEFAULT_RECONCILE_SCHEDULE: Final = "rate(1 day)"
RECONCILE_RULE: Final = "qbo-reconcile"

# How long a flow may process nothing while its upstream shows changes before the "stalled" alarm fires,
# when cdk.json does not say (environments.<stage>.stalled_flow_hours). A CloudWatch alarm's period
# times its evaluation periods may not exceed a day, hence the upper bound.
DEFAULT_STALLED_FLOW_HOURS: Final = 6
STALLED_FLOW_HOURS_MAX: Final = 24
# Stages a deploy refuses without an alarm destination (environments.<stage>.alarm_email or
# -c alarm_email=...); every other stage is deployed with a loud warning instead (infra/app.py).
ALARM_EMAIL_REQUIRED_STAGES: Final = frozenset({"prod"})

# The webhook routes (versioned); HubSpot signs the URL it calls, so the local stack needs its path too.
QBO_WEBHOOK_PATH: Final = "/v1/webhooks/qbo"
HUBSPOT_WEBHOOK_PATH: Final = "/v1/webhooks/hubspot"

# The QBO entities that become HubSpot objects (F2): invoices, estimates and payments become deals,
# customers become companies/contacts.
DEAL_SYNC_ENTITIES: Final = ("Invoice", "Estimate", "Payment", "Customer")

# Where the functions' Powertools metrics land (ledgerlink.observability.METRICS_NAMESPACE; a test
# keeps the two equal) and the dimension Powertools adds: the function's service name.
METRICS_NAMESPACE: Final = "LedgerLink"
METRICS_SERVICE_DIMENSION: Final = "service"

_STAGE_PATTERN: Final = re.compile(r"^[a-z][a-z0-9-]{1,15}$")
_EMAIL_PATTERN: Final = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class TopologyError(ValueError):
    """The deployment description is inconsistent or a cdk.json value is invalid; the message names it."""


class RemovalPolicy(StrEnum):
    """What CloudFormation does with stateful resources (tables, buckets, logs) when the stack goes."""

    DESTROY = "destroy"
    RETAIN = "retain"


class ResourceKind(StrEnum):
    TABLE = "table"
    # A global secondary index, keyed ``<table key>/<index name>``: read (queried) only.
    TABLE_INDEX = "table_index"
    BUCKET = "bucket"
    SECRET = "secret"  # noqa: S105 (a resource kind, not a password)
    EVENT_BUS = "event_bus"
    # The dead-letter queue of the work queue with this key (a function sends what cannot succeed there).
    DEAD_LETTER_QUEUE = "dead_letter_queue"
    # The work queue with this key itself: send only (the backfill job re-enqueues its continuation).
    QUEUE = "queue"


class Access(StrEnum):
    READ = "read"
    WRITE = "write"
    READ_WRITE = "read_write"


@dataclass(frozen=True)
class ApiThrottle:
    """Stage-wide API Gateway throttling: steady requests per second and the burst bucket size."""

    rate_limit: float
    burst_limit: int


@dataclass(frozen=True)
class EnvironmentConfig:
    """What differs between dev, staging and prod; read from ``cdk.json`` context ``environments.<stage>``."""

    stage: str
    qbo_base_url: str
    hubspot_base_url: str
    graph_base_url: str
    api_throttle: ApiThrottle
    log_retention_days: int
    raw_delivery_retention_days: int
    event_archive_retention_days: int
    removal_policy: RemovalPolicy
    alarm_email: str | None = None
    account: str | None = None
    region: str | None = None
    followup_sweep_schedule: str = DEFAULT_FOLLOWUP_SWEEP_SCHEDULE
    """When the Teams invite Lambda sweeps the owed invoices for follow-ups that came due (an EventBridge
    schedule expression, UTC)."""
    catchup_schedule: str = DEFAULT_CATCHUP_SCHEDULE
    """When the QBO catch-up Lambda reads change data capture for changes no webhook brought (an
    EventBridge schedule expression, UTC)."""
    reconcile_schedule: str = DEFAULT_RECONCILE_SCHEDULE
    """When the QBO reconcile Lambda reports the drift between the books and the CRM (an EventBridge
    schedule expression, UTC)."""
    stalled_flow_hours: int = DEFAULT_STALLED_FLOW_HOURS
    """How many hours a flow may process nothing while its upstream published changes before the
    ``<flow>-stalled`` alarm fires (1..24)."""
    hubspot_webhook_url: str | None = None
    """The HubSpot webhook URL registered with HubSpot when it is not the API's own (a custom domain,
    a base path); the HubSpot ingest checks signatures against it (EnvVar.HUBSPOT_WEBHOOK_URL)."""

    @classmethod
    def from_context(cls, stage: str, values: Mapping[str, Any]) -> EnvironmentConfig:
        """Parse one ``environments.<stage>`` entry; every error names the key (``environments.prod.x``)."""
        if not _STAGE_PATTERN.match(stage):
            raise TopologyError(f"stage name {stage!r} must be 2-16 lower-case letters, digits or dashes")
        reader = _ContextReader(f"environments.{stage}", values)
        throttle = reader.mapping("api_throttle")
        throttle_reader = _ContextReader(f"environments.{stage}.api_throttle", throttle)
        return cls(
            stage=stage,
            qbo_base_url=reader.url("qbo_base_url"),
            hubspot_base_url=reader.url("hubspot_base_url"),
            graph_base_url=reader.url("graph_base_url"),
            api_throttle=ApiThrottle(
                rate_limit=throttle_reader.positive_number("rate_limit"),
                burst_limit=throttle_reader.positive_integer("burst_limit"),
            ),
            log_retention_days=reader.log_retention("log_retention_days"),
            raw_delivery_retention_days=reader.positive_integer("raw_delivery_retention_days"),
            event_archive_retention_days=reader.positive_integer("event_archive_retention_days"),
            removal_policy=reader.choice("removal_policy", RemovalPolicy),
            alarm_email=reader.optional_email("alarm_email"),
            account=reader.optional_text("account", pattern=r"^[0-9]{12}$"),
            region=reader.optional_text("region", pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$"),
            followup_sweep_schedule=reader.optional_schedule(
                "followup_sweep_schedule", DEFAULT_FOLLOWUP_SWEEP_SCHEDULE
            ),
            catchup_schedule=reader.optional_schedule("catchup_schedule", DEFAULT_CATCHUP_SCHEDULE),
            reconcile_schedule=reader.optional_schedule("reconcile_schedule", DEFAULT_RECONCILE_SCHEDULE),
            stalled_flow_hours=reader.optional_integer_in(
                "stalled_flow_hours", DEFAULT_STALLED_FLOW_HOURS, 1, STALLED_FLOW_HOURS_MAX
            ),
            hubspot_webhook_url=reader.optional_text(
                "hubspot_webhook_url", pattern=r"^https://[^\s/?#]+(/[^\s?#]*)?\Z"
            ),
        )


def environment_from_cdk_json(stage: str, cdk_json: Path = CDK_JSON) -> EnvironmentConfig:
    """The :class:`EnvironmentConfig` of ``stage`` as written in ``cdk.json`` (local stack, tests)."""
    document = json.loads(cdk_json.read_text(encoding="utf-8"))
    environments = document.get("context", {}).get("environments", {})
    return environment_from_context(stage, environments)


def environment_from_context(stage: str | None, environments: Any) -> EnvironmentConfig:
    """Pick and parse ``environments[stage]``; the error lists the stages that exist."""
    if not isinstance(environments, Mapping) or not environments:
        raise TopologyError("cdk.json context 'environments' must map stage names to settings")
    if stage is None or stage not in environments:
        known = "|".join(sorted(environments))
        raise TopologyError(f"unknown environment {stage!r}: pass -c env=<{known}>")
    values = environments[stage]
    if not isinstance(values, Mapping):
        raise TopologyError(f"environments.{stage} must be an object")
    return EnvironmentConfig.from_context(stage, values)


class _ContextReader:
    """Reads one cdk.json object, naming ``<where>.<key>`` in every error."""

    def __init__(self, where: str, values: Any) -> None:
        if not isinstance(values, Mapping):
            raise TopologyError(f"{where} must be an object")
        self._where = where
        self._values = values

    def _required(self, key: str) -> Any:
        if key not in self._values or self._values[key] is None:
            raise TopologyError(f"{self._where}.{key} is required")
        return self._values[key]

    def _fail(self, key: str, expected: str, value: Any) -> TopologyError:
        return TopologyError(f"{self._where}.{key} must be {expected}, got {value!r}")

    def mapping(self, key: str) -> Mapping[str, Any]:
        value = self._required(key)
        if not isinstance(value, Mapping):
            raise self._fail(key, "an object", value)
        return value

    def url(self, key: str) -> str:
        value = self._required(key)
        if not isinstance(value, str) or not re.match(r"^https://[^\s/]+(/\S*)?$", value):
            raise self._fail(key, "an https:// URL", value)
        return value.rstrip("/")

    def positive_integer(self, key: str) -> int:
        value = self._required(key)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise self._fail(key, "a positive integer", value)
        return value

    def positive_number(self, key: str) -> float:
        value = self._required(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self._fail(key, "a positive number", value)
        return float(value)

    def log_retention(self, key: str) -> int:
        value = self.positive_integer(key)
        if value not in LOG_RETENTION_DAYS_ALLOWED:
            allowed = ", ".join(str(days) for days in sorted(LOG_RETENTION_DAYS_ALLOWED))
            raise self._fail(key, f"one of the CloudWatch Logs retention values ({allowed})", value)
        return value

    def choice(self, key: str, options: type[RemovalPolicy]) -> RemovalPolicy:
        value = self._required(key)
        try:
            return options(value)
        except ValueError:
            allowed = " or ".join(repr(option.value) for option in options)
            raise self._fail(key, allowed, value) from None

    def optional_text(self, key: str, *, pattern: str) -> str | None:
        value = self._values.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not re.match(pattern, value):
            raise self._fail(key, f"a string matching {pattern}", value)
        return value

    def optional_schedule(self, key: str, default: str) -> str:
        value = self._values.get(key)
        if value is None or value == "":
            return default
        if not isinstance(value, str) or not is_schedule_expression(value):
            raise self._fail(
                key, "an EventBridge schedule expression (rate(1 day), cron(0 12 * * ? *))", value
            )
        return value

    def optional_integer_in(self, key: str, default: int, low: int, high: int) -> int:
        value = self._values.get(key)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._fail(key, f"an integer from {low} to {high}", value)
        return value

    def optional_email(self, key: str) -> str | None:
        value = self._values.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not _EMAIL_PATTERN.match(value):
            raise self._fail(key, "an e-mail address or null", value)
        return value


def is_schedule_expression(expression: str) -> bool:
    """Whether EventBridge accepts ``expression`` as a rule's schedule: ``rate(1 minute)``,
    ``rate(<n> minutes|hours|days)`` for n > 1, or a ``cron(...)`` of six fields."""
    rate = _RATE_EXPRESSION.match(expression)
    if rate:
        return (rate.group("value") == "1") == (not rate.group("unit").endswith("s"))
    return bool(_CRON_EXPRESSION.match(expression))


# --------------------------------------------------------------------------------------------------
# The resources of one stage
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TableSpec:
    """A DynamoDB table: on-demand, point-in-time recovery, TTL on ``keys.ttl_attribute`` when set, and
    its global secondary indexes (string keys, every attribute projected)."""

    key: str
    name: str
    keys: tables.TableKeys
    env_var: EnvVar
    purpose: str
    indexes: tuple[tables.IndexKeys, ...] = ()


@dataclass(frozen=True)
class BucketSpec:
    """The raw-deliveries bucket (every webhook body as received, for replay and debugging)."""

    key: str
    name: str
    access_log_bucket_name: str
    env_var: EnvVar
    expire_after_days: int
    noncurrent_versions_expire_after_days: int
    access_logs_expire_after_days: int


@dataclass(frozen=True)
class SecretSpec:
    """A Secrets Manager secret created with a generated placeholder; operators put the real value."""

    key: str
    name: str
    description: str
    env_var: EnvVar | None = None
    """The variable naming it, for a deployment-wide secret; a connection's secret is found by its
    name (``ledgerlink.configfile.Connection.secret_name``) instead."""
    connection: str | None = None


@dataclass(frozen=True)
class EventBusSpec:
    key: str
    name: str
    archive_name: str
    archive_retention_days: int
    env_var: EnvVar


@dataclass(frozen=True)
class QueueSpec:
    """A standard SQS queue with its dead-letter queue (both SSE-SQS encrypted, TLS enforced)."""

    key: str
    name: str
    dlq_name: str
    visibility_timeout_seconds: int
    retention_seconds: int
    dlq_retention_seconds: int
    max_receive_count: int
    redelivery: RedeliveryPolicy = field(default_factory=lambda: RedeliveryPolicy())
    """How the consumer delays the records it gives back; ``max_receive_count`` spans its outage."""


@dataclass(frozen=True)
class RedeliveryPolicy:
    """A consumer's retry delays (ledgerlink.consumer.redelivery) and the vendor outage they must outlast.

    ``maxReceiveCount`` is derived from the two (:meth:`max_receive_count`), so a record is never
    dead-lettered as exhausted before ``outage_span_seconds`` of failures, whatever the jitter draws.
    """

    schedule: RedeliverySchedule = field(default_factory=RedeliverySchedule)
    outage_span_seconds: float = OUTAGE_SPAN_SECONDS

    def max_receive_count(self) -> int:
        return self.schedule.receives_to_span(self.outage_span_seconds)

    def environment(self) -> dict[EnvVar, str]:
        """The consumer function's variables for the same delays."""
        return {
            EnvVar.RETRY_BASE_SECONDS: f"{self.schedule.base_seconds:g}",
            EnvVar.RETRY_MAX_DELAY_SECONDS: f"{self.schedule.cap_seconds:g}",
        }


@dataclass(frozen=True)
class RuleSpec:
    """An EventBridge rule sending events to a queue: either the LedgerLink bus's events that match
    ``event_pattern``, or, with a ``schedule_expression`` (and an empty pattern), EventBridge's own
    "Scheduled Event" (source ``aws.events``) at the scheduled times. Schedules run on the account's
    default bus only, so a scheduled rule is created there.

    Events EventBridge cannot deliver (after ``retry_attempts`` or ``max_event_age_seconds``) go to the
    target queue's dead-letter queue, so the one replay command covers them too.
    """

    key: str
    name: str
    description: str
    event_pattern: Mapping[str, Any]
    target_queue: str
    max_event_age_seconds: int
    retry_attempts: int
    schedule_expression: str | None = None


@dataclass(frozen=True)
class Grant:
    """One least-privilege permission of a function on a resource of the topology."""

    kind: ResourceKind
    key: str
    access: Access


@dataclass(frozen=True)
class FunctionSpec:
    """A Lambda function; ``environment`` is the complete set of variables it gets."""

    key: str
    name: str
    service: str
    handler: str
    description: str
    memory_mb: int
    timeout_seconds: int
    reserved_concurrency: int | None
    environment: Mapping[str, str]
    grants: tuple[Grant, ...]

    @property
    def source_folder(self) -> str:
        """The folder under functions/ that holds the handler module."""
        return self.handler.split(".", 1)[0]

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.name}"


@dataclass(frozen=True)
class ApiRouteSpec:
    method: str
    path: str
    function: str

    @property
    def route_key(self) -> str:
        return f"{self.method} {self.path}"


@dataclass(frozen=True)
class ApiSpec:
    """An HTTP API (payload format 2.0), one auto-deployed ``$default`` stage; routes carry the version."""

    name: str
    stage_name: str
    throttle: ApiThrottle
    routes: tuple[ApiRouteSpec, ...]
    access_log_group_name: str
    payload_format_version: str = "2.0"


@dataclass(frozen=True)
class QueueSourceSpec:
    """An SQS event source mapping: ``queue`` feeds ``function`` with partial batch responses."""

    queue: str
    function: str
    batch_size: int
    max_batching_window_seconds: int
    report_batch_item_failures: bool
    max_concurrency: int | None


@dataclass(frozen=True)
class MetricAlarmSpec:
    """An alarm on a metric a function emits (Powertools EMF: :data:`METRICS_NAMESPACE`, dimension
    ``service``): any datapoint at or above ``threshold`` in a period means a human must act."""

    key: str
    metric_name: str
    function: str
    description: str
    threshold: int = 1


@dataclass(frozen=True)
class MetricRef:
    """A count a function emits (namespace :data:`METRICS_NAMESPACE`, dimension ``service`` = its service)."""

    function: str
    metric_name: str


@dataclass(frozen=True)
class RejectedDeliveriesAlarmSpec:
    """An alarm on the share of a webhook ingest's deliveries it refused (``DeliveriesRejected`` /
    ``DeliveriesReceived`` over ``period_seconds``): at least ``min_rejected`` refusals that are at least
    ``rate_percent`` % of the deliveries. A wrong verifier token or signing secret turns every genuine
    delivery into a 401, which a rate tells apart from a scanner's stray request to the public URL."""

    key: str
    function: str
    description: str
    rate_percent: int = 50
    min_rejected: int = 3
    period_seconds: int = 900


@dataclass(frozen=True)
class StalledFlowSpec:
    """An alarm when ``processed`` counted nothing over ``period_seconds`` while the ``upstream`` counts
    (what feeds the flow) summed to more than zero: the flow's rule, queue or function is broken or
    disabled, and the vendor's changes are piling up or being lost."""

    key: str
    processed: MetricRef
    upstream: tuple[MetricRef, ...]
    period_seconds: int
    description: str


@dataclass(frozen=True)
class MonitoringSpec:
    """Where alarms go and what they watch for; every alarm notifies ``topic_name``."""

    topic_name: str
    dashboard_name: str
    alarm_email: str | None
    metric_alarms: tuple[MetricAlarmSpec, ...] = ()
    rejected_deliveries_alarms: tuple[RejectedDeliveriesAlarmSpec, ...] = ()
    stalled_flows: tuple[StalledFlowSpec, ...] = ()
    dlq_depth_threshold: int = 1
    function_errors_threshold: int = 1
    api_5xx_threshold: int = 1
    queue_oldest_message_age_threshold_seconds: int = 15 * 60
    period_seconds: int = 300


@dataclass(frozen=True)
class Topology:
    """Every resource of one stage, with lookups by key that fail loudly on a typo."""

    environment: EnvironmentConfig
    event_bus: EventBusSpec
    bucket: BucketSpec
    tables: tuple[TableSpec, ...]
    secrets: tuple[SecretSpec, ...]
    queues: tuple[QueueSpec, ...]
    rules: tuple[RuleSpec, ...]
    functions: tuple[FunctionSpec, ...]
    api: ApiSpec
    queue_sources: tuple[QueueSourceSpec, ...]
    monitoring: MonitoringSpec
    python_version: str = LAMBDA_PYTHON_VERSION
    architecture: str = LAMBDA_ARCHITECTURE
    tags: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def stage(self) -> str:
        return self.environment.stage

    @property
    def stack_name(self) -> str:
        return f"LedgerLink-{self.stage}"

    def table(self, key: str) -> TableSpec:
        return _find("table", key, self.tables)

    def secret(self, key: str) -> SecretSpec:
        return _find("secret", key, self.secrets)

    def queue(self, key: str) -> QueueSpec:
        return _find("queue", key, self.queues)

    def rule(self, key: str) -> RuleSpec:
        return _find("rule", key, self.rules)

    def function(self, key: str) -> FunctionSpec:
        return _find("function", key, self.functions)


def _find(kind: str, key: str, items: tuple[Any, ...]) -> Any:
    for item in items:
        if item.key == key:
            return item
    known = ", ".join(item.key for item in items)
    raise KeyError(f"no {kind} {key!r} in the topology (known: {known})")


def resource_name(stage: str, suffix: str) -> str:
    """``ledgerlink-<stage>-<suffix>``: the physical name of every named resource."""
    return f"{PREFIX}-{stage}-{suffix}"


def stage_config(stage: str) -> DeploymentConfig:
    """The stage's configuration file, ``infra/config/<stage>.toml``; an invalid one names the file,
    the field's path and why (so ``make synth`` fails with that message)."""
    try:
        return load_config(CONFIG_DIR / f"{stage}.toml")
    except ConfigFileError as error:
        raise TopologyError(str(error)) from None


def connection_secrets(config: DeploymentConfig, stage: str) -> tuple[SecretSpec, ...]:
    """Each connection's secrets: its QBO OAuth client and rotating refresh token, its HubSpot private
    app, and its Microsoft Graph app when it has a Microsoft tenant."""
    specs: list[SecretSpec] = []
    for connection in config.connections:
        kinds = [
            (
                "qbo-oauth",
                f"Intuit OAuth client id/secret and the newest refresh token of realm {connection.realm_id}",
            ),
            ("hubspot", f"HubSpot private-app token and client secret of portal {connection.portal_id}"),
        ]
        if connection.tenant_id:
            kinds.append(("graph", f"Microsoft Graph app of tenant {connection.tenant_id}"))
        specs.extend(
            SecretSpec(
                key=f"{connection.name}:{kind}",
                name=connection.secret_name(stage, kind),
                description=f"connection {connection.name}: {description}",
                connection=connection.name,
            )
            for kind, description in kinds
        )
    return tuple(specs)


def secret_name(stage: str, suffix: str) -> str:
    """``ledgerlink/<stage>/<suffix>``: Secrets Manager names use slashes, so IAM can scope by path."""
    return f"{PREFIX}/{stage}/{suffix}"


def build_topology(
    environment: EnvironmentConfig,
    *,
    account: str,
    region: str,
    redelivery: RedeliveryPolicy | None = None,
    config: DeploymentConfig | None = None,
) -> Topology:
    """The deployment of ``environment.stage`` in ``account``/``region``.

    ``account`` and ``region`` only go into globally unique names (S3 buckets). The CDK app passes the
    stack's account and region (CloudFormation tokens when the stack is environment-agnostic); the
    local stack passes its emulator's values. ``redelivery`` replaces the queues' retry delays and the
    outage span their ``maxReceiveCount`` is sized for (the end-to-end tests use seconds, not an hour).
    """
    redelivery = redelivery or RedeliveryPolicy()
    config = config if config is not None else stage_config(environment.stage)
    stage = environment.stage
    event_bus = EventBusSpec(
        key="events",
        name=resource_name(stage, "events"),
        archive_name=resource_name(stage, "events-archive"),
        archive_retention_days=environment.event_archive_retention_days,
        env_var=EnvVar.EVENT_BUS_NAME,
    )
    bucket = BucketSpec(
        key="raw",
        name=resource_name(stage, f"raw-{account}-{region}"),
        access_log_bucket_name=resource_name(stage, f"access-logs-{account}-{region}"),
        env_var=EnvVar.RAW_BUCKET_NAME,
        expire_after_days=environment.raw_delivery_retention_days,
        noncurrent_versions_expire_after_days=30,
        access_logs_expire_after_days=90,
    )
    table_specs = (
        TableSpec(
            key="idempotency",
            name=resource_name(stage, "idempotency"),
            keys=tables.IDEMPOTENCY,
            env_var=EnvVar.IDEMPOTENCY_TABLE_NAME,
            purpose="Powertools idempotency records, one per processed event",
        ),
        TableSpec(
            key="links",
            name=resource_name(stage, "links"),
            keys=tables.LINKS,
            env_var=EnvVar.LINKS_TABLE_NAME,
            purpose="the crosswalk: QBO realm + entity + id <-> HubSpot object id; Outlook items",
            # The follow-up sweep reads the owed invoices by due date, per connection, from this index.
            indexes=(tables.LINKS_OWED_BY_DUE_DATE,),
        ),
        TableSpec(
            key="vendor-state",
            name=resource_name(stage, "vendor-state"),
            keys=tables.VENDOR_STATE,
            env_var=EnvVar.VENDOR_STATE_TABLE_NAME,
            purpose="rate-limit windows, circuit breakers, OAuth token and refresh lease",
        ),
    )
    # One Intuit app (its webhook verifier token) for the deployment; each connection its own secrets.
    secret_specs = (
        SecretSpec(
            key="qbo-webhook",
            name=secret_name(stage, "qbo/webhook-verifier"),
            description="Intuit webhook Verifier Token (signs intuit-signature)",
            env_var=EnvVar.QBO_WEBHOOK_SECRET_NAME,
        ),
        *connection_secrets(config, stage),
    )

    deal_sync_timeout_seconds = 120
    # The shortest window AWS allows with a batch size above 10 (it requires at least 1 s): a lone change
    # waits at most a second for company, and a burst still fills batches of 100 (the window closes as
    # soon as a batch is full), so HubSpot's batch endpoints stay full under load (tests/bench/
    # bench_latency.py measures both: single invoices and a burst of 1,000). It was 5 s, which was
    # most of the webhook-to-deal latency and bought no bigger batches under load.
    deal_sync_batching_window_seconds = 1
    deal_sync_queue = QueueSpec(
        key="deal-sync",
        name=resource_name(stage, "deal-sync"),
        dlq_name=resource_name(stage, "deal-sync-dlq"),
        visibility_timeout_seconds=(
            VISIBILITY_TIMEOUT_FACTOR * deal_sync_timeout_seconds + deal_sync_batching_window_seconds
        ),
        retention_seconds=4 * 24 * 3600,
        dlq_retention_seconds=SQS_MAX_RETENTION_SECONDS,
        # Retries come back after their own delay (seconds, growing by a quarter, up to two minutes), so a
        # record needs 76 receives to outlast an hour-long vendor outage (ledgerlink.consumer.redelivery).
        max_receive_count=redelivery.max_receive_count(),
        redelivery=redelivery,
    )
    deal_sync_rule = RuleSpec(
        key="qbo-entity-to-deal-sync",
        name=resource_name(stage, "qbo-entity-to-deal-sync"),
        description="QBO invoices, estimates, payments and customers that changed -> HubSpot deal sync queue",
        event_pattern=MappingProxyType(
            {
                "source": [EventSource.QBO_INGEST],
                "detail-type": [DetailType.QBO_ENTITY_CHANGED],
                "detail": {"payload": {"entity": list(DEAL_SYNC_ENTITIES)}},
            }
        ),
        target_queue=deal_sync_queue.key,
        max_event_age_seconds=24 * 3600,
        retry_attempts=185,
    )

    calendar_sync_timeout_seconds = 60
    # Graph has no batch write worth using here: $batch runs at most 4 of its requests against Outlook at
    # once and each still counts against the mailbox's limits, so a large batch saves nothing. No window:
    # with a batch size of 10 Lambda invokes with whatever one long poll returns (up to 10 while the queue
    # is backed up, so a burst is still handled 10 at a time), and a lone due date waits for nothing.
    calendar_sync_batching_window_seconds = 0
    calendar_sync_queue = QueueSpec(
        key="calendar-sync",
        name=resource_name(stage, "calendar-sync"),
        dlq_name=resource_name(stage, "calendar-sync-dlq"),
        visibility_timeout_seconds=(
            VISIBILITY_TIMEOUT_FACTOR * calendar_sync_timeout_seconds + calendar_sync_batching_window_seconds
        ),
        retention_seconds=4 * 24 * 3600,
        dlq_retention_seconds=SQS_MAX_RETENTION_SECONDS,
        # The same retry delays and outage span as the deal sync: a Graph outage is waited out as long.
        max_receive_count=redelivery.max_receive_count(),
        redelivery=redelivery,
    )
    calendar_sync_rule = RuleSpec(
        key="deal-synced-to-calendar-sync",
        name=resource_name(stage, "deal-synced-to-calendar-sync"),
        description="HubSpot deals the deal sync wrote -> Outlook calendar sync queue",
        # Only what the deal sync published: the calendar follows the deal, never the QBO event itself.
        event_pattern=MappingProxyType(
            {"source": [EventSource.HUBSPOT_DEAL_SYNC], "detail-type": [DetailType.DEAL_SYNCED]}
        ),
        target_queue=calendar_sync_queue.key,
        max_event_age_seconds=24 * 3600,
        retry_attempts=185,
    )

    document_sync_timeout_seconds = 120
    # No batching window: each deal is a handful of HubSpot reads and one or two QBO writes (no batch write
    # to fill), and a salesperson who drags a deal to "Contract sent" should see the estimate in seconds.
    document_sync_batching_window_seconds = 0
    document_sync_queue = QueueSpec(
        key="document-sync",
        name=resource_name(stage, "document-sync"),
        dlq_name=resource_name(stage, "document-sync-dlq"),
        visibility_timeout_seconds=(
            VISIBILITY_TIMEOUT_FACTOR * document_sync_timeout_seconds + document_sync_batching_window_seconds
        ),
        retention_seconds=4 * 24 * 3600,
        dlq_retention_seconds=SQS_MAX_RETENTION_SECONDS,
        # The deal sync's retry delays and outage span: a QBO outage is waited out as long in both directions.
        max_receive_count=redelivery.max_receive_count(),
        redelivery=redelivery,
    )
    document_sync_rule = RuleSpec(
        key="hubspot-deal-to-document-sync",
        name=resource_name(stage, "hubspot-deal-to-document-sync"),
        description="HubSpot deal and line-item changes (verified webhooks) -> QBO document sync queue",
        event_pattern=MappingProxyType(
            {"source": [EventSource.HUBSPOT_INGEST], "detail-type": [DetailType.HUBSPOT_DEAL_CHANGED]}
        ),
        target_queue=document_sync_queue.key,
        max_event_age_seconds=24 * 3600,
        retry_attempts=185,
    )

    teams_invite_timeout_seconds = 60
    # No batching window. The Teams invite is the chain's last hop and each meeting is its own Graph
    # writes (no batch endpoint to fill), so a window would only add its length to every invoice's
    # webhook-to-meeting latency. Batching under a burst does not need one: with a batch size of at most
    # 10 (SQS_BATCH_WITHOUT_WINDOW_MAX) Lambda invokes with what one long poll returns, and while a burst
    # backs the queue up (its 4 concurrent invocations busy) each poll returns up to 10 messages. AWS
    # requires a window of at least 1 s only for batches above 10.
    teams_invite_batching_window_seconds = 0
    teams_invite_queue = QueueSpec(
        key="teams-invite",
        name=resource_name(stage, "teams-invite"),
        dlq_name=resource_name(stage, "teams-invite-dlq"),
        visibility_timeout_seconds=(
            VISIBILITY_TIMEOUT_FACTOR * teams_invite_timeout_seconds + teams_invite_batching_window_seconds
        ),
        retention_seconds=4 * 24 * 3600,
        dlq_retention_seconds=SQS_MAX_RETENTION_SECONDS,
        # The calendar sync's retry delays and outage span: a Graph outage is waited out as long.
        max_receive_count=redelivery.max_receive_count(),
        redelivery=redelivery,
    )
    teams_invite_rules = (
        RuleSpec(
            key="calendar-synced-to-teams-invite",
            name=resource_name(stage, "calendar-synced-to-teams-invite"),
            description="Invoice due dates the calendar sync wrote -> Teams invite queue (follow-up meetings)",
            # The last hop of the chain: what the calendar sync published, nothing that bypasses it.
            event_pattern=MappingProxyType(
                {"source": [EventSource.OUTLOOK_CALENDAR_SYNC], "detail-type": [DetailType.CALENDAR_SYNCED]}
            ),
            target_queue=teams_invite_queue.key,
            max_event_age_seconds=24 * 3600,
            retry_attempts=185,
        ),
        RuleSpec(
            key="followup-due-to-teams-invite",
            name=resource_name(stage, "followup-due-to-teams-invite"),
            description="Follow-ups the sweep found due (time passed, nothing changed) -> Teams invite queue",
            event_pattern=MappingProxyType(
                {"source": [EventSource.TEAMS_INVITE], "detail-type": [DetailType.FOLLOWUP_DUE]}
            ),
            target_queue=teams_invite_queue.key,
            max_event_age_seconds=24 * 3600,
            retry_attempts=185,
        ),
        RuleSpec(
            key=FOLLOWUP_SWEEP_RULE,
            name=resource_name(stage, FOLLOWUP_SWEEP_RULE),
            description="Scheduled: the Teams invite Lambda sweeps owed invoices for follow-ups that came due",
            # A schedule, no pattern: EventBridge sends its "Scheduled Event" (source aws.events).
            event_pattern=MappingProxyType({}),
            target_queue=teams_invite_queue.key,
            max_event_age_seconds=24 * 3600,
            retry_attempts=185,
            schedule_expression=environment.followup_sweep_schedule,
        ),
    )

    catchup_timeout_seconds = 300
    # A failed tick is worth retrying only until the next one (15 minutes): that one reads from the same
    # cursor, so nothing is lost when a tick is dropped.
    catchup_redelivery = RedeliveryPolicy(outage_span_seconds=15 * 60)
    catchup_queue = QueueSpec(
        key="qbo-catchup",
        name=resource_name(stage, "qbo-catchup"),
        dlq_name=resource_name(stage, "qbo-catchup-dlq"),
        visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * catchup_timeout_seconds,
        # A tick older than the next one is worth nothing: the next run reads from the same cursor.
        retention_seconds=3600,
        dlq_retention_seconds=SQS_MAX_RETENTION_SECONDS,
        max_receive_count=catchup_redelivery.max_receive_count(),
        redelivery=catchup_redelivery,
    )
    catchup_rule = RuleSpec(
        key=CATCHUP_RULE,
        name=resource_name(stage, CATCHUP_RULE),
        description="Scheduled: the QBO catch-up Lambda reads CDC for changes no webhook brought",
        # A schedule, no pattern: EventBridge sends its "Scheduled Event" (source aws.events).
        event_pattern=MappingProxyType({}),
        target_queue=catchup_queue.key,
        max_event_age_seconds=3600,
        retry_attempts=10,
        schedule_expression=environment.catchup_schedule,
    )

    # The backfill job (ledgerlink.deal_sync.backfill_job): one message at a time runs pages until little
    # time is left, then sends its continuation to this same queue.
    backfill_timeout_seconds = 900
    backfill_redelivery = RedeliveryPolicy(outage_span_seconds=60 * 60)
    backfill_queue = QueueSpec(
        key="backfill-jobs",
        name=resource_name(stage, "backfill-jobs"),
        dlq_name=resource_name(stage, "backfill-jobs-dlq"),
        visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * backfill_timeout_seconds,
        retention_seconds=SQS_MAX_RETENTION_SECONDS,
        dlq_retention_seconds=SQS_MAX_RETENTION_SECONDS,
        # A failed run is retried (its message reappears after the visibility timeout) through a vendor
        # outage; then the message is in the DLQ. The checkpoint is unharmed either way:
        # `ledgerlink backfill --in-aws` (or a replay) continues the job.
        max_receive_count=backfill_redelivery.max_receive_count(),
        redelivery=backfill_redelivery,
    )

    # The scheduled reconciliation (ledgerlink.deal_sync.reconcile_schedule): one run reads every
    # connection, reports and stops before Lambda's 15 minutes run out.
    reconcile_timeout_seconds = 900
    # A run that crashed is worth retrying for a while; the next day's tick reads everything again anyway.
    reconcile_redelivery = RedeliveryPolicy(outage_span_seconds=15 * 60)
    reconcile_queue = QueueSpec(
        key="qbo-reconcile",
        name=resource_name(stage, "qbo-reconcile"),
        dlq_name=resource_name(stage, "qbo-reconcile-dlq"),
        visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * reconcile_timeout_seconds,
        # A tick older than a day is superseded by the next one.
        retention_seconds=24 * 3600,
        dlq_retention_seconds=SQS_MAX_RETENTION_SECONDS,
        max_receive_count=reconcile_redelivery.max_receive_count(),
        redelivery=reconcile_redelivery,
    )
    reconcile_rule = RuleSpec(
        key=RECONCILE_RULE,
        name=resource_name(stage, RECONCILE_RULE),
        description="Scheduled: the QBO reconcile Lambda reports drift between the books and the CRM",
        # A schedule, no pattern: EventBridge sends its "Scheduled Event" (source aws.events).
        event_pattern=MappingProxyType({}),
        target_queue=reconcile_queue.key,
        max_event_age_seconds=3600,
        retry_attempts=10,
        schedule_expression=environment.reconcile_schedule,
    )

    common_environment = _common_environment(
        environment,
        event_bus=event_bus,
        bucket=bucket,
        table_specs=table_specs,
        secret_specs=secret_specs,
    )
    functions: tuple[FunctionSpec, ...] = (
        FunctionSpec(
            key="qbo_ingest",
            name=resource_name(stage, "qbo-ingest"),
            service="qbo-ingest",
            handler="qbo_ingest.handler.lambda_handler",
            description="Verifies QBO webhooks, archives the raw delivery, publishes one event per change",
            # Intuit wants a 200 within 3 s; more memory buys CPU for a fast cold start.
            memory_mb=512,
            timeout_seconds=10,
            reserved_concurrency=None,
            environment=_function_environment(common_environment, "qbo-ingest"),
            grants=(
                Grant(ResourceKind.SECRET, "qbo-webhook", Access.READ),
                Grant(ResourceKind.BUCKET, "raw", Access.WRITE),
                Grant(ResourceKind.EVENT_BUS, "events", Access.WRITE),
                Grant(ResourceKind.TABLE, "idempotency", Access.READ_WRITE),
            ),
        ),
        FunctionSpec(
            key="hubspot_ingest",
            name=resource_name(stage, "hubspot-ingest"),
            service="hubspot-ingest",
            handler="hubspot_ingest.handler.lambda_handler",
            description="Verifies HubSpot webhooks (v3), archives the raw delivery, publishes one event per deal change",
            # HubSpot counts more than 5 s as a timeout and retries; the QBO ingest's size answers in far less.
            memory_mb=512,
            timeout_seconds=10,
            reserved_concurrency=None,
            environment=_function_environment(
                common_environment,
                "hubspot-ingest",
                (
                    {EnvVar.HUBSPOT_WEBHOOK_URL: environment.hubspot_webhook_url}
                    if environment.hubspot_webhook_url
                    else None
                ),
            ),
            grants=(
                # Each connection's HubSpot app secret: its client_secret signs that portal's webhooks.
                *(
                    Grant(ResourceKind.SECRET, secret.key, Access.READ)
                    for secret in secret_specs
                    if secret.connection is not None and secret.key.endswith(":hubspot")
                ),
                Grant(ResourceKind.BUCKET, "raw", Access.WRITE),
                Grant(ResourceKind.EVENT_BUS, "events", Access.WRITE),
            ),
        ),
        FunctionSpec(
            key="hubspot_deal_sync",
            name=resource_name(stage, "hubspot-deal-sync"),
            service="hubspot-deal-sync",
            handler="hubspot_deal_sync.handler.lambda_handler",
            description="Re-reads changed QBO entities and upserts HubSpot deals, line items and companies",
            memory_mb=1024,
            timeout_seconds=deal_sync_timeout_seconds,
            # Concurrency is capped on the event source (max_concurrency) instead: a reservation would
            # take capacity from the account's unreserved pool and fails on small default quotas.
            reserved_concurrency=None,
            environment=_function_environment(
                common_environment,
                "hubspot-deal-sync",
                # The function dead-letters what cannot succeed itself, with the reason (docs/deal-sync.md).
                {
                    EnvVar.DEAD_LETTER_QUEUE_NAME: deal_sync_queue.dlq_name,
                    EnvVar.MAX_RECEIVE_COUNT: str(deal_sync_queue.max_receive_count),
                    **deal_sync_queue.redelivery.environment(),
                },
            ),
            grants=(
                # Each connection's secrets; QBO refresh tokens rotate: the newest one is written back.
                *(
                    Grant(
                        ResourceKind.SECRET,
                        secret.key,
                        Access.READ_WRITE if secret.key.endswith(":qbo-oauth") else Access.READ,
                    )
                    for secret in secret_specs
                    if secret.connection is not None and not secret.key.endswith(":graph")
                ),
                Grant(ResourceKind.TABLE, "idempotency", Access.READ_WRITE),
                Grant(ResourceKind.TABLE, "links", Access.READ_WRITE),
                Grant(ResourceKind.TABLE, "vendor-state", Access.READ_WRITE),
                Grant(ResourceKind.EVENT_BUS, "events", Access.WRITE),
                Grant(ResourceKind.DEAD_LETTER_QUEUE, deal_sync_queue.key, Access.WRITE),
            ),
        ),
        FunctionSpec(
            key="outlook_calendar_sync",
            name=resource_name(stage, "outlook-calendar-sync"),
            service="outlook-calendar-sync",
            handler="outlook_calendar_sync.handler.lambda_handler",
            description="Puts open invoices' due dates on Outlook calendars; moves and removes them with the deal",
            memory_mb=512,
            timeout_seconds=calendar_sync_timeout_seconds,
            # Capped on the event source instead, as the deal sync (see there).
            reserved_concurrency=None,
            environment=_function_environment(
                common_environment,
                "outlook-calendar-sync",
                # It dead-letters what cannot succeed itself, with the reason, as the deal sync does.
                {
                    EnvVar.DEAD_LETTER_QUEUE_NAME: calendar_sync_queue.dlq_name,
                    EnvVar.MAX_RECEIVE_COUNT: str(calendar_sync_queue.max_receive_count),
                    **calendar_sync_queue.redelivery.environment(),
                },
            ),
            grants=(
                # Each connection's HubSpot app (deal owners' e-mails) and Graph app (its tenant's
                # calendars), read only: neither rotates through LedgerLink.
                *(
                    Grant(ResourceKind.SECRET, secret.key, Access.READ)
                    for secret in secret_specs
                    if secret.connection is not None and secret.key.endswith((":hubspot", ":graph"))
                ),
                Grant(ResourceKind.TABLE, "idempotency", Access.READ_WRITE),
                Grant(ResourceKind.TABLE, "links", Access.READ_WRITE),
                Grant(ResourceKind.TABLE, "vendor-state", Access.READ_WRITE),
                Grant(ResourceKind.EVENT_BUS, "events", Access.WRITE),
                Grant(ResourceKind.DEAD_LETTER_QUEUE, calendar_sync_queue.key, Access.WRITE),
            ),
        ),
        FunctionSpec(
            key="qbo_document_sync",
            name=resource_name(stage, "qbo-document-sync"),
            service="qbo-document-sync",
            handler="qbo_document_sync.handler.lambda_handler",
            description="Makes a deal's QBO Estimate at a quote stage and its Invoice at Closed Won; audits each decision",
            memory_mb=512,
            timeout_seconds=document_sync_timeout_seconds,
            # Capped on the event source instead, as the deal sync (see there).
            reserved_concurrency=None,
            environment=_function_environment(
                common_environment,
                "qbo-document-sync",
                # It dead-letters what cannot succeed itself, with the reason, as the deal sync does.
                {
                    EnvVar.DEAD_LETTER_QUEUE_NAME: document_sync_queue.dlq_name,
                    EnvVar.MAX_RECEIVE_COUNT: str(document_sync_queue.max_receive_count),
                    **document_sync_queue.redelivery.environment(),
                },
            ),
            grants=(
                # Each connection's QBO grant (read and written: Intuit rotates the refresh token) and its
                # HubSpot app (read: deals, line items; written: the deal's qbo_* ids).
                *_qbo_and_hubspot_secret_grants(secret_specs),
                Grant(ResourceKind.TABLE, "idempotency", Access.READ_WRITE),
                Grant(ResourceKind.TABLE, "links", Access.READ_WRITE),
                Grant(ResourceKind.TABLE, "vendor-state", Access.READ_WRITE),
                Grant(ResourceKind.DEAD_LETTER_QUEUE, document_sync_queue.key, Access.WRITE),
            ),
        ),
        FunctionSpec(
            key="teams_invite",
            name=resource_name(stage, "teams-invite"),
            service="teams-invite",
            handler="teams_invite.handler.lambda_handler",
            description="Schedules Teams follow-up meetings for owed invoices; sweeps for follow-ups that came due",
            memory_mb=512,
            timeout_seconds=teams_invite_timeout_seconds,
            # Capped on the event source instead, as the deal sync (see there).
            reserved_concurrency=None,
            environment=_function_environment(
                common_environment,
                "teams-invite",
                # It dead-letters what cannot succeed itself, with the reason, as the calendar sync does.
                {
                    EnvVar.DEAD_LETTER_QUEUE_NAME: teams_invite_queue.dlq_name,
                    EnvVar.MAX_RECEIVE_COUNT: str(teams_invite_queue.max_receive_count),
                    **teams_invite_queue.redelivery.environment(),
                },
            ),
            grants=(
                # The calendar sync's: each connection's HubSpot app (deal owners, contacts) and Graph app
                # (organizers' calendars, free/busy), read only.
                *(
                    Grant(ResourceKind.SECRET, secret.key, Access.READ)
                    for secret in secret_specs
                    if secret.connection is not None and secret.key.endswith((":hubspot", ":graph"))
                ),
                Grant(ResourceKind.TABLE, "idempotency", Access.READ_WRITE),
                Grant(ResourceKind.TABLE, "links", Access.READ_WRITE),
                # The sweep queries the owed invoices by due date; no other function reads the index.
                Grant(ResourceKind.TABLE_INDEX, f"links/{tables.LINKS_OWED_BY_DUE_DATE.name}", Access.READ),
                Grant(ResourceKind.TABLE, "vendor-state", Access.READ_WRITE),
                # The sweep publishes ledgerlink.followup.due.
                Grant(ResourceKind.EVENT_BUS, "events", Access.WRITE),
                Grant(ResourceKind.DEAD_LETTER_QUEUE, teams_invite_queue.key, Access.WRITE),
            ),
        ),
    )
    functions = (
        *functions,
        FunctionSpec(
            key="qbo_catchup",
            name=resource_name(stage, "qbo-catchup"),
            service="qbo-catchup",
            handler="qbo_catchup.handler.lambda_handler",
            description="Reads QBO change data capture on a schedule; publishes the changes not synced yet",
            memory_mb=512,
            timeout_seconds=catchup_timeout_seconds,
            reserved_concurrency=None,
            environment=_function_environment(common_environment, "qbo-catchup"),
            grants=(
                # Each connection's QBO grant; the refresh token rotates, so it writes the secret back.
                *(
                    Grant(ResourceKind.SECRET, secret.key, Access.READ_WRITE)
                    for secret in secret_specs
                    if secret.connection is not None and secret.key.endswith(":qbo-oauth")
                ),
                # The crosswalk says which versions are synced already.
                Grant(ResourceKind.TABLE, "links", Access.READ),
                # Its cursor, QBO's rate limits and breaker, the OAuth refresh lock.
                Grant(ResourceKind.TABLE, "vendor-state", Access.READ_WRITE),
                # It publishes qbo.entity.changed, as the ingest does.
                Grant(ResourceKind.EVENT_BUS, "events", Access.WRITE),
            ),
        ),
        FunctionSpec(
            key="qbo_backfill",
            name=resource_name(stage, "qbo-backfill"),
            service="qbo-backfill",
            handler="qbo_backfill.handler.lambda_handler",
            description="Backfills a connection's QBO history into HubSpot through the deal sync; re-enqueues itself",
            memory_mb=1024,
            timeout_seconds=backfill_timeout_seconds,
            # One job per message; the queue source caps concurrency.
            reserved_concurrency=None,
            environment=_function_environment(
                common_environment,
                "qbo-backfill",
                {EnvVar.BACKFILL_QUEUE_NAME: backfill_queue.name},
            ),
            grants=(
                # The deal sync's: each connection's QBO grant (rotating refresh token) and HubSpot app.
                *_qbo_and_hubspot_secret_grants(secret_specs),
                Grant(ResourceKind.TABLE, "idempotency", Access.READ_WRITE),
                Grant(ResourceKind.TABLE, "links", Access.READ_WRITE),
                # The checkpoint, and the vendors' shared rate limits and breakers.
                Grant(ResourceKind.TABLE, "vendor-state", Access.READ_WRITE),
                # The deal sync publishes ledgerlink.deal.synced.
                Grant(ResourceKind.EVENT_BUS, "events", Access.WRITE),
                # Its own continuation.
                Grant(ResourceKind.QUEUE, backfill_queue.key, Access.WRITE),
            ),
        ),
        FunctionSpec(
            key="qbo_reconcile",
            name=resource_name(stage, "qbo-reconcile"),
            service="qbo-reconcile",
            handler="qbo_reconcile.handler.lambda_handler",
            description="Reports, on a schedule, every record whose QBO document and HubSpot deal disagree",
            memory_mb=1024,
            timeout_seconds=reconcile_timeout_seconds,
            reserved_concurrency=None,
            environment=_function_environment(common_environment, "qbo-reconcile"),
            grants=(
                # It reads both systems through the deal flow: each connection's QBO grant (the refresh
                # token rotates, so it writes the secret back) and HubSpot app (read only).
                *_qbo_and_hubspot_secret_grants(secret_specs),
                # The crosswalk, read only: a report writes nothing (a repair is the operator's command).
                Grant(ResourceKind.TABLE, "links", Access.READ),
                # QBO's and HubSpot's shared rate limits and breakers, the OAuth refresh lock.
                Grant(ResourceKind.TABLE, "vendor-state", Access.READ_WRITE),
            ),
        ),
    )
    queue_sources = (
        QueueSourceSpec(
            queue=deal_sync_queue.key,
            function="hubspot_deal_sync",
            # HubSpot batch endpoints take up to 100 inputs, so one SQS batch is one upsert call.
            batch_size=100,
            max_batching_window_seconds=deal_sync_batching_window_seconds,
            report_batch_item_failures=True,
            # Keeps the vendors' per-app rate limits reachable by few concurrent pollers.
            max_concurrency=5,
        ),
        QueueSourceSpec(
            queue=calendar_sync_queue.key,
            function="outlook_calendar_sync",
            # The most a batch may hold without a batching window (see the window's comment: why small).
            batch_size=10,
            max_batching_window_seconds=calendar_sync_batching_window_seconds,
            report_batch_item_failures=True,
            # Outlook allows 4 concurrent requests per app and mailbox, and most due dates may land on
            # one accounts-receivable mailbox: more invocations than that would only wait on each other
            # in the shared HTTP layer's limiter (or be throttled). AWS allows 2..1000 here.
            max_concurrency=4,
        ),
        QueueSourceSpec(
            queue=document_sync_queue.key,
            function="qbo_document_sync",
            batch_size=10,
            max_batching_window_seconds=document_sync_batching_window_seconds,
            report_batch_item_failures=True,
            # QBO allows 10 requests per second per realm and app: a few invocations keep it busy.
            max_concurrency=3,
        ),
        QueueSourceSpec(
            queue=teams_invite_queue.key,
            function="teams_invite",
            batch_size=10,
            max_batching_window_seconds=teams_invite_batching_window_seconds,
            report_batch_item_failures=True,
            # The calendar sync's cap, for the same reason: its meetings are written to Outlook calendars
            # (4 concurrent requests per app and mailbox), many of them the one accounts-receivable one.
            max_concurrency=4,
        ),
        QueueSourceSpec(
            queue=catchup_queue.key,
            function="qbo_catchup",
            # One run covers every connection: ticks that queued up while it ran are one more run.
            batch_size=10,
            max_batching_window_seconds=0,
            report_batch_item_failures=False,
            # Two runs at once would read the same CDC windows and publish the same events twice.
            max_concurrency=2,
        ),
        QueueSourceSpec(
            queue=backfill_queue.key,
            function="qbo_backfill",
            # One job message per invocation: each runs until its time is nearly up.
            batch_size=1,
            max_batching_window_seconds=0,
            report_batch_item_failures=False,
            # Jobs of different connections run side by side; the shared rate limits keep live traffic's
            # share (a second worker on one job is refused by the checkpoint's conditional save).
            max_concurrency=2,
        ),
        QueueSourceSpec(
            queue=reconcile_queue.key,
            function="qbo_reconcile",
            # One run covers every connection: ticks that queued up meanwhile are the same run.
            batch_size=10,
            max_batching_window_seconds=0,
            report_batch_item_failures=False,
            # The least SQS allows; a second run would only read both systems again.
            max_concurrency=2,
        ),
    )
    api = ApiSpec(
        name=resource_name(stage, "api"),
        stage_name="$default",
        throttle=environment.api_throttle,
        routes=(
            ApiRouteSpec(method="POST", path=QBO_WEBHOOK_PATH, function="qbo_ingest"),
            ApiRouteSpec(method="POST", path=HUBSPOT_WEBHOOK_PATH, function="hubspot_ingest"),
        ),
        access_log_group_name=f"/aws/apigateway/{resource_name(stage, 'api')}/access",
    )
    queues_declared = (
        deal_sync_queue,
        calendar_sync_queue,
        teams_invite_queue,
        document_sync_queue,
        catchup_queue,
        backfill_queue,
        reconcile_queue,
    )
    oauth_secret = secret_name(stage, "connections/<connection>/qbo/oauth")
    graph_secret = secret_name(stage, "connections/<connection>/graph/app")
    flow_alarms = (
        *_deal_sync_alarms(oauth_secret, deal_sync_queue),
        *_calendar_sync_alarms(graph_secret, calendar_sync_queue),
        *_teams_invite_alarms(graph_secret, teams_invite_queue),
        *_document_sync_alarms(oauth_secret, document_sync_queue),
        *_catchup_alarms(catchup_queue),
        *_backfill_alarms(backfill_queue),
        *_reconcile_alarms(reconcile_queue),
    )
    monitoring = MonitoringSpec(
        topic_name=resource_name(stage, "alarms"),
        dashboard_name=resource_name(stage, "dashboard"),
        alarm_email=environment.alarm_email,
        metric_alarms=(
            *flow_alarms,
            # Every function that calls a vendor with a connection's credentials: an alarm per vendor
            # when they are refused (computed from the grants, so a new function gets its own).
            *credential_alarms(functions, api, queue_sources, queues_declared, flow_alarms, stage),
        ),
        rejected_deliveries_alarms=_rejected_deliveries_alarms(api, stage),
        stalled_flows=_stalled_flows(environment.stalled_flow_hours * 3600),
    )
    topology = Topology(
        environment=environment,
        event_bus=event_bus,
        bucket=bucket,
        tables=table_specs,
        secrets=secret_specs,
        queues=queues_declared,
        rules=(
            deal_sync_rule,
            calendar_sync_rule,
            *teams_invite_rules,
            document_sync_rule,
            catchup_rule,
            reconcile_rule,
        ),
        functions=functions,
        api=api,
        queue_sources=queue_sources,
        monitoring=monitoring,
        tags=MappingProxyType({"project": "ledgerlink", "stage": stage}),
    )
    validate(topology)
    return topology


def _common_environment(
    environment: EnvironmentConfig,
    *,
    event_bus: EventBusSpec,
    bucket: BucketSpec,
    table_specs: tuple[TableSpec, ...],
    secret_specs: tuple[SecretSpec, ...],
) -> dict[str, str]:
    """The LedgerLink variables every function gets (``Settings.from_env`` needs all of them).

    Vendor limits, timeouts and breaker settings are left to the defaults in ledgerlink.config.
    """
    values: dict[str, str] = {
        EnvVar.STAGE: environment.stage,
        event_bus.env_var: event_bus.name,
        bucket.env_var: bucket.name,
        # The stage's configuration file, deployed in the code asset (infra/asset.py: config/).
        EnvVar.CONFIG_FILE: f"config/{environment.stage}.toml",
        EnvVar.QBO_BASE_URL: environment.qbo_base_url,
        EnvVar.HUBSPOT_BASE_URL: environment.hubspot_base_url,
        EnvVar.GRAPH_BASE_URL: environment.graph_base_url,
    }
    values.update({table.env_var: table.name for table in table_specs})
    values.update({secret.env_var: secret.name for secret in secret_specs if secret.env_var is not None})
    return {str(name): value for name, value in values.items()}


def _qbo_and_hubspot_secret_grants(secret_specs: Sequence[SecretSpec]) -> tuple[Grant, ...]:
    """Each connection's QBO grant, read and written (Intuit rotates the refresh token, which is stored
    back), and its HubSpot app, read: what every function running the deal flow's clients needs."""
    return tuple(
        Grant(
            ResourceKind.SECRET,
            secret.key,
            Access.READ_WRITE if secret.key.endswith(":qbo-oauth") else Access.READ,
        )
        for secret in secret_specs
        if secret.connection is not None and secret.key.endswith((":hubspot", ":qbo-oauth"))
    )


def _function_environment(
    common: Mapping[str, str], service: str, own: Mapping[EnvVar, str] | None = None
) -> Mapping[str, str]:
    return MappingProxyType(
        {
            **common,
            **{str(name): value for name, value in (own or {}).items()},
            "POWERTOOLS_SERVICE_NAME": service,
            "POWERTOOLS_LOG_LEVEL": "INFO",
        }
    )


# The connection secret kinds (topology secret keys ``<connection>:<kind>``) a function reads to call a
# vendor's API, with the vendor's name and the metric its refused credentials are counted under:
# QboConnectionRevoked by the QBO OAuth layer's alarm hook (invalid_grant), HubSpotTokenRejected and
# GraphCredentialsRejected by the consumers' failure counting (ledgerlink.consumer.outcome).
VENDOR_CREDENTIALS: Final = {
    "qbo-oauth": ("QBO", "QboConnectionRevoked", "qbo-connection-revoked"),
    "hubspot": ("HubSpot", "HubSpotTokenRejected", "hubspot-token-rejected"),
    "graph": ("Microsoft Graph", "GraphCredentialsRejected", "graph-credentials-rejected"),
}


def vendors_called(function: FunctionSpec, api: ApiSpec) -> tuple[str, ...]:
    """The connection secret kinds (:data:`VENDOR_CREDENTIALS`) whose vendor ``function`` calls: those it
    is granted, unless it serves a webhook route (an ingest reads a connection's HubSpot secret only
    for the signing secret that verifies deliveries; it calls no vendor)."""
    if any(route.function == function.key for route in api.routes):
        return ()
    granted = {
        grant.key.rsplit(":", 1)[1]
        for grant in function.grants
        if grant.kind is ResourceKind.SECRET and ":" in grant.key
    }
    return tuple(kind for kind in VENDOR_CREDENTIALS if kind in granted)


def credential_alarms(
    functions: tuple[FunctionSpec, ...],
    api: ApiSpec,
    queue_sources: tuple[QueueSourceSpec, ...],
    queues: tuple[QueueSpec, ...],
    declared: tuple[MetricAlarmSpec, ...],
    stage: str,
) -> tuple[MetricAlarmSpec, ...]:
    """One alarm per function and vendor it calls on the metric of refused credentials, for each pair
    ``declared`` lacks (the flows' own alarm lists name most of them already)."""
    have = {(each.function, each.metric_name) for each in declared}
    created: list[MetricAlarmSpec] = []
    for function in functions:
        fed_by = [source.queue for source in queue_sources if source.function == function.key]
        dead_letters = (
            next((queue.dlq_name for queue in queues if queue.key in fed_by), None)
            if EnvVar.DEAD_LETTER_QUEUE_NAME.value in function.environment
            else None
        )
        then = (
            f"then `ledgerlink dlq replay {dead_letters}` brings back what failed meanwhile"
            if dead_letters
            else "the next run then picks the work up again (its log names what failed)"
        )
        for kind in vendors_called(function, api):
            vendor, metric_name, slug = VENDOR_CREDENTIALS[kind]
            if (function.key, metric_name) in have:
                continue
            secret = secret_name(stage, f"connections/<connection>/{_SECRET_PATHS[kind]}")
            created.append(
                MetricAlarmSpec(
                    f"{function.key.replace('_', '-')}-{slug}",
                    metric_name,
                    function.key,
                    f"{function.name}: {vendor} refused a connection's credentials. "
                    f"{_CREDENTIAL_FIXES[kind].format(secret=secret)} The function's ERROR log line names "
                    f"the connection and the secret; {then} (docs/infra.md#alarms).",
                )
            )
    return tuple(created)


# Where each kind's secret lives under ledgerlink/<stage>/connections/<connection>/ (Connection.secret_name).
_SECRET_PATHS: Final = {"qbo-oauth": "qbo/oauth", "hubspot": "hubspot/app", "graph": "graph/app"}
_CREDENTIAL_FIXES: Final = {
    "qbo-oauth": (
        "Intuit answered invalid_grant to the refresh token (the company disconnected the app, or the "
        "grant expired unused): re-authorise the app for that company and put the new refresh token in "
        "secret {secret}."
    ),
    "hubspot": (
        "HubSpot answered 401 (the private-app token was rotated or the app deleted) or 403 (a scope "
        "LedgerLink needs is missing, docs/connect.md#hubspot-ledgerlink-connect-hubspot): put the app's current "
        "token in secret {secret} (access_token) or add the scope."
    ),
    "graph": (
        "Entra refused the app's client id/secret (expired or revoked client secret, app unknown in the "
        "tenant): put the app registration's current credentials in secret {secret}."
    ),
}


def _rejected_deliveries_alarms(api: ApiSpec, stage: str) -> tuple[RejectedDeliveriesAlarmSpec, ...]:
    """One alarm per webhook ingest on the share of deliveries it refused."""
    fixes = {
        "qbo_ingest": (
            "Intuit's deliveries are being refused (401: the signature does not verify). Most likely the "
            f"Verifier Token in secret {secret_name(stage, 'qbo/webhook-verifier')} is not the one of the "
            "Intuit app that sends the webhooks (developer portal > the app > Webhooks): put the portal's "
            "token there. Intuit retries refused deliveries for a while; `ledgerlink catchup` reads what "
            "was missed from CDC."
        ),
        "hubspot_ingest": (
            "HubSpot's deliveries are being refused (401: the v3 signature does not verify, or the "
            "timestamp is stale). Most likely a connection's HubSpot secret "
            f"{secret_name(stage, 'connections/<connection>/hubspot/app')} holds the wrong client_secret "
            "(the app's Auth tab), or the URL HubSpot calls is not the one it signs (a custom domain: set "
            "hubspot_webhook_url in cdk.json). HubSpot retries a refused delivery a few times only."
        ),
    }
    alarms = []
    for route in api.routes:
        advice = fixes.get(
            route.function, "The webhook sender's deliveries are being refused: check its signing secret."
        )
        alarms.append(
            RejectedDeliveriesAlarmSpec(
                key=f"{route.function.replace('_', '-')}-deliveries-rejected",
                function=route.function,
                description=(
                    f"{route.route_key}: at least half of the webhook deliveries were refused. {advice} "
                    "The metric DeliveriesRejected has the reason and status as dimensions and the ingest's "
                    "WARNING log line the reason (docs/infra.md#alarms)."
                ),
            )
        )
    return tuple(alarms)


def _stalled_flows(period_seconds: int) -> tuple[StalledFlowSpec, ...]:
    """The flows that must process something when their upstream published changes (period from
    cdk.json ``stalled_flow_hours``)."""
    hours = period_seconds // 3600
    check = (
        "Check, in this order: the function is not throttled to 0 (reserved concurrency) and its SQS "
        "event source mapping is enabled; the queue {queue} is receiving (ApproximateNumberOfMessagesVisible) "
        "and its EventBridge rule {rule} is enabled; then the function's log. Nothing is lost while "
        "events wait in the queue (4 days); after the fix they are processed by themselves "
        "(docs/infra.md#alarms)."
    )
    return (
        StalledFlowSpec(
            key="deal-sync-stalled",
            processed=MetricRef("hubspot_deal_sync", "EventsReceived"),
            upstream=(
                MetricRef("qbo_ingest", "EventsPublished"),
                MetricRef("qbo_catchup", "CatchupPublished"),
            ),
            period_seconds=period_seconds,
            description=(
                f"The QBO -> HubSpot deal sync received no event in {hours} h while the QBO ingest and "
                "catch-up published changes. "
                + check.format(queue="deal-sync", rule="qbo-entity-to-deal-sync")
            ),
        ),
        StalledFlowSpec(
            key="document-sync-stalled",
            processed=MetricRef("qbo_document_sync", "EventsReceived"),
            upstream=(MetricRef("hubspot_ingest", "EventsPublished"),),
            period_seconds=period_seconds,
            description=(
                f"The HubSpot -> QBO document sync received no event in {hours} h while the HubSpot ingest "
                "published deal changes. "
                + check.format(queue="document-sync", rule="hubspot-deal-to-document-sync")
            ),
        ),
        StalledFlowSpec(
            key="calendar-sync-stalled",
            processed=MetricRef("outlook_calendar_sync", "EventsReceived"),
            upstream=(MetricRef("hubspot_deal_sync", "DealSyncedPublished"),),
            period_seconds=period_seconds,
            description=(
                f"The Outlook calendar sync received no event in {hours} h while the deal sync published "
                "synced deals. " + check.format(queue="calendar-sync", rule="deal-synced-to-calendar-sync")
            ),
        ),
    )


def _deal_sync_alarms(oauth_secret: str, queue: QueueSpec) -> tuple[MetricAlarmSpec, ...]:
    """The deal sync's metrics that mean a human must act (names as the code emits them)."""

    def alarm(key: str, metric_name: str, description: str) -> MetricAlarmSpec:
        return MetricAlarmSpec(key, metric_name, "hubspot_deal_sync", description)

    return (
        alarm(
            "deal-sync-failed-permanently",
            "EventsFailedPermanently",
            f"A QBO change cannot be synced to HubSpot and will not be retried (mapping error, currency "
            f"the portal lacks, revoked connection, malformed event). It is in {queue.dlq_name} with "
            "its reason: `ledgerlink dlq replay <queue> --dry-run` lists them; fix, then replay.",
        ),
        alarm(
            "deal-sync-unexpected-error",
            "UnexpectedErrors",
            f"An exception nobody classified (a LedgerLink bug) failed a record; it was dead-lettered at "
            f"once to {queue.dlq_name} as 'unexpected' with the error as its reason, and the function's "
            'log has the traceback ("unexpected error syncing an event"). Report it; after the fix, '
            "`ledgerlink dlq replay` brings the record back.",
        ),
        alarm(
            "qbo-connection-revoked",
            "QboConnectionRevoked",
            f"QBO refused the refresh token (invalid_grant): re-authorise the app and put the new "
            f"refresh token in secret {oauth_secret}, then `ledgerlink dlq replay` {queue.dlq_name}.",
        ),
        alarm(
            "qbo-client-rejected",
            "QboClientRejected",
            f"QBO refused the app's client id/secret (invalid_client) in secret {oauth_secret}: "
            "put the app's current credentials there, then replay the dead-letter queue.",
        ),
        alarm(
            "qbo-refresh-token-not-stored",
            "QboRefreshTokenNotStored",
            f"A rotated QBO refresh token could not be written back to secret {oauth_secret} (it is "
            "kept in the vendor-state table meanwhile): check the function's PutSecretValue grant.",
        ),
        alarm(
            "deal-sync-dead-letter-send-failed",
            "DeadLetterSendFailed",
            f"The deal sync could not send a failed record to {queue.dlq_name} itself; SQS retries it "
            "and its redrive dead-letters it without a reason: check sqs:SendMessage on the queue.",
        ),
    )


def _calendar_sync_alarms(graph_secret: str, queue: QueueSpec) -> tuple[MetricAlarmSpec, ...]:
    """The calendar sync's metrics that mean a human must act (names as its code emits them)."""

    def alarm(key: str, metric_name: str, description: str) -> MetricAlarmSpec:
        return MetricAlarmSpec(key, metric_name, "outlook_calendar_sync", description)

    return (
        alarm(
            "calendar-sync-failed-permanently",
            "EventsFailedPermanently",
            f"An invoice's due date cannot be written to Outlook and will not be retried (a mailbox Graph "
            f"does not know, a user without a mailbox, a malformed event). It is in {queue.dlq_name} with "
            "its reason: `ledgerlink dlq replay <queue> --dry-run` lists them; fix the connection's "
            "mailbox in the configuration file or in Microsoft 365, then replay.",
        ),
        alarm(
            "calendar-sync-unexpected-error",
            "UnexpectedErrors",
            f"An exception nobody classified (a LedgerLink bug) failed a record; it was dead-lettered at "
            f"once to {queue.dlq_name} as 'unexpected' with the error as its reason, and the function's "
            "log has the traceback. Report it; after the fix, `ledgerlink dlq replay` brings the record "
            "back.",
        ),
        alarm(
            "graph-credentials-rejected",
            "GraphCredentialsRejected",
            f"Microsoft's token endpoint refused the Graph app's client id/secret in secret {graph_secret} "
            "(expired or revoked secret, wrong tenant): put the app registration's current credentials "
            f"there, then `ledgerlink dlq replay` {queue.dlq_name}.",
        ),
        alarm(
            "calendar-sync-dead-letter-send-failed",
            "DeadLetterSendFailed",
            f"The calendar sync could not send a failed record to {queue.dlq_name} itself; SQS retries it "
            "and its redrive dead-letters it without a reason: check sqs:SendMessage on the queue.",
        ),
    )


def _document_sync_alarms(oauth_secret: str, queue: QueueSpec) -> tuple[MetricAlarmSpec, ...]:
    """The document sync's metrics that mean a human must act (names as its code emits them)."""

    def alarm(key: str, metric_name: str, description: str) -> MetricAlarmSpec:
        return MetricAlarmSpec(key, metric_name, "qbo_document_sync", description)

    return (
        alarm(
            "document-sync-failed-permanently",
            "EventsFailedPermanently",
            f"A deal's QBO estimate or invoice cannot be written and will not be retried (a line without a QBO "
            f"item or tax code, a currency the company lacks, an estimate QBO will not link). It is in "
            f"{queue.dlq_name} with its reason, and `ledgerlink audit deal <id>` shows it: fix the deal, the "
            "books or the configuration file, then `ledgerlink dlq replay`.",
        ),
        alarm(
            "document-sync-unexpected-error",
            "UnexpectedErrors",
            f"An exception nobody classified (a LedgerLink bug) failed a record; it was dead-lettered at once to "
            f"{queue.dlq_name} as 'unexpected' and the function's log has the traceback. Report it; after the "
            "fix, `ledgerlink dlq replay` brings the record back.",
        ),
        alarm(
            "document-sync-qbo-connection-revoked",
            "QboConnectionRevoked",
            f"QBO refused the refresh token (invalid_grant) while writing a deal's document: re-authorise the app "
            f"and put the new refresh token in secret {oauth_secret}, then `ledgerlink dlq replay` {queue.dlq_name}.",
        ),
        alarm(
            "document-sync-qbo-client-rejected",
            "QboClientRejected",
            f"QBO refused the app's client id/secret (invalid_client) in secret {oauth_secret}: put the app's "
            f"current credentials there, then replay {queue.dlq_name}.",
        ),
        alarm(
            "document-sync-dead-letter-send-failed",
            "DeadLetterSendFailed",
            f"The document sync could not send a failed record to {queue.dlq_name} itself; SQS retries it and "
            "its redrive dead-letters it without a reason: check sqs:SendMessage on the queue.",
        ),
    )


def _catchup_alarms(queue: QueueSpec) -> tuple[MetricAlarmSpec, ...]:
    """The catch-up's metrics that mean a human must act (names as its handler emits them)."""
    return (
        MetricAlarmSpec(
            "qbo-catchup-gap-too-long",
            "CatchupGapTooLong",
            "qbo_catchup",
            "A connection's catch-up cursor was older than QBO's CDC reaches (30 days): changes in that gap "
            "cannot be recovered by catch-up, which went on from 30 days back. The log line 'catch-up gap "
            "beyond CDC's reach' names the connection and the gap: run `ledgerlink backfill --connection "
            "NAME --since <the cursor's date>` for it.",
        ),
        MetricAlarmSpec(
            "qbo-catchup-unexpected-error",
            "UnexpectedErrors",
            "qbo_catchup",
            "A catch-up run failed (QBO refused, a connection's grant is revoked, a bug); the function's log "
            "has the error and the connection. Nothing was skipped: the cursor did not move, so the next "
            f"scheduled run reads the same window again. Ticks retried past the next one are in {queue.dlq_name} "
            "(they need no replay). Run `ledgerlink catchup --connection NAME` to see the error directly.",
        ),
    )


def _backfill_alarms(queue: QueueSpec) -> tuple[MetricAlarmSpec, ...]:
    """The backfill job's metrics that mean a human must act (names as its handler and the deal sync emit them)."""
    return (
        MetricAlarmSpec(
            "qbo-backfill-unexpected-error",
            "UnexpectedErrors",
            "qbo_backfill",
            "A backfill job invocation failed (QBO or HubSpot down, a revoked grant, a bug); the function's log "
            "has the error and the connection. The checkpoint is intact: SQS retries the message for about "
            f"an hour, then it is in {queue.dlq_name}. `ledgerlink backfill status --connection NAME` shows where the "
            "job stands; fix the cause, then `ledgerlink backfill --connection NAME --in-aws` continues it.",
        ),
        MetricAlarmSpec(
            "qbo-backfill-failed-permanently",
            "EventsFailedPermanently",
            "qbo_backfill",
            "The backfill could not sync some documents and will not retry them (mapping error, a currency "
            "the portal lacks). `ledgerlink backfill status --connection NAME` lists them with their reasons "
            "(the links table records them too); fix them in QBO or the configuration, then run the "
            "backfill again: what is synced already is skipped.",
        ),
        MetricAlarmSpec(
            "qbo-backfill-refused",
            "BackfillRefused",
            "qbo_backfill",
            "A backfill start message was refused (an unknown connection, or another unfinished job with "
            "other arguments); the log line 'backfill job refused' says why. Continue the existing job with "
            "its arguments, or start over with `ledgerlink backfill --connection NAME --in-aws --restart`.",
        ),
    )


def _reconcile_alarms(queue: QueueSpec) -> tuple[MetricAlarmSpec, ...]:
    """The scheduled reconciliation's metrics that mean a human must act (names as its code emits them)."""
    return (
        MetricAlarmSpec(
            "qbo-reconcile-drift",
            "DriftRecords",
            "qbo_reconcile",
            "The scheduled reconciliation found records whose QBO document and HubSpot deal disagree. The "
            "metric DriftRecords has the connection as a dimension, and each drifted record has a WARNING log "
            "line 'reconcile drift' naming the connection, the QBO document <realm>:<Id>, each field, both "
            "values and the likely cause. Run `ledgerlink reconcile --connection NAME` to see the report, "
            "then `ledgerlink reconcile --connection NAME --repair` to re-sync the drifted records through "
            "the deal flow (docs/reconcile.md; a person's HubSpot change stays when [reconcile] qbo_wins is "
            "false).",
        ),
        MetricAlarmSpec(
            "qbo-reconcile-not-reached",
            "ReconcileNotReached",
            "qbo_reconcile",
            "The scheduled reconciliation stopped before Lambda's 15 minutes ran out and did not check some "
            "connections (the log line 'reconcile stopped before the time ran out' names them): run "
            "`ledgerlink reconcile --connection NAME` for each from a shell, which has no time limit. If it "
            "happens every day, give the connections a schedule of their own or a shorter window.",
        ),
        MetricAlarmSpec(
            "qbo-reconcile-unexpected-error",
            "UnexpectedErrors",
            "qbo_reconcile",
            "A connection's scheduled reconciliation failed (QBO or HubSpot refused or were down, a bug); the "
            "function's log line 'reconcile of a connection failed' has the error and the connection, and the "
            "other connections were still checked. Nothing was written. Run `ledgerlink reconcile "
            f"--connection NAME` to see the error directly; crashed runs are retried, then in {queue.dlq_name} "
            "(they need no replay: the next scheduled run checks everything again).",
        ),
    )


def _teams_invite_alarms(graph_secret: str, queue: QueueSpec) -> tuple[MetricAlarmSpec, ...]:
    """The Teams invite's metrics that mean a human must act (names as its code emits them)."""

    def alarm(key: str, metric_name: str, description: str) -> MetricAlarmSpec:
        return MetricAlarmSpec(key, metric_name, "teams_invite", description)

    return (
        alarm(
            "teams-invite-failed-permanently",
            "EventsFailedPermanently",
            f"A follow-up meeting cannot be scheduled and will not be retried (an organizer mailbox Graph "
            f"does not know, a malformed event). It is in {queue.dlq_name} with its reason: "
            "`ledgerlink dlq replay <queue> --dry-run` lists them; fix the connection's mailboxes or "
            "follow-up rules in the configuration file or in Microsoft 365, then replay.",
        ),
        alarm(
            "teams-invite-unexpected-error",
            "UnexpectedErrors",
            f"An exception nobody classified (a LedgerLink bug) failed a record; it was dead-lettered at "
            f"once to {queue.dlq_name} as 'unexpected' with the error as its reason, and the function's "
            "log has the traceback. Report it; after the fix, `ledgerlink dlq replay` brings the record "
            "back.",
        ),
        alarm(
            "teams-invite-graph-credentials-rejected",
            "GraphCredentialsRejected",
            f"Microsoft's token endpoint refused the Graph app's client id/secret in secret {graph_secret} "
            "(expired or revoked secret, wrong tenant): put the app registration's current credentials "
            f"there, then `ledgerlink dlq replay` {queue.dlq_name}.",
        ),
        alarm(
            "teams-invite-dead-letter-send-failed",
            "DeadLetterSendFailed",
            f"The Teams invite could not send a failed record to {queue.dlq_name} itself; SQS retries it "
            "and its redrive dead-letters it without a reason: check sqs:SendMessage on the queue.",
        ),
        alarm(
            "teams-invite-meetings-not-online",
            "TeamsMeetingsNotOnline",
            "Graph created a follow-up meeting without a Teams join URL: the organizer's calendar does not "
            "allow Teams meetings (its allowedOnlineMeetingProviders lacks teamsForBusiness, e.g. no Teams "
            f"license). The record is in {queue.dlq_name} with that reason and the mailbox: enable Teams "
            "for that mailbox (or configure another organizer), then `ledgerlink dlq replay`.",
        ),
    )


def validate(topology: Topology) -> None:
    """The invariants every stage must hold; raises :class:`TopologyError` naming the broken one."""
    keys = {
        ResourceKind.TABLE: {table.key for table in topology.tables},
        ResourceKind.TABLE_INDEX: {
            f"{table.key}/{index.name}" for table in topology.tables for index in table.indexes
        },
        ResourceKind.SECRET: {secret.key for secret in topology.secrets},
        ResourceKind.BUCKET: {topology.bucket.key},
        ResourceKind.EVENT_BUS: {topology.event_bus.key},
        ResourceKind.DEAD_LETTER_QUEUE: {queue.key for queue in topology.queues},
        ResourceKind.QUEUE: {queue.key for queue in topology.queues},
    }
    function_keys = {function.key for function in topology.functions}
    queue_keys = {queue.key for queue in topology.queues}
    for function in topology.functions:
        for grant in function.grants:
            if grant.key not in keys[grant.kind]:
                raise TopologyError(f"function {function.key} is granted unknown {grant.kind} {grant.key!r}")
        # Variables without a default in ledgerlink.config: without them a function cannot load settings.
        required = [name.value for name in EnvVar if name not in DEFAULTS and name not in OPTIONAL]
        missing = [name for name in required if name not in function.environment]
        if missing:
            raise TopologyError(f"function {function.key} lacks environment variables {missing}")
    for metric_alarm in topology.monitoring.metric_alarms:
        if metric_alarm.function not in function_keys:
            raise TopologyError(
                f"alarm {metric_alarm.key} watches unknown function {metric_alarm.function!r}"
            )
    for rejected in topology.monitoring.rejected_deliveries_alarms:
        if rejected.function not in function_keys:
            raise TopologyError(f"alarm {rejected.key} watches unknown function {rejected.function!r}")
    for stalled in topology.monitoring.stalled_flows:
        for ref in (stalled.processed, *stalled.upstream):
            if ref.function not in function_keys:
                raise TopologyError(f"alarm {stalled.key} watches unknown function {ref.function!r}")
    alarm_keys = [
        *(each.key for each in topology.monitoring.metric_alarms),
        *(each.key for each in topology.monitoring.rejected_deliveries_alarms),
        *(each.key for each in topology.monitoring.stalled_flows),
    ]
    if len(alarm_keys) != len(set(alarm_keys)):
        raise TopologyError(
            f"two alarms share a name: {sorted(k for k in alarm_keys if alarm_keys.count(k) > 1)}"
        )
    for rule in topology.rules:
        if rule.target_queue not in queue_keys:
            raise TopologyError(f"rule {rule.key} targets unknown queue {rule.target_queue!r}")
        # EventBridge wants a pattern or a schedule on every rule; a pattern on a scheduled rule would
        # be matched against the bus's events as well, which no LedgerLink rule means to do.
        if bool(rule.event_pattern) == bool(rule.schedule_expression):
            raise TopologyError(f"rule {rule.key} needs either an event pattern or a schedule expression")
        if rule.schedule_expression and not is_schedule_expression(rule.schedule_expression):
            raise TopologyError(
                f"rule {rule.key}: {rule.schedule_expression!r} is not an EventBridge schedule expression"
            )
    for table in topology.tables:
        index_names = [index.name for index in table.indexes]
        if len(index_names) != len(set(index_names)):
            raise TopologyError(f"table {table.key}: two indexes share a name ({index_names})")
    for route in topology.api.routes:
        if route.function not in function_keys:
            raise TopologyError(f"route {route.route_key} targets unknown function {route.function!r}")
        if not route.path.startswith("/v1/"):
            raise TopologyError(f"route {route.route_key} must be versioned (/v1/...)")
    for source in topology.queue_sources:
        if source.function not in function_keys or source.queue not in queue_keys:
            raise TopologyError(f"queue source {source.queue} -> {source.function} names an unknown resource")
        function = topology.function(source.function)
        queue = topology.queue(source.queue)
        if not 1 <= source.batch_size <= SQS_BATCH_MAX:
            raise TopologyError(f"queue source {source.queue}: batch size must be 1..{SQS_BATCH_MAX}")
        if source.max_concurrency is not None and source.max_concurrency not in SQS_MAX_CONCURRENCY_RANGE:
            raise TopologyError(
                f"queue source {source.queue}: maximum concurrency must be "
                f"{SQS_MAX_CONCURRENCY_RANGE.start}..{SQS_MAX_CONCURRENCY_RANGE.stop - 1}"
            )
        if source.batch_size > SQS_BATCH_WITHOUT_WINDOW_MAX and source.max_batching_window_seconds < 1:
            raise TopologyError(
                f"queue source {source.queue}: a batch size above {SQS_BATCH_WITHOUT_WINDOW_MAX} "
                "needs a batching window of at least 1 s"
            )
        # A function that dead-letters itself must know the queue's last receive: a higher count would
        # leave its last failures to the redrive (no reason), a lower one would give up too early.
        own_dead_letters = {
            EnvVar.DEAD_LETTER_QUEUE_NAME.value: queue.dlq_name,
            EnvVar.MAX_RECEIVE_COUNT.value: str(queue.max_receive_count),
            **{name.value: value for name, value in queue.redelivery.environment().items()},
        }
        if any(name in function.environment for name in own_dead_letters):
            wrong = {
                name: function.environment.get(name)
                for name, value in own_dead_letters.items()
                if function.environment.get(name) != value
            }
            if wrong:
                raise TopologyError(
                    f"function {function.key} dead-letters records of queue {queue.key} itself: it needs "
                    f"{own_dead_letters}, has {wrong}"
                )
            if Grant(ResourceKind.DEAD_LETTER_QUEUE, queue.key, Access.WRITE) not in function.grants:
                raise TopologyError(
                    f"function {function.key} dead-letters records of queue {queue.key} itself but is not "
                    f"granted {Access.WRITE} on its dead-letter queue"
                )
        # The receives must outlast the outage the delays were sized for (ledgerlink.consumer.redelivery).
        spanning = queue.redelivery.max_receive_count()
        if queue.max_receive_count < spanning:
            raise TopologyError(
                f"queue {queue.key}: maxReceiveCount {queue.max_receive_count} dead-letters before a "
                f"{queue.redelivery.outage_span_seconds:g}s outage ends; its retry delays need {spanning}"
            )
        needed = VISIBILITY_TIMEOUT_FACTOR * function.timeout_seconds + source.max_batching_window_seconds
        if queue.visibility_timeout_seconds < needed:
            raise TopologyError(
                f"queue {queue.key}: visibility timeout {queue.visibility_timeout_seconds}s is below "
                f"{VISIBILITY_TIMEOUT_FACTOR} x the {function.key} timeout + batching window ({needed}s)"
            )
