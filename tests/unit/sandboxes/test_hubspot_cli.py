"""The HubSpot sandbox runs on its own from the command line; demo credentials for the local stack."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import requests

from ledgerlink_local.sandboxes.hubspot import DEMO_ACCESS_TOKEN, DemoCredentials

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
