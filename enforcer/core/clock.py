"""Time comes in through a clock, so the core stays pure and tests deterministic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Something that tells the current time."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        ...


class SystemClock:
    """The real wall clock, in UTC."""

    def now(self) -> datetime:
        """The current time, timezone-aware."""
        return datetime.now(UTC)


class FixedClock:
    """A clock that stands still until moved; for tests and reproducible replays."""

    def __init__(self, at: datetime) -> None:
        self._at = at

    def now(self) -> datetime:
        """The time it was set to."""
        return self._at

    def advance_to(self, at: datetime) -> None:
        """Move the clock."""
        self._at = at


_LAST_MS = 253_402_300_799_999
"""9999-12-31T23:59:59.999Z: the last instant a datetime holds."""


def kafka_time(millis: int) -> datetime:
    """A Kafka record timestamp (epoch milliseconds) as an aware datetime in UTC. Kafka
    takes any 64-bit value from a producer: one before 1970 (or none, -1) is the epoch,
    one past the year 9999 (a producer writing microseconds) the last instant a datetime
    holds, so that no record's time can stop its reader."""
    return _EPOCH + timedelta(milliseconds=kafka_millis(millis))


def kafka_millis(millis: int) -> int:
    """A Kafka record timestamp held within the instants a datetime holds, as
    :func:`kafka_time` holds it."""
    return min(max(0, millis), _LAST_MS)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def rfc3339(at: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with milliseconds and ``Z``."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
