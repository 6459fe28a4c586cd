"""A purpose ledger for ``replay`` and ``explain``: a file or a topic, as of a time.

The whole ledger is read before any record is judged (docs/ledger.md). A file is JSON Lines
of ledger values in order; a topic is read on every partition from its beginning to
its end as the read starts, by the reader ``replay --topic`` uses (read_committed, no
consumer group, nothing committed). The latest value per subject wins; a topic's
tombstone erases its subject. Invalid lines and records are counted; a topic's value
refused under a subject's key leaves that subject no purpose (as live), the others
change nothing. A mistake the user can make is a :class:`LedgerInputError`: one line that
names no identifier value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from enforcer.core.clock import kafka_time
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.ledger_view import LedgerMode
from enforcer.core.models import parse_rfc3339
from enforcer.ledger.replay import LedgerRecord, LedgerReplay, replay_ledger_lines
from enforcer.outputs.report.model import (
    LedgerRecords,
    LedgerStateSize,
    LedgerSummary,
    ReplaySource,
)

if TYPE_CHECKING:
    from enforcer.replay.sources.kafka_topic import TopicReader


class LedgerInputError(OSError):
    """The ledger cannot be read as asked (the message says why, in one line)."""


@dataclass(frozen=True)
class AsOf:
    """``--ledger-as-of``: the text as given, and the instant it names."""

    text: str
    at: datetime


def parse_as_of(text: str) -> AsOf:
    """An RFC 3339 time with its offset; ``ValueError`` otherwise."""
    value = text.strip()
    try:
        return AsOf(value, parse_rfc3339(value))
    except ValueError:
        raise ValueError(
            f"expected an RFC 3339 time (like 2019-10-08T00:00:00Z), not {value!r}"
        ) from None


@dataclass(frozen=True)
class LoadedLedger:
    """A ledger read to its end (or as of a time): the state and what was not applied."""

    source: ReplaySource
    as_of: AsOf | None
    replay: LedgerReplay

    def summary(self, mode: LedgerMode) -> LedgerSummary:
        """The report's ``ledger`` object before any record is judged."""
        result = self.replay
        return LedgerSummary(
            source=self.source,
            as_of=self.as_of.text if self.as_of else None,
            mode=mode.value,
            state=LedgerStateSize(subjects=result.state.subjects, identifiers=len(result.state)),
            records=LedgerRecords(
                applied=result.applied,
                erased=result.erased,
                invalid=result.invalid,
                after_as_of=result.after_as_of,
            ),
        )

    def describe(self) -> str:
        """One line for the terminal: what was read and what it holds."""
        result = self.replay
        when = f" as of {self.as_of.text}" if self.as_of else ""
        text = (
            f"ledger {self.source.kind} {self.source.name}{when}: "
            f"{result.state.subjects:,} subjects, {len(result.state):,} identifiers; "
            f"{result.applied:,} records applied"
        )
        if result.erased:
            text += f" ({result.erased:,} erasures)"
        if result.after_as_of:
            text += f", {result.after_as_of:,} later than the as-of time skipped"
        if result.invalid:
            text += f", {result.invalid:,} invalid skipped ({self._first_failure()})"
        return text

    def _first_failure(self) -> str:
        result = self.replay
        if result.failures:
            line = result.failures[0]
            return f"first: line {line.line}: {line.message}"
        record = result.record_failures[0]
        return f"first: partition {record.partition} offset {record.offset}: {record.message}"


def outcome_line(ledger: LedgerSummary) -> str:
    """One line for the terminal once the replay is done: what the ledger knew, and the
    purpose-not-granted findings."""
    judged, found = ledger.identifiers_judged, ledger.purpose_not_granted
    text = (
        f"ledger ({ledger.mode}): {judged.known:,} identifiers known to it, "
        f"{judged.unknown:,} unknown; {found.findings:,} purpose-not-granted findings "
        f"affecting {found.affected_subjects:,} accounts"
    )
    if found.first_seen:
        text += f", from {found.first_seen} to {found.last_seen}"
    return text


def load_ledger_file(path: Path, fingerprinter: Fingerprinter, as_of: AsOf | None) -> LoadedLedger:
    """Read a ledger file; its SHA-256 names exactly the bytes read."""
    from enforcer.replay.sources.jsonl import HashedLines

    try:
        with path.open("rb") as stream:
            lines = HashedLines(stream)
            result = replay_ledger_lines(lines, fingerprinter, as_of.at if as_of else None)
    except OSError as exc:
        raise LedgerInputError(f"ledger file {path}: {exc.strerror}") from None
    source = ReplaySource(kind="file", name=str(path), sha256=lines.hexdigest())
    return LoadedLedger(source, as_of, result)


def load_ledger_topic(
    bootstrap_servers: str,
    topic: str,
    fingerprinter: Fingerprinter,
    as_of: AsOf | None,
    client_options: Mapping[str, Any] | None = None,
) -> LoadedLedger:
    """Read every partition of a ledger topic from its beginning to its end."""
    import asyncio

    from enforcer.ledger.replay import replay_ledger_records
    from enforcer.outputs.report.model import OffsetRange
    from enforcer.replay.sources.kafka_topic import (
        TopicReader,
        TopicReadError,
        parse_end,
        parse_start,
    )

    start, end = parse_start("earliest"), parse_end("latest")
    with asyncio.Runner() as runner:
        reader = TopicReader(
            runner, bootstrap_servers, topic, start, end, client_options=client_options
        )
        try:
            ranges = reader.open()
            records = _ledger_records(reader)
            result = replay_ledger_records(records, fingerprinter, as_of.at if as_of else None)
        except TopicReadError as exc:
            raise LedgerInputError(f"ledger topic: {exc}") from None
        finally:
            reader.close()
    offsets = [OffsetRange(partition=r.partition, start=r.start, end=r.end) for r in ranges]
    source = ReplaySource(kind="topic", name=topic, start=start.text, end=end.text, offsets=offsets)
    return LoadedLedger(source, as_of, result)


def _ledger_records(reader: TopicReader) -> Iterator[LedgerRecord]:
    """A topic reader's messages as ledger records, with their Kafka record times."""
    for message in reader.messages():
        at = kafka_time(message.timestamp)
        yield LedgerRecord(message.key, message.value, at, message.partition, message.offset)
