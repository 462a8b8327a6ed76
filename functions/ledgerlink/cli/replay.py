"""``ledgerlink replay archive``: archived raw webhook deliveries ingested again, for a time window.

Both ingests keep every verified delivery, exactly as received, in the raw bucket
(:mod:`ledgerlink.ingest.archive`: ``qbo/raw/yyyy/mm/dd/hh/<delivery id>.json`` and ``hubspot/raw/...``,
the UTC hour of receipt). This command lists the hour prefixes between ``--since`` and ``--until``, reads
each document, keeps those received in ``[since, until)``, and runs it through the live ingest's own
parse and publish (:func:`ledgerlink.ingest.service.replay_delivery`,
:func:`ledgerlink.ingest.hubspot.replay_hubspot_delivery`) onto the deployment's bus with the real
EventBridge publisher. It does not check signatures again and does not archive again: only a delivery
whose signature was checked is ever archived (a QBO document keeps its ``intuit-signature``; a HubSpot
one records ``"verified": "v3"`` and the URL it was checked against, and a HubSpot document without that
record is refused). QBO signatures are not re-verified even when the verifier token can be read: the
token may have been rotated since, which would make every older delivery fail, and trust in the archive
is trust in the bucket, which only the ingest functions write.

Idempotent: a change yields the same ``event_id`` as at receipt (QBO: the change id; HubSpot: a hash of
what happened), and consumers deduplicate, so replaying a window twice changes nothing. ``--connection``
keeps one connection's events (its realm and portal in the configuration file); ``--dry-run`` reads and
parses everything and publishes nothing. It prints a progress line every :data:`PROGRESS_EVERY`
deliveries (rewritten in place on a terminal) and a summary. A malformed document is reported and
skipped. Exit status 0 when every delivery was read and its events published, 1 otherwise.

Settings come as for every operator command (:mod:`ledgerlink.cli.endpoints`): the local stack's QBO
ingest variables, or the deployment's ``LEDGERLINK_*`` variables and configuration file in this
process's environment (the ``ledgerlink-<stage>-qbo-ingest`` function's; both ingests share the bucket
and the bus).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TextIO

from ledgerlink.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, silence_closed_pipe
from ledgerlink.cli.endpoints import (
    DEFAULT_STATE_DIR,
    EndpointError,
    aws_client,
    function_settings,
    resolve_endpoint,
)

if TYPE_CHECKING:
    from ledgerlink.configfile import DeploymentConfig
    from ledgerlink.events import Envelope
    from ledgerlink.ingest.ports import EventPublisher

SOURCES: Final = ("qbo", "hubspot")
# The function whose settings the replay runs with: its bus, raw bucket and event cap are the ingests'.
INGEST_FUNCTION: Final = "qbo_ingest"
SERVICES: Final = ("s3", "events")
PROGRESS_EVERY: Final = 100


class WindowError(ValueError):
    """A ``--since``/``--until`` that is not an ISO date or time, or an empty window."""


def parse_moment(text: str) -> datetime:
    """An ISO date (its midnight) or date-time; without an offset it is UTC."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise WindowError(f"{text!r} is not an ISO date or time (2026-11-25, 2026-11-25T14:00Z)") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def hour_prefixes(prefix: str, since: datetime, until: datetime) -> list[str]:
    """``<prefix>/yyyy/mm/dd/hh/`` of every UTC hour that overlaps ``[since, until)``."""
    hour = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    prefixes: list[str] = []
    while hour < until:
        prefixes.append(f"{prefix}/{hour:%Y/%m/%d/%H}/")
        hour += timedelta(hours=1)
    return prefixes


def archived_keys(s3: Any, bucket: str, prefixes: Sequence[str]) -> Iterator[str]:
    """Every object key under the prefixes, in order."""
    paginator = s3.get_paginator("list_objects_v2")
    for prefix in prefixes:
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                yield str(item["Key"])


@dataclass
class ReplayReport:
    """What a replay read and did; ``dry_run`` turns "published" into "would publish"."""

    dry_run: bool
    deliveries: Counter[str] = field(default_factory=Counter)
    """read, replayed, outside_window (listed, received outside the window), malformed, unserved, failed."""
    events: Counter[str] = field(default_factory=Counter)
    """read, published, unsupported, invalid_entity_id, unserved, other_connection, duplicates."""
    event_ids: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    """One line per malformed document or failed publish, naming its key."""

    @property
    def ok(self) -> bool:
        return not self.deliveries["failed"]

    def lines(self) -> list[str]:
        published = "would publish" if self.dry_run else "published"
        d, e = self.deliveries, self.events
        return [
            *self.problems,
            f"deliveries: {d['read']} read, {d['replayed']} replayed, skipped {d['malformed']} malformed, "
            f"{d['unserved']} of no connection; {d['failed']} failed",
            f"events: {e['read']} read, {e[published]} {published}, skipped {e['unsupported']} unsupported, "
            f"{e['invalid_entity_id']} invalid id, {e['other_connection']} of another connection, "
            f"{e['unserved']} of no connection, {e['duplicates']} duplicate",
        ]


class Progress:
    """A line every ``every`` deliveries: rewritten in place on a terminal, plain lines elsewhere."""

    def __init__(self, out: TextIO, every: int = PROGRESS_EVERY) -> None:
        self.out = out
        self.every = every
        isatty = getattr(out, "isatty", None)
        self.tty = bool(isatty()) if callable(isatty) else False
        self._width = 0
        self._printed_at = 0

    def update(self, report: ReplayReport) -> None:
        read = report.deliveries["read"]
        if read - self._printed_at < self.every:
            return
        self._printed_at = read
        published = "would publish" if report.dry_run else "published"
        line = f"progress: {read} deliveries read, {report.events[published]} events {published}"
        if self.tty:
            self.out.write("\r" + line.ljust(self._width))
            self._width = len(line)
            self.out.flush()
        else:
            print(line, file=self.out, flush=True)

    def finish(self) -> None:
        if self.tty and self._width:
            self.out.write("\r" + " " * self._width + "\r")
            self.out.flush()


class _Sink:
    """Where the replayed envelopes go: the chosen connection's (all, without ``--connection``) to the
    bus, unless it is a dry run; what it kept and what it left out are counted."""

    def __init__(self, publisher: EventPublisher, connection: str | None, dry_run: bool) -> None:
        self._publisher = publisher
        self._connection = connection
        self._dry_run = dry_run
        self.kept: list[Envelope] = []
        self.other_connection = 0

    def publish(self, envelopes: Sequence[Envelope]) -> None:
        kept = [e for e in envelopes if self._connection in (None, e.payload.get("connection"))]
        if kept and not self._dry_run:
            self._publisher.publish(kept)
        self.kept.extend(kept)
        self.other_connection += len(envelopes) - len(kept)


def replay_archive(
    s3: Any,
    bucket: str,
    publisher: EventPublisher,
    config: DeploymentConfig,
    *,
    since: datetime,
    until: datetime,
    sources: Sequence[str] = SOURCES,
    connection: str | None = None,
    dry_run: bool = False,
    max_events: int,
    progress: Progress | None = None,
) -> ReplayReport:
    """Replay the archived deliveries of ``sources`` received in ``[since, until)`` (see the module
    docstring) through the ingests' own parse and publish, onto ``publisher`` (not called in a dry run)."""
    from ledgerlink.hubspot.webhooks import parse_delivery as parse_hubspot
    from ledgerlink.ingest.archive import HUBSPOT_KEY_PREFIX, KEY_PREFIX, WebhookDelivery
    from ledgerlink.ingest.hubspot import UnknownPortal, replay_hubspot_delivery
    from ledgerlink.ingest.service import replay_delivery
    from ledgerlink.publisher import PublishError

    report = ReplayReport(dry_run=dry_run)
    sink = _Sink(publisher, connection, dry_run)
    published = "would publish" if dry_run else "published"
    prefixes = {"qbo": KEY_PREFIX, "hubspot": HUBSPOT_KEY_PREFIX}
    for source in sources:
        for key in archived_keys(s3, bucket, hour_prefixes(prefixes[source], since, until)):
            kept_before, other_before = len(sink.kept), sink.other_connection
            try:
                document = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
                try:
                    delivery = WebhookDelivery.from_json(document)
                except (ValueError, KeyError, TypeError):
                    report.deliveries["read"] += 1
                    raise
                if not since <= delivery.received_at.astimezone(UTC) < until:
                    # In an hour the window cuts, received outside it: not this replay's.
                    report.deliveries["outside_window"] += 1
                    continue
                report.deliveries["read"] += 1
                if source == "qbo":
                    result = replay_delivery(delivery, publisher=sink, served=config, max_events=max_events)
                    for skipped in result.unsupported:
                        report.events[_SKIP_COUNTER[skipped.reason]] += 1
                    read = len(result.events) + len(result.unsupported)
                else:
                    try:
                        outcome = replay_hubspot_delivery(
                            delivery, publisher=sink, served=config, max_events=max_events
                        )
                    except UnknownPortal:
                        # Served at receipt (else it would not be archived), no more: counted, not an error.
                        count = len(parse_hubspot(delivery.body, max_events=max_events))
                        report.deliveries["unserved"] += 1
                        report.events["read"] += count
                        report.events["unserved"] += count
                        continue
                    report.events["unsupported"] += len(outcome.skipped)
                    report.events["duplicates"] += outcome.duplicates
                    read = len(outcome.events) + len(outcome.skipped) + outcome.duplicates
            except PublishError as error:
                report.deliveries["failed"] += 1
                report.problems.append(f"failed: {key}: {error}")
                continue
            except (ValueError, KeyError, TypeError) as error:
                # A document that is not a delivery, one that does not record its verification, or a
                # signed delivery that was malformed at receipt (the QBO ingest archives it for
                # inspection): reported, and the replay goes on.
                report.deliveries["malformed"] += 1
                report.problems.append(f"malformed: {key}: {type(error).__name__}: {error}")
                continue
            finally:
                if progress is not None:
                    progress.update(report)
            kept = sink.kept[kept_before:]
            report.deliveries["replayed"] += 1
            report.events["read"] += read
            report.events[published] += len(kept)
            report.events["other_connection"] += sink.other_connection - other_before
            report.event_ids.extend(envelope.event_id for envelope in kept)
    if progress is not None:
        progress.finish()
    return report


# The report's counter for each reason the QBO ingest skips an event.
_SKIP_COUNTER: Final[dict[str, str]] = {
    "unsupported_type": "unsupported",
    "invalid_entity_id": "invalid_entity_id",
    "unserved_realm": "unserved",
}


def register(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    archive = commands.add_parser(
        "archive",
        help="re-ingest the archived raw webhook deliveries of a time window (idempotent)",
        description=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    archive.add_argument("--since", required=True, metavar="T", help="from this ISO date/time (UTC)")
    archive.add_argument("--until", metavar="T", help="to this ISO date/time, excluded (default: now)")
    archive.add_argument("--connection", metavar="NAME", help="keep this connection's events only")
    archive.add_argument("--source", choices=(*SOURCES, "all"), default="all", help="whose deliveries")
    archive.add_argument("--dry-run", action="store_true", help="read and count; publish nothing")
    where = archive.add_mutually_exclusive_group()
    where.add_argument("--aws", action="store_true", help="replay in AWS even when a local stack is running")
    where.add_argument("--endpoint-url", metavar="URL", help="AWS endpoint (e.g. the local stack's moto)")
    archive.add_argument("--region", help="AWS region")
    archive.add_argument(
        "--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR", help="the local stack's state directory"
    )
    archive.set_defaults(func=run_replay_archive)


def run_replay_archive(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        since = parse_moment(args.since)
        until = parse_moment(args.until) if args.until else datetime.now(UTC)
        if until <= since:
            raise WindowError(
                f"--until {until:%Y-%m-%dT%H:%M:%SZ} is not after --since {since:%Y-%m-%dT%H:%M:%SZ}"
            )
    except WindowError as error:
        print(f"ledgerlink replay archive: {error}", file=sys.stderr)
        return EXIT_USAGE
    try:
        state_dir = Path(args.state_dir)
        endpoint = resolve_endpoint(args.endpoint_url, args.region, args.aws, state_dir, services=SERVICES)
        settings, config, source = function_settings(endpoint, state_dir, INGEST_FUNCTION)
        names = [connection.name for connection in config.connections]
        if args.connection is not None and args.connection not in names:
            raise EndpointError(
                f"no connection {args.connection!r} in {config.source} (connections: {', '.join(names)})"
            )
        sources = SOURCES if args.source == "all" else (args.source,)
        print(f"endpoint: {endpoint.url or 'AWS'} (from {endpoint.source})", file=out)
        print(
            f"replaying {'/'.join(sources)} deliveries received {since:%Y-%m-%dT%H:%M:%SZ} .. "
            f"{until:%Y-%m-%dT%H:%M:%SZ} from {settings.raw_bucket_name} to {settings.event_bus_name} "
            f"({args.connection or 'every connection'}; settings of {source})"
            + (" -- dry run, nothing is published" if args.dry_run else ""),
            file=out,
            flush=True,
        )
        from ledgerlink.publisher import EventBridgePublisher

        with _ingest_logs_on_stderr():
            report = replay_archive(
                aws_client("s3", endpoint),
                settings.raw_bucket_name,
                EventBridgePublisher(aws_client("events", endpoint), settings.event_bus_name),
                config,
                since=since,
                until=until,
                sources=sources,
                connection=args.connection,
                dry_run=args.dry_run,
                max_events=settings.max_webhook_events,
                progress=Progress(out),
            )
        for line in report.lines():
            print(line, file=out)
        out.flush()
    except BrokenPipeError:
        # `| head` read what it wanted: stop quietly, and keep the interpreter's last flush quiet too.
        silence_closed_pipe(out)
        return EXIT_OK
    except EndpointError as error:
        print(f"ledgerlink replay archive: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - AWS errors: say what failed, no traceback
        print(f"ledgerlink replay archive: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if report.ok else EXIT_FAILED


@contextmanager
def _ingest_logs_on_stderr() -> Iterator[None]:
    """While replaying, the ingests' structured logs go to stderr at WARNING (a skipped event), so stdout
    is the report; as they were afterwards."""
    from ledgerlink.observability import Service

    saved: list[tuple[logging.Logger, int, list[tuple[logging.StreamHandler[Any], Any]]]] = []
    for service in (Service.QBO_INGEST, Service.HUBSPOT_INGEST):
        named = logging.getLogger(service)
        streams = [(h, h.stream) for h in named.handlers if isinstance(h, logging.StreamHandler)]
        saved.append((named, named.level, streams))
        named.setLevel(logging.WARNING)
        for handler, _ in streams:
            handler.stream = _Stderr()
    try:
        yield
    finally:
        for named, level, streams in saved:
            named.setLevel(level)
            for handler, stream in streams:
                handler.stream = stream


class _Stderr:
    """``sys.stderr`` as it is at each write (a test or a caller may replace it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()
