"""Outcomes to Kafka topics: the sink, violations and dead letters (docs/contract.md: topics,
forwarded record, violation event, dead letter)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import orjson

from enforcer.core.step import Headers, Outcome, OutcomeKind

# (topic, key, value, headers, transactional_id) -> awaitable delivery
Send = Callable[[str, bytes | None, bytes | None, Headers, str | None], Awaitable[Awaitable[Any]]]


@dataclass(frozen=True)
class OutputTopics:
    """Where each kind of output goes."""

    sink: str
    violations: str
    deadletter: str


class OutputRecord(NamedTuple):
    """One record an outcome produces, ready for any Kafka client."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int = -1
    """The partition to write to; -1: the client's partitioner picks (by key). Set for
    a topic co-partitioned with the source (exposure), whose partition must be the
    source record's whatever partitioner its producers used."""


def output_records(outcome: Outcome, topics: OutputTopics) -> list[OutputRecord]:
    """The records ``outcome`` produces, in order: forwarded, violation, dead letter."""
    record = outcome.record
    outputs = []
    if outcome.forwarded:
        # In audit mode a record with a null value is forwarded too, unchanged.
        outputs.append(
            OutputRecord(
                topics.sink, record.key, outcome.forward_value, outcome.forward_headers or ()
            )
        )
    if outcome.violation is not None:
        # A would-be dead letter (audit) has no subject id: keyed like its input.
        subject = record.key if outcome.subject_id is None else outcome.subject_id.encode()
        outputs.append(
            OutputRecord(
                topics.violations,
                subject,
                orjson.dumps(outcome.violation),
                outcome.violation_headers,
            )
        )
    if outcome.kind is OutcomeKind.DEADLETTERED:
        outputs.append(
            OutputRecord(topics.deadletter, record.key, record.value, outcome.dead_letter_headers())
        )
    return outputs


class KafkaOutcomeWriter:
    """Sends the records of one outcome through an asynchronous ``send``."""

    def __init__(self, topics: OutputTopics, send: Send) -> None:
        self._topics = topics
        self._send = send

    async def write(self, outcome: Outcome, transactional_id: str | None) -> list[Awaitable[Any]]:
        """Send what ``outcome`` produces; return the pending deliveries."""
        return [
            await self._send(out.topic, out.key, out.value, out.headers, transactional_id)
            for out in output_records(outcome, self._topics)
        ]
