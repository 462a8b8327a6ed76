"""Monitoring: an encrypted SNS alarm topic, alarms on what must never go unnoticed, a dashboard.

Alarms: any message in a dead-letter queue, the oldest message of a work queue older than its
threshold (records "stuck in queue"), any Lambda error, any API 5xx, and the functions' own metrics
that mean a human must act (``MonitoringSpec.metric_alarms``: a permanently failed event, a revoked or
rejected QBO connection, a refresh token not stored, rejected Graph credentials, a dead letter that could
not be sent, a Teams meeting Graph created without a join URL, reconcile drift). Each
notifies the topic on ALARM and on OK; subscribe an e-mail with ``alarm_email`` in cdk.json or
PagerDuty to the topic.

Two kinds are metric math over the functions' counts (:func:`rejected_deliveries_expression`,
:func:`stalled_flow_expression`): the share of a webhook ingest's deliveries it refused (a wrong verifier
token or signing secret refuses every genuine delivery; a rate tells that from a scanner's stray
request), and a flow that processed nothing while what feeds it published changes.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cloudwatch_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from infra.api import WebhookApi
from infra.compute import Functions
from infra.eventing import Eventing
from infra.topology import (
    METRICS_NAMESPACE,
    METRICS_SERVICE_DIMENSION,
    RejectedDeliveriesAlarmSpec,
    StalledFlowSpec,
    Topology,
    resource_name,
)


def function_metric(
    topology: Topology, function_key: str, metric_name: str, period: Duration
) -> cloudwatch.Metric:
    """A count a function emits with Powertools (its namespace, the service dimension), summed per period."""
    return cloudwatch.Metric(
        namespace=METRICS_NAMESPACE,
        metric_name=metric_name,
        dimensions_map={METRICS_SERVICE_DIMENSION: topology.function(function_key).service},
        statistic="Sum",
        period=period,
    )


def rejected_deliveries_expression(
    topology: Topology, spec: RejectedDeliveriesAlarmSpec
) -> cloudwatch.MathExpression:
    """1 in a period with at least ``min_rejected`` refused deliveries that are at least ``rate_percent`` %
    of those received, else 0. Both counts are the ingest's series with the service dimension alone
    (``ledgerlink.apigw.count_rejection`` emits DeliveriesRejected there too, besides reason and status).
    No delivery at all is no data, which the alarm treats as not breaching."""
    period = Duration.seconds(spec.period_seconds)
    return cloudwatch.MathExpression(
        expression=(
            f"IF(rejected >= {spec.min_rejected} AND 100 * rejected / received >= {spec.rate_percent}, 1, 0)"
        ),
        using_metrics={
            "rejected": function_metric(topology, spec.function, "DeliveriesRejected", period),
            "received": function_metric(topology, spec.function, "DeliveriesReceived", period),
        },
        label=f"{topology.function(spec.function).name}: refused deliveries at or above the alarm rate",
        period=period,
    )


def rejected_rate_expression(
    topology: Topology, function_key: str, period: Duration
) -> cloudwatch.MathExpression:
    """The share (%) of a webhook ingest's deliveries it refused, per period (the dashboard's line). Ids
    carry the function: one graph holds every ingest's, and a graph's ids must be unique."""
    rejected, received = f"rejected_{function_key}", f"received_{function_key}"
    return cloudwatch.MathExpression(
        expression=f"100 * FILL({rejected}, 0) / {received}",
        using_metrics={
            rejected: function_metric(topology, function_key, "DeliveriesRejected", period),
            received: function_metric(topology, function_key, "DeliveriesReceived", period),
        },
        label=f"{topology.function(function_key).name}: refused deliveries (%)",
        period=period,
    )


def stalled_flow_expression(topology: Topology, spec: StalledFlowSpec) -> cloudwatch.MathExpression:
    """1 in a period when the flow's ``processed`` count is zero (FILL: a flow that runs not at all
    emits nothing, which must count as zero) while its ``upstream`` counts sum to more than zero, else 0."""
    period = Duration.seconds(spec.period_seconds)
    upstream = {f"upstream{index}": ref for index, ref in enumerate(spec.upstream)}
    published = " + ".join(f"FILL({name}, 0)" for name in upstream)
    return cloudwatch.MathExpression(
        expression=f"IF(FILL(processed, 0) == 0 AND ({published}) > 0, 1, 0)",
        using_metrics={
            "processed": function_metric(
                topology, spec.processed.function, spec.processed.metric_name, period
            ),
            **{
                name: function_metric(topology, ref.function, ref.metric_name, period)
                for name, ref in upstream.items()
            },
        },
        label=f"{spec.key}: nothing processed while upstream published",
        period=period,
    )


class Monitoring(Construct):
    """``topic`` (alarm notifications), ``alarms`` by name, ``dashboard``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        topology: Topology,
        functions: Functions,
        eventing: Eventing,
        api: WebhookApi,
        removal: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        spec = topology.monitoring
        period = Duration.seconds(spec.period_seconds)
        # CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key: a customer key
        # whose policy lets CloudWatch use it keeps the topic encrypted and the alarms delivered.
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Encrypts the LedgerLink {topology.stage} alarm topic",
            enable_key_rotation=True,
            removal_policy=removal,
        )
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchAlarmsToPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        self.topic = sns.Topic(
            self,
            "AlarmTopic",
            topic_name=spec.topic_name,
            display_name=f"LedgerLink {topology.stage} alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        if spec.alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(spec.alarm_email))
        action = cloudwatch_actions.SnsAction(self.topic)
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        def alarm(name: str, metric: cloudwatch.IMetric, threshold: float, description: str) -> None:
            created = cloudwatch.Alarm(
                self,
                name,
                alarm_name=resource_name(topology.stage, name),
                alarm_description=description,
                metric=metric,
                threshold=threshold,
                evaluation_periods=1,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            created.add_alarm_action(action)
            created.add_ok_action(action)
            self.alarms[name] = created

        for key, dead_letter_queue in eventing.dead_letter_queues.items():
            alarm(
                f"{key}-dlq-not-empty",
                dead_letter_queue.metric_approximate_number_of_messages_visible(
                    period=period, statistic="Maximum"
                ),
                spec.dlq_depth_threshold,
                f"Messages are waiting in {topology.queue(key).dlq_name}; inspect, fix, "
                "then `ledgerlink dlq replay`.",
            )
        for key, queue in eventing.queues.items():
            alarm(
                f"{key}-queue-stuck",
                queue.metric_approximate_age_of_oldest_message(period=period, statistic="Maximum"),
                spec.queue_oldest_message_age_threshold_seconds,
                f"The oldest message in {topology.queue(key).name} has waited too long: the consumer is "
                "failing, throttled or disabled.",
            )
        for key, function in functions.functions.items():
            alarm(
                f"{key.replace('_', '-')}-errors",
                function.metric_errors(period=period, statistic="Sum"),
                spec.function_errors_threshold,
                f"{topology.function(key).name} raised errors (uncaught exceptions or timeouts).",
            )
        for metric_alarm in spec.metric_alarms:
            alarm(
                metric_alarm.key,
                function_metric(topology, metric_alarm.function, metric_alarm.metric_name, period),
                metric_alarm.threshold,
                metric_alarm.description,
            )
        for rejected in spec.rejected_deliveries_alarms:
            alarm(
                rejected.key,
                rejected_deliveries_expression(topology, rejected),
                1,
                rejected.description,
            )
        for stalled in spec.stalled_flows:
            alarm(stalled.key, stalled_flow_expression(topology, stalled), 1, stalled.description)
        alarm(
            "api-5xx",
            api.http_api.metric_server_error(period=period, statistic="Sum"),
            spec.api_5xx_threshold,
            f"{topology.api.name} answered 5xx; webhook senders retry and may hold back later events.",
        )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=spec.dashboard_name)
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms.values()), width=24, height=4
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Webhook API",
                left=[
                    api.http_api.metric_count(period=period, statistic="Sum"),
                    api.http_api.metric_client_error(period=period, statistic="Sum"),
                    api.http_api.metric_server_error(period=period, statistic="Sum"),
                ],
                right=[api.http_api.metric_latency(period=period, statistic="p99")],
                width=12,
            ),
            cloudwatch.GraphWidget(
                title="Queues",
                left=[
                    metric
                    for queue in [*eventing.queues.values(), *eventing.dead_letter_queues.values()]
                    for metric in [
                        queue.metric_approximate_number_of_messages_visible(
                            period=period, statistic="Maximum"
                        )
                    ]
                ],
                right=[
                    queue.metric_approximate_age_of_oldest_message(period=period, statistic="Maximum")
                    for queue in eventing.queues.values()
                ],
                width=12,
            ),
        )
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=topology.function(key).name,
                    left=[
                        function.metric_invocations(period=period, statistic="Sum"),
                        function.metric_errors(period=period, statistic="Sum"),
                        function.metric_throttles(period=period, statistic="Sum"),
                    ],
                    right=[function.metric_duration(period=period, statistic="p99")],
                    width=12,
                )
                for key, function in functions.functions.items()
            )
        )
        watched = sorted({metric_alarm.function for metric_alarm in spec.metric_alarms})
        if watched:
            self.dashboard.add_widgets(
                *(
                    cloudwatch.GraphWidget(
                        title=f"{topology.function(key).name}: events",
                        left=[
                            function_metric(topology, key, name, period)
                            for name in ("EventsReceived", "EventsFailed", "EventsDeadLettered")
                        ],
                        right=[
                            function_metric(topology, key, metric_alarm.metric_name, period)
                            for metric_alarm in spec.metric_alarms
                            if metric_alarm.function == key
                        ],
                        width=12,
                    )
                    for key in watched
                )
            )
        # The webhook senders' refused share (a wrong verifier token or signing secret shows as a line at
        # 100 %) and the drift the scheduled reconciliation found, per connection.
        ingests = [route.function for route in topology.api.routes]
        reconciled = [
            metric_alarm.function
            for metric_alarm in spec.metric_alarms
            if metric_alarm.metric_name == "DriftRecords"
        ]
        connections = sorted({secret.connection for secret in topology.secrets if secret.connection})
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Webhook deliveries refused (%)",
                left=[rejected_rate_expression(topology, key, period) for key in ingests],
                left_y_axis=cloudwatch.YAxisProps(min=0, max=100),
                width=12,
            ),
            *(
                cloudwatch.GraphWidget(
                    title=f"{topology.function(key).name}: drifted records",
                    left=[
                        function_metric(topology, key, "DriftRecords", Duration.days(1)),
                        *(
                            cloudwatch.Metric(
                                namespace=METRICS_NAMESPACE,
                                metric_name="DriftRecords",
                                dimensions_map={
                                    METRICS_SERVICE_DIMENSION: topology.function(key).service,
                                    "connection": connection,
                                },
                                statistic="Maximum",
                                period=Duration.days(1),
                                label=f"{connection}",
                            )
                            for connection in connections
                        ),
                    ],
                    right=[
                        function_metric(topology, key, name, Duration.days(1))
                        for name in ("ReconcileNotReached", "UnexpectedErrors")
                    ],
                    width=12,
                )
                for key in sorted(set(reconciled))
            ),
        )
