"""Check that the enforcer's topics exist, or create them when asked (SPEC §2)."""

from __future__ import annotations

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError, KafkaError

from enforcer.settings import EnforcerSettings


class TopicSetupError(RuntimeError):
    """The topics are not there, or Kafka cannot be reached (the message says which)."""


def _topics(settings: EnforcerSettings) -> dict[str, str]:
    return {
        "source": settings.source_topic,
        "sink": settings.sink_topic,
        "violations": settings.violations_topic,
        "dead-letter": settings.deadletter_topic,
        "metrics": settings.metrics_topic,
    }


async def ensure_topics(settings: EnforcerSettings) -> list[str]:
    """Raise unless every topic exists; with ``create_topics`` create the missing ones.

    Returns the names of the topics it created.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.bootstrap_servers, request_timeout_ms=15000
    )
    try:
        await admin.start()
    except KafkaConnectionError:
        raise TopicSetupError(
            f"cannot reach Kafka at {settings.bootstrap_servers} (ENFORCER_BOOTSTRAP_SERVERS)"
        ) from None
    try:
        existing = set(await admin.list_topics())
        missing = {role: name for role, name in _topics(settings).items() if name not in existing}
        if not missing:
            return []
        if not settings.create_topics:
            listed = ", ".join(f"{role} topic '{name}'" for role, name in missing.items())
            raise TopicSetupError(
                f"missing on {settings.bootstrap_servers}: {listed}; create them, "
                "or pass --create-topics (ENFORCER_CREATE_TOPICS=true)"
            )
        names = sorted(set(missing.values()))
        await admin.create_topics(
            [
                NewTopic(name, settings.topic_partitions, settings.topic_replication_factor)
                for name in names
            ]
        )
        return names
    except KafkaError as exc:
        raise TopicSetupError(f"Kafka refused the topic check: {type(exc).__name__}") from None
    finally:
        await admin.close()
