"""Identity event validation (docs/contract.md: identity event): what is dead-lettered, and why."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from enforcer.core.models import DeadLetterReason, Event
from enforcer.core.parse import ParseFailure, all_strings, parse_event

from ..conftest import event, ident


def failure(value: bytes) -> ParseFailure:
    result = parse_event(value)
    assert isinstance(result, ParseFailure), "expected the value to be refused"
    return result


def test_a_valid_event_parses() -> None:
    """All required fields present: an event with its identifiers."""
    result = parse_event(orjson.dumps(event(ident("phone", "+1 555", ["security.mfa"]))))
    assert isinstance(result, Event)
    assert result.identifiers[0].purposes == ["security.mfa"]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"{not json", DeadLetterReason.INVALID_JSON),
        (b"\xff\xfe{}", DeadLetterReason.INVALID_JSON),
        (b'{"a": NaN}', DeadLetterReason.INVALID_JSON),
        (
            b'{"event_id":"e","subject_id":"s","occurred_at":"2019-10-08T12:00:00Z",'
            b'"identifiers":[],"x":-Infinity}',
            DeadLetterReason.INVALID_JSON,
        ),
        (b"", DeadLetterReason.INVALID_JSON),
        (b"[1, 2]", DeadLetterReason.NOT_AN_OBJECT),
        (b'"a string"', DeadLetterReason.NOT_AN_OBJECT),
        (b"null", DeadLetterReason.NOT_AN_OBJECT),
        (b"{}", DeadLetterReason.SCHEMA),
    ],
)
def test_reasons(value: bytes, reason: DeadLetterReason) -> None:
    """Bytes that are not JSON, JSON that is not an object, and objects the event schema refuses."""
    assert failure(value).reason is reason


@pytest.mark.parametrize(
    ("change", "path"),
    [
        ({"event_id": ""}, "event_id"),
        ({"event_id": 7}, "event_id"),
        ({"subject_id": None}, "subject_id"),
        ({"occurred_at": "2019-10-08"}, "occurred_at"),
        ({"occurred_at": "2019-10-08T12:00:00"}, "occurred_at"),
        ({"occurred_at": "2019-02-30T12:00:00Z"}, "occurred_at"),
        ({"identifiers": {"type": "phone"}}, "identifiers"),
        ({"identifiers": [{"type": "phone"}]}, "identifiers[0].value"),
        ({"identifiers": [{"type": "", "value": "x"}]}, "identifiers[0].type"),
        ({"identifiers": [{"type": "  ", "value": "x"}]}, "identifiers[0].type"),
        ({"identifiers": [{"type": "email", "value": ""}]}, "identifiers[0].value"),
        (
            {"identifiers": [{"type": "email", "value": "a", "purposes": "security"}]},
            "identifiers[0].purposes",
        ),
        (
            {"identifiers": [{"type": "email", "value": "a", "purposes": [1]}]},
            "identifiers[0].purposes[0]",
        ),
        ({"event_type": 3}, "event_type"),
    ],
)
def test_schema_errors_name_the_field(change: dict[str, Any], path: str) -> None:
    """A broken event schema is a schema dead letter whose message starts with the field path."""
    data = event()
    data.update(change)
    result = failure(orjson.dumps(data))
    assert result.reason is DeadLetterReason.SCHEMA
    assert result.message.startswith(path + ":"), result.message


def test_missing_identifiers_is_a_schema_error() -> None:
    """``identifiers`` is required, though it may be empty."""
    data = event()
    del data["identifiers"]
    assert failure(orjson.dumps(data)).message.startswith("identifiers:")
    assert isinstance(parse_event(orjson.dumps(event())), Event)


def test_messages_never_repeat_the_value() -> None:
    """The offending value stays out of the message (it may be an identifier)."""
    secret = "+1-415-555-0199"
    for data in [
        event(ident("phone", secret, [5])),  # type: ignore[list-item]
        event(ident("phone", secret, 5)),  # type: ignore[arg-type]
        {**event(), "occurred_at": secret},
        {**event(), "event_id": 12345678},
    ]:
        assert secret not in failure(orjson.dumps(data)).message
        assert "12345678" not in failure(orjson.dumps(data)).message


def test_nan_inside_a_string_is_fine() -> None:
    """Only the bare constants are refused, not the words inside strings."""
    value = orjson.dumps(event(ident("email", "a@b.c", ["ads"]), note="NaN and Infinity"))
    assert isinstance(parse_event(value), Event)


def test_unknown_fields_are_accepted() -> None:
    """Fields the spec does not name, at any level, are allowed."""
    data = event(ident("email", "a@b.c", ["x"], verified=True, nested={"k": [1]}), extra={"a": 1})
    assert isinstance(parse_event(orjson.dumps(data)), Event)


@pytest.mark.parametrize(
    "value",
    [
        b'{"event_id":"e","subject_id":"s","occurred_at":"2019-10-08T12:00:00Z",'
        b'"identifiers":[{"type":"phone","value":"1","purposes":["security"]}],"identifiers":[]}',
        b'{"event_id":"e","subject_id":"s","occurred_at":"2019-10-08T12:00:00Z",'
        b'"identifiers":[{"type":"phone","value":"1","purposes":["security"],"purposes":["ads"]}]}',
        b'{"event_id":"e","subject_id":"s","occurred_at":"2019-10-08T12:00:00Z",'
        b'"identifiers":[{"type":"phone","value":"1","purposes":["security"],"purpos\\u0065s":["ads"]}]}',
        # The value judged is the last; a consumer keeping the first reads another number.
        b'{"event_id":"e","subject_id":"s","occurred_at":"2019-10-08T12:00:00Z",'
        b'"identifiers":[{"type":"phone","value":"2","value":"1","purposes":["ads"]}]}',
        b'{"event_id":"e","subject_id":"s","subject_id":"t","occurred_at":"2019-10-08T12:00:00Z",'
        b'"identifiers":[{"type":"phone","value":"1","purposes":["ads"]}]}',
        # Repeated in one identifier while another has none: as many keys as identifiers.
        b'{"event_id":"e","subject_id":"s","occurred_at":"2019-10-08T12:00:00Z",'
        b'"identifiers":[{"type":"phone","value":"1","purposes":["security"],"purposes":["ads"]},'
        b'{"type":"email","value":"a@b.c"}]}',
    ],
)
def test_a_repeated_judged_field_is_refused(value: bytes) -> None:
    """Parsers disagree on which of two equal keys counts, so the record is not judged."""
    result = failure(value)
    assert result.reason is DeadLetterReason.SCHEMA
    assert "twice" in result.message


def test_escapes_without_repeats_are_fine() -> None:
    """An escaped character alone does not make a record suspicious."""
    value = orjson.dumps(event(ident("email", "caf\u00e9@example.com", ["ads"])))
    value = value.replace("é".encode(), b"\\u00e9")
    assert isinstance(parse_event(value), Event)


def test_all_strings_reads_lists_and_tuples() -> None:
    """A format's tag list may come as a tuple (the compiled core checks the types it is
    handed, so a tuple where only lists were declared was an internal error)."""
    assert all_strings(["a", "b"]) and all_strings(("a", "b")) and all_strings(())
    assert not all_strings(["a", 1]) and not all_strings(("a", None))
