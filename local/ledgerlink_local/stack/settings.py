"""The local stack's own options: ports, the state directory, the demo switch, how many runs' logs to keep.

These are options of the developer's machine, not of a deployed function, so they do not belong in
``ledgerlink.config`` (whose every variable a Lambda must be able to get). Each option has a command
line flag and an environment variable; the flag wins. Nothing is read at import time.

| variable | flag | default |
|---|---|---|
| ``LEDGERLINK_LOCAL_GATEWAY_PORT`` | ``--gateway-port`` | 4010 |
| ``LEDGERLINK_LOCAL_AWS_PORT`` | ``--aws-port`` | 4566 |
| ``LEDGERLINK_LOCAL_QBO_PORT`` | ``--qbo-port`` | 4011 |
| ``LEDGERLINK_LOCAL_HUBSPOT_PORT`` | ``--hubspot-port`` | 4012 |
| ``LEDGERLINK_LOCAL_GRAPH_PORT`` | ``--graph-port`` | 4013 |
| ``LEDGERLINK_LOCAL_STATE_DIR`` | ``--state-dir`` | ``.ledgerlink`` at the checkout's root |
| ``LEDGERLINK_DEMO`` | ``--demo`` / ``--no-demo`` | ``1`` (on) |
| ``LEDGERLINK_LOCAL_KEEP_RUNS`` | (none) | 5 |
| ``LEDGERLINK_LOCAL_SWEEP_SECONDS`` | ``--sweep-seconds`` | (none: the topology's schedule, ``rate(1 day)``) |
| ``LEDGERLINK_LOCAL_CATCHUP_SECONDS`` | ``--catchup-seconds`` | (none: the topology's schedule, ``rate(15 minutes)``) |
| ``LEDGERLINK_LOCAL_RECONCILE_SECONDS`` | ``--reconcile-seconds`` | (none: the topology's schedule, ``rate(1 day)``) |

Port 0 picks a free port (the tests do that). ``LEDGERLINK_LOCAL_KEEP_RUNS`` is how many earlier runs'
hop logs and function logs ``<state dir>/previous/`` keeps (0: none, as before runs were kept); it has
no flag yet (``resolve(keep_runs=...)`` takes one). ``LEDGERLINK_LOCAL_SWEEP_SECONDS`` fires the follow-up
sweep's scheduled rule every so many seconds (a positive number; fractions allowed) instead of on its
EventBridge schedule, whose shortest rate is a minute: the demo and a developer need not wait a day.
``LEDGERLINK_LOCAL_CATCHUP_SECONDS`` does the same for the QBO CDC catch-up's rule, and
``LEDGERLINK_LOCAL_RECONCILE_SECONDS`` for the scheduled reconciliation's (a report, never a repair).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Final


class LocalEnv(StrEnum):
    GATEWAY_PORT = "LEDGERLINK_LOCAL_GATEWAY_PORT"
    AWS_PORT = "LEDGERLINK_LOCAL_AWS_PORT"
    QBO_PORT = "LEDGERLINK_LOCAL_QBO_PORT"
    HUBSPOT_PORT = "LEDGERLINK_LOCAL_HUBSPOT_PORT"
    GRAPH_PORT = "LEDGERLINK_LOCAL_GRAPH_PORT"
    STATE_DIR = "LEDGERLINK_LOCAL_STATE_DIR"
    DEMO = "LEDGERLINK_DEMO"
    KEEP_RUNS = "LEDGERLINK_LOCAL_KEEP_RUNS"
    SWEEP_SECONDS = "LEDGERLINK_LOCAL_SWEEP_SECONDS"
    CATCHUP_SECONDS = "LEDGERLINK_LOCAL_CATCHUP_SECONDS"
    RECONCILE_SECONDS = "LEDGERLINK_LOCAL_RECONCILE_SECONDS"


DEFAULT_PORTS: Final[Mapping[LocalEnv, int]] = {
    LocalEnv.GATEWAY_PORT: 4010,
    LocalEnv.AWS_PORT: 4566,
    LocalEnv.QBO_PORT: 4011,
    LocalEnv.HUBSPOT_PORT: 4012,
    LocalEnv.GRAPH_PORT: 4013,
}
DEFAULT_STATE_DIR: Final = ".ledgerlink"
LOCAL_JSON: Final = "local.json"
EVENT_LOG: Final = "events.jsonl"
LOG_DIR: Final = "logs"
# Earlier runs' event logs and function logs, one directory per run named by its start (UTC).
PREVIOUS_DIR: Final = "previous"
# When the current run started (UTC, RUN_STAMP_FORMAT): the name its logs get once rotated.
RUN_STARTED: Final = "run-started"
RUN_STAMP_FORMAT: Final = "%Y%m%dT%H%M%SZ"
DEFAULT_KEEP_RUNS: Final = 5

_TRUE: Final = frozenset({"1", "true", "yes", "on"})
_FALSE: Final = frozenset({"0", "false", "no", "off"})


class LocalSettingsError(ValueError):
    """An option does not parse; the message names the variable or flag."""


@dataclass(frozen=True)
class Ports:
    gateway: int
    aws: int
    qbo: int
    hubspot: int
    graph: int


@dataclass(frozen=True)
class LocalSettings:
    ports: Ports
    state_dir: Path
    demo: bool
    host: str = "127.0.0.1"
    keep_runs: int = DEFAULT_KEEP_RUNS
    sweep_seconds: float | None = None
    """The follow-up sweep every so many seconds; None: on its topology schedule."""
    catchup_seconds: float | None = None
    """The QBO CDC catch-up every so many seconds; None: on its topology schedule (15 minutes)."""
    reconcile_seconds: float | None = None
    """The scheduled reconciliation every so many seconds; None: on its topology schedule (daily)."""

    @property
    def local_json(self) -> Path:
        return self.state_dir / LOCAL_JSON

    @property
    def event_log(self) -> Path:
        return self.state_dir / EVENT_LOG

    @property
    def log_dir(self) -> Path:
        return self.state_dir / LOG_DIR

    @property
    def previous_dir(self) -> Path:
        return self.state_dir / PREVIOUS_DIR


def parse_port(name: str, raw: str) -> int:
    try:
        port = int(raw)
    except ValueError:
        raise LocalSettingsError(f"{name} must be a port number, got {raw!r}") from None
    if not 0 <= port <= 65535:
        raise LocalSettingsError(f"{name} must be between 0 and 65535, got {port}")
    return port


def parse_count(name: str, raw: str) -> int:
    try:
        count = int(raw)
    except ValueError:
        raise LocalSettingsError(f"{name} must be a whole number, got {raw!r}") from None
    if count < 0:
        raise LocalSettingsError(f"{name} must be 0 or more, got {count}")
    return count


def parse_seconds(name: str, raw: str) -> float:
    try:
        seconds = float(raw)
    except ValueError:
        raise LocalSettingsError(f"{name} must be a number of seconds, got {raw!r}") from None
    if not seconds > 0 or seconds == float("inf"):
        raise LocalSettingsError(f"{name} must be more than 0 seconds, got {raw!r}")
    return seconds


def parse_flag(name: str, raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise LocalSettingsError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw!r}")


def state_dir_from(flag: str | None, environ: Mapping[str, str] | None = None) -> Path:
    """The state directory: the flag, else ``LEDGERLINK_LOCAL_STATE_DIR``, else the checkout's
    ``.ledgerlink``, found from any directory of the checkout (``ledgerlink.cli.endpoints.default_state_dir``)."""
    from ledgerlink.cli.endpoints import default_state_dir

    env = os.environ if environ is None else environ
    return Path(flag or env.get(LocalEnv.STATE_DIR.value) or default_state_dir())


def resolve(
    *,
    gateway_port: int | None = None,
    aws_port: int | None = None,
    qbo_port: int | None = None,
    hubspot_port: int | None = None,
    graph_port: int | None = None,
    state_dir: str | None = None,
    demo: bool | None = None,
    keep_runs: int | None = None,
    sweep_seconds: float | None = None,
    catchup_seconds: float | None = None,
    environ: Mapping[str, str] | None = None,
    reconcile_seconds: float | None = None,
) -> LocalSettings:
    """Flags (non-None arguments) over environment variables over defaults."""
    env = os.environ if environ is None else environ

    def port(flag_value: int | None, name: LocalEnv) -> int:
        if flag_value is not None:
            return parse_port("--" + name.name.lower().replace("_", "-"), str(flag_value))
        raw = env.get(name.value)
        return DEFAULT_PORTS[name] if raw is None or raw.strip() == "" else parse_port(name.value, raw)

    raw_demo = env.get(LocalEnv.DEMO.value)
    demo_on = demo if demo is not None else (True if not raw_demo else parse_flag(LocalEnv.DEMO, raw_demo))
    raw_keep = env.get(LocalEnv.KEEP_RUNS.value)
    if keep_runs is not None:
        kept = parse_count("--keep-runs", str(keep_runs))
    elif raw_keep is None or raw_keep.strip() == "":
        kept = DEFAULT_KEEP_RUNS
    else:
        kept = parse_count(LocalEnv.KEEP_RUNS.value, raw_keep)
    raw_sweep = env.get(LocalEnv.SWEEP_SECONDS.value)
    if sweep_seconds is not None:
        sweep = parse_seconds("--sweep-seconds", str(sweep_seconds))
    elif raw_sweep is None or raw_sweep.strip() == "":
        sweep = None
    else:
        sweep = parse_seconds(LocalEnv.SWEEP_SECONDS.value, raw_sweep)
    raw_catchup = env.get(LocalEnv.CATCHUP_SECONDS.value)
    if catchup_seconds is not None:
        catchup: float | None = parse_seconds("--catchup-seconds", str(catchup_seconds))
    elif raw_catchup is None or raw_catchup.strip() == "":
        catchup = None
    else:
        catchup = parse_seconds(LocalEnv.CATCHUP_SECONDS.value, raw_catchup)
    raw_reconcile = env.get(LocalEnv.RECONCILE_SECONDS.value)
    if reconcile_seconds is not None:
        reconcile: float | None = parse_seconds("--reconcile-seconds", str(reconcile_seconds))
    elif raw_reconcile is None or raw_reconcile.strip() == "":
        reconcile = None
    else:
        reconcile = parse_seconds(LocalEnv.RECONCILE_SECONDS.value, raw_reconcile)
    return LocalSettings(
        ports=Ports(
            gateway=port(gateway_port, LocalEnv.GATEWAY_PORT),
            aws=port(aws_port, LocalEnv.AWS_PORT),
            qbo=port(qbo_port, LocalEnv.QBO_PORT),
            hubspot=port(hubspot_port, LocalEnv.HUBSPOT_PORT),
            graph=port(graph_port, LocalEnv.GRAPH_PORT),
        ),
        state_dir=state_dir_from(state_dir, env),
        demo=demo_on,
        keep_runs=kept,
        sweep_seconds=sweep,
        catchup_seconds=catchup,
        reconcile_seconds=reconcile,
    )
