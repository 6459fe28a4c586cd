"""A ledger file for replay: JSON Lines of ledger values, in order (SPEC §11).

Each valid line replaces its subject's state, so the latest line per subject wins.
With ``as_of``, lines whose ``updated_at`` is after it are skipped: the ledger as it
stood then. Invalid lines change nothing and are collected with their line numbers,
like dead letters; reading never raises on content.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from enforcer.fingerprint import Fingerprinter
from enforcer.ledger.model import SubjectErasure, parse_ledger_record
from enforcer.ledger.state import LedgerState, grants_of
from enforcer.models import DeadLetterReason, parse_rfc3339
from enforcer.parse import ParseFailure


@dataclass(frozen=True, slots=True)
class LineFailure:
    """An invalid line: its 1-based number, reason and message (never its content)."""

    line: int
    reason: DeadLetterReason
    message: str


@dataclass(slots=True)
class LedgerReplay:
    """The state a ledger file leaves, and what was not applied."""

    state: LedgerState = field(default_factory=LedgerState)
    applied: int = 0
    """Lines applied (each replaced one subject's state)."""
    after_as_of: int = 0
    """Valid lines skipped because their ``updated_at`` is after ``as_of``."""
    failures: list[LineFailure] = field(default_factory=list)


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
        parsed = parse_ledger_record(None, line)
        if isinstance(parsed, ParseFailure):
            result.failures.append(LineFailure(number, parsed.reason, parsed.message))
            continue
        if isinstance(parsed, SubjectErasure):  # needs a key: never from a file line
            continue
        if as_of is not None and parse_rfc3339(parsed.updated_at) > as_of:
            result.after_as_of += 1
            continue
        result.state.replace(
            parsed.subject_id, parsed.updated_at, grants_of(parsed.identifiers, fingerprinter)
        )
        result.applied += 1
    return result


def replay_ledger_file(
    path: Path, fingerprinter: Fingerprinter, as_of: datetime | None = None
) -> LedgerReplay:
    """:func:`replay_ledger_lines` over a file. An unreadable file raises ``OSError``."""
    with path.open("rb") as lines:
        return replay_ledger_lines(lines, fingerprinter, as_of)
