"""A mapping's event built straight from a record, when the record is plainly valid
(docs/formats.md: "How a record is read"; docs/benchmarks.md: "Formats").

:meth:`enforcer.formats.mapping.FieldMapping.read` gives the event's fields as a dict,
which :func:`enforcer.core.parse.event_from_fields` validates by the identity event's
model: the one set of rules. Most records of a topic are plainly valid, though, and most
mappings name fields through objects only (``contact.email``, no ``[*]``). For those,
:class:`DirectRead` walks each path once and builds the
:class:`~enforcer.core.models.Event` itself, vouching for each value with checks at
least as strict as the model's (the core's own fast path does the same for the identity
event: :func:`enforcer.core.parse.plain_event_fields`). Anything it cannot vouch for
(a missing or wrong-typed event field, an identifier that is not a string, a timestamp
the model would have to judge, a path through a list) it hands back as ``None``, and the
record is read the general way, which then gives the verdict and the message. A property
test holds the two equal (tests/unit/formats/test_direct.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from enforcer.core.clock import rfc3339
from enforcer.core.models import Event, EventIdentifier, is_plain_rfc3339
from enforcer.core.parse import all_strings, plain_type_and_tags
from enforcer.formats.codec import Location
from enforcer.formats.paths import MISSING, RecordPath

_NAIVE_EPOCH = datetime(1970, 1, 1)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DAY = timedelta(days=1)
_DATES: dict[int, str] = {}
"""Days since the epoch → ``YYYY-MM-DD``: a stream's timestamps fall on few days."""
_DATES_LIMIT = 4096
_HOURS_MINUTES = [f"{hour:02d}:{minute:02d}" for hour in range(24) for minute in range(60)]
_TWO_DIGITS = [f"{n:02d}" for n in range(60)]
_THREE_DIGITS = [f"{n:03d}" for n in range(1000)]


def epoch_millis_text(millis: int) -> str:
    """Epoch milliseconds as RFC 3339 in UTC with milliseconds (``…T12:00:00.123Z``):
    exactly what :func:`enforcer.core.clock.rfc3339` writes for that instant, in a
    quarter of its time (the date made once per day, the rest from small tables: UTC
    days have 86,400 seconds in Python's calendar). Raises ``OverflowError`` for an
    instant outside years 1 to 9999, as it does."""
    seconds, rest = divmod(millis, 1000)
    day, second = divmod(seconds, 86400)
    return _text(day, second, rest)


def _utc_text(value: datetime) -> str:
    """An aware datetime in UTC as :func:`enforcer.core.clock.rfc3339` writes it (its
    microseconds cut to milliseconds), from its distance to the epoch, as above."""
    delta = value - _EPOCH
    return _text(delta.days, delta.seconds, delta.microseconds // 1000)


def _text(day: int, second: int, millis: int) -> str:
    """Day ``day`` since the epoch, ``second`` of that day and ``millis`` after it."""
    date = _DATES.get(day)
    if date is None:
        date = (_NAIVE_EPOCH + day * _DAY).date().isoformat()
        if len(_DATES) >= _DATES_LIMIT:
            _DATES.clear()
        _DATES[day] = date
    minute, second = divmod(second, 60)
    return f"{date}T{_HOURS_MINUTES[minute]}:{_TWO_DIGITS[second]}.{_THREE_DIGITS[millis]}Z"


class DirectItem(NamedTuple):
    """One identifier field a direct read looks at."""

    location: Location
    text: str
    """The location as a record path (``contact.email``)."""
    type: str
    fixed: tuple[str, ...] | None
    """Its purposes when they do not come from the record (``None``: no purpose)."""
    purposes: Location | None
    """Where the record keeps its purposes, when it does."""


class DirectEvent(NamedTuple):
    """What a direct read found: the event, and where each identifier is."""

    event: Event
    locations: tuple[Location, ...]
    texts: tuple[str, ...]


class DirectRead:
    """The direct read of one mapping under one schema (or of plain JSON): each
    identifier's type, purposes and location fixed when the mapping is compiled, a field
    of the record's own object one dict lookup."""

    __slots__ = ("_event_id", "_items", "_occurred_at", "_subject_id")

    def __init__(
        self,
        event_id: Location | None,
        subject_id: Location,
        occurred_at: Location,
        items: Sequence[DirectItem],
    ) -> None:
        self._event_id = event_id
        self._subject_id = subject_id
        self._occurred_at = occurred_at
        self._items = tuple(items)

    @classmethod
    def of(
        cls,
        event_id: RecordPath | None,
        subject_id: RecordPath,
        occurred_at: RecordPath,
        identifiers: Sequence[tuple[RecordPath, str, object]],
    ) -> DirectRead | None:
        """The direct read of a mapping whose identifiers (path, type, where their
        purposes come from: a record path, a fixed tuple, ``"schema-tags"`` or
        ``"ledger"``, neither of which the record holds) are ``identifiers``; ``None``
        when a path is not field names only, two identifiers share a path, or a type is
        one the model would trim."""
        event_ids = _names(event_id) if event_id is not None else ()
        subject_ids, times = _names(subject_id), _names(occurred_at)
        if event_ids is None or subject_ids is None or times is None:
            return None
        items = []
        for path, kind, purposes in identifiers:
            location = _names(path)
            if location is None or not plain_type_and_tags(kind, None):
                return None
            if isinstance(purposes, RecordPath):
                source = _names(purposes)
                if source is None:
                    return None
                items.append(DirectItem(location, ".".join(location), kind, None, source))
            else:
                fixed = purposes if isinstance(purposes, tuple) and purposes else None
                items.append(DirectItem(location, ".".join(location), kind, fixed, None))
        if len({item.location for item in items}) < len(items):
            return None
        return cls(event_ids if event_id is not None else None, subject_ids, times, items)

    def read(self, view: Any, topic: str, partition: int, offset: int) -> DirectEvent | None:
        """The event in ``view``, or ``None`` for the general read to decide.

        The object's event fields, each checked as the model would (a non-empty string
        id; a timestamp :func:`_timestamp` vouches for); then each identifier in order:
        absent, null or empty gives none; a value that is not a string, or purposes
        :func:`_purposes` cannot vouch for, hand the record back."""
        if type(view) is not dict:
            return None
        document: dict[Any, Any] = view
        ids = self._event_fields(document, topic, partition, offset)
        if ids is None:
            return None
        identifiers: list[EventIdentifier] = []
        locations: list[Location] = []
        texts: list[str] = []
        for location, text, kind, fixed, purposes_at in self._items:
            value = _at(document, location)
            if value is MISSING or value is None or value == "":
                continue
            if type(value) is not str:
                return None
            if purposes_at is not None:
                purposes = _purposes(_at(document, purposes_at))
                if purposes is _UNSURE:
                    return None
            elif fixed is not None:
                purposes = list(fixed)
            else:
                purposes = None
            identifiers.append(_new(EventIdentifier, (kind, value, purposes)))
            locations.append(location)
            texts.append(text)
        event = _new(Event, (*ids, tuple(identifiers), None))
        return _new(DirectEvent, (event, tuple(locations), tuple(texts)))  # type: ignore[no-any-return]

    def _event_fields(
        self, document: dict[Any, Any], topic: str, partition: int, offset: int
    ) -> tuple[str, str, str] | None:
        """The event id, subject id and time, or ``None`` when one is not plainly valid."""
        if self._event_id is None:
            event_id: Any = f"{topic}/{partition}/{offset}"
        else:
            event_id = _at(document, self._event_id)
            if type(event_id) is not str or not event_id:
                return None
        subject_id = _at(document, self._subject_id)
        if type(subject_id) is not str or not subject_id:
            return None
        occurred_at = _timestamp(_at(document, self._occurred_at))
        if occurred_at is None:
            return None
        return event_id, subject_id, occurred_at


# Every field given: tuple.__new__ directly, without a NamedTuple's own __new__ (Python
# code that fills defaults).
_new: Any = tuple.__new__


def _names(path: RecordPath) -> tuple[str, ...] | None:
    """The path's steps when they are field names only."""
    names = tuple(step for step in path.steps if type(step) is str)
    return names if len(names) == len(path.steps) else None


def _at(view: dict[Any, Any], location: Location) -> Any:
    """The value at names through objects, from the record's own object ``view``;
    :data:`MISSING` when a name is not there or a null is on the way; anything else on
    the way (a list, a number) is not a value a direct read vouches for: an object that
    is not a string, which hands the record to the general read."""
    value: Any = view.get(location[0], MISSING)
    for index in range(1, len(location)):
        if value is MISSING:
            return MISSING
        if type(value) is not dict:
            return MISSING if value is None else _NOT_DIRECT
        found: dict[Any, Any] = value
        value = found.get(location[index], MISSING)
    return value


_NOT_DIRECT: Any = object()


def _timestamp(value: Any) -> str | None:
    """``occurred_at`` as the general read writes it, when the model would take it
    as it is; else ``None``."""
    if type(value) is str:
        return value if is_plain_rfc3339(value) else None
    if type(value) is int:
        try:
            return epoch_millis_text(value)
        except OverflowError:
            return None
    if type(value) is datetime:
        zone = value.tzinfo
        if zone is UTC:
            return _utc_text(value)
        if zone is not None:
            text = rfc3339(value)
            return text if is_plain_rfc3339(text) else None
    return None


def _purposes(found: Any) -> list[str] | None:
    """The purposes a record's tag list gives; :data:`_UNSURE` when the general read
    decides."""
    if found is MISSING or found is None:
        return None
    if type(found) is str:
        return [found]
    if (type(found) is list or type(found) is tuple) and all_strings(found):
        return list(found)
    return _UNSURE


_UNSURE: list[str] = []
