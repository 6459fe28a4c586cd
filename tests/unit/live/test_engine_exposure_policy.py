"""A policy change in a worker that keeps exposure, end to end through the engine and
the fakes of a broker (docs/exposure.md, "In a running worker"; docs/rollout.md): each
partition's exposure is re-judged before its next event is decided, what the new policy
no longer allows is retracted once for a ``read_committed`` reader, however the
re-judgement is cut (several transactions, a refused commit, a rebalance, a worker
stopped in the middle and another one started), and no event is decided under a policy
that is not in force."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest
from confluent_kafka import Message

from enforcer.core.clock import FixedClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.policy.load import default_policy_bytes, parse_policy, policy_version
from enforcer.core.step import HEADER_POLICY
from enforcer.live.engine import Engine, EngineConfig
from enforcer.live.exposure import LiveExposure
from enforcer.live.guard import DeadLetterGuard
from enforcer.live.health import Health
from enforcer.live.limits import OutputLimits
from enforcer.live.output import Output
from enforcer.live.policy_reload import PolicyReload, PolicyWatch, StepParts, reload_loader
from enforcer.outputs.metrics import PolicyReloadStats
from enforcer.outputs.records import OutputRecord, OutputTopics
from enforcer.testing.policies import phones_never_for_advertising

from ..conftest import KEY, NOW
from .exposure_topics import PARTITIONS, Topics, TopicsConsumer, TopicsOutput
from .test_engine import Clock

SOURCE, EXPOSURE = "policy-change.events", "policy-change.exposure"
TOPICS = OutputTopics("policy-change.sink", "policy-change.violations", "policy-change.dlq")
SINK = TOPICS.sink
PATH = Path("/config/policy.yaml")
DEFAULT, NO_PHONES = default_policy_bytes(), phones_never_for_advertising()
SUBJECTS = 6
"""Subjects per partition, each with its own phone number given for advertising."""
BUDGET = 2
"""Subjects re-judged per pass: a partition's re-judgement takes several passes."""


class SmallPasses(LiveExposure):
    """The worker's exposure, re-judging :data:`BUDGET` subjects a pass."""

    def rejudge_due(
        self, ready: Callable[[int], bool], budget: int = BUDGET
    ) -> tuple[list[OutputRecord], list[int]]:
        return super().rejudge_due(ready, BUDGET)


def _event(partition: int, n: int, offset: int) -> Message:
    subject = f"acct-{partition}-{n}"
    value = orjson.dumps(
        {
            "event_id": f"evt-{partition}-{offset}",
            "subject_id": subject,
            "occurred_at": "2026-11-30T12:00:00Z",
            "identifiers": [
                {
                    "type": "phone",
                    "value": f"+1415555{partition}{n:03d}",
                    "purposes": ["marketing.advertising"],
                },
                {
                    "type": "email",
                    "value": f"{subject}@x.org",
                    "purposes": ["marketing.advertising"],
                },
            ],
        }
    )
    return Message(
        topic=SOURCE, partition=partition, offset=offset, key=subject.encode(), value=value
    )


def _topics(rounds: int) -> Topics:
    """``rounds`` records per subject, subject after subject, in each partition."""
    records = {
        p: [_event(p, n % SUBJECTS, n) for n in range(rounds * SUBJECTS)] for p in PARTITIONS
    }
    return Topics(SOURCE, EXPOSURE, records)


class Worker:
    """One worker over ``topics``, its policy file ``file[0]``, checked when a test
    says so."""

    def __init__(
        self,
        topics: Topics,
        file: list[bytes],
        before_consume: Callable[[Worker, TopicsConsumer], None],
        output: Output | None = None,
    ) -> None:
        self.file = file
        clock = Clock()
        self.clock = clock
        consumer = TopicsConsumer(topics, batch=3, before_consume=lambda c: before_consume(self, c))
        self.consumer = consumer
        policy = parse_policy(file[0], origin=str(PATH), destination="audience-building")
        parts = StepParts(Fingerprinter(KEY), FixedClock(NOW), None, lambda _: None, exposure=True)
        self.exposure = SmallPasses(
            EXPOSURE,
            SOURCE,
            SINK,
            parts.fingerprinter.key_id,
            policy,
            LedgerMode.OFF,
            lambda _: None,
            clock,
        )
        self.engine = Engine(
            EngineConfig(SOURCE, OutputLimits(TOPICS, {}), 100, 0.01, 1.5),
            consumer,  # type: ignore[arg-type]
            output or TopicsOutput(topics),
            parts.step(policy),
            DeadLetterGuard(1.0, 1000),
            Health(clock, 30.0),
            clock,
            lambda: consumer.drained and consumer.rounds > 40,
            exposure=self.exposure,
            clock=FixedClock(NOW),
        )
        load = reload_loader(PATH, "audience-building", None, LedgerMode.OFF, False, parts)
        self.watch = PolicyWatch(
            PATH, policy, load, clock, 1e9, PolicyReloadStats(), read=lambda _: file[0]
        )
        self.engine.policy_reload = PolicyReload(self.watch)

    def change_policy(self, content: bytes) -> None:
        """The file now holds ``content``, read at two checks in a row."""
        self.file[0] = content
        self.watch.check()
        self.watch.check()

    def run(self) -> None:
        def tick() -> None:
            self.clock.now += 1.0  # a commit after every second pass

        self.engine.on_tick.append(tick)
        self.engine.run()


def _retracted(topics: Topics) -> Counter[tuple[str, str]]:
    """Committed retractions: (subject, fingerprint) -> how many times."""
    found: Counter[tuple[str, str]] = Counter()
    for transaction in topics.committed:
        for record in transaction:
            if record.topic == SINK and record.value and b'"retraction"' in record.value:
                body = orjson.loads(record.value)["retraction"]
                assert body["reason"] == "policy-changed"
                found[(body["subject_id"], body["fingerprint"])] += 1
    return found


def _sunk(topics: Topics) -> list[tuple[int, OutputRecord]]:
    """Committed forwarded records (not retractions), with their transaction's index."""
    return [
        (index, record)
        for index, transaction in enumerate(topics.committed)
        for record in transaction
        if record.topic == SINK and record.value and b'"retraction"' not in record.value
    ]


def _subject(record: OutputRecord) -> str:
    """The subject id a sink record is keyed by (every one is)."""
    assert record.key is not None
    return record.key.decode()


def _version(record: OutputRecord) -> bytes:
    return next(value for key, value in record.headers if key == HEADER_POLICY) or b""


def _check_once_and_in_order(topics: Topics, *, some: bool = True) -> None:
    """Every phone number committed under the old policy retracted exactly once, and
    nothing else; no record decided under the new policy holds a phone number, nor was
    committed before its partition's last retraction; once a record of the new policy
    is committed, no record of the old one follows it."""
    new = policy_version(NO_PHONES).encode()
    exposed = {_subject(r) for _, r in _sunk(topics) if _version(r) != new}
    retracted = _retracted(topics)
    assert sorted(s for s, _ in retracted) == sorted(exposed)
    assert exposed or not some
    assert all(n == 1 for n in retracted.values())
    last_retraction = {
        int(subject.split("-")[1]): index
        for index, transaction in enumerate(topics.committed)
        for record in transaction
        if record.topic == SINK
        and b'"retraction"' in (record.value or b"")
        and (subject := _subject(record))
    }
    seen_new = False
    for index, record in _sunk(topics):
        if _version(record) == new:
            seen_new = True
            assert b"+1415555" not in (record.value or b"")
            assert index >= last_retraction.get(int(_subject(record).split("-")[1]), 0)
        else:
            assert not seen_new, "a record of the old policy after one of the new"


def _switch_when(at_round: int) -> Callable[[Worker, TopicsConsumer], None]:
    def before(worker: Worker, consumer: TopicsConsumer) -> None:
        if consumer.rounds == at_round:
            worker.change_policy(NO_PHONES)

    return before


def test_a_reload_retracts_each_exposed_phone_once_before_the_new_policy_decides() -> None:
    topics = _topics(rounds=8)
    Worker(topics, [DEFAULT], _switch_when(6)).run()
    assert _sunk(topics)
    _check_once_and_in_order(topics)


def test_a_refused_commit_in_the_middle_of_a_re_judgement_retracts_nothing_twice() -> None:
    topics = _topics(rounds=8)

    def before(worker: Worker, consumer: TopicsConsumer) -> None:
        if consumer.rounds == 6:
            worker.change_policy(NO_PHONES)
        output = worker.engine._output
        assert isinstance(output, TopicsOutput)
        if consumer.rounds == 8:
            assert output.open and any(worker.exposure.due(p) for p in PARTITIONS)
            output.refusals = 1  # the next commit, in the middle of the re-judgement

    Worker(topics, [DEFAULT], before).run()
    _check_once_and_in_order(topics)


def test_a_rebalance_in_the_middle_of_a_re_judgement_retracts_nothing_twice() -> None:
    topics = _topics(rounds=8)

    def before(worker: Worker, consumer: TopicsConsumer) -> None:
        if consumer.rounds == 6:
            worker.change_policy(NO_PHONES)
        if consumer.rounds == 8:
            assert worker.engine._output.open and any(worker.exposure.due(p) for p in PARTITIONS)
            consumer.rebalance()

    Worker(topics, [DEFAULT], before).run()
    _check_once_and_in_order(topics)


class KilledError(Exception):
    """The worker is killed: its open transaction never commits."""


def test_a_worker_killed_in_the_middle_of_a_re_judgement_is_followed_exactly() -> None:
    """The first worker is killed while re-judging (its open transaction lost); the next
    one starts under the new policy from what was committed."""
    topics = _topics(rounds=8)
    file = [DEFAULT]

    def before(worker: Worker, consumer: TopicsConsumer) -> None:
        if consumer.rounds == 6:
            worker.change_policy(NO_PHONES)
        if 0 < len(_retracted(topics)) < SUBJECTS * len(PARTITIONS):
            raise KilledError  # a part of the retractions committed, not all

    with pytest.raises(KilledError):
        Worker(topics, file, before).run()
    Worker(topics, file, lambda _w, _c: None).run()
    _check_once_and_in_order(topics)


def test_a_policy_changed_back_while_a_re_judgement_is_unfinished() -> None:
    """default -> no phones -> default, the second change before the first re-judgement
    ended: what was retracted stays retracted once, and the default forwards again."""
    topics = _topics(rounds=10)

    def before(worker: Worker, consumer: TopicsConsumer) -> None:
        if consumer.rounds == 6:
            worker.change_policy(NO_PHONES)
        if consumer.rounds == 8:
            worker.change_policy(DEFAULT)

    worker = Worker(topics, [DEFAULT], before)
    worker.run()
    retracted = _retracted(topics)
    assert retracted and set(retracted.values()) == {1}
    old, new = policy_version(DEFAULT).encode(), policy_version(NO_PHONES).encode()
    versions = [_version(r) for _, r in _sunk(topics)]
    runs = [v for n, v in enumerate(versions) if n == 0 or v != versions[n - 1]]
    assert runs == [old, new, old]  # each switch at a transaction boundary, once
    for _, record in _sunk(topics):
        assert (b"+1415555" in (record.value or b"")) == (_version(record) == old)
    assert worker.watch.stats.reloads == 2
