"""One worker process: builds the engine from settings, runs it, and stops cleanly.

Exit status: 0 after SIGTERM/SIGINT (what was decided is committed first), 1 when the
worker had to stop (the cause is one log line). A second signal, or a shutdown that
takes longer than ``shutdown_timeout``, ends the process at once: an orchestrator's
SIGTERM always ends it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer

from enforcer.config.logs import trace_fields
from enforcer.config.settings import EnforcerSettings
from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.models import Mode
from enforcer.core.policy.compiled import Policy
from enforcer.exposure.state import MemoryTable, SubjectTable
from enforcer.formats.registry import SchemaRegistry
from enforcer.formats.schemas import SchemaCache
from enforcer.ledger.retract import passes_under
from enforcer.ledger.state import LedgerState, LedgerStore
from enforcer.live.admin import admin_client
from enforcer.live.clients import (
    ClientErrors,
    TransactionReports,
    consumer_config,
    denied_cause,
    kafka_error,
    metrics_producer_config,
    producer_config,
)
from enforcer.live.engine import Engine, EngineConfig
from enforcer.live.exposure import LiveExposure
from enforcer.live.failures import WorkerStopError
from enforcer.live.garbage import (
    CollectionTimer,
    kept_small,
)
from enforcer.live.guard import DeadLetterGuard, DeadLetterRateExceededError
from enforcer.live.health import Health
from enforcer.live.http import MetricsHttpServer
from enforcer.live.ledger import LiveLedger
from enforcer.live.limits import RECORD_OVERHEAD, OutputLimits
from enforcer.live.output import (
    AtLeastOnceOutput,
    Output,
    RenewalBudget,
    TransactionalOutput,
)
from enforcer.live.policy_reload import PolicyReload, PolicyWatch, StepParts, reload_loader
from enforcer.live.publisher import LagMeter, SnapshotPublisher
from enforcer.live.schemas import RegistryWait, schema_loader, step_reader
from enforcer.live.signals import StopSignal
from enforcer.live.watch import TopicWatch
from enforcer.outputs.metrics import GcStats, MetricsRecorder, metric_identifier_types
from enforcer.outputs.records import OutputTopics

log = logging.getLogger("enforcer")

STALLED_AFTER_S = 30.0
"""A loop that has not gone round for this long makes ``/healthz`` unhealthy, and the
watchdog ends the process: a worker that cannot progress exits to be restarted."""
CALL_DEADLINE_S = 20.0
"""How long a commit, an abort or a start may keep retrying before the worker stops
(less than the stall limit, so that the worker says why itself)."""

MESSAGE_MAX_BYTES_CEILING = 1_000_000_000  # librdkafka's own maximum
RENEWALS_MOST, RENEWALS_WINDOW_S = 3, 300.0
"""A failed producer is replaced at most this often in this window; then the worker stops."""


class Watchdog:
    """Ends the process when the loop stalls, or when records have waited for a commit
    for too long (a deleted sink topic, writes denied, a broker gone): a client call
    that blocks past its own timeout (seen with librdkafka's commit after a broker
    crash), or a commit that fails again and again, must not hang the worker with
    nothing said. A new process starts with new clients, and exactly once
    holds: the open transaction is aborted when the worker's id is registered again."""

    def __init__(
        self,
        health: Health,
        stop: Callable[[], bool],
        limit_s: float,
        exit_process: Callable[[int], object] | None = None,
        every_s: float = 1.0,
    ) -> None:
        self._health = health
        self._stop = stop
        self._limit_s = limit_s
        self._exit = exit_process or _exit_now
        self._every_s = every_s
        self._done = threading.Event()
        self._closing_until: float | None = None
        self._closing_s = 0.0

    def start(self) -> None:
        """Check every second from a daemon thread."""
        threading.Thread(target=self._watch, daemon=True, name="watchdog").start()

    def stop(self) -> None:
        """No more checks (the loop has ended, the clients are closed)."""
        self._done.set()

    def closing(self, deadline_s: float) -> None:
        """The loop has ended and the clients are being closed: no more stall checks,
        but the process ends if closing takes longer than ``deadline_s``. A worker that
        stopped on an error has no signal's deadline, and a client's close can block (a
        consumer leaving its group with the brokers gone): it must still exit."""
        self._closing_s = deadline_s
        self._closing_until = time.monotonic() + deadline_s

    def _watch(self) -> None:
        health = self._health
        while not self._done.wait(self._every_s):
            closing_until = self._closing_until
            if closing_until is not None:
                if time.monotonic() > closing_until and not self._done.is_set():
                    log.error(
                        "closing the clients took longer than %.0fs "
                        "(ENFORCER_SHUTDOWN_TIMEOUT): exiting now",
                        self._closing_s,
                    )
                    self._exit(1)
                    return
                continue
            if not health.started or self._stop():
                continue  # start-up and shutdown have deadlines of their own
            stalled = health.stalled_for()
            waiting = health.uncommitted_for()
            if stalled > self._limit_s:
                cause = f"stuck for {stalled:.0f}s in {health.doing}"
            elif waiting > self._limit_s:
                cause = (
                    f"no commit for {waiting:.0f}s although records wait "
                    f"(last failure: {health.last_failure or 'none reported'})"
                )
            else:
                continue
            _stopped(health, f"{cause}; exiting to be restarted")
            self._exit(1)
            return


def _exit_now(status: int) -> None:
    """End the process at once (from a thread beside a loop that may be stuck)."""
    logging.shutdown()
    os._exit(status)


def run_worker(
    settings: EnforcerSettings,
    policy: Policy,
    fingerprinter: Fingerprinter,
    limits: Mapping[str, int],
    stop: StopSignal,
    registry: SchemaRegistry | None = None,
    previous: Fingerprinter | None = None,
) -> int:
    """Run until stopped; return the exit status. ``limits``: each output topic's
    ``max.message.bytes``; ``registry``: the schema registry of framed records, if any;
    ``previous``: during a key rotation, the key in force before it (with exposure:
    docs/exposure.md, "Key rotation")."""
    stop.deadline_s = settings.shutdown_timeout
    errors = ClientErrors()
    health = Health(time.monotonic, STALLED_AFTER_S)
    recorder = _recorder(settings, policy, health)
    config = consumer_config(settings, errors)
    previous = None if settings.exposure_topic is None else previous  # re-keying is exposure's
    ledger, exposure = _restored_sides(settings, policy, fingerprinter, recorder, limits, previous)
    if ledger is not None or exposure is not None:
        config["enable.partition.eof"] = True  # a restore ends at the partition's end
    consumer = Consumer(config)
    output = _output(settings, errors, limits)
    metrics_producer = Producer(metrics_producer_config(settings, errors))
    lag = LagMeter(consumer, settings.source_topic, recorder)
    # Audit is a shadow mode: the guard counts would-be trips, never stops the worker.
    guard = DeadLetterGuard(
        settings.deadletter_max_ratio, settings.deadletter_window, stops=policy.mode is Mode.ENFORCE
    )
    http = MetricsHttpServer(
        settings.http_host,
        settings.http_port,
        recorder,
        lambda: lag.latest,
        health.alive,
        health.ready,
        health=health,
        guard=guard,
    )
    http.start()
    parts, schemas = _step_parts(
        settings, fingerprinter, ledger, registry, exposure=exposure is not None, previous=previous
    )
    engine = Engine(
        EngineConfig(
            settings.source_topic,
            OutputLimits(
                OutputTopics(
                    settings.sink_topic, settings.violations_topic, settings.deadletter_topic
                ),
                limits,
            ),
            settings.batch_max,
            settings.batch_within,
            settings.commit_interval,
        ),
        consumer,
        output,
        parts.step(policy),
        guard,
        health,
        time.monotonic,
        stop,
        ledger,
        schemas,
        exposure,
        SystemClock(),
    )
    _follow_policy_file(engine, settings, policy, parts, recorder, health, guard)
    publisher = SnapshotPublisher(
        metrics_producer,
        settings.metrics_topic,
        settings.instance_id,
        recorder,
        lag,
        settings.metrics_interval,
        time.monotonic,
    )
    engine.observers.append(recorder)
    engine.on_tick += [publisher.tick, lambda: _stop_if_denied(errors)]
    watch = _watch(settings, errors, engine, health, ledger is not None or exposure is not None)
    watchdog = Watchdog(health, stop, STALLED_AFTER_S)
    watchdog.start()
    status = 0
    try:
        watch.start()
        _run_engine(engine, recorder)
    except DeadLetterRateExceededError as exc:
        status = _stopped(health, str(exc), trace_fields(exc.traceparent))
    except WorkerStopError as exc:
        status = _stopped(health, str(exc))
    except KafkaException as exc:
        status = _stopped(health, f"Kafka client error: {kafka_error(exc).name()}")
    except Exception as exc:
        # Other messages might quote record data: only the type is logged.
        status = _stopped(health, f"internal error ({type(exc).__name__})")
        if os.environ.get("ENFORCER_DEBUG"):
            log.exception("internal error")
    finally:
        watchdog.closing(settings.shutdown_timeout)
        health.stopping = True
        _close(consumer, output, publisher, http, (ledger, exposure))
        watchdog.stop()
    if status == 0:
        log.info("stopped")
    return status


def _step_parts(
    settings: EnforcerSettings,
    fingerprinter: Fingerprinter,
    ledger: LiveLedger | None,
    registry: SchemaRegistry | None,
    *,
    exposure: bool = False,
    previous: Fingerprinter | None = None,
) -> tuple[StepParts, RegistryWait | None]:
    """What every step of this worker is built from (the record reader decodes with the
    schema cache, when there is a registry), and the wait for the registry the engine
    asks before each batch (none without a registry)."""
    loader, wait = _schemas(settings, registry)
    parts = StepParts(
        fingerprinter, SystemClock(), ledger, lambda p: step_reader(p, loader), exposure, previous
    )
    return parts, wait


def _schemas(
    settings: EnforcerSettings, registry: SchemaRegistry | None
) -> tuple[SchemaCache | None, RegistryWait | None]:
    """The schema cache the reader decodes with, and the wait for the registry the
    engine asks before each batch; neither without a registry."""
    if registry is None:
        return None, None
    loader = schema_loader(registry)
    return loader, RegistryWait(loader, time.monotonic, settings.schema_registry_deadline)


def _run_engine(engine: Engine, recorder: MetricsRecorder) -> None:
    """Run the loop with the garbage collector's work counted in ``recorder``, everything
    built so far (it lives as long as the worker) out of its way, and its youngest
    generation collected less often (enforcer/live/garbage.py says why)."""
    collections = CollectionTimer(GcStats())
    recorder.gc = collections.stats
    with kept_small() as frozen:
        log.debug("%d start-up objects frozen for the garbage collector", frozen)
        collections.install()
        try:
            engine.run()
        finally:
            collections.remove()


def _recorder(settings: EnforcerSettings, policy: Policy, health: Health) -> MetricsRecorder:
    """The worker's metrics, with the policy flagged where it must be."""
    recorder = MetricsRecorder(
        settings.instance_id,
        policy.version,
        policy.mode,
        SystemClock(),
        time.monotonic,
        metric_identifier_types(settings.metric_identifier_types.split(","), policy),
    )
    _flag_policy(policy, health, recorder)
    return recorder


def _follow_policy_file(
    engine: Engine,
    settings: EnforcerSettings,
    policy: Policy,
    parts: StepParts,
    recorder: MetricsRecorder,
    health: Health,
    guard: DeadLetterGuard,
) -> None:
    """Give the engine a watch over the policy file (none for the built-in default), on
    its ticks, and tell everything that follows the policy in force: the ledger's
    retractions, the guard, metrics and ``/readyz`` (docs/rollout.md: changing the
    policy of a running worker)."""
    health.policy_version = policy.version
    path = settings.policy_file
    if path is None:
        return
    ledger_configured = settings.ledger_topic is not None
    load = reload_loader(
        path,
        settings.destination,
        settings.mode,
        policy.ledger_mode(ledger_configured),
        ledger_configured,
        parts,
    )
    watch = PolicyWatch(
        path,
        policy,
        load,
        time.monotonic,
        settings.policy_check_interval,
        recorder.policy_reload,
    )
    reload = PolicyReload(watch)
    configured_types = settings.metric_identifier_types.split(",")
    ledger = parts.ledger if isinstance(parts.ledger, LiveLedger) else None

    def follow(new: Policy) -> None:
        recorder.use_policy(new, metric_identifier_types(configured_types, new))
        health.policy_version = new.version
        health.security_override = new.security_override
        # Audit is a shadow mode: the guard counts would-be trips, never stops the worker.
        guard.stops = new.mode is Mode.ENFORCE
        if ledger is not None:
            ledger.use_policy(passes_under(new), new.version, retract=new.mode is Mode.ENFORCE)
        if new.security_override is not None:
            log.warning(
                "policy %s: security override: identifiers given only to secure an account "
                "may reach %s (%s)",
                new.origin,
                new.destination,
                new.security_override,
            )

    reload.followers.append(follow)
    engine.policy_reload = reload
    engine.on_tick.append(watch.tick)


def _watch(
    settings: EnforcerSettings, errors: ClientErrors, engine: Engine, health: Health, ledger: bool
) -> TopicWatch:
    """The watch over the worker's topics, on the engine's ticks and before every commit:
    nothing decided against a ledger the worker no longer follows is committed, and a
    deleted output is named before a commit waits on it."""
    watch = TopicWatch(
        admin_client(settings, errors), settings.topics_by_role(), ledger, health, time.monotonic
    )
    engine.on_tick.append(watch.tick)
    engine.commit_gate = watch.confirm
    return watch


def _flag_policy(policy: Policy, health: Health, recorder: MetricsRecorder) -> None:
    """Log the policy's warnings; flag a security override in metrics and ``/readyz``
    (docs/policy.md: the security guardrail)."""
    for warning in policy.warnings():
        log.warning("policy %s: %s", policy.origin, warning)
    if policy.security_override is not None:
        log.warning(
            "policy %s: security override: identifiers given only to secure an account may "
            "reach %s (%s)",
            policy.origin,
            policy.destination,
            policy.security_override,
        )
        health.security_override = policy.security_override
        recorder.security_override = True


def _ledger(
    settings: EnforcerSettings, policy: Policy, fingerprinter: Fingerprinter
) -> LiveLedger | None:
    """The ledger side, when a ledger topic is configured and the policy uses it."""
    if settings.ledger_topic is None:
        return None
    mode = policy.ledger_mode(ledger_configured=True)
    if mode is LedgerMode.OFF:
        log.warning("the policy sets 'ledger: off': the ledger topic is not read")
        return None
    return LiveLedger(
        settings.ledger_topic,
        settings.source_topic,
        settings.sink_topic,
        fingerprinter,
        passes_under(policy),
        policy.version,
        time.monotonic,
        retract=policy.mode is Mode.ENFORCE,
        # Under fallback an identifier unknown to the ledger may have flowed by its tags.
        unknown_passed=mode is LedgerMode.FALLBACK,
        new_store=_store_maker(settings),
    )


def _restored_sides(
    settings: EnforcerSettings,
    policy: Policy,
    fingerprinter: Fingerprinter,
    recorder: MetricsRecorder,
    limits: Mapping[str, int],
    previous: Fingerprinter | None = None,
) -> tuple[LiveLedger | None, LiveExposure | None]:
    """The state a worker restores for its partitions: the ledger and exposure, each
    when configured, their figures in ``recorder``."""
    ledger = _ledger(settings, policy, fingerprinter)
    if ledger is not None:
        recorder.ledger = ledger.stats
    exposure = _exposure(settings, policy, fingerprinter, ledger, limits, previous)
    if exposure is not None:
        recorder.exposure = exposure.stats
    return ledger, exposure


def _exposure(
    settings: EnforcerSettings,
    policy: Policy,
    fingerprinter: Fingerprinter,
    ledger: LiveLedger | None,
    limits: Mapping[str, int],
    previous: Fingerprinter | None = None,
) -> LiveExposure | None:
    """The exposure side, when an exposure topic is configured; a ledger's updates then
    retract exactly what is exposed (docs/exposure.md)."""
    if settings.exposure_topic is None:
        return None
    exposure = LiveExposure(
        settings.exposure_topic,
        settings.source_topic,
        settings.sink_topic,
        fingerprinter.key_id,
        policy,
        policy.ledger_mode(settings.ledger_topic is not None),
        (lambda _: None) if ledger is None else ledger.store,
        time.monotonic,
        _table_maker(settings),
        limits.get(settings.exposure_topic),
        None if previous is None else previous.key_id,
    )
    if ledger is not None:
        ledger.exact = exposure.ledger_changed
        ledger.previous = previous
    return exposure


def _table_maker(settings: EnforcerSettings) -> Callable[[int], SubjectTable]:
    """A new, empty table of one exposure partition's subjects, in memory or on disk."""
    if settings.exposure_store == "memory":
        return lambda _: MemoryTable()
    from enforcer.exposure.disk import DiskTable
    from enforcer.ledger.disk import DiskStoreError

    root = settings.data_dir / "exposure"

    def on_disk(partition: int) -> SubjectTable:
        try:
            return DiskTable(root / f"{settings.exposure_topic}-{partition}")
        except DiskStoreError as exc:  # checked at start; the directory came later
            raise WorkerStopError(str(exc)) from None

    return on_disk


def _store_maker(settings: EnforcerSettings) -> Callable[[int], LedgerStore]:
    """A new, empty store for one ledger partition, in memory or on disk."""
    if settings.ledger_store == "memory":
        return lambda _: LedgerState()
    from enforcer.ledger.disk import DiskLedgerState, DiskStoreError, MiB

    root = settings.data_dir / "ledger"

    def on_disk(partition: int) -> LedgerStore:
        # Each partition's store has its own cache: a worker holds a few partitions.
        try:
            return DiskLedgerState(
                root / f"{settings.ledger_topic}-{partition}",
                cache_bytes=32 * MiB,
                write_buffer_bytes=16 * MiB,
            )
        except DiskStoreError as exc:  # checked at start; the directory came later
            raise WorkerStopError(str(exc)) from None

    return on_disk


def _stop_if_denied(errors: ClientErrors) -> None:
    if errors.denied is not None:
        raise WorkerStopError(denied_cause(errors.denied))


def _output(settings: EnforcerSettings, errors: ClientErrors, limits: Mapping[str, int]) -> Output:
    exactly_once = settings.processing_guarantee == "exactly_once"
    reports = TransactionReports() if exactly_once else None
    config = output_producer_config(settings, errors, limits, reports)
    if exactly_once:
        budget = RenewalBudget(RENEWALS_MOST, RENEWALS_WINDOW_S, time.monotonic)
        return TransactionalOutput(lambda: Producer(config), CALL_DEADLINE_S, budget, reports)
    return AtLeastOnceOutput(Producer(config), CALL_DEADLINE_S)


def output_producer_config(
    settings: EnforcerSettings,
    errors: ClientErrors,
    limits: Mapping[str, int],
    reports: TransactionReports | None,
) -> dict[str, Any]:
    """The output producer's librdkafka configuration, sized for ``limits`` (each output
    topic's ``max.message.bytes``)."""
    config = producer_config(settings, errors, reports)
    # The producer must accept whatever the topics accept (librdkafka's default is 1 MB).
    largest = min(MESSAGE_MAX_BYTES_CEILING, max([*limits.values(), 1_000_000]) + RECORD_OVERHEAD)
    config["message.max.bytes"] = largest
    # A record larger than the whole queue could never be queued (the engine would wait
    # for room for ever): the queue holds at least the largest output a topic accepts.
    queue_kbytes = config.get("queue.buffering.max.kbytes")
    if isinstance(queue_kbytes, int):
        config["queue.buffering.max.kbytes"] = max(queue_kbytes, -(-largest // 1024))
    return config


def _stopped(health: Health, cause: str, extra: Mapping[str, str] | None = None) -> int:
    health.on_fatal(cause)
    log.critical("enforcer stopping: %s", cause, extra=extra)
    return 1


def _close(
    consumer: Consumer,
    output: Output,
    publisher: SnapshotPublisher,
    http: MetricsHttpServer,
    states: tuple[LiveLedger | None, LiveExposure | None],
) -> None:
    """Measure lag after the final commit, leave the group, abort anything uncommitted,
    send the last snapshot, stop HTTP; close the ledger and exposure states (the disk
    stores remove their files)."""
    for what, close in (
        ("lag", publisher.measure_at_stop),  # needs the consumer's assignment
        ("consumer", consumer.close),
        ("producer", lambda: output.close(5.0)),
        ("metrics", lambda: publisher.close(5.0)),
        ("http", http.stop),
    ):
        try:
            close()
        except Exception as exc:
            log.warning("closing the %s: %s", what, type(exc).__name__)
    for state in states:
        if state is not None:
            state.close()
