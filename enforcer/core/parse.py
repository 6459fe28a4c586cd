"""Parse at the edge: raw value bytes → a validated identity event, or why not.

Never raises. Error messages name the field path and the problem, never a value.

:class:`enforcer.core.models.IdentityEvent` (pydantic) defines what is valid. Most records
take a fast path instead: ``orjson`` parses them and a few direct checks vouch for
the common, unambiguous shape. Whatever the fast path cannot vouch for goes to the
pydantic model, which gives the verdict and the message. The fast path only ever
accepts records the model accepts, with the same field values; a property test
holds it to that.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from typing import Any, TypeGuard

import orjson
from mypy_extensions import mypyc_attr
from pydantic import ValidationError

from enforcer.core.identifier_types import is_plain_type_name
from enforcer.core.models import (
    DeadLetterReason,
    Event,
    EventIdentifier,
    IdentityEvent,
    is_plain_rfc3339,
)

# Fields the decision depends on. If one of them appears twice in one JSON object,
# parsers disagree on which counts (the enforcer's takes the last, others the
# first), so forwarding the original bytes could smuggle an identifier past the
# decision: such records are dead-lettered. An identifier's ``value`` is one (the
# enforcer would judge and fingerprint one number and forward bytes in which a
# consumer reads another), and so is ``subject_id`` (the ledger is asked, and exposure
# kept, for the subject the enforcer reads).
_JUDGED_FIELDS = frozenset({"identifiers", "type", "value", "purposes", "subject_id"})


# Clearer words for pydantic's messages where its own would show a regex.
_MESSAGES = {"string_pattern_mismatch": "must be an RFC 3339 timestamp with a UTC offset"}


@mypyc_attr(allow_interpreted_subclasses=True)  # the ledger's SubjectWithheld is one
@dataclass(frozen=True, slots=True)
class ParseFailure:
    """Why a value cannot be judged (becomes a dead letter)."""

    reason: DeadLetterReason
    message: str


_REPEATED = ParseFailure(
    DeadLetterReason.SCHEMA, "a field the enforcer judges appears twice in one object"
)
_OTHER_CASE = ParseFailure(
    DeadLetterReason.SCHEMA,
    "a field the enforcer judges is also written in other letter cases (a consumer that "
    "matches names without case could read it instead)",
)


def parse_event(value: bytes | None, *, types_judged: bool = True) -> Event | ParseFailure:
    """Validate one record value as an identity event (docs/contract.md: identity event).

    ``types_judged`` says whether a rule looks at identifier types; when none does, a
    repeated ``type`` cannot change a decision and is not looked for.
    """
    if value is None:
        return ParseFailure(DeadLetterReason.INVALID_JSON, "the record has no value")
    event = _vouch(value)
    if event is None:
        checked = _validate(value)
        if isinstance(checked, ParseFailure):
            return checked
        event = checked
    identifiers = event.identifiers
    with_purposes = sum(1 for identifier in identifiers if identifier.purposes is not None)
    return judged_field_conflict(value, len(identifiers), with_purposes, types_judged) or event


def judged_field_conflict(
    value: bytes, identifiers: int, with_purposes: int, types_judged: bool = True
) -> ParseFailure | None:
    """Why a value read as holding ``identifiers`` valid identifiers (``with_purposes``
    of them with purposes that are not null) may be read otherwise by another parser:
    a judged field repeated in one object, or written in other letter cases where it is
    judged. ``None`` when it cannot be. The identity event's check, which a ledger value
    (the same field names) takes too."""
    if not may_repeat_a_judged_field(value, identifiers, with_purposes, types_judged):
        return None
    return _judged_field_conflict(value, types_judged)


def _validate(value: bytes) -> Event | ParseFailure:
    """The authoritative check: the pydantic model."""
    try:
        model = IdentityEvent.model_validate_json(value)
    except ValidationError as exc:
        failure = validation_failure(exc)
        if failure.reason is not DeadLetterReason.INVALID_JSON and has_non_json_constant(value):
            return _NON_JSON_CONSTANT
        return failure
    if has_non_json_constant(value):
        return _NON_JSON_CONSTANT
    return Event(
        model.event_id,
        model.subject_id,
        model.occurred_at,
        tuple(EventIdentifier(i.type, i.value, i.purposes) for i in model.identifiers),
    )


def event_from_fields(fields: dict[str, Any]) -> Event | ParseFailure:
    """Validate an event a record format read out of a record's own fields (a dict with
    the identity event's fields, identifiers as ``{"type", "value", "purposes"}``), by
    the same model and rules as a plain identity event."""
    try:
        model = IdentityEvent.model_validate(fields)
    except ValidationError as exc:
        return validation_failure(exc)
    return Event(
        model.event_id,
        model.subject_id,
        model.occurred_at,
        tuple(EventIdentifier(i.type, i.value, i.purposes) for i in model.identifiers),
    )


def _vouch(value: bytes) -> Event | None:
    """The fast path: the event when it is plainly valid, else None (ask the model).

    orjson refuses NaN, Infinity and lone surrogates, as JSON does. Every check here
    is at least as strict as the model's: exact types (no coercion), non-empty
    strings, ASCII timestamps of the RFC 3339 form with a real calendar date, and
    identifier types that need no trimming.
    """
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    fields = plain_event_fields(document)
    if fields is None:
        return None
    event_id, subject_id, occurred_at, raw_identifiers = fields
    identifiers = []
    for item in raw_identifiers:
        if type(item) is not dict:
            return None
        kind, text, purposes = item.get("type"), item.get("value"), item.get("purposes")
        if type(text) is not str or not text or not plain_type_and_tags(kind, purposes):
            return None
        identifiers.append(EventIdentifier(kind, text, purposes))
    return Event(event_id, subject_id, occurred_at, tuple(identifiers), document)


def plain_type_and_tags(kind: object, purposes: Any) -> TypeGuard[str]:
    """Whether an identifier's ``type`` (then a string) and ``purposes`` as orjson parsed
    them are what the model would take as they are: a type name that needs no
    trimming (ASCII), and no purposes or a list of strings."""
    return (
        type(kind) is str
        and is_plain_type_name(kind)
        and (purposes is None or (type(purposes) is list and all_strings(purposes)))
    )


def plain_event_fields(document: Any) -> tuple[str, str, str, list[Any]] | None:
    """``event_id``, ``subject_id``, ``occurred_at`` and the ``identifiers`` list of an
    object orjson parsed, when they are plainly valid (exact types, non-empty ids, an
    ASCII RFC 3339 timestamp with a real date, ``event_type`` absent, null or a
    string); else ``None``, for the model to decide."""
    if type(document) is not dict:
        return None
    get = document.get
    event_id, subject_id, occurred_at = get("event_id"), get("subject_id"), get("occurred_at")
    identifiers, event_type = get("identifiers"), get("event_type")
    if (
        type(event_id) is not str
        or type(subject_id) is not str
        or type(occurred_at) is not str
        or type(identifiers) is not list
        or not event_id
        or not subject_id
        or not (event_type is None or type(event_type) is str)
        or not is_plain_rfc3339(occurred_at)
    ):
        return None
    return event_id, subject_id, occurred_at, identifiers


def all_strings(items: list[Any] | tuple[Any, ...]) -> bool:
    """Whether every item is a string."""
    # str.join refuses anything but strings, in C: cheaper than a type test per item.
    try:
        "".join(items)
    except TypeError:
        return False
    return True


def json_strings(value: Any) -> int:
    """How many strings a parsed JSON ``value`` holds, object keys included. In a JSON
    text without escapes each is written between two quotes, and no other quote is
    written: a text with more quotes than twice this had a key written twice in one
    object (the parser kept one of them)."""
    if type(value) is str:
        return 1
    count = 0
    if type(value) is dict:
        count = len(value)
        for item in value.values():
            if type(item) is str:
                count += 1
            elif type(item) is dict or type(item) is list:
                count += json_strings(item)
    elif type(value) is list:
        for item in value:
            if type(item) is str:
                count += 1
            elif type(item) is dict or type(item) is list:
                count += json_strings(item)
    return count


def validation_failure(exc: ValidationError) -> ParseFailure:
    errors = exc.errors(include_url=False, include_input=False)
    first = errors[0]
    kind = first["type"]
    if kind == "json_invalid":
        return ParseFailure(DeadLetterReason.INVALID_JSON, f"not valid UTF-8 JSON: {first['msg']}")
    if kind in ("model_type", "model_attributes_type") and not first["loc"]:
        return ParseFailure(DeadLetterReason.NOT_AN_OBJECT, "the value is not a JSON object")
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    path = format_location(tuple(first["loc"])) or "(top level)"
    message = _MESSAGES.get(kind) or first["msg"].removeprefix("Value error, ")
    return ParseFailure(DeadLetterReason.SCHEMA, f"{path}: {message}{more}")


def may_repeat_a_judged_field(
    value: bytes, identifiers: int, with_purposes: int, types_judged: bool
) -> bool:
    """A cheap, conservative pre-check: False only when no judged field can repeat in
    an event of ``identifiers`` valid identifiers (each has one ``type`` and one
    ``value``), ``with_purposes`` of them with purposes that are not null.

    Without escapes, a key can only be written literally, so counting its quoted
    name bounds how often it occurs. ``purposes`` may be absent, so its count is held
    to the identifiers that have them: one repeated where another identifier has none
    would otherwise keep the count at the number of identifiers. With any escape, the
    exact check runs.
    """
    # A backslash, looked for as an int: bytes.__contains__ tries a byte string as an
    # int first, raising and discarding a TypeError on every call. 0xC4 and 0xC5 lead
    # the UTF-8 of U+0100 to U+017F, among them the letters a case-blind match takes for
    # ASCII ones of the judged names: long s (U+017F) for "s" (Go, Java, .NET), dotted
    # and dotless i (U+0130, U+0131) for "i" (Java, .NET). Looked for as single bytes (at
    # memchr's speed; a two-byte search costs twenty times as much): a record with
    # another letter of that block takes the exact check.
    if 92 in value or 0xC4 in value or 0xC5 in value:
        return True
    # Counted case-blind: a key written in other letter cases ("VALUE") is the same key
    # to a consumer that matches names without case (Go's encoding/json, Jackson's
    # case-insensitive properties, .NET's OrdinalIgnoreCase).
    lowered = value.lower()
    return (
        lowered.count(b'"identifiers"') > 1
        or lowered.count(b'"subject_id"') > 1
        or lowered.count(b'"value"') > identifiers
        or lowered.count(b'"purposes"') > with_purposes
        or (types_judged and lowered.count(b'"type"') > identifiers)
    )


_NON_JSON_CONSTANT = ParseFailure(DeadLetterReason.INVALID_JSON, "not valid JSON: NaN or Infinity")


def has_non_json_constant(value: bytes) -> bool:
    """pydantic's parser accepts NaN and Infinity; JSON does not, nor do consumers."""
    if b"NaN" not in value and b"Infinity" not in value:
        return False

    def refuse(_: str) -> None:
        raise ValueError

    try:
        json.loads(value, parse_constant=refuse)
    except ValueError:
        return True
    return False


class _RepeatedKeyError(Exception):
    pass


def _judged_field_conflict(value: bytes, types_judged: bool) -> ParseFailure | None:
    """The exact check: does a judged field repeat in one object, or is one written in
    other letter cases where the enforcer reads it (the event's ``identifiers`` and
    ``subject_id``, an identifier's ``type``, ``value`` and ``purposes``)? Either way a
    consumer may read another value than the one judged: the dead letter saying which."""
    names = _JUDGED_FIELDS if types_judged else _JUDGED_FIELDS - {"type"}

    def check(pairs: list[tuple[str, Any]]) -> _Object:
        seen: set[str] = set()
        variants: list[str] = []
        for name, _ in pairs:
            if name in seen and name in names:
                raise _RepeatedKeyError
            seen.add(name)
            if len(name) in _JUDGED_LENGTHS and name not in names:
                folded = case_blind(name)
                if folded in names:
                    variants.append(folded)
        found = _Object(pairs)
        found.variants = variants
        return found

    try:
        document = json.loads(value, object_pairs_hook=check)
    except _RepeatedKeyError:
        return _REPEATED
    except ValueError:
        return None  # not JSON: the parser that reads it says so
    if not isinstance(document, _Object):
        return None
    if any(name in _EVENT_FIELDS for name in document.variants):
        return _OTHER_CASE
    items = document.get("identifiers")
    if isinstance(items, list) and any(
        isinstance(item, _Object) and any(name in _IDENTIFIER_FIELDS for name in item.variants)
        for item in items
    ):
        return _OTHER_CASE
    return None


class _Object(dict[str, Any]):
    """A parsed JSON object, with the judged names its keys spell in other letter cases."""

    variants: list[str]


KELVIN_SIGN = "\u212a"
"""Taken for a "k" by Go's case-blind match (no judged name of the event has one; a
mapped name may)."""
_EVENT_FIELDS = frozenset({"identifiers", "subject_id"})
_IDENTIFIER_FIELDS = frozenset({"type", "value", "purposes"})
_JUDGED_LENGTHS = frozenset(len(name) for name in _JUDGED_FIELDS)
_CASE_BLIND = {"\u017f": "s", "\u0130": "i", "\u0131": "i", KELVIN_SIGN: "k"}


def case_blind(name: str) -> str:
    """``name`` as a case-blind match of names sees it: each letter in small case, and
    the non-ASCII letters such matches take for ASCII ones (long s, dotted and dotless
    i, the Kelvin sign) as those."""
    return "".join(_CASE_BLIND.get(letter) or letter.lower() for letter in name)


def repeats_a_key(value: bytes, names: frozenset[str]) -> bool:
    """Whether one of ``names`` is a key twice in one object of the JSON text ``value``
    (escapes decoded). Parsers disagree on which of two such keys counts, so a decision
    on one and a consumer reading the other must never meet: such records are refused."""

    def check(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen and name in names:
                raise _RepeatedKeyError
            seen.add(name)
        return dict(pairs)

    try:
        json.loads(value, object_pairs_hook=check)
    except _RepeatedKeyError:
        return True
    except ValueError:
        return False  # not JSON: the parser that reads it says so
    return False


def format_location(location: tuple[Any, ...]) -> str:
    """Render a validation location as ``rules[1].when``."""
    out = ""
    for part in location:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# A number's text, held in a string while the standard library's parser and writer
# carry the document: the parser would read it as a float, and the writer would give a
# number beyond a float's range (1e400) as ``Infinity``, which is no JSON, and another
# as its nearest float (1.0000000000000000000001 as 1.0). The marker is random per
# process, so no string a record holds can pass for one.
_NUMBER_MARK = f"\x00{secrets.token_hex(16)}:"
_NUMBER_WRITTEN = re.compile(re.escape(json.dumps(_NUMBER_MARK)[:-1]) + r'([-+.0-9eE]+)\\u0000"')


def _number_text(text: str) -> str:
    return f"{_NUMBER_MARK}{text}\x00"


def _not_json(name: str) -> None:
    raise ValueError(f"not valid JSON: {name}")


def loads_keeping_numbers(value: bytes) -> Any:
    """``value`` parsed by the standard library, each number that is not an integer
    kept as its text for :func:`dumps_keeping_numbers` to write as it was (integers are
    exact already). Raises ``ValueError`` for what is no JSON, NaN and Infinity
    included, and ``RecursionError`` for nesting deeper than the interpreter's stack."""
    return json.loads(value, parse_float=_number_text, parse_constant=_not_json)


def dumps_keeping_numbers(document: Any) -> bytes:
    """``document`` from :func:`loads_keeping_numbers`, written compactly in UTF-8 with
    every number as the parsed text wrote it."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return _NUMBER_WRITTEN.sub(r"\1", text).encode()
