"""The live engine's loop against fake clients: what the metrics observers are given,
and when (docs/operations.md: metrics: a batch counts once its transaction commits),
and that no outcome outlives the sending of its records."""

from __future__ import annotations

import gc
import logging
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import orjson
import pytest
from confluent_kafka import Message, TopicPartition

from enforcer.core.step import Outcome, OutcomeKind, Step
from enforcer.live.engine import Engine, EngineConfig
from enforcer.live.guard import DeadLetterGuard
from enforcer.live.health import Health
from enforcer.live.limits import OutputLimits
from enforcer.live.output import CommitAborted
from enforcer.live.positions import TopicPartitionKey
from enforcer.outputs.metrics import BatchCounts
from enforcer.outputs.records import OutputRecord, OutputTopics

from ..conftest import event, ident, make_step

SOURCE = "engine-test.identity.events"
TOPICS = OutputTopics("engine-test.sink", "engine-test.violations", "engine-test.deadletter")

# One of each outcome under the default policy, in this order.
VALUES: tuple[bytes, ...] = (
    orjson.dumps(event(ident("email", "a@x.io", ["marketing.advertising"]))),  # passed
    orjson.dumps(
        event(
            ident("phone", "+1 555 0100", ["security.mfa"]),
            ident("email", "b@y.io", ["marketing.advertising"]),
        )
    ),  # redacted: one finding
    orjson.dumps(event(ident("phone", "+1 555 0100", ["security"]))),  # dropped: one finding
    b"{not json",  # dead-lettered
)
KINDS = (OutcomeKind.PASSED, OutcomeKind.REDACTED, OutcomeKind.DROPPED, OutcomeKind.DEADLETTERED)


def _messages(partition: int, count: int) -> list[Message]:
    return [
        Message(
            topic=SOURCE,
            partition=partition,
            offset=offset,
            key=b"acct-1",
            value=VALUES[offset % len(VALUES)],
        )
        for offset in range(count)
    ]


class FakeConsumer:
    """Two partitions of scripted records, read ``batch`` at a time from where each
    stands; ``before_consume`` is called at the start of every consume."""

    def __init__(self, per_partition: int, batch: int, before_consume: Callable[[], None]) -> None:
        self.records = {partition: _messages(partition, per_partition) for partition in (0, 1)}
        self.position = dict.fromkeys(self.records, 0)
        self._batch = batch
        self._before_consume = before_consume

    def subscribe(self, topics: list[str], on_assign: Any, **_: Any) -> None:
        on_assign(self, self.assignment())

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(SOURCE, partition) for partition in self.records]

    def seek(self, tp: TopicPartition) -> None:
        self.position[tp.partition] = tp.offset

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self._before_consume()
        taken: list[Message] = []
        for partition, records in self.records.items():
            start = self.position[partition]
            taken += records[start : start + self._batch // 2]
            self.position[partition] = min(len(records), start + self._batch // 2)
        return taken

    @property
    def drained(self) -> bool:
        return all(self.position[p] == len(r) for p, r in self.records.items())


class FakeOutput:
    """Keeps what is sent; refuses the first ``refusals`` commits (aborting, as the
    transactional output does before it raises)."""

    def __init__(self, refusals: int = 0) -> None:
        self.sent: list[OutputRecord] = []
        self.committed: list[dict[TopicPartitionKey, int]] = []
        self.refused_sends = 0
        """Records sent in the transactions that were refused."""
        self._refusals = refusals
        self._in_transaction = 0
        self._open = False

    @property
    def open(self) -> bool:
        return self._open

    def start(self, should_stop: Callable[[], bool]) -> None:
        pass

    def begin(self) -> None:
        self._open = True

    def send(self, record: OutputRecord) -> None:
        self._open = True
        self.sent.append(record)
        self._in_transaction += 1

    def commit(self, offsets: Mapping[TopicPartitionKey, int], consumer: Any) -> None:
        self._open = False
        sent, self._in_transaction = self._in_transaction, 0
        if self._refusals:
            self._refusals -= 1
            self.refused_sends += sent
            raise CommitAborted("refused by the test")
        self.committed.append(dict(offsets))

    def abort(self) -> None:
        self._open = False

    def poll(self) -> None:
        pass

    def close(self, timeout_s: float) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _engine(
    consumer: FakeConsumer, output: FakeOutput, clock: Clock, commit_interval_s: float
) -> tuple[Engine, list[BatchCounts]]:
    step: Step = make_step()
    engine = Engine(
        EngineConfig(SOURCE, OutputLimits(TOPICS, {}), 100, 0.01, commit_interval_s),
        consumer,  # type: ignore[arg-type]
        output,
        step,
        DeadLetterGuard(1.0, 1000),
        Health(clock, 30.0),
        clock,
        lambda: consumer.drained,
    )
    observed: list[BatchCounts] = []
    engine.observers.append(observed.append)
    return engine, observed


def _outcomes_alive() -> list[Outcome]:
    gc.collect()
    return [o for o in gc.get_objects() if type(o) is Outcome and o.record.source.topic == SOURCE]


def _totals(batches: Sequence[BatchCounts]) -> Counter[str]:
    totals: Counter[str] = Counter()
    for batch in batches:
        totals["records"] += batch.records
        totals["violations"] += batch.violations
        totals.update({kind.value: n for kind, n in batch.kinds.items()})
        totals.update({f"{rule}/{kind}": n for (rule, kind), n in batch.findings.items()})
        totals.update({f"deadletter/{reason}": n for reason, n in batch.deadletters.items()})
    return totals


def test_observers_get_counts_at_the_commit_and_no_outcome_waits_for_it() -> None:
    """While a transaction is open its batches' outcomes are gone (only counts wait) and
    nothing is observed; at the commit the counts say what the outcomes were."""
    seen_before_commit: list[tuple[int, int]] = []
    output = FakeOutput()
    clock = Clock()

    def before_consume() -> None:
        if output.sent and not output.committed:
            seen_before_commit.append((len(_outcomes_alive()), len(observed)))

    consumer = FakeConsumer(per_partition=40, batch=20, before_consume=before_consume)
    engine, observed = _engine(consumer, output, clock, commit_interval_s=1000.0)
    engine.run()

    assert len(output.committed) == 1  # everything in one transaction, committed at stop
    assert seen_before_commit and all(seen == (0, 0) for seen in seen_before_commit)
    assert len(observed) == 4  # one per batch of 20
    totals = _totals(observed)
    assert totals["records"] == 80
    assert {kind.value: totals[kind.value] for kind in KINDS} == dict.fromkeys(
        (kind.value for kind in KINDS), 20
    )
    assert totals["violations"] == 40
    assert totals["security-only-purpose/phone"] == 40
    assert totals["deadletter/invalid-json"] == 20
    ends = {(SOURCE, 0): 40, (SOURCE, 1): 40}
    assert output.committed == [ends]
    assert {key: max(b.next_offsets.get(key, 0) for b in observed) for key in ends} == ends
    assert all(b.started == 100.0 for b in observed)


def test_an_aborted_transaction_is_not_counted_and_its_records_count_once_again() -> None:
    """A refused commit rewinds: its batches are never observed, and the records decided
    again are counted once, at the commit that takes them."""
    output = FakeOutput(refusals=1)
    clock = Clock()

    def before_consume() -> None:
        clock.now += 1.0  # a commit after every second batch

    consumer = FakeConsumer(per_partition=20, batch=8, before_consume=before_consume)
    engine, observed = _engine(consumer, output, clock, commit_interval_s=1.5)
    engine.run()

    totals = _totals(observed)
    assert totals["records"] == 40
    assert {kind.value: totals[kind.value] for kind in KINDS} == dict.fromkeys(
        (kind.value for kind in KINDS), 10
    )
    assert output.committed[-1] == {(SOURCE, 0): 20, (SOURCE, 1): 20}
    # The refused transaction's records were decided and sent again: every four records
    # make five outputs (a redacted record has a violation besides).
    assert output.refused_sends > 0
    assert len(output.sent) == output.refused_sends + 50


def test_the_assignment_line_carries_the_partition_count(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """docs/operations.md: `assigned partitions: …` carries `partitions` (in JSON logs
    `enforcer.partitions`), so a log pipeline counts a worker's partitions without
    parsing the message."""
    consumer = FakeConsumer(per_partition=4, batch=4, before_consume=lambda: None)
    engine, _ = _engine(consumer, FakeOutput(), Clock(), commit_interval_s=1000.0)
    with caplog.at_level(logging.INFO, logger="enforcer"):
        engine.run()

    (line,) = [r for r in caplog.records if r.getMessage().startswith("assigned partitions:")]
    assert line.getMessage() == f"assigned partitions: {SOURCE}[0], {SOURCE}[1]"
    assert line.__dict__.get("partitions") == 2
