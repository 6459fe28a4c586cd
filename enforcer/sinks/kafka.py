"""Outcomes to Kafka topics: the sink, violations and dead letters (SPEC §2, §5-§7)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson

from enforcer.step import Headers, Outcome, OutcomeKind

# (topic, key, value, headers, transactional_id) -> awaitable delivery
Send = Callable[[str, bytes | None, bytes | None, Headers, str | None], Awaitable[Awaitable[Any]]]


@dataclass(frozen=True)
class OutputTopics:
    """Where each kind of output goes."""

    sink: str
    violations: str
    deadletter: str


class KafkaOutcomeWriter:
    """Turns one outcome into the records it produces, sent through ``send``."""

    def __init__(self, topics: OutputTopics, send: Send) -> None:
        self._topics = topics
        self._send = send

    async def write(self, outcome: Outcome, transactional_id: str | None) -> list[Awaitable[Any]]:
        """Send what ``outcome`` produces; return the pending deliveries."""
        topics, send = self._topics, self._send
        record = outcome.record
        pending = []
        if outcome.forward_value is not None:
            pending.append(
                await send(
                    topics.sink,
                    record.key,
                    outcome.forward_value,
                    outcome.forward_headers or (),
                    transactional_id,
                )
            )
        if outcome.violation is not None:
            subject = (outcome.subject_id or "").encode()
            pending.append(
                await send(
                    topics.violations,
                    subject,
                    orjson.dumps(outcome.violation),
                    (),
                    transactional_id,
                )
            )
        if outcome.kind is OutcomeKind.DEADLETTERED:
            pending.append(
                await send(
                    topics.deadletter,
                    record.key,
                    record.value,
                    outcome.dead_letter_headers(),
                    transactional_id,
                )
            )
        return pending
