"""Functions: one shared code asset, one role, log group and set of grants per Lambda, SQS event sources.

Each function gets its own role with exactly the grants its :class:`~infra.topology.FunctionSpec`
lists (no AWS managed policies), its own log group with the stage's retention, X-Ray tracing and the
environment from the topology, nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import cast

from aws_cdk import Annotations, CfnElement, Duration, RemovalPolicy, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.eventing import Eventing
from infra.nag import acknowledge
from infra.secret_store import SecretStore
from infra.storage import Storage
from infra.topology import Access, FunctionSpec, Grant, ResourceKind, Topology

RUNTIMES = {
    "3.12": lambda_.Runtime.PYTHON_3_12,
    "3.13": lambda_.Runtime.PYTHON_3_13,
    "3.14": lambda_.Runtime.PYTHON_3_14,
}
ARCHITECTURES = {"arm64": lambda_.Architecture.ARM_64, "x86_64": lambda_.Architecture.X86_64}

_RETENTION = logs.RetentionDays
LOG_RETENTION = {
    1: _RETENTION.ONE_DAY,
    3: _RETENTION.THREE_DAYS,
    5: _RETENTION.FIVE_DAYS,
    7: _RETENTION.ONE_WEEK,
    14: _RETENTION.TWO_WEEKS,
    30: _RETENTION.ONE_MONTH,
    60: _RETENTION.TWO_MONTHS,
    90: _RETENTION.THREE_MONTHS,
    120: _RETENTION.FOUR_MONTHS,
    150: _RETENTION.FIVE_MONTHS,
    180: _RETENTION.SIX_MONTHS,
    365: _RETENTION.ONE_YEAR,
    400: _RETENTION.THIRTEEN_MONTHS,
    545: _RETENTION.EIGHTEEN_MONTHS,
    731: _RETENTION.TWO_YEARS,
    1096: _RETENTION.THREE_YEARS,
    1827: _RETENTION.FIVE_YEARS,
    2192: _RETENTION.SIX_YEARS,
    2557: _RETENTION.SEVEN_YEARS,
    2922: _RETENTION.EIGHT_YEARS,
    3288: _RETENTION.NINE_YEARS,
    3653: _RETENTION.TEN_YEARS,
}


def log_retention(days: int) -> logs.RetentionDays:
    """The CDK enum for a retention in days (topology.LOG_RETENTION_DAYS_ALLOWED lists the same values)."""
    return LOG_RETENTION[days]


class Functions(Construct):
    """``functions`` and ``log_groups`` map topology function keys to what was created."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topology: Topology,
        code_dir: Path,
        storage: Storage,
        eventing: Eventing,
        secret_store: SecretStore,
        removal: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self._storage = storage
        self._eventing = eventing
        self._secret_store = secret_store
        code = lambda_.Code.from_asset(str(code_dir))
        self.functions: dict[str, lambda_.Function] = {}
        self.log_groups: dict[str, logs.LogGroup] = {}
        for spec in topology.functions:
            self._function(spec, topology, code, code_dir, removal)
        for source in topology.queue_sources:
            self.functions[source.function].add_event_source(
                event_sources.SqsEventSource(
                    eventing.queues[source.queue],
                    batch_size=source.batch_size,
                    max_batching_window=Duration.seconds(source.max_batching_window_seconds),
                    report_batch_item_failures=source.report_batch_item_failures,
                    max_concurrency=source.max_concurrency,
                )
            )

    def _function(
        self,
        spec: FunctionSpec,
        topology: Topology,
        code: lambda_.Code,
        code_dir: Path,
        removal: RemovalPolicy,
    ) -> None:
        name = "".join(part.capitalize() for part in spec.key.split("_"))
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            log_group_name=spec.log_group_name,
            retention=log_retention(topology.environment.log_retention_days),
            removal_policy=removal,
        )
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"Runs {spec.name}; only the grants listed in infra/topology.py",
        )
        log_group.grant_write(role)
        function = lambda_.Function(
            self,
            name,
            function_name=spec.name,
            description=spec.description,
            code=code,
            handler=spec.handler,
            runtime=RUNTIMES[topology.python_version],
            architecture=ARCHITECTURES[topology.architecture],
            memory_size=spec.memory_mb,
            timeout=Duration.seconds(spec.timeout_seconds),
            reserved_concurrent_executions=spec.reserved_concurrency,
            environment=dict(spec.environment),
            tracing=lambda_.Tracing.ACTIVE,
            log_group=log_group,
            role=role,
        )
        for grant in spec.grants:
            self._grant(function, grant)
        acknowledge(
            role,
            "AwsSolutions-IAM5[Resource::*]",
            "X-Ray PutTraceSegments/PutTelemetryRecords have no resource-level permissions; CDK adds "
            "them for active tracing.",
        )
        if not (code_dir / spec.source_folder / "handler.py").is_file():
            Annotations.of(function).add_warning_v2(
                "ledgerlink:handler-missing",
                f"{spec.source_folder}/handler.py is not in the code asset yet; {spec.name} cannot run.",
            )
        self.functions[spec.key] = function
        self.log_groups[spec.key] = log_group

    def _grant_objects(self, function: lambda_.Function, bucket: s3.Bucket, access: Access) -> None:
        """Object reads and/or writes only (CDK's grant_put would add s3:Abort* and object-lock actions)."""
        actions = {
            Access.READ: ["s3:GetObject"],
            Access.WRITE: ["s3:PutObject"],
            Access.READ_WRITE: ["s3:GetObject", "s3:PutObject"],
        }[access]
        objects = bucket.arn_for_objects("*")
        function.add_to_role_policy(iam.PolicyStatement(actions=actions, resources=[objects]))
        if function.role is None:
            raise ValueError(f"{function.node.id} has no role to acknowledge its object grant on")
        bucket_logical_id = Stack.of(bucket).get_logical_id(cast(CfnElement, bucket.node.default_child))
        acknowledge(
            function.role,
            f"AwsSolutions-IAM5[Resource::<{bucket_logical_id}.Arn>/*]",
            "Object-level S3 permissions name objects; the function reads/writes objects of this one bucket "
            "under keys it derives per delivery, so the object part of the ARN is a wildcard.",
        )

    def _grant(self, function: lambda_.Function, grant: Grant) -> None:
        if grant.kind is ResourceKind.TABLE:
            table = self._storage.grant_tables[grant.key]
            {
                Access.READ: table.grant_read_data,
                Access.WRITE: table.grant_write_data,
                Access.READ_WRITE: table.grant_read_write_data,
            }[grant.access](function)
        elif grant.kind is ResourceKind.TABLE_INDEX:
            if grant.access is not Access.READ:
                raise ValueError(f"{function.node.id}: an index grant can only be {Access.READ}")
            table_key, _, index_name = grant.key.partition("/")
            # Query, on the one index by name: an index is read by key, never scanned or written.
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["dynamodb:Query"],
                    resources=[f"{self._storage.tables[table_key].table_arn}/index/{index_name}"],
                )
            )
        elif grant.kind is ResourceKind.BUCKET:
            self._grant_objects(function, self._storage.raw_bucket, grant.access)
        elif grant.kind is ResourceKind.SECRET:
            secret = self._secret_store.secrets[grant.key]
            if grant.access in (Access.READ, Access.READ_WRITE):
                secret.grant_read(function)
            if grant.access in (Access.WRITE, Access.READ_WRITE):
                secret.grant_write(function)
        elif grant.kind is ResourceKind.DEAD_LETTER_QUEUE:
            if grant.access is not Access.WRITE:
                raise ValueError(f"{function.node.id}: a dead-letter queue grant can only be {Access.WRITE}")
            # SendMessage (which also covers SendMessageBatch) and the URL lookup by name, on this queue
            # only; CDK's grant_send_messages would add GetQueueAttributes. SSE-SQS needs no KMS grant.
            queue = self._eventing.dead_letter_queues[grant.key]
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sqs:SendMessage", "sqs:GetQueueUrl"], resources=[queue.queue_arn]
                )
            )
        elif grant.kind is ResourceKind.QUEUE:
            if grant.access is not Access.WRITE:
                raise ValueError(f"{function.node.id}: a queue grant can only be {Access.WRITE}")
            # A function that re-enqueues (the backfill job): send and the URL lookup, this queue only.
            work_queue = self._eventing.queues[grant.key]
            function.add_to_role_policy(
                iam.PolicyStatement(
                    actions=["sqs:SendMessage", "sqs:GetQueueUrl"], resources=[work_queue.queue_arn]
                )
            )
        elif grant.kind is ResourceKind.EVENT_BUS:
            if grant.access is not Access.WRITE:
                raise ValueError(f"{function.node.id}: an event bus grant can only be {Access.WRITE}")
            self._eventing.bus.grant_put_events_to(function)
        else:
            raise ValueError(f"{function.node.id}: no grant for resource kind {grant.kind}")
