"""The LedgerLink stack of one stage: it only composes the construct modules, all fed one Topology."""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Environment, RemovalPolicy, Stack, Tags
from constructs import Construct

from infra import topology as topo
from infra.api import WebhookApi
from infra.compute import Functions
from infra.eventing import Eventing
from infra.monitoring import Monitoring
from infra.outputs import add_stack_outputs
from infra.secret_store import SecretStore
from infra.storage import Storage

REMOVAL_POLICIES = {
    topo.RemovalPolicy.DESTROY: RemovalPolicy.DESTROY,
    topo.RemovalPolicy.RETAIN: RemovalPolicy.RETAIN,
}


class LedgerLinkStack(Stack):
    """Everything of ``environment.stage``; ``topology`` is the declaration it was built from."""

    def __init__(
        self,
        scope: Construct,
        *,
        environment: topo.EnvironmentConfig,
        code_dir: Path,
        aws_environment: Environment | None = None,
    ) -> None:
        super().__init__(
            scope,
            f"LedgerLink-{environment.stage}",
            env=aws_environment,
            description=f"LedgerLink {environment.stage}: QBO <-> HubSpot sync, webhooks, follow-ups",
        )
        self.topology = topo.build_topology(environment, account=self.account, region=self.region)
        removal = REMOVAL_POLICIES[environment.removal_policy]
        for key, value in self.topology.tags.items():
            Tags.of(self).add(key, value)

        self.storage = Storage(self, "Storage", topology=self.topology, removal=removal)
        self.eventing = Eventing(self, "Eventing", topology=self.topology, removal=removal)
        self.secret_store = SecretStore(self, "Secrets", topology=self.topology, removal=removal)
        self.functions = Functions(
            self,
            "Functions",
            topology=self.topology,
            code_dir=code_dir,
            storage=self.storage,
            eventing=self.eventing,
            secret_store=self.secret_store,
            removal=removal,
        )
        self.api = WebhookApi(self, "Api", topology=self.topology, functions=self.functions, removal=removal)
        self.monitoring = Monitoring(
            self,
            "Monitoring",
            topology=self.topology,
            functions=self.functions,
            eventing=self.eventing,
            api=self.api,
            removal=removal,
        )

        # What an operator pastes into the vendors' portals and fills in after the deploy (infra/deploy.py).
        self.outputs = add_stack_outputs(
            self,
            topology=self.topology,
            api=self.api,
            secret_store=self.secret_store,
            eventing=self.eventing,
            monitoring=self.monitoring,
        )
