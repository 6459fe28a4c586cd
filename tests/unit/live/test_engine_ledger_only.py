"""A batch of ledger records alone (the source quiet) that retracts nothing: its
offsets are committed like any batch's. Nothing was sent, so no transaction was open
and the commit never came, while the records counted as waiting for one: the watchdog
ended the worker after 30 s (``no commit … although records wait``), again after every
restart, for as long as the source stayed quiet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from confluent_kafka import Message, TopicPartition

from enforcer.core.policy.load import load_policy
from enforcer.ledger.retract import passes_under
from enforcer.live.engine import Engine, EngineConfig
from enforcer.live.guard import DeadLetterGuard
from enforcer.live.health import Health
from enforcer.live.ledger import LiveLedger
from enforcer.live.limits import OutputLimits
from enforcer.testing.ledger import ledger_value

from ..conftest import make_step
from .test_engine import TOPICS, Clock, FakeOutput
from .test_ledger import FP

SOURCE, LEDGER = "engine-ledger.events", "engine-ledger.purposes"
GRANTS = 3


def _grant(offset: int) -> Message:
    subject = f"s{offset}"
    value = ledger_value(
        subject, "2026-01-01T00:00:00Z", [("email", f"{subject}@example.org", ("ads",))]
    )
    return Message(topic=LEDGER, partition=0, offset=offset, key=subject.encode(), value=value)


class LedgerOnlyConsumer:
    """Partition 0 of the source (quiet) and of the ledger (``GRANTS`` grants, read in
    the first batch); the group committed ledger offset 0, so they are read live."""

    def __init__(self, before_consume: Callable[[], None]) -> None:
        self._before_consume = before_consume
        self._batches = [[_grant(offset) for offset in range(GRANTS)]]

    def subscribe(self, topics: list[str], on_assign: Any, **_: Any) -> None:
        on_assign(self, [TopicPartition(t, 0) for t in topics])

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, 0) for tp in partitions]

    def assign(self, _: list[TopicPartition]) -> None:
        pass

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(SOURCE, 0), TopicPartition(LEDGER, 0)]

    def pause(self, _: list[TopicPartition]) -> None:
        pass

    def resume(self, _: list[TopicPartition]) -> None:
        pass

    def seek(self, _: TopicPartition) -> None:
        pass

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self._before_consume()
        return self._batches.pop(0) if self._batches else []


def test_ledger_records_that_retract_nothing_are_committed() -> None:
    clock = Clock()
    rounds: list[None] = []

    def before_consume() -> None:
        clock.now += 1.0
        rounds.append(None)

    consumer = LedgerOnlyConsumer(before_consume)
    output = FakeOutput()
    health = Health(clock, 30.0)
    policy = load_policy(None)
    ledger = LiveLedger(
        LEDGER, SOURCE, "engine-ledger.sink", FP, passes_under(policy), policy.version, clock
    )
    waiting: list[float] = []
    engine = Engine(
        EngineConfig(SOURCE, OutputLimits(TOPICS, {}), 100, 0.01, commit_interval_s=1.5),
        consumer,  # type: ignore[arg-type]
        output,
        make_step(),
        DeadLetterGuard(1.0, 1000),
        health,
        clock,
        lambda: len(rounds) >= 5,
        ledger,
    )
    engine.on_tick.append(lambda: waiting.append(health.uncommitted_for()))
    engine.run()

    assert output.sent == []  # nothing retracted
    assert output.committed == [{(LEDGER, 0): GRANTS}]  # within the commit interval
    assert waiting[-1] == 0.0  # nothing waits for a commit: the watchdog stays quiet
