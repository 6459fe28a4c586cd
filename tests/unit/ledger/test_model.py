"""Ledger records: parsed strictly, never raising, messages without values."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.core.models import DeadLetterReason
from enforcer.core.parse import ParseFailure
from enforcer.ledger.model import (
    GrantedIdentifier,
    SubjectErasure,
    SubjectUpdate,
    SubjectWithheld,
    parse_ledger_line,
    parse_ledger_record,
)

PHONE = "+1 415 555 0100"


def value(**fields: Any) -> bytes:
    base: dict[str, Any] = {
        "subject_id": "acct-1",
        "updated_at": "2019-10-08T12:00:00Z",
        "identifiers": [{"type": "Phone", "value": PHONE, "purposes": ["Security.MFA "]}],
    }
    base.update(fields)
    return orjson.dumps(base)


def test_a_value_becomes_an_update_with_normalized_type_and_purposes() -> None:
    """Types are lower-cased; purposes normalized, de-duplicated and sorted."""
    identifiers = [
        {"type": "email", "value": "a@example.com", "purposes": ["b", "a", "B", " a"]},
        {"type": "device_id", "value": "d-1"},
    ]
    parsed = parse_ledger_record(b"acct-1", value(identifiers=identifiers, extra=1))
    assert parsed == SubjectUpdate(
        "acct-1",
        "2019-10-08T12:00:00Z",
        (
            GrantedIdentifier("email", "a@example.com", ("a", "b")),
            GrantedIdentifier("device_id", "d-1", ()),
        ),
    )


def test_a_null_value_with_a_key_is_an_erasure() -> None:
    """A tombstone erases the subject named by its key."""
    assert parse_ledger_record(b"acct-1", None) == SubjectErasure("acct-1")


@pytest.mark.parametrize(
    ("key", "raw", "reason", "message"),
    [
        (None, None, DeadLetterReason.INVALID_JSON, "a tombstone without a subject id key"),
        (b"\xff", None, DeadLetterReason.SCHEMA, "a tombstone key that is not UTF-8"),
        (b"acct-2", value(), DeadLetterReason.SCHEMA, "subject_id: does not match the record key"),
        (None, b"{", DeadLetterReason.INVALID_JSON, "not valid UTF-8 JSON"),
        (None, b"null", DeadLetterReason.NOT_AN_OBJECT, "the value is not a JSON object"),
        (None, value(updated_at="yesterday"), DeadLetterReason.SCHEMA, "updated_at: must be"),
        (None, value(subject_id=""), DeadLetterReason.SCHEMA, "subject_id:"),
        (
            None,
            value(identifiers=[{"type": "phone", "value": PHONE, "purposes": ["no good"]}]),
            DeadLetterReason.SCHEMA,
            "identifiers[0].purposes[0]: not a purpose tag",
        ),
        (
            None,
            value(identifiers=[{"type": "phone", "value": 4155550100}]),
            DeadLetterReason.SCHEMA,
            "identifiers[0].value",
        ),
        (
            None,
            value(identifiers=[{"type": PHONE, "value": "phone"}]),
            DeadLetterReason.SCHEMA,
            "identifiers[0].type: must be an identifier type",
        ),
        (
            None,
            value(identifiers=[{"type": "ph\u03bfne", "value": PHONE}]),
            DeadLetterReason.SCHEMA,
            "identifiers[0].type: must be an identifier type",
        ),
        (
            None,
            value().replace(b'"acct-1"', b'"acct-1","n":NaN'),
            DeadLetterReason.INVALID_JSON,
            "NaN",
        ),
    ],
)
def test_an_invalid_record_is_a_failure_naming_path_and_problem(
    key: bytes | None, raw: bytes | None, reason: DeadLetterReason, message: str
) -> None:
    """Every invalid record gives a reason and a message that never holds a value."""
    parsed = parse_ledger_record(key, raw)
    assert isinstance(parsed, ParseFailure)
    assert parsed.reason is reason
    assert message in parsed.message
    assert PHONE not in parsed.message and "4155550100" not in parsed.message


INVALID_VALUES = [
    b"{",
    b"",
    b"null",
    b"[]",
    value(updated_at="yesterday"),
    value(subject_id=""),
    value(subject_id="acct-2"),
    value(identifiers=[{"type": "phone", "value": PHONE, "purposes": ["Security MFA"]}]),
    value(identifiers=[{"type": "phone", "value": 4155550100}]),
    value().replace(b'"acct-1"', b'"acct-1","n":NaN'),
    value().replace(b'"purposes":', b'"purposes":[],"purposes":'),
]


@pytest.mark.parametrize("raw", INVALID_VALUES)
def test_a_refused_topic_value_withholds_the_subject_its_key_names(raw: bytes) -> None:
    """Whatever makes a topic's value invalid, under a UTF-8 key it is refused naming
    that key's subject (who keeps no purpose until its next valid value); under a key
    that names no subject, and as a file's line, it is a plain failure."""
    parsed = parse_ledger_record(b"acct-1", raw)
    assert isinstance(parsed, SubjectWithheld) and parsed.subject_id == "acct-1"
    assert PHONE not in parsed.message and "acct" not in parsed.message
    for key in (None, b"", b"acct-1\xff"):
        plain = parse_ledger_record(key, raw)
        assert isinstance(plain, ParseFailure) and not isinstance(plain, SubjectWithheld)
        assert (plain.reason, plain.message) == (parsed.reason, parsed.message) or key is None
    line = parse_ledger_line(raw)  # no key: valid when the value alone is
    assert not isinstance(line, SubjectWithheld)
    assert isinstance(line, ParseFailure) or raw == value(subject_id="acct-2")


@settings(max_examples=300, deadline=None)
@given(
    key=st.text(st.characters(codec="utf-8"), min_size=1, max_size=8),
    raw=st.binary(max_size=40) | st.sampled_from(INVALID_VALUES),
)
def test_every_topic_value_under_a_subject_key_is_an_update_or_withholds(
    key: str, raw: bytes
) -> None:
    """No third outcome: a value under a subject's key replaces its state or withholds
    it; and a tombstone erases it."""
    encoded = key.encode()
    parsed = parse_ledger_record(encoded, raw)
    if isinstance(parsed, ParseFailure):
        assert isinstance(parsed, SubjectWithheld)
        assert parsed.subject_id == key
    else:
        assert isinstance(parsed, SubjectUpdate)


def test_a_topic_value_without_a_key_is_a_schema_failure() -> None:
    """A ledger topic's value is keyed by its subject id: without a key it could never be
    erased by a tombstone nor compacted, so it is refused (live and in replay alike)."""
    parsed = parse_ledger_record(None, value())
    assert parsed == ParseFailure(
        DeadLetterReason.SCHEMA,
        "subject_id: the record has no key (a ledger value is keyed by its subject_id)",
    )


def test_a_file_line_has_no_key_and_is_an_update() -> None:
    """A line of a ledger file has no key: nothing to compare, the same update a keyed
    record gives."""
    assert parse_ledger_line(value()) == parse_ledger_record(b"acct-1", value())
    assert isinstance(parse_ledger_line(value()), SubjectUpdate)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{", DeadLetterReason.INVALID_JSON),
        (b"null", DeadLetterReason.NOT_AN_OBJECT),
        (value(updated_at="yesterday"), DeadLetterReason.SCHEMA),
    ],
)
def test_an_invalid_file_line_is_a_failure(raw: bytes, reason: DeadLetterReason) -> None:
    """A line is judged like a record's value; a ``null`` line is no tombstone."""
    parsed = parse_ledger_line(raw)
    assert isinstance(parsed, ParseFailure) and parsed.reason is reason
