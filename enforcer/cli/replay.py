"""``enforcer replay``: the decision over history, from a file or a topic."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

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
from enforcer.outputs.wording import counted

if TYPE_CHECKING:
    from enforcer.config.settings import EnforcerSettings
    from enforcer.core.fingerprint import Fingerprinter
    from enforcer.core.policy.compiled import Policy
    from enforcer.replay.ledger import LoadedLedger
    from enforcer.replay.schemas import ReplayFormats
    from enforcer.replay.sources.kafka_topic import Position


def add_flags(replay: Parser) -> None:
    """The flags of ``replay``."""
    from enforcer.replay.sources.kafka_topic import parse_end, parse_start

    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--from-file", type=Path, metavar="FILE", help="a file of values, one a line (--format)"
    )
    source.add_argument("--topic", metavar="NAME", help="Kafka topic (read_committed, no group)")
    replay.add_argument(
        "--format",
        choices=("json", "confluent"),
        default=None,
        help="with --from-file: json, one JSON value a line (JSON Lines, the default); "
        "confluent, one base64 value a line (framed records, as `enforcer sample --format "
        "avro` writes them), forwarded values written the same way",
    )
    replay.add_argument(
        "--source-topic",
        metavar="NAME",
        help="with --from-file: the topic the file's records are taken to come from, for "
        "field mappings that name topics (default: the file's name)",
    )
    replay.add_argument(
        "--start",
        type=_position(parse_start),
        metavar="earliest|OFFSET|RFC3339",
        help="with --topic: where to begin on every partition (default: earliest)",
    )
    replay.add_argument(
        "--end",
        type=_position(parse_end),
        metavar="latest|OFFSET|RFC3339",
        help="with --topic: where to stop, exclusive (default: latest, as the replay starts)",
    )
    ledger = replay.add_mutually_exclusive_group()
    ledger.add_argument("--ledger-file", type=Path, metavar="FILE", help=LEDGER_FILE_HELP)
    ledger.add_argument(
        "--ledger-topic",
        metavar="NAME",
        help="judge against a purpose ledger: a compacted topic, every partition read from "
        "its beginning to its end (same Kafka connection as --topic)",
    )
    ledger_as_of_flag(replay)
    replay.add_argument(
        "--bootstrap-servers", metavar="HOST:PORT", help="Kafka (ENFORCER_BOOTSTRAP_SERVERS)"
    )
    replay.add_argument(
        "--kafka-config",
        type=Path,
        metavar="FILE",
        help="client properties; replay from topics takes their security subset "
        "(docs/security.md) (ENFORCER_KAFKA_CONFIG)",
    )
    replay.add_argument("--out", type=Path, metavar="DIR", help="where the outputs go")
    replay.add_argument(
        "--output-topic-prefix",
        metavar="PREFIX",
        help="write forwarded records, violations and dead letters to the live topic names "
        "with this prefix instead of files (--out then gets only the report)",
    )
    replay.add_argument(
        "--fail-on-violation",
        action="store_true",
        help="exit 1 when any violation was found (for policy changes in CI)",
    )
    replay.add_argument(
        "--fingerprint-key-file",
        type=Path,
        metavar="FILE",
        help="file holding the fingerprint key (ENFORCER_FINGERPRINT_KEY_FILE)",
    )
    replay.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    policy_options(replay)
    schema_registry_options(replay)


def _position(parse: Callable[[str], Position]) -> Callable[[str], Position]:
    def checked(text: str) -> Position:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return checked


def _refuse_empty_topic_names(args: argparse.Namespace) -> None:
    """An empty name would be asked of Kafka, or written into every output."""
    for flag, topic in (
        ("--topic", args.topic),
        ("--source-topic", args.source_topic),
        ("--ledger-topic", args.ledger_topic),
    ):
        if topic is not None and not topic.strip():
            raise UsageError(f"{flag} needs a topic name")


def command(args: argparse.Namespace) -> int:
    """Replay, print a summary line, and say whether anything was found."""
    _refuse_empty_topic_names(args)
    if args.topic is None and (args.start or args.end):
        raise UsageError("--start and --end go with --topic")
    if args.topic is not None and args.source_topic is not None:
        raise UsageError("--source-topic goes with --from-file (a topic's records are its own)")
    if args.topic is not None and args.format is not None:
        raise UsageError(
            "--format goes with --from-file (a topic's values are read as they are, framed or JSON)"
        )
    if args.ledger_as_of is not None and args.ledger_file is None and args.ledger_topic is None:
        raise UsageError("--ledger-as-of goes with --ledger-file or --ledger-topic")
    if args.out is None and args.output_topic_prefix is None:
        raise UsageError("replay needs --out DIR, or --output-topic-prefix PREFIX")
    from enforcer.replay.run import TopicOutput, replay_file, replay_topic

    settings = settings_from(
        policy_file=args.policy,
        destination=args.destination,
        mode=args.mode,
        fingerprint_key_file=args.fingerprint_key_file,
        bootstrap_servers=args.bootstrap_servers,
        kafka_config=args.kafka_config,
        phone_default_region=args.phone_region,
        **schema_registry_settings(args),
    )
    fingerprinter = settings.fingerprinter()
    policy = policy_from(settings)
    formats = _formats(settings, policy)
    # A policy that asks for a ledger when none is given: refused before reading anything.
    policy.ledger_mode(args.ledger_file is not None or args.ledger_topic is not None)
    ledger = ledger_from_flags(args, settings, fingerprinter)
    progress = not args.no_progress
    to_topics = None
    if args.output_topic_prefix is not None:
        from enforcer.config.kafka_security import aiokafka_security
        from enforcer.outputs.records import OutputTopics

        to_topics = TopicOutput(
            prefix=args.output_topic_prefix,
            bootstrap_servers=settings.bootstrap_servers,
            live=OutputTopics(
                settings.sink_topic, settings.violations_topic, settings.deadletter_topic
            ),
            client_options=aiokafka_security(settings),
            protected=(
                settings.source_topic,
                settings.sink_topic,
                settings.violations_topic,
                settings.deadletter_topic,
                settings.metrics_topic,
                *([args.topic] if args.topic else []),
                *([args.ledger_topic] if args.ledger_topic else []),
            ),
        )
    if args.topic is not None:
        from enforcer.config.kafka_security import aiokafka_security
        from enforcer.replay.sources.kafka_topic import parse_end, parse_start

        report = replay_topic(
            settings.bootstrap_servers,
            args.topic,
            args.start or parse_start("earliest"),
            args.end or parse_end("latest"),
            args.out,
            policy,
            fingerprinter,
            progress,
            to_topics,
            aiokafka_security(settings),
            ledger,
            formats,
        )
    else:
        report = replay_file(
            args.from_file,
            args.out,
            policy,
            fingerprinter,
            progress,
            to_topics,
            ledger,
            formats,
            args.format or "json",
            args.source_topic,
        )
    counts = report.records
    where = [f"{args.out}/"] if args.out else []
    if to_topics is not None:
        where.insert(0, f"topics {args.output_topic_prefix}*")
    print(
        f"replayed {counted(counts.in_, 'record')}; they would have been: "
        f"{counts.passed:,} passed, {counts.redacted:,} redacted, {counts.dropped:,} dropped, "
        f"{counts.deadlettered:,} dead-lettered; {counted(report.violations, 'violation')} "
        f"affecting {counted(report.affected_subjects, 'account')}. "
        f"Outputs in {' and '.join(where)}",
        file=sys.stderr,
    )
    if report.ledger is not None:
        from enforcer.replay.ledger import outcome_line

        print(outcome_line(report.ledger), file=sys.stderr)
    if args.fail_on_violation and report.violations:
        print(
            f"enforcer: failing (--fail-on-violation): {counted(report.violations, 'record')} "
            f"would have violated policy {report.policy_version}",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    return EXIT_OK


def _formats(settings: EnforcerSettings, policy: Policy) -> ReplayFormats | None:
    """How records other than plain identity events are read: the registry's schemas
    and the reader (``None`` without a registry or field mappings)."""
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
    )


def ledger_from_flags(
    args: argparse.Namespace, settings: EnforcerSettings, fingerprinter: Fingerprinter
) -> LoadedLedger | None:
    """The ledger ``--ledger-file`` or ``--ledger-topic`` names, read whole; or ``None``."""
    from enforcer.replay.ledger import load_ledger_file, load_ledger_topic

    if args.ledger_file is not None:
        ledger = load_ledger_file(args.ledger_file, fingerprinter, args.ledger_as_of)
    elif args.ledger_topic is not None:
        from enforcer.config.kafka_security import aiokafka_security

        ledger = load_ledger_topic(
            settings.bootstrap_servers,
            args.ledger_topic,
            fingerprinter,
            args.ledger_as_of,
            aiokafka_security(settings),
        )
    else:
        return None
    print(ledger.describe(), file=sys.stderr)
    return ledger
