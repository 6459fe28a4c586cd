"""The snapshot publisher (docs/operations.md: snapshots on the metrics topic): the last
snapshot, written at stop, measures lag afresh instead of repeating a stale measurement."""

from __future__ import annotations

from typing import Any

import orjson
from confluent_kafka import TopicPartition

from enforcer.core.clock import FixedClock
from enforcer.core.step import InputRecord, Outcome, Source, Step
from enforcer.live.publisher import LagMeter, SnapshotPublisher
from enforcer.outputs.metrics import BatchCounts, MetricsRecorder, MetricsSnapshot

from ..conftest import NOW, event, ident, make_step

SOURCE = "identity.events"
END = 10


class FakeConsumer:
    """One assigned partition whose end the client last saw at :data:`END`."""

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(SOURCE, 0)]

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        assert cached  # the loop never asks the broker for lag
        return 0, END

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 0) for tp in partitions]


class FakeProducer:
    """Keeps what was produced; delivers at once."""

    def __init__(self) -> None:
        self.values: list[bytes] = []

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        self.values.append(value)

    def poll(self, timeout: float) -> int:
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def _outcomes(step: Step, offsets: range) -> list[Outcome]:
    value = orjson.dumps(event(ident("email", "a@x.io", ["marketing.advertising"])))
    return [step(InputRecord(None, value, (), Source(SOURCE, 0, i))) for i in offsets]


def _publisher(step: Step) -> tuple[SnapshotPublisher, MetricsRecorder, FakeProducer]:
    recorder = MetricsRecorder(
        "worker-1", step.policy.version, step.policy.mode, FixedClock(NOW), lambda: 0.0
    )
    producer = FakeProducer()
    lag = LagMeter(FakeConsumer(), SOURCE, recorder)  # type: ignore[arg-type]
    publisher = SnapshotPublisher(
        producer,  # type: ignore[arg-type]
        "enforcer.metrics",
        "worker-1",
        recorder,
        lag,
        interval_s=3600.0,
        monotonic=lambda: 0.0,
    )
    return publisher, recorder, producer


def test_the_last_snapshot_measures_lag_after_the_final_commit() -> None:
    """Lag measured while half the records were uncommitted (5) must not be what the
    stop snapshot says once the final commit covered them all (0)."""
    step = make_step()
    publisher, recorder, producer = _publisher(step)
    recorder(BatchCounts.of(_outcomes(step, range(5)), 0.0))  # the first commit
    publisher.tick()  # measures lag (due at once), no snapshot yet
    assert [x.lag for x in publisher.publish().consumer_lag] == [5]

    recorder(BatchCounts.of(_outcomes(step, range(5, END)), 0.0))  # the final commit, at stop
    publisher.measure_at_stop()
    publisher.close(1.0)
    last = MetricsSnapshot.model_validate_json(producer.values[-1])
    assert last.records.in_ == END
    assert [(x.end_offset, x.next_offset, x.lag) for x in last.consumer_lag] == [(END, END, 0)]


def test_without_a_measurement_at_stop_the_last_snapshot_reports_no_lag() -> None:
    """A stale lag is worse than none: a close without a fresh measurement (the
    consumer could not be asked) lists no partitions."""
    step = make_step()
    publisher, recorder, producer = _publisher(step)
    recorder(BatchCounts.of(_outcomes(step, range(5)), 0.0))
    publisher.tick()
    recorder(BatchCounts.of(_outcomes(step, range(5, END)), 0.0))
    publisher.close(1.0)
    last = MetricsSnapshot.model_validate_json(producer.values[-1])
    assert (last.records.in_, last.consumer_lag) == (END, [])
