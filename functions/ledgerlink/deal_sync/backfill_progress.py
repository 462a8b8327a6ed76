"""How a backfill shows its progress: one line that updates in place on a terminal, plain lines
(at most one per :attr:`ProgressView.interval` seconds) otherwise, and the summary table at the end."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TextIO

from ledgerlink.deal_sync.backfill_checkpoint import Checkpoint


def progress_line(checkpoint: Checkpoint, rate: float | None) -> str:
    """``demo: Invoice 1200/5000 (Customer 40/40) · 1240 seen, 1100 written, 3 failed · 25.0/s · ETA 2m32s``."""
    parts = []
    for entity in checkpoint.entities:
        counts = checkpoint.counts.get(entity)
        if counts is None:
            continue
        total = "?" if counts.total is None else str(counts.total)
        parts.append(f"{entity} {counts.seen}/{total}")
    seen = sum(c.seen for c in checkpoint.counts.values())
    written = sum(c.written for c in checkpoint.counts.values())
    failed = sum(c.failed for c in checkpoint.counts.values())
    line = f"{checkpoint.connection}: {', '.join(parts) or 'starting'} · {seen} seen, {written} written, {failed} failed"
    if checkpoint.finished:
        return line + " · finished"
    if rate is not None and rate > 0:
        line += f" · {rate:.1f}/s"
        left = _left(checkpoint)
        if left is not None:
            line += f" · ETA {_duration(left / rate)}"
    return line


def summary_lines(checkpoint: Checkpoint) -> list[str]:
    """The table printed at the end of a run: per entity seen, written, already synced, failed."""
    header = ("entity", "seen", "written", "already synced", "unchanged", "failed")
    rows = [header]
    for entity in checkpoint.entities:
        c = checkpoint.counts.get(entity)
        if c is None:
            rows.append((entity, "-", "-", "-", "-", "-"))
        else:
            rows.append(
                (entity, str(c.seen), str(c.written), str(c.already_synced), str(c.unchanged), str(c.failed))
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(widths[i]) if i == 0 else cell.rjust(widths[i]) for i, cell in enumerate(row))
        for row in rows
    ]
    state = (
        f"finished {checkpoint.finished_at}"
        if checkpoint.finished
        else f"at {checkpoint.entity} row {checkpoint.position}"
    )
    head = f"backfill {checkpoint.job_id} of {checkpoint.connection} (since {checkpoint.since or 'the beginning'}): {state}"
    failures = [
        f"  failed: {f.entity} {f.entity_id}: {f.reason}{' (retryable)' if f.retryable else ''}"
        for f in checkpoint.failures
    ]
    return [head, *lines, *failures]


@dataclass
class ProgressView:
    """Renders checkpoints to ``out``: in place on a TTY, as periodic plain lines otherwise."""

    out: TextIO
    tty: bool
    clock: Callable[[], float]
    interval: float = 10.0
    _started: float | None = None
    _first_seen: int = 0
    _last_plain: float | None = None
    _width: int = 0
    _lines: list[str] = field(default_factory=list)

    def update(self, checkpoint: Checkpoint) -> None:
        now = self.clock()
        seen = sum(c.seen for c in checkpoint.counts.values())
        if self._started is None:
            self._started, self._first_seen = now, seen
            rate = None
        else:
            elapsed = now - self._started
            rate = (seen - self._first_seen) / elapsed if elapsed > 0 else None
        line = progress_line(checkpoint, rate)
        if self.tty:
            padding = " " * max(0, self._width - len(line))
            self.out.write("\r" + line + padding)
            self._width = len(line)
            self.out.flush()
        elif self._last_plain is None or now - self._last_plain >= self.interval or checkpoint.finished:
            self._last_plain = now
            self.out.write(line + "\n")
            self.out.flush()

    def end(self) -> None:
        """Leave the updating line (a TTY) so what follows starts on its own line."""
        if self.tty and self._width:
            self.out.write("\n")
            self.out.flush()
            self._width = 0


def _left(checkpoint: Checkpoint) -> int | None:
    left = 0
    for entity in checkpoint.entities:
        c = checkpoint.counts.get(entity)
        if c is None or c.total is None:
            if entity == checkpoint.entity or c is None:
                # Not counted yet: the ETA covers what is known.
                continue
            return None
        left += max(0, c.total - c.seen)
    return left


def _duration(seconds: float) -> str:
    whole = int(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
