"""Test helpers shipped with the package, in the spirit of ``structlog.testing``.

- :mod:`enforcer.testing.kafka_broker`: :class:`LocalKafka`, a real single-node Kafka
  broker on 127.0.0.1, started and stopped through ``deploy/kafka/kafka.sh``.
- :mod:`enforcer.testing.schema_registry`: :class:`LocalSchemaRegistry`, a real schema
  registry (Apicurio, Confluent-compatible API) on 127.0.0.1, through
  ``deploy/registry/registry.sh``.
- :mod:`enforcer.testing.topics`: unique topic names and topic creation/deletion.
- :mod:`enforcer.testing.consume`: read a topic back (read_committed by default).

Nothing here is imported by the enforcer itself.
"""

from enforcer.testing.consume import ReadRecord, end_offsets, read_committed, read_topic
from enforcer.testing.kafka_broker import DEFAULT_KAFKA_VERSION, KafkaBrokerError, LocalKafka
from enforcer.testing.schema_registry import LocalSchemaRegistry, SchemaRegistryError
from enforcer.testing.topics import (
    TopicAdminError,
    TopicFactory,
    create_topics,
    create_topics_sync,
    delete_topics,
    delete_topics_sync,
    unique_topic_name,
)

__all__ = [
    "DEFAULT_KAFKA_VERSION",
    "KafkaBrokerError",
    "LocalKafka",
    "LocalSchemaRegistry",
    "ReadRecord",
    "SchemaRegistryError",
    "TopicAdminError",
    "TopicFactory",
    "create_topics",
    "create_topics_sync",
    "delete_topics",
    "delete_topics_sync",
    "end_offsets",
    "read_committed",
    "read_topic",
    "unique_topic_name",
]
