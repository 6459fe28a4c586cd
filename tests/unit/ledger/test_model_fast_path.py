"""The ledger parser's fast path returns exactly what the pydantic model returns.

Every record of a restore is parsed, so plain valid values skip the model
(enforcer/ledger/model.py). Whatever the value, the answer (the update, or the
failure and its message) must be the model's.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import example, given, settings
from hypothesis import strategies as st

from enforcer.ledger.model import (
    GrantedIdentifier,
    SubjectUpdate,
    model_update,
    parse_ledger_line,
    parse_ledger_record,
)

_GOOD_TIMESTAMPS = ["2019-10-08T12:00:00Z", "2019-10-08T12:00:00.123+02:00", "2019-10-08t12:00:00z"]
_BAD_TIMESTAMPS = [
    "2019-10-08 12:00:00z",
    "2019-02-30T12:00:00Z",
    "2019-10-08T12:00:00",
    "\u0662019-10-08T12:00:00Z",
    "",
]
_GOOD_TYPES = ["phone", "Email", "PHONE", "device_id"]
_BAD_TYPES = [" phone", "device_id\t", "", "\u212a", "x\x1c", "\u00e9"]
_GOOD_TAGS = ["security.mfa", "Marketing.Advertising ", "a", "b", "a.b-c_d", " A"]
_BAD_TAGS = ["a..b", "", "\u212a", "\u00e9", "x y"]

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False))
_text = st.one_of(st.text(max_size=8), st.sampled_from(["+1 415 555 0100", "a@example.com"]))


def _mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any]) -> Any:
    """Valid most of the time, so that one wrong thing in an otherwise valid value is
    common: that is where a fast path could differ from the model."""
    return st.integers(0, 5).flatmap(lambda n: bad if n == 0 else good)


_tags = _mostly(
    st.lists(st.sampled_from(_GOOD_TAGS), max_size=4),
    st.one_of(
        st.none(),
        _text,
        st.lists(
            st.one_of(st.sampled_from(_GOOD_TAGS + _BAD_TAGS), st.text(max_size=6), _scalars),
            max_size=3,
        ),
        st.lists(st.lists(_text, max_size=1), min_size=1, max_size=2),
    ),
)


@st.composite
def identifiers(draw: st.DrawFn) -> Any:
    item: dict[str, Any] = {}
    if draw(st.integers(0, 9)):
        item["type"] = draw(
            _mostly(st.sampled_from(_GOOD_TYPES), st.one_of(st.sampled_from(_BAD_TYPES), _scalars))
        )
    if draw(st.integers(0, 9)):
        item["value"] = draw(_mostly(_text.filter(bool), st.one_of(st.just(""), _scalars)))
    if draw(st.integers(0, 3)):
        item["purposes"] = draw(_tags)
    if draw(st.integers(0, 9)) == 0:
        item["extra"] = draw(_text)
    return item if draw(st.integers(0, 19)) else draw(_text)


@st.composite
def documents(draw: st.DrawFn) -> tuple[bytes | None, bytes]:
    document: dict[str, Any] = {}
    subject = draw(_mostly(st.sampled_from(["acct-1", "\u00e9"]), st.one_of(_text, _scalars)))
    if draw(st.integers(0, 19)):
        document["subject_id"] = subject
    if draw(st.integers(0, 19)):
        document["updated_at"] = draw(
            _mostly(
                st.sampled_from(_GOOD_TIMESTAMPS),
                st.one_of(st.sampled_from(_BAD_TIMESTAMPS), _text, _scalars),
            )
        )
    if draw(st.integers(0, 19)):
        document["identifiers"] = draw(
            _mostly(st.lists(identifiers(), max_size=3), st.one_of(_scalars, _text))
        )
    if draw(st.integers(0, 4)) == 0:
        document["note"] = draw(_text)
    value = json.dumps(document if draw(st.integers(0, 19)) else [document]).encode()
    key = (
        str(subject).encode()
        if draw(st.integers(0, 5))
        else draw(st.one_of(st.none(), st.binary(max_size=4)))
    )
    return key, value


@settings(max_examples=1500, deadline=None)
@given(documents())
@example(
    (
        b"acct-1",
        b'{"subject_id": "x", "subject_id": "acct-1", "updated_at": '
        b'"2019-10-08T12:00:00Z", "identifiers": []}',
    )
)
@example(
    (
        b"acct-1",
        b'{"subject_id": "acct-1", "updated_at": "2019-10-08T12:00:00Z", '
        b'"identifiers": [{"type": "a", "value": "v", "purposes": [1e999]}]}',
    )
)
@example(
    (
        b"acct-1",
        b'{"subject_id": "acct-1", "updated_at": "2019-10-08T12:00:00Z", '
        b'"identifiers": [{"type": "a", "value": "v", "purposes": [NaN]}]}',
    )
)
@example(
    (
        b"acct-1",
        b'{"subject_id": "acct-1", "updated_at": "2019-10-08T12:00:00Z", '
        b'"identifiers": [], "x": "\\ud800"}',
    )
)
def test_records_parse_as_the_model_parses_them(record: tuple[bytes | None, bytes]) -> None:
    key, value = record
    assert parse_ledger_record(key, value) == model_update(value, key, keyed=True)
    assert parse_ledger_line(value) == model_update(value, None, keyed=False)


def test_a_plain_value_is_read_with_its_purposes_normalized() -> None:
    """The common shape, as a restore reads it (the fast path): the model's result."""
    value = orjson.dumps(
        {
            "subject_id": "acct-1",
            "updated_at": "2019-10-08T12:00:00Z",
            "identifiers": [
                {"type": "Phone", "value": "+1 415 555 0100", "purposes": ["b", "A ", "a"]},
                {"type": "email", "value": "a@example.com", "purposes": None},
                {"type": "device_id", "value": "d-1"},
            ],
        }
    )
    expected = SubjectUpdate(
        "acct-1",
        "2019-10-08T12:00:00Z",
        (
            GrantedIdentifier("phone", "+1 415 555 0100", ("a", "b")),
            GrantedIdentifier("email", "a@example.com", ()),
            GrantedIdentifier("device_id", "d-1", ()),
        ),
    )
    assert parse_ledger_record(b"acct-1", value) == expected
    assert model_update(value, b"acct-1", keyed=True) == expected


def _base() -> dict[str, Any]:
    return {
        "subject_id": "acct-1",
        "updated_at": "2019-10-08T12:00:00Z",
        "identifiers": [{"type": "phone", "value": "+1 415 555 0100", "purposes": ["a"]}],
    }


_ODD_LISTS: list[Any] = [None, {}, "x", [None], [[]]]
_ALTERATIONS: list[tuple[str, Any]] = [
    *(("type", t) for t in [*_BAD_TYPES, "\u2000phone", "phone\x85", 1, None]),
    *(("value", v) for v in ["", 1, None, ["x"]]),
    *(("purposes", p) for p in [["b", "a"], ["a", "A", " a"], ["a..b"], [1], [["a"]], "a", {}]),
    *(("updated_at", t) for t in [*_BAD_TIMESTAMPS, *_GOOD_TIMESTAMPS, 0]),
    *(("subject_id", s) for s in ["", 1, None, ["acct-1"]]),
    *(("identifiers", i) for i in _ODD_LISTS),
]


def test_each_single_flaw_gets_the_models_answer() -> None:
    """One thing changed in a valid value, field by field: the model's verdict each time."""
    for field, altered in _ALTERATIONS:
        document = _base()
        if field in document:
            document[field] = altered
        else:
            document["identifiers"][0][field] = altered
        value = orjson.dumps(document)
        assert parse_ledger_record(b"acct-1", value) == model_update(
            value, b"acct-1", keyed=True
        ), (field, altered)
