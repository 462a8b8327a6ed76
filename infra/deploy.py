"""What an operator needs to deploy a stage, declared once in plain Python (no CDK imports).

- :func:`stack_outputs`: every stack output (CloudFormation ``Outputs``) of a :class:`~infra.topology.Topology`:
  each secret's name and ARN, each webhook route's public URL, the alarm topic, the dashboard, the bus and
  the dead-letter queues, each with a description saying where its value goes. ``infra/outputs.py`` turns
  them into ``CfnOutput``s; docs/infra.md#deploy-to-aws names them and a test keeps the two in step.
- :data:`SECRET_SHAPES`: the JSON object each kind of secret must hold, field by field, as the code that
  reads it expects (``ledgerlink.ingest.verifier``, ``ledgerlink.qbo.oauth``, ``ledgerlink.hubspot.client``,
  ``ledgerlink.ingest.signing_secret``, ``ledgerlink.graph.auth``; tests/infra/test_deploy.py feeds each
  shape to those readers).
- :func:`with_alarm_email` and :func:`alarm_destination_warning`: a stage in
  :data:`~infra.topology.ALARM_EMAIL_REQUIRED_STAGES` is not synthesised without an alarm e-mail; any
  other stage is, with a warning (infra/app.py prints it and puts it on the stack).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from infra import topology as topo

# The cdk.json / `-c` context key that overrides environments.<stage>.alarm_email for one synth or deploy.
ALARM_EMAIL_CONTEXT_KEY: Final = "alarm_email"
# Where the alarm e-mail can be set, named in the refusal and the warning.
_ALARM_EMAIL_WAYS: Final = (
    'cdk.json: context.environments.{stage}.alarm_email = "ops@example.com"',
    "the command line: npx aws-cdk@2 deploy -c env={stage} -c alarm_email=ops@example.com "
    "(make synth ENV={stage} ALARM_EMAIL=ops@example.com)",
)


# --------------------------------------------------------------------------------------------------
# The alarm destination
# --------------------------------------------------------------------------------------------------


def with_alarm_email(environment: topo.EnvironmentConfig, value: Any) -> topo.EnvironmentConfig:
    """``environment`` with the alarm e-mail the ``-c alarm_email=...`` context gives, when it gives one
    (it wins over cdk.json's); a value that is no e-mail address is refused, naming the context key."""
    if value is None or value == "":
        return environment
    if not isinstance(value, str) or not topo._EMAIL_PATTERN.match(value):
        raise topo.TopologyError(f"-c {ALARM_EMAIL_CONTEXT_KEY} must be an e-mail address, got {value!r}")
    return dataclasses.replace(environment, alarm_email=value)


def alarm_destination_warning(environment: topo.EnvironmentConfig) -> str | None:
    """None when alarms reach someone; a warning (several lines) when they would reach nobody.

    Raises :class:`~infra.topology.TopologyError` instead for a stage that must have an alarm e-mail
    (:data:`~infra.topology.ALARM_EMAIL_REQUIRED_STAGES`): there, an alarm nobody receives is a failure
    nobody notices (a revoked connection, a full dead-letter queue), so the deploy is refused.
    """
    if environment.alarm_email:
        return None
    stage = environment.stage
    ways = "\n".join(f"  - {way.format(stage=stage)}" for way in _ALARM_EMAIL_WAYS)
    if stage in topo.ALARM_EMAIL_REQUIRED_STAGES:
        raise topo.TopologyError(
            f"stage {stage} needs an alarm destination and has none: its alarms (revoked connections, "
            f"dead-lettered records, rejected webhooks) would reach nobody. Set an e-mail address in\n{ways}"
        )
    return (
        f"WARNING: stage {stage} has no alarm e-mail: its alarms go to the SNS topic "
        f"{topo.resource_name(stage, 'alarms')} and reach nobody.\n"
        "Failures that need a person (a revoked connection, a dead-lettered record, rejected webhooks)\n"
        f"will go unnoticed. Set an e-mail address in\n{ways}\n"
        "or subscribe another endpoint to the topic (stack output AlarmTopicArn)."
    )


# --------------------------------------------------------------------------------------------------
# The secrets' JSON shapes
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SecretField:
    name: str
    required: bool
    meaning: str


@dataclass(frozen=True)
class SecretShape:
    """What a secret of ``kind`` holds and how an operator fills it."""

    kind: str
    fields: tuple[SecretField, ...]
    fill_with: str
    note: str = ""

    def example(self) -> str:
        """A JSON object with every field, values as placeholders (for ``put-secret-value``)."""
        return json.dumps({field.name: f"<{field.name}>" for field in self.fields}, separators=(", ", ": "))

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.fields if field.required)


SECRET_SHAPES: Final[Mapping[str, SecretShape]] = {
    shape.kind: shape
    for shape in (
        SecretShape(
            kind="qbo-webhook",
            fields=(
                SecretField(
                    "verifier_token",
                    True,
                    "the Intuit app's webhook Verifier Token (it signs intuit-signature)",
                ),
            ),
            fill_with="aws secretsmanager put-secret-value (the Intuit developer portal shows the token)",
            note="plain text (the token alone) is accepted too",
        ),
        SecretShape(
            kind="qbo-oauth",
            fields=(
                SecretField("client_id", True, "the Intuit app's client id (Keys & credentials)"),
                SecretField("client_secret", True, "the Intuit app's client secret"),
                SecretField(
                    "refresh_token", True, "the company's newest refresh token (rotated by LedgerLink)"
                ),
                SecretField(
                    "realm_id", False, "the company's realm id; when set, the grant serves that company only"
                ),
            ),
            fill_with="ledgerlink connect qbo --connection {connection}",
        ),
        SecretShape(
            kind="hubspot",
            fields=(
                SecretField("access_token", True, "the private app's access token"),
                SecretField(
                    "client_secret", True, "the private app's client secret: it signs the app's webhooks"
                ),
                SecretField("portal_id", False, "the portal (Hub ID) the token opens; informational"),
            ),
            fill_with="ledgerlink connect hubspot --connection {connection}",
        ),
        SecretShape(
            kind="graph",
            fields=(
                SecretField("client_id", True, "the Entra app registration's application (client) id"),
                SecretField("client_secret", True, "a client secret of that app registration"),
                SecretField(
                    "tenant_id",
                    False,
                    "the tenant; when set, it must be the connection's microsoft.tenant_id",
                ),
                SecretField(
                    "calendar_user",
                    False,
                    "kept for reference; the Lambdas take mailboxes from the configuration file",
                ),
            ),
            fill_with="ledgerlink connect microsoft --connection {connection}",
        ),
    )
}


def secret_kind(spec: topo.SecretSpec) -> str:
    """The kind of a topology secret: ``qbo-webhook``, or a connection secret's ``qbo-oauth``,
    ``hubspot``, ``graph`` (its key is ``<connection>:<kind>``)."""
    return spec.key.rsplit(":", 1)[-1]


# --------------------------------------------------------------------------------------------------
# The stack outputs
# --------------------------------------------------------------------------------------------------


class OutputKind(StrEnum):
    WEBHOOK_URL = "webhook_url"  # ref: the route key
    SECRET_NAME = "secret_name"  # noqa: S105 (an output kind; ref: the secret key)
    SECRET_ARN = "secret_arn"  # noqa: S105 (an output kind; ref: the secret key)
    ALARM_TOPIC_ARN = "alarm_topic_arn"
    DASHBOARD_NAME = "dashboard_name"
    EVENT_BUS_NAME = "event_bus_name"
    DEAD_LETTER_QUEUE_URL = "dead_letter_queue_url"  # ref: the work queue's key


@dataclass(frozen=True)
class OutputSpec:
    """One stack output: ``key`` is its logical id (what ``cdk deploy`` prints), ``ref`` the topology key
    of what it shows, ``literal`` its value when the topology knows it already (a name)."""

    key: str
    kind: OutputKind
    description: str
    ref: str = ""
    literal: str | None = None


# Who calls each webhook route (by the function behind it) and where its URL is pasted.
_WEBHOOK_REGISTRATION: Final[Mapping[str, str]] = {
    "qbo_ingest": (
        "Paste into the Intuit developer portal: your app > Webhooks > Endpoint URL (production and "
        "development keys each have their own); subscribe to the entities in docs/infra.md#deploy-to-aws"
    ),
    "hubspot_ingest": (
        "Paste into each connection's HubSpot app: Webhooks > Target URL; subscribe to deal and line-item "
        "events as docs/hubspot-webhooks.md describes"
    ),
}


def output_id(prefix: str, text: str) -> str:
    """``prefix`` + ``text`` in CamelCase, letters and digits only (a CloudFormation logical id)."""
    words = "".join(c if c.isalnum() else " " for c in text).split()
    return prefix + "".join(word.capitalize() for word in words)


def stack_outputs(topology: topo.Topology) -> tuple[OutputSpec, ...]:
    """Every output of the stage's stack; two outputs never share a logical id (else TopologyError)."""
    outputs: list[OutputSpec] = []
    for route in topology.api.routes:
        registration = _WEBHOOK_REGISTRATION.get(route.function, "Register it with the vendor that calls it")
        if route.function == "hubspot_ingest" and topology.environment.hubspot_webhook_url:
            registration += (
                f"; cdk.json sets hubspot_webhook_url, so register {topology.environment.hubspot_webhook_url} "
                "instead, routed to this URL"
            )
        outputs.append(
            OutputSpec(
                key=output_id("WebhookUrl", route.route_key),
                kind=OutputKind.WEBHOOK_URL,
                ref=route.route_key,
                description=f"{route.route_key} -> {route.function}. {registration}.",
            )
        )
    for secret in topology.secrets:
        shape = SECRET_SHAPES[secret_kind(secret)]
        required = ", ".join(shape.required)
        fill = shape.fill_with.format(connection=secret.connection or "NAME")
        fill = f"`{fill}`" if fill.startswith("ledgerlink") else fill
        outputs.append(
            OutputSpec(
                key=output_id("SecretName", secret.key),
                kind=OutputKind.SECRET_NAME,
                ref=secret.key,
                literal=secret.name,
                description=(
                    f"{secret.description}. JSON {shape.example()} (required: {required}). Fill with {fill}; "
                    "docs/infra.md#deploy-to-aws"
                ),
            )
        )
        outputs.append(
            OutputSpec(
                key=output_id("SecretArn", secret.key),
                kind=OutputKind.SECRET_ARN,
                ref=secret.key,
                description=f"ARN of secret {secret.name} (IAM policies, aws secretsmanager --secret-id).",
            )
        )
    monitoring = topology.monitoring
    destination = (
        f"{monitoring.alarm_email} is subscribed: confirm the e-mail AWS sends it"
        if monitoring.alarm_email
        else "no e-mail is subscribed (cdk.json alarm_email): subscribe one or a pager"
    )
    outputs.extend(
        (
            OutputSpec(
                key="AlarmTopicArn",
                kind=OutputKind.ALARM_TOPIC_ARN,
                description=f"Every alarm notifies this SNS topic ({monitoring.topic_name}); {destination}.",
            ),
            OutputSpec(
                key="DashboardName",
                kind=OutputKind.DASHBOARD_NAME,
                literal=monitoring.dashboard_name,
                description="CloudWatch dashboard: alarm status, webhook API, queues, functions.",
            ),
            OutputSpec(
                key="EventBusName",
                kind=OutputKind.EVENT_BUS_NAME,
                literal=topology.event_bus.name,
                description="The LedgerLink event bus (archived; `ledgerlink replay archive` re-ingests).",
            ),
        )
    )
    outputs.extend(
        OutputSpec(
            key=output_id("DeadLetterQueueUrl", queue.key),
            kind=OutputKind.DEAD_LETTER_QUEUE_URL,
            ref=queue.key,
            description=f"{queue.dlq_name}: inspect, fix, then `ledgerlink dlq replay {queue.dlq_name}`.",
        )
        for queue in topology.queues
    )
    keys = [output.key for output in outputs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise topo.TopologyError(f"two stack outputs share a logical id: {duplicates} (rename a connection)")
    return tuple(outputs)
