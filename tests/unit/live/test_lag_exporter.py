"""The broker-side lag exporter's arithmetic and metrics (the broker part runs in
tests/integration/test_prometheus_rules.py)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from enforcer.live.lag_exporter import GroupLagCollector, PartitionOffsets, lag_families
from enforcer.outputs.metrics import LAG_EXPORTER_METRICS


def test_lag_is_end_minus_committed_or_start_without_a_commit() -> None:
    """No commit yet: the group will start at the beginning, so all of it is lag;
    a commit below a truncated start counts from the start."""
    assert PartitionOffsets(0, start=0, end=100, committed=40).lag == 60
    assert PartitionOffsets(1, start=10, end=100, committed=None).lag == 90
    assert PartitionOffsets(2, start=50, end=100, committed=20).lag == 50
    assert PartitionOffsets(3, start=0, end=100, committed=100).lag == 0


def _samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(generate_latest(registry).decode())
        for s in family.samples
    }


class _Offsets:
    group, topic = "g", "t"

    def __init__(self) -> None:
        self.answer: list[PartitionOffsets] | Exception = [
            PartitionOffsets(0, 0, 10, 4),
            PartitionOffsets(1, 0, 7, None),
        ]

    def read(self) -> list[PartitionOffsets]:
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_the_collector_asks_at_each_scrape_and_says_when_it_cannot() -> None:
    """Per partition lag, end and committed offsets; ``up`` 0 and no lag when the
    broker does not answer."""
    from confluent_kafka import KafkaException

    offsets = _Offsets()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(GroupLagCollector(offsets))  # type: ignore[arg-type]
    samples = _samples(registry)
    part = (("group", "g"), ("partition", "0"), ("topic", "t"))
    assert samples[("enforcer_group_lag", part)] == 6
    assert samples[("enforcer_group_committed_offset", part)] == 4
    other = (("group", "g"), ("partition", "1"), ("topic", "t"))
    assert samples[("enforcer_group_lag", other)] == 7
    assert ("enforcer_group_committed_offset", other) not in samples
    assert samples[("enforcer_group_lag_up", (("group", "g"), ("topic", "t")))] == 1
    offsets.answer = KafkaException("broker down")
    samples = _samples(registry)
    assert samples[("enforcer_group_lag_up", (("group", "g"), ("topic", "t")))] == 0
    assert not any(name == "enforcer_group_lag" for name, _ in samples)


def test_every_exporter_metric_is_defined_once() -> None:
    """The families the exporter builds are exactly its listed metrics."""
    names = {family.name for family in lag_families("g", "t", [PartitionOffsets(0, 0, 1, 0)])}
    assert names == {m.name for m in LAG_EXPORTER_METRICS}
