"""AWS on this machine: moto in server mode, and the topology's resources created in it.

:class:`MotoServer` serves S3, SQS, EventBridge, DynamoDB and Secrets Manager on one port of
127.0.0.1; every process (the stack, the function workers, the CLI) reaches it through
``AWS_ENDPOINT_URL``. :func:`provision` creates what :class:`infra.topology.Topology` declares, in
the order CloudFormation would (dead-letter queues before their sources, queues before the rules
that target them), with the same names, queue attributes, redrive policies, rule patterns, rule
targets (retry policy and dead-letter config included; scheduled rules on the default bus, as
EventBridge runs schedules there only), table keys, global secondary indexes and TTL attributes.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import boto3
import requests
from botocore.config import Config

from ledgerlink_local.stack.wiring import LOCAL_ACCOUNT, LOCAL_REGION, plain_json

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

    from infra.topology import QueueSpec, RuleSpec, TableSpec, Topology

# Any credentials do for moto; these make it obvious where a request was meant to go.
LOCAL_CREDENTIALS: Final = {
    "aws_access_key_id": "ledgerlink-local",
    "aws_secret_access_key": "ledgerlink-local",
}
CLIENT_CONFIG: Final = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5)


class MotoServer:
    """moto's threaded server on ``host:port`` (0 picks a free port).

    moto holds its state per process, so two stacks side by side are two processes (two ``make run``
    with different ports and state directories); within one process a new stack resets the state.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._server: Any = None
        self.endpoint_url = ""

    def start(self) -> MotoServer:
        from moto.server import ThreadedMotoServer

        # werkzeug logs one line per request (thousands a minute from the pollers); keep errors only.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        if self._port:
            # moto binds in its thread and would wait forever for a port it cannot have: check first.
            ensure_port_free(self._host, self._port)
        self._server = ThreadedMotoServer(ip_address=self._host, port=self._port, verbose=False)
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint_url = f"http://{host}:{port}"
        # moto keeps its state in module globals: a stack started earlier in this process (a test
        # module before this one) would leave its resources behind. Every stack starts from nothing.
        requests.post(self.endpoint_url + "/moto-api/reset", timeout=10).raise_for_status()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


def ensure_port_free(host: str, port: int) -> None:
    """Raise ``OSError(EADDRINUSE)`` if ``host:port`` cannot be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, port))


def client(service: str, endpoint_url: str, region: str = LOCAL_REGION) -> Any:
    """A boto3 client for the local endpoint, with local credentials."""
    return boto3.client(  # type: ignore[call-overload]
        service, endpoint_url=endpoint_url, region_name=region, config=CLIENT_CONFIG, **LOCAL_CREDENTIALS
    )


@dataclass(frozen=True)
class QueueResource:
    key: str
    name: str
    url: str
    arn: str
    dlq_name: str
    dlq_url: str
    dlq_arn: str
    visibility_timeout_seconds: int
    max_receive_count: int


@dataclass(frozen=True)
class Resources:
    """What :func:`provision` created, with the URLs and ARNs the pollers and the CLI need."""

    endpoint_url: str
    region: str
    account: str
    event_bus_name: str
    event_bus_arn: str
    bucket_name: str
    queues: Mapping[str, QueueResource] = field(default_factory=dict)
    rule_arns: Mapping[str, str] = field(default_factory=dict)

    def queue(self, key: str) -> QueueResource:
        try:
            return self.queues[key]
        except KeyError:
            raise KeyError(f"no queue {key!r} (known: {', '.join(self.queues)})") from None


def provision(
    topology: Topology,
    endpoint_url: str,
    *,
    secret_values: Mapping[str, str],
    visibility_timeout_seconds: int | None = None,
    region: str = LOCAL_REGION,
    account: str = LOCAL_ACCOUNT,
) -> Resources:
    """Create every resource of ``topology`` in the emulator at ``endpoint_url``.

    ``secret_values`` maps a secret key of the topology to its SecretString (the sandboxes' demo
    credentials); a secret without a value gets a placeholder, as the CDK stack creates it.
    ``visibility_timeout_seconds`` overrides every queue's visibility timeout (tests use 1 s so that
    a failing message reaches its dead-letter queue in seconds, not in the 12 minutes the stack sets).
    """
    _create_tables(client("dynamodb", endpoint_url, region), topology.tables)
    _create_bucket(client("s3", endpoint_url, region), topology)
    secrets = client("secretsmanager", endpoint_url, region)
    for secret in topology.secrets:
        value = secret_values.get(secret.key, json.dumps({"placeholder": "set me"}))
        secrets.create_secret(Name=secret.name, Description=secret.description, SecretString=value)
    sqs = client("sqs", endpoint_url, region)
    queues = {queue.key: _create_queue(sqs, queue, visibility_timeout_seconds) for queue in topology.queues}
    events = client("events", endpoint_url, region)
    bus_arn = events.create_event_bus(Name=topology.event_bus.name)["EventBusArn"]
    events.create_archive(
        ArchiveName=topology.event_bus.archive_name,
        EventSourceArn=bus_arn,
        # What the CDK stack archives: every event of the account on the bus.
        EventPattern=json.dumps({"account": [account]}),
        RetentionDays=topology.event_bus.archive_retention_days,
    )
    rule_arns = {rule.key: _create_rule(events, topology, rule, queues) for rule in topology.rules}
    return Resources(
        endpoint_url=endpoint_url,
        region=region,
        account=account,
        event_bus_name=topology.event_bus.name,
        event_bus_arn=bus_arn,
        bucket_name=topology.bucket.name,
        queues=queues,
        rule_arns=rule_arns,
    )


def _create_tables(dynamodb: Any, specs: tuple[TableSpec, ...]) -> None:
    for table in specs:
        key_schema = [{"AttributeName": table.keys.partition_key, "KeyType": "HASH"}]
        names = [table.keys.partition_key]
        if table.keys.sort_key:
            key_schema.append({"AttributeName": table.keys.sort_key, "KeyType": "RANGE"})
            names.append(table.keys.sort_key)
        arguments: dict[str, Any] = {}
        if table.indexes:
            # As the CDK stack creates them: string keys, every attribute projected, on demand.
            arguments["GlobalSecondaryIndexes"] = [
                {
                    "IndexName": index.name,
                    "KeySchema": [
                        {"AttributeName": index.partition_key, "KeyType": "HASH"},
                        {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index in table.indexes
            ]
            names += [key for index in table.indexes for key in (index.partition_key, index.sort_key)]
        dynamodb.create_table(
            TableName=table.name,
            KeySchema=key_schema,
            # One definition per attribute a key of the table or of an index uses.
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"} for name in dict.fromkeys(names)
            ],
            BillingMode="PAY_PER_REQUEST",
            **arguments,
        )
        if table.keys.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": table.keys.ttl_attribute},
            )


def _create_bucket(s3: Any, topology: Topology) -> None:
    bucket = topology.bucket
    for name in (bucket.name, bucket.access_log_bucket_name):
        s3.create_bucket(Bucket=name)  # us-east-1 takes no LocationConstraint
    s3.put_bucket_versioning(Bucket=bucket.name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(
        Bucket=bucket.name,
        LifecycleConfiguration={
            "Rules": [
                {
                    "ID": "expire-raw-deliveries",
                    "Status": "Enabled",
                    "Filter": {"Prefix": ""},
                    "Expiration": {"Days": bucket.expire_after_days},
                    "NoncurrentVersionExpiration": {
                        "NoncurrentDays": bucket.noncurrent_versions_expire_after_days
                    },
                }
            ]
        },
    )


def _create_queue(sqs: SQSClient, queue: QueueSpec, visibility_override: int | None) -> QueueResource:
    dlq_url = sqs.create_queue(
        QueueName=queue.dlq_name,
        Attributes={
            "MessageRetentionPeriod": str(queue.dlq_retention_seconds),
            "SqsManagedSseEnabled": "true",
        },
    )["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    visibility = visibility_override if visibility_override is not None else queue.visibility_timeout_seconds
    url = sqs.create_queue(
        QueueName=queue.name,
        Attributes={
            "VisibilityTimeout": str(visibility),
            "MessageRetentionPeriod": str(queue.retention_seconds),
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count}
            ),
        },
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return QueueResource(
        key=queue.key,
        name=queue.name,
        url=url,
        arn=arn,
        dlq_name=queue.dlq_name,
        dlq_url=dlq_url,
        dlq_arn=dlq_arn,
        visibility_timeout_seconds=visibility,
        max_receive_count=queue.max_receive_count,
    )


def _create_rule(events: Any, topology: Topology, rule: RuleSpec, queues: Mapping[str, QueueResource]) -> str:
    target = queues[rule.target_queue]
    schedule = rule.schedule_expression
    # EventBridge runs schedules on the default bus only (a CDK Schedule rule has no event bus).
    bus = "default" if schedule else topology.event_bus.name
    arguments: dict[str, Any] = {
        "Name": rule.name,
        "EventBusName": bus,
        "Description": rule.description,
        "State": "ENABLED",
    }
    if schedule:
        arguments["ScheduleExpression"] = schedule
    if rule.event_pattern:
        arguments["EventPattern"] = plain_json(rule.event_pattern)
    arn: str = events.put_rule(**arguments)["RuleArn"]
    events.put_targets(
        Rule=rule.name,
        EventBusName=bus,
        Targets=[
            {
                "Id": target.key,
                "Arn": target.arn,
                "DeadLetterConfig": {"Arn": target.dlq_arn},
                "RetryPolicy": {
                    "MaximumRetryAttempts": rule.retry_attempts,
                    "MaximumEventAgeInSeconds": rule.max_event_age_seconds,
                },
            }
        ],
    )
    return arn
