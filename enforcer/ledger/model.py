"""Ledger records: raw bytes → a subject's whole current state, an erasure, or why not.

A ledger value is ``{"subject_id", "updated_at", "identifiers": [{"type", "value",
"purposes"}]}`` and replaces everything recorded for the subject before; a tombstone
(null value, keyed by the subject id) erases the subject (docs/ledger.md).

:func:`parse_ledger_record` judges a topic's record, :func:`parse_ledger_line` a line of
a ledger file (which has no key). Neither raises. Their messages name the field path and
the problem, never a value; they are the ones identity events get
(:mod:`enforcer.core.parse`).
"""

from __future__ import annotations

from typing import NamedTuple

from pydantic import BaseModel, ValidationError

from enforcer.core.models import DeadLetterReason, Identifier, NonEmpty, Rfc3339
from enforcer.core.parse import ParseFailure, has_non_json_constant, validation_failure
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


def parse_ledger_record(
    key: bytes | None, value: bytes | None
) -> SubjectUpdate | SubjectErasure | ParseFailure:
    """Validate one record of a ledger topic; never raises.

    ``key`` is the record key: the subject id. A tombstone needs a key that is a UTF-8
    subject id. A value without a key, or whose ``subject_id`` differs from its key, is
    refused: compaction and tombstones work per key, so such a value could never be
    erased (docs/ledger.md). The rule is the same live and in replay.
    """
    try:
        if value is None:
            return _erasure(key)
        return _update(value, key, keyed=True)
    except Exception as exc:  # a ledger record must never stop the worker
        return ParseFailure(DeadLetterReason.INTERNAL, f"internal error: {type(exc).__name__}")


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
    # The value's own problems first, then whether it fits its record's key.
    if keyed and (mismatch := _key_failure(key, model.subject_id)) is not None:
        return mismatch
    return SubjectUpdate(model.subject_id, model.updated_at, tuple(granted))


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
