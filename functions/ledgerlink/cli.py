"""The ``ledgerlink`` command: groups of subcommands, each group in its own module, imported only when used.

``ledgerlink <group> <command> ...``. A group is one entry of :data:`COMMAND_GROUPS`: a name, a help
line and ``"<module>:<function>"``, a function that receives the group's ``argparse`` parser and
adds the group's commands to it, each setting ``func`` (``args -> exit code``) as its default::

    def register(parser: argparse.ArgumentParser) -> None:
        commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
        setup = commands.add_parser("setup", help="create the HubSpot properties LedgerLink needs")
        setup.set_defaults(func=run_setup)

Adding a group is that module plus one line in :data:`COMMAND_GROUPS`. Only the chosen group's module
is imported, so ``ledgerlink dlq replay`` never imports the local stack (moto, the sandboxes), and
nothing the Lambda asset ships imports this module.

Built in here: ``ledgerlink dlq replay <queue>``, which moves dead-lettered messages back to the queue
they came from without LedgerLink's failure attributes (``ledgerlink.*``: the reason, kind, ...), so a
replayed message starts clean, against AWS or the local stack (see :func:`resolve_endpoint`);
``--dry-run`` lists each message with its failure reason and moves nothing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO


@dataclass(frozen=True)
class CommandGroup:
    name: str
    register: str
    """``"<module>:<function>"``; the function takes the group's parser (see the module docstring)."""
    help: str


COMMAND_GROUPS: Final[tuple[CommandGroup, ...]] = (
    CommandGroup(
        "local",
        "ledgerlink_local.stack.commands:register",
        "run the whole choreography on this machine (make run) and inspect it",
    ),
    CommandGroup(
        "dlq", "ledgerlink.cli:register_dlq", "dead-letter queues: move messages back to their queue"
    ),
    CommandGroup(
        "hubspot", "ledgerlink.cli_hubspot:register", "HubSpot portal: create LedgerLink's properties"
    ),
)

EXIT_OK: Final = 0
EXIT_FAILED: Final = 1
EXIT_USAGE: Final = 2


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="ledgerlink",
        description="LedgerLink: keeps QuickBooks Online and HubSpot in step.",
    )
    groups = parser.add_subparsers(dest="group", metavar="<group>")
    group_parsers = {
        group.name: groups.add_parser(group.name, help=group.help, description=group.help)
        for group in COMMAND_GROUPS
    }
    chosen = next((group for group in COMMAND_GROUPS if arguments[:1] == [group.name]), None)
    if chosen is not None:
        try:
            _load(chosen.register)(group_parsers[chosen.name])
        except ImportError as error:
            print(
                f"ledgerlink {chosen.name}: cannot load its commands ({error}); "
                "install the development dependencies with `pip install -e '.[dev]'`",
                file=sys.stderr,
            )
            return EXIT_USAGE
    args = parser.parse_args(arguments)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        (group_parsers[chosen.name] if chosen else parser).print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return func(args)
    except KeyboardInterrupt:
        return 130


def _load(reference: str) -> Callable[[argparse.ArgumentParser], None]:
    module_name, _, function_name = reference.partition(":")
    function: Callable[[argparse.ArgumentParser], None] = getattr(
        importlib.import_module(module_name), function_name
    )
    return function


# --------------------------------------------------------------------------------------------------
# ledgerlink dlq replay
# --------------------------------------------------------------------------------------------------

DEFAULT_STATE_DIR: Final = ".ledgerlink"
# Long enough that a message being moved is not received twice by this command.
REPLAY_VISIBILITY_SECONDS: Final = 60
BATCH: Final = 10
# How many messages --dry-run lists at most (unless --max-messages says otherwise).
DRY_RUN_LIMIT: Final = 100
# What the local stack's own clients use; moto accepts any value, it is no secret.
LOCAL_DUMMY_CREDENTIAL: Final = "ledgerlink-local"


class ReplayError(RuntimeError):
    """The queue cannot be replayed (unknown, not a dead-letter queue, ambiguous); the message says why."""


def register_dlq(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="command", metavar="<command>", required=True)
    replay = commands.add_parser(
        "replay",
        help="move dead-lettered messages back to their source queue",
        description=(
            "Move every message of a dead-letter queue back to the queue it came from, keeping its body "
            "and message attributes except LedgerLink's failure attributes (ledgerlink.*), so that it "
            "starts clean. QUEUE is the dead-letter queue or its source queue (name or URL). "
            "Endpoint: --endpoint-url, else AWS_ENDPOINT_URL / your AWS config, else the local stack "
            "of --state-dir (unless --aws), else AWS."
        ),
    )
    replay.add_argument("queue", help="dead-letter queue or source queue, by name or URL")
    replay.add_argument("--endpoint-url", help="AWS endpoint (e.g. the local stack's moto)")
    replay.add_argument("--region", help="AWS region")
    replay.add_argument("--aws", action="store_true", help="use AWS even when a local stack is running")
    replay.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="the local stack's state directory")
    replay.add_argument("--max-messages", type=int, default=None, help="move at most this many")
    replay.add_argument(
        "--dry-run", action="store_true", help="list each message with its failure reason; move nothing"
    )
    replay.set_defaults(func=run_dlq_replay)


@dataclass(frozen=True)
class Endpoint:
    url: str | None
    region: str | None
    source: str
    local: bool


def resolve_endpoint(
    endpoint_url: str | None, region: str | None, use_aws: bool, state_dir: Path
) -> Endpoint:
    """Where to send SQS calls: the flag, then boto3's own ``AWS_ENDPOINT_URL``/config, then the local
    stack described by ``<state_dir>/local.json`` (unless ``use_aws``), then AWS itself."""
    if endpoint_url:
        return Endpoint(endpoint_url, region, "--endpoint-url", local=False)
    import botocore.session
    from botocore.configprovider import ConfiguredEndpointProvider

    session = botocore.session.Session()
    configured = ConfiguredEndpointProvider(
        full_config=session.full_config, scoped_config=session.get_scoped_config(), client_name="sqs"
    ).provide()
    if configured:
        # boto3 applies it by itself (AWS_ENDPOINT_URL[_SQS] or the profile's endpoint_url).
        return Endpoint(None, region, f"AWS_ENDPOINT_URL / AWS config ({configured})", local=False)
    local_json = state_dir / "local.json"
    if not use_aws and local_json.is_file():
        try:
            aws = json.loads(local_json.read_text(encoding="utf-8"))["aws"]
            return Endpoint(str(aws["endpoint_url"]), region or str(aws["region"]), str(local_json), True)
        except (ValueError, KeyError, TypeError):
            raise ReplayError(
                f"{local_json} is not a local stack description (no aws.endpoint_url)"
            ) from None
    return Endpoint(None, region, "AWS", local=False)


def sqs_client(endpoint: Endpoint) -> Any:
    import boto3

    session = boto3.session.Session()
    if not (endpoint.region or session.region_name):
        raise ReplayError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION")
    key_id = secret = None
    if endpoint.local and session.get_credentials() is None:
        # moto takes any credentials; a developer without an AWS profile still gets to replay locally.
        key_id = secret = LOCAL_DUMMY_CREDENTIAL
    return session.client(
        "sqs",
        endpoint_url=endpoint.url,
        region_name=endpoint.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
    )


@dataclass(frozen=True)
class QueuePair:
    dlq_url: str
    dlq_name: str
    source_url: str
    source_name: str


def _queue_url(sqs: Any, queue: str) -> str:
    if queue.startswith(("http://", "https://")):
        return queue
    try:
        url: str = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist:
        raise ReplayError(f"no queue named {queue!r} at this endpoint") from None
    return url


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def find_pair(sqs: Any, queue: str) -> QueuePair:
    """The dead-letter queue and its source, given either of them."""
    url = _queue_url(sqs, queue)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["RedrivePolicy"]).get(
        "Attributes", {}
    )
    if "RedrivePolicy" in attributes:
        target_arn = str(json.loads(attributes["RedrivePolicy"])["deadLetterTargetArn"])
        account, name = target_arn.split(":")[4], target_arn.split(":")[5]
        dlq_url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]
        return QueuePair(dlq_url, name, url, _name(url))
    sources = sqs.list_dead_letter_source_queues(QueueUrl=url).get("queueUrls", [])
    if not sources:
        raise ReplayError(f"{_name(url)} is not a dead-letter queue and has none: nothing to replay")
    if len(sources) > 1:
        names = ", ".join(sorted(_name(source) for source in sources))
        raise ReplayError(
            f"{_name(url)} is the dead-letter queue of several queues ({names}); name the source queue"
        )
    return QueuePair(url, _name(url), sources[0], _name(sources[0]))


@dataclass(frozen=True)
class ReplayReport:
    moved: int
    failed: int


def _send_entry(message: dict[str, Any], index: int, fifo: bool) -> dict[str, Any]:
    """The message as it was before it failed: body, its own attributes (not ``ledgerlink.*``), trace."""
    from ledgerlink.sync.deadletter import without_failure_attributes

    entry: dict[str, Any] = {"Id": str(index), "MessageBody": message["Body"]}
    attributes = {}
    for name, value in without_failure_attributes(message.get("MessageAttributes") or {}).items():
        kept = {key: item for key, item in value.items() if key in ("DataType", "StringValue", "BinaryValue")}
        attributes[name] = kept
    if attributes:
        entry["MessageAttributes"] = attributes
    system = message.get("Attributes") or {}
    if system.get("AWSTraceHeader"):
        entry["MessageSystemAttributes"] = {
            "AWSTraceHeader": {"DataType": "String", "StringValue": system["AWSTraceHeader"]}
        }
    if fifo:
        entry["MessageGroupId"] = system.get("MessageGroupId", "replay")
        if system.get("MessageDeduplicationId"):
            entry["MessageDeduplicationId"] = system["MessageDeduplicationId"]
    return entry


def replay(sqs: Any, pair: QueuePair, max_messages: int | None = None) -> ReplayReport:
    """Move messages from ``pair.dlq_url`` to ``pair.source_url``: send first, delete only what was sent.

    A message whose send fails stays in the dead-letter queue (visible again after
    :data:`REPLAY_VISIBILITY_SECONDS`). Each message is moved at most once per run.
    """
    moved = failed = 0
    seen: set[str] = set()
    fifo = pair.source_name.endswith(".fifo")
    while max_messages is None or moved + failed < max_messages:
        wanted = BATCH if max_messages is None else min(BATCH, max_messages - moved - failed)
        messages = sqs.receive_message(
            QueueUrl=pair.dlq_url,
            MaxNumberOfMessages=wanted,
            WaitTimeSeconds=1,
            VisibilityTimeout=REPLAY_VISIBILITY_SECONDS,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
            MessageSystemAttributeNames=["All"],
        ).get("Messages", [])
        fresh = [message for message in messages if message["MessageId"] not in seen]
        if not fresh:
            break
        seen.update(message["MessageId"] for message in fresh)
        entries = [_send_entry(message, index, fifo) for index, message in enumerate(fresh)]
        result = sqs.send_message_batch(QueueUrl=pair.source_url, Entries=entries)
        sent = {item["Id"] for item in result.get("Successful", [])}
        failed += len(fresh) - len(sent)
        to_delete = [
            {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"]}
            for index, message in enumerate(fresh)
            if str(index) in sent
        ]
        if to_delete:
            deleted = sqs.delete_message_batch(QueueUrl=pair.dlq_url, Entries=to_delete)
            # A message sent but not deleted would come back here and be sent twice; say so.
            failed += len(deleted.get("Failed", []))
            moved += len(deleted.get("Successful", []))
    return ReplayReport(moved, failed)


def print_dead_letters(sqs: Any, pair: QueuePair, limit: int, out: TextIO) -> None:
    """What ``--dry-run`` prints: each message (left in the queue) with why it is there."""
    from ledgerlink.sync.deadletter import describe, peek

    messages = peek(sqs, pair.dlq_url, limit)
    waiting = sqs.get_queue_attributes(QueueUrl=pair.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ].get("ApproximateNumberOfMessages", "0")
    shown = f" (showing {len(messages)} of about {waiting})" if int(waiting) > len(messages) else ""
    plural = "s" if len(messages) != 1 else ""
    print(
        f"would move {len(messages)} message{plural} from {pair.dlq_name} to {pair.source_name}{shown}",
        file=out,
    )
    for message in messages:
        view = describe(message)
        where = ", ".join(
            part
            for part in (
                f"receive {view.receive_count}" if view.receive_count else "",
                f"from {view.source_queue}" if view.source_queue else "",
                view.failed_at or "",
                f"correlation id {view.correlation_id}" if view.correlation_id else "",
            )
            if part
        )
        print(
            f"  {view.message_id}  {view.kind}  {view.subject}" + (f"  ({where})" if where else ""), file=out
        )
        print(f"    reason: {view.reason}", file=out)


def run_dlq_replay(args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    try:
        if args.max_messages is not None and args.max_messages < 1:
            raise ReplayError("--max-messages must be at least 1")
        endpoint = resolve_endpoint(args.endpoint_url, args.region, args.aws, Path(args.state_dir))
        sqs = sqs_client(endpoint)
        print(f"endpoint: {endpoint.url or 'AWS'} (from {endpoint.source})", file=out)
        pair = find_pair(sqs, args.queue)
        if args.dry_run:
            print_dead_letters(sqs, pair, args.max_messages or DRY_RUN_LIMIT, out)
            return EXIT_OK
        report = replay(sqs, pair, args.max_messages)
    except ReplayError as error:
        print(f"ledgerlink dlq replay: {error}", file=sys.stderr)
        return EXIT_FAILED
    except Exception as error:  # noqa: BLE001 - botocore errors: say what failed, never a traceback
        print(f"ledgerlink dlq replay: {type(error).__name__}: {error}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"moved {report.moved} message{'s' if report.moved != 1 else ''} from {pair.dlq_name} "
        f"to {pair.source_name}; {report.failed} failed",
        file=out,
    )
    return EXIT_OK if report.failed == 0 else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
