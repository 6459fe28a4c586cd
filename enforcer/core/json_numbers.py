"""A JSON value written back with some of it changed, every number keeping its exact
value: parsed as a double, a number past 17 digits (``0.30000000000000000001``) would
be written back as another (docs/contract.md: any other field is forwarded as it is;
docs/formats.md)."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson


def json_document_to_write(body: bytes, document: Any, may_change: bool) -> Any:
    """What to write a JSON ``body`` back from: its parsed ``document``, or, when a
    number in it may not read back as written (``may_change``: what
    :func:`numbers_may_change` answers for ``body``), :func:`json_as_written` (which
    costs a few microseconds more)."""
    return json_as_written(body) if may_change else document


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
    return marked.rfind(_SIXTEEN_DIGITS) >= 0 or marked.rfind(_TINY_EXPONENT) >= 0


def has_long_digit_run(value: bytes) -> bool:
    """Whether ``value`` holds 19 ASCII digits in a row: a JSON integer there may need
    more than 64 bits, which orjson reads as a float, so only the exact (standard
    library) parser keeps it. Asked before reading a record, where
    :func:`numbers_may_change` is asked before writing one back."""
    return _long_digit_run_in(value, value.translate(_NUMBER_MARKS))


def number_checks(body: bytes) -> tuple[bool, bool]:
    """``(has_long_digit_run(body), numbers_may_change(body))`` from one marking of
    ``body``: for a reader that decides how to read a record now and how to write it
    back later. A run of 19 digits is one of 16 digits-or-points too, so the first
    answer is only looked for when the second is yes."""
    marked = body.translate(_NUMBER_MARKS)
    if marked.rfind(_SIXTEEN_DIGITS) >= 0:
        return _long_digit_run_in(body, marked), True
    return False, marked.rfind(_TINY_EXPONENT) >= 0


def _long_digit_run_in(value: bytes, marked: bytes) -> bool:
    """Whether ``value`` (marked as ``marked``) holds 19 digits in a row. The marking
    cannot tell a point from a digit: a run of 19 marks (the search at C speed that
    rules out nearly every record) is checked digit by digit, from where the first
    starts (no run of digits starts before it)."""
    start = marked.find(_NINETEEN_DIGITS)
    return start >= 0 and _DIGIT_RUN.search(value, start) is not None


# The one marking of a JSON text both questions search: digits and the point become
# "0", "e" and "E" become "e", a minus stays, all else is a space. Searching it for a
# literal is a C-speed test; a regular expression over the record costs ten times more.
# Whether a literal is there is asked with rfind: the same answer as find, and on these
# marks (many "e"s and "0"s) CPython's backward search takes half the time or less
# (160 ns against 420 ns for "e-000" in a 656-byte event).
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
_NINETEEN_DIGITS = b"0" * 19
_TINY_EXPONENT = b"e-000"
_DIGIT_RUN = re.compile(rb"[0-9]{19}")


def json_as_written(body: bytes) -> Any:
    """The JSON ``body`` (one that decoded) as dicts and lists with each number kept as
    its text, which ``orjson.dumps`` writes back as it came: parsed as a float, a number
    beyond a double's 17 digits (``0.30000000000000000001``, ``12345678901234567.5``)
    would be forwarded with another value than the one written and judged."""
    return json.loads(body, parse_int=_as_written, parse_float=_as_written)


def _as_written(text: str) -> orjson.Fragment:
    return orjson.Fragment(text)
