"""The diff's value comparison and the repair's event ids (pure)."""

from __future__ import annotations

import pytest

from ledgerlink.configfile import parse
from ledgerlink.deal_sync.diff import same_value
from ledgerlink.deal_sync.reconcile import repair_event_id


@pytest.mark.parametrize(
    ("shown", "written"),
    [
        ("1250", "1250.00"),
        ("1924992000000", "2031-01-01"),
        ("2031-01-01T00:00:00Z", "1924992000000"),
        ("open", "open"),
    ],
)
def test_the_same_value_written_differently_is_no_drift(shown: str, written: str) -> None:
    assert same_value(shown, written)


@pytest.mark.parametrize(("shown", "written"), [("1.00", "760.00"), ("", "0.00"), ("open", "overdue")])
def test_different_values_drift(shown: str, written: str) -> None:
    assert not same_value(shown, written)


def test_each_repair_run_has_its_own_event_ids() -> None:
    first = repair_event_id("1", "Invoice", "3", "Update", "run-1")
    assert first == repair_event_id("1", "Invoice", "3", "Update", "run-1")
    assert first != repair_event_id("1", "Invoice", "3", "Update", "run-2")


CONFIG = b"""version = 1
[[connections]]
name = "demo"
qbo = { realm_id = "1" }
hubspot = { portal_id = "2" }
"""


def test_qbo_wins_defaults_to_true_and_reads_false() -> None:
    assert parse(CONFIG, "t.toml").reconcile.qbo_wins is True
    assert parse(CONFIG + b"[reconcile]\nqbo_wins = false\n", "t.toml").reconcile.qbo_wins is False
