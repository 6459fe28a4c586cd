"""Kafka record times as datetimes (enforcer/core/clock.py): any 64-bit timestamp a
producer can set gives a time, so no record's time can stop its reader."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.clock import kafka_time, rfc3339


def test_ordinary_times_are_exact_to_the_millisecond() -> None:
    assert rfc3339(kafka_time(1_570_492_800_123)) == "2019-10-08T00:00:00.123Z"
    assert kafka_time(0) == datetime(1970, 1, 1, tzinfo=UTC)


def test_times_outside_a_datetime_are_held_to_its_ends() -> None:
    """No timestamp (-1) or one before 1970 is the epoch; one past the year 9999 (a
    producer writing microseconds: 10**15 is the year 33658) is the last instant."""
    assert kafka_time(-1) == kafka_time(-(2**63)) == datetime(1970, 1, 1, tzinfo=UTC)
    assert rfc3339(kafka_time(10**15)) == "9999-12-31T23:59:59.999Z"
    assert rfc3339(kafka_time(2**63 - 1)) == "9999-12-31T23:59:59.999Z"


@given(st.integers(min_value=-(2**63), max_value=2**63 - 1))
def test_every_64_bit_timestamp_is_a_time_in_order(millis: int) -> None:
    at = kafka_time(millis)
    assert at.tzinfo is UTC
    assert kafka_time(millis) <= kafka_time(min(millis + 1, 2**63 - 1))
