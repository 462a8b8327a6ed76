"""What the stack tests share: the worker's report of a function's AWS and HTTP calls, kept in a list, and
the chain of the hop and status tests (tests/unit/stack/chain_support.py) on a fresh moto server."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from botocore.client import BaseClient

from ledgerlink_local.stack import worker

if TYPE_CHECKING:
    from tests.unit.stack.chain_support import Chain


class Recorder:
    """The worker's channel to the parent, kept in a list."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []

    def send(self, message: dict[str, Any]) -> None:
        self.messages.append(json.loads(json.dumps(message, default=str)))

    def drain(self) -> list[dict[str, Any]]:
        """The messages so far, forgotten here (each is handed to the hop log once)."""
        messages, self.messages = self.messages, []
        return messages


@pytest.fixture
def reported() -> Iterator[Recorder]:
    """Every AWS call made in the test, reported as the worker process reports it to the stack."""
    original_call, original_send = BaseClient._make_api_call, requests.Session.send  # type: ignore[attr-defined]
    channel = Recorder()
    worker.instrument(channel)  # type: ignore[arg-type]
    try:
        yield channel
    finally:
        BaseClient._make_api_call = original_call  # type: ignore[attr-defined]
        requests.Session.send = original_send  # type: ignore[method-assign]


@pytest.fixture
def chain(tmp_path: Path, reported: Recorder) -> Iterator[Chain]:
    from ledgerlink_local.stack.aws import MotoServer, provision
    from ledgerlink_local.stack.hops import HopLog
    from ledgerlink_local.stack.stack import rule_routes
    from ledgerlink_local.stack.wiring import VendorUrls, local_topology
    from tests.unit.stack.chain_support import Chain

    moto = MotoServer().start()
    try:
        nowhere = "http://127.0.0.1:9"
        topology = local_topology(VendorUrls(nowhere, nowhere, nowhere, nowhere, nowhere))
        resources = provision(topology, moto.endpoint_url, secret_values={})
        (tmp_path / "local.json").write_text(
            json.dumps(
                {
                    "gateway_url": "http://127.0.0.1:9",
                    "aws": {"endpoint_url": moto.endpoint_url, "region": resources.region},
                }
            )
        )
        console = io.StringIO()
        hops = HopLog(
            stream=console,
            path=tmp_path / "events.jsonl",
            rules=rule_routes(topology),
            raw_bucket=topology.bucket.name,
            dead_letter_queues=[queue.dlq_name for queue in topology.queues],
        )
        reported.drain()  # provisioning's own calls are not the functions'
        yield Chain(topology, resources, hops, console, tmp_path, reported)
    finally:
        moto.stop()
