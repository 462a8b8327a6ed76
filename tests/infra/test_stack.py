"""The synthesised CloudFormation of every stage: resources, their key properties, and cdk-nag.

Each stage is synthesised once for the whole module (about 8 s each) exactly as `make synth` does,
with cdk-nag's AwsSolutions pack enabled, and the tests read the written templates.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import infra.api
import infra.compute
import infra.secret_store
from infra import topology as topo
from infra.app import build_app
from tests.infra.conftest import PROD_ALARM_EMAIL, Synthesized, synthesize


@pytest.fixture(scope="module")
def stages(lambda_code_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Synthesized]:
    return {
        stage: synthesize(stage, tmp_path_factory.mktemp(f"cdk-{stage}"), lambda_code_dir)
        for stage in topo.STAGES
    }


@pytest.fixture(scope="module")
def dev(stages: dict[str, Synthesized]) -> Synthesized:
    return stages["dev"]


@pytest.fixture(scope="module")
def prod(stages: dict[str, Synthesized]) -> Synthesized:
    return stages["prod"]


def _ref(logical_id: str) -> dict[str, str]:
    return {"Ref": logical_id}


def _arn(logical_id: str) -> dict[str, list[str]]:
    return {"Fn::GetAtt": [logical_id, "Arn"]}


# --- cdk-nag -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", topo.STAGES)
def test_every_stage_synthesises_with_no_unacknowledged_nag_finding(
    stages: dict[str, Synthesized], stage: str
) -> None:
    # given the stage synthesised with the AwsSolutions pack (synth raises on an error-level finding)
    report = stages[stage].validation_report
    # then the report lists no violation at any level
    violations = [v for plugin in report.get("pluginReports", []) for v in plugin.get("violations", [])]
    assert violations == []
    assert stages[stage].template.to_json()["Resources"]


def test_every_acknowledgement_names_a_rule_and_gives_a_reason(stages: dict[str, Synthesized]) -> None:
    for synthesized in stages.values():
        assert synthesized.acknowledged, "expected the documented acknowledgements"
        for finding in synthesized.acknowledged:
            assert finding.plugin == "AwsSolutions", finding
            assert finding.rule_id.startswith("AwsSolutions-"), finding
            assert len(finding.reason.split()) >= 8, finding


# --- storage -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", topo.STAGES)
def test_tables_are_on_demand_with_pitr_ttl_and_the_shared_key_schema(
    stages: dict[str, Synthesized], stage: str
) -> None:
    synthesized = stages[stage]
    for spec in synthesized.topology.tables:
        _, table = synthesized.one("AWS::DynamoDB::Table", TableName=spec.name)
        properties = table["Properties"]
        expected_keys = [{"AttributeName": spec.keys.partition_key, "KeyType": "HASH"}]
        if spec.keys.sort_key:
            expected_keys.append({"AttributeName": spec.keys.sort_key, "KeyType": "RANGE"})
        assert properties["KeySchema"] == expected_keys
        assert properties["BillingMode"] == "PAY_PER_REQUEST"
        assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        if spec.keys.ttl_attribute:
            assert properties["TimeToLiveSpecification"] == {
                "AttributeName": spec.keys.ttl_attribute,
                "Enabled": True,
            }
        else:
            assert "TimeToLiveSpecification" not in properties
        retained = stage == "prod"
        assert table["DeletionPolicy"] == ("Retain" if retained else "Delete")
        assert properties.get("DeletionProtectionEnabled", False) is retained
        # and its indexes: string keys, every attribute projected, no capacity of their own
        assert properties.get("GlobalSecondaryIndexes", []) == [
            {
                "IndexName": index.name,
                "KeySchema": [
                    {"AttributeName": index.partition_key, "KeyType": "HASH"},
                    {"AttributeName": index.sort_key, "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
        keys = [spec.keys.partition_key, spec.keys.sort_key] + [
            key for index in spec.indexes for key in (index.partition_key, index.sort_key)
        ]
        assert sorted(a["AttributeName"] for a in properties["AttributeDefinitions"]) == sorted(
            key for key in set(keys) if key
        )
        assert {a["AttributeType"] for a in properties["AttributeDefinitions"]} == {"S"}


def test_the_links_table_has_the_owed_by_due_date_index_the_sweep_queries(dev: Synthesized) -> None:
    _, links = dev.one("AWS::DynamoDB::Table", TableName=dev.topology.table("links").name)
    (index,) = links["Properties"]["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "owed-by-due-date"
    assert [key["AttributeName"] for key in index["KeySchema"]] == ["owed_connection", "due_date"]


def test_raw_bucket_is_private_encrypted_tls_only_versioned_logged_and_expires(dev: Synthesized) -> None:
    spec = dev.topology.bucket
    raw_id, raw = dev.one("AWS::S3::Bucket", BucketName=spec.name)
    logs_id, _ = dev.one("AWS::S3::Bucket", BucketName=spec.access_log_bucket_name)
    properties = raw["Properties"]
    assert properties["BucketEncryption"] == {
        "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
    }
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["LoggingConfiguration"] == {
        "DestinationBucketName": _ref(logs_id),
        "LogFilePrefix": "raw-deliveries/",
    }
    (rule,) = properties["LifecycleConfiguration"]["Rules"]
    assert rule["Status"] == "Enabled"
    assert rule["ExpirationInDays"] == dev.topology.environment.raw_delivery_retention_days
    assert rule["NoncurrentVersionExpiration"] == {
        "NoncurrentDays": spec.noncurrent_versions_expire_after_days
    }
    assert rule["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    for bucket_id in (raw_id, logs_id):
        _, policy = dev.one("AWS::S3::BucketPolicy", Bucket=_ref(bucket_id))
        statements = policy["Properties"]["PolicyDocument"]["Statement"]
        assert any(
            statement["Effect"] == "Deny"
            and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            and statement["Action"] == "s3:*"
            for statement in statements
        )


def test_raw_delivery_retention_follows_the_stage(prod: Synthesized) -> None:
    _, raw = prod.one("AWS::S3::Bucket", BucketName=prod.topology.bucket.name)
    (rule,) = raw["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rule["ExpirationInDays"] == 400
    assert raw["DeletionPolicy"] == "Retain"


# --- eventing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["deal-sync", "calendar-sync", "teams-invite"])
def test_each_work_queue_redrives_to_its_dlq_and_both_are_encrypted_and_tls_only(
    dev: Synthesized, key: str
) -> None:
    spec = dev.topology.queue(key)
    queue_id, queue = dev.one("AWS::SQS::Queue", QueueName=spec.name)
    dlq_id, dlq = dev.one("AWS::SQS::Queue", QueueName=spec.dlq_name)
    assert queue["Properties"]["VisibilityTimeout"] == spec.visibility_timeout_seconds
    assert queue["Properties"]["MessageRetentionPeriod"] == 4 * 24 * 3600
    assert queue["Properties"]["RedrivePolicy"] == {
        "deadLetterTargetArn": _arn(dlq_id),
        "maxReceiveCount": spec.max_receive_count,
    }
    assert dlq["Properties"]["MessageRetentionPeriod"] == 14 * 24 * 3600
    for logical_id, properties in ((queue_id, queue["Properties"]), (dlq_id, dlq["Properties"])):
        assert properties["SqsManagedSseEnabled"] is True
        policies = [
            policy
            for policy in dev.of_type("AWS::SQS::QueuePolicy").values()
            if _ref(logical_id) in policy["Properties"]["Queues"]
        ]
        statements = [s for policy in policies for s in policy["Properties"]["PolicyDocument"]["Statement"]]
        assert any(
            s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
            for s in statements
        ), spec.name


def test_rule_sends_exactly_the_topology_pattern_to_the_deal_sync_queue(dev: Synthesized) -> None:
    spec = dev.topology.rule("qbo-entity-to-deal-sync")
    bus_id, _ = dev.one("AWS::Events::EventBus", Name=dev.topology.event_bus.name)
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("deal-sync").name)
    dlq_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("deal-sync").dlq_name)
    _, rule = dev.one("AWS::Events::Rule", Name=spec.name)
    properties = rule["Properties"]
    assert properties["EventBusName"] == _ref(bus_id)
    assert properties["EventPattern"] == {
        "source": ["ledgerlink.qbo"],
        "detail-type": ["qbo.entity.changed"],
        "detail": {"payload": {"entity": ["Invoice", "Estimate", "Payment", "Customer"]}},
    }
    (target,) = properties["Targets"]
    assert target["Arn"] == _arn(queue_id)
    assert target["DeadLetterConfig"] == {"Arn": _arn(dlq_id)}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


def test_deal_synced_events_go_to_the_calendar_sync_queue_and_nothing_else_does(dev: Synthesized) -> None:
    # given the calendar rule, the bus and the calendar sync's queues in the template
    spec = dev.topology.rule("deal-synced-to-calendar-sync")
    bus_id, _ = dev.one("AWS::Events::EventBus", Name=dev.topology.event_bus.name)
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("calendar-sync").name)
    dlq_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("calendar-sync").dlq_name)
    _, rule = dev.one("AWS::Events::Rule", Name=spec.name)
    properties = rule["Properties"]
    # then the rule on the LedgerLink bus sends the deal sync's deal.synced events to that queue
    assert properties["EventBusName"] == _ref(bus_id)
    assert properties["EventPattern"] == {
        "source": ["ledgerlink.hubspot"],
        "detail-type": ["ledgerlink.deal.synced"],
    }
    (target,) = properties["Targets"]
    assert target["Arn"] == _arn(queue_id)
    # and what EventBridge cannot deliver lands in the same dead-letter queue as failed records
    assert target["DeadLetterConfig"] == {"Arn": _arn(dlq_id)}
    assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
    # and no other rule targets the calendar queue
    targeting = [
        r["Properties"]["Name"]
        for r in dev.of_type("AWS::Events::Rule").values()
        if any(t["Arn"] == _arn(queue_id) for t in r["Properties"]["Targets"])
    ]
    assert targeting == [spec.name]


def test_calendar_synced_and_followup_due_events_go_to_the_teams_invite_queue(dev: Synthesized) -> None:
    # given the Teams invite's two pattern rules, the bus and its queues in the template
    bus_id, _ = dev.one("AWS::Events::EventBus", Name=dev.topology.event_bus.name)
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("teams-invite").name)
    dlq_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("teams-invite").dlq_name)
    for key, pattern in (
        (
            "calendar-synced-to-teams-invite",
            {"source": ["ledgerlink.outlook"], "detail-type": ["ledgerlink.calendar.synced"]},
        ),
        (
            "followup-due-to-teams-invite",
            {"source": ["ledgerlink.teams"], "detail-type": ["ledgerlink.followup.due"]},
        ),
    ):
        _, rule = dev.one("AWS::Events::Rule", Name=dev.topology.rule(key).name)
        properties = rule["Properties"]
        # then each is on the LedgerLink bus with its pattern, sending to the queue, undeliverable
        # events to its dead-letter queue
        assert properties["EventBusName"] == _ref(bus_id), key
        assert properties["EventPattern"] == pattern, key
        assert "ScheduleExpression" not in properties, key
        (target,) = properties["Targets"]
        assert target["Arn"] == _arn(queue_id)
        assert target["DeadLetterConfig"] == {"Arn": _arn(dlq_id)}
        assert target["RetryPolicy"] == {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}


def test_the_follow_up_sweep_is_a_schedule_on_the_default_bus_into_the_teams_invite_queue(
    stages: dict[str, Synthesized],
) -> None:
    for synthesized in stages.values():
        topology = synthesized.topology
        queue_id, _ = synthesized.one("AWS::SQS::Queue", QueueName=topology.queue("teams-invite").name)
        dlq_id, _ = synthesized.one("AWS::SQS::Queue", QueueName=topology.queue("teams-invite").dlq_name)
        _, rule = synthesized.one("AWS::Events::Rule", Name=topology.rule("followup-sweep").name)
        properties = rule["Properties"]
        # then it runs on the stage's schedule, on the default bus (no EventBusName), with no pattern
        assert (
            properties["ScheduleExpression"] == topology.environment.followup_sweep_schedule == "rate(1 day)"
        )
        assert "EventBusName" not in properties and "EventPattern" not in properties
        assert properties["State"] == "ENABLED"
        # and sends its Scheduled Event to the Teams invite's queue, undeliverable ones to its DLQ
        (target,) = properties["Targets"]
        assert target["Arn"] == _arn(queue_id)
        assert target["DeadLetterConfig"] == {"Arn": _arn(dlq_id)}
        # and EventBridge may send to the queue for this rule only (the queue policy names its ARN)
        policies = [
            policy["Properties"]
            for policy in synthesized.of_type("AWS::SQS::QueuePolicy").values()
            if _ref(queue_id) in policy["Properties"]["Queues"]
        ]
        statements = [st for policy in policies for st in policy["PolicyDocument"]["Statement"]]
        allowed = [
            st
            for st in statements
            if st["Effect"] == "Allow" and st.get("Principal") == {"Service": "events.amazonaws.com"}
        ]
        rule_id, _ = synthesized.one("AWS::Events::Rule", Name=topology.rule("followup-sweep").name)
        assert any(st["Condition"]["ArnEquals"]["aws:SourceArn"] == _arn(rule_id) for st in allowed)
    # and the three rules are all that target the Teams invite's queue
    dev = stages["dev"]
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("teams-invite").name)
    targeting = sorted(
        r["Properties"]["Name"]
        for r in dev.of_type("AWS::Events::Rule").values()
        if any(t["Arn"] == _arn(queue_id) for t in r["Properties"]["Targets"])
    )
    assert targeting == [
        "ledgerlink-dev-calendar-synced-to-teams-invite",
        "ledgerlink-dev-followup-due-to-teams-invite",
        "ledgerlink-dev-followup-sweep",
    ]


@pytest.mark.parametrize(("stage", "days"), [("dev", 7), ("staging", 30), ("prod", 90)])
def test_the_bus_is_archived_for_the_stages_retention(
    stages: dict[str, Synthesized], stage: str, days: int
) -> None:
    synthesized = stages[stage]
    bus_id, _ = synthesized.one("AWS::Events::EventBus", Name=synthesized.topology.event_bus.name)
    _, archive = synthesized.one(
        "AWS::Events::Archive", ArchiveName=synthesized.topology.event_bus.archive_name
    )
    assert archive["Properties"]["RetentionDays"] == days
    assert archive["Properties"]["SourceArn"] == _arn(bus_id)
    assert archive["Properties"]["EventPattern"] == {"account": ["123456789012"]}


# --- functions ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", topo.STAGES)
def test_functions_get_exactly_the_topology_environment_and_settings(
    stages: dict[str, Synthesized], stage: str
) -> None:
    synthesized = stages[stage]
    for spec in synthesized.topology.functions:
        _, function = synthesized.one("AWS::Lambda::Function", FunctionName=spec.name)
        properties = function["Properties"]
        assert properties["Environment"] == {"Variables": dict(spec.environment)}
        assert properties["Handler"] == spec.handler
        assert properties["Runtime"] == "python3.14"
        assert properties["Architectures"] == ["arm64"]
        assert properties["MemorySize"] == spec.memory_mb
        assert properties["Timeout"] == spec.timeout_seconds
        assert properties["TracingConfig"] == {"Mode": "Active"}
        assert "ReservedConcurrentExecutions" not in properties
        log_group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
        log_group = synthesized.resources[log_group_id]["Properties"]
        assert log_group["LogGroupName"] == spec.log_group_name
        assert log_group["RetentionInDays"] == synthesized.topology.environment.log_retention_days


def test_prod_functions_call_the_production_qbo_host_and_dev_the_sandbox(
    dev: Synthesized, prod: Synthesized
) -> None:
    for synthesized, host in (
        (dev, "https://sandbox-quickbooks.api.intuit.com"),
        (prod, "https://quickbooks.api.intuit.com"),
    ):
        for function in synthesized.of_type("AWS::Lambda::Function").values():
            assert function["Properties"]["Environment"]["Variables"]["LEDGERLINK_QBO_BASE_URL"] == host


def test_every_log_group_keeps_logs_for_the_stages_retention(stages: dict[str, Synthesized]) -> None:
    for synthesized in stages.values():
        log_groups = synthesized.of_type("AWS::Logs::LogGroup").values()
        assert len(log_groups) == len(synthesized.topology.functions) + 1  # + API access logs
        for log_group in log_groups:
            assert (
                log_group["Properties"]["RetentionInDays"]
                == synthesized.topology.environment.log_retention_days
            )


def test_deal_sync_consumes_its_queue_in_batches_with_partial_failures(dev: Synthesized) -> None:
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("deal-sync").name)
    function_id, _ = dev.one(
        "AWS::Lambda::Function", FunctionName=dev.topology.function("hubspot_deal_sync").name
    )
    _, mapping = dev.one("AWS::Lambda::EventSourceMapping", EventSourceArn=_arn(queue_id))
    properties = {key: value for key, value in mapping["Properties"].items() if key != "Tags"}
    assert properties == {
        "EventSourceArn": _arn(queue_id),
        "FunctionName": _ref(function_id),
        "BatchSize": 100,
        "MaximumBatchingWindowInSeconds": 1,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 5},
    }


def test_calendar_sync_consumes_its_queue_in_small_quick_batches_with_partial_failures(
    dev: Synthesized,
) -> None:
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("calendar-sync").name)
    function_id, function = dev.one(
        "AWS::Lambda::Function", FunctionName=dev.topology.function("outlook_calendar_sync").name
    )
    _, mapping = dev.one("AWS::Lambda::EventSourceMapping", EventSourceArn=_arn(queue_id))
    properties = {key: value for key, value in mapping["Properties"].items() if key != "Tags"}
    assert properties == {
        "EventSourceArn": _arn(queue_id),
        "FunctionName": _ref(function_id),
        "BatchSize": 10,
        "MaximumBatchingWindowInSeconds": 0,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 4},
    }
    assert function["Properties"]["Handler"] == "outlook_calendar_sync.handler.lambda_handler"
    assert (function["Properties"]["MemorySize"], function["Properties"]["Timeout"]) == (512, 60)


def test_teams_invite_consumes_its_queue_without_a_batching_window_with_partial_failures(
    dev: Synthesized,
) -> None:
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("teams-invite").name)
    function_id, function = dev.one(
        "AWS::Lambda::Function", FunctionName=dev.topology.function("teams_invite").name
    )
    _, mapping = dev.one("AWS::Lambda::EventSourceMapping", EventSourceArn=_arn(queue_id))
    properties = {key: value for key, value in mapping["Properties"].items() if key != "Tags"}
    assert properties == {
        "EventSourceArn": _arn(queue_id),
        "FunctionName": _ref(function_id),
        "BatchSize": 10,
        "MaximumBatchingWindowInSeconds": 0,
        "FunctionResponseTypes": ["ReportBatchItemFailures"],
        "ScalingConfig": {"MaximumConcurrency": 4},
    }
    assert function["Properties"]["Handler"] == "teams_invite.handler.lambda_handler"
    assert (function["Properties"]["MemorySize"], function["Properties"]["Timeout"]) == (512, 60)


def _policy_statements(synthesized: Synthesized, function_key: str) -> list[dict[str, Any]]:
    function_name = synthesized.topology.function(function_key).name
    _, function = synthesized.one("AWS::Lambda::Function", FunctionName=function_name)
    role_id = function["Properties"]["Role"]["Fn::GetAtt"][0]
    policies = [
        policy
        for policy in synthesized.of_type("AWS::IAM::Policy").values()
        if _ref(role_id) in policy["Properties"]["Roles"]
    ]
    return [
        statement for policy in policies for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _actions(statement: dict[str, Any]) -> list[str]:
    actions = statement["Action"]
    return [actions] if isinstance(actions, str) else list(actions)


def _resources_of(statements: list[dict[str, Any]], action: str) -> list[str]:
    return [
        json.dumps(statement["Resource"], sort_keys=True)
        for statement in statements
        if action in _actions(statement)
    ]


def test_roles_have_no_managed_policies_and_wildcards_only_where_acknowledged(dev: Synthesized) -> None:
    for role in dev.of_type("AWS::IAM::Role").values():
        assert "ManagedPolicyArns" not in role["Properties"]
    for key in ("qbo_ingest", "hubspot_ingest", "hubspot_deal_sync", "outlook_calendar_sync", "teams_invite"):
        for statement in _policy_statements(dev, key):
            if statement["Resource"] == "*":
                assert _actions(statement) == ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]


def test_ingest_reads_only_its_verifier_secret_and_writes_raw_objects_and_events(dev: Synthesized) -> None:
    statements = _policy_statements(dev, "qbo_ingest")
    secret_ids = {
        spec.key: dev.one("AWS::SecretsManager::Secret", Name=spec.name)[0] for spec in dev.topology.secrets
    }
    raw_id, _ = dev.one("AWS::S3::Bucket", BucketName=dev.topology.bucket.name)
    bus_id, _ = dev.one("AWS::Events::EventBus", Name=dev.topology.event_bus.name)
    assert _resources_of(statements, "secretsmanager:GetSecretValue") == [
        json.dumps(_ref(secret_ids["qbo-webhook"]))
    ]
    assert _resources_of(statements, "secretsmanager:PutSecretValue") == []
    assert _resources_of(statements, "s3:PutObject") == [
        json.dumps({"Fn::Join": ["", [_arn(raw_id), "/*"]]}, sort_keys=True)
    ]
    assert _resources_of(statements, "s3:GetObject") == []
    assert _resources_of(statements, "events:PutEvents") == [json.dumps(_arn(bus_id))]
    table_resources = " ".join(_resources_of(statements, "dynamodb:PutItem"))
    idempotency_id, _ = dev.one("AWS::DynamoDB::Table", TableName=dev.topology.table("idempotency").name)
    links_id, _ = dev.one("AWS::DynamoDB::Table", TableName=dev.topology.table("links").name)
    assert idempotency_id in table_resources and links_id not in table_resources


def test_deal_sync_may_write_back_only_the_rotating_qbo_oauth_secret(dev: Synthesized) -> None:
    statements = _policy_statements(dev, "hubspot_deal_sync")
    oauth_id, _ = dev.one("AWS::SecretsManager::Secret", Name=dev.topology.secret("main:qbo-oauth").name)
    assert _resources_of(statements, "secretsmanager:PutSecretValue") == [json.dumps(_ref(oauth_id))]
    assert _resources_of(statements, "s3:PutObject") == []
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("deal-sync").name)
    assert _resources_of(statements, "sqs:ReceiveMessage") == [json.dumps(_arn(queue_id))]


def test_deal_sync_may_send_only_to_its_own_dead_letter_queue(dev: Synthesized) -> None:
    # given the deal sync's and the ingest function's policies, and the deal-sync dead-letter queue
    statements = _policy_statements(dev, "hubspot_deal_sync")
    dlq_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("deal-sync").dlq_name)
    # then the deal sync may send messages to that queue and nowhere else, and look its URL up
    assert _resources_of(statements, "sqs:SendMessage") == [json.dumps(_arn(dlq_id))]
    assert json.dumps(_arn(dlq_id)) in _resources_of(statements, "sqs:GetQueueUrl")
    assert _resources_of(statements, "sqs:ReceiveMessage") != [json.dumps(_arn(dlq_id))]
    # and the ingest function may send to no queue
    assert _resources_of(_policy_statements(dev, "qbo_ingest"), "sqs:SendMessage") == []


def test_calendar_sync_reads_secrets_writes_none_and_sends_only_to_its_own_dead_letter_queue(
    dev: Synthesized,
) -> None:
    # given the calendar sync's policies
    statements = _policy_statements(dev, "outlook_calendar_sync")
    hubspot_id, _ = dev.one("AWS::SecretsManager::Secret", Name=dev.topology.secret("main:hubspot").name)
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("calendar-sync").name)
    dlq_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("calendar-sync").dlq_name)
    bus_id, _ = dev.one("AWS::Events::EventBus", Name=dev.topology.event_bus.name)
    # then it reads the connection's HubSpot secret (dev's connection has no Microsoft tenant) and
    # writes no secret, no object
    assert _resources_of(statements, "secretsmanager:GetSecretValue") == [json.dumps(_ref(hubspot_id))]
    assert _resources_of(statements, "secretsmanager:PutSecretValue") == []
    assert _resources_of(statements, "s3:PutObject") == _resources_of(statements, "s3:GetObject") == []
    # and consumes its own queue, sends only to its dead-letter queue, and puts events on the bus
    assert _resources_of(statements, "sqs:ReceiveMessage") == [json.dumps(_arn(queue_id))]
    assert _resources_of(statements, "sqs:SendMessage") == [json.dumps(_arn(dlq_id))]
    assert _resources_of(statements, "events:PutEvents") == [json.dumps(_arn(bus_id))]
    # and reads/writes the three tables
    table_resources = " ".join(_resources_of(statements, "dynamodb:PutItem"))
    for key in ("idempotency", "links", "vendor-state"):
        table_id, _ = dev.one("AWS::DynamoDB::Table", TableName=dev.topology.table(key).name)
        assert table_id in table_resources, key


def test_teams_invite_reads_secrets_writes_none_queries_only_the_due_date_index_and_publishes(
    dev: Synthesized,
) -> None:
    # given the Teams invite's policies
    statements = _policy_statements(dev, "teams_invite")
    hubspot_id, _ = dev.one("AWS::SecretsManager::Secret", Name=dev.topology.secret("main:hubspot").name)
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("teams-invite").name)
    dlq_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("teams-invite").dlq_name)
    bus_id, _ = dev.one("AWS::Events::EventBus", Name=dev.topology.event_bus.name)
    links_id, _ = dev.one("AWS::DynamoDB::Table", TableName=dev.topology.table("links").name)
    # then it reads the connection's HubSpot secret and writes no secret, no object
    assert _resources_of(statements, "secretsmanager:GetSecretValue") == [json.dumps(_ref(hubspot_id))]
    assert _resources_of(statements, "secretsmanager:PutSecretValue") == []
    assert _resources_of(statements, "s3:PutObject") == _resources_of(statements, "s3:GetObject") == []
    # and consumes its own queue, sends only to its dead-letter queue, puts events (followup.due) on the bus
    assert _resources_of(statements, "sqs:ReceiveMessage") == [json.dumps(_arn(queue_id))]
    assert _resources_of(statements, "sqs:SendMessage") == [json.dumps(_arn(dlq_id))]
    assert _resources_of(statements, "events:PutEvents") == [json.dumps(_arn(bus_id))]
    # and reads/writes the three tables, and may query the links table's due-date index, by name only
    table_resources = " ".join(_resources_of(statements, "dynamodb:PutItem"))
    for key in ("idempotency", "links", "vendor-state"):
        table_id, _ = dev.one("AWS::DynamoDB::Table", TableName=dev.topology.table(key).name)
        assert table_id in table_resources, key
    index_arn = {"Fn::Join": ["", [_arn(links_id), "/index/owed-by-due-date"]]}
    index_statements = [st for st in statements if "/index/" in json.dumps(st["Resource"])]
    assert index_statements == [{"Action": "dynamodb:Query", "Effect": "Allow", "Resource": index_arn}]


def test_only_the_teams_invite_may_read_an_index(dev: Synthesized) -> None:
    # the other functions' table grants name the tables only (CDK would add <table>/index/* otherwise)
    for key in ("qbo_ingest", "hubspot_ingest", "hubspot_deal_sync", "outlook_calendar_sync"):
        assert all("/index/" not in json.dumps(st["Resource"]) for st in _policy_statements(dev, key)), key


def test_with_a_microsoft_tenant_only_the_calendar_sync_and_the_teams_invite_read_its_graph_secret(
    lambda_code_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given dev's configuration file with a second connection that has a Microsoft tenant
    config_dir = tmp_path / "config"
    config_dir.mkdir()
    (config_dir / "dev.toml").write_text(
        (topo.CONFIG_DIR / "dev.toml").read_text(encoding="utf-8")
        + """
[[connections]]
name = "office"
qbo = { realm_id = "1111222233334444" }
hubspot = { portal_id = "55556666" }
country = "US"

[connections.microsoft]
tenant_id = "0b7e5c1a-2d3f-4e6a-8b9c-1d2e3f4a5b6c"
accounts_receivable_mailbox = "ar@example.com"
""",
        encoding="utf-8",
    )
    monkeypatch.setattr(topo, "CONFIG_DIR", config_dir)
    # when dev is synthesised with cdk-nag (synth raises on an unacknowledged finding)
    synthesized = synthesize("dev", tmp_path / "out", lambda_code_dir)
    graph_id, _ = synthesized.one(
        "AWS::SecretsManager::Secret", Name="ledgerlink/dev/connections/office/graph/app"
    )
    # then the calendar sync and the Teams invite read it, beside both connections' HubSpot secrets, and
    # write no secret
    hubspot_ids = [
        synthesized.one("AWS::SecretsManager::Secret", Name=synthesized.topology.secret(key).name)[0]
        for key in ("main:hubspot", "office:hubspot")
    ]
    for key in ("outlook_calendar_sync", "teams_invite"):
        reader = _policy_statements(synthesized, key)
        assert sorted(_resources_of(reader, "secretsmanager:GetSecretValue")) == sorted(
            json.dumps(_ref(logical_id)) for logical_id in [*hubspot_ids, graph_id]
        ), key
        assert _resources_of(reader, "secretsmanager:PutSecretValue") == [], key
    # and neither the deal sync nor the ingest functions can read it
    for key in ("hubspot_deal_sync", "qbo_ingest", "hubspot_ingest"):
        assert json.dumps(_ref(graph_id)) not in _resources_of(
            _policy_statements(synthesized, key), "secretsmanager:GetSecretValue"
        ), key


# --- secrets -----------------------------------------------------------------------------------------


def test_secrets_exist_by_name_with_generated_placeholders_never_values(
    stages: dict[str, Synthesized],
) -> None:
    for synthesized in stages.values():
        secrets = synthesized.of_type("AWS::SecretsManager::Secret")
        assert sorted(secret["Properties"]["Name"] for secret in secrets.values()) == sorted(
            spec.name for spec in synthesized.topology.secrets
        )
        for secret in secrets.values():
            assert "SecretString" not in secret["Properties"]
            generated = secret["Properties"]["GenerateSecretString"]
            assert json.loads(generated["SecretStringTemplate"]) == {"configured": False}
            assert generated["GenerateStringKey"] == "placeholder"


# --- API ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stage", "rate", "burst"), [("dev", 100, 200), ("staging", 100, 200), ("prod", 200, 400)]
)
def test_webhook_route_reaches_ingest_with_payload_v2_throttled_and_logged(
    stages: dict[str, Synthesized], stage: str, rate: int, burst: int
) -> None:
    synthesized = stages[stage]
    api_id, api = synthesized.one("AWS::ApiGatewayV2::Api", Name=synthesized.topology.api.name)
    assert api["Properties"]["ProtocolType"] == "HTTP"
    _, route = synthesized.one("AWS::ApiGatewayV2::Route", RouteKey="POST /v1/webhooks/qbo")
    integration_id = route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]
    integration = synthesized.resources[integration_id]["Properties"]
    function_id, _ = synthesized.one(
        "AWS::Lambda::Function", FunctionName=synthesized.topology.function("qbo_ingest").name
    )
    assert integration["IntegrationType"] == "AWS_PROXY"
    assert integration["PayloadFormatVersion"] == "2.0"
    assert integration["IntegrationUri"] == _arn(function_id)
    _, stage_resource = synthesized.one("AWS::ApiGatewayV2::Stage", ApiId=_ref(api_id))
    properties = stage_resource["Properties"]
    assert properties["StageName"] == "$default" and properties["AutoDeploy"] is True
    assert properties["DefaultRouteSettings"] == {"ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst}
    access_log_id, _ = synthesized.one(
        "AWS::Logs::LogGroup", LogGroupName=synthesized.topology.api.access_log_group_name
    )
    assert properties["AccessLogSettings"]["DestinationArn"] == _arn(access_log_id)
    log_format = json.loads(properties["AccessLogSettings"]["Format"])
    assert log_format["requestId"] == "$context.requestId" and log_format["status"] == "$context.status"


# --- monitoring --------------------------------------------------------------------------------------


def _alarm_on(synthesized: Synthesized, metric_name: str, dimension_value: Any) -> dict[str, Any]:
    matches = [
        alarm["Properties"]
        for alarm in synthesized.of_type("AWS::CloudWatch::Alarm").values()
        # Metric math alarms (rejected deliveries, stalled flows) have no MetricName of their own.
        if alarm["Properties"].get("MetricName") == metric_name
        and any(d["Value"] == dimension_value for d in alarm["Properties"]["Dimensions"])
    ]
    assert len(matches) == 1, (metric_name, dimension_value)
    return matches[0]


def test_alarms_watch_dlq_depth_function_errors_and_api_5xx_and_notify_the_topic(dev: Synthesized) -> None:
    topic_id, topic = dev.one("AWS::SNS::Topic", TopicName=dev.topology.monitoring.topic_name)
    assert "KmsMasterKeyId" in topic["Properties"]
    dlq_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("deal-sync").dlq_name)
    api_id, _ = dev.one("AWS::ApiGatewayV2::Api", Name=dev.topology.api.name)
    alarms = [
        _alarm_on(dev, "ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": [dlq_id, "QueueName"]}),
        _alarm_on(dev, "5xx", _ref(api_id)),
        *(
            _alarm_on(dev, "Errors", _ref(dev.one("AWS::Lambda::Function", FunctionName=spec.name)[0]))
            for spec in dev.topology.functions
        ),
    ]
    for alarm in alarms:
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["AlarmActions"] == [_ref(topic_id)]
        assert alarm["TreatMissingData"] == "notBreaching"
    dev.one("AWS::CloudWatch::Dashboard", DashboardName=dev.topology.monitoring.dashboard_name)


def test_the_functions_own_metrics_that_need_a_human_are_alarmed(dev: Synthesized) -> None:
    # given the alarms the topology declares on the functions' metrics
    topic_id, _ = dev.one("AWS::SNS::Topic", TopicName=dev.topology.monitoring.topic_name)
    assert dev.topology.monitoring.metric_alarms
    for spec in dev.topology.monitoring.metric_alarms:
        service = dev.topology.function(spec.function).service
        # then each is one CloudWatch alarm on the metric where Powertools puts it, summed per period
        alarm = _alarm_on(dev, spec.metric_name, service)
        assert alarm["Namespace"] == topo.METRICS_NAMESPACE
        assert alarm["Dimensions"] == [{"Name": topo.METRICS_SERVICE_DIMENSION, "Value": service}]
        assert alarm["Statistic"] == "Sum" and alarm["Period"] == dev.topology.monitoring.period_seconds
        assert alarm["Threshold"] == 1
        assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == alarm["OKActions"] == [_ref(topic_id)]
        assert alarm["AlarmName"] == f"ledgerlink-dev-{spec.key}"
        assert alarm["AlarmDescription"] == spec.description


def test_the_calendar_flow_has_its_own_queue_function_and_metric_alarms(dev: Synthesized) -> None:
    # given the calendar sync's queues and function in the template
    topic_id, _ = dev.one("AWS::SNS::Topic", TopicName=dev.topology.monitoring.topic_name)
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("calendar-sync").name)
    dlq_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("calendar-sync").dlq_name)
    function_id, _ = dev.one(
        "AWS::Lambda::Function", FunctionName=dev.topology.function("outlook_calendar_sync").name
    )
    # then a message in its dead-letter queue, a stuck message in its queue and any function error alarm
    dlq_alarm = _alarm_on(dev, "ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": [dlq_id, "QueueName"]})
    stuck = _alarm_on(dev, "ApproximateAgeOfOldestMessage", {"Fn::GetAtt": [queue_id, "QueueName"]})
    errors = _alarm_on(dev, "Errors", _ref(function_id))
    assert dlq_alarm["AlarmName"] == "ledgerlink-dev-calendar-sync-dlq-not-empty"
    assert (dlq_alarm["Threshold"], stuck["Threshold"], errors["Threshold"]) == (1, 15 * 60, 1)
    assert "ledgerlink-dev-calendar-sync-dlq" in dlq_alarm["AlarmDescription"]
    # and so do its own metrics that need a human, on its service's dimension
    for metric_name, alarm_name in (
        ("EventsFailedPermanently", "ledgerlink-dev-calendar-sync-failed-permanently"),
        ("UnexpectedErrors", "ledgerlink-dev-calendar-sync-unexpected-error"),
        ("GraphCredentialsRejected", "ledgerlink-dev-graph-credentials-rejected"),
        ("DeadLetterSendFailed", "ledgerlink-dev-calendar-sync-dead-letter-send-failed"),
    ):
        alarm = _alarm_on(dev, metric_name, "outlook-calendar-sync")
        assert alarm["AlarmName"] == alarm_name
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "outlook-calendar-sync"}]
    for alarm in (dlq_alarm, stuck, errors):
        assert alarm["AlarmActions"] == alarm["OKActions"] == [_ref(topic_id)]


def test_the_teams_invite_has_its_own_queue_function_and_metric_alarms(dev: Synthesized) -> None:
    # given the Teams invite's queues and function in the template
    topic_id, _ = dev.one("AWS::SNS::Topic", TopicName=dev.topology.monitoring.topic_name)
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("teams-invite").name)
    dlq_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("teams-invite").dlq_name)
    function_id, _ = dev.one("AWS::Lambda::Function", FunctionName=dev.topology.function("teams_invite").name)
    # then a message in its dead-letter queue, a stuck message in its queue and any function error alarm
    dlq_alarm = _alarm_on(dev, "ApproximateNumberOfMessagesVisible", {"Fn::GetAtt": [dlq_id, "QueueName"]})
    stuck = _alarm_on(dev, "ApproximateAgeOfOldestMessage", {"Fn::GetAtt": [queue_id, "QueueName"]})
    errors = _alarm_on(dev, "Errors", _ref(function_id))
    assert (dlq_alarm["AlarmName"], stuck["AlarmName"], errors["AlarmName"]) == (
        "ledgerlink-dev-teams-invite-dlq-not-empty",
        "ledgerlink-dev-teams-invite-queue-stuck",
        "ledgerlink-dev-teams-invite-errors",
    )
    # and so do its own metrics that need a human, on its service's dimension
    for metric_name, alarm_name in (
        ("EventsFailedPermanently", "ledgerlink-dev-teams-invite-failed-permanently"),
        ("UnexpectedErrors", "ledgerlink-dev-teams-invite-unexpected-error"),
        ("GraphCredentialsRejected", "ledgerlink-dev-teams-invite-graph-credentials-rejected"),
        ("DeadLetterSendFailed", "ledgerlink-dev-teams-invite-dead-letter-send-failed"),
        ("TeamsMeetingsNotOnline", "ledgerlink-dev-teams-invite-meetings-not-online"),
    ):
        alarm = _alarm_on(dev, metric_name, "teams-invite")
        assert alarm["AlarmName"] == alarm_name
        assert alarm["Dimensions"] == [{"Name": "service", "Value": "teams-invite"}]
    for alarm in (dlq_alarm, stuck, errors):
        assert alarm["AlarmActions"] == alarm["OKActions"] == [_ref(topic_id)]


def _dashboard_widgets(synthesized: Synthesized) -> list[dict[str, Any]]:
    """The dashboard's widgets, with each reference in the body (a Fn::Join) replaced by its logical id."""
    _, dashboard = synthesized.one(
        "AWS::CloudWatch::Dashboard", DashboardName=synthesized.topology.monitoring.dashboard_name
    )
    parts = dashboard["Properties"]["DashboardBody"]["Fn::Join"][1]
    body = "".join(
        part if isinstance(part, str) else f"<{part.get('Ref') or part['Fn::GetAtt'][0]}>" for part in parts
    )
    widgets: list[dict[str, Any]] = json.loads(body)["widgets"]
    return widgets


def test_the_dashboard_graphs_the_calendar_function_its_queues_and_its_metrics(dev: Synthesized) -> None:
    # given the dashboard's widgets
    widgets = {widget["properties"].get("title"): widget["properties"] for widget in _dashboard_widgets(dev)}
    name = dev.topology.function("outlook_calendar_sync").name
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("calendar-sync").name)
    dlq_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("calendar-sync").dlq_name)
    # then the calendar sync has its invocations/errors/throttles/duration graph
    assert name in widgets
    metrics = json.dumps(widgets[name]["metrics"])
    assert all(metric in metrics for metric in ("Invocations", "Errors", "Throttles", "Duration"))
    # and the queue graph shows its queue's and its dead-letter queue's depth
    queues = json.dumps(widgets["Queues"]["metrics"])
    assert f"<{queue_id}>" in queues and f"<{dlq_id}>" in queues
    # and its own metrics are graphed under its service, the alarmed ones among them
    events = json.dumps(widgets[f"{name}: events"]["metrics"])
    assert "outlook-calendar-sync" in events
    for metric in ("EventsFailedPermanently", "GraphCredentialsRejected", "EventsDeadLettered"):
        assert metric in events, metric
    # and its alarms are on the alarm status widget
    alarms = json.dumps(widgets["Alarms"]["alarms"])
    assert "calendarsyncdlqnotempty" in alarms.lower().replace("-", "")


def test_the_dashboard_graphs_the_teams_invite_its_queues_and_its_metrics(dev: Synthesized) -> None:
    widgets = {widget["properties"].get("title"): widget["properties"] for widget in _dashboard_widgets(dev)}
    name = dev.topology.function("teams_invite").name
    queue_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("teams-invite").name)
    dlq_id, _ = dev.one("AWS::SQS::Queue", QueueName=dev.topology.queue("teams-invite").dlq_name)
    # the function's invocations/errors/throttles/duration
    metrics = json.dumps(widgets[name]["metrics"])
    assert all(metric in metrics for metric in ("Invocations", "Errors", "Throttles", "Duration"))
    # its queue and dead-letter queue on the queue graph
    queues = json.dumps(widgets["Queues"]["metrics"])
    assert f"<{queue_id}>" in queues and f"<{dlq_id}>" in queues
    # its own metrics under its service, the alarmed ones among them
    events = json.dumps(widgets[f"{name}: events"]["metrics"])
    assert "teams-invite" in events
    for metric in (
        "EventsReceived",
        "EventsDeadLettered",
        "TeamsMeetingsNotOnline",
        "GraphCredentialsRejected",
    ):
        assert metric in events, metric
    # and its alarms on the alarm status widget
    alarms = json.dumps(widgets["Alarms"]["alarms"]).lower().replace("-", "")
    assert "teamsinvitedlqnotempty" in alarms and "teamsinvitemeetingsnotonline" in alarms


def _alarm_named(synthesized: Synthesized, key: str) -> dict[str, Any]:
    _, alarm = synthesized.one("AWS::CloudWatch::Alarm", AlarmName=topo.resource_name(synthesized.stage, key))
    properties: dict[str, Any] = alarm["Properties"]
    return properties


def _math(alarm: dict[str, Any]) -> tuple[str, dict[str, dict[str, Any]]]:
    """A metric math alarm's one returned expression, and its metrics by id."""
    (expression,) = [query for query in alarm["Metrics"] if query.get("ReturnData", True)]
    metrics = {query["Id"]: query["MetricStat"] for query in alarm["Metrics"] if "MetricStat" in query}
    return expression["Expression"], metrics


def test_rejected_deliveries_alarm_on_the_refused_share_of_each_ingests_deliveries(dev: Synthesized) -> None:
    # given the rejected-delivery alarms the topology declares, one per webhook ingest
    topic_id, _ = dev.one("AWS::SNS::Topic", TopicName=dev.topology.monitoring.topic_name)
    declared = dev.topology.monitoring.rejected_deliveries_alarms
    assert {spec.function for spec in declared} == {"qbo_ingest", "hubspot_ingest"}
    for spec in declared:
        alarm = _alarm_named(dev, spec.key)
        expression, metrics = _math(alarm)
        # then the alarm fires when enough deliveries were refused and they are a large enough share
        assert expression == (
            f"IF(rejected >= {spec.min_rejected} AND 100 * rejected / received >= {spec.rate_percent}, 1, 0)"
        )
        # of the ingest's own counts, on the series with the service dimension alone (which the ingest
        # emits besides the one with reason and status), summed over the spec's period
        service = dev.topology.function(spec.function).service
        for metric_id, name in (("rejected", "DeliveriesRejected"), ("received", "DeliveriesReceived")):
            stat = metrics[metric_id]
            assert stat["Metric"]["MetricName"] == name
            assert stat["Metric"]["Namespace"] == topo.METRICS_NAMESPACE
            assert stat["Metric"]["Dimensions"] == [{"Name": "service", "Value": service}]
            assert (stat["Stat"], stat["Period"]) == ("Sum", spec.period_seconds)
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (1, "GreaterThanOrEqualToThreshold")
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmActions"] == alarm["OKActions"] == [_ref(topic_id)]
        assert alarm["AlarmDescription"] == spec.description


def test_a_flow_that_processes_nothing_while_its_upstream_publishes_is_alarmed(dev: Synthesized) -> None:
    # given the stalled-flow alarms the topology declares
    declared = dev.topology.monitoring.stalled_flows
    assert {spec.key for spec in declared} >= {"deal-sync-stalled", "calendar-sync-stalled"}
    for spec in declared:
        alarm = _alarm_named(dev, spec.key)
        expression, metrics = _math(alarm)
        # then it fires when the processed count (missing data: zero) is zero and the upstream sum is not
        upstream = " + ".join(f"FILL(upstream{index}, 0)" for index in range(len(spec.upstream)))
        assert expression == f"IF(FILL(processed, 0) == 0 AND ({upstream}) > 0, 1, 0)"
        refs = {"processed": spec.processed} | {
            f"upstream{index}": ref for index, ref in enumerate(spec.upstream)
        }
        for metric_id, ref in refs.items():
            metric = metrics[metric_id]["Metric"]
            assert metric["MetricName"] == ref.metric_name
            assert metric["Dimensions"] == [
                {"Name": "service", "Value": dev.topology.function(ref.function).service}
            ]
            assert metrics[metric_id]["Period"] == spec.period_seconds == 6 * 3600
        assert alarm["TreatMissingData"] == "notBreaching"
        assert alarm["AlarmDescription"] == spec.description


def test_the_reconciliation_is_a_daily_schedule_into_its_own_queue_and_function(
    stages: dict[str, Synthesized],
) -> None:
    for synthesized in stages.values():
        topology = synthesized.topology
        queue_id, _ = synthesized.one("AWS::SQS::Queue", QueueName=topology.queue("qbo-reconcile").name)
        dlq_id, _ = synthesized.one("AWS::SQS::Queue", QueueName=topology.queue("qbo-reconcile").dlq_name)
        _, rule = synthesized.one("AWS::Events::Rule", Name=topology.rule(topo.RECONCILE_RULE).name)
        properties = rule["Properties"]
        # then it runs on the stage's schedule (daily), on the default bus, with no pattern
        assert properties["ScheduleExpression"] == topology.environment.reconcile_schedule == "rate(1 day)"
        assert "EventBusName" not in properties and "EventPattern" not in properties
        (target,) = properties["Targets"]
        assert target["Arn"] == _arn(queue_id)
        assert target["DeadLetterConfig"] == {"Arn": _arn(dlq_id)}
        # and the queue feeds the reconcile function, which may run for Lambda's 15 minutes
        function_id, function = synthesized.one(
            "AWS::Lambda::Function", FunctionName=topology.function("qbo_reconcile").name
        )
        assert function["Properties"]["Handler"] == "qbo_reconcile.handler.lambda_handler"
        assert function["Properties"]["Timeout"] == 900
        _, mapping = synthesized.one("AWS::Lambda::EventSourceMapping", FunctionName=_ref(function_id))
        assert mapping["Properties"]["EventSourceArn"] == _arn(queue_id)


def test_the_reconciliation_reads_both_systems_and_writes_nothing_but_vendor_state(dev: Synthesized) -> None:
    # given the reconcile function's policies
    statements = _policy_statements(dev, "qbo_reconcile")
    oauth_id, _ = dev.one("AWS::SecretsManager::Secret", Name=dev.topology.secret("main:qbo-oauth").name)
    hubspot_id, _ = dev.one("AWS::SecretsManager::Secret", Name=dev.topology.secret("main:hubspot").name)
    links_id, _ = dev.one("AWS::DynamoDB::Table", TableName=dev.topology.table("links").name)
    state_id, _ = dev.one("AWS::DynamoDB::Table", TableName=dev.topology.table("vendor-state").name)
    idempotency_id, _ = dev.one("AWS::DynamoDB::Table", TableName=dev.topology.table("idempotency").name)
    # then it reads each connection's QBO and HubSpot secrets and writes back only the rotating QBO one
    assert sorted(_resources_of(statements, "secretsmanager:GetSecretValue")) == sorted(
        json.dumps(_ref(each)) for each in (oauth_id, hubspot_id)
    )
    assert _resources_of(statements, "secretsmanager:PutSecretValue") == [json.dumps(_ref(oauth_id))]
    # and reads the crosswalk, writes only the vendors' shared limits, never the idempotency table
    read = " ".join(_resources_of(statements, "dynamodb:BatchGetItem"))
    written = " ".join(_resources_of(statements, "dynamodb:PutItem"))
    assert links_id in read and state_id in written
    assert links_id not in written and idempotency_id not in read + written
    # and publishes nothing, writes no object, sends to no queue
    for action in ("events:PutEvents", "s3:PutObject", "sqs:SendMessage"):
        assert _resources_of(statements, action) == [], action


def test_drift_found_by_the_reconciliation_is_alarmed_with_what_to_run(dev: Synthesized) -> None:
    alarm = _alarm_on(dev, "DriftRecords", dev.topology.function("qbo_reconcile").service)
    assert alarm["AlarmName"] == "ledgerlink-dev-qbo-reconcile-drift"
    assert alarm["Threshold"] == 1
    assert "ledgerlink reconcile --connection NAME" in alarm["AlarmDescription"]
    assert "--repair" in alarm["AlarmDescription"]


def test_the_dashboard_graphs_the_refused_delivery_rate_and_the_drift(dev: Synthesized) -> None:
    widgets = {widget["properties"].get("title"): widget["properties"] for widget in _dashboard_widgets(dev)}
    refused = json.dumps(widgets["Webhook deliveries refused (%)"]["metrics"])
    assert "100 * FILL(rejected_qbo_ingest, 0) / received_qbo_ingest" in refused
    assert "qbo-ingest" in refused and "hubspot-ingest" in refused
    drift = json.dumps(widgets[f"{dev.topology.function('qbo_reconcile').name}: drifted records"]["metrics"])
    assert "DriftRecords" in drift and "ReconcileNotReached" in drift
    assert '"connection"' in drift and '"main"' in drift


def test_alarm_email_is_subscribed_only_where_configured(dev: Synthesized, prod: Synthesized) -> None:
    assert dev.of_type("AWS::SNS::Subscription") == {}
    _, subscription = prod.one("AWS::SNS::Subscription", Protocol="email")
    assert subscription["Properties"]["Endpoint"] == PROD_ALARM_EMAIL


# --- the app entry point -----------------------------------------------------------------------------


def test_the_app_refuses_an_unknown_environment_before_building_anything(tmp_path: Path) -> None:
    with pytest.raises(
        topo.TopologyError, match=r"unknown environment 'qa': pass -c env=<dev\|prod\|staging>"
    ):
        build_app(outdir=tmp_path, context={"env": "qa"}, code_dir=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_each_acknowledgement_silences_a_real_finding_and_nothing_else_is_found(
    lambda_code_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given the construct modules with their acknowledgements recorded instead of applied
    withheld: set[str] = set()

    def withhold(construct: object, rule_id: str, reason: str) -> None:
        withheld.add(rule_id)

    for module in (infra.secret_store, infra.compute, infra.api):
        monkeypatch.setattr(module, "acknowledge", withhold)
    # when dev is synthesised with cdk-nag
    app, _ = build_app(outdir=tmp_path, context={"env": "dev"}, code_dir=lambda_code_dir)
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        app.synth()
    # then cdk-nag reports exactly the withheld findings: each acknowledgement is needed, none is missing
    report = json.loads((tmp_path / "validation-report.json").read_text(encoding="utf-8"))
    reported = {v["ruleName"] for plugin in report["pluginReports"] for v in plugin["violations"]}
    assert reported == withheld
    assert {"AwsSolutions-APIG4", "AwsSolutions-SMG4", "AwsSolutions-IAM5[Resource::*]"} <= reported


def test_a_function_whose_handler_is_not_in_the_asset_is_flagged_at_synth(tmp_path: Path) -> None:
    # given a code folder holding only the ingest handler
    code_dir = tmp_path / "code"
    (code_dir / "qbo_ingest").mkdir(parents=True)
    (code_dir / "qbo_ingest" / "handler.py").write_text(
        "def lambda_handler(event, context):\n    return None\n"
    )
    # when the stack is built from it
    _, stack = build_app(outdir=tmp_path / "out", context={"env": "dev"}, code_dir=code_dir)
    # then the functions without a handler (and only they) carry a warning naming the missing module
    warnings = {
        key: [entry.data for entry in function.node.metadata if entry.type == "aws:cdk:warning"]
        for key, function in stack.functions.functions.items()
    }
    assert warnings["qbo_ingest"] == []
    for key in ("hubspot_ingest", "hubspot_deal_sync", "outlook_calendar_sync", "teams_invite"):
        assert len(warnings[key]) == 1, key
        assert f"{key}/handler.py is not in the code asset yet" in str(warnings[key][0])


def test_the_stack_outputs_the_webhook_url_to_register_with_intuit(prod: Synthesized) -> None:
    api_id, _ = prod.one("AWS::ApiGatewayV2::Api", Name=prod.topology.api.name)
    outputs = prod.template.to_json()["Outputs"]
    parts = outputs["WebhookUrlPostV1WebhooksQbo"]["Value"]["Fn::Join"][1]
    assert parts[0] == "https://" and parts[1] == _ref(api_id) and parts[-1] == "/v1/webhooks/qbo"
    dlq_id, _ = prod.one("AWS::SQS::Queue", QueueName=prod.topology.queue("deal-sync").dlq_name)
    assert outputs["DeadLetterQueueUrlDealSync"]["Value"] == _ref(dlq_id)
    calendar_dlq_id, _ = prod.one("AWS::SQS::Queue", QueueName=prod.topology.queue("calendar-sync").dlq_name)
    assert outputs["DeadLetterQueueUrlCalendarSync"]["Value"] == _ref(calendar_dlq_id)
    teams_dlq_id, _ = prod.one("AWS::SQS::Queue", QueueName=prod.topology.queue("teams-invite").dlq_name)
    assert outputs["DeadLetterQueueUrlTeamsInvite"]["Value"] == _ref(teams_dlq_id)


def test_the_hubspot_route_reaches_the_hubspot_ingest_and_its_url_is_an_output(prod: Synthesized) -> None:
    # given the prod template
    api_id, _ = prod.one("AWS::ApiGatewayV2::Api", Name=prod.topology.api.name)
    _, route = prod.one("AWS::ApiGatewayV2::Route", RouteKey="POST /v1/webhooks/hubspot")
    integration = prod.resources[route["Properties"]["Target"]["Fn::Join"][1][1]["Ref"]]["Properties"]
    function_id, _ = prod.one(
        "AWS::Lambda::Function", FunctionName=prod.topology.function("hubspot_ingest").name
    )
    # then the route invokes the HubSpot ingest with payload format 2.0
    assert (integration["IntegrationType"], integration["PayloadFormatVersion"]) == ("AWS_PROXY", "2.0")
    assert integration["IntegrationUri"] == _arn(function_id)
    # and the URL to register as the HubSpot app's webhook target is a stack output
    parts = prod.template.to_json()["Outputs"]["WebhookUrlPostV1WebhooksHubspot"]["Value"]["Fn::Join"][1]
    assert parts[0] == "https://" and parts[1] == _ref(api_id) and parts[-1] == "/v1/webhooks/hubspot"


def test_the_hubspot_ingest_reads_only_hubspot_secrets_and_writes_raw_objects_and_events(
    dev: Synthesized,
) -> None:
    statements = _policy_statements(dev, "hubspot_ingest")
    hubspot_ids = [
        dev.one("AWS::SecretsManager::Secret", Name=spec.name)[0]
        for spec in dev.topology.secrets
        if spec.key.endswith(":hubspot")
    ]
    raw_id, _ = dev.one("AWS::S3::Bucket", BucketName=dev.topology.bucket.name)
    bus_id, _ = dev.one("AWS::Events::EventBus", Name=dev.topology.event_bus.name)
    assert sorted(_resources_of(statements, "secretsmanager:GetSecretValue")) == sorted(
        json.dumps(_ref(logical_id)) for logical_id in hubspot_ids
    )
    assert hubspot_ids
    assert _resources_of(statements, "secretsmanager:PutSecretValue") == []
    assert _resources_of(statements, "s3:PutObject") == [
        json.dumps({"Fn::Join": ["", [_arn(raw_id), "/*"]]}, sort_keys=True)
    ]
    assert _resources_of(statements, "s3:GetObject") == []
    assert _resources_of(statements, "events:PutEvents") == [json.dumps(_arn(bus_id))]
    assert _resources_of(statements, "dynamodb:PutItem") == []
    assert _resources_of(statements, "sqs:SendMessage") == []


# --- the outputs an operator deploys with (infra/deploy.py, infra/outputs.py) -------------------------


@pytest.mark.parametrize("stage", topo.STAGES)
def test_every_secret_and_webhook_route_of_the_topology_is_a_stack_output_with_a_description(
    stages: dict[str, Synthesized], stage: str
) -> None:
    synthesized = stages[stage]
    outputs = synthesized.template.to_json()["Outputs"]
    topology = synthesized.topology
    # each secret: its name, and its ARN (the Ref of the secret itself)
    for spec in topology.secrets:
        logical_id, _ = synthesized.one("AWS::SecretsManager::Secret", Name=spec.name)
        named = [o for o in outputs.values() if o["Value"] == spec.name]
        assert len(named) == 1, spec.key
        assert (
            "JSON {" in named[0]["Description"] and "docs/infra.md#deploy-to-aws" in named[0]["Description"]
        )
        assert [o["Value"] for o in outputs.values() if o["Value"] == _ref(logical_id)] == [_ref(logical_id)]
    # each webhook route: the full URL of the API's stage plus the route's path
    api_id, _ = synthesized.one("AWS::ApiGatewayV2::Api", Name=topology.api.name)
    urls = {
        parts[-1]: output
        for output in outputs.values()
        if isinstance(output["Value"], dict) and "Fn::Join" in output["Value"]
        for parts in [output["Value"]["Fn::Join"][1]]
        if parts[0] == "https://" and parts[1] == _ref(api_id)
    }
    assert set(urls) == {route.path for route in topology.api.routes}
    assert all("Paste into" in output["Description"] for output in urls.values())
    # the alarm topic and the dashboard
    topic_id, _ = synthesized.one("AWS::SNS::Topic", TopicName=topology.monitoring.topic_name)
    assert outputs["AlarmTopicArn"]["Value"] == _ref(topic_id)
    assert outputs["DashboardName"]["Value"] == topology.monitoring.dashboard_name
    assert all(output.get("Description") for output in outputs.values())
