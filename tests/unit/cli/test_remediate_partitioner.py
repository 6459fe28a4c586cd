"""How ``remediate apply`` picks the partitioner it seeds exposure with from the source's
latest keyed records (docs/remediate.md, "Seeding exposure"), the Kafka reader replaced
by the keys it would have read."""

from __future__ import annotations

from typing import Any

import pytest

from enforcer.cli import remediate
from enforcer.cli.common import UsageError
from enforcer.config.settings import EnforcerSettings
from enforcer.remediate.partitioners import (
    PARTITIONERS,
    crc32_partition,
    fnv1a_partition,
    murmur2_partition,
)


class _Source:
    """A TopicRange that holds ``keys`` (key, partition) over ``partitions`` partitions."""

    def __init__(self, keys: list[tuple[bytes, int]], partitions: int) -> None:
        self._keys = keys
        self.ranges = [object()] * partitions
        self.read = False

    def __call__(self, *_: Any) -> _Source:
        return self

    def __enter__(self) -> _Source:
        return self

    def __exit__(self, *_: object) -> None:
        pass

    def latest_keys(self, per_partition: int) -> list[tuple[bytes, int]]:
        self.read = True
        return self._keys


def _pick(monkeypatch: pytest.MonkeyPatch, keys: list[tuple[bytes, int]], partitions: int) -> Any:
    monkeypatch.setattr(remediate, "TopicRange", _Source(keys, partitions))
    return remediate._source_partitioner(EnforcerSettings(source_topic="src"), "auto")


def _keys(count: int) -> list[bytes]:
    return [f"acct-{n:05d}".encode() for n in range(count)]


def test_a_sample_two_partitioners_fit_stops_the_apply(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A few keys that murmur2 happens to place as crc32 did: taking the first that fits
    (murmur2) would seed about two subjects in three where the workers never look."""
    both = [
        key
        for key in _keys(40)
        if crc32_partition(key, 3) == murmur2_partition(key, 3) != fnv1a_partition(key, 3)
    ][:3]
    with pytest.raises(UsageError) as refused:
        _pick(monkeypatch, [(key, crc32_partition(key, 3)) for key in both], 3)
    message = str(refused.value)
    assert "\n" not in message
    assert "murmur2 and crc32" in message and "--source-partitioner" in message
    assert capsys.readouterr().err == ""


def test_a_sample_one_partitioner_fits_names_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, partitioner in PARTITIONERS.items():
        keys = [(key, partitioner(key, 6)) for key in _keys(60)]
        assert _pick(monkeypatch, keys, 6) is partitioner
        assert f"exposure: seeding where {name} puts subject ids" in capsys.readouterr().err


def test_one_partition_needs_no_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every partitioner puts every key in partition 0: any of them is right."""
    source = _Source([(b"acct-1", 0)], 1)
    monkeypatch.setattr(remediate, "TopicRange", source)
    settings = EnforcerSettings(source_topic="src")
    assert remediate._source_partitioner(settings, "auto")(b"acct-2", 1) == 0
    assert not source.read


def test_a_source_without_keyed_records_stops_the_apply(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Empty or expired: nothing tells the partitioner, and a guess (murmur2) would be
    wrong for about two subjects in three of a source written with librdkafka's
    default; the operator names it instead."""
    with pytest.raises(UsageError) as refused:
        _pick(monkeypatch, [], 3)
    message = str(refused.value)
    assert "\n" not in message
    assert "holds no keyed record" in message and "--source-partitioner" in message
    assert capsys.readouterr().err == ""
    monkeypatch.setattr(remediate, "TopicRange", _Source([], 3))
    settings = EnforcerSettings(source_topic="src")
    assert remediate._source_partitioner(settings, "crc32") is crc32_partition
