"""How the backfill shows progress: one updating line on a terminal, periodic plain lines otherwise,
and the summary table."""

from __future__ import annotations

import io

from ledgerlink.deal_sync.backfill_checkpoint import Checkpoint, EntityCounts
from ledgerlink.deal_sync.backfill_progress import ProgressView, progress_line, summary_lines


def checkpoint(seen: int, finished: bool = False) -> Checkpoint:
    return Checkpoint(
        connection="demo",
        job_id="job1",
        since=None,
        entities=("Customer", "Invoice"),
        entity="Invoice",
        position=seen,
        counts={
            "Customer": EntityCounts(seen=10, written=10, total=10),
            "Invoice": EntityCounts(seen=seen, written=seen - 1, failed=1, total=110),
        },
        finished_at="2026-01-01T00:00:00+00:00" if finished else None,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_on_a_terminal_one_line_updates_in_place_with_rate_and_eta() -> None:
    out, clock = io.StringIO(), Clock()
    view = ProgressView(out, tty=True, clock=clock)
    view.update(checkpoint(0))
    clock.now = 10.0
    view.update(checkpoint(50))
    view.end()
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n") and text.count("\n") == 1
    last = text.split("\r")[-1]
    assert "Invoice 50/110" in last and "5.0/s" in last and "ETA 12s" in last


def test_not_on_a_terminal_plain_lines_at_most_every_interval() -> None:
    out, clock = io.StringIO(), Clock()
    view = ProgressView(out, tty=False, clock=clock, interval=10)
    view.update(checkpoint(0))
    clock.now = 5.0
    view.update(checkpoint(20))  # too soon: not printed
    clock.now = 11.0
    view.update(checkpoint(40))
    clock.now = 12.0
    view.update(checkpoint(110, finished=True))  # the end is always printed
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [line.split(" · ")[0] for line in lines] == [
        "demo: Customer 10/10, Invoice 0/110",
        "demo: Customer 10/10, Invoice 40/110",
        "demo: Customer 10/10, Invoice 110/110",
    ]
    assert lines[-1].endswith("finished")


def test_the_summary_has_a_row_per_entity() -> None:
    lines = summary_lines(checkpoint(110, finished=True))
    assert lines[0].startswith("backfill job1 of demo (since the beginning): finished")
    assert lines[1].split() == ["entity", "seen", "written", "already", "synced", "unchanged", "failed"]
    assert lines[2].split() == ["Customer", "10", "10", "0", "0", "0"]
    assert lines[3].split() == ["Invoice", "110", "109", "0", "0", "1"]
    assert progress_line(checkpoint(5), None).endswith("1 failed")
