"""When findings happened: UTC days and first/last times of ``occurred_at``."""

from __future__ import annotations

from datetime import datetime

from enforcer.core.models import utc_day


def day_of(occurred_at: str) -> str:
    """The UTC date of an RFC 3339 time."""
    # Most timestamps are in UTC already; their date is the first ten characters.
    if occurred_at[-1] in "Zz" or occurred_at.endswith(("+00:00", "-00:00")):
        return occurred_at[:10]
    return utc_day(occurred_at)


class Window:
    """Earliest and latest ``occurred_at`` seen, compared as instants, kept as given."""

    __slots__ = ("first", "last")

    def __init__(self) -> None:
        self.first: tuple[datetime, str] | None = None
        self.last: tuple[datetime, str] | None = None

    def add(self, when: datetime, text: str) -> None:
        if self.first is None or when < self.first[0]:
            self.first = (when, text)
        if self.last is None or when > self.last[0]:
            self.last = (when, text)

    @property
    def first_text(self) -> str | None:
        return self.first[1] if self.first else None

    @property
    def last_text(self) -> str | None:
        return self.last[1] if self.last else None
