"""When findings happened: UTC days and first/last times of ``occurred_at``."""

from __future__ import annotations

from collections.abc import Sequence

from enforcer.core.models import as_utc, parse_rfc3339, utc_day


def day_of(occurred_at: str) -> str:
    """The UTC date of an RFC 3339 time."""
    # Most timestamps are in UTC already; their date is the first ten characters.
    if occurred_at[-1] in "Zz" or occurred_at.endswith(("+00:00", "-00:00")):
        return occurred_at[:10]
    return utc_day(occurred_at)


def instant_key(occurred_at: str) -> str:
    """A key that sorts RFC 3339 times as the instants they name: the UTC time as
    ``YYYY-MM-DDTHH:MM:SS.ffffff``, to the microsecond as :func:`parse_rfc3339` reads it.

    ``occurred_at`` is a time the decision accepted. The common spelling (``T``,
    milliseconds, ``Z``) is its own key but for three zeros: no parsing per record.
    """
    if len(occurred_at) == 24 and occurred_at[23] == "Z" and occurred_at[10] == "T":
        return occurred_at[:23] + "000"
    at = as_utc(parse_rfc3339(occurred_at))
    return at.replace(tzinfo=None).isoformat(timespec="microseconds")


Seen = tuple[str, int, str]
"""One time seen: its :func:`instant_key`, the order it was seen in, and its text."""


class Window:
    """Earliest and latest ``occurred_at`` seen, compared as instants, kept as given;
    of equal instants, the one seen first."""

    __slots__ = ("first", "last")

    def __init__(self) -> None:
        self.first: Seen | None = None
        self.last: Seen | None = None

    def add(self, key: str, order: int, text: str) -> None:
        """One time seen: ``key`` its :func:`instant_key`, ``order`` increasing with each
        time seen (it decides between equal instants when windows are merged)."""
        first, last = self.first, self.last
        if first is None or last is None:
            self.first = self.last = (key, order, text)
        elif key < first[0]:
            self.first = (key, order, text)
        elif key > last[0]:
            self.last = (key, order, text)

    @classmethod
    def merged(cls, windows: Sequence[Window]) -> Window:
        """The window of every time the ``windows`` saw."""
        window = cls()
        firsts = [w.first for w in windows if w.first is not None]
        lasts = [w.last for w in windows if w.last is not None]
        if firsts:
            window.first = min(firsts, key=lambda seen: (seen[0], seen[1]))
            window.last = max(lasts, key=lambda seen: (seen[0], -seen[1]))
        return window

    @property
    def first_text(self) -> str | None:
        return self.first[2] if self.first else None

    @property
    def last_text(self) -> str | None:
        return self.last[2] if self.last else None
