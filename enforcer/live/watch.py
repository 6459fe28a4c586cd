"""The worker's watch over the topics it depends on (docs/operations.md).

The client library does not tell a worker when a topic changes under it: a deleted
ledger shows as a warning every few seconds, a re-created one is read from its start
(or from the middle) without a word, and added partitions are noticed only at the next
metadata refresh, minutes later. A worker that went on would decide events against a
ledger it no longer follows, forwarding what a withdrawal written to the new layout
forbids. So the worker asks the broker itself, every few seconds, for each topic's id
and partition count, and stops (``/healthz`` unhealthy first, then one line naming the
topic and the change) when:

- any of its topics was deleted (two answers in a row say so: one broker's metadata
  can lag behind a topic created a moment ago), or re-created under the same name (a
  new topic id);
- with a ledger, the source or the ledger has a different partition count: the two
  are no longer co-partitioned, and keys moved between partitions.

A transaction also commits only after an answer asked for right before the commit
found every topic unchanged (:meth:`TopicWatch.confirm`, about 2 ms): what was decided
while a topic was already changing is aborted and decided again after the restart,
never committed, and a deleted output is named before a commit waits on it.
Partitions added to an output topic, or to the source without a ledger, change nothing
the worker decides: they are logged, not stopped for.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, NamedTuple, Protocol

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin._topic import TopicDescription

from enforcer.live.clients import DENIED, denied_cause, kafka_error
from enforcer.live.failures import WorkerStopError
from enforcer.live.health import Health

log = logging.getLogger("enforcer.watch")

WATCH_INTERVAL_S = 5.0
"""How often the topics are described: a change stops the worker well within 30 s."""
DESCRIBE_TIMEOUT_S = 10.0
"""How long one description may take before it is given up and asked again."""
CONFIRM_TIMEOUT_S = 5.0
"""How long a commit waits for its confirmation before it is put off to the next round."""
START_ATTEMPTS = 5
"""How often the layout is asked for at start (a second apart) while a topic does not
answer yet: a broker's metadata can lag behind a topic created a moment ago."""


class TopicState(NamedTuple):
    """What identifies a topic's layout: its id and its partition count."""

    topic_id: str
    partitions: int


CO_PARTITIONED = ("source", "ledger", "exposure")
"""The roles whose partition ``i`` holds the same subjects (keyed by subject id)."""

Answer = TopicState | KafkaError
"""A topic's description, or the error the broker answered instead."""


class Describer(Protocol):
    """The part of :class:`confluent_kafka.admin.AdminClient` the watch uses."""

    def describe_topics(
        self, topics: TopicCollection, *, request_timeout: float
    ) -> dict[str, Future[Any]]: ...


def change_of(role: str, name: str, before: TopicState, now: Answer, ledger: bool) -> str | None:
    """The one-line reason to stop for, or ``None`` when the answer changes nothing the
    worker decides. Transient errors (a broker restarting) are ``None`` too: the next
    description asks again. Pure."""
    if isinstance(now, KafkaError):
        if now.code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
            return (
                f"the {role} topic '{name}' was deleted ({now.name()}); "
                "re-create it, then restart the worker"
            )
        if now.code() in DENIED:
            return f"{denied_cause(now)} (describing the {role} topic '{name}')"
        return None
    if now.topic_id != before.topic_id:
        return (
            f"the {role} topic '{name}' was re-created (topic id {before.topic_id} -> "
            f"{now.topic_id}); restart the worker to follow the new topic"
        )
    if ledger and role in CO_PARTITIONED and now.partitions != before.partitions:
        return (
            f"the {role} topic '{name}' now has {now.partitions} partition(s), had "
            f"{before.partitions}: the source and its co-partitioned topics (ledger, "
            "exposure) no longer are (keys moved between partitions); give them the same "
            "count, then restart"
        )
    return None


def _answer(future: Future[Any], timeout_s: float | None) -> Answer:
    try:
        description: TopicDescription = future.result(timeout_s)
    except KafkaException as exc:
        return kafka_error(exc)
    return TopicState(str(description.topic_id), len(description.partitions))


def _transient(answer: Answer) -> bool:
    return isinstance(answer, KafkaError)


def _unknown(answer: Answer) -> bool:
    return isinstance(answer, KafkaError) and answer.code() == KafkaError.UNKNOWN_TOPIC_OR_PART


class TopicWatch:
    """Describes the worker's topics every :data:`WATCH_INTERVAL_S` and stops the worker
    on a change; confirms them before each commit."""

    def __init__(
        self,
        admin: Describer,
        topics: Mapping[str, str],
        ledger: bool,
        health: Health,
        monotonic: Callable[[], float],
        interval_s: float = WATCH_INTERVAL_S,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._admin = admin
        self._roles = {name: role for role, name in topics.items()}
        self._ledger = ledger
        self._health = health
        self._monotonic = monotonic
        self._interval_s = interval_s
        self._sleep = sleep
        self._baseline: dict[str, TopicState] = {}
        # Topics whose last answer said "unknown" once: one broker's metadata may lag, so
        # a deletion is believed on the second such answer in a row.
        self._unknown: set[str] = set()
        self._pending: dict[str, Future[Any]] | None = None
        self._asked_at = 0.0
        self.change: str | None = None
        """Why the worker must stop, once a change was seen."""

    def start(self) -> None:
        """Take the layout every later answer is compared with. Raises
        :class:`WorkerStopError` when a topic cannot be described, or the source and
        the ledger differ already (a change since the start-up check)."""
        for attempt in range(1, START_ATTEMPTS + 1):
            answers = self._ask(DESCRIBE_TIMEOUT_S)
            if answers is not None and not any(map(_transient, answers.values())):
                break
            if attempt < START_ATTEMPTS:
                self._sleep(1.0)
        if answers is None:
            raise WorkerStopError(
                f"the topics could not be described within {DESCRIBE_TIMEOUT_S:.0f} s"
            )
        for name, answer in answers.items():
            if isinstance(answer, KafkaError):
                role = self._roles[name]
                cause = change_of(role, name, TopicState("", 0), answer, self._ledger)
                raise WorkerStopError(
                    cause or f"cannot describe the {role} topic '{name}': {answer.name()}"
                )
            self._baseline[name] = answer
        self._asked_at = self._monotonic()
        by_role = {self._roles[name]: state for name, state in self._baseline.items()}
        for role in CO_PARTITIONED[1:]:
            state = by_role.get(role)
            if self._ledger and state and state.partitions != by_role["source"].partitions:
                raise WorkerStopError(
                    f"the {role} topic has {state.partitions} partition(s) and the "
                    f"source topic {by_role['source'].partitions}: they must be co-partitioned"
                )

    def tick(self) -> None:
        """Called every round of the loop: judge an answer that came, ask again when
        due. Raises :class:`WorkerStopError` once a change was seen."""
        now = self._monotonic()
        pending = self._pending
        if pending is not None:
            if all(future.done() for future in pending.values()):
                self._pending = None
                self._judge({name: _answer(f, 0) for name, f in pending.items()})
                if self._unknown:
                    self._asked_at = now - self._interval_s  # ask again at once
            elif now - self._asked_at > DESCRIBE_TIMEOUT_S:
                self._pending = None  # no answer (a broker away): ask again
        if self.change is not None:
            raise WorkerStopError(self.change)
        if self._pending is None and now - self._asked_at >= self._interval_s:
            self._pending = self._request()
            self._asked_at = now

    def confirm(self) -> bool:
        """Ask now whether every topic is as it was: True when each answered unchanged,
        False when an answer did not come (or was an error waiting may cure). Raises
        :class:`WorkerStopError` on a change."""
        if self.change is None:
            answers = self._ask(CONFIRM_TIMEOUT_S)
            if answers is None:
                return False
            self._judge(answers)
            if self.change is None:
                return not any(_transient(answer) for answer in answers.values())
        raise WorkerStopError(self.change)

    def _request(self) -> dict[str, Future[Any]]:
        return self._admin.describe_topics(
            TopicCollection(sorted(self._roles)), request_timeout=DESCRIBE_TIMEOUT_S
        )

    def _ask(self, timeout_s: float) -> dict[str, Answer] | None:
        """Every topic's answer, or ``None`` when they did not all come in time."""
        futures = self._request()
        try:
            return {name: _answer(future, timeout_s) for name, future in futures.items()}
        except FutureTimeout:
            return None

    def _judge(self, answers: Mapping[str, Answer]) -> None:
        for name, answer in answers.items():
            if not _unknown(answer):
                self._unknown.discard(name)
            elif name not in self._unknown:
                self._unknown.add(name)  # believed when the next answer says it too
                continue
            before = self._baseline[name]
            role = self._roles[name]
            cause = change_of(role, name, before, answer, self._ledger)
            if cause is not None:
                self.change = cause
                # Unhealthy first: /healthz says it before the worker has stopped.
                self._health.on_fatal(cause)
                return
            if isinstance(answer, TopicState) and answer.partitions != before.partitions:
                log.warning(
                    "the %s topic '%s' now has %d partition(s), had %d",
                    role,
                    name,
                    answer.partitions,
                    before.partitions,
                )
                self._baseline[name] = answer
