"""A JSON value written back keeps each number's exact value (docs/contract.md: any
other field is forwarded as it is)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.json_numbers import json_document_to_write, numbers_may_change

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
    written = orjson.dumps(json_document_to_write(body, _parsed(body)))
    again = json.loads(written, parse_float=Decimal, parse_int=Decimal)
    assert [item["n"] for item in again] == [Decimal(n) for n, _ in items]
    assert [item["s"] for item in again] == [s for _, s in items]


def test_strings_that_look_like_numbers_keep_the_fast_way() -> None:
    body = b'{"event_id":"3f2e0e4a-9b1c","at":"2019-10-08T12:00:00.123456789012Z","n":1.5}'
    assert not numbers_may_change(body)
