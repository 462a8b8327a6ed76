"""Secrets Manager secrets, created by name with a generated placeholder, never with a real value.

Each secret starts as ``{"configured": false, "placeholder": "<random>"}``; the operator puts the real
value with ``aws secretsmanager put-secret-value`` after the first deploy (docs/infra.md). Code that
reads a secret still holding ``"configured": false`` can say so instead of failing obscurely.
"""

from __future__ import annotations

import json

from aws_cdk import RemovalPolicy
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from infra.nag import acknowledge
from infra.topology import Topology

PLACEHOLDER_TEMPLATE = json.dumps({"configured": False})


class SecretStore(Construct):
    """``secrets`` maps topology secret keys to the created secrets."""

    def __init__(
        self, scope: Construct, construct_id: str, *, topology: Topology, removal: RemovalPolicy
    ) -> None:
        super().__init__(scope, construct_id)
        self.secrets: dict[str, secretsmanager.Secret] = {}
        for spec in topology.secrets:
            secret = secretsmanager.Secret(
                self,
                "".join(part.capitalize() for part in spec.key.split("-")),
                secret_name=spec.name,
                description=spec.description,
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template=PLACEHOLDER_TEMPLATE,
                    generate_string_key="placeholder",
                    exclude_punctuation=True,
                ),
                removal_policy=removal,
            )
            acknowledge(
                secret,
                "AwsSolutions-SMG4",
                "The values are issued by the vendors (Intuit, HubSpot, Microsoft) and rotated in their "
                "consoles or by the OAuth refresh flow; a Secrets Manager rotation Lambda cannot mint them.",
            )
            self.secrets[spec.key] = secret
