"""A batch of ledger records alone (the source quiet) that retracts nothing: its
offsets are committed like any batch's. Nothing was sent, so no transaction was open
and the commit never came, while the records counted as waiting for one: the watchdog
ended the worker after 30 s (``no commit … although records wait``), again after every
restart, for as long as the source stayed quiet."""

from __future__ import annotations

from confluent_kafka import Message

from enforcer.core.policy.load import load_policy
from enforcer.ledger.retract import passes_under
from enforcer.live.engine import Engine, EngineConfig
from enforcer.live.guard import DeadLetterGuard
from enforcer.live.health import Health
from enforcer.live.ledger import LiveLedger
from enforcer.live.limits import OutputLimits
from enforcer.testing.ledger import ledger_value

from ..conftest import make_step
from .source_and_ledger import SourceAndLedgerConsumer
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


def test_ledger_records_that_retract_nothing_are_committed() -> None:
    clock = Clock()

    def before_consume() -> None:
        clock.now += 1.0

    # Partition 0 of the source (quiet) and of the ledger (GRANTS grants, read in the
    # first batch); the group committed ledger offset 0, so they are read live.
    consumer = SourceAndLedgerConsumer(
        SOURCE,
        LEDGER,
        committed=0,
        batches=[[_grant(offset) for offset in range(GRANTS)]],
        before_consume=before_consume,
    )
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
        lambda: consumer.rounds >= 5,
        ledger,
    )
    engine.on_tick.append(lambda: waiting.append(health.uncommitted_for()))
    engine.run()

    assert output.sent == []  # nothing retracted
    assert output.committed == [{(LEDGER, 0): GRANTS}]  # within the commit interval
    assert waiting[-1] == 0.0  # nothing waits for a commit: the watchdog stays quiet
