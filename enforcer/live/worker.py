"""One worker process: builds the engine from settings, runs it, and stops cleanly.

Exit status: 0 after SIGTERM/SIGINT (what was decided is committed first), 1 when the
worker had to stop (the cause is one log line). A second signal, or a shutdown that
takes longer than ``shutdown_timeout``, ends the process at once: an orchestrator's
SIGTERM always ends it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from types import FrameType
from typing import Any

from confluent_kafka import Consumer, KafkaException, Producer

from enforcer.clock import SystemClock
from enforcer.fingerprint import Fingerprinter
from enforcer.guard import DeadLetterGuard, DeadLetterRateExceededError
from enforcer.live.clients import (
    ClientErrors,
    consumer_config,
    metrics_producer_config,
    producer_config,
)
from enforcer.live.engine import Engine, EngineConfig
from enforcer.live.failures import WorkerStopError
from enforcer.live.health import Health
from enforcer.live.http import MetricsHttpServer
from enforcer.live.output import (
    AtLeastOnceOutput,
    Output,
    RenewalBudget,
    TransactionalOutput,
)
from enforcer.live.publisher import LagMeter, SnapshotPublisher
from enforcer.metrics import MetricsRecorder
from enforcer.models import Mode
from enforcer.policy.compiled import Policy
from enforcer.settings import EnforcerSettings
from enforcer.sinks.kafka import OutputTopics
from enforcer.step import Step

log = logging.getLogger("enforcer")

STALLED_AFTER_S = 30.0
"""A loop that has not gone round for this long makes ``/healthz`` unhealthy, and the
watchdog ends the process: a worker that cannot progress exits to be restarted."""
CALL_DEADLINE_S = 20.0
"""How long a commit, an abort or a start may keep retrying before the worker stops
(less than the stall limit, so that the worker says why itself)."""

RENEWALS_MOST, RENEWALS_WINDOW_S = 3, 300.0
"""A failed producer is replaced at most this often in this window; then the worker stops."""


class Watchdog:
    """Ends the process when the loop stalls: a client call that blocks past its own
    timeout (seen with librdkafka's commit after a broker crash) must not hang the
    worker with nothing said. A new process starts with new clients, and exactly once
    holds: the open transaction is aborted when the worker's id is registered again."""

    def __init__(self, health: Health, stop: StopSignal, limit_s: float) -> None:
        self._health = health
        self._stop = stop
        self._limit_s = limit_s
        self._done = threading.Event()

    def start(self) -> None:
        """Check every second from a daemon thread."""
        threading.Thread(target=self._watch, daemon=True, name="watchdog").start()

    def stop(self) -> None:
        """No more checks (the loop has ended)."""
        self._done.set()

    def _watch(self) -> None:
        health = self._health
        while not self._done.wait(1.0):
            if not health.started or self._stop():
                continue  # start-up and shutdown have deadlines of their own
            stalled = health.stalled_for()
            if stalled > self._limit_s:
                cause = f"stuck for {stalled:.0f}s in {health.doing}"
                health.on_fatal(cause)
                log.critical("enforcer stopping: %s; exiting to be restarted", cause)
                logging.shutdown()
                os._exit(1)


class StopSignal:
    """SIGTERM and SIGINT as a flag the loop reads; installed before anything starts,
    so a signal during start-up also ends the worker cleanly."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.deadline_s = 30.0
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        """Take over SIGTERM and SIGINT (main thread only) until :meth:`uninstall`."""
        self._previous = {
            signum: signal.signal(signum, self._handle)
            for signum in (signal.SIGTERM, signal.SIGINT)
        }

    def uninstall(self) -> None:
        """Give SIGTERM and SIGINT back to whoever had them (a test process, say)."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def __call__(self) -> bool:
        return self._event.is_set()

    def _handle(self, signum: int, _: FrameType | None) -> None:
        if self._event.is_set():
            log.warning("second %s: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        self._event.set()
        name = signal.Signals(signum).name
        log.info("%s received: committing what is decided and leaving the group", name)
        timer = threading.Timer(self.deadline_s, self._too_slow)
        timer.daemon = True
        timer.start()

    def _too_slow(self) -> None:
        log.error(
            "shutdown took longer than %.0fs (ENFORCER_SHUTDOWN_TIMEOUT): exiting now",
            self.deadline_s,
        )
        logging.shutdown()
        os._exit(1)


def run_worker(
    settings: EnforcerSettings, policy: Policy, fingerprinter: Fingerprinter, stop: StopSignal
) -> int:
    """Run until stopped; return the exit status."""
    stop.deadline_s = settings.shutdown_timeout
    errors = ClientErrors()
    health = Health(time.monotonic, STALLED_AFTER_S)
    recorder = MetricsRecorder(
        settings.instance_id, policy.version, policy.mode, SystemClock(), time.monotonic
    )
    consumer = Consumer(consumer_config(settings, errors))
    output = _output(settings, errors)
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
    engine = Engine(
        EngineConfig(
            settings.source_topic,
            OutputTopics(settings.sink_topic, settings.violations_topic, settings.deadletter_topic),
            settings.batch_max,
            settings.batch_within,
            settings.commit_interval,
        ),
        consumer,
        output,
        Step(policy, fingerprinter, SystemClock()),
        guard,
        health,
        time.monotonic,
        stop,
    )
    engine.observers.append(recorder)
    publisher = SnapshotPublisher(
        metrics_producer,
        settings.metrics_topic,
        settings.instance_id,
        recorder,
        lag,
        settings.metrics_interval,
        time.monotonic,
    )
    engine.on_tick.append(publisher.tick)
    watchdog = Watchdog(health, stop, STALLED_AFTER_S)
    watchdog.start()
    status = 0
    try:
        engine.run()
    except (WorkerStopError, DeadLetterRateExceededError) as exc:
        status = _stopped(health, str(exc))
    except KafkaException as exc:
        status = _stopped(health, f"Kafka client error: {exc.args[0].name() if exc.args else exc}")
    except Exception as exc:
        # Other messages might quote record data: only the type is logged.
        status = _stopped(health, f"internal error ({type(exc).__name__})")
        if os.environ.get("ENFORCER_DEBUG"):
            log.exception("internal error")
    finally:
        watchdog.stop()
        health.stopping = True
        _close(consumer, output, publisher, http)
    if status == 0:
        log.info("stopped")
    return status


def _output(settings: EnforcerSettings, errors: ClientErrors) -> Output:
    config = producer_config(settings, errors)
    if settings.processing_guarantee == "exactly_once":
        budget = RenewalBudget(RENEWALS_MOST, RENEWALS_WINDOW_S, time.monotonic)
        return TransactionalOutput(lambda: Producer(config), CALL_DEADLINE_S, budget)
    return AtLeastOnceOutput(Producer(config), CALL_DEADLINE_S)


def _stopped(health: Health, cause: str) -> int:
    health.on_fatal(cause)
    log.critical("enforcer stopping: %s", cause)
    return 1


def _close(
    consumer: Consumer, output: Output, publisher: SnapshotPublisher, http: MetricsHttpServer
) -> None:
    """Leave the group, abort anything uncommitted, send the last snapshot, stop HTTP."""
    for what, close in (
        ("consumer", consumer.close),
        ("producer", lambda: output.close(5.0)),
        ("metrics", lambda: publisher.close(5.0)),
        ("http", http.stop),
    ):
        try:
            close()
        except Exception as exc:
            log.warning("closing the %s: %s", what, type(exc).__name__)
