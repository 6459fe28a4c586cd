"""Topic helpers for tests against a real broker: unique names, create, delete.

The broker used by the tests refuses to create topics on first use
(``auto.create.topics.enable=false``), so every test creates what it needs and gets a
name no other test uses.
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic

# Kafka error codes that deletion may meet without anything being wrong.
_UNKNOWN_TOPIC_OR_PARTITION = 3
_INVALID_CHARS = re.compile(r"[^a-zA-Z0-9._-]+")


class TopicAdminError(RuntimeError):
    """The broker refused to create or delete a topic (the message names the error code)."""


class TopicFactory(Protocol):
    """Creates a topic with a unique name and returns the name (the ``new_topic`` fixture)."""

    async def __call__(self, prefix: str = "test", partitions: int = 1) -> str: ...


def unique_topic_name(prefix: str = "test") -> str:
    """Return ``<prefix>-<12 hex digits>``, with characters Kafka refuses replaced by ``-``."""
    clean = _INVALID_CHARS.sub("-", prefix).strip("-") or "test"
    return f"{clean[:200]}-{uuid.uuid4().hex[:12]}"


async def create_topics(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int = 1,
    *,
    configs: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Create topics (replication factor 1) and wait until each has a leader for every
    partition, so producers and consumers can use them right away.

    Raises :class:`TopicAdminError` when the broker refuses one, including when it exists.
    """
    topics = list(names)
    if not topics:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        response = await admin.create_topics(
            [NewTopic(name, partitions, 1, topic_configs=dict(configs or {})) for name in topics],
            timeout_ms=int(timeout_s * 1000),
        )
        _raise_for_errors("create", response.to_object()["topic_errors"], ignore=())
        await _wait_until_led(admin, topics, partitions, timeout_s)
    finally:
        await admin.close()


async def delete_topics(
    bootstrap_servers: str, names: Iterable[str], *, timeout_s: float = 30.0
) -> None:
    """Delete topics; topics that do not exist (any more) are not an error."""
    topics = list(names)
    if not topics:
        return
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        response = await admin.delete_topics(topics, timeout_ms=int(timeout_s * 1000))
        _raise_for_errors(
            "delete",
            response.to_object()["topic_error_codes"],
            ignore=(_UNKNOWN_TOPIC_OR_PARTITION,),
        )
    finally:
        await admin.close()


async def add_partitions(
    bootstrap_servers: str, name: str, total: int, *, timeout_s: float = 30.0
) -> None:
    """Grow ``name`` to ``total`` partitions, as an operator does, and wait until every
    partition has a leader (producers started afterwards use the new layout)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        response = await admin.create_partitions(
            {name: NewPartitions(total)}, timeout_ms=int(timeout_s * 1000)
        )
        _raise_for_errors("grow", response.to_object()["topic_errors"], ignore=())
        await _wait_until_led(admin, [name], total, timeout_s)
    finally:
        await admin.close()


async def wait_until_deleted(
    bootstrap_servers: str, names: Iterable[str], *, timeout_s: float = 30.0
) -> None:
    """Wait until the broker describes none of ``names`` any more (deletion is
    asynchronous: the call returns before the broker has forgotten the topic)."""
    topics = list(names)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            described = await admin.describe_topics(topics)
            if all(t["error_code"] == _UNKNOWN_TOPIC_OR_PARTITION for t in described):
                return
            if time.monotonic() > deadline:
                raise TopicAdminError(f"topics still described after {timeout_s}s: {topics}")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


def create_topics_sync(
    bootstrap_servers: str,
    names: Iterable[str],
    partitions: int = 1,
    *,
    configs: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> None:
    """:func:`create_topics` for synchronous code; not callable inside a running loop."""
    asyncio.run(
        create_topics(bootstrap_servers, names, partitions, configs=configs, timeout_s=timeout_s)
    )


def delete_topics_sync(
    bootstrap_servers: str, names: Iterable[str], *, timeout_s: float = 30.0
) -> None:
    """:func:`delete_topics` for synchronous code; not callable inside a running loop."""
    asyncio.run(delete_topics(bootstrap_servers, names, timeout_s=timeout_s))


def _raise_for_errors(
    action: str, results: list[dict[str, Any]], *, ignore: tuple[int, ...]
) -> None:
    failures = [
        f"{result['topic']}: error {result['error_code']}"
        + (f" ({result['error_message']})" if result.get("error_message") else "")
        for result in results
        if result["error_code"] not in (0, *ignore)
    ]
    if failures:
        raise TopicAdminError(f"could not {action} topics: " + "; ".join(failures))


async def _wait_until_led(
    admin: AIOKafkaAdminClient, topics: list[str], partitions: int, timeout_s: float
) -> None:
    # CreateTopics answers once the controller has committed the topic; the broker's
    # metadata cache, which clients read, catches up a moment later.
    deadline = time.monotonic() + timeout_s
    while True:
        described = await admin.describe_topics(topics)
        ready = {
            topic["topic"]
            for topic in described
            if topic["error_code"] == 0
            and len(topic["partitions"]) == partitions
            and all(partition["leader"] >= 0 for partition in topic["partitions"])
        }
        if ready >= set(topics):
            return
        if time.monotonic() > deadline:
            missing = sorted(set(topics) - ready)
            raise TopicAdminError(f"topics without leaders after {timeout_s}s: {missing}")
        await asyncio.sleep(0.1)
