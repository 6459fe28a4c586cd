"""The schema registry in the live loop (docs/formats.md: running with a schema
registry): schemas fetched before a batch is decided; while the registry is down the
batch is held (nothing decided, dead-lettered or committed for it), the registry asked
again with a growing pause, one line said; the held records decided once it answers,
each once; the worker stopped past the deadline."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import Any, cast

import orjson
import pytest
from confluent_kafka import Message, TopicPartition

from enforcer.core.clock import FixedClock
from enforcer.formats.framing import frame, schema_ids
from enforcer.formats.registry import RegisteredSchema, RegistryUnavailableError, SchemaRegistry
from enforcer.live.engine import Engine, EngineConfig
from enforcer.live.failures import WorkerStopError
from enforcer.live.guard import DeadLetterGuard
from enforcer.live.health import Health
from enforcer.live.http import prometheus_text
from enforcer.live.limits import OutputLimits
from enforcer.live.output import CommitAborted
from enforcer.live.positions import TopicPartitionKey
from enforcer.live.schemas import RegistryWait, schema_loader
from enforcer.outputs.metrics import BatchCounts, MetricsRecorder
from enforcer.outputs.records import OutputRecord, OutputTopics

from ..conftest import NOW, event, ident, make_step

SOURCE = "wait-test.identity.events"
TOPICS = OutputTopics("wait-test.sink", "wait-test.violations", "wait-test.deadletter")
CAUSE = "schema registry http://127.0.0.1:1 did not answer schemas/ids/7: Connection refused"
PLAIN = orjson.dumps(event(ident("email", "a@x.io", ["marketing.advertising"])))
FRAMED = frame(7, b"\x02an avro body")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class FakeLoader:
    """Loads ids unless :attr:`down`; counts the attempts."""

    def __init__(self) -> None:
        self.down = False
        self.loaded: set[int] = set()
        self.attempts: list[set[int]] = []

    def missing(self, values: Iterable[bytes | None]) -> set[int]:
        return schema_ids(values) - self.loaded

    def load(self, ids: Iterable[int]) -> None:
        self.attempts.append(set(ids))
        if self.down:
            raise RegistryUnavailableError(CAUSE)
        self.loaded |= set(ids)


# --- the state machine ------------------------------------------------------------


def test_values_without_a_missing_schema_never_ask_the_registry() -> None:
    loader = FakeLoader()
    loader.loaded.add(7)
    wait = RegistryWait(loader, Clock(), 60.0)
    assert wait.ready([PLAIN, FRAMED, None])
    assert loader.attempts == []
    assert not wait.down


def test_an_outage_is_said_once_retried_with_a_growing_pause_and_ends_when_it_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, loader = Clock(), FakeLoader()
    loader.down = True
    wait = RegistryWait(loader, clock, 60.0, first_retry_s=0.5, longest_retry_s=4.0)
    with caplog.at_level(logging.INFO, logger="enforcer.schemas"):
        assert not wait.ready([FRAMED])
        assert wait.down and wait.cause == CAUSE
        tried_at = []
        for _ in range(80):  # 20 s in steps of 0.25 s (exact in binary)
            clock.now += 0.25
            before = len(loader.attempts)
            assert not wait.retry()
            assert not wait.ready([FRAMED])  # held: asks nothing
            if len(loader.attempts) > before:
                tried_at.append(clock.now - 100.0)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        line = warnings[0].getMessage()
        assert line.startswith(CAUSE) and "no record is dead-lettered for it" in line
        loader.down = False
        clock.now += 4.0
        assert wait.retry()
    gaps = [b - a for a, b in zip([0.0, *tried_at], tried_at, strict=False)]
    assert gaps[:4] == [0.5, 1.0, 2.0, 4.0] and set(gaps[4:]) == {4.0}
    assert not wait.down and wait.cause is None
    assert loader.loaded == {7}
    assert wait.failures == len(tried_at) + 1
    assert "answers again after 24 s" in caplog.records[-1].getMessage()


def test_an_outage_past_the_deadline_stops_the_worker() -> None:
    clock, loader = Clock(), FakeLoader()
    loader.down = True
    wait = RegistryWait(loader, clock, 30.0)
    assert not wait.ready([FRAMED])
    clock.now += 29.9
    assert not wait.retry()
    clock.now += 0.1
    with pytest.raises(WorkerStopError) as stopped:
        wait.retry()
    message = str(stopped.value)
    assert message.startswith(CAUSE) and "has not answered for 30 s" in message
    assert "exiting to be restarted" in message and "\n" not in message


def test_the_drivers_loader_asks_each_id_once_and_keeps_no_such_id_as_an_answer() -> None:
    asked: list[int] = []

    class Registry:
        def schema_by_id(self, schema_id: int) -> RegisteredSchema | None:
            asked.append(schema_id)
            return None if schema_id == 9 else RegisteredSchema(schema_id, "AVRO", '"string"', ())

    loader = schema_loader(cast("SchemaRegistry", Registry()))
    values = [frame(7, b""), frame(9, b""), PLAIN]
    assert loader.missing(values) == {7, 9}
    # As the engine asks: what is missing, then load it, batch after batch.
    loader.load(loader.missing(values))
    loader.load(loader.missing(values))
    assert asked == [7, 9]
    assert loader.missing([frame(7, b""), frame(9, b"")]) == set()


# --- in the engine -----------------------------------------------------------------


def _message(partition: int, offset: int) -> Message:
    value = FRAMED if offset == 2 else PLAIN
    return Message(topic=SOURCE, partition=partition, offset=offset, key=b"k", value=value)


class PausingConsumer:
    """Two partitions of eight records (offset 2 framed); a paused partition gives
    nothing; ``before_consume`` runs first in every consume."""

    def __init__(self, before_consume: Callable[[], None]) -> None:
        self.records = {p: [_message(p, o) for o in range(8)] for p in (0, 1)}
        self.position = dict.fromkeys(self.records, 0)
        self.paused: set[int] = set()
        self.consumed: Counter[tuple[int, int]] = Counter()
        self._before_consume = before_consume

    def subscribe(self, topics: list[str], on_assign: Any, on_revoke: Any, **_: Any) -> None:
        self.on_revoke = on_revoke
        on_assign(self, self.assignment())

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(SOURCE, p) for p in self.records]

    def seek(self, tp: TopicPartition) -> None:
        self.position[tp.partition] = tp.offset

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {tp.partition for tp in partitions}

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self._before_consume()
        taken: list[Message] = []
        for partition, records in self.records.items():
            if partition in self.paused:
                continue
            start = self.position[partition]
            taken += records[start : start + 2]
            self.position[partition] = min(len(records), start + 2)
        self.consumed.update((m.partition() or 0, m.offset() or 0) for m in taken)
        return taken

    @property
    def drained(self) -> bool:
        return all(self.position[p] == len(r) for p, r in self.records.items())


class Output:
    """Keeps what is sent and what each commit carried."""

    def __init__(self, refusals: int = 0) -> None:
        self.sent: list[OutputRecord] = []
        self.committed: list[dict[TopicPartitionKey, int]] = []
        self.open = False
        self.refusals = refusals

    def start(self, should_stop: Callable[[], bool]) -> None:
        pass

    def begin(self) -> None:
        self.open = True

    def send(self, record: OutputRecord) -> None:
        self.open = True
        self.sent.append(record)

    def commit(self, offsets: Mapping[TopicPartitionKey, int], consumer: Any) -> None:
        self.open = False
        if self.refusals:
            self.refusals -= 1
            raise CommitAborted("refused by the test")
        self.committed.append(dict(offsets))

    def abort(self) -> None:
        self.open = False

    def poll(self) -> None:
        pass


def _engine(
    consumer: PausingConsumer, output: Output, clock: Clock, wait: RegistryWait, health: Health
) -> tuple[Engine, list[BatchCounts]]:
    engine = Engine(
        EngineConfig(SOURCE, OutputLimits(TOPICS, {}), 100, 0.01, 0.5),
        consumer,  # type: ignore[arg-type]
        output,  # type: ignore[arg-type]
        make_step(),
        DeadLetterGuard(1.0, 1000),
        health,
        clock,
        lambda: consumer.drained and not output.open,
        schemas=wait,
    )
    observed: list[BatchCounts] = []
    engine.observers.append(observed.append)
    return engine, observed


def _shown(health: Health) -> tuple[float, object]:
    """``enforcer_schema_registry_up`` as scraped, and what ``/healthz`` says of it."""
    step = make_step()
    recorder = MetricsRecorder("w", step.policy.version, step.policy.mode, FixedClock(NOW), Clock())
    text = prometheus_text(recorder, [], health).decode()
    up = next(
        float(line.split()[1])
        for line in text.splitlines()
        if line.startswith("enforcer_schema_registry_up ")
    )
    alive = health.alive()
    assert alive.ok
    return up, alive.detail.get("waiting_for_schema_registry")


def _committed(output: Output) -> dict[int, int]:
    last: dict[int, int] = {}
    for offsets in output.committed:
        for (topic, partition), offset in offsets.items():
            assert topic == SOURCE
            last[partition] = offset
    return last


def test_a_batch_waits_for_the_registry_and_is_decided_once_when_it_answers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first batch (plain records) is decided without the registry; the second
    names a schema while the registry is down: held, its partitions paused, nothing of
    it sent or committed; once the registry answers every record is decided once."""
    clock, loader = Clock(), FakeLoader()
    loader.down = True
    consumes = 0
    while_down: list[tuple[int, dict[int, int], bool]] = []
    shown: list[tuple[float, object]] = []

    def before_consume() -> None:
        nonlocal consumes
        consumes += 1
        clock.now += 1.0
        if loader.down:
            while_down.append((len(output.sent), _committed(output), bool(consumer.paused)))
            if consumes > 2:
                shown.append(_shown(health))
        if consumes == 12:
            loader.down = False

    consumer, output = PausingConsumer(before_consume), Output()
    health = Health(clock, 30.0)
    wait = RegistryWait(loader, clock, 60.0)
    engine, observed = _engine(consumer, output, clock, wait, health)
    with caplog.at_level(logging.INFO):
        engine.run()
    # Held: after the first batch nothing more was sent or committed, partitions paused.
    sent_before = while_down[1][0]
    assert sent_before == 4
    assert all(entry[0] == sent_before for entry in while_down[1:])
    assert all(entry[1] in ({}, {0: 2, 1: 2}) for entry in while_down)
    assert all(paused for _, _, paused in while_down[2:])
    # Asked again with a growing pause, not at every round.
    assert 2 < len(loader.attempts) < len(while_down)
    # Every record decided once; the held ones read twice (held, then decided).
    assert sum(batch.records for batch in observed) == 16
    assert _committed(output) == {0: 8, 1: 8}
    assert len(output.sent) == 16
    assert consumer.consumed[(0, 2)] == 2 and consumer.consumed[(0, 5)] == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if CAUSE in w] == [warnings[0]] and len(warnings) == 1
    # /healthz stays healthy and names the cause; the metric says 0 while it waits.
    assert shown and set(shown) == {(0.0, CAUSE)}
    assert _shown(health) == (1.0, None)
    assert health.alive().ok


def test_a_registry_down_past_the_deadline_stops_the_engine_with_nothing_held_committed() -> None:
    clock, loader = Clock(), FakeLoader()
    loader.down = True

    def before_consume() -> None:
        clock.now += 5.0

    consumer, output = PausingConsumer(before_consume), Output()
    wait = RegistryWait(loader, clock, 30.0)
    engine, observed = _engine(consumer, output, clock, wait, Health(clock, 30.0))
    with pytest.raises(WorkerStopError, match=r"has not answered for 3[0-9] s"):
        engine.run()
    assert sum(batch.records for batch in observed) == 4
    assert _committed(output) == {0: 2, 1: 2}
    assert len(output.sent) == 4


def test_a_revoke_while_records_are_held_resumes_their_partitions() -> None:
    """The next owner reads them from the committed offset; librdkafka would keep the
    partitions paused into this worker's next assignment."""
    clock, loader = Clock(), FakeLoader()
    loader.down = True
    revoked: list[set[int]] = []

    def before_consume() -> None:
        clock.now += 1.0
        if consumer.paused and not revoked:
            revoked.append(set(consumer.paused))
            consumer.on_revoke(consumer, consumer.assignment())
            # Assigned again: read from the committed offsets, the registry back.
            consumer.position.update(_committed(output))
            loader.down = False

    consumer, output = PausingConsumer(before_consume), Output()
    engine, _ = _engine(
        consumer, output, clock, RegistryWait(loader, clock, 60.0), Health(clock, 30.0)
    )
    engine.run()
    assert revoked == [{0, 1}]
    assert consumer.paused == set()
    assert _committed(output) == {0: 8, 1: 8}


def test_a_refused_commit_while_records_are_held_reads_again_from_the_transaction_start() -> None:
    """The first batch's transaction is refused while the second batch is held: the
    release must read from where the transaction began, not from the held record."""
    clock, loader = Clock(), FakeLoader()
    loader.down = True
    consumes = 0

    def before_consume() -> None:
        nonlocal consumes
        consumes += 1
        clock.now += 1.0
        if consumes == 6:
            loader.down = False

    consumer, output = PausingConsumer(before_consume), Output(refusals=1)
    wait = RegistryWait(loader, clock, 60.0)
    engine, observed = _engine(consumer, output, clock, wait, Health(clock, 30.0))
    engine.run()
    assert output.refusals == 0  # the refusal happened
    assert _committed(output) == {0: 8, 1: 8}
    assert sum(batch.records for batch in observed) == 16
    assert consumer.consumed[(0, 0)] == 2 and consumer.consumed[(1, 1)] == 2


class _AccountsRegistry:
    """A registry holding one schema, the latest version of subject ``accounts-value``."""

    def __init__(self, registered: RegisteredSchema) -> None:
        self._registered = registered

    def schema_by_id(self, schema_id: int) -> RegisteredSchema | None:
        return self._registered if schema_id == self._registered.schema_id else None

    def subject_version(self, subject: str, version: int | str = "latest") -> Any:
        return self._registered if subject == "accounts-value" else None


def test_mapping_problems_at_start_never_raise_for_a_tagged_name_no_path_writes() -> None:
    """The latest schema tags a property ``mfa phone``: unusable (logged), so the check at
    start says nothing and the worker starts; its records are ``unknown-schema``."""
    import json

    from enforcer.core.policy.load import default_policy_bytes, parse_policy
    from enforcer.formats.schemas import SchemaCache
    from enforcer.live.schemas import mapping_problems

    schema = {
        "title": "t.Account",
        "type": "object",
        "properties": {"mfa phone": {"type": "string", "confluent:tags": ["PII_PHONE"]}},
    }
    registered = RegisteredSchema(31, "JSON", json.dumps(schema), ())
    policy = parse_policy(
        default_policy_bytes() + b"\nformats:\n  mappings: []\n", origin="formats.yaml"
    )
    cache = SchemaCache(_AccountsRegistry(registered), FixedClock(NOW))
    assert mapping_problems(policy, cache, "accounts") == []
    cache.load([31])
    assert cache.codec(31) is None


def test_the_check_at_start_says_what_it_checked(caplog: pytest.LogCaptureFixture) -> None:
    """One line: the mappings fit the subject's latest schema (named with its id), or no
    schema is registered for the topic (each schema is then checked as it is met)."""
    import json

    from enforcer.core.policy.load import default_policy_bytes, parse_policy
    from enforcer.formats.schemas import SchemaCache
    from enforcer.live.schemas import mapping_problems

    schema = {
        "title": "t.Account",
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "at": {"type": "string"},
            "email": {"type": "string"},
        },
    }
    registered = RegisteredSchema(32, "JSON", json.dumps(schema), ())
    mapping = (
        b"\nformats:\n  mappings:\n    - {name: m, subject_id: id, occurred_at: at, "
        b"identifiers: [{path: email, type: email, purposes: ledger}]}\n"
    )
    policy = parse_policy(default_policy_bytes() + mapping, origin="formats.yaml")
    cache = SchemaCache(_AccountsRegistry(registered), FixedClock(NOW))
    with caplog.at_level("INFO", logger="enforcer"):
        assert mapping_problems(policy, cache, "accounts") == []
        assert mapping_problems(policy, cache, "other") == []
    assert [r.getMessage() for r in caplog.records] == [
        "field mappings checked against the latest schema of accounts-value (schema id 32): "
        "they fit",
        "no schema registered as other-value: the field mappings are checked against each "
        "schema as its records arrive",
    ]
