"""Wire models: what crosses the enforcer's boundary (docs/contract.md: identity event, violation
event, dead letter).

The identity event model validates input strictly; it ignores fields it does not
name because the enforcer never re-serializes from it: a forwarded record is the
original bytes, or the original JSON object minus removed identifiers, so every
field it does not know is preserved untouched.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, NamedTuple

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from enforcer.core.identifier_types import IDENTIFIER_TYPE_PATTERN, checked_type_name
from enforcer.core.purposes import PURPOSE_TAG_PATTERN

RFC3339_PATTERN = (
    r"^\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[Tt ](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)$"
)
RFC3339 = re.compile(RFC3339_PATTERN)


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 timestamp (with its offset) into an aware datetime.

    Raises ``ValueError`` with a message that does not repeat the input.
    """
    if not RFC3339.fullmatch(text):
        raise ValueError("must be an RFC 3339 timestamp with a UTC offset")
    # The common spelling (T, Z) needs no rewriting for fromisoformat.
    iso = text if text[10] == "T" and text[-1] == "Z" else text.upper().replace(" ", "T")
    try:
        return datetime.fromisoformat(iso)
    except ValueError:
        raise ValueError("must be a valid RFC 3339 date and time") from None


# The common spelling (``T``, ``Z``, digits only): its form is checked by this short
# pattern, and every range the full pattern checks (month, day, hour, minute, second)
# fromisoformat checks too, so the two agree on it at a quarter of the cost.
_COMMON_UTC = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?Z")


def is_plain_rfc3339(text: str) -> bool:
    """Whether ``text`` is an ASCII RFC 3339 timestamp with a real date and time:
    exactly the timestamps :func:`parse_rfc3339` accepts that are ASCII."""
    if _COMMON_UTC.fullmatch(text) is not None:
        try:
            datetime.fromisoformat(text)
        except ValueError:
            return False
        return True
    if not text.isascii():
        return False
    try:
        parse_rfc3339(text)
    except ValueError:
        return False
    return True


def _check_calendar(text: str) -> str:
    # The pattern (checked first, in pydantic-core) fixes the form; parsing catches
    # dates that do not exist, such as February 30.
    parse_rfc3339(text)
    return text


def as_utc(at: datetime) -> datetime:
    """``at`` in UTC. A valid time within hours of the ends of years 1 to 9999 can lie
    outside them in UTC (``9999-12-31T23:30:00-01:00``), where no datetime exists: it
    is held at the first or last representable instant, so a report never stops on it."""
    try:
        return at.astimezone(UTC)
    except OverflowError:
        return (datetime.max if at.year == datetime.max.year else datetime.min).replace(tzinfo=UTC)


def utc_day(text: str) -> str:
    """The UTC calendar date (``YYYY-MM-DD``) of an RFC 3339 timestamp (see
    :func:`as_utc` for the two ends of the calendar)."""
    return as_utc(parse_rfc3339(text)).date().isoformat()


NonEmpty = Annotated[str, Field(min_length=1)]
IdentifierType = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1),
    AfterValidator(checked_type_name),
    WithJsonSchema({"type": "string", "pattern": IDENTIFIER_TYPE_PATTERN}),
]
Rfc3339 = Annotated[
    str,
    StringConstraints(pattern=RFC3339_PATTERN),
    AfterValidator(_check_calendar),
]

_STRICT_INPUT = ConfigDict(strict=True, extra="ignore", frozen=True)
_OUTPUT = ConfigDict(extra="forbid", frozen=True)


PurposeTag = Annotated[str, WithJsonSchema({"type": "string", "pattern": PURPOSE_TAG_PATTERN})]
"""A raw purpose tag. The schema shows the pattern; the decision checks it (with the
finding's path and problem), so validation here takes any string."""

EVENT_SCHEMA_ID = "urn:purpose-enforcer:schema:identity-event"
"""The ``$id`` of the published event schema (``enforcer schema event``)."""


class Identifier(BaseModel):
    """One identifier inside an identity event."""

    model_config = _STRICT_INPUT

    type: IdentifierType
    value: NonEmpty
    purposes: list[PurposeTag] | None = None
    """Purpose tags; missing (or null) means no purpose was declared."""


class IdentityEvent(BaseModel):
    """An identity event on the source topic (docs/contract.md: identity event).

    Fields not named here, at any level, are allowed and forwarded untouched.
    """

    model_config = ConfigDict(
        strict=True,
        extra="ignore",
        frozen=True,
        json_schema_extra={
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": EVENT_SCHEMA_ID,
        },
    )

    event_id: NonEmpty
    subject_id: NonEmpty
    occurred_at: Rfc3339
    event_type: str | None = None
    identifiers: list[Identifier]


class EventIdentifier(NamedTuple):
    """A validated identifier as the decision sees it (``type`` trimmed)."""

    type: str
    value: str
    purposes: list[str] | None


class Event(NamedTuple):
    """A validated identity event: the fields the decision and its outputs use.

    What :class:`IdentityEvent` accepts, in a form that is cheap to build.
    """

    event_id: str
    subject_id: str
    occurred_at: str
    identifiers: tuple[EventIdentifier, ...]
    document: dict[str, Any] | None = None
    """The whole parsed object when the fast parser read it (reused by redaction)."""


class Action(StrEnum):
    """What a rule does to what it matches."""

    REDACT = "redact"
    DROP = "drop"


class Mode(StrEnum):
    """``enforce`` acts on findings; ``audit`` only reports them."""

    ENFORCE = "enforce"
    AUDIT = "audit"


class SourceRef(BaseModel):
    """Where an input record came from."""

    model_config = _OUTPUT

    topic: str
    partition: int
    offset: int


class FindingEvent(BaseModel):
    """One identifier that a rule matched. Never carries the raw value."""

    model_config = _OUTPUT

    rule: str
    identifier_index: int
    identifier_type: str
    purposes: list[str]
    fingerprint: str


class ViolationEvent(BaseModel):
    """A violation event on the violations topic (docs/contract.md: violation event)."""

    model_config = _OUTPUT

    violation_id: str
    detected_at: str
    mode: Mode
    action: Literal["redacted", "dropped"]
    policy_version: str
    key_id: str
    """The public id of the fingerprint key
    (:attr:`enforcer.core.fingerprint.Fingerprinter.key_id`)."""
    source: SourceRef
    event_id: str
    subject_id: str
    occurred_at: str
    findings: list[FindingEvent]
    traceparent: str | None = None
    """The input record's W3C ``traceparent`` header, when it had a valid one (the
    violation record carries it as a header too)."""
    security_override: Literal[True] | None = None
    """``true`` on every violation under a policy that lets security-only identifiers
    reach the destination (its ``security_override``); absent otherwise."""
    action_reason: str | None = None
    """Why a record that redaction would have kept was dropped instead: its format
    cannot hold the emptied field (docs/formats.md). Names fields, never values."""


class DeadLetterReason(StrEnum):
    """Why a record was dead-lettered (header ``enforcer.error.reason``)."""

    INVALID_JSON = "invalid-json"
    NOT_AN_OBJECT = "not-an-object"
    SCHEMA = "schema"
    INTERNAL = "internal-error"
    OUTPUT_TOO_LARGE = "output-too-large"
    """An output of the record is larger than its topic accepts (docs/contract.md: liveness)."""
    UNREADABLE = "unreadable-record"
    """The Kafka client could not read the record's headers (a key not valid UTF-8)."""
    UNKNOWN_SCHEMA = "unknown-schema"
    """A framed value names a schema id the schema registry does not have."""
    UNDECODABLE = "undecodable"
    """A framed value's body does not decode under the schema its frame names."""


class DeadLetterNotice(BaseModel):
    """Why enforce mode would have dead-lettered a record: reason and message only."""

    model_config = _OUTPUT

    reason: DeadLetterReason
    message: str
    """Field path and problem, as header ``enforcer.error.message``; never the value."""


class AuditDeadLetterEvent(BaseModel):
    """On the violations topic in audit mode only: a record enforce mode would have
    dead-lettered, forwarded unchanged instead (docs/contract.md: default policy). Told apart from a
    :class:`ViolationEvent` by ``action`` ``deadlettered`` and the ``deadletter``
    object; it has no event fields (the record could not be read) and no findings."""

    model_config = _OUTPUT

    violation_id: str
    detected_at: str
    mode: Literal[Mode.AUDIT]
    action: Literal["deadlettered"]
    policy_version: str
    key_id: str
    source: SourceRef
    deadletter: DeadLetterNotice
    findings: list[FindingEvent]
    """Always empty: present so that readers iterating findings need no special case."""
    traceparent: str | None = None
    security_override: Literal[True] | None = None
    """As on :class:`ViolationEvent`."""


class DeadLetterLine(BaseModel):
    """One line of ``deadletter.jsonl`` written by replay."""

    model_config = _OUTPUT

    source: SourceRef
    reason: DeadLetterReason
    message: str
    key_base64: str | None
    value_base64: str
