"""``ledgerlink config validate`` against the running local stack: the shipped local file fits it, and
a connection without secrets or a stage its portal lacks is named with the file, the path and why."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from ledgerlink.cli import config as config_cli
from ledgerlink_local.stack.wiring import local_config_file
from tests.conftest import FIXTURES


def _validate(state_dir: Path, *files: Path, stage: str | None = None) -> tuple[int, str]:
    args = argparse.Namespace(
        files=list(files),
        stage=stage,
        offline=False,
        aws=False,
        endpoint_url=None,
        region=None,
        state_dir=str(state_dir),
    )
    out = io.StringIO()
    return config_cli.run_validate(args, out), out.getvalue()


def test_the_local_file_fits_the_local_stack(environment, state_dir):
    code, output = _validate(state_dir, local_config_file())
    assert code == 0, output
    assert "secrets and stages checked against the local stack" in output


def test_a_connection_without_its_secrets_is_named(environment, state_dir):
    path = FIXTURES / "config" / "without-secrets.toml"
    code, output = _validate(state_dir, path, stage="local")
    assert code == 1
    assert (
        f"invalid  {path}: connections[1]: connection 'second' has no secret "
        "ledgerlink/local/connections/second/qbo/oauth, ledgerlink/local/connections/second/hubspot/app"
    ) in output


def test_a_stage_the_portal_does_not_have_is_named(environment, state_dir):
    path = FIXTURES / "config" / "unknown-stage.toml"
    code, output = _validate(state_dir, path, stage="local")
    assert code == 1
    assert (
        f"{path}: connections[0].stages.invoice.stages.paid: stage '880099' is not a stage of pipeline "
        "'880014' in portal 48213570"
    ) in output
