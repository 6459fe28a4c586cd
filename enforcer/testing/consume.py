"""Read what landed in a topic, the way a downstream consumer of the enforcer would."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Literal

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadRecord:
    """One record read back from a topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]


async def read_committed(
    bootstrap_servers: str,
    topic: str,
    *,
    expected: int,
    timeout_s: float = 30.0,
    settle_s: float = 1.0,
) -> list[ReadRecord]:
    """Read ``topic`` from the beginning as a downstream consumer with
    ``isolation_level="read_committed"`` does: records of aborted or still-open
    transactions are never returned. See :func:`read_topic` for the arguments."""
    return await read_topic(
        bootstrap_servers,
        topic,
        expected=expected,
        timeout_s=timeout_s,
        settle_s=settle_s,
        isolation_level="read_committed",
    )


async def read_topic(
    bootstrap_servers: str,
    topic: str,
    *,
    expected: int,
    timeout_s: float = 30.0,
    settle_s: float = 1.0,
    isolation_level: Literal["read_committed", "read_uncommitted"] = "read_committed",
) -> list[ReadRecord]:
    """Read every partition of ``topic`` from the beginning.

    Reads until ``expected`` records have arrived or ``timeout_s`` has passed, then keeps
    reading for ``settle_s`` more so that records beyond the expected ones (duplicates)
    show up in the result too. No consumer group is used and no offsets are committed.
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        isolation_level=isolation_level,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ReadRecord] = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < expected and time.monotonic() < deadline:
            records.extend(await _poll(consumer, timeout_ms=500))
        if len(records) < expected:
            # Shown with a failing test's logs: a short count is either the failure or a
            # caller that waits out its whole time-out for records that never come.
            log.warning(
                "read %s: %d of %d expected records after %.0f s",
                topic,
                len(records),
                expected,
                timeout_s,
            )
        settle_until = time.monotonic() + settle_s
        while time.monotonic() < settle_until:
            records.extend(await _poll(consumer, timeout_ms=int(settle_s * 1000)))
    finally:
        await consumer.stop()
    return records


async def end_offsets(
    bootstrap_servers: str,
    topic: str,
    *,
    isolation_level: Literal["read_committed", "read_uncommitted"] = "read_uncommitted",
) -> dict[int, int]:
    """The log end offset (high watermark) of each partition of ``topic``; with
    ``read_committed``, the last stable offset: where the first still-open transaction
    begins (so the two differ while a transaction holds records).

    Transaction markers take offsets too, so for a topic written in transactions the
    offsets add up to more than the number of records.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers, group_id=None, isolation_level=isolation_level
    )
    await consumer.start()
    try:
        consumer.assign(partitions)
        offsets = await consumer.end_offsets(partitions)
        return {tp.partition: int(offset) for tp, offset in offsets.items()}
    finally:
        await consumer.stop()


async def _poll(consumer: AIOKafkaConsumer, *, timeout_ms: int) -> list[ReadRecord]:
    batches = await consumer.getmany(timeout_ms=timeout_ms)
    return [
        ReadRecord(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=tuple(record.headers),
        )
        for batch in batches.values()
        for record in batch
    ]
