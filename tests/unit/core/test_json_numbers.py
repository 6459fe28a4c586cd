"""A JSON value written back keeps each number's exact value (docs/contract.md: any
other field is forwarded as it is)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import example, given
from hypothesis import strategies as st

from enforcer.core.json_numbers import (
    has_long_digit_run,
    json_document_to_write,
    number_checks,
    numbers_may_change,
)

_NUMBERS = st.one_of(
    st.integers(-(2**80), 2**80).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.decimals(allow_nan=False, allow_infinity=False, places=30).map(str),
    st.sampled_from(["0.30000000000000000001", "1e-400", "1E5", "-0.0", "1.10"]),
)
_STRINGS = st.text(max_size=8) | st.sampled_from(["3f2e0e4a", "1234567890123456789012", 'x\\"'])


def _parsed(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)


@given(st.lists(st.tuples(_NUMBERS, _STRINGS), max_size=4))
def test_written_back_every_number_reads_at_its_exact_value(items: list[tuple[str, str]]) -> None:
    """Whether or not the check sends the body the slower way, each number read back
    from what is written is the number written (the check is never wrong to say no)."""
    body = ("[" + ",".join(f'{{"n":{n},"s":{json.dumps(s)}}}' for n, s in items) + "]").encode()
    written = orjson.dumps(json_document_to_write(body, _parsed(body), numbers_may_change(body)))
    again = json.loads(written, parse_float=Decimal, parse_int=Decimal)
    assert [item["n"] for item in again] == [Decimal(n) for n, _ in items]
    assert [item["s"] for item in again] == [s for _, s in items]


def test_strings_that_look_like_numbers_keep_the_fast_way() -> None:
    body = b'{"event_id":"3f2e0e4a-9b1c","at":"2019-10-08T12:00:00.123456789012Z","n":1.5}'
    assert not numbers_may_change(body)


# The two checks as each was before they shared one marking, kept to hold the merged
# ones to exactly their answers.
_OLD_DIGIT_MAP = bytes(0x31 if 0x30 <= i <= 0x39 else 0x30 for i in range(256))
_OLD_NUMBER_MARKS = bytes(
    ord("0")
    if chr(code) in "0123456789."
    else ord("e")
    if chr(code) in "eE"
    else ord("-")
    if chr(code) == "-"
    else ord(" ")
    for code in range(256)
)


def _old_has_long_digit_run(value: bytes) -> bool:
    return b"1" * 19 in value.translate(_OLD_DIGIT_MAP)


def _old_numbers_may_change(body: bytes) -> bool:
    marked = body.translate(_OLD_NUMBER_MARKS)
    return marked.find(b"0" * 16) >= 0 or marked.find(b"e-000") >= 0


# Texts of digits (runs long and short), signs, exponents, points, quotes and letters.
_NUMBER_LIKE = st.lists(
    st.text(alphabet="0123456789", min_size=1, max_size=25) | st.sampled_from(list('-+eE."ax z:,')),
    max_size=40,
).map(lambda parts: "".join(parts).encode())


@given(_NUMBER_LIKE)
@example(b"1" * 19)
@example(b"1" * 18)
@example(b"123456789.123456789")  # 19 digits-or-points, no 19 digits
@example(b"1234.5678901234567890123")  # 19 digits after a point
@example(b"0.30000000000000000001")
@example(b"1e-400")
@example(b"1E-3.0")
@example(b"1e-99")
def test_the_shared_marking_answers_as_each_check_did_alone(body: bytes) -> None:
    """Both checks search one marking now: each answers as its own marking did."""
    long_run, may_change = _old_has_long_digit_run(body), _old_numbers_may_change(body)
    assert has_long_digit_run(body) is long_run
    assert numbers_may_change(body) is may_change
    assert number_checks(body) == (long_run, may_change)
