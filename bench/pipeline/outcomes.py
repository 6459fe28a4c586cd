"""The independent check of every run: did each input get exactly one outcome?

After a pipeline has committed its whole input, every topic is read from the start as a
downstream consumer would (``read_committed``, a consumer of its own that commits
nothing), and each output record is traced back to its input:

- a sink record by the ``event_id`` in its value (a redacted record keeps it; a
  pass-through copies the value whole);
- a violation by its ``source`` (topic, partition, offset), and counts as the input's
  outcome only when its ``action`` is ``dropped`` (a ``redacted`` one accompanies a sink
  record);
- a dead letter by its ``enforcer.source.*`` headers.

An input with no outcome is *missing*; every outcome beyond the first of an input, and
every violation or dead letter written twice for the same input, is a *duplicate*; an
output that traces back to no input is *unexpected*. The check knows nothing of what
the policy should decide: it counts, it does not compare contents
(tests/integration/live compares those).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import orjson
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from enforcer.core.step import Headers
from enforcer.testing.worker import EnforcerTopics

from .peer_step import as_headers

Coordinates = tuple[int, int]
"""An input's partition and offset."""


@dataclass(frozen=True)
class OutcomeCount:
    """What the output topics say happened to the inputs."""

    inputs: int
    forwarded: int
    dropped: int
    deadlettered: int
    missing: int
    duplicates: int
    unexpected: int
    sink_records: int
    violation_records: int
    deadletter_records: int
    read_s: float

    @property
    def exactly_once(self) -> bool:
        """Every input had exactly one outcome, and nothing else was written."""
        return self.missing == 0 and self.duplicates == 0 and self.unexpected == 0

    def as_dict(self) -> dict[str, Any]:
        """For the JSON results."""
        return asdict(self)


class ReadBack(NamedTuple):
    """One record read back: where it is, its value and headers."""

    partition: int
    offset: int
    value: bytes | None
    headers: Headers


EventIdOf = Callable[[bytes | None], object]
"""A value's event id (framed values need their schema to be read)."""


def count_outcomes(
    bootstrap: str,
    topics: EnforcerTopics,
    partitions: int,
    *,
    timeout_s: float = 120.0,
    event_id_of: EventIdOf | None = None,
) -> OutcomeCount:
    """Read the source and the three output topics to their ends and count (blocking:
    run it in a thread). ``event_id_of`` reads a value's event id (default: the
    ``event_id`` of a JSON object)."""
    started = time.monotonic()
    read = _read(
        bootstrap,
        [topics.source, topics.sink, topics.violations, topics.deadletter],
        partitions,
        timeout_s,
    )
    return tally(topics, read, read_s=time.monotonic() - started, event_id_of=event_id_of)


def tally(
    topics: EnforcerTopics,
    read: Mapping[str, Sequence[ReadBack]],
    *,
    read_s: float = 0.0,
    event_id_of: EventIdOf | None = None,
) -> OutcomeCount:
    """Trace every output record of ``read`` (records by topic) back to its input."""
    event_id = event_id_of or json_event_id
    inputs: dict[str, Coordinates] = {}
    positions: set[Coordinates] = set()
    for message in read[topics.source]:
        where = (message.partition, message.offset)
        positions.add(where)
        found = event_id(message.value)
        if isinstance(found, str):
            inputs[found] = where
    outcomes: Counter[Coordinates] = Counter()
    kinds: Counter[str] = Counter()
    unexpected = 0
    sink = 0
    for message in read[topics.sink]:
        sink += 1
        where_from = inputs.get(str(event_id(message.value)))
        if where_from is None:
            unexpected += 1
            continue
        outcomes[where_from] += 1
        kinds["forwarded"] += 1
    violations: Counter[Coordinates] = Counter()
    for message in read[topics.violations]:
        event = _json(message.value)
        source = event.get("source") or {}
        where = (source.get("partition", -1), source.get("offset", -1))
        if source.get("topic") != topics.source or where not in positions:
            unexpected += 1
            continue
        violations[where] += 1
        if event.get("action") == "dropped":
            outcomes[where] += 1
            kinds["dropped"] += 1
    dead: Counter[Coordinates] = Counter()
    for message in read[topics.deadletter]:
        headers = dict(message.headers)
        try:
            topic = (headers["enforcer.source.topic"] or b"").decode()
            where = (
                int(headers["enforcer.source.partition"] or b""),
                int(headers["enforcer.source.offset"] or b""),
            )
        except (KeyError, ValueError):
            unexpected += 1
            continue
        if topic != topics.source or where not in positions:
            unexpected += 1
            continue
        dead[where] += 1
        outcomes[where] += 1
        kinds["deadlettered"] += 1
    repeated = sum(n - 1 for n in violations.values() if n > 1)
    repeated += sum(n - 1 for n in dead.values() if n > 1)
    return OutcomeCount(
        inputs=len(positions),
        forwarded=kinds["forwarded"],
        dropped=kinds["dropped"],
        deadlettered=kinds["deadlettered"],
        missing=sum(1 for where in positions if outcomes[where] == 0),
        duplicates=sum(n - 1 for n in outcomes.values() if n > 1) + repeated,
        unexpected=unexpected,
        sink_records=sink,
        violation_records=sum(violations.values()),
        deadletter_records=sum(dead.values()),
        read_s=round(read_s, 2),
    )


def _read(
    bootstrap: str, topics: Sequence[str], partitions: int, timeout_s: float
) -> dict[str, list[ReadBack]]:
    """Every committed record of ``topics``, from the start to the end of each partition
    as librdkafka reports it to a ``read_committed`` consumer (the last stable offset)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-check-{uuid.uuid4().hex}",  # never joined nor committed
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": "read_committed",
            "fetch.wait.max.ms": 50,
        }
    )
    found: dict[str, list[ReadBack]] = {topic: [] for topic in topics}
    try:
        consumer.assign(
            [TopicPartition(t, p, OFFSET_BEGINNING) for t in topics for p in range(partitions)]
        )
        at_end: set[tuple[str, int]] = set()
        deadline = time.monotonic() + timeout_s
        while len(at_end) < len(topics) * partitions:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topics}: end not reached in {timeout_s:.0f}s")
            for message in consumer.consume(10_000, 0.2):
                error = message.error()
                topic = message.topic() or ""
                if error is None:
                    found[topic].append(
                        ReadBack(
                            message.partition() or 0,
                            message.offset() or 0,
                            message.value(),
                            as_headers(message.headers()),
                        )
                    )
                elif error.code() == KafkaError._PARTITION_EOF:
                    at_end.add((topic, message.partition() or 0))
                else:
                    raise RuntimeError(f"{topic}: {error}")
    finally:
        consumer.close()
    return found


def json_event_id(value: bytes | None) -> object:
    """The ``event_id`` of a JSON object (``None`` for anything else)."""
    return _json(value).get("event_id")


def _json(value: bytes | None) -> dict[str, Any]:
    try:
        document = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return {}
    return document if isinstance(document, dict) else {}
