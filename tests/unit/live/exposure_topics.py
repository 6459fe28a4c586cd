"""Fakes for the engine tests that keep exposure: a source topic and its exposure topic
(partitions 0 and 1 of each) as a broker would hold them, a consumer over them, and a
transactional output that commits into them, so that a worker stopped in the middle
(its open transaction lost, as after ``kill -9``) can be followed by another one that
reads what was committed."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition

from enforcer.live.output import CommitAborted
from enforcer.live.positions import TopicPartitionKey
from enforcer.outputs.records import OutputRecord

PARTITIONS = (0, 1)


@dataclass
class Topics:
    """What the broker holds: the source records, the exposure topic's committed
    records, every committed output in commit order, and the group's source offsets."""

    source: str
    exposure: str
    records: dict[int, list[Message]]
    exposure_log: dict[int, list[Message]] = field(
        default_factory=lambda: {p: [] for p in PARTITIONS}
    )
    committed: list[list[OutputRecord]] = field(default_factory=list)
    """The records of each committed transaction, in order."""
    offsets: dict[int, int] = field(default_factory=lambda: dict.fromkeys(PARTITIONS, 0))

    def append_exposure(self, record: OutputRecord) -> None:
        assert record.partition is not None
        log = self.exposure_log[record.partition]
        log.append(
            Message(
                topic=self.exposure,
                partition=record.partition,
                offset=len(log),
                key=record.key,
                value=record.value,
            )
        )


class TopicsConsumer:
    """A consumer of ``topics``: on subscribe both partitions of the source and of the
    exposure topic are assigned; the exposure partitions are read from their beginning
    (then one end-of-partition event each), the source from the group's offsets,
    ``batch`` records a partition per consume. ``before_consume`` runs first at every
    consume (a test changes the policy file there, or triggers a rebalance)."""

    def __init__(
        self, topics: Topics, batch: int, before_consume: Callable[[TopicsConsumer], None]
    ) -> None:
        self.topics = topics
        self._batch = batch
        self._before_consume = before_consume
        self.position: dict[tuple[str, int], int] = {}
        self.paused: set[tuple[str, int]] = set()
        self._eof_sent: set[int] = set()
        self._callbacks: dict[str, Any] = {}
        self.rounds = 0

    def all_partitions(self) -> list[TopicPartition]:
        return [
            TopicPartition(topic, p)
            for topic in (self.topics.source, self.topics.exposure)
            for p in PARTITIONS
        ]

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self._callbacks = callbacks
        self.rebalance(revoke=False)

    def rebalance(self, revoke: bool = True) -> None:
        """A revoke of everything (committed first by the engine) and the same
        assignment again, as an eager rebalance does."""
        if revoke:
            self._callbacks["on_revoke"](self, self.all_partitions())
        self._eof_sent = set()
        self._callbacks["on_assign"](self, self.all_partitions())

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.topics.offsets.get(tp.partition, -1001))
            for tp in partitions
        ]

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.position = {}
        for tp in partitions:
            if tp.topic == self.topics.exposure:
                assert tp.offset == OFFSET_BEGINNING
                self.position[(tp.topic, tp.partition)] = 0
            else:
                self.position[(tp.topic, tp.partition)] = self.topics.offsets[tp.partition]

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in self.position]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}

    def seek(self, tp: TopicPartition) -> None:
        self.position[(tp.topic, tp.partition)] = tp.offset

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self._before_consume(self)
        self.rounds += 1
        taken: list[Message] = []
        for p in PARTITIONS:
            key = (self.topics.exposure, p)
            if key not in self.position or key in self.paused:
                continue
            log = self.topics.exposure_log[p]
            taken += log[self.position[key] :]
            self.position[key] = len(log)
            if p not in self._eof_sent:
                self._eof_sent.add(p)
                taken.append(
                    Message(
                        topic=self.topics.exposure,
                        partition=p,
                        offset=len(log),
                        error=KafkaError(KafkaError._PARTITION_EOF),
                    )
                )
        for p in PARTITIONS:
            key = (self.topics.source, p)
            if key not in self.position or key in self.paused:
                continue
            start = self.position[key]
            taken += self.topics.records[p][start : start + self._batch]
            self.position[key] = min(len(self.topics.records[p]), start + self._batch)
        return taken

    @property
    def drained(self) -> bool:
        return all(
            self.position.get((self.topics.source, p), -1) >= len(self.topics.records[p])
            for p in PARTITIONS
        )


class TopicsOutput:
    """A transactional output into ``topics``: a commit appends the transaction's
    records (exposure records to the exposure topic too) and the source offsets; the
    first ``refusals`` commits are refused (aborted, as the real one does)."""

    def __init__(self, topics: Topics, refusals: int = 0) -> None:
        self.topics = topics
        self.refusals = refusals
        self._records: list[OutputRecord] = []
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
        self._records.append(record)

    def commit(self, offsets: Mapping[TopicPartitionKey, int], consumer: Any) -> None:
        records, self._records, self._open = self._records, [], False
        if self.refusals:
            self.refusals -= 1
            raise CommitAborted("refused by the test")
        for record in records:
            if record.topic == self.topics.exposure:
                self.topics.append_exposure(record)
        for (topic, partition), offset in offsets.items():
            if topic == self.topics.source:
                self.topics.offsets[partition] = offset
        self.topics.committed.append(records)

    def abort(self) -> None:
        self._records, self._open = [], False

    def poll(self) -> None:
        pass

    def close(self, timeout_s: float) -> None:
        pass
