"""``enforcer remediate plan | apply``: undo what a sink's history exposes that a policy
would not have forwarded (docs/remediate.md).

``plan`` reads the sink topic (read_committed, no consumer group, by the reader
``replay --topic`` uses), judges what it still exposes with the decision step
(:mod:`enforcer.remediate.planner`) and writes the plan file. ``apply`` writes the
plan's retractions to the sink in transactions, after reading back the ones an earlier
apply of the same plan committed, so a second apply writes nothing and an interrupted
one finishes the rest.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from enforcer.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    LEDGER_FILE_HELP,
    Parser,
    UsageError,
    ledger_as_of_flag,
    policy_from,
    policy_options,
    schema_registry_from,
    schema_registry_options,
    schema_registry_settings,
    settings_from,
)
from enforcer.cli.remediate_kafka import (
    TopicRange,
    Transactions,
    check_exposure,
    check_readable,
    kafka_message,
)
from enforcer.cli.replay import ledger_from_flags
from enforcer.outputs.wording import counted
from enforcer.remediate.partitioners import PARTITIONERS, Partitioner, murmur2_partition

if TYPE_CHECKING:
    from enforcer.config.settings import EnforcerSettings
    from enforcer.core.policy.compiled import Policy
    from enforcer.outputs.progress import ProgressBar
    from enforcer.remediate.apply import ExposureHeld, ExposureWrite
    from enforcer.remediate.history import SinkRecord
    from enforcer.remediate.plan import Plan
    from enforcer.remediate.planner import Planner
    from enforcer.replay.schemas import ReplayFormats

DEFAULT_BATCH = 500
"""Retractions per transaction in ``apply``."""
SAMPLED_PER_PARTITION = 200
"""Source records read per partition to find their partitioner: a wrong one fits 200
keyed records of a partition (with two partitions) once in 2^200."""


def add_flags(remediate: Parser) -> None:
    """The subcommands of ``remediate`` and their flags."""
    commands = remediate.add_subparsers(
        dest="remediate_command", required=True, parser_class=Parser
    )
    plan = commands.add_parser(
        "plan", help="judge what the sink's history exposes; write the plan of retractions"
    )
    plan.add_argument("--out", type=Path, required=True, metavar="FILE", help="the plan file")
    plan.add_argument(
        "--sink-topic",
        metavar="NAME",
        help="the sink topic whose history to read (ENFORCER_SINK_TOPIC)",
    )
    plan.add_argument(
        "--source-topic",
        metavar="NAME",
        help="the topic the forwarded records came from, for field mappings that name "
        "topics (ENFORCER_SOURCE_TOPIC)",
    )
    plan.add_argument(
        "--since",
        type=_time,
        metavar="RFC3339",
        help="read from this record time (default: the beginning)",
    )
    plan.add_argument(
        "--until",
        type=_time,
        metavar="RFC3339",
        help="read up to this record time, exclusive (default: the end as the plan starts)",
    )
    ledger = plan.add_mutually_exclusive_group()
    ledger.add_argument("--ledger-file", type=Path, metavar="FILE", help=LEDGER_FILE_HELP)
    ledger.add_argument(
        "--ledger-topic",
        metavar="NAME",
        help="judge against a purpose ledger topic, read whole (same Kafka connection)",
    )
    ledger_as_of_flag(plan)
    plan.add_argument(
        "--fingerprint-key-file",
        type=Path,
        metavar="FILE",
        help="file holding the fingerprint key (ENFORCER_FINGERPRINT_KEY_FILE)",
    )
    plan.add_argument(
        "--previous-fingerprint-key-file",
        type=Path,
        metavar="FILE",
        help="after a key rotation, the file holding the key used before it: the "
        "history's retractions made under it are matched too "
        "(ENFORCER_PREVIOUS_FINGERPRINT_KEY_FILE; default: none)",
    )
    plan.add_argument("--html", type=Path, metavar="FILE", help="also write the plan as a page")
    plan.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    plan.add_argument(
        "--with-exposure",
        action="store_true",
        help="also list every identifier still exposed and allowed, so that `apply "
        "--exposure-topic` can seed exposure from the plan",
    )
    _kafka_flags(plan)
    policy_options(plan)
    schema_registry_options(plan)

    apply = commands.add_parser("apply", help="write a plan's retractions to the sink")
    apply.add_argument("plan", type=Path, metavar="PLAN", help="the plan file")
    apply.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH,
        metavar="N",
        help="retractions per transaction",
    )
    apply.add_argument(
        "--exposure-topic",
        metavar="NAME",
        help="also remove each retracted identifier from this exposure topic, in the same "
        "transactions, and with a plan made with --with-exposure seed it; only while the "
        "workers are stopped (ENFORCER_EXPOSURE_TOPIC; default: none)",
    )
    apply.add_argument(
        "--group-id",
        metavar="NAME",
        help="with --exposure-topic: the workers' consumer group, which must have no "
        "active member (ENFORCER_GROUP_ID, default: purpose-enforcer)",
    )
    apply.add_argument(
        "--source-topic",
        metavar="NAME",
        help="with --exposure-topic: the source topic, whose partition count the exposure "
        "topic must have (ENFORCER_SOURCE_TOPIC, default: identity.events)",
    )
    apply.add_argument(
        "--source-partitioner",
        choices=("auto", *PARTITIONERS),
        default="auto",
        help="with --exposure-topic, when the plan seeds exposure: the partitioner the "
        "source's producers place subject ids with, where a subject new to exposure is "
        "seeded (murmur2: Java clients; crc32: librdkafka's default; fnv1a); 'auto' finds "
        f"it from the source's last {SAMPLED_PER_PARTITION} records per partition "
        "(default: auto)",
    )
    _kafka_flags(apply)


def _kafka_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--bootstrap-servers", metavar="HOST:PORT", help="Kafka (ENFORCER_BOOTSTRAP_SERVERS)"
    )
    parser.add_argument(
        "--kafka-config",
        type=Path,
        metavar="FILE",
        help="client properties (docs/security.md) (ENFORCER_KAFKA_CONFIG)",
    )


def _time(text: str) -> str:
    from enforcer.core.models import parse_rfc3339
    from enforcer.replay.sources.kafka_topic import record_time

    try:
        parse_rfc3339(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an RFC 3339 time (like 2019-10-08T00:00:00Z), not {text!r}"
        ) from None
    try:
        record_time(text.strip())
    except ValueError as exc:
        # Else the broker is asked for the offset of a negative time, and refuses.
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def command(args: argparse.Namespace) -> int:
    """Run the chosen subcommand."""
    if args.remediate_command == "plan":
        return _plan(args)
    return _apply(args)


# -- plan ---------------------------------------------------------------------------


def _plan(args: argparse.Namespace) -> int:
    if args.ledger_as_of is not None and args.ledger_file is None and args.ledger_topic is None:
        raise UsageError("--ledger-as-of goes with --ledger-file or --ledger-topic")
    from enforcer.core.clock import SystemClock
    from enforcer.core.models import parse_rfc3339
    from enforcer.live.garbage import kept_small
    from enforcer.remediate.judge import Judge
    from enforcer.remediate.plan import PartitionSpan, plan_bytes
    from enforcer.remediate.planner import Planner
    from enforcer.remediate.summary import summary_lines
    from enforcer.replay.sources.kafka_topic import Position, parse_end, parse_start

    if args.since and args.until and parse_rfc3339(args.since) > parse_rfc3339(args.until):
        raise UsageError(f"--since {args.since} is after --until {args.until}")
    outputs = [path for path in (args.out, args.html) if path is not None]
    for path in outputs:
        # Said before the history is read, not after.
        _check_writable(path)
    # Resolved: a path through ``..`` or a symbolic link may name the same file.
    if len(outputs) == 2 and outputs[0].resolve() == outputs[1].resolve():
        raise UsageError(f"--out and --html name the same file, {args.out}")
    settings = settings_from(
        policy_file=args.policy,
        destination=args.destination,
        mode=args.mode,
        fingerprint_key_file=args.fingerprint_key_file,
        previous_fingerprint_key_file=args.previous_fingerprint_key_file,
        bootstrap_servers=args.bootstrap_servers,
        kafka_config=args.kafka_config,
        phone_default_region=args.phone_region,
        sink_topic=args.sink_topic,
        source_topic=args.source_topic,
        **schema_registry_settings(args),
    )
    _check_client_properties(settings)
    fingerprinter = settings.fingerprinter()
    previous = settings.previous_fingerprinter(fingerprinter)
    policy = policy_from(settings)
    with_ledger = args.ledger_file is not None or args.ledger_topic is not None
    policy.ledger_mode(with_ledger)  # a policy that needs a ledger, without one: refused now
    ledger = ledger_from_flags(args, settings, fingerprinter)
    formats = _formats(settings, policy)
    reader = formats.reader if formats is not None else None
    lookup = None
    if ledger is not None:
        from enforcer.ledger.lookup import WholeLedger

        lookup = WholeLedger(ledger.replay.state)
    judge = Judge(policy, fingerprinter, SystemClock(), lookup, reader, previous)
    planner = Planner(
        judge, settings.sink_topic, settings.source_topic, with_exposure=args.with_exposure
    )
    start = Position(args.since, at=parse_rfc3339(args.since)) if args.since else None
    end = Position(args.until, at=parse_rfc3339(args.until)) if args.until else None
    with (
        TopicRange(settings, start or parse_start("earliest"), end or parse_end("latest")) as topic,
        kept_small(),
    ):
        _read_history(planner, topic, formats, progress=not args.no_progress)
        spans = [PartitionSpan(r.partition, r.start, r.end) for r in topic.ranges]
        plan = planner.plan(since=args.since, until=args.until, offsets=spans)
    files = [(args.out, plan_bytes(plan))]
    if args.html is not None:
        from enforcer.remediate.page import plan_page

        files.append((args.html, plan_page(plan).encode("utf-8")))
    _write_all(files)
    print("\n".join(summary_lines(plan)))
    if plan.history.unreadable and (formats is None or formats.loader is None):
        # The common cause: a sink of framed records planned without the registry.
        print(
            f"enforcer: {plan.history.unreadable:,} forwarded records could not be read: "
            "framed records (Avro, Protobuf, JSON Schema) need --schema-registry-url, "
            "records in a topic's own shape the policy's field mappings (docs/formats.md)",
            file=sys.stderr,
        )
    if previous is not None:
        print(
            f"enforcer: previous key (key id {previous.key_id}): "
            f"{counted(planner.previous_key_retractions, 'retraction')} in the history "
            "made under it named an identifier it forwarded",
            file=sys.stderr,
        )
    _warn_of_other_key_retractions(planner.other_key_retractions, plan.key_id)
    print(f"plan written to {args.out}", file=sys.stderr)
    return EXIT_OK


def _warn_of_other_key_retractions(by_key: Mapping[str, int], key_id: str) -> None:
    """One line per key id of the history's retractions that neither the plan's key nor
    the previous key is: what they retracted looks still exposed to the plan, which
    retracts it again (after a key rotation, the previous key was not given)."""
    for other, count in sorted(by_key.items()):
        print(
            f"enforcer: warning: {counted(count, 'retraction')} in the history made under "
            f"key id {other}, neither the plan's key ({key_id}) nor a previous key: what "
            "they retracted counts as still exposed; if that is the key used before a "
            "rotation, plan again with it as --previous-fingerprint-key-file "
            '(docs/remediate.md, "After a key rotation")',
            file=sys.stderr,
        )


def _check_writable(path: Path) -> None:
    """Refuse an output path that cannot be a file: a directory, or in a directory that
    does not exist."""
    if path.is_dir():
        raise UsageError(f"cannot write {path}: it is a directory")
    if not path.absolute().parent.is_dir():
        raise UsageError(f"cannot write {path}: its directory does not exist")


def _write_all(files: list[tuple[Path, bytes]]) -> None:
    """Write every file or none: each to a temporary file beside it first, then all
    renamed into place; a failure names the file and leaves nothing behind."""
    import os

    written: list[tuple[Path, Path]] = []
    try:
        for path, data in files:
            temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            try:
                temporary.write_bytes(data)
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror}") from None
            written.append((temporary, path))
        for temporary, path in written:
            try:
                temporary.replace(path)
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        for temporary, _ in written:
            temporary.unlink(missing_ok=True)


def _formats(settings: EnforcerSettings, policy: Policy) -> ReplayFormats | None:
    """How framed records and mapped JSON are read, as replay reads them: the registry's
    schemas and the record reader (``None`` without a registry or field mappings)."""
    registry = schema_registry_from(settings)
    if registry is None and policy.formats is None:
        return None
    from enforcer.live.schemas import schema_loader, step_reader
    from enforcer.replay.schemas import ReplayFormats

    loader = schema_loader(registry) if registry is not None else None
    return ReplayFormats(
        loader,
        step_reader(policy, loader),
        settings.schema_registry_deadline,
        say=lambda line: print(f"enforcer: {line}", file=sys.stderr),
        command="remediate plan",
    )


def _read_history(
    planner: Planner, topic: TopicRange, formats: ReplayFormats | None, *, progress: bool
) -> None:
    """Every record of the range into the planner, with a progress bar on a terminal
    (counted in offsets)."""
    from enforcer.outputs.progress import progress_bar

    total = sum(r.size for r in topic.ranges)
    with progress_bar(progress, total, "rec", "plan") as bar:
        records = _with_schemas(topic.records(), formats)
        if bar.enabled:
            records = advancing(records, bar, {r.partition: r.start for r in topic.ranges})
        planner.add_all(records)


def advancing(
    records: Iterator[SinkRecord], bar: ProgressBar, done: dict[int, int]
) -> Iterator[SinkRecord]:
    """``records``, the bar moved on by each one's offsets: from where its partition was
    ``done`` (the range's start at first) to just past it, so that transaction markers
    and aborted records, never given, still count."""
    for record in records:
        partition, offset = record.partition, record.offset
        bar.advance(offset + 1 - done[partition])
        done[partition] = offset + 1
        yield record


def _with_schemas(
    records: Iterator[SinkRecord], formats: ReplayFormats | None
) -> Iterator[SinkRecord]:
    """``records``, each chunk's schemas fetched before it is judged (replay's
    :func:`~enforcer.replay.schemas.prefetched`, chunk by chunk); a registry that stays
    down past its deadline is one line, exit 2."""
    if formats is None or formats.loader is None:
        yield from records
        return
    from itertools import islice

    from enforcer.core.step import InputRecord, Source
    from enforcer.replay.schemas import CHUNK, RegistryDownError, prefetched

    while chunk := list(islice(records, CHUNK)):
        values = [InputRecord(None, r.value, (), Source("", 0, 0)) for r in chunk]
        try:
            for _ in prefetched(values, formats):
                pass
        except RegistryDownError as exc:
            raise UsageError(str(exc)) from None
        yield from chunk


# -- apply --------------------------------------------------------------------------


def _apply(args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    from enforcer.remediate.plan import read_plan

    plan = read_plan(args.plan)
    settings = settings_from(
        bootstrap_servers=args.bootstrap_servers,
        kafka_config=args.kafka_config,
        sink_topic=plan.sink_topic,
        source_topic=args.source_topic,
        exposure_topic=args.exposure_topic,
        group_id=args.group_id,
    )
    if settings.exposure_topic is None:
        # Else ignored: an apply meant to keep exposure right would leave it stale.
        given = (
            ("--group-id", args.group_id),
            ("--source-topic", args.source_topic),
            ("--source-partitioner", None if args.source_partitioner == "auto" else "given"),
        )
        for flag, value in given:
            if value is not None:
                raise UsageError(f"{flag} goes with --exposure-topic (or ENFORCER_EXPOSURE_TOPIC)")
        if plan.exposure is not None:
            # Made to seed exposure: applied without a topic, it would seed nothing.
            raise UsageError(
                f"{args.plan}: the plan carries exposure to seed (plan --with-exposure); "
                "give the exposure topic (--exposure-topic or ENFORCER_EXPOSURE_TOPIC), or "
                "make the plan again without --with-exposure to write its retractions alone"
            )
    # Everything is checked before anything is written: the client properties, the
    # broker and the sink topic (the quick check `plan` makes), then the exposure topic
    # and the workers' group.
    _check_client_properties(settings)
    check_readable(settings)
    place: Partitioner = murmur2_partition
    if settings.exposure_topic is not None:
        check_exposure(settings)
        if plan.exposure is not None:
            place = _source_partitioner(settings, args.source_partitioner)
    producer = Transactions(settings, plan.plan_id)
    try:
        # After the producer's start: it has fenced an earlier apply of this plan and
        # aborted its open transaction, so what is read now is final.
        exposure = _exposure_held(settings) if settings.exposure_topic is not None else None
        status = _write(args, settings, plan, producer, exposure, place)
        if status == EXIT_OK and exposure is not None and plan.exposure is not None:
            status = _seed_exposure(args, plan, producer, exposure, place)
    finally:
        producer.close()
    return status


def _source_partitioner(settings: EnforcerSettings, asked: str) -> Partitioner:
    """Where seeding puts a subject new to exposure: where the source's producers put
    its id. ``auto`` reads the source's latest keyed records and takes the partitioner
    that placed every one (docs/remediate.md, "Seeding exposure"); no keyed record, none
    placing them all, or more than one (too few records to tell), is one line and exit
    2, before anything is written. A source of one partition needs no sample."""
    from enforcer.remediate.partitioners import placing
    from enforcer.replay.sources.kafka_topic import parse_end, parse_start

    if asked != "auto":
        return PARTITIONERS[asked]
    source = settings.source_topic
    with TopicRange(settings, parse_start("earliest"), parse_end("latest"), source) as topic:
        partitions = len(topic.ranges)
        if partitions == 1:
            return PARTITIONERS["murmur2"]  # every partitioner gives the one partition
        keys = topic.latest_keys(SAMPLED_PER_PARTITION)
    fitting = placing(keys, partitions)
    if not keys:
        # A guess (Kafka's default) would be wrong for about two subjects in three of a
        # source written by librdkafka's default: refused, as a sample that fits none.
        raise UsageError(
            f"{source} holds no keyed record to tell its partitioner by (empty, or its "
            "records expired): pass --source-partitioner murmur2, crc32 or fnv1a, the one "
            'its producers place subject ids with (docs/remediate.md, "Seeding exposure")'
        )
    if not fitting:
        raise UsageError(
            f"the {len(keys):,} latest keyed records of {source} are not where murmur2, "
            "crc32 or fnv1a put their keys: exposure seeded by subject id would not be "
            "where the workers look for it; key the source by subject id, or pass "
            '--source-partitioner (docs/remediate.md, "Seeding exposure")'
        )
    if len(fitting) > 1:
        raise UsageError(
            f"the {len(keys):,} latest keyed records of {source} are where "
            f"{' and '.join(fitting)} all put their keys: too few to tell which one placed "
            "them, and exposure seeded by the other would not be where the workers look for "
            'it; pass --source-partitioner (docs/remediate.md, "Seeding exposure")'
        )
    name = fitting[0]
    print(
        f"exposure: seeding where {name} puts subject ids, as it placed the "
        f"{len(keys):,} latest keyed records of {source}",
        file=sys.stderr,
    )
    return PARTITIONERS[name]


def _check_client_properties(settings: EnforcerSettings) -> None:
    """The ``--kafka-config`` file checked with remediate's own refusals first: one it
    refuses says what is true of remediate (its transactional id is the plan's), not of
    the workers (the clients made later read the same file, and find it checked)."""
    if settings.kafka_config is not None:
        from enforcer.config.client_properties import REMEDIATE_GUARANTEES, read_properties

        read_properties(settings.kafka_config, REMEDIATE_GUARANTEES)


class _Exposure(NamedTuple):
    """The exposure topic as an apply found it: its name, its partition count and each
    subject's value (kept up to date as the apply writes)."""

    topic: str
    partitions: int
    held: dict[str, ExposureHeld]


def _exposure_held(settings: EnforcerSettings) -> _Exposure:
    from enforcer.remediate.apply import exposure_held
    from enforcer.replay.sources.kafka_topic import parse_end, parse_start

    name = settings.exposure_topic
    assert name is not None
    with TopicRange(settings, parse_start("earliest"), parse_end("latest"), name) as topic:
        held = exposure_held((r.partition, r.key, r.value) for r in topic.records())
        return _Exposure(name, len(topic.ranges), held)


def _write(
    args: argparse.Namespace,
    settings: EnforcerSettings,
    plan: Plan,
    producer: Transactions,
    exposure: _Exposure | None,
    place: Partitioner,
) -> int:
    """The plan's retractions the sink does not hold yet, in transactions of
    ``--batch-size``; with an exposure topic, each also takes the identifiers it retracts
    out of exposure, and the ones retracted before but still there are taken out after."""
    from confluent_kafka import KafkaException

    from enforcer.remediate.apply import apply_transactions, written_by
    from enforcer.replay.sources.kafka_topic import parse_end, parse_start

    with TopicRange(settings, parse_start("earliest"), parse_end("latest")) as topic:
        written = written_by(plan.plan_id, ((r.headers, r.value) for r in topic.records()))
    held = exposure.held if exposure is not None else None
    if held is not None:
        _warn_of_other_keys(plan, held)
    transactions = apply_transactions(plan, written, held, args.batch_size)
    total = len(plan.retractions)
    todo = sum(len(t.retractions) for t in transactions)
    done = total - todo
    if not todo:
        print(_nothing_to_write(plan))
    elif done:
        print(
            f"{done:,} of {total:,} retractions already in {plan.sink_topic}; "
            f"writing the other {todo:,}",
            file=sys.stderr,
        )
    values = tombstones = 0
    for transaction in transactions:
        records = _records(transaction.exposure, exposure.partitions if exposure else 0, place)
        try:
            producer.commit(
                plan.policy_version,
                transaction.retractions,
                exposure.topic if exposure is not None else "",
                records,
            )
        except KafkaException as exc:
            # What was committed stays; the next apply of the plan writes the rest.
            print(
                f"enforcer: apply stopped after {done:,} of {total:,} retractions: "
                f"{kafka_message(exc)}; run it again to write the rest",
                file=sys.stderr,
            )
            return EXIT_FINDINGS
        values += len(records)
        tombstones += sum(value is None for _, _, value in records)
        if transaction.retractions:
            done += len(transaction.retractions)
            print(f"committed {done:,}/{total:,}", file=sys.stderr, flush=True)
    if todo:
        print(
            f"wrote {todo:,} retractions of plan {plan.plan_id} to {plan.sink_topic} "
            f"({total - todo:,} were there already)"
        )
    if exposure is not None:
        changed = counted(values, "subject's value", "subjects' values")
        print(
            f"exposure: retracted identifiers taken out of {changed} in "
            f"{exposure.topic} ({tombstones:,} left empty: tombstones)"
        )
    return EXIT_OK


def _nothing_to_write(plan: Plan) -> str:
    """The line an apply prints when the sink already holds every retraction of the plan,
    or the plan has none (a plan that only seeds exposure, or one that found nothing to
    take back): it names the sink, so that exposure written afterwards does not read as
    a contradiction."""
    total = len(plan.retractions)
    if not total:
        return f"nothing to write to {plan.sink_topic}: plan {plan.plan_id} has no retractions"
    return (
        f"nothing to write: the {total:,} retractions of plan {plan.plan_id} are "
        f"all in {plan.sink_topic} already"
    )


def _warn_of_other_keys(plan: Plan, held: dict[str, ExposureHeld]) -> None:
    """One line per key id other than the plan's that exposure entries of the plan's
    subjects were made under: apply leaves those entries where they are."""
    from enforcer.remediate.apply import under_other_keys

    for key_id, subjects in sorted(under_other_keys(plan, held).items()):
        print(
            f"enforcer: warning: exposure entries on {plan.sink_topic} under key id "
            f"{key_id}, not the plan's {plan.key_id}, in {counted(subjects, 'subject')} of "
            "the plan: they stay in exposure (docs/remediate.md, key rotation)",
            file=sys.stderr,
        )


def _key(subject_id: str) -> bytes:
    return subject_id.encode("utf-8", "surrogatepass")


def _records(
    writes: list[ExposureWrite], partitions: int, place: Partitioner
) -> list[tuple[int, bytes, bytes | None]]:
    """Exposure values as (partition, key, value) records: a subject already in the topic
    where it is; a new one co-partitioned with the source, where ``place`` (the source's
    partitioner) puts its subject id (docs/ledger.md)."""
    return [
        (
            w.partition if w.partition is not None else place(_key(w.subject_id), partitions),
            _key(w.subject_id),
            w.value,
        )
        for w in writes
    ]


def _seed_exposure(
    args: argparse.Namespace,
    plan: Plan,
    producer: Transactions,
    exposure: _Exposure,
    place: Partitioner,
) -> int:
    """Exposure for a deployment that predates it: each subject's value, merged with what
    the exposure topic holds, written where its key falls (docs/remediate.md)."""
    from confluent_kafka import KafkaException

    from enforcer.remediate.apply import exposure_writes, misplaced

    partitions = exposure.partitions
    astray = misplaced(exposure.held, lambda subject: place(_key(subject), partitions))
    if astray:
        print(
            f"enforcer: warning: the exposure values of {counted(len(astray), 'subject')} "
            f"in {exposure.topic} are in another partition than the source's partitioner "
            "gives their ids (seeded by an earlier apply that guessed it?): a worker does "
            "not find them, so their withdrawals and erasures retract nothing; they stay "
            'where they are (docs/remediate.md, "Seeding exposure")',
            file=sys.stderr,
        )
    records = _records(exposure_writes(plan, exposure.held), partitions, place)
    for start_at in range(0, len(records), args.batch_size):
        try:
            producer.commit(
                plan.policy_version,
                [],
                exposure.topic,
                records[start_at : start_at + args.batch_size],
            )
        except KafkaException as exc:
            print(
                f"enforcer: exposure seeding stopped: {kafka_message(exc)}; run it again",
                file=sys.stderr,
            )
            return EXIT_FINDINGS
    seeded = counted(len(records), "subject's value", "subjects' values")
    print(f"exposure: {seeded} seeded in {exposure.topic}")
    return EXIT_OK
