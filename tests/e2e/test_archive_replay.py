"""End to end on the local stack: a signed webhook ingested live, then ``ledgerlink replay archive``
finding the stack from its state directory, reading the delivery from the local raw bucket and
publishing its change again on the local bus, with the event id the live ingest gave it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledgerlink import cli
from ledgerlink_local.stack.up import LocalEnvironment
from tests.e2e.conftest import (
    hop_steps,
    post_webhook,
    raw_objects,
    recorded_delivery,
    sign,
    wait_for,
)

DELIVERY = "cloudevents_invoice_created.json"


def test_an_archived_delivery_is_replayed_onto_the_local_bus(
    environment: LocalEnvironment, state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    body = recorded_delivery(DELIVERY)
    correlation_id = json.loads(body)[0]["id"]
    token = environment.description["qbo"]["verifier_token"]
    since = (datetime.now(UTC) - timedelta(minutes=5)).isoformat(timespec="seconds")
    # given a signed delivery the live ingest archived and published
    assert post_webhook(environment, body, sign(token, body)).status_code == 200
    wait_for(lambda: [key for key in raw_objects(environment) if key.startswith("qbo/raw/")], "the archive")
    wait_for(lambda: ("handler", "ok") in hop_steps(state_dir, correlation_id), "the live event handled")
    capsys.readouterr()

    # when the last minutes are replayed, first as a dry run, then for real
    dry = cli.main(["replay", "archive", "--state-dir", str(state_dir), "--since", since, "--dry-run"])
    dry_out = capsys.readouterr().out
    code = cli.main(["replay", "archive", "--state-dir", str(state_dir), "--since", since])
    out = capsys.readouterr().out

    # then the stack's own settings were used, and the one change was published again
    assert (dry, code) == (0, 0), out
    assert "settings of the local stack" in out
    assert "deliveries: 1 read, 1 replayed" in dry_out and "events: 1 read, 1 would publish" in dry_out
    assert "deliveries: 1 read, 1 replayed" in out and "events: 1 read, 1 published" in out

    # and the consumer receives it again and, having handled that event id, calls no vendor this time
    def handled_twice() -> list[tuple[str, str | None]] | None:
        found = hop_steps(state_dir, correlation_id)
        return found if found.count(("handler", "ok")) == 2 else None

    steps = wait_for(handled_twice, "the replayed event handled")
    replayed = steps[len(steps) - 1 - steps[::-1].index(("queue", None)) :]
    assert replayed == [("queue", None), ("handler", "ok")]
