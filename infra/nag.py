"""cdk-nag 3 (AwsSolutions rule pack) as a CDK policy-validation plugin, and acknowledgements with reasons.

cdk-nag 3 is no Aspect: ``Validations.of(app).add_plugins(AwsSolutionsChecks(app))`` runs the rules
when the app synthesises, writes the findings to ``cdk.out/policy-validation-report.json`` and makes
``app.synth()`` raise when a finding is neither fixed nor acknowledged. A finding is acknowledged on
the construct that owns it, with a reason a reviewer can judge; :func:`acknowledge` refuses an empty
reason, and :func:`acknowledgements` lists every one in a tree (the tests check each has a reason).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_cdk import Acknowledgment, App, Validations
from cdk_nag import AwsSolutionsChecks
from constructs import IConstruct


@dataclass(frozen=True)
class AcknowledgedFinding:
    path: str
    rule_id: str
    reason: str


def enable_aws_solutions_checks(app: App) -> None:
    """Run the AwsSolutions pack on every stack of ``app`` at synthesis."""
    Validations.of(app).add_plugins(AwsSolutionsChecks(app, verbose=True))


def acknowledge(construct: IConstruct, rule_id: str, reason: str) -> None:
    """Accept finding ``rule_id`` (e.g. ``AwsSolutions-IAM5[Resource::*]``) on ``construct``."""
    if not rule_id.strip() or not reason.strip():
        raise ValueError(f"an acknowledgement needs a rule id and a reason (got {rule_id!r}, {reason!r})")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule_id, reason=reason))


def acknowledgements(scope: IConstruct) -> list[AcknowledgedFinding]:
    """Every acknowledgement recorded in the construct tree under ``scope``."""
    key = Validations.ACKNOWLEDGED_RULES_METADATA_KEY
    found: list[AcknowledgedFinding] = []
    for construct in scope.node.find_all():
        for entry in construct.node.metadata:
            if entry.type != key:
                continue
            for rule in _as_rules(entry.data):
                found.append(
                    AcknowledgedFinding(
                        path=construct.node.path,
                        rule_id=str(rule.get("id", "")),
                        reason=str(rule.get("reason", "")),
                    )
                )
    return found


def _as_rules(data: Any) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        return [data]
    if isinstance(data, list):
        return [item for item in data if isinstance(item, dict)]
    return []
