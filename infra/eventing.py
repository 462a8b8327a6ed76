"""Eventing: the LedgerLink event bus with its archive, the work queues with their DLQs, and the rules
(event-pattern rules on the bus, scheduled rules on the default bus)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.topology import QueueSpec, RuleSpec, Topology


class Eventing(Construct):
    """``bus``, ``archive``, ``queues``/``dead_letter_queues`` (by topology key) and ``rules``."""

    def __init__(
        self, scope: Construct, construct_id: str, *, topology: Topology, removal: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        bus_spec = topology.event_bus
        self.bus = events.EventBus(self, "Bus", event_bus_name=bus_spec.name)
        self.archive = events.Archive(
            self,
            "Archive",
            source_event_bus=self.bus,
            archive_name=bus_spec.archive_name,
            description="Every event on the LedgerLink bus, for replay after a fix",
            # An archive needs a pattern; every event on this bus comes from this account.
            event_pattern=events.EventPattern(account=[Stack.of(self).account]),
            retention=Duration.days(bus_spec.archive_retention_days),
        )
        self.queues: dict[str, sqs.Queue] = {}
        self.dead_letter_queues: dict[str, sqs.Queue] = {}
        for queue_spec in topology.queues:
            self._queue(queue_spec, removal)
        self.rules: dict[str, events.Rule] = {rule.key: self._rule(rule) for rule in topology.rules}

    def _queue(self, spec: QueueSpec, removal: RemovalPolicy) -> None:
        name = _pascal(spec.key)
        dead_letter_queue = sqs.Queue(
            self,
            f"{name}DeadLetterQueue",
            queue_name=spec.dlq_name,
            retention_period=Duration.seconds(spec.dlq_retention_seconds),
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            removal_policy=removal,
        )
        queue = sqs.Queue(
            self,
            f"{name}Queue",
            queue_name=spec.name,
            visibility_timeout=Duration.seconds(spec.visibility_timeout_seconds),
            retention_period=Duration.seconds(spec.retention_seconds),
            # SSE-SQS (not an AWS-managed KMS key) so that EventBridge can deliver without a key policy.
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            dead_letter_queue=sqs.DeadLetterQueue(
                max_receive_count=spec.max_receive_count, queue=dead_letter_queue
            ),
            removal_policy=removal,
        )
        self.queues[spec.key] = queue
        self.dead_letter_queues[spec.key] = dead_letter_queue

    def _rule(self, spec: RuleSpec) -> events.Rule:
        if spec.schedule_expression:
            # EventBridge runs schedules on the account's default bus only: no event_bus, no pattern.
            rule = events.Rule(
                self,
                f"{_pascal(spec.key)}Rule",
                rule_name=spec.name,
                description=spec.description,
                schedule=events.Schedule.expression(spec.schedule_expression),
            )
        else:
            rule = events.Rule(
                self,
                f"{_pascal(spec.key)}Rule",
                event_bus=self.bus,
                rule_name=spec.name,
                description=spec.description,
                event_pattern=event_pattern(spec.event_pattern),
            )
        rule.add_target(
            targets.SqsQueue(
                self.queues[spec.target_queue],
                # Events EventBridge cannot deliver land where failed messages land: one replay path.
                dead_letter_queue=self.dead_letter_queues[spec.target_queue],
                max_event_age=Duration.seconds(spec.max_event_age_seconds),
                retry_attempts=spec.retry_attempts,
            )
        )
        return rule


def event_pattern(pattern: Mapping[str, Any]) -> events.EventPattern:
    """The topology's JSON event pattern as a CDK EventPattern (unknown top-level fields are refused)."""
    fields = {"source": "source", "detail-type": "detail_type", "detail": "detail", "account": "account"}
    unknown = set(pattern) - set(fields)
    if unknown:
        raise ValueError(f"event pattern fields {sorted(unknown)} are not supported")
    return events.EventPattern(**{fields[key]: _plain(value) for key, value in pattern.items()})


def _plain(value: Any) -> Any:
    """Mapping proxies and tuples from the topology as the dicts and lists jsii expects."""
    if isinstance(value, Mapping):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _pascal(key: str) -> str:
    return "".join(part.capitalize() for part in key.replace("_", "-").split("-"))
