"""cdk-nag 3 (AwsSolutions rule pack) as a CDK policy-validation plugin, and acknowledgements with reasons.

cdk-nag 3 is no Aspect: ``Validations.of(app).add_plugins(AwsSolutionsChecks(app))`` runs the rules
when the app synthesises, writes the findings to ``cdk.out/policy-validation-report.json`` and makes
``app.synth()`` raise when a finding is neither fixed nor acknowledged. A finding is acknowledged on
the construct that owns it, with a reason a reviewer can judge; :func:`acknowledge` refuses an empty
reason, and :func:`acknowledgements` lists every one in a tree (the tests check each has a reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct

PACK: Final = "AwsSolutions"


@dataclass(frozen=True)
class AcknowledgedFinding:
    path: str
    plugin: str
    rule_id: str
    reason: str


def enable_aws_solutions_checks(app: App) -> None:
    """Run the AwsSolutions pack on every stack of ``app`` at synthesis."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Accept finding ``rule_id`` (``AwsSolutions-IAM5[Resource::*]``) on ``construct`` and its children."""
    if not rule_id.startswith(f"{PACK}-") or not reason.strip():
        raise ValueError(
            f"an acknowledgement needs an {PACK} rule id and a reason (got {rule_id!r}, {reason!r})"
        )
    # CDK validation ids are "<plugin name>::<rule id>"; without the prefix they would be taken for
    # construct annotations.
    Validations.of(construct).acknowledge(Acknowledgment(id=f"{PACK}::{rule_id}", reason=reason))


def acknowledgements(scope: IConstruct) -> list[AcknowledgedFinding]:
    """Every acknowledgement recorded in the construct tree under ``scope``."""
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found: list[AcknowledgedFinding] = []
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != key or not isinstance(entry.data, dict):
                continue
            for qualified_id, reason in entry.data.items():
                plugin, _, rule_id = str(qualified_id).partition("::")
                found.append(
                    AcknowledgedFinding(
                        path=construct.node.path, plugin=plugin, rule_id=rule_id, reason=str(reason)
                    )
                )
    return found
