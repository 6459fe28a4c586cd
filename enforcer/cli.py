"""The ``enforcer`` command: run | lag-exporter | replay | explain | policy | schema | sample |
keygen.

Every failure a user can cause ends as one line on stderr and exit status 2
(usage or configuration) or 1 (violations found, tests failed); never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

# Nothing of the enforcer is imported here: a command's flags are added, and its code
# imported, only when that command is parsed or run. `enforcer --help` loads neither
# pydantic nor the Kafka stack, and file commands never load Kafka clients.
if TYPE_CHECKING:
    from enforcer.fingerprint import Fingerprinter
    from enforcer.ledger_input import AsOf, LoadedLedger
    from enforcer.policy.compiled import Policy
    from enforcer.settings import EnforcerSettings
    from enforcer.sources.kafka_topic import Position

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """A mistake in how the command was called or configured (exit 2)."""


class _Parser(argparse.ArgumentParser):
    """Errors raise :class:`UsageError`; flags can be added on first use (``populate``)."""

    def __init__(
        self, *args: Any, populate: Callable[[_Parser], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._populate = populate

    def populated(self) -> _Parser:
        """This parser with all its flags (added now if they were deferred)."""
        populate, self._populate = self._populate, None
        if populate is not None:
            populate(self)
        return self

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        return super(_Parser, self.populated()).parse_known_args(args, namespace)

    def format_help(self) -> str:
        return super(_Parser, self.populated()).format_help()

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class _Registered:
    """Hands an already registered subparser to a function that registers it itself."""

    def __init__(self, parser: _Parser) -> None:
        self._parser = parser

    def add_parser(self, _name: str, **_: Any) -> _Parser:
        return self._parser


class _Version(argparse.Action):
    """``--version``: the installed package's version, looked up only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **_: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> NoReturn:
        from importlib.metadata import version

        print(f"enforcer {version('purpose-enforcer')}")
        parser.exit()


def _policy_options(parser: argparse.ArgumentParser) -> None:
    from enforcer.models import Mode
    from enforcer.policy.compiled import DEFAULT_DESTINATION

    parser.add_argument("--policy", type=Path, help="policy file (default: the built-in default)")
    parser.add_argument(
        "--destination", help=f"destination for allow-lists (default: {DEFAULT_DESTINATION})"
    )
    parser.add_argument(
        "--mode", choices=[m.value for m in Mode], help="override the policy's mode"
    )
    parser.add_argument(
        "--phone-region",
        metavar="CC",
        help="region of phone numbers written without a country code, e.g. US or GB; "
        "ZZ for none (ENFORCER_PHONE_DEFAULT_REGION, default US)",
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="enforcer", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=_Version)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, help_text, populate in _COMMANDS:
        commands.add_parser(name, help=help_text, populate=populate)
    return parser


def _add_run_flags(run: _Parser) -> None:
    from enforcer.cli_run import add_run_parser

    add_run_parser(_Registered(run))


def _add_lag_flags(lag: _Parser) -> None:
    from enforcer.cli_lag import add_lag_parser

    add_lag_parser(lag)


def _add_explain_flags(explain: _Parser) -> None:
    explain.add_argument("file", nargs="?", default="-", help="record file, or - for stdin")
    explain.add_argument(
        "--line", type=int, metavar="N", help="take 0-based line N of a JSONL file"
    )
    explain.add_argument("--json", action="store_true", help="machine-readable output")
    explain.add_argument("--ledger-file", type=Path, metavar="FILE", help=_LEDGER_FILE_HELP)
    _ledger_as_of_flag(explain)
    _policy_options(explain)


_LEDGER_FILE_HELP = (
    "judge against a purpose ledger: JSON Lines of ledger values, in order "
    "(the latest per subject wins)"
)


def _ledger_as_of_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--ledger-as-of",
        type=_as_of,
        metavar="RFC3339",
        help="the ledger as it stood at this time: later values and tombstones are skipped",
    )


def _as_of(text: str) -> AsOf:
    from enforcer.ledger_input import parse_as_of

    try:
        return parse_as_of(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_policy_flags(policy: _Parser) -> None:
    from enforcer.policy.compiled import DEFAULT_DESTINATION

    policy_commands = policy.add_subparsers(
        dest="policy_command", required=True, parser_class=_Parser
    )
    check = policy_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file", type=Path, help="the policy file (YAML)")
    check.add_argument(
        "--destination",
        default=DEFAULT_DESTINATION,
        help=f"the destination whose allow-list to check (default: {DEFAULT_DESTINATION})",
    )
    test = policy_commands.add_parser("test", help="run policy test files")
    test.add_argument("files", type=Path, nargs="+", help="test files (*.test.yaml)")
    policy_commands.add_parser("schema", help="print the policy file's JSON Schema")


def _add_schema_flags(schema: _Parser) -> None:
    schema.add_argument(
        "format",
        choices=sorted(_SCHEMAS),
        help="event: an identity event; policy: a policy file",
    )


def _add_sample_flags(sample: _Parser) -> None:
    sample.add_argument(
        "--records", type=int, required=True, metavar="N", help="how many records to write"
    )
    sample.add_argument(
        "--seed", type=int, default=2019, metavar="S", help="random seed (default: 2019)"
    )
    sample.add_argument(
        "--out", type=Path, metavar="FILE", help="write to FILE instead of standard output"
    )


def _no_flags(_: _Parser) -> None:
    pass


def _add_replay_flags(replay: _Parser) -> None:
    from enforcer.sources.kafka_topic import parse_end, parse_start

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
    ledger = replay.add_mutually_exclusive_group()
    ledger.add_argument("--ledger-file", type=Path, metavar="FILE", help=_LEDGER_FILE_HELP)
    ledger.add_argument(
        "--ledger-topic",
        metavar="NAME",
        help="judge against a purpose ledger: a compacted topic, every partition read from "
        "its beginning to its end (same Kafka connection as --topic)",
    )
    _ledger_as_of_flag(replay)
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
    _policy_options(replay)


def _settings(**overrides: Any) -> EnforcerSettings:
    """Settings from the environment, with the flags that were given on top."""
    from pydantic import ValidationError

    from enforcer.policy.load import format_location
    from enforcer.settings import load_settings

    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return load_settings(**given)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:  # a rule across settings: its message names them
            raise UsageError(f"settings: {message}") from None
        name = format_location(tuple(error["loc"]))
        raise UsageError(f"setting {name} (ENFORCER_{name.upper()}): {message}") from None


def _policy(settings: EnforcerSettings) -> Policy:
    from enforcer.policy.load import load_policy

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
    if args.ledger_as_of is not None and args.ledger_file is None and args.ledger_topic is None:
        raise UsageError("--ledger-as-of goes with --ledger-file or --ledger-topic")
    if args.out is None and args.output_topic_prefix is None:
        raise UsageError("replay needs --out DIR, or --output-topic-prefix PREFIX")
    from enforcer.replay_cli import TopicOutput, replay_file, replay_topic

    settings = _settings(
        policy_file=args.policy,
        destination=args.destination,
        mode=args.mode,
        fingerprint_key_file=args.fingerprint_key_file,
        bootstrap_servers=args.bootstrap_servers,
        phone_default_region=args.phone_region,
    )
    fingerprinter = settings.fingerprinter()
    policy = _policy(settings)
    # A policy that asks for a ledger when none is given: refused before reading anything.
    policy.ledger_mode(args.ledger_file is not None or args.ledger_topic is not None)
    ledger = _replay_ledger(args, settings, fingerprinter)
    progress = not args.no_progress
    to_topics = None
    if args.output_topic_prefix is not None:
        from enforcer.kafka_security import aiokafka_security
        from enforcer.sinks.kafka import OutputTopics

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
        from enforcer.kafka_security import aiokafka_security
        from enforcer.sources.kafka_topic import parse_end, parse_start

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
        )
    else:
        report = replay_file(
            args.from_file, args.out, policy, fingerprinter, progress, to_topics, ledger
        )
    counts = report.records
    where = [f"{args.out}/"] if args.out else []
    if to_topics is not None:
        where.insert(0, f"topics {args.output_topic_prefix}*")
    print(
        f"replayed {counts.in_:,} records; they would have been: {counts.passed:,} passed, "
        f"{counts.redacted:,} redacted, {counts.dropped:,} dropped, "
        f"{counts.deadlettered:,} dead-lettered; "
        f"{report.violations:,} violations affecting {report.affected_subjects:,} accounts. "
        f"Outputs in {' and '.join(where)}",
        file=sys.stderr,
    )
    if report.ledger is not None:
        from enforcer.ledger_input import outcome_line

        print(outcome_line(report.ledger), file=sys.stderr)
    if args.fail_on_violation and report.violations:
        print(
            f"enforcer: failing (--fail-on-violation): {report.violations:,} records would have "
            f"violated policy {report.policy_version}",
            file=sys.stderr,
        )
        return EXIT_FINDINGS
    return EXIT_OK


def _replay_ledger(
    args: argparse.Namespace, settings: EnforcerSettings, fingerprinter: Fingerprinter
) -> LoadedLedger | None:
    """The ledger ``--ledger-file`` or ``--ledger-topic`` names, read whole; or ``None``."""
    from enforcer.ledger_input import load_ledger_file, load_ledger_topic

    if args.ledger_file is not None:
        ledger = load_ledger_file(args.ledger_file, fingerprinter, args.ledger_as_of)
    elif args.ledger_topic is not None:
        from enforcer.kafka_security import aiokafka_security

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


def _explain(args: argparse.Namespace) -> int:
    if args.ledger_as_of is not None and args.ledger_file is None:
        raise UsageError("--ledger-as-of goes with --ledger-file")
    import orjson

    from enforcer.clock import SystemClock
    from enforcer.explain import explanation, render_text
    from enforcer.fingerprint import Fingerprinter, generate_key
    from enforcer.step import InputRecord, Source, Step

    settings = _settings(
        policy_file=args.policy,
        destination=args.destination,
        mode=args.mode,
        phone_default_region=args.phone_region,
    )
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
    # explain shows decisions, not fingerprints, so it needs no secret key: the ledger is
    # fingerprinted with the same throw-away key as the record.
    fingerprinter = Fingerprinter(generate_key().encode(), settings.phone_default_region)
    policy = _policy(settings)
    policy.ledger_mode(args.ledger_file is not None)  # refuses a policy wanting a ledger
    ledger = None
    if args.ledger_file is not None:
        from enforcer.ledger.lookup import WholeLedger
        from enforcer.ledger_input import load_ledger_file

        ledger = load_ledger_file(args.ledger_file, fingerprinter, args.ledger_as_of)
    lookup = WholeLedger(ledger.replay.state) if ledger is not None else None
    step = Step(policy, fingerprinter, SystemClock(), lookup)
    outcome, decision = step.explain(InputRecord(None, data.strip(), (), Source(name, 0, offset)))
    result = explanation(step, outcome, decision, ledger)
    _add_phone_formats(result, data, settings.phone_default_region)
    print(
        orjson.dumps(result, option=orjson.OPT_INDENT_2).decode()
        if args.json
        else render_text(result)
    )
    return EXIT_OK


def _add_phone_formats(result: dict[str, Any], data: bytes, region: str) -> None:
    """Say of each phone number whether it fingerprints as E.164 (never its value)."""
    import orjson

    from enforcer.fingerprint import phone_e164

    if "identifiers" not in result:
        return
    written = orjson.loads(data)["identifiers"]  # judged, so a valid event
    for item in result["identifiers"]:
        if item["type"] == "phone":
            valid = phone_e164(written[item["index"]]["value"], region) is not None
            item["phone_format"] = "e164" if valid else "not a valid number: separators removed"


def _policy_command(args: argparse.Namespace) -> int:
    from enforcer.policy.load import load_policy

    if args.policy_command == "check":
        policy = load_policy(args.file, destination=args.destination)
        rules = ", ".join(rule.name for rule in policy.rules)
        print(f"{args.file}: ok ({policy.version}; mode {policy.mode.value}; rules: {rules})")
        for warning in policy.taxonomy_warnings():
            print(f"{args.file}: warning: {warning}", file=sys.stderr)
        return EXIT_OK
    if args.policy_command == "schema":
        return _print_schema("policy")
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


def _print_schema(name: str) -> int:
    from importlib import resources

    package, file = _SCHEMAS[name]
    sys.stdout.write(resources.files(package).joinpath(file).read_text(encoding="utf-8"))
    return EXIT_OK


# The shipped schema files; tests check each equals its model's schema.
_SCHEMAS = {
    "event": ("enforcer", "event.schema.json"),
    "policy": ("enforcer.policy", "policy.schema.json"),
}


def _schema(args: argparse.Namespace) -> int:
    return _print_schema(args.format)


def _sample(args: argparse.Namespace) -> int:
    from enforcer.sample import sample_values

    if args.records < 0:
        raise UsageError("--records must be 0 or more")
    values = sample_values(args.records, seed=args.seed)
    if args.out is None:
        try:
            sys.stdout.buffer.writelines(value + b"\n" for value in values)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader stopped (`| head`): not an error; stop writing to the closed pipe.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    try:
        with args.out.open("wb") as out:
            out.writelines(value + b"\n" for value in values)
    except OSError as exc:
        raise UsageError(f"{args.out}: {exc.strerror}") from None
    return EXIT_OK


def _keygen(_: argparse.Namespace) -> int:
    from enforcer.fingerprint import generate_key

    print(generate_key())
    return EXIT_OK


# Errors a user can cause (exit 2), by module and class. Each is looked up only in a
# module already imported: an exception of a class exists only once its module is
# loaded, and importing them all up front would load the Kafka stack for every command.
_USAGE_ERRORS = (
    ("enforcer.policy.load", "PolicyLoadError"),
    ("enforcer.policy.compiled", "PolicyConfigError"),
    ("enforcer.fingerprint", "FingerprintKeyError"),
    ("enforcer.settings", "UnknownVariableError"),
    ("enforcer.replay_cli", "ReplayInputError"),
    ("enforcer.kafka_admin", "TopicSetupError"),
    ("enforcer.cli_run", "HttpPortError"),
    ("enforcer.cli_run", "DataDirError"),
    ("enforcer.kafka_security", "KafkaSecurityError"),
    ("enforcer.ledger_input", "LedgerInputError"),
    ("enforcer.policy.compiled", "PolicyConfigError"),
)


def _is_usage_error(exc: Exception) -> bool:
    if isinstance(exc, UsageError):
        return True
    for module, name in _USAGE_ERRORS:
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(exc, getattr(loaded, name)):
            return True
    return False


# name, help, what adds its flags: in the order `enforcer --help` lists them.
_COMMANDS: tuple[tuple[str, str, Callable[[_Parser], None]], ...] = (
    ("run", "run the live enforcer on Kafka", _add_run_flags),
    ("lag-exporter", "serve the group's lag, read from the broker, for Prometheus", _add_lag_flags),
    ("replay", "run the decision over history", _add_replay_flags),
    ("explain", "show the decision for one record", _add_explain_flags),
    ("policy", "check, test or describe policies", _add_policy_flags),
    ("schema", "print the JSON Schema of an input format", _add_schema_flags),
    ("sample", "write sample identity events (JSON Lines) like the 2019 case", _add_sample_flags),
    ("keygen", "print a new random fingerprint key", _no_flags),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``enforcer`` console script."""
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["run"]:
        # First of all: a SIGTERM from here on ends the worker cleanly, start-up included.
        from enforcer.live.signals import install_stop_signal

        install_stop_signal()
    try:
        args = _build_parser().parse_args(argv)
        handlers: dict[str, Callable[[argparse.Namespace], int]] = {
            "replay": _replay,
            "explain": _explain,
            "policy": _policy_command,
            "schema": _schema,
            "sample": _sample,
            "keygen": _keygen,
        }
        if args.command == "run":
            from enforcer.cli_run import run_command

            return run_command(args, _settings, _policy)
        if args.command == "lag-exporter":
            from enforcer.cli_lag import lag_command

            return lag_command(args, _settings)
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("enforcer: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if _is_usage_error(exc):
            print(f"enforcer: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
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
