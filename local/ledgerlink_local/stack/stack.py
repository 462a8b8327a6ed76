"""The local stack, assembled: moto, the topology's resources, the functions, the gateway, the pollers.

:class:`LocalStack` is what ``ledgerlink local up`` runs in the foreground and what the end-to-end
tests start in-process. It needs the vendor endpoints (:class:`~ledgerlink_local.stack.wiring.VendorUrls`)
and the secret values to store; it does not start the sandboxes (``up`` does, and the tests do with
their own fixtures)::

    options = StackOptions(vendors=urls, secret_values=secrets, state_dir=Path(".ledgerlink"))
    stack = LocalStack(options).start()
    stack.gateway_url      # http://127.0.0.1:<port>; POST /v1/webhooks/{qbo,hubspot} reach the ingest functions
    stack.endpoint_url     # moto; every AWS client of the stack and of its functions uses it
    stack.stop()
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ledgerlink_local.stack.aws import MotoServer, Resources, client, provision
from ledgerlink_local.stack.front import ApiFront, Route, TokenBucket
from ledgerlink_local.stack.hops import HopLog, RuleRoute
from ledgerlink_local.stack.pollers import PollerConfig, QueuePoller
from ledgerlink_local.stack.records import RecordLines
from ledgerlink_local.stack.runtime import FunctionPool, FunctionRuntime, InvocationResult, lambda_environment
from ledgerlink_local.stack.schedule import (
    RateSchedule,
    Schedule,
    ScheduledRule,
    Scheduler,
    parse_schedule,
    queue_delivery,
)
from ledgerlink_local.stack.settings import EVENT_LOG, LOG_DIR
from ledgerlink_local.stack.wiring import (
    LOCAL_ACCOUNT,
    LOCAL_REGION,
    VendorUrls,
    function_environment,
    functions_root,
    gateway_variables,
    local_topology,
    plain_json,
)

if TYPE_CHECKING:
    from infra.topology import RedeliveryPolicy, Topology


@dataclass(frozen=True)
class StackOptions:
    vendors: VendorUrls
    secret_values: Mapping[str, str]
    """SecretString per secret key of the topology (``qbo-webhook``, ``qbo-oauth``, ``hubspot``, ...)."""
    host: str = "127.0.0.1"
    gateway_port: int = 0
    aws_port: int = 0
    state_dir: Path | None = None
    """Where the hop log (``events.jsonl``) and the functions' logs (``logs/``) go; None: nowhere."""
    console: TextIO | None = None
    """Where hop lines are printed (``up`` passes stdout; tests pass None)."""
    verbose: bool = False
    record_lines: bool = False
    """True: the console gets one line per record outcome (:mod:`ledgerlink_local.stack.records`,
    ``make run``'s default) instead of a line per hop; the hop log file has every hop either way."""
    stage_labels: Mapping[str, str] = field(default_factory=dict)
    """HubSpot deal stage id -> label, for the record lines (``up`` reads the HubSpot sandbox's)."""
    concurrency: int = 2
    """Execution environments per function at most (the topology's own caps still apply)."""
    visibility_timeout_seconds: int | None = None
    """Test override of every queue's visibility timeout (the stack's is minutes long)."""
    batching_window_seconds: float | None = None
    """Test override of every event source's batching window."""
    redelivery: RedeliveryPolicy | None = None
    """Test override of the queues' retry delays and outage span (their maxReceiveCount follows)."""
    function_variables: Mapping[str, str] = field(default_factory=dict)
    """Test overrides of LedgerLink variables in every function (e.g. a short breaker cool-down)."""
    start_pollers: bool = True
    """False leaves messages in their queues (tests that look at what reached a queue)."""
    clock: Callable[[], datetime] | None = None
    """What time it is for the scheduler (tests move it instead of waiting); None: the real time."""
    schedule_seconds: Mapping[str, float] = field(default_factory=dict)
    """Scheduled rules (by topology key) fired every so many seconds instead of on their schedule, which
    EventBridge cannot make shorter than a minute (``LEDGERLINK_LOCAL_SWEEP_SECONDS`` for the sweep).
    The rule in moto keeps the topology's expression, as the wiring test compares it with the template."""
    vendor_names: Mapping[str, str] = field(default_factory=dict)
    """Base URL -> vendor name, for the hop lines of vendor calls (default: from ``vendors``)."""


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.moto = MotoServer(options.host, options.aws_port)
        self.topology: Topology | None = None
        self.resources: Resources | None = None
        self.hops: HopLog | None = None
        self.pools: dict[str, FunctionPool] = {}
        self.pollers: list[QueuePoller] = []
        self.front: ApiFront | None = None
        self.scheduler: Scheduler | None = None

    # ---- lifecycle

    def start(self) -> LocalStack:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        options = self.options
        self.moto.start()
        topology = local_topology(
            options.vendors, account=LOCAL_ACCOUNT, region=LOCAL_REGION, redelivery=options.redelivery
        )
        self.topology = topology
        resources = provision(
            topology,
            self.moto.endpoint_url,
            secret_values=options.secret_values,
            visibility_timeout_seconds=options.visibility_timeout_seconds,
        )
        self.resources = resources
        state_dir = options.state_dir
        self.hops = HopLog(
            stream=options.console,
            path=None if state_dir is None else state_dir / EVENT_LOG,
            rules=rule_routes(topology),
            vendors=options.vendor_names or _vendor_names(options.vendors),
            raw_bucket=topology.bucket.name,
            account=resources.account,
            region=resources.region,
            verbose=options.verbose,
            dead_letter_queues=[queue.dlq_name for queue in topology.queues],
            hop_lines=not options.record_lines,
            listeners=[RecordLines(options.console, options.stage_labels)]
            if options.record_lines and options.console
            else [],
        )
        api = topology.api
        # The gateway takes its port now and serves once the functions exist: the HubSpot ingest must
        # know its URL (wiring.gateway_variables), which a free port (0) makes known only here.
        self.front = ApiFront(
            [Route(route.method, route.path, route.function) for route in api.routes],
            lambda key, event, _request_id: self.invoke(key, event),
            throttle=TokenBucket(api.throttle.rate_limit, api.throttle.burst_limit),
            account_id=resources.account,
            api_name=api.name,
            host=options.host,
            port=options.gateway_port,
            on_request=self.hops.request,
        )
        for function in topology.functions:
            self.pools[function.key] = FunctionPool(
                self._runtime(function.key),
                max_concurrency=self._concurrency(function.key),
                on_call=self.hops.call,
            )
            self.pools[function.key].prewarm()
        self.front.start()
        sqs = client("sqs", resources.endpoint_url, resources.region)
        for source in topology.queue_sources:
            queue = resources.queue(source.queue)
            window = (
                options.batching_window_seconds
                if options.batching_window_seconds is not None
                else source.max_batching_window_seconds
            )
            pool = self.pools[source.function]
            config = PollerConfig(
                function=source.function,
                queue_name=queue.name,
                queue_url=queue.url,
                queue_arn=queue.arn,
                region=resources.region,
                batch_size=source.batch_size,
                max_batching_window_seconds=window,
                report_batch_item_failures=source.report_batch_item_failures,
                max_receive_count=queue.max_receive_count,
            )
            poller = QueuePoller(config, sqs, pool.invoke, self.hops)
            self.pollers.append(poller.start() if options.start_pollers else poller)
        now = options.clock or (lambda: datetime.now(UTC))
        self.scheduler = Scheduler(
            scheduled_rules(topology, resources, sqs, now(), options.schedule_seconds),
            account=resources.account,
            region=resources.region,
            now=now,
            on_fire=schedule_hop(self.hops),
        ).start()

    def stop(self) -> None:
        """Stop taking requests, then stop polling, then the functions, then AWS."""
        if self.front is not None:
            self.front.stop()
            self.front = None
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        for poller in self.pollers:
            poller.request_stop()  # all at once, then wait for each
        for poller in self.pollers:
            poller.stop()
        self.pollers = []
        for pool in self.pools.values():
            pool.close()
        self.pools = {}
        self.moto.stop()

    # ---- use

    @property
    def gateway_url(self) -> str:
        if self.front is None:
            raise RuntimeError("the stack is not running")
        return self.front.url

    @property
    def endpoint_url(self) -> str:
        return self.moto.endpoint_url

    @property
    def region(self) -> str:
        return LOCAL_REGION

    def client(self, service: str) -> Any:
        """A boto3 client of the local AWS."""
        return client(service, self.endpoint_url, self.region)

    def invoke(self, function_key: str, event: dict[str, Any]) -> InvocationResult:
        """Invoke a function synchronously (what the gateway does for a route)."""
        try:
            pool = self.pools[function_key]
        except KeyError:
            raise KeyError(f"no function {function_key!r} (known: {', '.join(self.pools)})") from None
        return pool.invoke(event)

    # ---- parts

    def _runtime(self, key: str) -> FunctionRuntime:
        assert self.topology is not None
        function = self.topology.function(key)
        code_root = functions_root()
        assert self.front is not None
        variables = {
            **function_environment(function, self.options.vendors),
            **gateway_variables(self.topology, key, self.front.url),
            **self.options.function_variables,
        }
        environment = lambda_environment(
            function_name=function.name,
            handler=function.handler,
            memory_mb=function.memory_mb,
            function_variables=variables,
            code_root=code_root,
            aws_endpoint_url=self.endpoint_url,
            region=LOCAL_REGION,
            account=LOCAL_ACCOUNT,
            python_version=self.topology.python_version,
        )
        state_dir = self.options.state_dir
        return FunctionRuntime(
            key=function.key,
            name=function.name,
            handler=function.handler,
            timeout_seconds=function.timeout_seconds,
            memory_mb=function.memory_mb,
            environment=environment,
            code_root=code_root,
            log_path=None if state_dir is None else state_dir / LOG_DIR / f"{function.key}.log",
            function_variables=variables,
        )

    def _concurrency(self, key: str) -> int:
        assert self.topology is not None
        caps = [self.options.concurrency]
        function = self.topology.function(key)
        if function.reserved_concurrency:
            caps.append(function.reserved_concurrency)
        caps.extend(
            source.max_concurrency
            for source in self.topology.queue_sources
            if source.function == key and source.max_concurrency
        )
        return max(1, min(caps))


def scheduled_rules(
    topology: Topology,
    resources: Resources,
    sqs: Any,
    created: datetime,
    schedule_seconds: Mapping[str, float] | None = None,
) -> list[ScheduledRule]:
    """The topology's scheduled rules as the scheduler fires them: on their schedule from ``created``
    (EventBridge's grid for a rate), or every ``schedule_seconds[rule key]`` seconds, into their queue."""
    overrides = dict(schedule_seconds or {})
    scheduled = {rule.key for rule in topology.rules if rule.schedule_expression}
    unknown = sorted(set(overrides) - scheduled)
    if unknown:
        raise ValueError(
            f"schedule_seconds names rules without a schedule: {unknown} (scheduled: {sorted(scheduled)})"
        )
    if any(not seconds > 0 for seconds in overrides.values()):
        raise ValueError(f"schedule_seconds must be positive, got {overrides}")
    rules = []
    for rule in topology.rules:
        if not rule.schedule_expression:
            continue
        queue = resources.queue(rule.target_queue)
        schedule: Schedule = (
            RateSchedule(overrides[rule.key])
            if rule.key in overrides
            else parse_schedule(rule.schedule_expression)
        )
        rules.append(
            ScheduledRule(
                name=rule.name,
                arn=resources.rule_arns[rule.key],
                schedule=schedule,
                anchor=created,
                deliver=queue_delivery(sqs, queue.url),
            )
        )
    return rules


def schedule_hop(hops: HopLog | None) -> Callable[[ScheduledRule, dict[str, Any]], None]:
    """The hop a fired schedule leaves, labelled with its Scheduled Event's id (the queue hop that
    delivers the event to its function is labelled with it too)."""

    def record(rule: ScheduledRule, event: dict[str, Any]) -> None:
        if hops is not None:
            hops.record("schedule", f"{rule.name} fired", event["id"], rule=rule.name)

    return record


def rule_routes(topology: Topology) -> list[RuleRoute]:
    """The topology's event-pattern rules as the hop log matches them (scheduled rules have none)."""
    return [
        RuleRoute(
            name=rule.name,
            bus=topology.event_bus.name,
            pattern_json=plain_json(rule.event_pattern),
            queue=topology.queue(rule.target_queue).name,
        )
        for rule in topology.rules
        if rule.event_pattern
    ]


def _vendor_names(vendors: VendorUrls) -> dict[str, str]:
    return {
        vendors.qbo_base_url: "qbo",
        vendors.qbo_token_url: "qbo-oauth",
        vendors.hubspot_base_url: "hubspot",
        vendors.graph_base_url: "graph",
        vendors.graph_token_url: "graph-oauth",
    }
