"""A source record deferred while its ledger partition restores holds back every later
record of that partition, in the same batch too: the restore can finish in the middle
of a batch (the ledger record at the committed offset), and a later record of the
partition decided at once was decided again after the rewind to the deferred one (its
outputs sent twice in one transaction), and an abort went back only to it (the
deferred records' outputs were lost with the abort)."""

from __future__ import annotations

import orjson
from confluent_kafka import Message

from enforcer.core.policy.load import load_policy
from enforcer.ledger.retract import passes_under
from enforcer.live.engine import Engine, EngineConfig
from enforcer.live.guard import DeadLetterGuard
from enforcer.live.health import Health
from enforcer.live.ledger import LiveLedger
from enforcer.live.limits import OutputLimits
from enforcer.testing.ledger import ledger_value

from ..conftest import event, ident, make_step
from .source_and_ledger import SourceAndLedgerConsumer
from .test_engine import TOPICS, Clock, FakeOutput
from .test_ledger import FP

SOURCE, LEDGER = "engine-deferred.events", "engine-deferred.purposes"


def _source(offset: int) -> Message:
    value = orjson.dumps(
        event(ident("email", "a@x.io", ["marketing.advertising"]), event_id=f"evt-{offset}")
    )
    return Message(topic=SOURCE, partition=0, offset=offset, key=b"acct-1", value=value)


def _ledger(offset: int) -> Message:
    value = ledger_value("s", "2026-01-01T00:00:00Z", [("email", "s@example.org", ("ads",))])
    return Message(topic=LEDGER, partition=0, offset=offset, key=b"s", value=value)


def _restoring_consumer() -> SourceAndLedgerConsumer:
    """Partition 0 of the source (two records) and of the ledger (committed at 1): the
    first batch has a source record fetched while the ledger restores, the ledger
    records that finish the restore, and the next source record; then the source is
    read from where it was sought."""
    return SourceAndLedgerConsumer(
        SOURCE,
        LEDGER,
        committed=1,
        batches=[[_source(0), _ledger(0), _ledger(1), _source(1)]],
        source=[_source(0), _source(1)],
    )


def _run(output: FakeOutput, commit_interval_s: float = 1000.0) -> None:
    consumer = _restoring_consumer()
    clock = Clock()
    policy = load_policy(None)
    ledger = LiveLedger(
        LEDGER, SOURCE, "engine-deferred.sink", FP, passes_under(policy), policy.version, clock
    )
    engine = Engine(
        EngineConfig(SOURCE, OutputLimits(TOPICS, {}), 100, 0.01, commit_interval_s),
        consumer,  # type: ignore[arg-type]
        output,
        make_step(),
        DeadLetterGuard(1.0, 1000),
        Health(clock, 30.0),
        clock,
        lambda: consumer.rounds >= 3,
        ledger,
    )
    engine.run()


def _sunk(output: FakeOutput) -> list[str]:
    return [
        orjson.loads(record.value)["event_id"]
        for record in output.sent
        if record.topic == TOPICS.sink and record.value is not None
    ]


def test_a_later_record_does_not_overtake_a_deferred_one() -> None:
    output = FakeOutput()
    _run(output)
    assert _sunk(output) == ["evt-0", "evt-1"]  # each once, in order
    assert output.committed == [{(SOURCE, 0): 2, (LEDGER, 0): 2}]


def test_an_aborted_transaction_rewinds_to_the_deferred_record() -> None:
    output = FakeOutput(refusals=1)  # the first commit, after the first batch, is refused
    _run(output, commit_interval_s=0.0)
    assert output.committed[-1][SOURCE, 0] == 2
    redone = [
        orjson.loads(record.value)["event_id"]
        for record in output.sent[output.refused_sends :]
        if record.topic == TOPICS.sink and record.value is not None
    ]
    assert redone == ["evt-0", "evt-1"]  # what the committed transaction holds
