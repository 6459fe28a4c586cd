"""Ledger records: raw bytes → a subject's whole current state, an erasure, or why not.

A ledger value is ``{"subject_id", "updated_at", "identifiers": [{"type", "value",
"purposes"}]}`` and replaces everything recorded for the subject before; a tombstone
(null value, keyed by the subject id) erases the subject (docs/ledger.md).

:func:`parse_ledger_record` judges a topic's record, :func:`parse_ledger_line` a line of
a ledger file (which has no key). Neither raises. Their messages name the field path and
the problem, never a value; they are the ones identity events get
(:mod:`enforcer.core.parse`).

A restore reads every record of the ledger, so most take a fast path, as events do:
``orjson`` parses the value and a few direct checks vouch for the plain, valid shape.
Whatever they cannot vouch for goes to the pydantic model (:func:`model_update`),
which gives the verdict and the message; the fast path only ever returns what the
model would (a property test holds it to that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import orjson
from pydantic import BaseModel, ValidationError

from enforcer.core.identifier_types import is_plain_type_name
from enforcer.core.models import (
    DeadLetterReason,
    Identifier,
    NonEmpty,
    Rfc3339,
    is_plain_rfc3339,
)
from enforcer.core.parse import (
    ParseFailure,
    has_non_json_constant,
    judged_field_conflict,
    validation_failure,
)
from enforcer.core.purposes import normalize_tag

LedgerEntry = tuple[str, bytes | None]
"""A ledger record as a collection system writes it: subject id (the key) and value
(``None``: a tombstone)."""


class LedgerValue(BaseModel):
    """A ledger record's value: the subject's whole current state (docs/ledger.md).

    Its identifiers have the identity event's shape (the same model): type, value, and
    the purposes granted, missing or null meaning none.
    """

    model_config = Identifier.model_config

    subject_id: NonEmpty
    updated_at: Rfc3339
    identifiers: list[Identifier]


class GrantedIdentifier(NamedTuple):
    """An identifier as the ledger grants it: type lower-cased, purposes normalized,
    de-duplicated and sorted. ``value`` is raw: it is fingerprinted, never stored."""

    type: str
    value: str
    purposes: tuple[str, ...]


class SubjectUpdate(NamedTuple):
    """A valid ledger value: replaces the subject's whole state."""

    subject_id: str
    updated_at: str
    identifiers: tuple[GrantedIdentifier, ...]


class SubjectErasure(NamedTuple):
    """A tombstone: the subject and all its purposes are gone."""

    subject_id: str


@dataclass(frozen=True, slots=True)
class SubjectWithheld(ParseFailure):
    """A ledger topic value refused under a key that names a subject (a UTF-8 key):
    invalid, or valid but another reader may read it otherwise (a judged field repeated
    in one object, or written in other letter cases: the identity event's rule,
    docs/decisions.md), or not fitting its key. It is a dead letter like any refused
    record, and more: the key's subject keeps no purpose until a valid value (or a
    tombstone) comes. The value was meant to be the subject's whole state, perhaps a
    withdrawal written with a mistake, so the grants the subject had must not outlive
    it; and a restore that finds only this value after compaction must reach the same
    state as the live read did (docs/ledger.md)."""

    subject_id: str
    """The record key's subject: the one compaction and tombstones go by."""


def parse_ledger_record(
    key: bytes | None, value: bytes | None
) -> SubjectUpdate | SubjectErasure | ParseFailure:
    """Validate one record of a ledger topic; never raises.

    ``key`` is the record key: the subject id. A tombstone needs a key that is a UTF-8
    subject id. A value without a key, or whose ``subject_id`` differs from its key, is
    refused: compaction and tombstones work per key, so such a value could never be
    erased (docs/ledger.md). The rule is the same live and in replay.

    A value refused under a UTF-8 key, whatever the reason, is a :class:`SubjectWithheld`
    naming the key's subject (whatever its ``subject_id`` says): that subject keeps no
    purpose until its next valid value. A key that is missing, empty or not UTF-8 names
    no subject, so its refusal is a plain :class:`ParseFailure`.
    """
    try:
        if value is None:
            return _erasure(key)
        return _update(value, key, keyed=True)
    except Exception as exc:  # a ledger record must never stop the worker
        failure = ParseFailure(DeadLetterReason.INTERNAL, f"internal error: {type(exc).__name__}")
        return failure if value is None else _withheld(failure, key)


def parse_ledger_line(value: bytes) -> SubjectUpdate | ParseFailure:
    """Validate one line of a ledger file (JSON Lines); never raises.

    A line has no key, so there is no key to compare ``subject_id`` with, and no line is
    a tombstone (a ``null`` line is not a JSON object).
    """
    try:
        return _update(value, None, keyed=False)
    except Exception as exc:  # a bad line must never stop a replay
        return ParseFailure(DeadLetterReason.INTERNAL, f"internal error: {type(exc).__name__}")


def _erasure(key: bytes | None) -> SubjectErasure | ParseFailure:
    if not key:
        return ParseFailure(DeadLetterReason.INVALID_JSON, "a tombstone without a subject id key")
    try:
        return SubjectErasure(key.decode("utf-8"))
    except UnicodeDecodeError:
        return ParseFailure(DeadLetterReason.SCHEMA, "a tombstone key that is not UTF-8")


def _update(value: bytes, key: bytes | None, *, keyed: bool) -> SubjectUpdate | ParseFailure:
    vouched = _vouch(value)
    if vouched is None:
        return model_update(value, key, keyed=keyed)
    update, with_purposes = vouched
    return _read_one_way(value, key, keyed, update, with_purposes) or update


def _read_one_way(
    value: bytes, key: bytes | None, keyed: bool, update: SubjectUpdate, with_purposes: int
) -> ParseFailure | None:
    """Why a value that is valid on its own is still refused: another reader may read
    it otherwise (first), or it does not fit its record's key. Only a refusal costs
    more than these checks (the fast path stays as cheap for valid values)."""
    conflict = judged_field_conflict(value, len(update.identifiers), with_purposes)
    if conflict is not None:
        return _withheld(conflict, key) if keyed else conflict
    if keyed and (mismatch := _key_failure(key, update.subject_id)) is not None:
        return _withheld(mismatch, key)
    return None


def _withheld(failure: ParseFailure, key: bytes | None) -> ParseFailure:
    """The refusal of a topic's value, naming its key's subject when the key is one (a
    missing, empty or non-UTF-8 key names none: no event's subject id is such a key).
    Fail closed: whatever the value meant for that subject, it keeps no purpose."""
    if not key:
        return failure
    try:
        subject_id = key.decode("utf-8")
    except UnicodeDecodeError:
        return failure
    return SubjectWithheld(failure.reason, failure.message, subject_id)


def _vouch(value: bytes) -> tuple[SubjectUpdate, int] | None:  # noqa: PLR0911 - each return is a bail-out
    """The fast path: the update when the value is plainly valid, and how many of its
    identifiers have purposes that are not null; else ``None`` (ask the model).

    orjson refuses NaN, Infinity and lone surrogates, as JSON does. Every check is at
    least as strict as the model's: exact types (no coercion), non-empty strings, an
    ASCII timestamp of the RFC 3339 form with a real calendar date, identifier types
    that need no trimming, and purpose tags that are all valid.
    """
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict:
        return None
    get = document.get
    subject_id, updated_at, items = get("subject_id"), get("updated_at"), get("identifiers")
    if (
        type(subject_id) is not str
        or type(updated_at) is not str
        or type(items) is not list
        or not subject_id
        or not is_plain_rfc3339(updated_at)
    ):
        return None
    granted = []
    with_purposes = 0
    for item in items:
        if type(item) is not dict:
            return None
        kind, text, purposes = item.get("type"), item.get("value"), item.get("purposes")
        if type(kind) is not str or type(text) is not str or not text:
            return None
        lowered = _plain_types.get(kind)
        if lowered is None:
            lowered = _plain_type(kind)
            if lowered is None:
                return None
        tags: tuple[str, ...] | None = ()
        if purposes is not None:
            with_purposes += 1
            tags = _granted_tags(purposes) if type(purposes) is list else None
        if tags is None:
            return None
        granted.append(GrantedIdentifier(lowered, text, tags))
    return SubjectUpdate(subject_id, updated_at, tuple(granted)), with_purposes


_plain_types: dict[str, str] = {}
"""Identifier types seen, each lower-cased (a ledger has a handful)."""


def _plain_type(kind: str) -> str | None:
    """``kind`` lower-cased when the model would only lower-case it: a type name with
    nothing to trim (the model trims by other rules than ``str.strip``). Remembered."""
    if not is_plain_type_name(kind):
        return None
    if len(_plain_types) >= _TAGS_MEMO_LIMIT:
        _plain_types.clear()
    lowered = _plain_types[kind] = kind.lower()
    return lowered


_TAGS_MEMO_LIMIT = 4096
_tags_memo: dict[tuple[str, ...], tuple[str, ...]] = {}


def _granted_tags(raw: list[str]) -> tuple[str, ...] | None:
    """Raw purpose tags normalized, de-duplicated and sorted; ``None`` when one is not a
    valid tag (or not a string). Remembered: a ledger repeats a few purpose lists."""
    try:
        "".join(raw)  # only strings (in C); a list or dict among them is no hashable key
    except TypeError:
        return None
    key = tuple(raw)
    found = _tags_memo.get(key)
    if found is not None:
        return found
    tags = set()
    for tag in raw:
        if (normalized := normalize_tag(tag)) is None:
            return None
        tags.add(normalized)
    if len(_tags_memo) >= _TAGS_MEMO_LIMIT:
        _tags_memo.clear()
    found = _tags_memo[key] = tuple(sorted(tags))
    return found


def model_update(value: bytes, key: bytes | None, *, keyed: bool) -> SubjectUpdate | ParseFailure:
    """The authoritative check of a ledger value: the pydantic model (what the fast
    path vouches for, it vouches for with the same result). A topic's value refused
    under a subject's key withholds that subject (:class:`SubjectWithheld`)."""
    read = _model_read(value)
    if isinstance(read, ParseFailure):
        return _withheld(read, key) if keyed else read
    update, with_purposes = read
    # The value's own problems first, then whether it reads one way and fits its key.
    return _read_one_way(value, key, keyed, update, with_purposes) or update


def _model_read(value: bytes) -> tuple[SubjectUpdate, int] | ParseFailure:
    """The value read by the model, and how many of its identifiers have purposes that
    are not null; or why it is invalid on its own (whatever its key)."""
    try:
        model = LedgerValue.model_validate_json(value)
    except ValidationError as exc:
        failure = validation_failure(exc)
        if failure.reason is not DeadLetterReason.INVALID_JSON and has_non_json_constant(value):
            return ParseFailure(DeadLetterReason.INVALID_JSON, "not valid JSON: NaN or Infinity")
        return failure
    if has_non_json_constant(value):
        return ParseFailure(DeadLetterReason.INVALID_JSON, "not valid JSON: NaN or Infinity")
    granted = []
    for index, identifier in enumerate(model.identifiers):
        purposes = set()
        for position, raw in enumerate(identifier.purposes or ()):
            tag = normalize_tag(raw)
            if tag is None:
                return ParseFailure(
                    DeadLetterReason.SCHEMA,
                    f"identifiers[{index}].purposes[{position}]: not a purpose tag "
                    "(dot-separated segments of [a-z0-9_-])",
                )
            purposes.add(tag)
        granted.append(
            GrantedIdentifier(identifier.type.lower(), identifier.value, tuple(sorted(purposes)))
        )
    update = SubjectUpdate(model.subject_id, model.updated_at, tuple(granted))
    with_purposes = sum(1 for identifier in model.identifiers if identifier.purposes is not None)
    return update, with_purposes


def _key_failure(key: bytes | None, subject_id: str) -> ParseFailure | None:
    """Why a topic record's key does not fit its value's ``subject_id``, if it does not."""
    if key is None:
        return ParseFailure(
            DeadLetterReason.SCHEMA,
            "subject_id: the record has no key (a ledger value is keyed by its subject_id)",
        )
    if key != subject_id.encode("utf-8", "surrogatepass"):
        return ParseFailure(DeadLetterReason.SCHEMA, "subject_id: does not match the record key")
    return None
