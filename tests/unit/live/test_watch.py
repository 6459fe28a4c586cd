"""The watch over a worker's topics: which changes stop it, and the commit gate.

The broker's answers are played by a fake admin client handing out real futures, so
what the watch does with done, pending and failed descriptions is checked without one.
"""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicCollection
from hypothesis import given
from hypothesis import strategies as st

from enforcer.live.failures import WorkerStopError
from enforcer.live.health import Health
from enforcer.live.watch import (
    DESCRIBE_TIMEOUT_S,
    START_ATTEMPTS,
    WATCH_INTERVAL_S,
    TopicState,
    TopicWatch,
    change_of,
)

TOPICS = {"source": "events", "sink": "audience", "ledger": "purposes"}
BEFORE = TopicState("id-1", 4)


def _error(code: int) -> KafkaError:
    return KafkaError(code, "from the test")


class _Description:
    def __init__(self, topic_id: str, partitions: int) -> None:
        self.topic_id = topic_id
        self.partitions = [object()] * partitions


class _Admin:
    """Answers every description with the topics' current state; ``hold`` keeps the
    futures pending (a broker that does not answer)."""

    def __init__(self) -> None:
        self.state: dict[str, TopicState | KafkaError] = {
            name: TopicState(f"id-{name}", 4) for name in TOPICS.values()
        }
        self.hold = False
        self.asked = 0
        self.held: list[Future[Any]] = []

    def describe_topics(
        self, topics: TopicCollection, *, request_timeout: float
    ) -> dict[str, Future[Any]]:
        self.asked += 1
        futures: dict[str, Future[Any]] = {}
        for name in topics.topic_names:
            future: Future[Any] = Future()
            futures[name] = future
            if self.hold:
                self.held.append(future)
                continue
            answer = self.state[name]
            if isinstance(answer, KafkaError):
                future.set_exception(KafkaException(answer))
            else:
                future.set_result(_Description(answer.topic_id, answer.partitions))
        return futures


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _no_sleep(_: float) -> None:
    pass


def _watch(ledger: bool = True) -> tuple[TopicWatch, _Admin, _Clock, Health]:
    admin, clock = _Admin(), _Clock()
    health = Health(clock, 30.0)
    topics = TOPICS if ledger else {k: v for k, v in TOPICS.items() if k != "ledger"}
    watch = TopicWatch(admin, topics, ledger, health, clock, sleep=_no_sleep)
    watch.start()
    return watch, admin, clock, health


def test_a_deleted_topic_is_named_with_the_brokers_error() -> None:
    """Deletion is a stop, whatever the topic's role."""
    cause = change_of("sink", "audience", BEFORE, _error(KafkaError.UNKNOWN_TOPIC_OR_PART), False)
    assert cause is not None
    assert "sink topic 'audience' was deleted (UNKNOWN_TOPIC_OR_PART)" in cause


def test_a_re_created_topic_is_a_new_id() -> None:
    """The same name with another topic id is another topic: the worker stops."""
    cause = change_of("ledger", "purposes", BEFORE, TopicState("id-2", 4), True)
    assert cause is not None
    assert "ledger topic 'purposes' was re-created (topic id id-1 -> id-2)" in cause


def test_a_missing_permission_is_named_as_one() -> None:
    """An answer of TOPIC_AUTHORIZATION_FAILED stops, as a permission problem."""
    cause = change_of("ledger", "p", BEFORE, _error(KafkaError.TOPIC_AUTHORIZATION_FAILED), True)
    assert cause is not None and cause.startswith("not authorized: TOPIC_AUTHORIZATION_FAILED")


@given(
    role=st.sampled_from(["source", "ledger", "sink", "violations", "dead-letter", "metrics"]),
    partitions=st.integers(1, 12),
    ledger=st.booleans(),
)
def test_partition_counts_matter_only_for_the_co_partitioned_pair(
    role: str, partitions: int, ledger: bool
) -> None:
    """With a ledger, any change of the source's or the ledger's count stops the worker
    (keys moved between partitions); an output's count, or the source's without a
    ledger, never does."""
    cause = change_of(role, "t", BEFORE, TopicState("id-1", partitions), ledger)
    stops = ledger and role in ("source", "ledger") and partitions != BEFORE.partitions
    assert (cause is not None) is stops
    if stops:
        assert cause is not None and f"now has {partitions} partition(s), had 4" in cause


@pytest.mark.parametrize("code", [KafkaError._TRANSPORT, KafkaError._TIMED_OUT])
def test_a_transient_error_is_no_change(code: int) -> None:
    """A broker restarting is asked again later, not taken for a deleted topic."""
    assert change_of("source", "events", BEFORE, _error(code), True) is None


def test_the_watch_asks_every_interval_and_stops_with_healthz_unhealthy_first() -> None:
    """A change found by a tick makes /healthz unhealthy at once, then stops the loop."""
    watch, admin, clock, health = _watch()
    asked = admin.asked
    watch.tick()
    assert admin.asked == asked  # not due yet
    clock.now += WATCH_INTERVAL_S
    admin.state["purposes"] = _error(KafkaError.UNKNOWN_TOPIC_OR_PART)
    watch.tick()  # asks
    assert admin.asked == asked + 1
    watch.tick()  # one "unknown" is not believed yet: asks again at once
    assert admin.asked == asked + 2
    assert health.alive().ok
    with pytest.raises(WorkerStopError, match="ledger topic 'purposes' was deleted"):
        watch.tick()  # the second answer in a row
    assert not health.alive().ok
    assert "was deleted" in str(health.alive().detail["fatal"])


def test_one_unknown_answer_is_not_a_deletion() -> None:
    """A broker whose metadata lags may call a live topic unknown once: the commit waits
    and the worker goes on when the next answer finds the topic."""
    watch, admin, _, health = _watch()
    admin.state["audience"] = _error(KafkaError.UNKNOWN_TOPIC_OR_PART)
    assert not watch.confirm()  # put off, not stopped
    admin.state["audience"] = TopicState("id-audience", 4)
    assert watch.confirm()
    admin.state["audience"] = _error(KafkaError.UNKNOWN_TOPIC_OR_PART)
    assert not watch.confirm()
    with pytest.raises(WorkerStopError, match="sink topic 'audience' was deleted"):
        watch.confirm()  # twice in a row
    assert not health.alive().ok


def test_an_answer_that_never_comes_is_asked_again() -> None:
    """A description left pending (a broker away) is given up, and asked again."""
    watch, admin, clock, _ = _watch()
    admin.hold = True
    clock.now += WATCH_INTERVAL_S
    watch.tick()
    asked = admin.asked
    clock.now += DESCRIBE_TIMEOUT_S + 1
    watch.tick()
    assert admin.asked == asked + 1


def test_output_growth_is_logged_and_becomes_the_new_layout() -> None:
    """Partitions added to an output change nothing decided: no stop, now or later."""
    watch, admin, clock, health = _watch()
    admin.state["audience"] = TopicState("id-audience", 8)
    assert watch.confirm()
    clock.now += WATCH_INTERVAL_S
    watch.tick()
    watch.tick()
    assert health.alive().ok and watch.change is None


def test_the_commit_gate_confirms_puts_off_and_stops() -> None:
    """confirm: True when every topic answered unchanged; False without an answer or
    with a transient error (the commit waits); a change raises."""
    watch, admin, _, _ = _watch()
    assert watch.confirm()
    admin.state["events"] = _error(KafkaError._TRANSPORT)
    assert not watch.confirm()
    admin.state["events"] = TopicState("id-events", 6)
    with pytest.raises(WorkerStopError, match="source topic 'events' now has 6 partition"):
        watch.confirm()
    with pytest.raises(WorkerStopError):
        watch.tick()  # once changed, always stopping


def test_start_refuses_topics_it_cannot_describe_or_that_are_not_co_partitioned() -> None:
    """The layout taken at start must itself be usable."""
    admin, clock = _Admin(), _Clock()
    admin.state["purposes"] = TopicState("id-purposes", 6)
    with pytest.raises(WorkerStopError, match="must be co-partitioned"):
        TopicWatch(admin, TOPICS, True, Health(clock, 30.0), clock, sleep=_no_sleep).start()
    admin.state["purposes"] = _error(KafkaError.UNKNOWN_TOPIC_OR_PART)
    asked = admin.asked
    with pytest.raises(WorkerStopError, match="was deleted"):
        TopicWatch(admin, TOPICS, True, Health(clock, 30.0), clock, sleep=_no_sleep).start()
    assert admin.asked - asked == START_ATTEMPTS  # asked again before believing it
