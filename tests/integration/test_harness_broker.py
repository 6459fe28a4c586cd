"""LocalKafka restarts a broker on the same address with its data intact."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from enforcer.testing.consume import read_committed
from enforcer.testing.kafka_broker import LocalKafka
from enforcer.testing.topics import create_topics, unique_topic_name


async def _produce_one(bootstrap: str, topic: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value)
    finally:
        await producer.stop()


async def test_restart_and_crash_restart_keep_address_topics_and_records(
    private_kafka: LocalKafka,
) -> None:
    """After a clean restart and after a SIGKILL and restart, the broker answers on the
    same bootstrap address and still holds the topic and the records written before."""
    bootstrap = private_kafka.bootstrap_servers
    topic = unique_topic_name("harness-restart")
    await create_topics(bootstrap, [topic], partitions=2)
    await _produce_one(bootstrap, topic, b"before-restart")

    private_kafka.restart()
    assert private_kafka.is_running()
    assert private_kafka.bootstrap_servers == bootstrap
    await _produce_one(bootstrap, topic, b"after-restart")

    private_kafka.restart(crash=True)
    assert private_kafka.bootstrap_servers == bootstrap

    records = await read_committed(bootstrap, topic, expected=2)
    assert sorted(record.value or b"" for record in records) == [
        b"after-restart",
        b"before-restart",
    ]

    private_kafka.stop()
    assert not private_kafka.is_running()
