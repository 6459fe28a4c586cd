"""``enforcer lag-exporter``: the group's lag as the broker sees it, for Prometheus.

A worker reports the lag of the partitions it holds; with every worker down there is
no worker to ask, and ``sum(enforcer_consumer_lag)`` is empty exactly when the lag
matters most. This process, run apart from the workers (one per group), asks the
broker instead, at each scrape: the source topic's end offsets (the last stable
offset, as a ``read_committed`` reader sees them) and the group's committed offsets.
It joins no group and commits nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, NamedTuple

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaException,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

# Public as confluent_kafka.admin.OffsetSpec, but not re-exported for type checkers.
from confluent_kafka.admin._listoffsets import OffsetSpec
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from enforcer.config.kafka_security import librdkafka_security
from enforcer.config.settings import EnforcerSettings
from enforcer.live.admin import TopicSetupError, refused_configuration
from enforcer.outputs.metrics import (
    GROUP_COMMITTED_OFFSET,
    GROUP_END_OFFSET,
    GROUP_LAG,
    GROUP_LAG_UP,
    MetricDef,
)

log = logging.getLogger("enforcer.lag")

QUERY_TIMEOUT_S = 5.0
"""Each broker request of a scrape gives up after this (below Prometheus' 10 s)."""
_LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]
_EARLIEST = OffsetSpec.earliest()  # type: ignore[no-untyped-call]


class PartitionOffsets(NamedTuple):
    """One source partition as the broker sees it."""

    partition: int
    start: int
    end: int
    committed: int | None
    """The group's committed offset; ``None`` when it has none there yet."""

    @property
    def lag(self) -> int:
        """Offsets not yet committed by the group. Without a commit the group starts
        from the beginning (``auto.offset.reset=earliest``), so all of them."""
        position = self.start if self.committed is None else max(self.committed, self.start)
        return max(0, self.end - position)


class GroupOffsets:
    """Reads a group's committed offsets and a topic's offsets from the broker."""

    def __init__(self, admin: AdminClient, group: str, topic: str) -> None:
        self._admin = admin
        self.group = group
        self.topic = topic

    def read(self) -> list[PartitionOffsets]:
        """Every partition of the topic; raises ``KafkaException`` when the broker
        does not answer in time or the topic does not exist."""
        metadata = self._admin.list_topics(self.topic, timeout=QUERY_TIMEOUT_S)
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            raise KafkaException(topic.error if topic is not None else "no such topic")
        partitions = sorted(topic.partitions)
        ends = self._offsets(partitions, _LATEST)
        starts = self._offsets(partitions, _EARLIEST)
        committed = self._committed(partitions)
        return [PartitionOffsets(p, starts[p], ends[p], committed.get(p)) for p in partitions]

    def _offsets(self, partitions: Iterable[int], spec: OffsetSpec) -> dict[int, int]:
        request = {TopicPartition(self.topic, p): spec for p in partitions}
        futures = self._admin.list_offsets(
            request,
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=QUERY_TIMEOUT_S,
        )
        return {tp.partition: int(f.result().offset) for tp, f in futures.items()}

    def _committed(self, partitions: Iterable[int]) -> dict[int, int]:
        wanted = ConsumerGroupTopicPartitions(
            self.group, [TopicPartition(self.topic, p) for p in partitions]
        )
        futures = self._admin.list_consumer_group_offsets(
            [wanted], require_stable=True, request_timeout=QUERY_TIMEOUT_S
        )
        answer = futures[self.group].result()
        return {
            tp.partition: int(tp.offset)
            for tp in answer.topic_partitions or []
            if tp.error is None and tp.offset >= 0
        }


def _gauge(metric: MetricDef) -> GaugeMetricFamily:
    return GaugeMetricFamily(metric.name, metric.description, labels=metric.labels)


def lag_families(
    group: str, topic: str, offsets: Iterable[PartitionOffsets] | None
) -> list[Metric]:
    """The exporter's metrics; ``offsets`` ``None`` means the broker did not answer."""
    up = _gauge(GROUP_LAG_UP)
    up.add_metric([group, topic], 0 if offsets is None else 1)
    lag, end, committed = (
        _gauge(GROUP_LAG),
        _gauge(GROUP_END_OFFSET),
        _gauge(GROUP_COMMITTED_OFFSET),
    )
    for item in offsets or ():
        labels = [group, topic, str(item.partition)]
        lag.add_metric(labels, item.lag)
        end.add_metric(labels, item.end)
        if item.committed is not None:
            committed.add_metric(labels, item.committed)
    return [lag, end, committed, up]


class GroupLagCollector(Collector):
    """Asks the broker at every scrape; a failed query is ``enforcer_group_lag_up 0``."""

    def __init__(self, offsets: GroupOffsets) -> None:
        self._offsets = offsets
        self._failing = False

    def collect(self) -> Iterable[Metric]:
        """The group's lag as of now."""
        source = self._offsets
        read: list[PartitionOffsets] | None
        try:
            read = source.read()
        except KafkaException as exc:
            if not self._failing:
                log.warning("offsets of group %s not read: %s", source.group, exc.args[0])
            self._failing, read = True, None
        else:
            if self._failing:
                log.info("offsets of group %s read again", source.group)
            self._failing = False
        return lag_families(source.group, source.topic, read)


def admin_config(settings: EnforcerSettings) -> dict[str, Any]:
    """The admin client of the exporter: the workers' cluster and security settings."""
    return {
        **librdkafka_security(settings),  # under the enforcer's own settings
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": f"enforcer-lag-{settings.instance_id}",
        "logger": logging.getLogger("enforcer.kafka"),
    }


def lag_registry(settings: EnforcerSettings) -> CollectorRegistry:
    """A registry with the group's lag collector, for ``settings``' group and source."""
    try:
        admin = AdminClient(admin_config(settings))
    except KafkaException as exc:
        raise TopicSetupError(refused_configuration(exc)) from None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        GroupLagCollector(GroupOffsets(admin, settings.group_id, settings.source_topic))
    )
    return registry
