"""The generated stream every pipeline drains, and the producers that write it.

Values come from :func:`enforcer.demo.sample.sample_values`: ~600-byte identity events with
three identifiers (email, phone, device id), 20% of them with a security-only phone
number (the enforcer redacts it; in one such event out of ten every identifier is
security-only and the enforcer drops the record), none malformed, keyed by account
(``subject_id``), so the default partitioner spreads them over the partitions by
account. Every pipeline configuration gets its own copy of the same records in a topic
of its own.

The paced producer stamps each record with the wall-clock time it hands it to the client, in the
header :data:`SENT_HEADER` (microseconds since the epoch, ASCII). Every pipeline here keeps input
headers (the enforcer by its contract, docs/contract.md), so the stamp reaches the sink with the
record."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter, generate_key, key_from_text
from enforcer.core.policy.load import load_policy
from enforcer.core.step import InputRecord, Source, Step
from enforcer.demo.sample import sample_values, subject_key

SENT_HEADER = "bench.sent-us"
SECURITY_ONLY_SHARE = 0.2

# Seeds of the backlog, the latency phase and the memory backlog: different events,
# same shape.
BACKLOG_SEED = 2019
PACED_SEED = 2020
MEMORY_SEED = 2021


@dataclass(frozen=True)
class Record:
    """One input record: key (the account) and value (the event JSON)."""

    key: bytes | None
    value: bytes


def generate(count: int, *, seed: int = BACKLOG_SEED) -> list[Record]:
    """``count`` identity events keyed by account."""
    values = sample_values(
        count, seed=seed, security_only_share=SECURITY_ONLY_SHARE, invalid_share=0.0
    )
    return [Record(subject_key(value), value) for value in values]


def with_stable_identifiers(records: Sequence[Record]) -> list[Record]:
    """``records`` with each account's identifiers (values, purposes and flags) those of
    its first event in ``records``; everything else of each event (its id, time,
    context) as it was. Events without a subject are kept as they are."""
    first: dict[str, Any] = {}
    steady = []
    for record in records:
        event = orjson.loads(record.value)
        subject = event.get("subject_id") if isinstance(event, dict) else None
        if not isinstance(subject, str):
            steady.append(record)
            continue
        event["identifiers"] = first.setdefault(subject, event["identifiers"])
        steady.append(Record(record.key, orjson.dumps(event)))
    return steady


def forwarded_by_enforcer(records: Sequence[Record]) -> int:
    """How many of ``records`` the enforcer's default policy forwards to the sink (the
    others are dropped); the pass-throughs forward every one."""
    step = Step(load_policy(None), Fingerprinter(key_from_text(generate_key())), SystemClock())
    return sum(
        step(InputRecord(r.key, r.value, (), Source("bench", 0, i))).forward_value is not None
        for i, r in enumerate(records)
    )


def mean_value_bytes(records: Sequence[Record]) -> float:
    """The mean value size, in bytes."""
    return sum(len(r.value) for r in records) / max(len(records), 1)


async def produce_backlog(bootstrap: str, topic: str, records: Sequence[Record]) -> float:
    """Write ``records`` as fast as the client can; return the seconds it took.

    Not measured as a result: the backlog only has to be there before a pipeline starts.
    """
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=256 * 1024
    )
    await producer.start()
    started = time.monotonic()
    try:
        deliveries = [
            await producer.send(topic, value=record.value, key=record.key) for record in records
        ]
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
    return time.monotonic() - started


async def produce_paced(
    bootstrap: str, topic: str, records: Sequence[Record], *, per_second: float
) -> None:
    """Write ``records`` at about ``per_second``, each stamped with its send time."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=0)
    await producer.start()
    try:
        started = time.monotonic()
        deliveries = []
        for index, record in enumerate(records):
            delay = started + index / per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            stamp = str(time.time_ns() // 1000).encode()
            deliveries.append(
                await producer.send(
                    topic, value=record.value, key=record.key, headers=[(SENT_HEADER, stamp)]
                )
            )
        await asyncio.gather(*deliveries)
    finally:
        await producer.stop()
