"""What ``ledgerlink local up`` decides before anything runs: options, local.json, secrets, conflicts."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import pytest

from ledgerlink_local.stack.settings import LocalSettingsError, resolve
from ledgerlink_local.stack.up import (
    LOCAL_JSON_KEYS,
    UpError,
    local_description,
    refuse_if_running,
    secret_values,
    vendor_urls,
    write_local_json,
)

CREDENTIALS = {
    "qbo": {
        "base_url": "http://127.0.0.1:4011",
        "token_url": "http://127.0.0.1:4011/oauth2/v1/tokens/bearer",
        "realm_id": "9341453908059321",
        "client_id": "qbo-client",
        "client_secret": "qbo-secret",
        "refresh_token": "qbo-refresh",
        "verifier_token": "qbo-verifier",
    },
    "hubspot": {
        "base_url": "http://127.0.0.1:4012",
        "access_token": "hs-token",
        "client_secret": "hs-secret",
        "portal_id": "1",
    },
    "graph": {
        "base_url": "http://127.0.0.1:4013/v1.0",
        "token_url": "http://127.0.0.1:4013/4f1c2a8e-7b3d-4c59-9e21-6a0d5b8c3f17/oauth2/v2.0/token",
        "tenant_id": "4f1c2a8e-7b3d-4c59-9e21-6a0d5b8c3f17",
        "client_id": "graph-client",
        "client_secret": "graph-secret",
        "calendar_user": "finance@example.test",
    },
}


def test_flags_win_over_environment_which_wins_over_defaults():
    environ = {
        "LEDGERLINK_LOCAL_GATEWAY_PORT": "5010",
        "LEDGERLINK_LOCAL_AWS_PORT": "5566",
        "LEDGERLINK_DEMO": "0",
    }
    settings = resolve(gateway_port=6010, environ=environ)
    assert (settings.ports.gateway, settings.ports.aws, settings.ports.qbo) == (6010, 5566, 4011)
    assert settings.demo is False
    assert resolve(environ={}).demo is True
    assert resolve(state_dir="/tmp/other", environ={}).local_json == Path("/tmp/other/local.json")


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"LEDGERLINK_LOCAL_QBO_PORT": "http"}, "LEDGERLINK_LOCAL_QBO_PORT must be a port number"),
        ({"LEDGERLINK_LOCAL_AWS_PORT": "70000"}, "between 0 and 65535"),
        ({"LEDGERLINK_DEMO": "maybe"}, "LEDGERLINK_DEMO must be 1/0"),
    ],
)
def test_a_bad_option_names_the_variable(environ, message):
    with pytest.raises(LocalSettingsError, match=message):
        resolve(environ=environ)


def test_local_json_has_exactly_the_documented_keys_and_only_the_owner_reads_it(tmp_path):
    description = local_description(
        "http://127.0.0.1:4010", CREDENTIALS, "http://127.0.0.1:4566", "us-east-1"
    )
    write_local_json(tmp_path / "local.json", description)
    written = json.loads((tmp_path / "local.json").read_text())
    assert list(written) == ["gateway_url", "qbo", "hubspot", "graph", "aws"]
    for section, keys in LOCAL_JSON_KEYS.items():
        assert tuple(written[section]) == keys
    assert written["aws"] == {"endpoint_url": "http://127.0.0.1:4566", "region": "us-east-1"}
    assert stat.S_IMODE(os.stat(tmp_path / "local.json").st_mode) == 0o600


def test_secrets_hold_what_the_functions_read():
    values = {key: json.loads(value) for key, value in secret_values(CREDENTIALS).items()}
    assert values["qbo-webhook"] == {"verifier_token": "qbo-verifier"}
    assert values["qbo-oauth"] == {
        "client_id": "qbo-client",
        "client_secret": "qbo-secret",
        "refresh_token": "qbo-refresh",
        "realm_id": "9341453908059321",
    }
    assert values["hubspot"]["access_token"] == "hs-token"
    assert values["graph"]["tenant_id"] == CREDENTIALS["graph"]["tenant_id"]


def test_the_graph_token_url_keeps_the_tenant_placeholder_of_the_configuration():
    urls = vendor_urls(CREDENTIALS)
    assert urls.graph_token_url == "http://127.0.0.1:4013/{tenant}/oauth2/v2.0/token"
    assert urls.qbo_token_url == CREDENTIALS["qbo"]["token_url"]


def test_a_second_stack_on_the_same_state_directory_is_refused(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        port = listener.getsockname()[1]
        (tmp_path / "local.json").write_text(
            json.dumps({"aws": {"endpoint_url": f"http://127.0.0.1:{port}"}})
        )
        with pytest.raises(UpError, match="already runs with state directory"):
            refuse_if_running(tmp_path / "local.json")
    finally:
        listener.close()
    # once that stack is gone, its leftover description is no obstacle
    refuse_if_running(tmp_path / "local.json")
