"""The direct read (enforcer/formats/direct.py) vouches only for what the general read
and the identity event's model accept, and gives the same event.

Over generated records, valid and nearly valid (values of every JSON and Avro type, empty
strings, nulls on the way, timestamps of each kind), under generated mappings of names
only: whenever the direct read gives an event, ``FieldMapping.read`` followed by
``event_from_fields`` (the model) gives an equal one, with the identifiers at the same
locations. And it does give one for the plainly valid records most streams are made of.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from enforcer.core.clock import rfc3339
from enforcer.core.models import Event
from enforcer.core.parse import event_from_fields
from enforcer.core.policy.spec import MappingSpec
from enforcer.formats.direct import DirectRead, epoch_millis_text
from enforcer.formats.mapping import FieldMapping, Read
from enforcer.formats.paths import location_text, parse_path
from enforcer.formats.tags import TagConvention

from .dict_codec import field

TAGS = TagConvention.of(None)
NAMES = ("a", "b", "c", "d", "e", "f")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _path(depth: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(NAMES), min_size=1, max_size=depth).map(".".join)


_PURPOSES: st.SearchStrategy[Any] = st.one_of(
    st.just("ledger"),
    st.just("schema-tags"),
    st.lists(st.sampled_from(["security.mfa", "marketing.advertising"]), max_size=2),
    _path(2).map(lambda p: {"path": p}),
)
_IDENTIFIER_SPECS: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "path": _path(2),
        "type": st.sampled_from(["phone", "email", "Phone"]),
        "purposes": _PURPOSES,
    }
)
_MAPPINGS: st.SearchStrategy[dict[str, Any]] = st.fixed_dictionaries(
    {
        "name": st.just("m"),
        "subject_id": _path(2),
        "occurred_at": _path(2),
        "identifiers": st.lists(
            _IDENTIFIER_SPECS, max_size=3, unique_by=lambda item: str(item["path"])
        ),
    },
    optional={"event_id": _path(2)},
)
_SCALARS = st.one_of(
    st.none(),
    st.just(""),
    st.sampled_from(["x", "u-1", "marketing.advertising", "2019-10-08T12:00:00Z"]),
    st.sampled_from(["2019-10-08T12:00:00.5+02:00", "2019-02-30T00:00:00Z", " x"]),
    st.text(max_size=3),
    st.integers(-(2**66), 2**66),
    st.sampled_from([1_569_931_200_000, 253_402_300_800_000, True, 0.5]),
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=2))])),
    st.datetimes(),
    st.binary(max_size=2),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=2).map(tuple),
        st.dictionaries(st.sampled_from(NAMES), inner, max_size=3),
    ),
    max_leaves=8,
)
_RECORDS = st.dictionaries(st.sampled_from(NAMES), _VALUES, max_size=3)


def _mostly(valid: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> Any:
    """``valid`` three times out of four: the direct read has something to vouch for."""
    return st.integers(0, 3).flatmap(lambda n: valid if n else other)


_IDS = _mostly(st.sampled_from(["u-1", "e-2"]), _SCALARS)
_TIMES = _mostly(
    st.one_of(
        st.integers(-(2**45), 2**45),
        st.datetimes(timezones=st.just(UTC)),
        st.sampled_from(["2019-10-08T12:00:00Z", "2019-10-08T12:00:00.123Z"]),
    ),
    _SCALARS,
)
_IDENTIFIERS = _mostly(st.sampled_from(["+14155550100", "a@b.c"]), _SCALARS)
_TAG_LISTS = _mostly(
    st.lists(st.sampled_from(["security.mfa", "marketing.advertising", "Not A Tag"]), max_size=2),
    _VALUES,
)


def _put(view: dict[str, Any], path: str, value: Any) -> None:
    """``value`` at ``path`` of ``view``, objects made on the way (unless something else
    is already there)."""
    *way, last = path.split(".")
    for name in way:
        view = view.setdefault(name, {})
        if not isinstance(view, dict):
            return
    view.setdefault(last, value)


@st.composite
def _records_for(draw: st.DrawFn, spec: dict[str, Any]) -> dict[str, Any]:
    """A record with mostly valid values at the mapping's paths, anything at the rest."""
    view: dict[str, Any] = {}
    wanted = [(spec["subject_id"], _IDS), (spec["occurred_at"], _TIMES)]
    if "event_id" in spec:
        wanted.append((spec["event_id"], _IDS))
    for item in spec["identifiers"]:
        wanted.append((item["path"], _IDENTIFIERS))
        if isinstance(item["purposes"], dict):
            wanted.append((item["purposes"]["path"], _TAG_LISTS))
    for path, values in draw(st.permutations(wanted)):
        _put(view, path, draw(values))
    for name, value in draw(_RECORDS).items():
        view.setdefault(name, value)
    return view


_MAPPED_RECORDS = _MAPPINGS.flatmap(lambda spec: st.tuples(st.just(spec), _records_for(spec)))


def _general(
    mapping: FieldMapping, view: Any, fields: Any = None
) -> tuple[Event, tuple[Any, ...]] | None:
    read = mapping.read(view, "t", 1, 2, fields, TAGS)
    if not isinstance(read, Read):
        return None
    event = event_from_fields(read.fields)
    return (event, read.locations) if isinstance(event, Event) else None


@settings(max_examples=300)
@given(_MAPPED_RECORDS)
@example(
    (
        {
            "name": "m",
            "subject_id": "a",
            "occurred_at": "b",
            "identifiers": [{"path": "c", "type": "phone", "purposes": {"path": "a"}}],
        },
        {"a": "u-1", "b": 0, "c": "+1"},
    )
)
def test_the_direct_read_gives_what_the_model_gives(mapped: tuple[dict[str, Any], Any]) -> None:
    spec, view = mapped
    mapping = FieldMapping.of(MappingSpec.model_validate(spec))
    direct = mapping.direct(None, None)
    if direct is None:
        return
    found = direct.read(view, "t", 1, 2)
    if found is None:
        return
    general = _general(mapping, view)
    assert general is not None, "the direct read vouched for what the model refuses"
    event, locations = general
    assert found.event[:4] == event[:4]
    assert found.locations == locations
    assert found.texts == tuple(location_text(location) for location in locations)


def test_plainly_valid_records_are_read_directly() -> None:
    """A names-only mapping is read directly, its identifiers and purposes as the
    general read gives them; a record it cannot vouch for is left to the general read."""
    spec = {
        "name": "m",
        "subject_id": "user.id",
        "event_id": "id",
        "occurred_at": "at",
        "identifiers": [
            {"path": "phone", "type": "phone", "purposes": ["security.mfa"]},
            {"path": "contact.email", "type": "email", "purposes": {"path": "contact.tags"}},
            {"path": "device", "type": "device_id", "purposes": "ledger"},
        ],
    }
    mapping = FieldMapping.of(MappingSpec.model_validate(spec))
    direct = mapping.direct(None, None)
    assert direct is not None
    view = {
        "id": "e-1",
        "user": {"id": "u-1"},
        "at": 1_569_931_200_123,
        "phone": "+14155550100",
        "contact": {"email": "a@b.c", "tags": "marketing.advertising"},
        "device": "",
    }
    found = direct.read(view, "t", 0, 1)
    assert found is not None
    assert found.event[:4] == ("e-1", "u-1", "2019-10-01T12:00:00.123Z", found.event.identifiers)
    assert [tuple(i) for i in found.event.identifiers] == [
        ("phone", "+14155550100", ["security.mfa"]),
        ("email", "a@b.c", ["marketing.advertising"]),
    ]
    assert found.texts == ("phone", "contact.email")
    general = _general(mapping, view)
    assert general is not None and general[0][:4] == found.event[:4]
    assert direct.read({**view, "phone": 5}, "t", 0, 1) is None
    assert direct.read({**view, "at": "yesterday"}, "t", 0, 1) is None


def test_paths_through_lists_have_no_direct_read() -> None:
    spec = {
        "name": "m",
        "subject_id": "user.id",
        "occurred_at": "at",
        "identifiers": [{"path": "phones[*]", "type": "phone", "purposes": "ledger"}],
    }
    assert FieldMapping.of(MappingSpec.model_validate(spec)).direct(None, None) is None
    # A type the model would trim (a policy trims its own; this guards other callers).
    path = parse_path("p")
    assert DirectRead.of(None, path, path, [(parse_path("q"), " phone", "ledger")]) is None
    assert DirectRead.of(None, path, path, [(parse_path("q"), "phone", "ledger")]) is not None


@given(_RECORDS)
def test_under_a_schema_the_tagged_fields_read_directly_as_the_general_read(view: Any) -> None:
    fields = {
        f.path: f
        for f in (
            field("a"),
            field("b", "int"),
            field("c", "string", "PII_PHONE", "purpose:security.mfa"),
        )
    }
    spec = {"name": "m", "subject_id": "a", "occurred_at": "b"}
    mapping = FieldMapping.of(MappingSpec.model_validate(spec))
    direct = mapping.direct(fields, TAGS)
    assert direct is not None
    found = direct.read(view, "t", 1, 2)
    if found is None:
        return
    general = _general(mapping, view, fields)
    assert general is not None
    assert found.event[:4] == general[0][:4]
    assert found.locations == general[1]


@given(st.integers(-(2**70), 2**70))
@example(253_402_300_799_999)
@example(253_402_300_800_000)
@example(-62_135_596_800_000)
@example(-62_135_596_800_001)
def test_epoch_milliseconds_are_written_as_rfc3339_writes_them(millis: int) -> None:
    try:
        expected = rfc3339(_EPOCH + timedelta(milliseconds=millis))
    except OverflowError:
        try:
            epoch_millis_text(millis)
        except OverflowError:
            return
        raise AssertionError("written where rfc3339 overflows") from None
    assert epoch_millis_text(millis) == expected


# Years 2 to 9998: an instant a zone's offset moves out of years 1 to 9999 has no text.
@given(
    st.datetimes(
        min_value=datetime(2, 1, 1),
        max_value=datetime(9998, 12, 31),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-3))]),
    )
)
@example(datetime(1, 1, 1, tzinfo=UTC))
@example(datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC))
def test_schema_timestamps_are_written_as_rfc3339_writes_them(at: datetime) -> None:
    """An Avro ``timestamp-millis`` (an aware datetime) as ``occurred_at``."""
    path = parse_path("t")
    direct = DirectRead.of(None, parse_path("s"), path, [])
    assert direct is not None
    found = direct.read({"s": "u-1", "t": at}, "topic", 0, 1)
    assert found is not None
    assert found.event.occurred_at == rfc3339(at)
