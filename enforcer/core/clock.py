"""Time comes in through a clock, so the core stays pure and tests deterministic."""

from __future__ import annotations

from datetime import UTC, datetime
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


def rfc3339(at: datetime) -> str:
    """Format an aware datetime as RFC 3339 in UTC with milliseconds and ``Z``."""
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
