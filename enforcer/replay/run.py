"""Replay wiring for the command line: a file or a topic in, files or topics out.

Whatever the input and output, the records go through :func:`enforcer.replay.loop.replay`
and the same decision step as the live agent. On a terminal a progress bar shows
records per second and the time left.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from enforcer.core.clock import SystemClock
from enforcer.core.fingerprint import Fingerprinter
from enforcer.core.policy.compiled import Policy
from enforcer.core.step import InputRecord, Outcome, Step
from enforcer.ledger.lookup import WholeLedger
from enforcer.outputs.files import FileOutputs, write_report
from enforcer.outputs.progress import progress_bar
from enforcer.outputs.records import OutputTopics
from enforcer.outputs.report.model import LedgerSummary, OffsetRange, ReplaySource, Report
from enforcer.replay.ledger import LoadedLedger
from enforcer.replay.loop import OutcomeWriter, replay
from enforcer.replay.schemas import RegistryDownError, ReplayFormats, prefetched
from enforcer.replay.sources.base64_lines import HashedBase64Records
from enforcer.replay.sources.jsonl import HashedRecords, jsonl_source_name
from enforcer.replay.sources.kafka_topic import Position, TopicReader, TopicReadError


class ReplayInputError(OSError):
    """The replay input cannot be read, or the outputs cannot be written."""


# aiokafka logs connection failures itself; the command line says it once, in one line.
logging.getLogger("aiokafka").addHandler(logging.NullHandler())


@dataclass(frozen=True)
class TopicOutput:
    """Write outputs to the live topic names with ``prefix``, on ``bootstrap_servers``."""

    prefix: str
    bootstrap_servers: str
    live: OutputTopics
    protected: tuple[str, ...]
    """Topics replay must never write to (every live topic)."""
    client_options: Mapping[str, Any] = field(default_factory=dict)
    """TLS/SASL options for the clients
    (:func:`enforcer.config.kafka_security.aiokafka_security`)."""


FileFormat = Literal["json", "confluent"]
"""How a replayed file holds its values: ``json``, one JSON Lines value a line;
``confluent``, one base64 value a line (framed records, docs/formats.md)."""


def replay_file(
    path: Path,
    out: Path | None,
    policy: Policy,
    fingerprinter: Fingerprinter,
    progress: bool,
    to_topics: TopicOutput | None = None,
    ledger: LoadedLedger | None = None,
    formats: ReplayFormats | None = None,
    file_format: FileFormat = "json",
    source_topic: str | None = None,
) -> Report:
    """Replay a file (``file_format``: JSON Lines, or base64 values) into ``out`` (or
    topics); a progress bar shows on a terminal. Its records come from ``source_topic``
    (default: a name made of the file's).

    With ``ledger``, records are judged against it (docs/ledger.md) and the report says how;
    with ``formats``, framed records are read with the schema registry's schemas. Values
    read from base64 lines are forwarded as base64 lines."""
    source = ReplaySource(kind="file", name=str(path))
    try:
        stream = path.open("rb")
        size = path.stat().st_size
    except OSError as exc:
        raise ReplayInputError(f"{path}: {exc.strerror}") from None
    with stream, asyncio.Runner() as runner, progress_bar(progress, size, "B", "replay") as bar:
        base64_lines = file_format == "confluent"

        def advance(record: InputRecord) -> None:
            size = len(record.value or b"")
            # A base64 line is 4 characters for every 3 bytes (or fewer) of its value.
            bar.advance((size + 2) // 3 * 4 + 1 if base64_lines else size + 1)

        records: HashedRecords | HashedBase64Records
        topic = source_topic or jsonl_source_name(path)
        if base64_lines:
            records = HashedBase64Records(stream, topic)
        else:
            records = HashedRecords(stream, topic)
        with _outputs(out, to_topics, runner, 1, base64_values=base64_lines) as outputs:
            step, summary = _step(policy, fingerprinter, ledger, formats)
            report = replay(
                _with_schemas(records, formats),
                step,
                outputs,
                source,
                CLOCK,
                bar.callback(advance),
                summary,
            )
    # The replay read the file to its end, so the hash covers every byte of it.
    hashed = source.model_copy(update={"sha256": records.hexdigest()})
    return _with_report_files(out, report.model_copy(update={"source": hashed}))


def replay_topic(
    bootstrap_servers: str,
    topic: str,
    start: Position,
    end: Position,
    out: Path | None,
    policy: Policy,
    fingerprinter: Fingerprinter,
    progress: bool,
    to_topics: TopicOutput | None = None,
    client_options: Mapping[str, Any] | None = None,
    ledger: LoadedLedger | None = None,
    formats: ReplayFormats | None = None,
) -> Report:
    """Replay a range of ``topic`` (read_committed, no consumer group) into ``out`` or topics,
    against ``ledger`` when one is given, framed records read as ``formats`` says."""
    with asyncio.Runner() as runner:
        reader = TopicReader(
            runner, bootstrap_servers, topic, start, end, client_options=client_options
        )
        try:
            ranges = reader.open()
            source = ReplaySource(
                kind="topic",
                name=topic,
                start=start.text,
                end=end.text,
                offsets=[
                    OffsetRange(partition=r.partition, start=r.start, end=r.end) for r in ranges
                ],
            )
            done = {r.partition: r.start for r in ranges}
            with progress_bar(progress, reader.total, "rec", "replay") as bar:

                def advance(record: InputRecord) -> None:
                    # Count offsets: transaction markers and aborted records fill the gaps.
                    partition, offset = record.source.partition, record.source.offset
                    bar.advance(offset + 1 - done[partition])
                    done[partition] = offset + 1

                with _outputs(out, to_topics, runner, len(ranges)) as outputs:
                    step, summary = _step(policy, fingerprinter, ledger, formats)
                    records = _with_schemas(reader.records(), formats)
                    report = replay(
                        records, step, outputs, source, CLOCK, bar.callback(advance), summary
                    )
        except TopicReadError as exc:
            raise ReplayInputError(str(exc)) from None
        finally:
            reader.close()
    return _with_report_files(out, report)


CLOCK = SystemClock()


def step_for(
    policy: Policy,
    fingerprinter: Fingerprinter,
    ledger: LoadedLedger | None = None,
    formats: ReplayFormats | None = None,
) -> Step:
    """The live decision step, on the wall clock, judging by ``ledger`` when given and
    reading framed records with ``formats``' reader."""
    lookup = WholeLedger(ledger.replay.state) if ledger is not None else None
    reader = formats.reader if formats is not None else None
    return Step(policy, fingerprinter, CLOCK, lookup, reader=reader)


def _step(
    policy: Policy,
    fingerprinter: Fingerprinter,
    ledger: LoadedLedger | None,
    formats: ReplayFormats | None,
) -> tuple[Step, LedgerSummary | None]:
    """The step, and the report's ledger part as it starts (``None`` without a ledger)."""
    step = step_for(policy, fingerprinter, ledger, formats)
    return step, ledger.summary(step.ledger_mode) if ledger is not None else None


def _with_schemas(
    records: Iterable[InputRecord | Outcome], formats: ReplayFormats | None
) -> Iterable[InputRecord | Outcome]:
    """``records``, each chunk's schemas fetched before it is decided; a registry that
    stays down past the deadline ends the replay in one line."""
    if formats is None:
        return records

    def checked() -> Iterator[InputRecord | Outcome]:
        try:
            yield from prefetched(records, formats)
        except RegistryDownError as exc:
            raise ReplayInputError(str(exc)) from None

    return checked()


@contextmanager
def _outputs(
    out: Path | None,
    to_topics: TopicOutput | None,
    runner: asyncio.Runner,
    partitions: int,
    *,
    base64_values: bool = False,
) -> Iterator[OutcomeWriter]:
    """Files in ``out`` (forwarded values as base64 lines with ``base64_values``), or
    the prefixed topics."""
    if to_topics is None:
        if out is None:
            raise ReplayInputError("--out DIR is needed unless --output-topic-prefix is given")
        try:
            files = FileOutputs(out, base64_values=base64_values)
        except OSError as exc:
            raise ReplayInputError(f"{out}: {exc.strerror}") from None
        with files:
            yield files
        return
    from enforcer.outputs.topics import TopicOutputError, TopicOutputs, prefixed_topics

    try:
        topics = prefixed_topics(to_topics.prefix, to_topics.live, to_topics.protected)
        with TopicOutputs(
            runner, to_topics.bootstrap_servers, topics, to_topics.client_options
        ) as sink:
            sink.open(partitions)
            yield sink
    except TopicOutputError as exc:
        raise ReplayInputError(str(exc)) from None


def _with_report_files(out: Path | None, report: Report) -> Report:
    if out is not None:
        try:
            write_report(out, report)
        except OSError as exc:
            raise ReplayInputError(f"{out}: {exc.strerror}") from None
    return report
