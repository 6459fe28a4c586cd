"""Where a keyed record lands: the partitioners Kafka's clients use by default, and which
of them placed a topic's records (docs/remediate.md, "Seeding exposure").

Exposure is co-partitioned with the source: a worker finds a subject's exposure value in
the partition number its source records are in, whichever partitioner their producers
used. ``remediate apply`` seeds the value of a subject exposure does not hold yet, so it
must put it where the source's producers put that subject id: it reads the source's
latest keyed records and keeps the partitioner that places every one of them.

- ``murmur2``: the Java client's default (and so Kafka Streams', Connect's, and every
  client following it), librdkafka's ``murmur2`` and ``murmur2_random``;
- ``crc32``: librdkafka's default (``consistent_random``, and ``consistent``): the
  confluent-kafka clients for Python, Go and .NET, unless configured otherwise;
- ``fnv1a``: librdkafka's ``fnv1a`` and ``fnv1a_random``, Sarama's (Go) default.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from typing import Final

Partitioner = Callable[[bytes, int], int]
"""``(key, partition count)`` → the partition a record with that key goes to."""

_MASK: Final = 0xFFFFFFFF
_MURMUR2_M: Final = 0x5BD1E995
_MURMUR2_SEED: Final = 0x9747B28C
_FNV1A_PRIME: Final = 0x01000193
_FNV1A_OFFSET: Final = 0x811C9DC5


def murmur2(key: bytes) -> int:
    """Kafka's murmur2 of ``key`` (``org.apache.kafka.common.utils.Utils.murmur2``), as
    an unsigned 32-bit number."""
    length = len(key)
    h = (_MURMUR2_SEED ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(key[i : i + 4], "little")
        k = (k * _MURMUR2_M) & _MASK
        k ^= k >> 24
        k = (k * _MURMUR2_M) & _MASK
        h = (h * _MURMUR2_M) & _MASK
        h ^= k
    rest = length % 4
    if rest == 3:
        h ^= key[whole + 2] << 16
    if rest >= 2:
        h ^= key[whole + 1] << 8
    if rest >= 1:
        h ^= key[whole]
        h = (h * _MURMUR2_M) & _MASK
    h ^= h >> 13
    h = (h * _MURMUR2_M) & _MASK
    h ^= h >> 15
    return h


def murmur2_partition(key: bytes, partitions: int) -> int:
    """The Java client's partition for ``key``: the hash's low 31 bits, modulo."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def crc32_partition(key: bytes, partitions: int) -> int:
    """librdkafka's ``consistent`` partition: the key's CRC-32, modulo."""
    return zlib.crc32(key) % partitions


def fnv1a_partition(key: bytes, partitions: int) -> int:
    """librdkafka's ``fnv1a`` partition (Sarama's): the 32-bit FNV-1a hash read as a
    signed number, its remainder's absolute value."""
    h = _FNV1A_OFFSET
    for byte in key:
        h = ((h ^ byte) * _FNV1A_PRIME) & _MASK
    signed = h - (1 << 32) if h & 0x80000000 else h
    return abs(signed) % partitions


PARTITIONERS: Final[dict[str, Partitioner]] = {
    "murmur2": murmur2_partition,
    "crc32": crc32_partition,
    "fnv1a": fnv1a_partition,
}
"""By name, in the order they are preferred when several place every record read."""


def placing(records: Iterable[tuple[bytes, int]], partitions: int) -> list[str]:
    """The names of the partitioners that put every ``(key, partition)`` where it is, in
    :data:`PARTITIONERS`' order (all of them when there is no record)."""
    fitting = dict(PARTITIONERS)
    for key, partition in records:
        for name, partitioner in list(fitting.items()):
            if partitioner(key, partitions) != partition:
                del fitting[name]
        if not fitting:
            break
    return list(fitting)
