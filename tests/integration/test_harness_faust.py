"""A faust app with ``processing_guarantee="exactly_once"`` against the local broker.

faust-streaming 0.15.3 begins one transaction per assigned source partition and commits
the consumed offsets in it, but ``Topic.send`` to an output topic the app does not
consume picks no transactional producer (faust-streaming/faust#177): the consumer has no
metadata for that topic, so ``TransactionManager.send`` gets no partition and falls back
to the plain producer. The first test pins that behaviour down; the second shows the
pattern that does put output records into the source partition's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

import faust
from aiokafka import AIOKafkaProducer

from enforcer.testing.consume import end_offsets, read_committed
from enforcer.testing.faust_app import running_app
from enforcer.testing.topics import TopicFactory

RECORDS = 50

# Sends one output record for an input event: (app, sink topic, event) -> awaitable.
Forward = Callable[[faust.App, faust.TopicT, faust.EventT[bytes]], Awaitable[object]]


async def forward_with_topic_send(
    app: faust.App, sink: faust.TopicT, event: faust.EventT[bytes]
) -> object:
    """The obvious way: ``Topic.send`` (outside any transaction, see module docstring)."""
    return await sink.send(key=event.key, value=event.value)


async def forward_in_source_transaction(
    app: faust.App, sink: faust.TopicT, event: faust.EventT[bytes]
) -> object:
    """Send through the transactional producer that faust opened for the event's source
    partition, the one whose transaction also commits the source offset."""
    source = event.message.tp
    group = app.assignor.group_for_topic(source.topic)
    transactional_id = f"{app.conf.id}-{group}-{source.partition}"
    return await app.producer.send(
        sink.get_topic_name(),
        event.message.key,
        event.message.value,
        None,
        None,
        None,
        transactional_id=transactional_id,
    )


def build_forwarding_app(
    app_id: str, bootstrap: str, *, source: str, sink: str, datadir: Path, forward: Forward
) -> faust.App:
    """A faust app that copies every record of ``source`` to ``sink``, key and value
    unchanged, with ``processing_guarantee="exactly_once"``."""
    app = faust.App(
        app_id,
        broker=f"kafka://{bootstrap}",
        processing_guarantee="exactly_once",
        datadir=str(datadir),
        store="memory://",
        web_enabled=False,
        topic_replication_factor=1,
        topic_partitions=1,
        consumer_auto_offset_reset="earliest",
        # Commit (and so end each transaction) often: read_committed readers wait for it.
        broker_commit_interval=0.5,
    )
    source_topic = app.topic(source, key_type=bytes, value_type=bytes, value_serializer="raw")
    sink_topic = app.topic(sink, key_type=bytes, value_type=bytes, value_serializer="raw")

    async def copy(stream: faust.StreamT[bytes]) -> None:
        async for event in stream.events():
            await forward(app, sink_topic, event)

    app.agent(source_topic, name=f"{app_id}.copy")(copy)
    return app


async def _produce(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for index in range(count):
            await producer.send(topic, key=b"subject-%d" % (index % 7), value=b"record-%d" % index)
        await producer.flush()
    finally:
        await producer.stop()


async def _run_copy(
    bootstrap: str, new_topic: TopicFactory, datadir: Path, forward: Forward
) -> tuple[list[bytes], int]:
    """Run a copying app over RECORDS records; return the values a read_committed
    consumer sees in the sink and the sum of the sink's end offsets."""
    source = await new_topic("harness-faust-in", partitions=3)
    sink = await new_topic("harness-faust-out", partitions=3)
    app_id = f"harness-faust-{uuid.uuid4().hex[:12]}"
    app = build_forwarding_app(
        app_id, bootstrap, source=source, sink=sink, datadir=datadir, forward=forward
    )
    async with running_app(app):
        await _produce(bootstrap, source, RECORDS)
        records = await read_committed(bootstrap, sink, expected=RECORDS, timeout_s=60)
    values = [record.value for record in records if record.value is not None]
    return values, sum((await end_offsets(bootstrap, sink)).values())


async def test_faust_topic_send_writes_outside_transactions(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """With exactly_once, ``Topic.send`` to a topic the app does not consume still
    delivers every record, but without transactions: no commit markers in the sink.
    (If this starts failing, faust has fixed faust-streaming/faust#177.)"""
    values, end_offset_sum = await _run_copy(
        kafka_bootstrap, new_topic, tmp_path, forward_with_topic_send
    )

    assert sorted(values) == sorted(b"record-%d" % index for index in range(RECORDS))
    assert end_offset_sum == RECORDS


async def test_exactly_once_faust_app_forwards_each_record_once_in_transactions(
    kafka_bootstrap: str, new_topic: TopicFactory, tmp_path: Path
) -> None:
    """Sent through the source partition's transactional producer, every record arrives
    in the sink exactly once for a read_committed consumer, and the sink holds commit
    markers: the records were written in transactions."""
    values, end_offset_sum = await _run_copy(
        kafka_bootstrap, new_topic, tmp_path, forward_in_source_transaction
    )

    assert sorted(values) == sorted(b"record-%d" % index for index in range(RECORDS))
    assert end_offset_sum > RECORDS
