"""The declarative topology (no CDK): per-stage settings, names, wiring invariants, event patterns."""

from __future__ import annotations

import copy
import dataclasses
import json
import re
from pathlib import Path
from typing import Any, cast

import pytest
from moto.events.models import EventPattern

from infra import topology as topo
from ledgerlink import tables
from ledgerlink.config import EnvVar, Settings
from ledgerlink.configfile import load as load_config
from ledgerlink.consumer.redelivery import RedeliverySchedule
from ledgerlink.events import validate_detail
from ledgerlink.observability import Service
from tests.conftest import FIXTURES, REPO_ROOT

ACCOUNT = "123456789012"
REGION = "us-east-1"
INVOICE_EVENT = FIXTURES / "infra" / "qbo-entity-changed-invoice.eventbridge.json"
DEAL_SYNCED_EVENT = FIXTURES / "infra" / "deal-synced-invoice.eventbridge.json"
CALENDAR_SYNCED_EVENT = FIXTURES / "infra" / "calendar-synced-invoice.eventbridge.json"
FOLLOWUP_DUE_EVENT = FIXTURES / "infra" / "followup-due-invoice.eventbridge.json"
# The local stack's configuration: two connections, each with a Microsoft tenant (Graph secrets).
WITH_TENANTS = REPO_ROOT / "local" / "config" / "local.toml"


def _topology(stage: str) -> topo.Topology:
    return topo.build_topology(topo.environment_from_cdk_json(stage), account=ACCOUNT, region=REGION)


def _cdk_json_environments() -> dict[str, Any]:
    return dict(json.loads(topo.CDK_JSON.read_text(encoding="utf-8"))["context"]["environments"])


def _recorded_invoice_event() -> dict[str, Any]:
    return _event(INVOICE_EVENT)


def _deal_synced_event() -> dict[str, Any]:
    return _event(DEAL_SYNCED_EVENT)


def _calendar_synced_event() -> dict[str, Any]:
    return _event(CALENDAR_SYNCED_EVENT)


def _followup_due_event() -> dict[str, Any]:
    return _event(FOLLOWUP_DUE_EVENT)


def _scheduled_event() -> dict[str, Any]:
    """What EventBridge sends for a schedule (a rule's "Scheduled Event")."""
    return {
        "version": "0",
        "id": "89d1a02d-5ec7-412e-82f5-13505f849b41",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": "2026-11-26T14:00:00Z",
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/ledgerlink-dev-followup-sweep"],
        "detail": {},
    }


def _event(path: Path) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    validate_detail(event["detail-type"], event["detail"])  # the fixture itself honours the contract
    return event


def _replaced(topology: topo.Topology, item: Any) -> topo.Topology:
    """``topology`` with the queue, function or queue source of ``item``'s key replaced by ``item``."""
    if isinstance(item, topo.QueueSpec):
        queues = tuple(item if queue.key == item.key else queue for queue in topology.queues)
        return dataclasses.replace(topology, queues=queues)
    if isinstance(item, topo.FunctionSpec):
        functions = tuple(item if function.key == item.key else function for function in topology.functions)
        return dataclasses.replace(topology, functions=functions)
    sources = tuple(item if source.queue == item.queue else source for source in topology.queue_sources)
    return dataclasses.replace(topology, queue_sources=sources)


# --- cdk.json environments -------------------------------------------------------------------------


def test_every_stage_in_cdk_json_parses() -> None:
    # given cdk.json as committed / when each stage is read
    environments = {stage: topo.environment_from_cdk_json(stage) for stage in topo.STAGES}
    # then non-production talks to Intuit's sandbox and production to the production host
    assert environments["dev"].qbo_base_url == "https://sandbox-quickbooks.api.intuit.com"
    assert environments["staging"].qbo_base_url == "https://sandbox-quickbooks.api.intuit.com"
    assert environments["prod"].qbo_base_url == "https://quickbooks.api.intuit.com"
    assert environments["prod"].removal_policy is topo.RemovalPolicy.RETAIN
    assert environments["dev"].removal_policy is topo.RemovalPolicy.DESTROY
    assert all(env.log_retention_days in topo.LOG_RETENTION_DAYS_ALLOWED for env in environments.values())


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("qbo_base_url", None, "environments.dev.qbo_base_url is required"),
        ("qbo_base_url", "http://sandbox-quickbooks.api.intuit.com", "environments.dev.qbo_base_url must be"),
        ("log_retention_days", 13, "environments.dev.log_retention_days must be one of the CloudWatch"),
        ("removal_policy", "keep", "environments.dev.removal_policy must be 'destroy' or 'retain'"),
        ("alarm_email", "ops-at-example", "environments.dev.alarm_email must be an e-mail address"),
        ("raw_delivery_retention_days", 0, "environments.dev.raw_delivery_retention_days must be a positive"),
        ("api_throttle", {"rate_limit": 10, "burst_limit": -1}, "environments.dev.api_throttle.burst_limit"),
        ("account", "12345", "environments.dev.account must be a string matching"),
        (
            "followup_sweep_schedule",
            "daily",
            "environments.dev.followup_sweep_schedule must be an EventBridge",
        ),
        ("followup_sweep_schedule", "rate(1 days)", "environments.dev.followup_sweep_schedule must be"),
        ("followup_sweep_schedule", "rate(30 seconds)", "environments.dev.followup_sweep_schedule must be"),
    ],
)
def test_a_bad_cdk_json_value_is_refused_naming_the_key(key: str, value: Any, expected: str) -> None:
    # given the dev settings with one value broken
    environments = _cdk_json_environments()
    broken = copy.deepcopy(environments["dev"])
    if value is None:
        del broken[key]
    else:
        broken[key] = value
    # when parsed / then the error names the key
    with pytest.raises(topo.TopologyError) as raised:
        topo.environment_from_context("dev", {**environments, "dev": broken})
    assert expected in str(raised.value)


def test_the_follow_up_sweep_runs_daily_unless_a_stage_says_otherwise() -> None:
    # given cdk.json as committed: every stage sweeps once a day
    assert {topo.environment_from_cdk_json(stage).followup_sweep_schedule for stage in topo.STAGES} == {
        "rate(1 day)"
    }
    environments = _cdk_json_environments()
    # when a stage leaves the key out, it sweeps daily too
    without = {key: value for key, value in environments["dev"].items() if key != "followup_sweep_schedule"}
    assert topo.environment_from_context("dev", {"dev": without}).followup_sweep_schedule == "rate(1 day)"
    # and a stage may sweep on its own schedule, rate or cron, which its sweep rule then carries
    for expression in ("rate(6 hours)", "cron(0 13 ? * MON-FRI *)"):
        custom = topo.environment_from_context(
            "dev", {"dev": {**without, "followup_sweep_schedule": expression}}
        )
        topology = topo.build_topology(custom, account=ACCOUNT, region=REGION)
        assert topology.rule("followup-sweep").schedule_expression == expression


@pytest.mark.parametrize(
    ("expression", "accepted"),
    [
        ("rate(1 minute)", True),
        ("rate(5 minutes)", True),
        ("rate(1 day)", True),
        ("rate(2 days)", True),
        ("cron(0 12 * * ? *)", True),
        ("rate(1 minutes)", False),
        ("rate(2 day)", False),
        ("rate(0 minutes)", False),
        ("rate(10 seconds)", False),
        ("cron(0 12 * * ?)", False),
        ("every day", False),
    ],
)
def test_schedule_expressions_are_the_ones_eventbridge_accepts(expression: str, accepted: bool) -> None:
    assert topo.is_schedule_expression(expression) is accepted


def test_an_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(topo.TopologyError) as raised:
        topo.environment_from_context("qa", _cdk_json_environments())
    assert str(raised.value) == "unknown environment 'qa': pass -c env=<dev|prod|staging>"


def test_no_stage_given_is_refused() -> None:
    with pytest.raises(topo.TopologyError, match="unknown environment None"):
        topo.environment_from_context(None, _cdk_json_environments())


# --- what each function gets ----------------------------------------------------------------------


@pytest.mark.parametrize("stage", topo.STAGES)
def test_every_function_environment_loads_settings_naming_this_stages_resources(stage: str) -> None:
    # given the topology of a stage
    topology = _topology(stage)
    for function in topology.functions:
        # when a handler parses its environment exactly as the topology sets it
        settings = Settings.from_env(function.environment)
        # then every resource name it will use is one this stage creates
        assert settings.stage == stage
        assert settings.event_bus_name == topology.event_bus.name
        assert settings.raw_bucket_name == topology.bucket.name
        assert settings.idempotency_table_name == topology.table("idempotency").name
        assert settings.links_table_name == topology.table("links").name
        assert settings.vendor_state_table_name == topology.table("vendor-state").name
        assert settings.qbo_webhook_secret_name == topology.secret("qbo-webhook").name
        assert settings.qbo_base_url == topology.environment.qbo_base_url
        # and the stage's configuration file, in the code asset, names its connections' secrets
        assert settings.config_file == f"config/{stage}.toml"
        config = topo.stage_config(stage)
        for connection in config.connections:
            assert topology.secret(f"{connection.name}:qbo-oauth").name == connection.secret_name(
                stage, "qbo-oauth"
            )
            assert topology.secret(f"{connection.name}:hubspot").name == connection.secret_name(
                stage, "hubspot"
            )


def test_function_environments_use_only_documented_variable_names() -> None:
    known = {name.value for name in EnvVar} | {"POWERTOOLS_SERVICE_NAME", "POWERTOOLS_LOG_LEVEL"}
    for function in _topology("prod").functions:
        assert set(function.environment) <= known, function.key


def test_handlers_and_services_are_the_agreed_ones() -> None:
    topology = _topology("dev")
    assert topology.function("qbo_ingest").handler == "qbo_ingest.handler.lambda_handler"
    assert topology.function("hubspot_deal_sync").handler == "hubspot_deal_sync.handler.lambda_handler"
    assert topology.function("hubspot_deal_sync").source_folder == "hubspot_deal_sync"
    assert topology.function("qbo_ingest").environment["POWERTOOLS_SERVICE_NAME"] == "qbo-ingest"
    calendar = topology.function("outlook_calendar_sync")
    assert calendar.handler == "outlook_calendar_sync.handler.lambda_handler"
    assert calendar.source_folder == "outlook_calendar_sync"
    assert calendar.name == "ledgerlink-dev-outlook-calendar-sync"
    assert (
        calendar.service == Service.OUTLOOK_CALENDAR_SYNC == calendar.environment["POWERTOOLS_SERVICE_NAME"]
    )
    assert (calendar.memory_mb, calendar.timeout_seconds, calendar.reserved_concurrency) == (512, 60, None)
    teams = topology.function("teams_invite")
    assert teams.handler == "teams_invite.handler.lambda_handler"
    assert teams.source_folder == "teams_invite"
    assert teams.name == "ledgerlink-dev-teams-invite"
    assert teams.service == Service.TEAMS_INVITE == teams.environment["POWERTOOLS_SERVICE_NAME"]
    assert (teams.memory_mb, teams.timeout_seconds, teams.reserved_concurrency) == (512, 60, None)


# --- queues, sources, rules -----------------------------------------------------------------------


def test_deal_sync_queue_outlasts_six_function_timeouts_and_an_hour_of_retries_before_dead_lettering() -> (
    None
):
    topology = _topology("dev")
    queue = topology.queue("deal-sync")
    source = next(source for source in topology.queue_sources if source.queue == "deal-sync")
    function = topology.function(source.function)
    assert (
        queue.visibility_timeout_seconds >= 6 * function.timeout_seconds + source.max_batching_window_seconds
    )
    # the retry delays grow by a quarter a receive from 2 s to 2 minutes with equal jitter: at least
    # half of each step is waited, so the last receive comes an hour or more after the first
    delays = [min(120, 2 * 1.25**n) / 2 for n in range(queue.max_receive_count - 1)]
    assert sum(delays) >= 3600 > sum(delays[:-1])
    assert queue.max_receive_count == 76
    assert queue.dlq_retention_seconds == 14 * 24 * 3600
    assert source.batch_size == 100 and source.max_batching_window_seconds >= 1
    assert source.report_batch_item_failures is True


def test_calendar_sync_queue_outlasts_six_function_timeouts_and_the_same_hour_of_retries() -> None:
    # given the calendar sync's queue, its event source and the deal sync's queue
    topology = _topology("dev")
    queue = topology.queue("calendar-sync")
    (source,) = [source for source in topology.queue_sources if source.queue == "calendar-sync"]
    function = topology.function(source.function)
    # then it feeds the calendar sync, and no message becomes visible again while a batch still runs
    assert source.function == "outlook_calendar_sync"
    assert (
        queue.visibility_timeout_seconds == 6 * function.timeout_seconds + source.max_batching_window_seconds
    )
    assert (queue.name, queue.dlq_name) == (
        "ledgerlink-dev-calendar-sync",
        "ledgerlink-dev-calendar-sync-dlq",
    )
    # and it retries as long as the deal sync (the same delays, an hour-long outage) before dead-lettering
    assert queue.redelivery == topology.queue("deal-sync").redelivery
    assert queue.max_receive_count == queue.redelivery.max_receive_count() == 76
    assert (queue.retention_seconds, queue.dlq_retention_seconds) == (4 * 24 * 3600, 14 * 24 * 3600)
    # and Lambda hands it small batches at once (no batching window), with partial failures, at most 4 at a time
    assert (source.batch_size, source.max_batching_window_seconds) == (10, 0)
    assert source.report_batch_item_failures is True
    assert source.max_concurrency == 4


def test_teams_invite_queue_outlasts_six_function_timeouts_and_the_same_hour_of_retries() -> None:
    # given the Teams invite's queue and its event source
    topology = _topology("dev")
    queue = topology.queue("teams-invite")
    (source,) = [source for source in topology.queue_sources if source.queue == "teams-invite"]
    function = topology.function(source.function)
    # then it feeds the Teams invite, and no message becomes visible again while a batch still runs
    assert source.function == "teams_invite"
    assert queue.visibility_timeout_seconds == 6 * function.timeout_seconds == 360
    assert (queue.name, queue.dlq_name) == ("ledgerlink-dev-teams-invite", "ledgerlink-dev-teams-invite-dlq")
    # and it retries as long as the calendar sync before dead-lettering
    assert queue.redelivery == topology.queue("calendar-sync").redelivery
    assert queue.max_receive_count == queue.redelivery.max_receive_count() == 76
    assert (queue.retention_seconds, queue.dlq_retention_seconds) == (4 * 24 * 3600, 14 * 24 * 3600)
    # and Lambda hands it what one poll returns at once (no window: the chain's last hop waits for
    # nothing), up to 10 at a time, with partial failures, at most 4 invocations at a time
    assert (source.batch_size, source.max_batching_window_seconds) == (10, 0)
    assert source.batch_size <= topo.SQS_BATCH_WITHOUT_WINDOW_MAX
    assert source.report_batch_item_failures is True
    assert source.max_concurrency == 4


def test_a_shorter_outage_span_resizes_both_queues_alike() -> None:
    # given the retry delays the end-to-end tests use (seconds, not an hour)
    short = topo.RedeliveryPolicy(RedeliverySchedule(base_seconds=1, cap_seconds=1), outage_span_seconds=4)
    topology = topo.build_topology(
        topo.environment_from_cdk_json("dev"), account=ACCOUNT, region=REGION, redelivery=short
    )
    # then the calendar sync's queue and its variables follow them, as the deal sync's do
    for queue_key, function_key in (
        ("deal-sync", "hubspot_deal_sync"),
        ("calendar-sync", "outlook_calendar_sync"),
        ("teams-invite", "teams_invite"),
    ):
        settings = Settings.from_env(topology.function(function_key).environment)
        assert (
            topology.queue(queue_key).max_receive_count
            == short.max_receive_count()
            == settings.max_receive_count
        )
        assert (settings.retry_base_seconds, settings.retry_max_delay_seconds) == (1.0, 1.0)


@pytest.mark.parametrize(
    ("queue", "function"),
    [
        ("deal-sync", "hubspot_deal_sync"),
        ("calendar-sync", "outlook_calendar_sync"),
        ("teams-invite", "teams_invite"),
    ],
)
def test_a_visibility_timeout_too_short_for_the_consumer_is_refused(queue: str, function: str) -> None:
    topology = _topology("dev")
    short = dataclasses.replace(topology.queue(queue), visibility_timeout_seconds=120)
    with pytest.raises(topo.TopologyError, match=rf"visibility timeout 120s is below 6 x the {function}"):
        topo.validate(_replaced(topology, short))


def test_a_large_batch_without_a_batching_window_is_refused() -> None:
    topology = _topology("dev")
    no_window = dataclasses.replace(topology.queue_sources[0], max_batching_window_seconds=0)
    with pytest.raises(topo.TopologyError, match="batch size above 10 needs a batching window"):
        topo.validate(_replaced(topology, no_window))


@pytest.mark.parametrize("concurrency", [1, 1001])
def test_a_maximum_concurrency_sqs_refuses_is_refused(concurrency: int) -> None:
    topology = _topology("dev")
    (calendar,) = [source for source in topology.queue_sources if source.queue == "calendar-sync"]
    with pytest.raises(topo.TopologyError, match=r"calendar-sync: maximum concurrency must be 2\.\.1000"):
        topo.validate(_replaced(topology, dataclasses.replace(calendar, max_concurrency=concurrency)))


def test_a_grant_on_a_resource_that_does_not_exist_is_refused() -> None:
    topology = _topology("dev")
    ingest = topology.function("qbo_ingest")
    typo = dataclasses.replace(
        ingest, grants=(*ingest.grants, topo.Grant(topo.ResourceKind.TABLE, "link", topo.Access.READ))
    )
    with pytest.raises(topo.TopologyError, match="function qbo_ingest is granted unknown table 'link'"):
        topo.validate(_replaced(topology, typo))


def test_the_deal_sync_knows_its_dead_letter_queue_and_last_receive_and_may_send_only_there() -> None:
    # given the deal sync and the queue that feeds it
    topology = _topology("prod")
    queue = topology.queue("deal-sync")
    function = topology.function("hubspot_deal_sync")
    # then its environment names the queue's dead-letter queue and maxReceiveCount, which it parses
    settings = Settings.from_env(function.environment)
    assert settings.dead_letter_queue_name == queue.dlq_name == "ledgerlink-prod-deal-sync-dlq"
    assert settings.max_receive_count == queue.max_receive_count == 76
    # and the retry delays its queue's maxReceiveCount was sized for
    assert (settings.retry_base_seconds, settings.retry_max_delay_seconds) == (2.0, 120.0)
    assert topo.Grant(topo.ResourceKind.DEAD_LETTER_QUEUE, "deal-sync", topo.Access.WRITE) in function.grants
    # and the ingest function, fed by no queue, gets neither
    ingest = Settings.from_env(topology.function("qbo_ingest").environment)
    assert (ingest.dead_letter_queue_name, ingest.max_receive_count) == (None, None)
    assert not any(
        g.kind is topo.ResourceKind.DEAD_LETTER_QUEUE for g in topology.function("qbo_ingest").grants
    )


def test_the_calendar_sync_dead_letters_into_its_own_queues_dead_letter_queue_only() -> None:
    # given the calendar sync and the queue that feeds it
    topology = _topology("prod")
    queue = topology.queue("calendar-sync")
    function = topology.function("outlook_calendar_sync")
    # then its environment names that queue's dead-letter queue, last receive and retry delays
    settings = Settings.from_env(function.environment)
    assert settings.dead_letter_queue_name == queue.dlq_name == "ledgerlink-prod-calendar-sync-dlq"
    assert settings.max_receive_count == queue.max_receive_count
    assert (settings.retry_base_seconds, settings.retry_max_delay_seconds) == (2.0, 120.0)
    # and it may send to that dead-letter queue and to no other
    dead_letter_grants = [g for g in function.grants if g.kind is topo.ResourceKind.DEAD_LETTER_QUEUE]
    assert dead_letter_grants == [
        topo.Grant(topo.ResourceKind.DEAD_LETTER_QUEUE, "calendar-sync", topo.Access.WRITE)
    ]


def test_the_calendar_sync_reads_each_connections_hubspot_and_graph_secrets_and_writes_none() -> None:
    # given a deployment whose connections have Microsoft tenants (the local stack's two)
    config = load_config(WITH_TENANTS)
    topology = topo.build_topology(
        topo.environment_from_cdk_json("dev"), account=ACCOUNT, region=REGION, config=config
    )
    function = topology.function("outlook_calendar_sync")
    secrets = {g.key: g.access for g in function.grants if g.kind is topo.ResourceKind.SECRET}
    # then it reads every connection's HubSpot app (owners' e-mails) and Graph app, and nothing else
    expected = {f"{c.name}:{kind}" for c in config.connections for kind in ("hubspot", "graph")}
    assert set(secrets) == expected and len(expected) == 4
    assert set(secrets.values()) == {topo.Access.READ}
    # and the tables, the bus and its dead-letter queue as the deal sync does, but not the raw bucket
    others = {(g.kind, g.key, g.access) for g in function.grants if g.kind is not topo.ResourceKind.SECRET}
    assert others == {
        (topo.ResourceKind.TABLE, "idempotency", topo.Access.READ_WRITE),
        (topo.ResourceKind.TABLE, "links", topo.Access.READ_WRITE),
        (topo.ResourceKind.TABLE, "vendor-state", topo.Access.READ_WRITE),
        (topo.ResourceKind.EVENT_BUS, "events", topo.Access.WRITE),
        (topo.ResourceKind.DEAD_LETTER_QUEUE, "calendar-sync", topo.Access.WRITE),
    }
    # and the deal sync still reads no Graph secret
    assert not [g for g in topology.function("hubspot_deal_sync").grants if g.key.endswith(":graph")]


def test_the_teams_invite_dead_letters_into_its_own_queues_dead_letter_queue_only() -> None:
    # given the Teams invite and the queue that feeds it
    topology = _topology("prod")
    queue = topology.queue("teams-invite")
    function = topology.function("teams_invite")
    # then its environment names that queue's dead-letter queue, last receive and retry delays
    settings = Settings.from_env(function.environment)
    assert settings.dead_letter_queue_name == queue.dlq_name == "ledgerlink-prod-teams-invite-dlq"
    assert settings.max_receive_count == queue.max_receive_count
    assert (settings.retry_base_seconds, settings.retry_max_delay_seconds) == (2.0, 120.0)
    # and, beside those, exactly the calendar sync's variables
    calendar = topology.function("outlook_calendar_sync").environment
    own = {"POWERTOOLS_SERVICE_NAME", EnvVar.DEAD_LETTER_QUEUE_NAME.value}
    assert {k: v for k, v in function.environment.items() if k not in own} == {
        k: v for k, v in calendar.items() if k not in own
    }
    # and it may send to that dead-letter queue and to no other
    dead_letter_grants = [g for g in function.grants if g.kind is topo.ResourceKind.DEAD_LETTER_QUEUE]
    assert dead_letter_grants == [
        topo.Grant(topo.ResourceKind.DEAD_LETTER_QUEUE, "teams-invite", topo.Access.WRITE)
    ]


def test_the_teams_invite_reads_the_calendar_syncs_secrets_queries_the_due_date_index_and_publishes() -> None:
    # given a deployment whose connections have Microsoft tenants (the local stack's two)
    config = load_config(WITH_TENANTS)
    topology = topo.build_topology(
        topo.environment_from_cdk_json("dev"), account=ACCOUNT, region=REGION, config=config
    )
    function = topology.function("teams_invite")
    secrets = {g.key: g.access for g in function.grants if g.kind is topo.ResourceKind.SECRET}
    # then it reads every connection's HubSpot app and Graph app, as the calendar sync does, and writes none
    expected = {f"{c.name}:{kind}" for c in config.connections for kind in ("hubspot", "graph")}
    assert set(secrets) == expected and len(expected) == 4
    assert set(secrets.values()) == {topo.Access.READ}
    # and the tables, the due-date index (the sweep), the bus (followup.due) and its dead-letter queue
    others = {(g.kind, g.key, g.access) for g in function.grants if g.kind is not topo.ResourceKind.SECRET}
    assert others == {
        (topo.ResourceKind.TABLE, "idempotency", topo.Access.READ_WRITE),
        (topo.ResourceKind.TABLE, "links", topo.Access.READ_WRITE),
        (topo.ResourceKind.TABLE_INDEX, "links/owed-by-due-date", topo.Access.READ),
        (topo.ResourceKind.TABLE, "vendor-state", topo.Access.READ_WRITE),
        (topo.ResourceKind.EVENT_BUS, "events", topo.Access.WRITE),
        (topo.ResourceKind.DEAD_LETTER_QUEUE, "teams-invite", topo.Access.WRITE),
    }
    # and no other function may query the index
    assert [
        f.key for f in topology.functions if any(g.kind is topo.ResourceKind.TABLE_INDEX for g in f.grants)
    ] == ["teams_invite"]


def test_the_links_table_carries_the_owed_by_due_date_index() -> None:
    # given the links table of a stage
    links = _topology("dev").table("links")
    # then it has the one index the follow-up sweep queries: owed invoices per connection by due date
    assert links.indexes == (tables.LINKS_OWED_BY_DUE_DATE,)
    (index,) = links.indexes
    assert (index.name, index.partition_key, index.sort_key) == (
        "owed-by-due-date",
        "owed_connection",
        "due_date",
    )
    # and the other tables have none
    assert [t.key for t in _topology("dev").tables if t.indexes] == ["links"]


def test_a_grant_on_an_index_that_does_not_exist_is_refused() -> None:
    topology = _topology("dev")
    teams = topology.function("teams_invite")
    typo = dataclasses.replace(
        teams,
        grants=(
            *teams.grants,
            topo.Grant(topo.ResourceKind.TABLE_INDEX, "links/owed-by-due", topo.Access.READ),
        ),
    )
    with pytest.raises(
        topo.TopologyError, match="function teams_invite is granted unknown table_index 'links/owed-by-due'"
    ):
        topo.validate(_replaced(topology, typo))


def test_two_indexes_of_one_name_are_refused() -> None:
    topology = _topology("dev")
    links = topology.table("links")
    twice = dataclasses.replace(links, indexes=(*links.indexes, *links.indexes))
    tables_twice = tuple(twice if table.key == "links" else table for table in topology.tables)
    with pytest.raises(topo.TopologyError, match="table links: two indexes share a name"):
        topo.validate(dataclasses.replace(topology, tables=tables_twice))


def _changed(topology: topo.Topology, function_key: str, **changes: Any) -> topo.Topology:
    return _replaced(topology, dataclasses.replace(topology.function(function_key), **changes))


@pytest.mark.parametrize(
    ("queue", "function"),
    [
        ("deal-sync", "hubspot_deal_sync"),
        ("calendar-sync", "outlook_calendar_sync"),
        ("teams-invite", "teams_invite"),
    ],
)
def test_a_dead_lettering_function_with_another_receive_count_than_its_queue_is_refused(
    queue: str, function: str
) -> None:
    # given a function that would dead-letter on the 3rd receive of a queue that allows more
    topology = _topology("dev")
    environment = {**topology.function(function).environment, EnvVar.MAX_RECEIVE_COUNT.value: "3"}
    # then the topology is refused, naming what it needs
    with pytest.raises(topo.TopologyError, match=rf"dead-letters records of queue {queue} itself: it needs"):
        topo.validate(_changed(topology, function, environment=environment))


def test_a_function_naming_another_queues_dead_letter_queue_is_refused() -> None:
    # given the calendar sync told to dead-letter into the deal sync's dead-letter queue
    topology = _topology("dev")
    wrong = topology.queue("deal-sync").dlq_name
    environment = {
        **topology.function("outlook_calendar_sync").environment,
        EnvVar.DEAD_LETTER_QUEUE_NAME.value: wrong,
    }
    # then the topology is refused
    with pytest.raises(
        topo.TopologyError, match=r"outlook_calendar_sync dead-letters records of queue calendar-sync"
    ):
        topo.validate(_changed(topology, "outlook_calendar_sync", environment=environment))


@pytest.mark.parametrize("function", ["hubspot_deal_sync", "outlook_calendar_sync", "teams_invite"])
def test_a_dead_lettering_function_without_the_grant_on_its_dead_letter_queue_is_refused(
    function: str,
) -> None:
    topology = _topology("dev")
    grants = tuple(
        g for g in topology.function(function).grants if g.kind is not topo.ResourceKind.DEAD_LETTER_QUEUE
    )
    with pytest.raises(topo.TopologyError, match="is not granted write on its dead-letter queue"):
        topo.validate(_changed(topology, function, grants=grants))


# --- alarms on the functions' own metrics --------------------------------------------------------------


def test_the_deal_sync_alarms_on_what_needs_a_human() -> None:
    alarms = {
        alarm.metric_name: alarm
        for alarm in _topology("dev").monitoring.metric_alarms
        if alarm.function == "hubspot_deal_sync"
    }
    assert set(alarms) == {
        "EventsFailedPermanently",
        "QboConnectionRevoked",
        "QboClientRejected",
        "QboRefreshTokenNotStored",
        "UnexpectedErrors",
        "DeadLetterSendFailed",
        # HubSpot refused the connection's token (added for every function calling HubSpot)
        "HubSpotTokenRejected",
    }
    assert {alarm.function for alarm in alarms.values()} == {"hubspot_deal_sync"}
    assert all(alarm.threshold == 1 for alarm in alarms.values())
    assert "ledgerlink/dev/connections/<connection>/qbo/oauth" in alarms["QboConnectionRevoked"].description
    assert all(len(alarm.description) <= 1024 for alarm in alarms.values())  # CloudWatch's limit


def test_the_calendar_sync_alarms_on_what_needs_a_human_named_like_the_deal_syncs() -> None:
    # given the alarms on the calendar sync's own metrics
    alarms = {
        alarm.key: alarm
        for alarm in _topology("dev").monitoring.metric_alarms
        if alarm.function == "outlook_calendar_sync"
    }
    # then each metric that needs a human has one, named after its flow as the deal sync's are
    assert {key: alarm.metric_name for key, alarm in alarms.items()} == {
        "calendar-sync-failed-permanently": "EventsFailedPermanently",
        "calendar-sync-unexpected-error": "UnexpectedErrors",
        "graph-credentials-rejected": "GraphCredentialsRejected",
        "calendar-sync-dead-letter-send-failed": "DeadLetterSendFailed",
        "outlook-calendar-sync-hubspot-token-rejected": "HubSpotTokenRejected",
    }
    assert all(alarm.threshold == 1 for alarm in alarms.values())
    # and each says where the records are and what to do, within CloudWatch's limit
    assert all("ledgerlink-dev-calendar-sync-dlq" in alarm.description for alarm in alarms.values())
    graph_secret = "ledgerlink/dev/connections/<connection>/graph/app"
    assert graph_secret in alarms["graph-credentials-rejected"].description
    assert all(len(alarm.description) <= 1024 for alarm in alarms.values())
    # and no two alarms of the stage share a key (each becomes the alarm's name)
    keys = [alarm.key for alarm in _topology("dev").monitoring.metric_alarms]
    assert len(keys) == len(set(keys))


def test_the_teams_invite_alarms_on_what_needs_a_human_named_like_the_calendar_syncs() -> None:
    # given the alarms on the Teams invite's own metrics
    alarms = {
        alarm.key: alarm
        for alarm in _topology("dev").monitoring.metric_alarms
        if alarm.function == "teams_invite"
    }
    # then each metric that needs a human has one, named after its flow as the calendar sync's are
    assert {key: alarm.metric_name for key, alarm in alarms.items()} == {
        "teams-invite-failed-permanently": "EventsFailedPermanently",
        "teams-invite-unexpected-error": "UnexpectedErrors",
        "teams-invite-graph-credentials-rejected": "GraphCredentialsRejected",
        "teams-invite-dead-letter-send-failed": "DeadLetterSendFailed",
        "teams-invite-meetings-not-online": "TeamsMeetingsNotOnline",
        "teams-invite-hubspot-token-rejected": "HubSpotTokenRejected",
    }
    assert all(alarm.threshold == 1 for alarm in alarms.values())
    # and each says where the records are and what to do, within CloudWatch's limit
    assert all("ledgerlink-dev-teams-invite-dlq" in alarm.description for alarm in alarms.values())
    graph_secret = "ledgerlink/dev/connections/<connection>/graph/app"
    assert graph_secret in alarms["teams-invite-graph-credentials-rejected"].description
    assert "teamsForBusiness" in alarms["teams-invite-meetings-not-online"].description
    assert all(len(alarm.description) <= 1024 for alarm in alarms.values())


def _emitted_metric_names(paths: list[Path]) -> set[str]:
    """Every metric name the code in ``paths`` emits (metrics sinks, alarm hooks, Powertools calls)."""
    emitted: set[str] = set()
    for path in paths:
        text = path.read_text(encoding="utf-8")
        emitted |= set(re.findall(r'(?:count|_alarm|alarm)\(\s*"([A-Z][A-Za-z]+)"', text))
        emitted |= set(re.findall(r'add_metric\(\s*name="([A-Z][A-Za-z]+)"', text))
        emitted |= set(re.findall(r'single_metric\(\s*name="([A-Z][A-Za-z]+)"', text))
        for names in re.findall(r"for name in \(([^)]*)\):", text):  # count(name) over a literal tuple
            emitted |= set(re.findall(r'"([A-Z][A-Za-z]+)"', names))
    return emitted


def _code_of(function: topo.FunctionSpec) -> list[Path]:
    """What runs in ``function``: its handler folder and functions/ledgerlink less the other flows' rooms
    (tests/unit/test_layout.py FLOWS names each room's handler)."""
    from tests.unit.test_layout import FLOWS

    handler_module = f"{function.source_folder}.handler"
    others = [
        REPO_ROOT / "functions" / Path(*room.split("."))
        for room, handlers in FLOWS.items()
        if handler_module not in handlers
    ]
    shared = [
        path
        for path in (REPO_ROOT / "functions" / "ledgerlink").rglob("*.py")
        if not any(path.is_relative_to(room) for room in others)
    ]
    return [*(REPO_ROOT / "functions" / function.source_folder).rglob("*.py"), *shared]


def test_every_alarmed_metric_is_one_the_alarmed_function_emits() -> None:
    # given the metric names each function's own code emits (its handler, its flow, the shared rooms)
    topology = _topology("dev")
    for alarm in topology.monitoring.metric_alarms:
        emitted = _emitted_metric_names(_code_of(topology.function(alarm.function)))
        # then each alarm watches a name that function really emits (a rename would silence the alarm)
        assert alarm.metric_name in emitted, (alarm.function, alarm.metric_name)


def test_every_metric_a_math_alarm_reads_is_one_its_function_emits() -> None:
    # given the metric math alarms: rejected deliveries (refused / received) and stalled flows
    topology = _topology("dev")
    refs = [
        *(
            (alarm.function, name)
            for alarm in topology.monitoring.rejected_deliveries_alarms
            for name in ("DeliveriesRejected", "DeliveriesReceived")
        ),
        *(
            (ref.function, ref.metric_name)
            for stalled in topology.monitoring.stalled_flows
            for ref in (stalled.processed, *stalled.upstream)
        ),
    ]
    assert refs
    for function_key, metric_name in refs:
        # then each count is really emitted by that function's code (a rename would silence the alarm)
        emitted = _emitted_metric_names(_code_of(topology.function(function_key)))
        assert metric_name in emitted, (function_key, metric_name)


def test_alarms_look_where_powertools_puts_the_functions_metrics(capsys: pytest.CaptureFixture[str]) -> None:
    # given the metrics object a function uses, emitting one count
    from aws_lambda_powertools.metrics import MetricUnit

    from ledgerlink.observability import METRICS_NAMESPACE, Service, get_metrics

    metrics = get_metrics(Service.HUBSPOT_DEAL_SYNC)
    metrics.add_metric(name="QboConnectionRevoked", unit=MetricUnit.Count, value=1)
    metrics.flush_metrics()
    # then the EMF record has the namespace and the one dimension the alarms use
    emf = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    (directive,) = emf["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == METRICS_NAMESPACE == topo.METRICS_NAMESPACE
    assert directive["Dimensions"] == [[topo.METRICS_SERVICE_DIMENSION]]
    assert emf[topo.METRICS_SERVICE_DIMENSION] == _topology("dev").function("hubspot_deal_sync").service


def test_an_unknown_key_lookup_names_the_known_ones() -> None:
    with pytest.raises(
        KeyError,
        match="no queue 'deal_sync' in the topology \\(known: deal-sync, calendar-sync, teams-invite, document-sync, qbo-catchup, backfill-jobs, qbo-reconcile\\)",
    ):
        _topology("dev").queue("deal_sync")


def _matches(pattern: dict[str, Any], event: dict[str, Any]) -> bool:
    return EventPattern.load(json.dumps(pattern)).matches_event(cast(Any, event))


def test_the_deal_sync_rule_matches_a_recorded_invoice_change() -> None:
    # given the rule's pattern and a qbo.entity.changed event as EventBridge delivers it
    pattern = dict(_topology("dev").rule("qbo-entity-to-deal-sync").event_pattern)
    event = _recorded_invoice_event()
    # then invoices, estimates, payments and customers match
    for entity in topo.DEAL_SYNC_ENTITIES:
        event["detail"]["payload"]["entity"] = entity
        assert _matches(pattern, event), entity


@pytest.mark.parametrize(
    ("field", "value"),
    [("entity", "Bill"), ("entity", "invoice")],
)
def test_the_deal_sync_rule_ignores_other_entities(field: str, value: str) -> None:
    event = _recorded_invoice_event()
    event["detail"]["payload"][field] = value
    assert not _matches(dict(_topology("dev").rule("qbo-entity-to-deal-sync").event_pattern), event)


def test_the_deal_sync_rule_ignores_other_sources_and_detail_types() -> None:
    pattern = dict(_topology("dev").rule("qbo-entity-to-deal-sync").event_pattern)
    from_hubspot = {**_recorded_invoice_event(), "source": "ledgerlink.hubspot"}
    other_type = {**_recorded_invoice_event(), "detail-type": "ledgerlink.deal.synced"}
    assert not _matches(pattern, from_hubspot)
    assert not _matches(pattern, other_type)


def test_the_calendar_sync_rule_matches_what_the_deal_sync_publishes_and_nothing_else() -> None:
    # given the rule's pattern and a deal.synced event as EventBridge delivers it
    rule = _topology("dev").rule("deal-synced-to-calendar-sync")
    pattern = dict(rule.event_pattern)
    # then it sends deal.synced events to the calendar sync's queue
    assert rule.target_queue == "calendar-sync"
    assert rule.name == "ledgerlink-dev-deal-synced-to-calendar-sync"
    assert _matches(pattern, _deal_synced_event())
    # whatever the invoice's status (a paid invoice's event is what removes its calendar entry)
    for status in ("open", "overdue", "partially_paid", "paid", "voided", "deleted"):
        event = _deal_synced_event()
        event["detail"]["payload"]["status"] = status
        assert _matches(pattern, event), status
    # but not the QBO change itself (the calendar follows the deal), nor a deal.synced from elsewhere
    assert not _matches(pattern, _recorded_invoice_event())
    assert not _matches(pattern, {**_deal_synced_event(), "source": "ledgerlink.qbo"})
    assert not _matches(pattern, {**_deal_synced_event(), "detail-type": "ledgerlink.calendar.synced"})


def test_the_deal_sync_rule_ignores_deal_synced_events() -> None:
    pattern = dict(_topology("dev").rule("qbo-entity-to-deal-sync").event_pattern)
    assert not _matches(pattern, _deal_synced_event())


def test_the_teams_invite_rules_match_what_the_calendar_sync_and_the_sweep_publish_and_nothing_else() -> None:
    # given the two pattern rules of the Teams invite
    topology = _topology("dev")
    calendar_synced = topology.rule("calendar-synced-to-teams-invite")
    followup_due = topology.rule("followup-due-to-teams-invite")
    # then both send to the Teams invite's queue, on the LedgerLink bus (they have no schedule)
    assert {calendar_synced.target_queue, followup_due.target_queue} == {"teams-invite"}
    assert calendar_synced.schedule_expression is None and followup_due.schedule_expression is None
    assert calendar_synced.name == "ledgerlink-dev-calendar-synced-to-teams-invite"
    assert followup_due.name == "ledgerlink-dev-followup-due-to-teams-invite"
    # and each matches its event, whatever the calendar sync did to the invoice's event
    for action in ("created", "updated", "cancelled", "deleted"):
        event = _calendar_synced_event()
        event["detail"]["payload"]["action"] = action
        assert _matches(dict(calendar_synced.event_pattern), event), action
    assert _matches(dict(followup_due.event_pattern), _followup_due_event())
    # and neither matches the other's event, the chain's earlier events, or the same type from elsewhere
    assert not _matches(dict(calendar_synced.event_pattern), _followup_due_event())
    assert not _matches(dict(followup_due.event_pattern), _calendar_synced_event())
    for pattern in (dict(calendar_synced.event_pattern), dict(followup_due.event_pattern)):
        assert not _matches(pattern, _deal_synced_event())
        assert not _matches(pattern, _recorded_invoice_event())
        assert not _matches(pattern, _scheduled_event())
    assert not _matches(
        dict(calendar_synced.event_pattern), {**_calendar_synced_event(), "source": "ledgerlink.teams"}
    )
    assert not _matches(
        dict(followup_due.event_pattern), {**_followup_due_event(), "source": "ledgerlink.outlook"}
    )
    # and the earlier flows' rules do not take the Teams invite's events
    for key in ("qbo-entity-to-deal-sync", "deal-synced-to-calendar-sync"):
        pattern = dict(topology.rule(key).event_pattern)
        assert not _matches(pattern, _calendar_synced_event()), key
        assert not _matches(pattern, _followup_due_event()), key


def test_the_follow_up_sweep_is_a_schedule_into_the_teams_invite_queue() -> None:
    # given the sweep's rule
    rule = _topology("prod").rule("followup-sweep")
    # then it is a schedule (no pattern: EventBridge sends its Scheduled Event) into the Teams invite's queue
    assert rule.key == topo.FOLLOWUP_SWEEP_RULE
    assert rule.name == "ledgerlink-prod-followup-sweep"
    assert rule.schedule_expression == "rate(1 day)"
    assert dict(rule.event_pattern) == {}
    assert rule.target_queue == "teams-invite"
    # and what EventBridge cannot deliver is bounded like the other rules' (then the queue's DLQ)
    assert (rule.max_event_age_seconds, rule.retry_attempts) == (24 * 3600, 185)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"schedule_expression": "rate(1 day)"}, "needs either an event pattern or a schedule expression"),
        ({"event_pattern": {}}, "needs either an event pattern or a schedule expression"),
        ({"event_pattern": {}, "schedule_expression": "rate(1 days)"}, "is not an EventBridge schedule"),
    ],
)
def test_a_rule_needs_a_pattern_or_a_valid_schedule_and_not_both(
    changes: dict[str, Any], message: str
) -> None:
    # given the calendar rule changed to have both, neither, or a schedule EventBridge refuses
    topology = _topology("dev")
    rule = dataclasses.replace(topology.rule("deal-synced-to-calendar-sync"), **changes)
    rules = tuple(rule if other.key == rule.key else other for other in topology.rules)
    # then the topology is refused
    with pytest.raises(topo.TopologyError, match=f"rule deal-synced-to-calendar-sync.*{message}"):
        topo.validate(dataclasses.replace(topology, rules=rules))


# --- names ------------------------------------------------------------------------------------------


def _all_names(topology: topo.Topology) -> list[str]:
    return [
        topology.event_bus.name,
        topology.event_bus.archive_name,
        topology.bucket.name,
        topology.bucket.access_log_bucket_name,
        *(table.name for table in topology.tables),
        *(secret.name for secret in topology.secrets),
        *(name for queue in topology.queues for name in (queue.name, queue.dlq_name)),
        *(rule.name for rule in topology.rules),
        *(function.name for function in topology.functions),
        topology.api.name,
        topology.monitoring.topic_name,
        topology.monitoring.dashboard_name,
    ]


def test_stages_share_no_resource_name() -> None:
    names = {stage: set(_all_names(_topology(stage))) for stage in topo.STAGES}
    assert not names["dev"] & names["staging"]
    assert not names["staging"] & names["prod"]
    assert not names["dev"] & names["prod"]


def test_names_carry_the_stage_and_fit_aws_limits() -> None:
    topology = topo.build_topology(
        topo.environment_from_cdk_json("staging"), account=ACCOUNT, region="ap-southeast-2"
    )
    assert all(
        name.startswith(("ledgerlink-staging-", "ledgerlink/staging/")) for name in _all_names(topology)
    )
    assert topology.table("idempotency").name == "ledgerlink-staging-idempotency"
    assert topology.queue("deal-sync").name == "ledgerlink-staging-deal-sync"
    assert topology.queue("deal-sync").dlq_name == "ledgerlink-staging-deal-sync-dlq"
    assert topology.queue("calendar-sync").name == "ledgerlink-staging-calendar-sync"
    assert topology.queue("teams-invite").dlq_name == "ledgerlink-staging-teams-invite-dlq"
    assert topology.function("teams_invite").name == "ledgerlink-staging-teams-invite"
    assert (
        topology.rule("calendar-synced-to-teams-invite").name
        == "ledgerlink-staging-calendar-synced-to-teams-invite"
    )
    assert topology.rule("followup-sweep").name == "ledgerlink-staging-followup-sweep"
    assert (
        topology.rule("deal-synced-to-calendar-sync").name
        == "ledgerlink-staging-deal-synced-to-calendar-sync"
    )
    assert topology.event_bus.name == "ledgerlink-staging-events"
    assert len(topology.bucket.name) <= 63 and len(topology.bucket.access_log_bucket_name) <= 63
    assert len(topology.event_bus.archive_name) <= 48
    assert all(len(function.name) <= 64 for function in topology.functions)
    assert all(len(rule.name) <= 64 for rule in topology.rules)


def test_an_invalid_configuration_file_fails_the_synth_naming_the_file_the_field_and_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # given a dev configuration file with a misspelled key
    broken = (REPO_ROOT / "tests" / "fixtures" / "config" / "misspelled-key.toml").read_text()
    (tmp_path / "dev.toml").write_text(broken)
    monkeypatch.setattr(topo, "CONFIG_DIR", tmp_path)
    # when the dev topology is built (what `make synth ENV=dev` does first)
    with pytest.raises(topo.TopologyError) as refused:
        topo.build_topology(topo.environment_from_cdk_json("dev"), account="123456789012", region="us-east-1")
    # then the error says which file, which field and why
    assert str(refused.value) == (
        f"{tmp_path / 'dev.toml'}: connections[0].stages.invoice: unknown key 'piplines' "
        "(expected one of: pipeline, stages; did you mean 'pipeline'?)"
    )


# --- the HubSpot ingest ------------------------------------------------------------------------------


def test_the_hubspot_webhook_route_reaches_its_own_ingest_function() -> None:
    topology = _topology("dev")
    routes = {route.route_key: route.function for route in topology.api.routes}
    assert routes == {"POST /v1/webhooks/qbo": "qbo_ingest", "POST /v1/webhooks/hubspot": "hubspot_ingest"}
    function = topology.function("hubspot_ingest")
    assert function.handler == "hubspot_ingest.handler.lambda_handler"
    assert function.name == "ledgerlink-dev-hubspot-ingest"
    assert function.service == Service.HUBSPOT_INGEST == function.environment["POWERTOOLS_SERVICE_NAME"]
    # HubSpot waits 5 s for an answer: the QBO ingest's size, which answers Intuit within 3 s
    assert (function.memory_mb, function.timeout_seconds) == (512, 10)


def test_the_hubspot_ingest_reads_every_connections_hubspot_secret_and_writes_only_raw_objects_and_events() -> (
    None
):
    # given a deployment of two connections, each with its own HubSpot app
    config = load_config(WITH_TENANTS)
    topology = topo.build_topology(
        topo.environment_from_cdk_json("dev"), account=ACCOUNT, region=REGION, config=config
    )
    grants = {(g.kind, g.key, g.access) for g in topology.function("hubspot_ingest").grants}
    # then it may read each connection's HubSpot secret (its app's client secret signs its webhooks)
    assert grants == {
        *((topo.ResourceKind.SECRET, f"{c.name}:hubspot", topo.Access.READ) for c in config.connections),
        (topo.ResourceKind.BUCKET, "raw", topo.Access.WRITE),
        (topo.ResourceKind.EVENT_BUS, "events", topo.Access.WRITE),
    }
    assert len(config.connections) == 2


def test_the_hubspot_webhook_url_comes_from_cdk_json_when_a_stage_sets_one() -> None:
    # given cdk.json as committed: no stage sets one, so the function rebuilds the URL itself
    for stage in topo.STAGES:
        assert EnvVar.HUBSPOT_WEBHOOK_URL.value not in _topology(stage).function("hubspot_ingest").environment
    # when a stage registers HubSpot's webhook behind a custom domain with a base path
    environments = _cdk_json_environments()
    registered = "https://hooks.example.com/ledgerlink/v1/webhooks/hubspot"
    custom = topo.environment_from_context(
        "dev", {"dev": {**environments["dev"], "hubspot_webhook_url": registered}}
    )
    topology = topo.build_topology(custom, account=ACCOUNT, region=REGION)
    # then the HubSpot ingest, and only it, checks signatures against that URL
    assert topology.function("hubspot_ingest").environment[EnvVar.HUBSPOT_WEBHOOK_URL.value] == registered
    assert (
        Settings.from_env(topology.function("hubspot_ingest").environment).hubspot_webhook_url == registered
    )
    others = [f.key for f in topology.functions if EnvVar.HUBSPOT_WEBHOOK_URL.value in f.environment]
    assert others == ["hubspot_ingest"]


@pytest.mark.parametrize(
    "value",
    ["http://hooks.example.com/v1/webhooks/hubspot", "https://hooks.example.com/v1?x=1", "hooks.example.com"],
)
def test_a_hubspot_webhook_url_that_is_no_https_url_without_a_query_is_refused(value: str) -> None:
    environments = _cdk_json_environments()
    with pytest.raises(topo.TopologyError, match=r"environments\.dev\.hubspot_webhook_url must be"):
        topo.environment_from_context("dev", {"dev": {**environments["dev"], "hubspot_webhook_url": value}})


def test_only_the_document_sync_rule_takes_the_hubspot_deal_events() -> None:
    # given a hubspot.deal.changed event as EventBridge would deliver it
    event = {
        "version": "0",
        "id": "0d8e4a8c-1f2b-4c3d-9e5f-6a7b8c9d0e1f",
        "detail-type": "hubspot.deal.changed",
        "source": "ledgerlink.hubspot.webhooks",
        "account": ACCOUNT,
        "time": "2026-11-25T14:02:52Z",
        "region": REGION,
        "resources": [],
        "detail": {"payload": {"change": "stage_changed", "entity": "Invoice"}},
    }
    # then the document sync's rule takes it, and no other flow mistakes it for its own input (the calendar
    # sync's rule names ledgerlink.hubspot, the deal sync's source, exactly)
    taking = [
        rule.key
        for rule in _topology("dev").rules
        if rule.event_pattern and _matches(dict(rule.event_pattern), event)
    ]
    assert taking == ["hubspot-deal-to-document-sync"]
    assert _topology("dev").rule("hubspot-deal-to-document-sync").target_queue == "document-sync"
