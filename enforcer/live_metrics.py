"""Metrics of the live agent: the recorder on the batch processor, a snapshot on the
metrics topic every interval, and the HTTP endpoints, as one service of the faust app.

The metrics topic is written by a producer of its own, outside the exactly-once
transactions: a snapshot describes the process, not a record, and counts are
cumulative, so a snapshot lost or repeated around a crash leaves nothing wrong
behind; the next one carries the totals again. After a restart counts start from
zero (like any Prometheus counter), and cover what this process decided, including
batches whose transaction was later aborted and that will be decided again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import faust
from aiokafka import AIOKafkaProducer
from mode import Service

from enforcer.clock import Clock
from enforcer.http_server import MetricsHttpServer, Status
from enforcer.kafka_security import aiokafka_security
from enforcer.metrics import MetricsRecorder, MetricsSnapshot, PartitionLag, consumer_lag
from enforcer.policy.compiled import Policy
from enforcer.settings import EnforcerSettings

log = logging.getLogger("enforcer.metrics")
_POSITION_TIMEOUT_S = 2.0
_SEND_TIMEOUT_S = 5.0


class LiveMetrics(Service):
    """Publishes snapshots and serves the endpoints while the app runs."""

    def __init__(
        self, app: faust.App, recorder: MetricsRecorder, settings: EnforcerSettings
    ) -> None:
        super().__init__()
        self._app = app
        self.recorder = recorder
        self._settings = settings
        self._producer: AIOKafkaProducer | None = None
        self.http = MetricsHttpServer(
            settings.http_host,
            settings.http_port,
            recorder,
            self.lag,
            self.alive,
            self.ready,
        )

    async def on_start(self) -> None:
        """Serve HTTP first, so liveness answers while the consumer joins its group."""
        try:
            await self.http.start()
        except OSError as exc:
            settings = self._settings
            log.critical(
                "cannot serve /metrics on %s:%s: %s", settings.http_host, settings.http_port, exc
            )
            raise
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.bootstrap_servers,
            client_id=f"enforcer-metrics-{self._settings.instance_id}",
            acks=1,
            **aiokafka_security(self._settings),
        )
        await self._producer.start()

    async def on_started(self) -> None:
        """Start the snapshot loop."""
        self.add_future(self._every_interval())

    async def on_stop(self) -> None:
        """A last snapshot with the final counts, then close everything."""
        try:
            await self.publish(final=True)
        finally:
            if self._producer is not None:
                await self._producer.stop()
            await self.http.stop()

    async def _every_interval(self) -> None:
        while not self.should_stop:
            await self.sleep(self._settings.metrics_interval)
            if not self.should_stop:
                await self.publish()

    async def publish(self, *, final: bool = False) -> MetricsSnapshot | None:
        """Send one snapshot to the metrics topic; a failure is logged, never raised."""
        snapshot = self.recorder.snapshot(await self.lag(look_up_positions=not final))
        if self._producer is None:
            return None
        try:
            # Bounded, so that an unreachable broker never holds up a shutdown.
            await asyncio.wait_for(
                self._producer.send_and_wait(
                    self._settings.metrics_topic,
                    snapshot.model_dump_json(by_alias=True).encode(),
                    key=self._settings.instance_id.encode(),
                ),
                _SEND_TIMEOUT_S,
            )
        except Exception as exc:
            log.warning("metrics snapshot not published: %s", type(exc).__name__)
            return None
        return snapshot

    async def lag(self, *, look_up_positions: bool = True) -> list[PartitionLag]:
        """Lag of each assigned source partition (none before the consumer is running).

        A partition this instance has not processed yet is measured from the
        consumer's position, which asks the consumer's thread; on the way out
        (``look_up_positions=False``) such partitions are left out instead.
        """
        try:
            consumer: Any = self._app.consumer
            assigned = [
                tp for tp in consumer.assignment() if tp.topic == self._settings.source_topic
            ]
        except Exception:
            return []  # no consumer yet, or it is being replaced in a rebalance
        keys = [(tp.topic, tp.partition) for tp in assigned]
        self.recorder.forget_partitions(keys)
        next_offsets = self.recorder.next_offsets()
        end_offsets: dict[tuple[str, int], int] = {}
        unknown = []
        for tp, key in zip(assigned, keys, strict=True):
            end = consumer.highwater(tp)
            if end is None:
                continue  # no fetch answered yet
            end_offsets[key] = int(end)
            if key not in next_offsets:
                unknown.append((tp, key))
        if unknown and look_up_positions:
            positions = await asyncio.gather(
                *(
                    asyncio.wait_for(consumer.position(tp), _POSITION_TIMEOUT_S)
                    for tp, _ in unknown
                ),
                return_exceptions=True,
            )
            for (_, key), position in zip(unknown, positions, strict=True):
                if isinstance(position, int):
                    next_offsets[key] = position
        return consumer_lag(end_offsets, next_offsets)

    def alive(self) -> Status:
        """Liveness: the loop answers, and the app has not crashed."""
        crashed = bool(self._app.crashed)
        return Status(not crashed, {"crashed": crashed})

    def ready(self) -> Status:
        """Readiness: source partitions assigned and the producer running."""
        try:
            consumer: Any = self._app.consumer
            partitions = sum(
                1 for tp in consumer.assignment() if tp.topic == self._settings.source_topic
            )
        except Exception:
            partitions = 0
        try:
            producing = bool(self._app.producer.started) and not self._app.producer.should_stop
        except Exception:
            producing = False
        stopping = bool(self._app.should_stop)
        ok = partitions > 0 and producing and not stopping
        return Status(
            ok, {"assigned_partitions": partitions, "producing": producing, "stopping": stopping}
        )


def attach_metrics(
    app: faust.App,
    observers: list[Any],
    settings: EnforcerSettings,
    policy: Policy,
    clock: Clock,
) -> LiveMetrics:
    """Count every batch the processor finishes, and run :class:`LiveMetrics` with the app."""
    recorder = MetricsRecorder(
        settings.instance_id, policy.version, policy.mode, clock, time.monotonic
    )
    observers.append(recorder)
    service = LiveMetrics(app, recorder, settings)
    app.add_dependency(service)
    return service
