"""Seeding exposure where the workers will look: a subject new to exposure goes to the
partition its source records are in, whichever of the common partitioners their
producers used. The source records here are placed by librdkafka itself (its
``consistent_random``, ``murmur2_random`` and ``fnv1a_random``), and the test compares
partitions with where the broker stored them, not with our own hash functions."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, Producer

from enforcer.exposure.model import SubjectExposure, parse_exposure_record
from enforcer.remediate.history import SinkKind, kind_of
from enforcer.remediate.plan import read_plan
from enforcer.testing.topics import TopicFactory, unique_topic_name

from .conftest import Cli, read_sink
from .test_remediate import _produce_forwarded

SUBJECTS = 40


def _produce_source(
    bootstrap: str, topic: str, partitioner: str | None, partitions: int
) -> dict[str, int]:
    """One source record per subject, keyed by its id, placed by librdkafka's
    ``partitioner`` (round robin over the partitions when ``None``); returns where the
    broker stored each one."""
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": partitioner or "random"})
    stored: dict[str, int] = {}

    def delivered(error: KafkaError | None, message: Message[bytes, bytes]) -> None:
        assert error is None, error
        key, partition = message.key(), message.partition()
        assert key is not None and partition is not None
        stored[key.decode()] = partition

    for index in range(SUBJECTS):
        subject = f"acct-{index:05d}"
        where = -1 if partitioner else index % partitions  # -1: the partitioner decides
        producer.produce(topic, b"{}", subject.encode(), where, on_delivery=delivered)
    assert producer.flush(30) == 0
    return stored


async def _plan_and_apply(
    kafka_bootstrap: str, tmp_path: Path, cli: Cli, fixed_policy: Path, sink: str, source: str,
    exposure: str,
) -> tuple[int, str, str]:  # fmt: skip
    path = tmp_path / "plan.json"
    status, _, err = await cli(
        "remediate", "plan", "--with-exposure", "--policy", str(fixed_policy),
        "--sink-topic", sink, "--out", str(path),
    )  # fmt: skip
    assert status == 0, err
    assert len(read_plan(path).exposure or ()) == SUBJECTS
    return await cli(
        "remediate", "apply", str(path), "--exposure-topic", exposure, "--source-topic", source,
        "--group-id", unique_topic_name("remediate-group"),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("librdkafka_partitioner", "found"),
    [("consistent_random", "crc32"), ("murmur2_random", "murmur2"), ("fnv1a_random", "fnv1a")],
)
async def test_exposure_is_seeded_where_the_source_records_of_each_subject_are(
    kafka_bootstrap: str, new_topic: TopicFactory, compacted_topic: TopicFactory,
    tmp_path: Path, cli: Cli, fixed_policy: Path, librdkafka_partitioner: str, found: str,
) -> None:  # fmt: skip
    sink = await new_topic("remediate-sink", partitions=3)
    source = await new_topic("remediate-source", partitions=5)
    exposure = await compacted_topic("remediate-exposure", partitions=5)
    await _produce_forwarded(kafka_bootstrap, sink, SUBJECTS, datetime.now(UTC), 0)
    stored = await asyncio.to_thread(
        _produce_source, kafka_bootstrap, source, librdkafka_partitioner, 5
    )
    assert len(set(stored.values())) > 1  # spread: a partitioner that fits says something

    status, out, err = await _plan_and_apply(
        kafka_bootstrap, tmp_path, cli, fixed_policy, sink, source, exposure
    )
    assert status == 0, err
    assert f"exposure: seeding where {found} puts subject ids" in err, err
    assert f"exposure: {SUBJECTS} subjects' values seeded" in out, out
    seeded = {}
    for record in await asyncio.to_thread(read_sink, kafka_bootstrap, exposure):
        parsed = parse_exposure_record(record.key, record.value)
        assert isinstance(parsed, SubjectExposure)
        seeded[parsed.subject_id] = record.partition
    assert seeded == stored


async def test_a_source_no_known_partitioner_placed_stops_the_apply_before_it_writes(
    kafka_bootstrap: str, new_topic: TopicFactory, compacted_topic: TopicFactory,
    tmp_path: Path, cli: Cli, fixed_policy: Path,
) -> None:  # fmt: skip
    """Records placed round robin: seeding by subject id could not match them, so the
    apply says so in one line and writes nothing, retractions included; naming the
    partitioner goes on (the operator knows better)."""
    sink = await new_topic("remediate-sink", partitions=3)
    source = await new_topic("remediate-source", partitions=5)
    exposure = await compacted_topic("remediate-exposure", partitions=5)
    await _produce_forwarded(kafka_bootstrap, sink, SUBJECTS, datetime.now(UTC), 0)
    await asyncio.to_thread(_produce_source, kafka_bootstrap, source, None, 5)

    status, out, err = await _plan_and_apply(
        kafka_bootstrap, tmp_path, cli, fixed_policy, sink, source, exposure
    )
    assert status == 2, (out, err)
    assert f"latest keyed records of {source} are not where murmur2, crc32" in err, err
    assert len(err.strip().splitlines()) == 1, err
    sink_records = await asyncio.to_thread(read_sink, kafka_bootstrap, sink)
    assert not [r for r in sink_records if kind_of(r.headers) is SinkKind.RETRACTION]
    assert await asyncio.to_thread(read_sink, kafka_bootstrap, exposure) == []
