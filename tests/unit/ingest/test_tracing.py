"""In Lambda, the ingest tracers (QBO, HubSpot) record every AWS SDK call and patch nothing else.

The tracer is only enabled inside Lambda, and the X-Ray SDK patches libraries process-wide, so this
looks from a fresh interpreter given the variables the Lambda runtime sets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

_PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
import botocore.client
print(json.dumps({
    "botocore_traced": hasattr(botocore.client.BaseClient._make_api_call, "__wrapped__"),
    "imported_for_tracing": sorted(name for name in ("requests", "sqlite3") if name in sys.modules),
}))
"""


@pytest.mark.parametrize("handler", ["qbo_ingest.handler", "hubspot_ingest.handler"])
def test_in_lambda_the_tracer_patches_the_aws_sdk_and_nothing_else(tmp_path: Path, handler: str) -> None:
    # given the environment the Lambda runtime gives the function (tracing active)
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(REPO_ROOT / "functions"),
        "AWS_DEFAULT_REGION": "us-east-1",
        "LAMBDA_TASK_ROOT": str(tmp_path),
        "_X_AMZN_TRACE_ID": "Root=1-6745e0bc-4b7e2c1d3f5a6b7c8d9e0f1a;Parent=53995c3f42cd8ad8;Sampled=1",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2000",
    }

    # when the handler module is imported
    completed = subprocess.run(  # noqa: S603 - our own interpreter on our own module
        [sys.executable, "-c", _PROBE, handler],
        capture_output=True,
        text=True,
        env=environment,
        cwd=REPO_ROOT,
        check=True,
    )

    # then AWS SDK calls are traced, and the libraries patch_all would import to patch them are not
    # imported (the handler makes no call through them)
    assert json.loads(completed.stdout.strip().splitlines()[-1]) == {
        "botocore_traced": True,
        "imported_for_tracing": [],
    }
