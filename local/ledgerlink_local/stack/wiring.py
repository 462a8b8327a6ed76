"""The local stage's topology: ``infra/topology.py`` itself, with the vendor hosts pointed at the sandboxes.

The local stack never lists resources of its own: every name, queue setting, rule pattern, function
environment and API route comes from :func:`infra.topology.build_topology`, called for a stage named
``local`` whose settings are those of ``cdk.json`` ``environments.local`` when it exists, else
``environments.dev`` (the shape a developer deploys first), with two differences:

- the vendor base URLs are the sandboxes' (``http://127.0.0.1:<port>``, which ``cdk.json`` would refuse);
- :data:`LOCAL_ONLY_VARIABLES`, which the topology leaves to the defaults of ``ledgerlink.config``:
  the OAuth token URLs also point at the sandboxes, so nothing on this machine ever talks to Intuit
  or Microsoft.
- ``LEDGERLINK_CONFIG_FILE`` names ``local/config/local.toml`` (the sandboxes' demo connections, whose
  invoice stage map names the HubSpot sandbox's "Invoices" pipeline) instead of the stage's file in the
  code asset; the topology is built from that file too (its connections' secrets).
- :data:`LOCAL_GATEWAY_VARIABLES`: the function behind ``POST /v1/webhooks/hubspot`` gets
  ``LEDGERLINK_HUBSPOT_WEBHOOK_URL``, the gateway's own URL of that route (:func:`gateway_variables`).
  HubSpot signs the URL it called; the deployed API is HTTPS on its own host, which the function
  rebuilds by itself, but the local gateway speaks plain HTTP on 127.0.0.1 and a port chosen at
  start, so it is told the URL the HubSpot sandbox was pointed at, as an operator would configure a
  custom domain.

The wiring test (``tests/e2e/test_wiring_matches_template.py``) proves that what this module yields
matches the synthesised CloudFormation template, name for name.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

from ledgerlink.config import EnvVar

if TYPE_CHECKING:
    from infra.topology import FunctionSpec, RedeliveryPolicy, Topology

LOCAL_STAGE: Final = "local"
BASE_STAGE: Final = "dev"
# moto's fixed account; the region every local client uses.
LOCAL_ACCOUNT: Final = "123456789012"
LOCAL_REGION: Final = "us-east-1"
# Variables the local stack sets beyond the topology's (see the module docstring).
LOCAL_ONLY_VARIABLES: Final = (
    EnvVar.QBO_TOKEN_URL.value,
    EnvVar.GRAPH_TOKEN_URL.value,
)
# ... and those it sets on the functions behind the gateway's routes only (gateway_variables).
LOCAL_GATEWAY_VARIABLES: Final = (EnvVar.HUBSPOT_WEBHOOK_URL.value,)


class WiringError(RuntimeError):
    """The checkout cannot be found or the topology cannot be built; the message says what to do."""


@dataclass(frozen=True)
class VendorUrls:
    """Where the three sandboxes listen (each ``http://host:port``, no trailing slash)."""

    qbo_base_url: str
    qbo_token_url: str
    hubspot_base_url: str
    graph_base_url: str
    graph_token_url: str


def vendor_urls(credentials: Mapping[str, Mapping[str, str]]) -> VendorUrls:
    """Where the sandboxes listen, from their demo credentials by vendor (``local.json``'s ``qbo``,
    ``hubspot`` and ``graph`` sections have the same keys)."""
    graph = credentials["graph"]
    # ledgerlink.config's GRAPH_TOKEN_URL is a template with {tenant}; keep that shape locally.
    graph_token = graph["token_url"].replace(graph["tenant_id"], "{tenant}")
    return VendorUrls(
        qbo_base_url=credentials["qbo"]["base_url"],
        qbo_token_url=credentials["qbo"]["token_url"],
        hubspot_base_url=credentials["hubspot"]["base_url"],
        graph_base_url=graph["base_url"],
        graph_token_url=graph_token,
    )


def local_function_variables(function_key: str, description: Mapping[str, Any]) -> dict[str, str]:
    """The LedgerLink variables function ``function_key`` has in the local stack that ``local.json``
    (``description``) describes: what an operator command running "as that function" needs (``ledgerlink
    followups sweep`` runs the Teams invite's sweep with them)."""
    topology = local_topology(vendor_urls(description))
    return {
        **function_environment(topology.function(function_key), vendor_urls(description)),
        **gateway_variables(topology, function_key, str(description["gateway_url"])),
    }


def gateway_variables(topology: Topology, function_key: str, gateway_url: str) -> dict[str, str]:
    """What the function ``function_key`` must know of the local gateway at ``gateway_url``: for the
    HubSpot webhook route's function, the route's URL (see the module docstring); nothing otherwise."""
    path = topology_module().HUBSPOT_WEBHOOK_PATH
    served = any(route.function == function_key and route.path == path for route in topology.api.routes)
    return {EnvVar.HUBSPOT_WEBHOOK_URL.value: gateway_url.rstrip("/") + path} if served else {}


def repo_root() -> Path:
    """The checkout this package runs from (the local stack needs its ``infra/`` and ``functions/``)."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "infra" / "topology.py").is_file() or not (root / "functions").is_dir():
        raise WiringError(
            f"the local stack runs from a LedgerLink checkout; {root} has no infra/topology.py "
            "(install with `pip install -e .` from the checkout)"
        )
    return root


def functions_root() -> Path:
    """What a Lambda asset holds: the handler folders and the shared ``ledgerlink`` package."""
    return repo_root() / "functions"


def topology_module() -> ModuleType:
    """``infra.topology``, importable even when the ``ledgerlink`` script runs outside the checkout."""
    root = str(repo_root())
    if root not in sys.path:
        sys.path.insert(0, root)
    return importlib.import_module("infra.topology")


def local_topology(
    vendors: VendorUrls,
    *,
    account: str = LOCAL_ACCOUNT,
    region: str = LOCAL_REGION,
    redelivery: RedeliveryPolicy | None = None,
) -> Topology:
    """The topology of the ``local`` stage (see the module docstring); ``redelivery`` replaces the
    queues' retry delays and outage span (tests: seconds instead of an hour)."""
    module = topology_module()
    document = json.loads((repo_root() / "cdk.json").read_text(encoding="utf-8"))
    environments: Mapping[str, Any] = document.get("context", {}).get("environments", {})
    base_stage = LOCAL_STAGE if LOCAL_STAGE in environments else BASE_STAGE
    try:
        base = module.environment_from_context(base_stage, environments)
    except module.TopologyError as error:
        raise WiringError(f"cdk.json: {error}") from None
    environment = dataclasses.replace(
        base,
        stage=LOCAL_STAGE,
        qbo_base_url=vendors.qbo_base_url,
        hubspot_base_url=vendors.hubspot_base_url,
        graph_base_url=vendors.graph_base_url,
    )
    from ledgerlink.configfile import load

    topology: Topology = module.build_topology(
        environment, account=account, region=region, redelivery=redelivery, config=load(local_config_file())
    )
    return topology


def local_config_file() -> Path:
    """``local/config/local.toml``: the connections of the local stack."""
    return repo_root() / "local" / "config" / "local.toml"


def function_environment(function: FunctionSpec, vendors: VendorUrls) -> dict[str, str]:
    """The LedgerLink variables ``function`` gets locally: the topology's + :data:`LOCAL_ONLY_VARIABLES`."""
    environment = dict(function.environment)
    environment[EnvVar.QBO_TOKEN_URL.value] = vendors.qbo_token_url
    environment[EnvVar.GRAPH_TOKEN_URL.value] = vendors.graph_token_url
    # The local stack's own configuration file (its connections are the sandboxes' demo companies).
    environment[EnvVar.CONFIG_FILE.value] = str(local_config_file())
    return environment


def plain_json(mapping: Mapping[str, Any]) -> str:
    """A topology mapping (MappingProxyType inside) as compact JSON."""
    return json.dumps(mapping, default=_plain, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"not JSON data: {type(value).__name__}")
