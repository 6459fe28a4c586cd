"""Check that the enforcer's topics exist, or create them when asked (docs/contract.md: topics).

Uses librdkafka's admin client, as the worker does, so a connection problem found
here (wrong address, refused credentials, untrusted certificate) is the one the
worker would meet, reported in one line before anything starts.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, TopicCollection
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._metadata import ClusterMetadata
from confluent_kafka.admin._resource import ResourceType
from confluent_kafka.cimpl import NewTopic

from enforcer.config.kafka_security import librdkafka_security
from enforcer.config.settings import EnforcerSettings
from enforcer.live.clients import ClientErrors, kafka_error

log = logging.getLogger("enforcer.admin")
TIMEOUT_S = 15.0


class TopicSetupError(RuntimeError):
    """The topics are not there, or Kafka cannot be reached (the message says which)."""


_AUTH_ERRORS = {KafkaError._AUTHENTICATION, KafkaError.SASL_AUTHENTICATION_FAILED}
_FINAL_ERRORS = {*_AUTH_ERRORS, KafkaError._SSL}


def why_unreachable(
    settings: EnforcerSettings,
    error: KafkaError | None,
    flags: str = "ENFORCER_BOOTSTRAP_SERVERS",
) -> str:
    """One line for a cluster that could not be reached, from the client's last error:
    refused credentials, failed TLS, or no answer (``flags``: where the address is set)."""
    where = settings.bootstrap_servers
    code = error.code() if error is not None else None
    if code in _AUTH_ERRORS and settings.kafka_config is not None:
        return (
            f"Kafka at {where} refused the credentials; check the SASL settings in "
            f"{settings.kafka_config} (--kafka-config) and ENFORCER_SASL_*"
        )
    if code in _AUTH_ERRORS:
        return (
            f"Kafka at {where} refused the credentials of {settings.sasl_username!r} "
            f"({settings.sasl_mechanism}); check ENFORCER_SASL_USERNAME and ENFORCER_SASL_PASSWORD"
        )
    if code == KafkaError._SSL:
        return f"TLS to {where} failed; check ENFORCER_SSL_CAFILE and ENFORCER_SECURITY_PROTOCOL"
    return f"cannot reach Kafka at {where} ({flags})"


_QUOTED_VALUE = re.compile(r'value "[^"]*"')


def refused_configuration(exc: KafkaException) -> str:
    """One line for a client librdkafka would not make (an unknown property, a value of
    the wrong kind, a conflict), without the value: it may be a secret."""
    why = _QUOTED_VALUE.sub("value", kafka_error(exc).str())
    return f"the Kafka client refused its configuration: {why} (--kafka-config, docs/security.md)"


def admin_client(settings: EnforcerSettings, errors: ClientErrors) -> AdminClient:
    """An admin client with the worker's connection settings."""
    config: dict[str, Any] = {
        **librdkafka_security(settings),  # under the enforcer's own settings
        "bootstrap.servers": settings.bootstrap_servers,
        "error_cb": errors,
        "logger": logging.getLogger("enforcer.kafka"),
    }
    return AdminClient(config)


def _metadata(admin: AdminClient, errors: ClientErrors) -> ClusterMetadata | None:
    """The cluster's metadata, or ``None`` when it cannot be had within the timeout or
    the client reports a failure that waiting will not cure (credentials, TLS)."""
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            return admin.list_topics(timeout=1.0)
        except KafkaException:
            admin.poll(0)  # serves error_cb: why the brokers could not be reached
            last = errors.last_error
            if last is not None and last.code() in _FINAL_ERRORS:
                return None
    return None


def _connect(settings: EnforcerSettings) -> tuple[AdminClient, ClusterMetadata]:
    """An admin client that has reached the cluster, and the cluster's metadata."""
    errors = ClientErrors(every_s=3600)
    errors_log = logging.getLogger("enforcer.kafka")
    quiet = errors_log.level
    errors_log.setLevel(logging.CRITICAL)  # the one-line error below says it better
    try:
        try:
            admin = admin_client(settings, errors)
        except KafkaException as exc:
            raise TopicSetupError(refused_configuration(exc)) from None
        metadata = _metadata(admin, errors)
        if metadata is None:
            raise TopicSetupError(why_unreachable(settings, errors.last_error))
    finally:
        errors_log.setLevel(quiet)
    return admin, metadata


def prepare_topics(settings: EnforcerSettings) -> tuple[list[str], dict[str, int]]:
    """What a worker checks at start, over one connection: the topics exist (or are
    created, :func:`ensure_topics`), the ledger is co-partitioned with the source, and
    each output topic's ``max.message.bytes``.

    Returns the topics created and the limits.
    """
    admin, metadata = _connect(settings)
    created = _ensure(settings, admin, metadata)
    _check_co_partitioned(settings, admin if created else None, metadata)
    return created, _output_limits(settings, admin)


def _new_topic(
    settings: EnforcerSettings, name: str, source_partitions: dict[int, Any] | None
) -> NewTopic:
    """A topic to create: the ledger and exposure compacted and with the source's
    partition count."""
    if name not in (settings.ledger_topic, settings.exposure_topic):
        return NewTopic(name, settings.topic_partitions, settings.topic_replication_factor)
    partitions = len(source_partitions) if source_partitions else settings.topic_partitions
    return NewTopic(
        name, partitions, settings.topic_replication_factor, config={"cleanup.policy": "compact"}
    )


_CO_PARTITIONED = (("ledger", "docs/ledger.md"), ("exposure", "docs/exposure.md"))
"""The topics that must have the source's partition count, and where that is told."""


def _check_co_partitioned(
    settings: EnforcerSettings,
    admin: AdminClient | None,
    metadata: ClusterMetadata,
    only: tuple[str, ...] = ("ledger", "exposure"),
) -> None:
    """The ledger and exposure (of them, the roles in ``only``) must have the source's
    partition count: partition ``i`` of each holds the same subjects, and a worker
    restores exactly the partitions it needs."""
    roles = settings.topics_by_role()
    paired = [
        (role, roles[role], doc) for role, doc in _CO_PARTITIONED if role in roles and role in only
    ]
    if not paired:
        return
    names = (settings.source_topic, *(name for _, name, _ in paired))
    if admin is not None:  # topics were just created: read their partitions afresh
        metadata = _listing_with_partitions(admin, names)
    counts = {}
    for name in names:
        topic = metadata.topics.get(name)
        if topic is None or not topic.partitions:
            raise TopicSetupError(f"cannot read the partitions of topic '{name}'")
        counts[name] = len(topic.partitions)
    source = settings.source_topic
    for role, name, doc in paired:
        if counts[name] != counts[source]:
            raise TopicSetupError(
                f"the {role} topic '{name}' has {counts[name]} partition(s) and the source "
                f"topic '{source}' has {counts[source]}: they must be co-partitioned (the "
                f"same count, both keyed by subject id); see {doc}"
            )


def _listing_with_partitions(
    admin: AdminClient, names: tuple[str, ...], timeout_s: float = TIMEOUT_S
) -> ClusterMetadata:
    """The cluster's listing once every topic of ``names`` shows its partitions, or the
    last one read when ``timeout_s`` runs out. A topic just created is in the broker's
    metadata a moment after the creation is acknowledged: listed at once, it may be
    missing or have no partitions yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = admin.list_topics(timeout=TIMEOUT_S)
        topics = metadata.topics
        if all(name in topics and topics[name].partitions for name in names):
            return metadata
        if time.monotonic() >= deadline:
            return metadata
        time.sleep(0.1)


def _check_compacted(admin: AdminClient, role: str, name: str, doc: str) -> None:
    """A topic that keeps one value per key must be compacted: otherwise retention
    deletes the values, and a restore forgets what they held."""
    futures = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, name)], request_timeout=TIMEOUT_S
    )
    try:
        [entries] = [future.result() for future in futures.values()]
    except KafkaException as exc:
        raise TopicSetupError(
            f"cannot read the configuration of topic '{name}': {kafka_error(exc).str()}"
        ) from None
    _refuse_uncompacted(role, name, entries, doc)


def _refuse_uncompacted(role: str, name: str, entries: Mapping[str, Any], doc: str) -> None:
    policy = entries["cleanup.policy"].value or ""
    if "compact" not in policy.split(","):
        raise TopicSetupError(
            f"the {role} topic '{name}' is not compacted (cleanup.policy={policy}): it must "
            f"keep each subject's latest value; see {doc}"
        )


def _active_members(admin: AdminClient, group: str) -> int:
    """How many members the consumer group has now (none for a group that is empty or
    does not exist)."""
    [future] = admin.describe_consumer_groups([group], request_timeout=TIMEOUT_S).values()
    try:
        return len(future.result().members)
    except KafkaException as exc:
        error = kafka_error(exc)
        if error.code() == KafkaError.GROUP_AUTHORIZATION_FAILED:
            raise TopicSetupError(
                f"not authorized to describe the consumer group '{group}' ({error.name()}): "
                "grant Describe on it (docs/security.md)"
            ) from None
        raise TopicSetupError(
            f"cannot describe the consumer group '{group}': {error.str()}"
        ) from None


def check_exposure_offline(settings: EnforcerSettings) -> None:
    """What a command that writes the exposure topic from outside the workers
    (``enforcer remediate apply --exposure-topic``, docs/remediate.md) checks first, over
    one connection: the topic exists, is compacted, has the source's partition count (the
    worker's own checks), and no worker of the group is running, since a running worker
    holds exposure in memory and would write its own values back over these.

    Raises :class:`TopicSetupError`."""
    name = settings.exposure_topic
    if name is None:
        raise ValueError("no exposure topic to check")
    admin, metadata = _connect(settings)
    if name not in metadata.topics and _missing(admin, {"exposure": name}):
        raise TopicSetupError(
            f"the exposure topic '{name}' does not exist on {settings.bootstrap_servers}"
        )
    _check_compacted(admin, "exposure", name, "docs/exposure.md")
    _check_co_partitioned(settings, None, metadata, only=("exposure",))
    members = _active_members(admin, settings.group_id)
    if members:
        raise TopicSetupError(
            f"the enforcer's consumer group '{settings.group_id}' has {members} active "
            "member(s): stop the workers first (they hold exposure in memory and would "
            "write it back)"
        )


GRANTS = {
    "source": "Read and Describe",
    "ledger": "Read and Describe",
    "exposure": "Read, Write, Describe and DescribeConfigs",
    "sink": "Write, Describe and DescribeConfigs",
    "violations": "Write, Describe and DescribeConfigs",
    "dead-letter": "Write, Describe and DescribeConfigs",
    "metrics": "Write and Describe",
}
"""What the worker needs on each of its topics, by role (docs/security.md, deploy/acls.sh)."""


def _missing(admin: AdminClient, unlisted: dict[str, str]) -> dict[str, str]:
    """Of the topics the cluster's listing left out, by role, those that do not exist.

    Kafka leaves out of that listing every topic the principal may not describe, so
    each is asked about by name; a missing permission is reported as one (raises
    :class:`TopicSetupError`), not as a missing topic. Any other error
    (``UNKNOWN_TOPIC_OR_PART``, an invalid name) leaves the topic missing: creating it,
    when asked, says what Kafka makes of it.
    """
    futures = admin.describe_topics(
        TopicCollection(sorted(set(unlisted.values()))), request_timeout=TIMEOUT_S
    )
    missing, denied = {}, []
    for role, name in unlisted.items():
        try:
            futures[name].result()
        except KafkaException as exc:
            error = kafka_error(exc)
            if error.code() != KafkaError.TOPIC_AUTHORIZATION_FAILED:
                missing[role] = name
                continue
            # Kafka answers so for a topic that does not exist, too, when Describe is
            # not granted: whether it exists is not known.
            denied.append(
                f"not authorized to describe the {role} topic '{name}' "
                f"({error.name()}): grant {GRANTS[role]} on it "
                "(deploy/acls.sh, docs/security.md)"
            )
        # An answer without an error: the topic was created since the listing.
    if denied:
        raise TopicSetupError("; ".join(denied))
    return missing


def _output_limits(settings: EnforcerSettings, admin: AdminClient) -> dict[str, int]:
    """Each output topic's ``max.message.bytes``: the largest record it accepts."""
    names = {settings.sink_topic, settings.violations_topic, settings.deadletter_topic}
    if settings.exposure_topic is not None:
        names.add(settings.exposure_topic)
    futures = admin.describe_configs(
        [ConfigResource(ResourceType.TOPIC, name) for name in sorted(names)],
        request_timeout=TIMEOUT_S,
    )
    limits = {}
    for resource, future in futures.items():
        try:
            entries = future.result()
        except KafkaException as exc:
            raise TopicSetupError(
                f"cannot read the configuration of topic '{resource.name}': "
                f"{kafka_error(exc).str()}"
            ) from None
        limits[resource.name] = int(entries["max.message.bytes"].value)
        if resource.name == settings.exposure_topic:
            _refuse_uncompacted("exposure", resource.name, entries, "docs/exposure.md")
    return limits


def ensure_topics(settings: EnforcerSettings) -> list[str]:
    """Raise unless every topic exists; with ``create_topics`` create the missing ones.

    Returns the names of the topics it created.
    """
    admin, metadata = _connect(settings)
    return _ensure(settings, admin, metadata)


def _ensure(settings: EnforcerSettings, admin: AdminClient, metadata: ClusterMetadata) -> list[str]:
    unlisted = {
        role: name
        for role, name in settings.topics_by_role().items()
        if name not in metadata.topics
    }
    missing = _missing(admin, unlisted) if unlisted else {}
    if not missing:
        return []
    if not settings.create_topics:
        listed = ", ".join(f"{role} topic '{name}'" for role, name in missing.items())
        raise TopicSetupError(
            f"missing on {settings.bootstrap_servers}: {listed}; create them, "
            "or pass --create-topics (ENFORCER_CREATE_TOPICS=true)"
        )
    names = sorted(set(missing.values()))
    source = metadata.topics.get(settings.source_topic)
    futures = admin.create_topics(
        [_new_topic(settings, name, source.partitions if source else None) for name in names],
        request_timeout=TIMEOUT_S,
    )
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            error = kafka_error(exc)
            if error.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                continue  # another worker created it a moment ago
            raise TopicSetupError(
                f"Kafka refused to create topic '{name}': {error.str()}"
            ) from None
    return names
