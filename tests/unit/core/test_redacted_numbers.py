"""A redacted record keeps every other field's value (docs/contract.md: forwarded
record), numbers included, and is JSON: a number beyond a float's range (``1e400``) or
with more digits than a float holds is written as the record wrote it, never as
``Infinity`` or its nearest float; nesting deeper than orjson writes is written too."""

from __future__ import annotations

import json

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from enforcer.core.json_numbers import has_long_digit_run
from enforcer.core.step import OutcomeKind

from ..conftest import event, ident, make_step, record

STEP = make_step()
_TWO = (
    ident("email", "a@x.io", ["marketing.advertising"]),
    ident("phone", "+14155550101", ["security.mfa"]),
)


def _redacted_with(extra: bytes) -> bytes:
    """The forwarded value of a two-identifier event (its phone stopped) whose field
    ``x`` holds the JSON text ``extra``, on the step's own path and on the reference
    path, which must agree."""
    value = orjson.dumps(event(*_TWO))[:-1] + b',"x":' + extra + b"}"
    one = STEP(record(value))
    reference = STEP.explain_by_reference(record(value))[0]
    assert one.kind is OutcomeKind.REDACTED, one.error_message
    assert reference.kind is OutcomeKind.REDACTED, reference.error_message
    assert one.forward_value == reference.forward_value
    assert one.forward_value is not None
    return one.forward_value


def _strict(value: bytes) -> object:
    def refuse(name: str) -> object:
        raise AssertionError(f"{name} is not JSON")

    return json.loads(value, parse_constant=refuse)


number_text = st.builds(
    lambda sign, whole, fraction, exponent: f"{sign}{whole}{fraction}{exponent}",
    st.sampled_from(["", "-"]),
    st.sampled_from(["0", "1", "9", "12345678901234567890", "1797693134862315"]),
    st.sampled_from(["", ".5", ".0000000000000000000001", ".12345678901234567"]),
    st.sampled_from(["", "e5", "E+308", "e309", "e400", "e-400", "E-330", "e99999"]),
)


@given(number_text)
@example("1e400")
@example("-1e400")
@example("1.0000000000000000000001")
def test_a_redacted_record_keeps_a_number_orjson_cannot_read_as_it_was_written(
    text: str,
) -> None:
    forwarded = _redacted_with(text.encode())
    document = _strict(forwarded)
    assert isinstance(document, dict)
    assert [item["type"] for item in document["identifiers"]] == ["email"]
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        exact = True  # beyond a float's range: only the exact path reads the record
    else:
        exact = has_long_digit_run(text.encode())  # 19 digits: the exact path too
    if exact:
        assert forwarded.endswith(b',"x":' + text.encode() + b"}")


def test_a_number_in_a_string_is_not_mistaken_for_one_the_writer_held() -> None:
    """The exact writer holds numbers in strings while it works: a string that looks
    like one stays a string."""
    looks_like = json.dumps("\x00" + "0" * 32 + ":1e400\x00").encode()
    forwarded = _redacted_with(b"[1e400, " + looks_like + b"]")
    assert _strict(forwarded)["x"] == [  # type: ignore[index]
        float("inf"),
        "\x00" + "0" * 32 + ":1e400\x00",
    ]


def test_nesting_deeper_than_orjson_writes_is_redacted() -> None:
    depth = 300
    forwarded = _redacted_with(b"[" * depth + b"]" * depth)
    document = _strict(forwarded)
    assert isinstance(document, dict)
    assert [item["type"] for item in document["identifiers"]] == ["email"]
