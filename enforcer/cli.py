"""The ``enforcer`` command: run | replay | explain | policy check|test|schema | keygen.

Every failure a user can cause ends as one line on stderr and exit status 2
(usage or configuration) or 1 (violations found, tests failed); never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import orjson
from pydantic import ValidationError

from enforcer.cli_run import HttpPortError, add_run_parser, run_command
from enforcer.clock import SystemClock
from enforcer.fingerprint import Fingerprinter, FingerprintKeyError, generate_key
from enforcer.kafka_admin import TopicSetupError
from enforcer.kafka_security import KafkaSecurityError, aiokafka_security
from enforcer.models import Mode
from enforcer.policy.compiled import DEFAULT_DESTINATION, Policy
from enforcer.policy.load import PolicyLoadError, format_location, load_policy
from enforcer.replay_cli import ReplayInputError, TopicOutput, replay_file, replay_topic
from enforcer.settings import EnforcerSettings
from enforcer.sinks.kafka import OutputTopics
from enforcer.sources.kafka_topic import Position, parse_end, parse_start

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in how the command was called or configured (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def _policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policy", type=Path, help="policy file (default: the built-in default)")
    parser.add_argument(
        "--destination", help=f"destination for allow-lists (default: {DEFAULT_DESTINATION})"
    )
    parser.add_argument(
        "--mode", choices=[m.value for m in Mode], help="override the policy's mode"
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="enforcer", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    add_run_parser(commands)

    replay = commands.add_parser("replay", help="run the decision over history")
    source = replay.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-file", type=Path, metavar="FILE", help="JSON Lines file")
    source.add_argument("--topic", metavar="NAME", help="Kafka topic (read_committed, no group)")
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
    replay.add_argument(
        "--bootstrap-servers", metavar="HOST:PORT", help="Kafka (ENFORCER_BOOTSTRAP_SERVERS)"
    )
    replay.add_argument("--out", type=Path, metavar="DIR", help="where the outputs go")
    replay.add_argument(
        "--output-topic-prefix",
        metavar="PREFIX",
        help="write forwarded records, violations and dead letters to the live topic names "
        "with this prefix instead of files (--out then gets only the report)",
    )
    replay.add_argument("--fail-on-violation", action="store_true")
    replay.add_argument("--fingerprint-key-file", type=Path, metavar="FILE")
    replay.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    _policy_options(replay)

    explain = commands.add_parser("explain", help="show the decision for one record")
    explain.add_argument("file", nargs="?", default="-", help="record file, or - for stdin")
    explain.add_argument(
        "--line", type=int, metavar="N", help="take 0-based line N of a JSONL file"
    )
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    _policy_options(explain)

    policy = commands.add_parser("policy", help="check, test or describe policies")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file", type=Path)
    check.add_argument("--destination", default=DEFAULT_DESTINATION)
    test = policy_commands.add_parser("test", help="run policy test files")
    test.add_argument("files", type=Path, nargs="+")
    policy_commands.add_parser("schema", help="print the policy file's JSON Schema")

    commands.add_parser("keygen", help="print a new random fingerprint key")
    return parser


def _settings(**overrides: Any) -> EnforcerSettings:
    """Settings from the environment, with the flags that were given on top."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return EnforcerSettings(**given)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        name = format_location(tuple(error["loc"]))
        raise UsageError(f"setting {name} (ENFORCER_{name.upper()}): {error['msg']}") from None


def _policy(settings: EnforcerSettings) -> Policy:
    policy = load_policy(settings.policy_file, destination=settings.destination)
    return policy.with_mode(settings.mode) if settings.mode else policy


def _position(parse: Callable[[str], Position]) -> Callable[[str], Position]:
    def checked(text: str) -> Position:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return checked


def _replay(args: argparse.Namespace) -> int:
    if args.topic is None and (args.start or args.end):
        raise UsageError("--start and --end go with --topic")
    if args.out is None and args.output_topic_prefix is None:
        raise UsageError("replay needs --out DIR, or --output-topic-prefix PREFIX")
    settings = _settings(
        policy_file=args.policy,
        destination=args.destination,
        mode=args.mode,
        fingerprint_key_file=args.fingerprint_key_file,
        bootstrap_servers=args.bootstrap_servers,
    )
    fingerprinter = settings.fingerprinter()
    policy = _policy(settings)
    progress = not args.no_progress
    to_topics = None
    if args.output_topic_prefix is not None:
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
            ),
        )
    if args.topic is not None:
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
        )
    else:
        report = replay_file(args.from_file, args.out, policy, fingerprinter, progress, to_topics)
    counts = report.records
    where = [f"{args.out}/"] if args.out else []
    if to_topics is not None:
        where.insert(0, f"topics {args.output_topic_prefix}*")
    print(
        f"replayed {counts.in_:,} records: {counts.passed:,} passed, {counts.redacted:,} redacted, "
        f"{counts.dropped:,} dropped, {counts.deadlettered:,} dead-lettered; "
        f"{report.violations:,} violations affecting {report.affected_subjects:,} accounts. "
        f"Outputs in {' and '.join(where)}",
        file=sys.stderr,
    )
    return EXIT_FINDINGS if args.fail_on_violation and report.violations else EXIT_OK


def _explain(args: argparse.Namespace) -> int:
    from enforcer.explain import explanation, render_text
    from enforcer.step import InputRecord, Source, Step

    name = "stdin" if args.file == "-" else Path(args.file).name
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        raise UsageError(f"{args.file}: {exc.strerror}") from None
    offset = 0
    if args.line is not None:
        lines = data.splitlines()
        if not 0 <= args.line < len(lines):
            raise UsageError(f"{args.file} has no line {args.line} (it has {len(lines)})")
        data, offset = lines[args.line], args.line
    settings = _settings(policy_file=args.policy, destination=args.destination, mode=args.mode)
    # explain shows decisions, not fingerprints, so it needs no secret key.
    step = Step(_policy(settings), Fingerprinter(generate_key().encode()), SystemClock())
    outcome, decision = step.explain(InputRecord(None, data.strip(), (), Source(name, 0, offset)))
    result = explanation(step, outcome, decision)
    print(
        orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
        if args.json
        else render_text(result)
    )
    return EXIT_OK


def _policy_command(args: argparse.Namespace) -> int:
    if args.policy_command == "check":
        policy = load_policy(args.file, destination=args.destination)
        rules = ", ".join(rule.name for rule in policy.rules)
        print(f"{args.file}: ok ({policy.version}; mode {policy.mode.value}; rules: {rules})")
        for warning in policy.taxonomy_warnings():
            print(f"{args.file}: warning: {warning}", file=sys.stderr)
        return EXIT_OK
    if args.policy_command == "schema":
        from enforcer.policy.spec import PolicyFile

        print(orjson.dumps(PolicyFile.model_json_schema(), option=orjson.OPT_INDENT_2).decode())
        return EXIT_OK
    from enforcer.policy.testing import run_test_file

    passed = failed = 0
    for path in args.files:
        for result in run_test_file(path):
            if result.problem:
                failed += 1
                print(f"FAIL {path}: {result.name}: {result.problem}")
            else:
                passed += 1
                print(f"PASS {path}: {result.name}")
    print(f"{passed} passed, {failed} failed")
    return EXIT_FINDINGS if failed else EXIT_OK


def _keygen(_: argparse.Namespace) -> int:
    print(generate_key())
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``enforcer`` console script."""
    try:
        args = _build_parser().parse_args(argv)
        handlers: dict[str, Callable[[argparse.Namespace], int]] = {
            "replay": _replay,
            "explain": _explain,
            "policy": _policy_command,
            "keygen": _keygen,
        }
        if args.command == "run":
            return run_command(args, _settings, _policy)
        return handlers[args.command](args)
    except (
        UsageError,
        PolicyLoadError,
        FingerprintKeyError,
        ReplayInputError,
        TopicSetupError,
        HttpPortError,
        KafkaSecurityError,
    ) as exc:
        print(f"enforcer: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("enforcer: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if os.environ.get("ENFORCER_DEBUG"):
            raise
        # Only the type: a message could quote input data.
        print(
            f"enforcer: internal error ({type(exc).__name__}); "
            "set ENFORCER_DEBUG=1 to see the traceback",
            file=sys.stderr,
        )
        return EXIT_FINDINGS


if __name__ == "__main__":
    sys.exit(main())
