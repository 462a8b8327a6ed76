"""The stack's outputs (``cdk deploy`` prints them): each one of :func:`infra.deploy.stack_outputs`,
its value taken from the construct that owns it.

They are created on the stack itself, not in a construct of their own, so that their logical ids are
exactly the declared keys (``WebhookUrlPostV1WebhooksQbo``, ``SecretNameMainHubspot``, ...), which
docs/infra.md#deploy-to-aws and an operator's scripts name.
"""

from __future__ import annotations

from aws_cdk import CfnOutput, Stack

from infra.api import WebhookApi
from infra.deploy import OutputKind, OutputSpec, stack_outputs
from infra.eventing import Eventing
from infra.monitoring import Monitoring
from infra.secret_store import SecretStore
from infra.topology import Topology


def add_stack_outputs(
    stack: Stack,
    *,
    topology: Topology,
    api: WebhookApi,
    secret_store: SecretStore,
    eventing: Eventing,
    monitoring: Monitoring,
) -> dict[str, CfnOutput]:
    """One ``CfnOutput`` per declared output, by logical id."""

    def value(output: OutputSpec) -> str:
        if output.literal is not None:
            return output.literal
        match output.kind:
            case OutputKind.WEBHOOK_URL:
                return api.webhook_urls[output.ref]
            case OutputKind.SECRET_ARN:
                return secret_store.secrets[output.ref].secret_arn
            case OutputKind.ALARM_TOPIC_ARN:
                return monitoring.topic.topic_arn
            case OutputKind.DASHBOARD_NAME:
                return monitoring.dashboard.dashboard_name
            case OutputKind.EVENT_BUS_NAME:
                return eventing.bus.event_bus_name
            case OutputKind.DEAD_LETTER_QUEUE_URL:
                return eventing.dead_letter_queues[output.ref].queue_url
            case OutputKind.SECRET_NAME:
                return secret_store.secrets[output.ref].secret_name
        raise ValueError(f"output {output.key}: no value for kind {output.kind}")

    return {
        output.key: CfnOutput(stack, output.key, value=value(output), description=output.description)
        for output in stack_outputs(topology)
    }
