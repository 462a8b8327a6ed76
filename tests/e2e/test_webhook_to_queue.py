"""End to end on the local stack: a QBO webhook through the gateway, the ingest function, the bus and
the rule, to the deal-sync queue; a bad signature moves nothing.

The stack runs without pollers here, so what reached the queue stays there to be read.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledgerlink_local.stack.up import LOCAL_JSON_KEYS, LocalEnvironment
from tests.conftest import FIXTURES
from tests.e2e.conftest import (
    RECORDED_REALM_ID,
    local_environment,
    post_webhook,
    queue_depth,
    raw_objects,
    recorded_delivery,
    sign,
)

DELIVERY = "cloudevents_invoice_created.json"


@pytest.fixture(scope="module")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ledgerlink-state")


@pytest.fixture(scope="module")
def environment(state_dir: Path) -> Iterator[LocalEnvironment]:
    with local_environment(state_dir, start_pollers=False) as environment:
        yield environment


def _verifier_token(state_dir: Path) -> str:
    return json.loads((state_dir / "local.json").read_text())["qbo"]["verifier_token"]


def _deal_sync_queue(environment: LocalEnvironment):
    assert environment.stack.resources is not None
    return environment.stack.resources.queue("deal-sync")


def test_local_json_has_exactly_the_documented_keys(environment, state_dir):
    description = json.loads((state_dir / "local.json").read_text())
    # every key it had (the first connection), then one object per connection
    assert list(description) == ["gateway_url", "qbo", "hubspot", "graph", "aws", "connections"]
    assert [connection["name"] for connection in description["connections"]] == ["demo", "thames"]
    for section, keys in LOCAL_JSON_KEYS.items():
        assert list(description[section]) == list(keys), section
        assert all(isinstance(value, str) and value for value in description[section].values()), section
    assert description["gateway_url"] == environment.stack.gateway_url
    assert description["aws"] == {"endpoint_url": environment.stack.endpoint_url, "region": "us-east-1"}
    # the file holds local credentials: the developer's eyes only
    assert stat.S_IMODE(os.stat(state_dir / "local.json").st_mode) == 0o600


def test_a_signed_cloudevents_webhook_reaches_the_bus_and_the_deal_sync_queue(environment, state_dir):
    # given a recorded CloudEvents delivery, signed with the verifier token the stack stored
    body = recorded_delivery(DELIVERY)
    cloudevent = json.loads(body)[0]
    queue = _deal_sync_queue(environment)
    objects_before = set(raw_objects(environment))
    # when Intuit's POST reaches the gateway
    reply = post_webhook(environment, body, sign(_verifier_token(state_dir), body))
    # then the ingest function accepted it
    assert reply.status_code == 200, reply.text
    assert reply.json()["accepted"] == 1
    delivery_id = reply.headers["apigw-requestid"]
    # and archived the raw delivery, byte for byte, under the gateway's request id
    new_objects = set(raw_objects(environment)) - objects_before
    assert len(new_objects) == 1
    assert environment.stack.resources is not None
    archived = json.loads(
        environment.stack.client("s3")
        .get_object(Bucket=environment.stack.resources.bucket_name, Key=new_objects.pop())["Body"]
        .read()
    )
    assert archived["delivery_id"] == delivery_id
    assert archived["body"].encode() == body
    # and the event went through the bus and the rule to the deal-sync queue, with its envelope
    sqs = environment.stack.client("sqs")
    messages = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10, WaitTimeSeconds=2)["Messages"]
    events = [json.loads(message["Body"]) for message in messages]
    ours = [event for event in events if event["detail"]["correlation_id"] == cloudevent["id"]]
    assert len(ours) == 1
    event = ours[0]
    assert (event["source"], event["detail-type"]) == ("ledgerlink.qbo", "qbo.entity.changed")
    payload = event["detail"]["payload"]
    assert (payload["realm_id"], payload["entity"], payload["entity_id"], payload["operation"]) == (
        cloudevent["intuitaccountid"],
        "Invoice",
        cloudevent["intuitentityid"],
        "Create",
    )
    assert payload["delivery_id"] == delivery_id
    # and nothing was dead-lettered
    assert queue_depth(environment, queue.dlq_url) == 0


def test_a_delivery_for_a_company_no_connection_serves_is_answered_200_archived_and_not_queued(
    environment, state_dir
):
    # given Intuit's recorded delivery as it was, for a company the local stack has no connection for
    body = (FIXTURES / "qbo_webhooks" / DELIVERY).read_bytes()
    assert RECORDED_REALM_ID.encode() in body
    queue = _deal_sync_queue(environment)
    objects_before = set(raw_objects(environment))
    depth_before = queue_depth(environment, queue.url)
    # when Intuit's POST reaches the gateway
    reply = post_webhook(environment, body, sign(_verifier_token(state_dir), body))
    # then it is accepted (so Intuit stops retrying), with its event skipped, not published ...
    assert reply.status_code == 200, reply.text
    assert (reply.json()["accepted"], reply.json()["skipped"]) == (0, 1)
    # ... and archived, for a replay once a connection serves the company
    assert len(set(raw_objects(environment)) - objects_before) == 1
    assert queue_depth(environment, queue.url) == depth_before


def test_a_bad_signature_gets_401_and_nothing_moves(environment):
    # given the same delivery signed with the wrong token
    body = recorded_delivery(DELIVERY)
    queue = _deal_sync_queue(environment)
    objects_before = raw_objects(environment)
    depth_before = queue_depth(environment, queue.url)
    # when it reaches the gateway
    reply = post_webhook(environment, body, sign("not-the-verifier-token", body))
    # then it is refused as unauthorised, and no object and no message appeared
    assert reply.status_code == 401
    assert reply.json()["error"] == "invalid_signature"
    assert raw_objects(environment) == objects_before
    assert queue_depth(environment, queue.url) == depth_before


def test_an_unknown_route_is_the_gateways_404(environment):
    import requests

    reply = requests.post(environment.stack.gateway_url + "/v1/webhooks/unknown", data=b"{}", timeout=10)
    assert reply.status_code == 404 and reply.json() == {"message": "Not Found"}
