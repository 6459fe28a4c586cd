"""Parse at the edge: raw value bytes → a validated identity event, or why not.

Never raises. Error messages name the field path and the problem, never a value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from enforcer.models import DeadLetterReason, IdentityEvent
from enforcer.policy.load import format_location

# Fields the decision depends on. If one of them appears twice in one JSON object,
# parsers disagree on which counts (the enforcer's takes the last, others the
# first), so forwarding the original bytes could smuggle an identifier past the
# decision: such records are dead-lettered.
_JUDGED_FIELDS = frozenset({"identifiers", "type", "purposes"})


# Clearer words for pydantic's messages where its own would show a regex.
_MESSAGES = {"string_pattern_mismatch": "must be an RFC 3339 timestamp with a UTC offset"}


@dataclass(frozen=True, slots=True)
class ParseFailure:
    """Why a value cannot be judged (becomes a dead letter)."""

    reason: DeadLetterReason
    message: str


def parse_event(value: bytes | None) -> IdentityEvent | ParseFailure:
    """Validate one record value as an identity event (SPEC §3)."""
    if value is None:
        return ParseFailure(DeadLetterReason.INVALID_JSON, "the record has no value")
    try:
        event = IdentityEvent.model_validate_json(value)
    except ValidationError as exc:
        failure = _failure(exc)
        if failure.reason is not DeadLetterReason.INVALID_JSON and _has_non_json_constant(value):
            return _NON_JSON_CONSTANT
        return failure
    if _has_non_json_constant(value):
        return _NON_JSON_CONSTANT
    if _may_repeat_a_judged_field(value, len(event.identifiers)) and _repeats_judged_field(value):
        return ParseFailure(
            DeadLetterReason.SCHEMA, "a field the enforcer judges appears twice in one object"
        )
    return event


def _failure(exc: ValidationError) -> ParseFailure:
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


def _may_repeat_a_judged_field(value: bytes, identifiers: int) -> bool:
    """A cheap, conservative pre-check: False only when no judged field can repeat.

    Without escapes, a key can only be written literally, so counting its quoted
    name bounds how often it occurs. With any escape, the exact check runs.
    """
    if b"\\" in value:
        return True
    return (
        value.count(b'"identifiers"') > 1
        or value.count(b'"type"') > identifiers
        or value.count(b'"purposes"') > identifiers
    )


_NON_JSON_CONSTANT = ParseFailure(DeadLetterReason.INVALID_JSON, "not valid JSON: NaN or Infinity")


def _has_non_json_constant(value: bytes) -> bool:
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


class _RepeatedFieldError(Exception):
    pass


def _repeats_judged_field(value: bytes) -> bool:
    """The exact check: does a judged field repeat in the event or an identifier?"""

    def check(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: set[str] = set()
        for name, _ in pairs:
            if name in seen and name in _JUDGED_FIELDS:
                raise _RepeatedFieldError
            seen.add(name)
        return dict(pairs)

    try:
        json.loads(value, object_pairs_hook=check)
    except _RepeatedFieldError:
        return True
    return False
