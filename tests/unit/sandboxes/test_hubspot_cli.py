"""The HubSpot sandbox runs on its own from the command line; demo credentials for the local stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests

from ledgerlink_local.sandboxes import hubspot
from ledgerlink_local.sandboxes.core import SandboxServer
from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN, DemoCredentials
from ledgerlink_local.stack.settings import DEFAULT_PORTS, LocalEnv

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_runs_alone_on_a_chosen_port() -> None:
    # when the module is started as a program on a free port with a webhook target
    process = subprocess.Popen(
        [sys.executable, "-m", "ledgerlink_local.sandboxes.hubspot", "--port", "0",
         "--webhook-url", "http://127.0.0.1:9/hook", "--ten-secondly-limit", "190"],
        cwd=REPO_ROOT,
        env={"PYTHONPATH": f"{REPO_ROOT / 'local'}:{REPO_ROOT / 'functions'}", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        announced = json.loads(process.stdout.readline())
        # then it announces itself and serves HubSpot with the options given
        assert announced["vendor"] == "hubspot"
        deals = requests.get(
            announced["url"] + "/crm/v3/objects/deals",
            headers={"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"},
            timeout=10,
        )
        config = requests.get(announced["admin"] + "/config", timeout=10).json()
        assert deals.status_code == 200 and deals.headers["X-HubSpot-RateLimit-Max"] == "190"
        assert config["webhook_url"] == "http://127.0.0.1:9/hook"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_demo_credentials_have_the_keys_the_local_stack_writes() -> None:
    credentials = DemoCredentials(base_url="http://127.0.0.1:8702").as_dict()
    assert set(credentials) == {"base_url", "access_token", "client_secret", "portal_id"}
    assert credentials["access_token"] == DEMO_ACCESS_TOKEN and credentials["portal_id"] == "48213570"


def test_demo_credentials_for_a_running_sandbox_open_its_api(hubspot_sandbox: SandboxServer) -> None:
    # given the credentials the local stack derives from the sandbox's URL, as it does for every vendor
    credentials = DemoCredentials.for_sandbox(hubspot_sandbox.url + "/").as_dict()
    # when a client uses them as they are written to .ledgerlink/local.json
    deals = requests.get(
        credentials["base_url"] + "/crm/v3/objects/deals",
        headers={"Authorization": f"Bearer {credentials['access_token']}"},
        timeout=10,
    )
    # then they carry the local.json keys, the base URL has no trailing slash, and the token opens the portal
    assert set(credentials) == {"base_url", "access_token", "client_secret", "portal_id"}
    assert credentials["base_url"] == hubspot_sandbox.url
    assert deals.status_code == 200 and deals.json()["results"]


def test_command_line_default_port_is_the_local_stacks() -> None:
    # a sandbox started by hand without --port is where `ledgerlink local up` and local.json expect it
    assert hubspot.DEFAULT_PORT == DEFAULT_PORTS[LocalEnv.HUBSPOT_PORT] == 4012
