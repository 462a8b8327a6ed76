"""The local stack's wiring equals the synthesised CloudFormation template, resource for resource.

Given the ``dev`` template synthesised exactly as ``make synth ENV=dev`` does (same app builder, the
account and region pinned to moto's) and a local stack started as ``make run`` starts it (stage
``local``, built from the same ``infra/topology.py`` on ``dev``'s settings), every resource the
local stack created in moto, every function environment and every piece of wiring it emulates
matches the template once ``ledgerlink-dev`` is read as ``ledgerlink-local``:

queues (visibility timeout, retention, SSE, redrive policy), EventBridge rules (bus, pattern or
schedule, state, targets with their dead-letter config and retry policy), the event archive, tables
(keys, billing, TTL, global secondary indexes), buckets (versioning, expiry), secrets, functions (handler, the names and values of their
variables), the API (route keys, payload format, throttling) and the SQS event sources (batch size,
batching window, partial batch responses). Differences that are the point of the local stack are
spelled out: vendor URLs point at the sandboxes, the stage is called ``local``, and
``LOCAL_ONLY_VARIABLES`` add the sandboxes' OAuth token URLs and an invoice stage map for the HubSpot
sandbox's "Invoices" pipeline, and ``LOCAL_GATEWAY_VARIABLES`` tell the HubSpot ingest the local
gateway's URL of its route, which HubSpot signs (the template sets none of them; their values are
checked too).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra import topology as topo
from infra.asset import AssetTarget, build_lambda_asset
from ledgerlink.config import EnvVar
from ledgerlink.configfile import load as load_config
from ledgerlink_local.sandboxes.hubspot import INVOICES_PIPELINE_ID
from ledgerlink_local.stack.up import LocalEnvironment
from ledgerlink_local.stack.wiring import LOCAL_GATEWAY_VARIABLES, LOCAL_ONLY_VARIABLES
from tests.e2e.conftest import local_environment
from tests.infra.conftest import synthesize

pytestmark = pytest.mark.slow  # one CDK synthesis (about 10 s)

# Variables whose values differ on purpose: the stage's name, the vendor hosts (the sandboxes) and the
# configuration file (the local stack's connections are the sandboxes' demo companies).
DIFFERENT_BY_DESIGN = {
    EnvVar.STAGE.value,
    EnvVar.CONFIG_FILE.value,
    EnvVar.QBO_BASE_URL.value,
    EnvVar.HUBSPOT_BASE_URL.value,
    EnvVar.GRAPH_BASE_URL.value,
}


def to_local(value: Any) -> Any:
    """A dev name read as the local stage's (``ledgerlink-dev-x`` -> ``ledgerlink-local-x``)."""
    if isinstance(value, str):
        return value.replace("ledgerlink-dev-", "ledgerlink-local-").replace(
            "ledgerlink/dev/", "ledgerlink/local/"
        )
    return value


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    code_dir = build_lambda_asset(
        AssetTarget.for_lambda(
            python_version=topo.LAMBDA_PYTHON_VERSION, architecture=topo.LAMBDA_ARCHITECTURE
        )
    )
    synthesized = synthesize("dev", tmp_path_factory.mktemp("cdk-dev"), code_dir)
    return synthesized.resources


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEnvironment]:
    # exactly what `make run` creates: no test overrides of timeouts or windows
    state_dir = tmp_path_factory.mktemp("ledgerlink-state")
    with local_environment(
        state_dir,
        visibility_timeout_seconds=None,
        batching_window_seconds=None,
        redelivery=None,
        start_pollers=False,
    ) as environment:
        yield environment


class Template:
    """Lookups in the template's resources, resolving Ref and Fn::GetAtt to physical names."""

    NAME_PROPERTY = {
        "AWS::SQS::Queue": "QueueName",
        "AWS::Events::EventBus": "Name",
        "AWS::Lambda::Function": "FunctionName",
        "AWS::DynamoDB::Table": "TableName",
        "AWS::S3::Bucket": "BucketName",
    }

    def __init__(self, resources: dict[str, Any]) -> None:
        self.resources = resources

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [resource["Properties"] for resource in self.resources.values() if resource["Type"] == kind]

    def name(self, reference: Any) -> str:
        if isinstance(reference, str):
            return reference
        logical = reference["Ref"] if "Ref" in reference else reference["Fn::GetAtt"][0]
        resource = self.resources[logical]
        return str(resource["Properties"][self.NAME_PROPERTY[resource["Type"]]])


@pytest.fixture(scope="module")
def cloud(template: dict[str, Any]) -> Template:
    return Template(template)


def test_queues_match(cloud, environment):
    # given the queues of the template, read as local names
    expected = {}
    for queue in cloud.of_type("AWS::SQS::Queue"):
        redrive = queue.get("RedrivePolicy")
        expected[to_local(queue["QueueName"])] = {
            "VisibilityTimeout": str(queue.get("VisibilityTimeout", 30)),
            "MessageRetentionPeriod": str(queue["MessageRetentionPeriod"]),
            "SqsManagedSseEnabled": str(queue.get("SqsManagedSseEnabled", False)).lower(),
            "redrive": None
            if redrive is None
            else (to_local(cloud.name(redrive["deadLetterTargetArn"])), int(redrive["maxReceiveCount"])),
        }
    # when the local stack's queues are read back from moto
    sqs = environment.stack.client("sqs")
    actual = {}
    for url in sqs.list_queues()["QueueUrls"]:
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"]) if "RedrivePolicy" in attributes else None
        actual[url.rsplit("/", 1)[-1]] = {
            "VisibilityTimeout": attributes["VisibilityTimeout"],
            "MessageRetentionPeriod": attributes["MessageRetentionPeriod"],
            "SqsManagedSseEnabled": attributes["SqsManagedSseEnabled"],
            "redrive": None
            if redrive is None
            else (redrive["deadLetterTargetArn"].rsplit(":", 1)[-1], int(redrive["maxReceiveCount"])),
        }
    # then they are the same queues with the same settings
    assert actual == expected


def test_rules_and_their_targets_match(cloud, environment):
    expected = {}
    for rule in cloud.of_type("AWS::Events::Rule"):
        expected[to_local(rule["Name"])] = {
            "bus": to_local(cloud.name(rule["EventBusName"])) if "EventBusName" in rule else "default",
            "pattern": rule.get("EventPattern"),
            "schedule": rule.get("ScheduleExpression"),
            "state": rule["State"],
            "targets": [
                (
                    to_local(cloud.name(target["Arn"])),
                    to_local(cloud.name(target["DeadLetterConfig"]["Arn"])),
                    target["RetryPolicy"],
                )
                for target in rule["Targets"]
            ],
        }
    events = environment.stack.client("events")
    assert environment.stack.topology is not None
    bus = environment.stack.topology.event_bus.name
    actual = {}
    rules = [
        *events.list_rules(EventBusName=bus)["Rules"],
        *events.list_rules(EventBusName="default")["Rules"],
    ]
    for rule in rules:
        if rule.get("ManagedBy"):
            continue  # the archive's own rule, which EventBridge creates (in the cloud too)
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=rule["EventBusName"])["Targets"]
        actual[rule["Name"]] = {
            "bus": rule["EventBusName"],
            "pattern": json.loads(rule["EventPattern"]) if rule.get("EventPattern") else None,
            "schedule": rule.get("ScheduleExpression"),
            "state": rule["State"],
            "targets": [
                (
                    target["Arn"].rsplit(":", 1)[-1],
                    target["DeadLetterConfig"]["Arn"].rsplit(":", 1)[-1],
                    target["RetryPolicy"],
                )
                for target in targets
            ],
        }
    assert actual == expected


def test_the_event_archive_matches(cloud, environment):
    (archive,) = cloud.of_type("AWS::Events::Archive")
    local = environment.stack.client("events").describe_archive(ArchiveName=to_local(archive["ArchiveName"]))
    assert local["EventSourceArn"].rsplit("/", 1)[-1] == to_local(cloud.name(archive["SourceArn"]))
    assert local["RetentionDays"] == archive["RetentionDays"]
    assert json.loads(local["EventPattern"]) == archive["EventPattern"]


def test_tables_match(cloud, environment):
    expected = {
        to_local(table["TableName"]): (
            table["KeySchema"],
            sorted(table["AttributeDefinitions"], key=lambda item: item["AttributeName"]),
            table["BillingMode"],
            table.get("TimeToLiveSpecification", {}).get("AttributeName"),
            sorted(
                (index["IndexName"], json.dumps(index["KeySchema"]), index["Projection"]["ProjectionType"])
                for index in table.get("GlobalSecondaryIndexes", [])
            ),
        )
        for table in cloud.of_type("AWS::DynamoDB::Table")
    }
    dynamodb = environment.stack.client("dynamodb")
    actual = {}
    for name in dynamodb.list_tables()["TableNames"]:
        table = dynamodb.describe_table(TableName=name)["Table"]
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        actual[name] = (
            table["KeySchema"],
            sorted(table["AttributeDefinitions"], key=lambda item: item["AttributeName"]),
            table["BillingModeSummary"]["BillingMode"],
            ttl.get("AttributeName") if ttl.get("TimeToLiveStatus") == "ENABLED" else None,
            sorted(
                (index["IndexName"], json.dumps(index["KeySchema"]), index["Projection"]["ProjectionType"])
                for index in table.get("GlobalSecondaryIndexes", [])
            ),
        )
    assert actual == expected
    # (the links table's owed-by-due-date index among them: the comparison is not vacuous)
    assert any(indexes for *_, indexes in expected.values())


def test_buckets_and_secrets_match(cloud, environment):
    s3 = environment.stack.client("s3")
    local_buckets = {bucket["Name"] for bucket in s3.list_buckets()["Buckets"]}
    assert local_buckets == {to_local(bucket["BucketName"]) for bucket in cloud.of_type("AWS::S3::Bucket")}
    for bucket in cloud.of_type("AWS::S3::Bucket"):
        name = to_local(bucket["BucketName"])
        versioning = bucket.get("VersioningConfiguration", {}).get("Status")
        assert s3.get_bucket_versioning(Bucket=name).get("Status") == versioning, name
        cloud_expiry = [rule["ExpirationInDays"] for rule in bucket["LifecycleConfiguration"]["Rules"]]
        if versioning:  # the raw deliveries bucket; access logs are not emulated (see docs/local.md)
            rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
            assert [rule["Expiration"]["Days"] for rule in rules] == cloud_expiry
    # the deployment's own secrets are the same; each stage has its connections' (its own file's)
    local_secrets = {
        s["Name"] for s in environment.stack.client("secretsmanager").list_secrets()["SecretList"]
    }
    cloud_secrets = {to_local(secret["Name"]) for secret in cloud.of_type("AWS::SecretsManager::Secret")}
    per_connection = "ledgerlink/local/connections/"
    assert {n for n in local_secrets if not n.startswith(per_connection)} == {
        n for n in cloud_secrets if not n.startswith(per_connection)
    }
    assert {n for n in local_secrets if n.startswith(per_connection)} == {
        "ledgerlink/local/connections/demo/qbo/oauth",
        "ledgerlink/local/connections/demo/hubspot/app",
        "ledgerlink/local/connections/demo/graph/app",
        "ledgerlink/local/connections/thames/qbo/oauth",
        "ledgerlink/local/connections/thames/hubspot/app",
        "ledgerlink/local/connections/thames/graph/app",
    }
    assert {n for n in cloud_secrets if n.startswith(per_connection)} == {
        "ledgerlink/local/connections/main/qbo/oauth",
        "ledgerlink/local/connections/main/hubspot/app",
    }


def test_functions_get_the_same_handlers_and_variables(cloud, environment):
    expected = {
        to_local(function["FunctionName"]): (function["Handler"], function["Environment"]["Variables"])
        for function in cloud.of_type("AWS::Lambda::Function")
    }
    runtimes = {pool.runtime.name: pool.runtime for pool in environment.stack.pools.values()}
    assert set(runtimes) == set(expected)
    assert environment.stack.topology is not None
    behind_hubspot_route = {
        environment.stack.topology.function(route.function).name
        for route in environment.stack.topology.api.routes
        if route.path == topo.HUBSPOT_WEBHOOK_PATH
    }
    assert behind_hubspot_route == {"ledgerlink-local-hubspot-ingest"}
    for name, (handler, variables) in expected.items():
        runtime = runtimes[name]
        assert runtime.handler == handler, name
        # the same variable names, plus the documented local-only ones (and the gateway's, for the
        # function behind the HubSpot route)
        local_only = set(LOCAL_ONLY_VARIABLES) | (
            set(LOCAL_GATEWAY_VARIABLES) if name in behind_hubspot_route else set()
        )
        assert set(runtime.function_variables) == set(variables) | local_only, name
        # the same values, except where the local stack differs by design
        for variable, value in variables.items():
            if variable not in DIFFERENT_BY_DESIGN:
                assert runtime.function_variables[variable] == to_local(value), (name, variable)
        # and the worker process gets exactly these values
        assert all(runtime.environment[key] == value for key, value in runtime.function_variables.items())


def test_the_api_routes_payload_format_and_throttling_match(cloud, environment):
    front = environment.stack.front
    assert front is not None
    cloud_routes = {route["RouteKey"] for route in cloud.of_type("AWS::ApiGatewayV2::Route")}
    assert {route.route_key for route in front.routes} == cloud_routes
    assert {
        integration["PayloadFormatVersion"] for integration in cloud.of_type("AWS::ApiGatewayV2::Integration")
    } == {
        "2.0"  # the only payload format the local gateway builds
    }
    (stage,) = cloud.of_type("AWS::ApiGatewayV2::Stage")
    assert stage["StageName"] == "$default"
    settings = stage["DefaultRouteSettings"]
    assert (front.throttle.rate, front.throttle.burst) == (
        settings["ThrottlingRateLimit"],
        settings["ThrottlingBurstLimit"],
    )
    # each route reaches the function the template integrates it with
    integrations = {
        logical: resource["Properties"]
        for logical, resource in cloud.resources.items()
        if resource["Type"] == "AWS::ApiGatewayV2::Integration"
    }
    functions = {pool.runtime.key: pool.runtime.name for pool in environment.stack.pools.values()}
    for route in cloud.of_type("AWS::ApiGatewayV2::Route"):
        logical = route["Target"]["Fn::Join"][1][1]["Ref"]
        cloud_function = to_local(cloud.name(integrations[logical]["IntegrationUri"]))
        (local,) = [item for item in front.routes if item.route_key == route["RouteKey"]]
        assert functions[local.function] == cloud_function


def test_the_calendar_flow_is_wired_on_both_sides(cloud, environment):
    # given the calendar sync's queue, rule, function and event source as the template declares them
    queue = "ledgerlink-dev-calendar-sync"
    assert queue in {q["QueueName"] for q in cloud.of_type("AWS::SQS::Queue")}
    assert "ledgerlink-dev-deal-synced-to-calendar-sync" in {
        r["Name"] for r in cloud.of_type("AWS::Events::Rule")
    }
    assert "ledgerlink-dev-outlook-calendar-sync" in {
        f["FunctionName"] for f in cloud.of_type("AWS::Lambda::Function")
    }
    # then the local stack has a function pool and a poller for it (the tests above compare them)
    pools = {pool.runtime.key: pool.runtime for pool in environment.stack.pools.values()}
    assert pools["outlook_calendar_sync"].handler == "outlook_calendar_sync.handler.lambda_handler"
    (poller,) = [p for p in environment.stack.pollers if p.config.function == "outlook_calendar_sync"]
    assert poller.config.queue_name == to_local(queue)


def test_the_teams_invite_is_wired_on_both_sides(cloud, environment):
    # given the Teams invite's queue, three rules (one a schedule), function and event source in the template
    queue = "ledgerlink-dev-teams-invite"
    assert queue in {q["QueueName"] for q in cloud.of_type("AWS::SQS::Queue")}
    rules = {r["Name"]: r for r in cloud.of_type("AWS::Events::Rule")}
    for name in ("calendar-synced-to-teams-invite", "followup-due-to-teams-invite", "followup-sweep"):
        assert f"ledgerlink-dev-{name}" in rules, name
    assert rules["ledgerlink-dev-followup-sweep"]["ScheduleExpression"] == "rate(1 day)"
    assert "ledgerlink-dev-teams-invite" in {
        f["FunctionName"] for f in cloud.of_type("AWS::Lambda::Function")
    }
    # then the local stack has a function pool and a poller for it (the tests above compare them)
    pools = {pool.runtime.key: pool.runtime for pool in environment.stack.pools.values()}
    assert pools["teams_invite"].handler == "teams_invite.handler.lambda_handler"
    (poller,) = [p for p in environment.stack.pollers if p.config.function == "teams_invite"]
    assert poller.config.queue_name == to_local(queue)
    # and its scheduler fires the sweep into that queue (moto never would)
    assert environment.stack.scheduler is not None
    assert "ledgerlink-local-followup-sweep" in environment.stack.scheduler.next_times()


def test_event_sources_match(cloud, environment):
    expected = {
        (to_local(cloud.name(mapping["EventSourceArn"])), to_local(cloud.name(mapping["FunctionName"]))): (
            mapping["BatchSize"],
            mapping.get("MaximumBatchingWindowInSeconds", 0),
            "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
        )
        for mapping in cloud.of_type("AWS::Lambda::EventSourceMapping")
    }
    functions = {pool.runtime.key: pool.runtime.name for pool in environment.stack.pools.values()}
    actual = {
        (poller.config.queue_name, functions[poller.config.function]): (
            poller.config.batch_size,
            poller.config.max_batching_window_seconds,
            poller.config.report_batch_item_failures,
        )
        for poller in environment.stack.pollers
    }
    assert actual == expected


def test_local_only_variables_are_the_documented_overrides_and_nothing_else(cloud, environment):
    # given the deployed functions' variables and the local workers'
    runtimes = {pool.runtime.key: pool.runtime for pool in environment.stack.pools.values()}
    # then the template sets none of the local-only variables: deployed, ledgerlink.config's defaults apply
    for function in cloud.of_type("AWS::Lambda::Function"):
        assert not set(function["Environment"]["Variables"]) & {
            *LOCAL_ONLY_VARIABLES,
            *LOCAL_GATEWAY_VARIABLES,
        }
    # and the HubSpot ingest checks signatures against the URL the HubSpot sandbox calls: the local
    # gateway's (plain HTTP on 127.0.0.1), where the deployed function rebuilds the API's own
    assert runtimes["hubspot_ingest"].function_variables[EnvVar.HUBSPOT_WEBHOOK_URL.value] == (
        environment.stack.gateway_url + topo.HUBSPOT_WEBHOOK_PATH
    )
    # and locally they point at the sandboxes' OAuth token endpoints
    qbo, graph = environment.description["qbo"], environment.description["graph"]
    for runtime in runtimes.values():
        variables = runtime.function_variables
        assert variables[EnvVar.QBO_TOKEN_URL.value] == qbo["token_url"]
        assert variables[EnvVar.GRAPH_TOKEN_URL.value] == graph["token_url"].replace(
            graph["tenant_id"], "{tenant}"
        )
        # and the local configuration file, whose connection maps invoices to the HubSpot sandbox
        # portal's "Invoices" pipeline (so `make run` shows invoices moving through invoice stages)
        config = load_config(variables[EnvVar.CONFIG_FILE.value])
        assert config.connections[0].invoice_stages.by_status["paid"].pipeline == INVOICES_PIPELINE_ID


@pytest.mark.parametrize(
    ("function", "queue_key"),
    [
        ("hubspot_deal_sync", "deal-sync"),
        ("outlook_calendar_sync", "calendar-sync"),
        ("teams_invite", "teams-invite"),
    ],
)
def test_each_consumer_dead_letters_into_its_queues_own_dead_letter_queue(environment, function, queue_key):
    # given the local consumer's variables (the same as the template's, by test_functions_...)
    variables = next(
        pool.runtime.function_variables
        for pool in environment.stack.pools.values()
        if pool.runtime.key == function
    )
    # then the dead-letter queue it names is the one its queue redrives to, with the same last receive
    sqs = environment.stack.client("sqs")
    assert environment.stack.resources is not None
    queue = environment.stack.resources.queue(queue_key)
    redrive = json.loads(
        sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=["RedrivePolicy"])["Attributes"][
            "RedrivePolicy"
        ]
    )
    named = sqs.get_queue_url(QueueName=variables[EnvVar.DEAD_LETTER_QUEUE_NAME.value])["QueueUrl"]
    assert named == queue.dlq_url
    assert redrive["deadLetterTargetArn"].rsplit(":", 1)[-1] == variables[EnvVar.DEAD_LETTER_QUEUE_NAME.value]
    assert int(redrive["maxReceiveCount"]) == int(variables[EnvVar.MAX_RECEIVE_COUNT.value])
