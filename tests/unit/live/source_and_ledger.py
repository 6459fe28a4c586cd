"""A consumer fake for the engine tests that read a source topic and its ledger topic
(partition 0 of each): what differs between them is the offset the group committed and
the batches the consumer hands out."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import Message, TopicPartition


class SourceAndLedgerConsumer:
    """Partition 0 of ``source_topic`` and of ``ledger_topic``, on which the group
    committed ``committed``. ``batches`` are handed out first, one per consume; after
    them, the ``source`` records from where the source was last sought (the batches
    read them all: a seek back reads them again), then nothing. ``before_consume`` is
    called at the start of every consume, and ``rounds`` counts the consumes."""

    def __init__(
        self,
        source_topic: str,
        ledger_topic: str,
        *,
        committed: int,
        batches: Sequence[list[Message]],
        source: Sequence[Message] = (),
        before_consume: Callable[[], None] = lambda: None,
    ) -> None:
        self._topics = (source_topic, ledger_topic)
        self._committed = committed
        self._batches = list(batches)
        self._source = list(source)
        self._position = len(self._source)
        self._before_consume = before_consume
        self.rounds = 0

    def subscribe(self, topics: list[str], on_assign: Any, **_: Any) -> None:
        on_assign(self, [TopicPartition(t, 0) for t in topics])

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self._committed) for tp in partitions]

    def assign(self, _: list[TopicPartition]) -> None:
        pass

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(topic, 0) for topic in self._topics]

    def pause(self, _: list[TopicPartition]) -> None:
        pass

    def resume(self, _: list[TopicPartition]) -> None:
        pass

    def seek(self, tp: TopicPartition) -> None:
        if tp.topic == self._topics[0]:
            self._position = tp.offset

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self._before_consume()
        self.rounds += 1
        if self._batches:
            return self._batches.pop(0)
        batch = self._source[self._position :]
        self._position = len(self._source)
        return batch
