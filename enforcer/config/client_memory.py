"""How much memory the worker's Kafka clients may hold: the consumer's read-ahead and
the producer's queue, from ``ENFORCER_*`` settings (docs/operations.md: memory).

librdkafka's defaults suit a client that has memory to spare: the consumer reads up
to 64 MiB ahead, 100,000 records per partition, and the producer queues up to 1 GiB.
The engine decides a batch at a time and commits every second, so a few MiB ahead
keeps it busy, and the defaults here keep one worker's memory small and predictable.

The client-properties file (``--kafka-config``) may set the same librdkafka properties,
as it always could: a value in the file stands (it is merged under the settings for
every client), and a setting given explicitly as well must say the same, else the
worker refuses to start naming both. A setting left at its default yields to the file.
"""

from __future__ import annotations

from collections.abc import Mapping

from enforcer.config.client_properties import ClientPropertiesError
from enforcer.config.kafka_security import client_properties
from enforcer.config.settings import EnforcerSettings

CONSUMER_BOUNDS: Mapping[str, str] = {
    "queued.max.messages.kbytes": "consumer_prefetch_kbytes",
    "queued.min.messages": "consumer_prefetch_records",
    "fetch.max.bytes": "consumer_fetch_max_bytes",
}
"""The consumer's librdkafka properties bounding its memory, and their settings."""
CONSUMER_FIXED: Mapping[str, int] = {"fetch.queue.backoff.ms": 10}
"""What the consumer needs besides, unless the file says otherwise: a partition whose
read-ahead is full is fetched again after this long (librdkafka waits 1 s by default,
which a small read-ahead drains long before: the engine would wait for records)."""
PRODUCER_BOUNDS: Mapping[str, str] = {
    "queue.buffering.max.kbytes": "producer_queue_kbytes",
    "queue.buffering.max.messages": "producer_queue_records",
}
"""The output producer's, and their settings."""


def memory_bounds(
    settings: EnforcerSettings, bounds: Mapping[str, str], fixed: Mapping[str, int] | None = None
) -> dict[str, int]:
    """The properties of ``bounds`` the settings set, and those of ``fixed``: every one
    the client-properties file leaves unset. Raises :class:`ClientPropertiesError` for
    one set both in the file and explicitly by its setting, differently."""
    in_file = client_properties(settings)
    own = {name: value for name, value in (fixed or {}).items() if name not in in_file}
    for name, field in bounds.items():
        value: int = getattr(settings, field)
        given = in_file.get(name)
        if given is None:
            own[name] = value
        elif field in settings.model_fields_set and given.strip() != str(value):
            raise ClientPropertiesError(
                f"{name} is set both by ENFORCER_{field.upper()} and in "
                f"{settings.kafka_config}, differently: keep one"
            )
    return own


def check_memory_bounds(settings: EnforcerSettings) -> None:
    """Refuse, before anything starts, a bound set both in the file and by its setting,
    differently (:class:`ClientPropertiesError`)."""
    memory_bounds(settings, CONSUMER_BOUNDS)
    memory_bounds(settings, PRODUCER_BOUNDS)
