"""A ledger for replay: a file of JSON Lines, or a topic's records, in order (docs/ledger.md).

Each valid value replaces its subject's state, so the latest per subject wins; a
topic's tombstone (null value keyed by the subject id) erases the subject. With
``as_of``, values whose ``updated_at`` is after it are skipped (for a tombstone, which
has none, its record's time): the ledger as it stood then. Invalid lines and records
are collected with where they were, like dead letters; reading never raises on
content. An invalid line, or a record whose key names no subject, changes nothing; a
topic's value refused under a subject's key leaves that subject no purpose from its
record's time on, until its next valid value (as live: fail closed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

from enforcer.core.clock import rfc3339
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.models import DeadLetterReason, parse_rfc3339
from enforcer.core.parse import ParseFailure
from enforcer.ledger.model import (
    SubjectErasure,
    SubjectUpdate,
    SubjectWithheld,
    parse_ledger_line,
    parse_ledger_record,
)
from enforcer.ledger.state import LedgerState
from enforcer.ledger.store import apply_record


@dataclass(frozen=True, slots=True)
class LineFailure:
    """An invalid line: its 1-based number, reason and message (never its content)."""

    line: int
    reason: DeadLetterReason
    message: str


@dataclass(frozen=True, slots=True)
class RecordFailure:
    """An invalid topic record: where it was, reason and message (never its content)."""

    partition: int
    offset: int
    reason: DeadLetterReason
    message: str


class LedgerRecord(NamedTuple):
    """One record of a ledger topic. ``value`` ``None`` is a tombstone; ``timestamp`` is
    the Kafka record's time (a tombstone's only time)."""

    key: bytes | None
    value: bytes | None
    timestamp: datetime
    partition: int
    offset: int


@dataclass(slots=True)
class LedgerReplay:
    """The state a ledger file or topic leaves, and what was not applied."""

    state: LedgerState = field(default_factory=LedgerState)
    applied: int = 0
    """Values and tombstones applied (each replaced or erased one subject's state)."""
    erased: int = 0
    """Of ``applied``, the tombstones (a topic only: a file line has no key)."""
    after_as_of: int = 0
    """Valid lines or records skipped because they are later than ``as_of``."""
    failures: list[LineFailure] = field(default_factory=list)
    """Invalid lines of a file."""
    record_failures: list[RecordFailure] = field(default_factory=list)
    """Invalid records of a topic."""

    @property
    def invalid(self) -> int:
        """Invalid lines or records: they granted nothing (and a topic value refused under
        a subject's key left that subject no purpose)."""
        return len(self.failures) + len(self.record_failures)


def replay_ledger_lines(
    lines: Iterable[bytes], fingerprinter: Fingerprinter, as_of: datetime | None = None
) -> LedgerReplay:
    """Apply ledger values line by line, in order. Blank lines are skipped.

    A file has no keys, so a line cannot be a tombstone: a ``null`` line is invalid.
    """
    result = LedgerReplay()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parsed = parse_ledger_line(line)
        if isinstance(parsed, ParseFailure):
            result.failures.append(LineFailure(number, parsed.reason, parsed.message))
            continue
        _update(result, parsed, fingerprinter, as_of)
    return result


def _update(
    result: LedgerReplay,
    update: SubjectUpdate,
    fingerprinter: Fingerprinter,
    as_of: datetime | None,
) -> None:
    if as_of is not None and parse_rfc3339(update.updated_at) > as_of:
        result.after_as_of += 1
        return
    apply_record(result.state, update, fingerprinter, "")
    result.applied += 1


def replay_ledger_file(
    path: Path, fingerprinter: Fingerprinter, as_of: datetime | None = None
) -> LedgerReplay:
    """:func:`replay_ledger_lines` over a file. An unreadable file raises ``OSError``."""
    with path.open("rb") as lines:
        return replay_ledger_lines(lines, fingerprinter, as_of)


def replay_ledger_records(
    records: Iterable[LedgerRecord], fingerprinter: Fingerprinter, as_of: datetime | None = None
) -> LedgerReplay:
    """Apply a ledger topic's records in order: values replace, tombstones erase.

    The key must be the subject id (:func:`parse_ledger_record` checks it): a value
    without a key is invalid, as it is live."""
    result = LedgerReplay()
    for record in records:
        parsed = parse_ledger_record(record.key, record.value)
        if isinstance(parsed, ParseFailure):
            result.record_failures.append(
                RecordFailure(record.partition, record.offset, parsed.reason, parsed.message)
            )
            if isinstance(parsed, SubjectWithheld) and (as_of is None or record.timestamp <= as_of):
                result.state.withhold(parsed.subject_id, rfc3339(record.timestamp))
            continue
        if isinstance(parsed, SubjectErasure):
            if as_of is not None and record.timestamp > as_of:
                result.after_as_of += 1
                continue
            apply_record(result.state, parsed, fingerprinter, rfc3339(record.timestamp))
            result.applied += 1
            result.erased += 1
            continue
        _update(result, parsed, fingerprinter, as_of)
    return result
