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
    return json_as_written(body) if numbers_may_change(body, document) else document


def numbers_may_change(body: bytes, document: Any) -> bool:
    """Whether a number of JSON ``body``, parsed as ``document``, may not be written
    back at its value from ``document``: an integer beyond 64 bits (orjson reads it as a
    double, and cannot write it), or a double read from 16 digits or more or with an
    exponent (``0.30000000000000000001`` reads as 0.3, ``1e-400`` as 0.0). Integers
    within 64 bits are exact, and other doubles read back as written."""
    marked = body.translate(_NUMBER_MARKS)
    if _SIXTEEN_DIGITS not in marked and _EXPONENT not in marked:
        return False
    if 92 in body:  # a backslash: an escaped quote would mislead the split below
        return _holds_an_inexact_number(document)
    # Outside strings (a uuid's "0e4a" is no exponent) only numbers have digits.
    outside = b"".join(body.split(b'"')[::2]).translate(_NUMBER_MARKS)
    return _SIXTEEN_DIGITS in outside or _EXPONENT in outside


def _holds_an_inexact_number(document: Any) -> bool:
    pending = [document]
    while pending:
        node = pending.pop()
        if type(node) is float or (type(node) is int and not _INT64_MIN <= node <= _UINT64_MAX):
            return True
        if type(node) is dict:
            pending.extend(node.values())
        elif type(node) is list:
            pending.extend(node)
    return False


_INT64_MIN = -(2**63)
_UINT64_MAX = 2**64 - 1

# Digits and the point become "0", "e" and "E" become "e" (a string holding such text
# only takes the slower way).
_NUMBER_MARKS = bytes(
    ord("0") if chr(code) in "0123456789." else ord("e") if chr(code) in "eE" else ord(" ")
    for code in range(256)
)
_SIXTEEN_DIGITS = b"0" * 16
_EXPONENT = b"0e"


def json_as_written(body: bytes) -> Any:
    """The JSON ``body`` (one that decoded) as dicts and lists with each number kept as
    its text, which ``orjson.dumps`` writes back as it came: parsed as a float, a number
    beyond a double's 17 digits (``0.30000000000000000001``, ``12345678901234567.5``)
    would be forwarded with another value than the one written and judged."""
    return json.loads(body, parse_int=_as_written, parse_float=_as_written)


def _as_written(text: str) -> orjson.Fragment:
    return orjson.Fragment(text)
