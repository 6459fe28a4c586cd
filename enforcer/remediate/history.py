"""A sink topic's records as remediation reads them: forwarded by the enforcer, a
retraction, or something else (docs/contract.md: "Forwarded record", "Retraction").

The enforcer marks every record it writes to the sink with the header
``enforcer.action``: ``passed`` or ``redacted`` for a forwarded record, ``retracted``
for a retraction. A record without one was written by someone else and is left alone.
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

import orjson

from enforcer.core.step import HEADER_ACTION, Headers
from enforcer.ledger.retract import is_retraction

_FORWARDED_ACTIONS = frozenset({b"passed", b"redacted"})


class SinkRecord(NamedTuple):
    """One committed record of the sink topic, as read."""

    key: bytes | None
    value: bytes | None
    headers: Headers
    partition: int
    offset: int
    timestamp_ms: int
    """The record's Kafka timestamp (the enforcer's clients let the broker's producer
    time stand: when it was written)."""

    @property
    def order(self) -> tuple[int, int, int]:
        """Where the record falls in the history: (time, partition, offset); compared by
        offset within a partition and by time across partitions
        (:func:`enforcer.remediate.planner.later`)."""
        return (self.timestamp_ms, self.partition, self.offset)


class SinkKind(StrEnum):
    """What a sink record is to remediation."""

    FORWARDED = "forwarded"
    RETRACTION = "retraction"
    OTHER = "other"


def kind_of(headers: Headers) -> SinkKind:
    """Forwarded (``enforcer.action`` ``passed``/``redacted``), a retraction, or other."""
    if is_retraction(headers):
        return SinkKind.RETRACTION
    for name, value in headers:
        if name == HEADER_ACTION and value in _FORWARDED_ACTIONS:
            return SinkKind.FORWARDED
    return SinkKind.OTHER


class RetractionRead(NamedTuple):
    """What a retraction record names: never a raw value, only its fingerprint."""

    subject_id: str
    identifier_type: str
    fingerprint: str
    plan_id: str | None
    """The remediation plan that wrote it (reason ``remediated``), else ``None``."""
    key_id: str | None = None
    """The id of the fingerprint key its fingerprint was made under, when it says."""

    @property
    def identity(self) -> tuple[str, str, str]:
        """(subject id, identifier type, fingerprint): what it removes from exposure."""
        return (self.subject_id, self.identifier_type, self.fingerprint)


def read_retraction(value: bytes | None) -> RetractionRead | None:
    """The retraction a record's value holds, or ``None`` when it is not one this
    reader can vouch for (never raises)."""
    if value is None:
        return None
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    body = document.get("retraction") if type(document) is dict else None
    if type(body) is not dict:
        return None
    fields = [body.get(name) for name in ("subject_id", "identifier_type", "fingerprint")]
    if not all(type(field) is str and field for field in fields):
        return None
    plan_id, key_id = body.get("plan_id"), body.get("key_id")
    subject_id, kind, fingerprint = fields
    return RetractionRead(
        subject_id,  # type: ignore[arg-type]
        kind.lower(),  # type: ignore[union-attr]
        fingerprint,  # type: ignore[arg-type]
        plan_id if type(plan_id) is str else None,
        key_id if type(key_id) is str and key_id else None,
    )
