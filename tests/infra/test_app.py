"""The CDK app's entry point (infra/app.py): the alarm destination it insists on before building."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import topology as topo
from infra.app import build_app


def _code_dir(tmp_path: Path) -> Path:
    """A code folder with one handler: enough to build the stack without the (slow) asset build."""
    code_dir = tmp_path / "code"
    (code_dir / "qbo_ingest").mkdir(parents=True)
    (code_dir / "qbo_ingest" / "handler.py").write_text(
        "def lambda_handler(event, context):\n    return None\n"
    )
    return code_dir


def _warnings(node_metadata: list) -> list[str]:  # type: ignore[type-arg]
    return [str(entry.data) for entry in node_metadata if entry.type == "aws:cdk:warning"]


def test_prod_without_an_alarm_email_is_refused_before_anything_is_built(tmp_path: Path) -> None:
    # given cdk.json's prod, whose alarm_email is null, and no -c alarm_email
    # when the app is built, then it refuses, naming both places an e-mail can be set
    with pytest.raises(topo.TopologyError, match="stage prod needs an alarm destination") as refused:
        build_app(outdir=tmp_path / "out", context={"env": "prod"}, code_dir=tmp_path / "no-code")
    assert "context.environments.prod.alarm_email" in str(refused.value)
    assert "-c alarm_email=ops@example.com" in str(refused.value)
    # and no asset was built, no template written
    assert list((tmp_path / "out").iterdir()) == []


def test_prod_with_an_alarm_email_on_the_command_line_subscribes_it(tmp_path: Path) -> None:
    _, stack = build_app(
        outdir=tmp_path / "out",
        context={"env": "prod", "alarm_email": "pager@example.com"},
        code_dir=_code_dir(tmp_path),
    )
    assert stack.topology.monitoring.alarm_email == "pager@example.com"
    assert not any("no alarm e-mail" in warning for warning in _warnings(stack.node.metadata))


def test_dev_without_an_alarm_email_is_built_with_a_loud_warning_on_stderr_and_on_the_stack(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # when dev (no alarm e-mail in cdk.json) is built
    _, stack = build_app(outdir=tmp_path / "out", context={"env": "dev"}, code_dir=_code_dir(tmp_path))
    # then stderr carries a framed warning of several lines naming the topic and how to set an e-mail
    printed = capsys.readouterr().err
    lines = [line for line in printed.splitlines() if line.startswith("!!")]
    assert len(lines) > 4
    assert "WARNING: stage dev has no alarm e-mail" in printed and "ledgerlink-dev-alarms" in printed
    assert "-c alarm_email=" in printed
    # and the stack carries it as a CDK warning (cdk synth and cdk deploy print it)
    warnings = [w for w in _warnings(stack.node.metadata) if "no alarm e-mail" in w]
    assert len(warnings) == 1 and "context.environments.dev.alarm_email" in warnings[0]
