"""The partitioners seeding follows: Kafka's murmur2 as aiokafka computes it (a client
other than this module), librdkafka's CRC-32 and FNV-1a; and which of them placed a
topic's records."""

from __future__ import annotations

import zlib

from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from enforcer.remediate.partitioners import (
    PARTITIONERS,
    crc32_partition,
    fnv1a_partition,
    murmur2,
    murmur2_partition,
    placing,
)


@given(st.binary(max_size=64))
def test_murmur2_is_kafkas(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key) & 0xFFFFFFFF


def test_known_values() -> None:
    """Fixed points: the CRC-32 check value, and FNV-1a's of the empty key and "a" (the
    reference's test vectors)."""
    assert zlib.crc32(b"123456789") == 0xCBF43926
    assert crc32_partition(b"123456789", 1000) == 0xCBF43926 % 1000
    assert fnv1a_partition(b"", 1 << 30) == abs(0x811C9DC5 - (1 << 32)) % (1 << 30)
    # FNV-1a 32 of "a" is 0xe40c292c: negative as a signed number.
    assert fnv1a_partition(b"a", 7) == abs(0xE40C292C - (1 << 32)) % 7


@given(st.binary(max_size=40), st.integers(min_value=1, max_value=500))
def test_every_partition_is_in_range(key: bytes, partitions: int) -> None:
    for partitioner in PARTITIONERS.values():
        assert 0 <= partitioner(key, partitions) < partitions


def _keys(count: int) -> list[bytes]:
    return [f"acct-{n:05d}".encode() for n in range(count)]


def test_the_partitioner_that_placed_the_records_is_the_one_found() -> None:
    for name, partitioner in PARTITIONERS.items():
        records = [(key, partitioner(key, 6)) for key in _keys(60)]
        assert placing(records, 6) == [name]


def test_records_no_partitioner_placed_fit_none() -> None:
    records = [(key, n % 4) for n, key in enumerate(_keys(60))]  # round robin
    assert placing(records, 4) == []


def test_without_records_or_with_one_partition_every_one_fits() -> None:
    assert placing([], 3) == list(PARTITIONERS)
    assert placing([(key, 0) for key in _keys(10)], 1) == list(PARTITIONERS)


def test_one_misplaced_record_rules_a_partitioner_out() -> None:
    records = [(key, murmur2_partition(key, 5)) for key in _keys(30)]
    key, partition = records[17]
    records[17] = (key, (partition + 1) % 5)
    assert "murmur2" not in placing(records, 5)


# FNV-1a as Go's hash/fnv computes it, read as a signed number and made positive: the
# values librdkafka's own unit test holds its fnv1a to (Sarama's default partitioner).
_SARAMA_FNV1A = {
    b"kafka": 0x0D33C4E1,
    b"giberish123456789": 0x77A58295,
    b"1234": 0x023BDD03,
    b"234": 0x2DEA3CD2,
    b"34": 0x740FA83E,
    b"4": 0x310CA263,
    b"": 0x7EE3623B,
}


def test_fnv1a_places_as_librdkafka_and_sarama_do() -> None:
    for key, positive in _SARAMA_FNV1A.items():
        for partitions in (2, 3, 7, 1 << 31):
            assert fnv1a_partition(key, partitions) == positive % partitions
