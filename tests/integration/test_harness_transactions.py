"""The local broker supports what exactly-once processing relies on: transactions."""

from __future__ import annotations

import uuid

from aiokafka import AIOKafkaProducer

from enforcer.testing.consume import read_committed, read_topic
from enforcer.testing.topics import TopicFactory


async def test_read_committed_sees_committed_batch_and_not_aborted_one(
    kafka_bootstrap: str, new_topic: TopicFactory
) -> None:
    """A committed transaction's records are visible to a read_committed consumer; an
    aborted transaction's records are not, even though they were written to the log."""
    topic = await new_topic("harness-tx", partitions=2)
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka_bootstrap,
        transactional_id=f"harness-tx-{uuid.uuid4().hex}",
        enable_idempotence=True,
    )
    await producer.start()
    try:
        async with producer.transaction():
            for index in range(5):
                await producer.send(topic, key=b"k%d" % index, value=b"committed-%d" % index)
        await producer.begin_transaction()
        for index in range(5):
            await producer.send(topic, key=b"k%d" % index, value=b"aborted-%d" % index)
        await producer.flush()
        await producer.abort_transaction()
        async with producer.transaction():
            await producer.send(topic, key=b"k9", value=b"committed-last")
    finally:
        await producer.stop()

    committed = await read_committed(kafka_bootstrap, topic, expected=6)
    everything = await read_topic(
        kafka_bootstrap, topic, expected=11, isolation_level="read_uncommitted"
    )

    committed_values = sorted(record.value or b"" for record in committed)
    all_values = [record.value or b"" for record in everything]
    assert committed_values == sorted(
        [b"committed-%d" % index for index in range(5)] + [b"committed-last"]
    )
    assert len([value for value in all_values if value.startswith(b"aborted-")]) == 5
