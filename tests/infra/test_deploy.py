"""What an operator deploys with (infra/deploy.py, no CDK): the stack outputs derived from the topology,
each secret's JSON shape as the code that reads it expects, and the alarm-destination rule."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from infra import deploy
from infra import topology as topo
from ledgerlink.cli.connect import CALENDAR_ROLE, HUBSPOT_SCOPES
from ledgerlink.config import DEFAULTS, EnvVar
from ledgerlink.configfile import load as load_config
from ledgerlink.graph.auth import GraphAuth
from ledgerlink.hubspot.client import HubSpotAuth
from ledgerlink.ingest.signing_secret import SecretStoreSigningSecrets
from ledgerlink.ingest.verifier import SecretStoreVerifierToken
from ledgerlink.qbo.oauth import QboOAuth
from ledgerlink.secrets import InMemorySecretStore
from tests.conftest import REPO_ROOT

ACCOUNT = "123456789012"
REGION = "us-east-1"
# Two connections, each with a Microsoft tenant: every kind of secret exists.
WITH_TENANTS = REPO_ROOT / "local" / "config" / "local.toml"
SECRET = "ledgerlink/prod/connections/main/any"
TENANT = "0b7e5c1a-2d3f-4e6a-8b9c-1d2e3f4a5b6c"


def _topology(stage: str = "prod", **environment: Any) -> topo.Topology:
    env = dataclasses.replace(topo.environment_from_cdk_json(stage), **environment)
    return topo.build_topology(env, account=ACCOUNT, region=REGION, config=load_config(WITH_TENANTS))


# --- the stack outputs -----------------------------------------------------------------------------


def test_every_secret_and_every_webhook_route_of_the_topology_has_its_outputs() -> None:
    # given a stage whose connections hold every kind of secret
    topology = _topology()
    assert {deploy.secret_kind(secret) for secret in topology.secrets} == set(deploy.SECRET_SHAPES)
    # when its outputs are declared
    outputs = deploy.stack_outputs(topology)
    by_kind = {
        kind: {output.ref: output for output in outputs if output.kind == kind} for kind in deploy.OutputKind
    }
    # then each secret has its name (as a literal) and its ARN, and each route its URL
    for secret in topology.secrets:
        assert by_kind[deploy.OutputKind.SECRET_NAME][secret.key].literal == secret.name
        assert secret.key in by_kind[deploy.OutputKind.SECRET_ARN]
    assert set(by_kind[deploy.OutputKind.WEBHOOK_URL]) == {route.route_key for route in topology.api.routes}
    assert set(by_kind[deploy.OutputKind.DEAD_LETTER_QUEUE_URL]) == {queue.key for queue in topology.queues}
    # and the alarm topic and the dashboard are there once each
    assert [o.key for o in outputs if o.kind == deploy.OutputKind.ALARM_TOPIC_ARN] == ["AlarmTopicArn"]
    dashboard = [o for o in outputs if o.kind == deploy.OutputKind.DASHBOARD_NAME]
    assert [o.literal for o in dashboard] == [topology.monitoring.dashboard_name]
    # and every logical id is distinct and one CloudFormation accepts
    keys = [output.key for output in outputs]
    assert len(keys) == len(set(keys))
    assert all(key.isalnum() and key[0].isupper() and len(key) <= 255 for key in keys)
    assert all(0 < len(output.description) <= 1024 for output in outputs)


def test_each_output_says_where_its_value_goes() -> None:
    outputs = {output.key: output for output in deploy.stack_outputs(_topology())}
    assert "Intuit developer portal" in outputs["WebhookUrlPostV1WebhooksQbo"].description
    assert "HubSpot app: Webhooks > Target URL" in outputs["WebhookUrlPostV1WebhooksHubspot"].description
    # a connection's secret names the connection's own connect command and its JSON shape
    graph = outputs["SecretNameThamesGraph"].description
    assert "`ledgerlink connect microsoft --connection thames`" in graph
    assert '"client_id": "<client_id>"' in graph and "required: client_id, client_secret" in graph
    assert "put-secret-value" in outputs["SecretNameQboWebhook"].description


def test_a_custom_hubspot_webhook_url_is_named_as_the_one_to_register() -> None:
    url = "https://hooks.example.com/ledgerlink/v1/webhooks/hubspot"
    outputs = {output.key: output for output in deploy.stack_outputs(_topology(hubspot_webhook_url=url))}
    assert f"register {url} instead" in outputs["WebhookUrlPostV1WebhooksHubspot"].description


def test_the_alarm_topic_output_says_whether_an_email_must_be_confirmed() -> None:
    subscribed = {o.key: o for o in deploy.stack_outputs(_topology(alarm_email="ops@example.com"))}
    assert "ops@example.com is subscribed: confirm" in subscribed["AlarmTopicArn"].description
    unsubscribed = {o.key: o for o in deploy.stack_outputs(_topology("dev"))}
    assert "no e-mail is subscribed" in unsubscribed["AlarmTopicArn"].description


# --- the secrets' JSON shapes, against the code that reads them ------------------------------------


@dataclass(frozen=True)
class _Connection:
    name: str = "main"

    def secret_name(self, stage: str, kind: str) -> str:
        return SECRET


def _qbo_webhook(store: InMemorySecretStore) -> object:
    return SecretStoreVerifierToken(store, SECRET)()


def _qbo_oauth(store: InMemorySecretStore) -> object:
    oauth = QboOAuth(secret_name=SECRET, secrets=store, state=None, token_http=None, token_path="/")  # type: ignore[arg-type]
    oauth.realm_id()  # reads the credentials, refusing a secret without them
    return True


def _hubspot(store: InMemorySecretStore) -> object:
    # the deal sync's token and the HubSpot ingest's signing secret, both from this one secret
    return HubSpotAuth(store, SECRET)(), SecretStoreSigningSecrets(store, "prod")(_Connection())


def _graph(store: InMemorySecretStore) -> object:
    auth = GraphAuth(
        secret_name=SECRET,
        tenant_id=TENANT,
        secrets=store,
        token_http=None,
        token_url="https://login.example/{tenant}/token",
    )  # type: ignore[arg-type]
    return auth.app_id


READERS: dict[str, Callable[[InMemorySecretStore], object]] = {
    "qbo-webhook": _qbo_webhook,
    "qbo-oauth": _qbo_oauth,
    "hubspot": _hubspot,
    "graph": _graph,
}


def _filled(shape: deploy.SecretShape, without: str | None = None) -> InMemorySecretStore:
    values = {
        field.name: TENANT if field.name == "tenant_id" else f"value-of-{field.name}"
        for field in shape.fields
    }
    values.pop(without or "", None)
    return InMemorySecretStore({SECRET: values})


@pytest.mark.parametrize("kind", sorted(deploy.SECRET_SHAPES))
def test_each_documented_shape_is_what_its_readers_accept_and_each_required_field_is_needed(
    kind: str,
) -> None:
    shape = deploy.SECRET_SHAPES[kind]
    read = READERS[kind]
    # given the secret filled with every documented field: its readers accept it
    assert read(_filled(shape))
    for field in shape.fields:
        if field.required:
            # without a required field, a reader refuses it, naming the field
            with pytest.raises(Exception, match=field.name):
                read(_filled(shape, without=field.name))
        else:
            # an optional one may be left out
            assert read(_filled(shape, without=field.name))


# --- the alarm destination -------------------------------------------------------------------------


def test_a_stage_that_must_page_someone_is_refused_without_an_alarm_email_naming_both_ways() -> None:
    prod = topo.environment_from_cdk_json("prod")
    assert prod.stage in topo.ALARM_EMAIL_REQUIRED_STAGES and prod.alarm_email is None
    with pytest.raises(topo.TopologyError) as refused:
        deploy.alarm_destination_warning(prod)
    message = str(refused.value)
    assert "context.environments.prod.alarm_email" in message
    assert "-c alarm_email=" in message and "ALARM_EMAIL=" in message


def test_another_stage_without_an_alarm_email_gets_a_warning_and_one_with_it_none() -> None:
    dev = topo.environment_from_cdk_json("dev")
    warning = deploy.alarm_destination_warning(dev)
    assert warning is not None and "ledgerlink-dev-alarms" in warning and "reach nobody" in warning
    assert "-c alarm_email=" in warning and len(warning.splitlines()) > 3
    assert deploy.alarm_destination_warning(deploy.with_alarm_email(dev, "ops@example.com")) is None


def test_the_context_alarm_email_wins_over_cdk_json_and_must_be_an_address() -> None:
    prod = dataclasses.replace(topo.environment_from_cdk_json("prod"), alarm_email="old@example.com")
    assert deploy.with_alarm_email(prod, "pager@example.com").alarm_email == "pager@example.com"
    assert deploy.with_alarm_email(prod, None).alarm_email == "old@example.com"
    assert deploy.with_alarm_email(prod, "").alarm_email == "old@example.com"
    with pytest.raises(topo.TopologyError, match="-c alarm_email must be an e-mail address"):
        deploy.with_alarm_email(prod, "ops-at-example")


# --- docs/infra.md#deploy-to-aws names only what the code has -------------------------------------

DEPLOY_DOC = REPO_ROOT / "docs" / "infra.md"
CODE_SPAN = re.compile(r"`([^`]+)`")
FENCE = re.compile(r"^```.*?^```$", re.MULTILINE | re.DOTALL)
# The section's example deployment: prod with `main` (with a Microsoft tenant) and `north-east`.
DOC_CONFIG = """version = 1
[defaults]
time_zone = "America/New_York"

[[connections]]
name = "main"
qbo = { realm_id = "0000000000000000" }
hubspot = { portal_id = "00000000" }
country = "US"
[connections.microsoft]
tenant_id = "0b7e5c1a-2d3f-4e6a-8b9c-1d2e3f4a5b6c"
accounts_receivable_mailbox = "ar@example.com"

[[connections]]
name = "north-east"
qbo = { realm_id = "1111222233334444" }
hubspot = { portal_id = "55556666" }
country = "US"
"""


def _deploy_section() -> str:
    text = DEPLOY_DOC.read_text(encoding="utf-8")
    start = text.index("\n## Deploy to AWS\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


@pytest.fixture(scope="module")
def documented(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, set[str], topo.Topology]:
    config_file = tmp_path_factory.mktemp("config") / "prod.toml"
    config_file.write_text(DOC_CONFIG, encoding="utf-8")
    topology = topo.build_topology(
        topo.environment_from_cdk_json("prod"),
        account=ACCOUNT,
        region=REGION,
        config=load_config(config_file),
    )
    section = _deploy_section()
    return section, set(CODE_SPAN.findall(FENCE.sub("", section))), topology


def test_every_output_the_section_names_exists_and_it_names_every_output_of_main(
    documented: tuple[str, set[str], topo.Topology],
) -> None:
    _, spans, topology = documented
    outputs = {output.key: output for output in deploy.stack_outputs(topology)}
    named = {
        span
        for span in spans
        if re.fullmatch(r"(WebhookUrl|SecretName|SecretArn|DeadLetterQueueUrl)\w+", span)
    }
    named |= {span for span in spans if span in ("AlarmTopicArn", "DashboardName", "EventBusName")}
    assert named - set(outputs) == set()
    north_east = {key for key, output in outputs.items() if output.ref.startswith("north-east:")}
    assert set(outputs) - north_east - named == set()


def test_every_secret_name_and_field_the_section_names_is_the_codes(
    documented: tuple[str, set[str], topo.Topology],
) -> None:
    section, spans, topology = documented
    names = {secret.name for secret in topology.secrets}
    for name in re.findall(r"ledgerlink/(?:prod|<stage>)/[\w<>/-]+", section):
        assert name.replace("<stage>", "prod").replace("<name>", "main") in names, name
    # each JSON object shown is a secret's shape, whole, or the placeholder the stack creates
    shapes = [[field.name for field in shape.fields] for shape in deploy.SECRET_SHAPES.values()]
    shown = [json.loads(span) for span in spans if span.startswith("{")]
    for value in shown:
        assert list(value) in [*shapes, ["configured", "placeholder"], ["verifier_token"]], value
    assert all(shape in [list(value) for value in shown] for shape in shapes)


def test_the_scopes_entities_variables_and_context_keys_the_section_names_are_the_codes(
    documented: tuple[str, set[str], topo.Topology],
) -> None:
    section, spans, _ = documented
    # the HubSpot private-app scopes: exactly those `ledgerlink connect hubspot` requires
    assert sorted(span for span in spans if span.startswith("crm.")) == sorted(HUBSPOT_SCOPES)
    # the Intuit entities to subscribe to: exactly what the deal sync's rule passes and catch-up reads
    entities_line = next(line for line in section.splitlines() if "**Entities**" in line)
    assert CODE_SPAN.findall(entities_line) == list(topo.DEAL_SYNC_ENTITIES)
    assert DEFAULTS[EnvVar.CATCHUP_ENTITIES].split(",") == list(topo.DEAL_SYNC_ENTITIES)
    # the Graph permission `connect microsoft` checks
    assert f"`{CALENDAR_ROLE}`" in section
    # every variable named is one the code reads
    known = {name.value for name in EnvVar}
    assert {name for name in re.findall(r"LEDGERLINK_[A-Z_]+", section)} <= known
    # the context keys the app reads
    assert "-c env=prod" in section and f"-c {deploy.ALARM_EMAIL_CONTEXT_KEY}=" in section
    assert f"`{sorted(topo.ALARM_EMAIL_REQUIRED_STAGES)[0]}`" in section


def test_every_resource_name_the_section_names_is_one_of_the_topology(
    documented: tuple[str, set[str], topo.Topology],
) -> None:
    section, _, topology = documented
    names = {
        *(function.name for function in topology.functions),
        *(queue.name for queue in topology.queues),
        *(queue.dlq_name for queue in topology.queues),
        *(table.name for table in topology.tables),
        *(rule.name for rule in topology.rules),
        topology.event_bus.name,
        topology.api.name,
        topology.monitoring.topic_name,
        topology.monitoring.dashboard_name,
    }
    found = re.findall(r"ledgerlink-(?:prod|<stage>)-[a-z0-9-]*[a-z0-9]", section)
    assert found
    assert {name.replace("<stage>", "prod") for name in found} <= names
    assert topology.stack_name in section
