"""A JSON value written back with some of it changed, every number keeping its exact
value: parsed as a double, a number past 17 digits (``0.30000000000000000001``) would
be written back as another (docs/contract.md: any other field is forwarded as it is;
docs/formats.md)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def json_document_to_write(body: bytes, document: Any) -> Any:
    """What to write a JSON ``body`` back from: its parsed ``document``, or, when a
    number in it may not read back as written, :func:`json_as_written` (which costs a
    few microseconds more)."""
    return json_as_written(body) if numbers_may_change(body) else document


def numbers_may_change(body: bytes) -> bool:
    """Whether a number of JSON ``body``, as orjson reads it, may not be written back at
    its value: one of 16 digits or more (a double holds 15 for certain:
    ``0.30000000000000000001`` reads as 0.3, and an integer beyond 64 bits has 20), or
    one with a negative exponent of three digits (``1e-400`` reads as 0.0; below 1e-307
    a double holds fewer digits). Numbers of 15 digits or fewer in a double's normal
    range read back at their value (a positive exponent that large, ``1e400``, is one
    orjson refuses: its body never gets here). The text alone decides: the parsed
    document is not needed.

    The text is looked at whole, strings included: a string holding such text only
    sends the body the slower way. One translation and two searches, whatever the
    record holds (hex ids such as ``3f2e0e4a`` included)."""
    marked = body.translate(_NUMBER_MARKS)
    return marked.find(_SIXTEEN_DIGITS) >= 0 or marked.find(_TINY_EXPONENT) >= 0


# Digits and the point become "0", "e" and "E" become "e", a minus stays, all else is a
# space.
_NUMBER_MARKS = bytes(
    ord("0")
    if chr(code) in "0123456789."
    else ord("e")
    if chr(code) in "eE"
    else ord("-")
    if chr(code) == "-"
    else ord(" ")
    for code in range(256)
)
_SIXTEEN_DIGITS = b"0" * 16
_TINY_EXPONENT = b"e-000"


def json_as_written(body: bytes) -> Any:
    """The JSON ``body`` (one that decoded) as dicts and lists with each number kept as
    its text, which ``orjson.dumps`` writes back as it came: parsed as a float, a number
    beyond a double's 17 digits (``0.30000000000000000001``, ``12345678901234567.5``)
    would be forwarded with another value than the one written and judged."""
    return json.loads(body, parse_int=_as_written, parse_float=_as_written)


def _as_written(text: str) -> orjson.Fragment:
    return orjson.Fragment(text)
