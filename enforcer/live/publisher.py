"""Metrics snapshots on the metrics topic every interval, and the consumer lag.

The metrics topic is written by a producer of its own, outside the transactions: a
snapshot describes the process, not a record, and its counts are cumulative, so a
snapshot lost or repeated around a crash leaves nothing wrong behind. Counts cover
committed batches only (the loop calls the recorder after each commit), so they
match what ``read_committed`` readers of the outputs see from this process.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from enforcer.outputs.metrics import MetricsRecorder, MetricsSnapshot, PartitionLag, consumer_lag

log = logging.getLogger("enforcer.metrics")

LAG_EVERY_S = 1.0
"""How often the loop measures lag for the HTTP endpoint (it is cheap: cached offsets)."""


class LagMeter:
    """Lag of each assigned source partition, measured on the loop's thread."""

    def __init__(self, consumer: Consumer, source_topic: str, recorder: MetricsRecorder) -> None:
        self._consumer = consumer
        self._source_topic = source_topic
        self._recorder = recorder
        self.latest: list[PartitionLag] = []
        """The last measurement; read by the HTTP thread (a list is replaced whole)."""

    def measure(self) -> list[PartitionLag]:
        """Measure now: the end offset the client last saw, against the next offset
        to process (from committed batches, else the consumer's position)."""
        consumer = self._consumer
        assigned = [tp for tp in consumer.assignment() if tp.topic == self._source_topic]
        keys = [(tp.topic, tp.partition) for tp in assigned]
        self._recorder.forget_partitions(keys)
        next_offsets = self._recorder.next_offsets()
        end_offsets: dict[tuple[str, int], int] = {}
        unknown = []
        for tp, key in zip(assigned, keys, strict=True):
            watermarks = consumer.get_watermark_offsets(tp, cached=True)
            if not watermarks or watermarks[1] < 0:
                continue  # no fetch answered yet
            end_offsets[key] = int(watermarks[1])
            if key not in next_offsets:
                unknown.append(TopicPartition(tp.topic, tp.partition))
        if unknown:
            for position in consumer.position(unknown):
                if position.offset >= 0:
                    next_offsets[(position.topic, position.partition)] = position.offset
        self.latest = consumer_lag(end_offsets, next_offsets)
        return self.latest


class SnapshotPublisher:
    """Sends a snapshot every ``interval_s``; failures are logged, never raised."""

    def __init__(
        self,
        producer: Producer,
        topic: str,
        instance_id: str,
        recorder: MetricsRecorder,
        lag: LagMeter,
        interval_s: float,
        monotonic: Callable[[], float],
    ) -> None:
        self._producer = producer
        self._topic = topic
        self._key = instance_id.encode()
        self._recorder = recorder
        self._lag = lag
        self._interval_s = interval_s
        self._monotonic = monotonic
        self._next_snapshot = monotonic() + interval_s
        self._next_lag = monotonic()
        self.published = 0
        self._measured_at_stop = False

    def tick(self) -> None:
        """Called by the loop every round: measure lag and publish when due."""
        now = self._monotonic()
        if now >= self._next_lag:
            self._next_lag = now + LAG_EVERY_S
            self._measure()
        if now >= self._next_snapshot:
            self._next_snapshot = now + self._interval_s
            self.publish()
        self._producer.poll(0)

    def _measure(self) -> list[PartitionLag]:
        try:
            return self._lag.measure()
        except KafkaException as exc:
            log.debug("lag not measured: %s", exc)
            return self._lag.latest

    def publish(self) -> MetricsSnapshot:
        """Queue one snapshot (with the latest lag) on the metrics topic."""
        snapshot = self._recorder.snapshot(self._lag.latest)
        try:
            self._producer.produce(
                self._topic,
                value=snapshot.model_dump_json(by_alias=True).encode(),
                key=self._key,
                on_delivery=_delivered,
            )
            self.published += 1
        except (BufferError, KafkaException) as exc:
            log.warning("metrics snapshot not published: %s", type(exc).__name__)
        return snapshot

    def measure_at_stop(self) -> None:
        """Measure lag afresh for the last snapshot: call it after the final commit and
        before the consumer closes (a measurement from before the final commit would
        report as lag what that commit just covered). Unmeasurable: no lag is reported
        rather than a stale one."""
        try:
            self._lag.measure()
        except KafkaException as exc:
            log.debug("lag not measured at stop: %s", exc)
            self._lag.latest = []
        self._measured_at_stop = True

    def close(self, timeout_s: float) -> None:
        """A last snapshot with the final counts, delivered within ``timeout_s``; its
        lag is the one measured at stop (none when :meth:`measure_at_stop` was not
        called: an older measurement would be stale)."""
        if not self._measured_at_stop:
            self._lag.latest = []
        self.publish()
        if self._producer.flush(timeout_s):
            log.warning("the last metrics snapshot was not delivered in %.0fs", timeout_s)


def _delivered(error: KafkaError | None, _: object) -> None:
    if error is not None:
        log.warning("metrics snapshot not published: %s", error.name())
