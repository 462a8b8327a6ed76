"""The CDK app: ``python infra/app.py`` (``make synth ENV=<stage>``) or ``npx aws-cdk ... -c env=<stage>``.

It reads the stage from the ``env`` context value and that stage's settings from ``cdk.json``
(``context.environments``), builds the Lambda code asset for the runtime in infra/topology.py,
composes :class:`~infra.stack.LedgerLinkStack`, runs cdk-nag's AwsSolutions checks and writes the
cloud assembly to ``cdk.out/``.

The alarm e-mail is cdk.json's ``environments.<stage>.alarm_email`` unless ``-c alarm_email=...`` gives
one. Without either, a stage of ``ALARM_EMAIL_REQUIRED_STAGES`` (prod) is refused before anything is
built, and any other stage is synthesised with a framed warning on stderr and a CDK warning on the
stack (infra/deploy.py).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Run as a script, this file's folder is sys.path[0]; the repository root must be there instead, so
# that `infra.*` imports resolve and no module here can shadow a standard-library one.
REPO_ROOT = Path(__file__).resolve().parent.parent
if sys.path and Path(sys.path[0]).resolve() == REPO_ROOT / "infra":
    sys.path[0] = str(REPO_ROOT)

from infra.jsii_output import decode_jsii_stderr  # noqa: E402

decode_jsii_stderr()  # before aws_cdk starts jsii's Node process: its warnings as text, not b'...'

from aws_cdk import Annotations, App, Environment  # noqa: E402

from infra import topology as topo  # noqa: E402
from infra.asset import AssetBuildError, AssetTarget, build_lambda_asset  # noqa: E402
from infra.deploy import ALARM_EMAIL_CONTEXT_KEY, alarm_destination_warning, with_alarm_email  # noqa: E402
from infra.nag import enable_aws_solutions_checks  # noqa: E402
from infra.stack import LedgerLinkStack  # noqa: E402


def cdk_json_context(cdk_json: Path = topo.CDK_JSON) -> dict[str, Any]:
    """The ``context`` block of cdk.json (the npm CLI passes it itself; ``python infra/app.py`` does not)."""
    document = json.loads(cdk_json.read_text(encoding="utf-8"))
    return dict(document.get("context", {}))


def build_app(
    *,
    outdir: str | Path | None = None,
    context: Mapping[str, Any] | None = None,
    code_dir: Path | None = None,
) -> tuple[App, LedgerLinkStack]:
    """An App holding the stack of the stage named by context ``env``, with cdk-nag enabled.

    ``context`` overrides cdk.json's (tests pass ``{"env": "prod"}``); ``CDK_CONTEXT_JSON`` overrides
    both, as with the CLI. ``code_dir`` skips the asset build (a folder already built).
    """
    merged = {**cdk_json_context(), **(context or {})}
    # The npm CLI names its output folder in CDK_OUTDIR; run directly, the app writes to cdk.out/.
    outdir = outdir or os.environ.get("CDK_OUTDIR") or REPO_ROOT / "cdk.out"
    app = App(outdir=str(outdir), context=merged)
    environment = topo.environment_from_context(
        app.node.try_get_context("env"), app.node.try_get_context("environments")
    )
    # `-c alarm_email=...` wins over cdk.json; a stage that must page someone is refused without one,
    # before the (slow) asset build, and any other stage is warned about on stderr and on the stack.
    environment = with_alarm_email(environment, app.node.try_get_context(ALARM_EMAIL_CONTEXT_KEY))
    warning = alarm_destination_warning(environment)
    if warning:
        print(_banner(warning), file=sys.stderr)
    if code_dir is None:
        target = AssetTarget.for_lambda(
            python_version=topo.LAMBDA_PYTHON_VERSION, architecture=topo.LAMBDA_ARCHITECTURE
        )
        code_dir = build_lambda_asset(target)
    stack = LedgerLinkStack(
        app, environment=environment, code_dir=code_dir, aws_environment=_aws_environment(environment)
    )
    if warning:
        Annotations.of(stack).add_warning_v2("ledgerlink:no-alarm-email", warning)
    enable_aws_solutions_checks(app)
    return app, stack


def _banner(text: str) -> str:
    """``text`` framed so it stands out among the synth's other output."""
    rule = "!" * 100
    return "\n".join((rule, *(f"!! {line}" for line in text.splitlines()), rule))


def _aws_environment(environment: topo.EnvironmentConfig) -> Environment | None:
    """cdk.json's account/region when set, else the CLI's defaults, else an environment-agnostic stack."""
    account = environment.account or os.environ.get("CDK_DEFAULT_ACCOUNT")
    region = environment.region or os.environ.get("CDK_DEFAULT_REGION")
    if account is None and region is None:
        return None
    return Environment(account=account, region=region)


def main() -> int:
    try:
        app, _ = build_app()
    except (topo.TopologyError, AssetBuildError) as error:
        print(f"infra/app.py: {error}", file=sys.stderr)
        return 2
    app.synth()
    return 0


if __name__ == "__main__":
    sys.exit(main())
