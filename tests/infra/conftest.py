"""Synthesis helpers for the infra tests: the real app builder, pinned account/region, one synth a stage."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from infra.jsii_output import decode_jsii_stderr

decode_jsii_stderr()  # before aws_cdk starts jsii's Node process: its warnings as text, not b'...'

from aws_cdk.assertions import Template  # noqa: E402

from infra import topology as topo  # noqa: E402
from infra.app import build_app, cdk_json_context  # noqa: E402
from infra.asset import AssetTarget, build_lambda_asset  # noqa: E402
from infra.nag import AcknowledgedFinding, acknowledgements  # noqa: E402
from infra.stack import LedgerLinkStack  # noqa: E402

ACCOUNT = "123456789012"
REGION = "us-east-1"
PROD_ALARM_EMAIL = "ops@example.com"


@dataclass
class Synthesized:
    stage: str
    stack: LedgerLinkStack
    template: Template
    resources: dict[str, Any]
    validation_report: dict[str, Any]
    acknowledged: list[AcknowledgedFinding]

    @property
    def topology(self) -> topo.Topology:
        return self.stack.topology

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {key: value for key, value in self.resources.items() if value["Type"] == resource_type}

    def one(self, resource_type: str, **properties: Any) -> tuple[str, dict[str, Any]]:
        """The only resource of ``resource_type`` whose properties include ``properties``."""
        found = [
            (key, value)
            for key, value in self.of_type(resource_type).items()
            if all(value.get("Properties", {}).get(name) == expected for name, expected in properties.items())
        ]
        assert len(found) == 1, f"{len(found)} {resource_type} with {properties}"
        return found[0]


@pytest.fixture(scope="session")
def lambda_code_dir() -> Path:
    """The real Lambda asset (cached in .build/ by the hash of its inputs)."""
    target = AssetTarget.for_lambda(
        python_version=topo.LAMBDA_PYTHON_VERSION, architecture=topo.LAMBDA_ARCHITECTURE
    )
    return build_lambda_asset(target)


def synthesize(stage: str, outdir: Path, code_dir: Path) -> Synthesized:
    """Synthesise ``stage`` as `make synth` does, with the account/region pinned so names are literal."""
    environments = json.loads(json.dumps(cdk_json_context()["environments"]))
    for values in environments.values():
        values.update(account=ACCOUNT, region=REGION)
    environments["prod"]["alarm_email"] = PROD_ALARM_EMAIL
    app, stack = build_app(
        outdir=outdir, context={"env": stage, "environments": environments}, code_dir=code_dir
    )
    app.synth()  # raises ValidationFailed on any unacknowledged cdk-nag finding
    template_json = json.loads((outdir / f"{stack.stack_name}.template.json").read_text(encoding="utf-8"))
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text(encoding="utf-8")) if report_path.exists() else {}
    return Synthesized(
        stage=stage,
        stack=stack,
        template=Template.from_json(template_json),
        resources=template_json["Resources"],
        validation_report=report,
        acknowledged=acknowledgements(app),
    )
