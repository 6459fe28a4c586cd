"""``enforcer policy check | test | schema``: validate, test or describe policies."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from enforcer.cli.common import (
    EXIT_FINDINGS,
    EXIT_OK,
    Parser,
    UsageError,
    schema_registry_from,
    schema_registry_options,
    schema_registry_settings,
    settings_from,
)

if TYPE_CHECKING:
    from enforcer.config.settings import EnforcerSettings
    from enforcer.core.policy.compiled import Policy


def add_flags(policy: Parser) -> None:
    """The subcommands of ``policy`` and their flags."""
    from enforcer.core.policy.compiled import DEFAULT_DESTINATION

    policy_commands = policy.add_subparsers(
        dest="policy_command", required=True, parser_class=Parser
    )
    check = policy_commands.add_parser("check", help="validate a policy file")
    check.add_argument("file", type=Path, help="the policy file (YAML)")
    check.add_argument(
        "--destination",
        help=(
            "the destination whose allow-list to check "
            f"(ENFORCER_DESTINATION, default: {DEFAULT_DESTINATION})"
        ),
    )
    check.add_argument(
        "--source-topic",
        metavar="NAME",
        help="with a schema registry: the topic the worker reads, whose latest registered "
        "schema the field mappings are checked against, beside every topic a mapping "
        "names (ENFORCER_SOURCE_TOPIC, default: identity.events)",
    )
    schema_registry_options(check, waits=False)
    test = policy_commands.add_parser("test", help="run policy test files")
    test.add_argument("files", type=Path, nargs="+", help="test files (*.test.yaml)")
    policy_commands.add_parser("schema", help="print the policy file's JSON Schema")


def command(args: argparse.Namespace) -> int:
    """Run the chosen subcommand."""
    from enforcer.core.policy.load import load_policy

    if args.policy_command == "check":
        # The destination the worker would check it for: the flag, else the environment.
        settings = settings_from(
            destination=args.destination,
            source_topic=args.source_topic,
            **schema_registry_settings(args),
        )
        policy = load_policy(args.file, destination=settings.destination)
        # Before anything is said of the file: a mapping the registered schema refuses
        # makes it a policy the worker would not start with.
        checked = _checked_against_registry(args.file, policy, settings)
        rules = ", ".join(rule.name for rule in policy.rules)
        print(f"{args.file}: ok ({policy.version}; mode {policy.mode.value}; rules: {rules})")
        if policy.formats is not None:
            from enforcer.formats.mapping import FieldMapping

            for mapping in policy.formats.mappings:
                print(f"{args.file}: {FieldMapping.of(mapping).describe()}")
        for warning in policy.warnings():
            print(f"{args.file}: warning: {warning}", file=sys.stderr)
        if policy.security_override is not None:
            print(
                f"{args.file}: warning: security override: identifiers given only to secure "
                f"an account may reach {policy.destination} ({policy.security_override}); "
                "the worker is flagged in metrics, /readyz and every violation",
                file=sys.stderr,
            )
        for line, warns in checked:
            print(line, file=sys.stderr if warns else sys.stdout)
        return EXIT_OK
    if args.policy_command == "schema":
        from enforcer.cli.schema import print_schema

        return print_schema("policy")
    from enforcer.replay.cases import run_test_file

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


def _checked_against_registry(
    path: Path, policy: Policy, settings: EnforcerSettings
) -> list[tuple[str, bool]]:
    """With a schema registry configured and field mappings in the policy: the check the
    worker makes at start, against the latest schema registered for its source topic and
    for every topic a mapping names; what was checked, one line a topic (and whether the
    line is a warning). A mapping that does not fit is one line per problem and exit 2,
    as ``run`` refuses it; so is a registry that does not answer (what was asked cannot
    be checked)."""
    registry = schema_registry_from(settings)
    if registry is None or policy.formats is None:
        return []
    from enforcer.formats.mapping import FieldMapping
    from enforcer.formats.registry import RegistryUnavailableError
    from enforcer.live.schemas import check_latest_schema, schema_loader

    topics = {settings.source_topic}
    for mapping in policy.formats.mappings:
        topics.update(FieldMapping.of(mapping).topics or ())
    schemas = schema_loader(registry)
    lines: list[tuple[str, bool]] = []
    problems: list[str] = []
    for topic in sorted(topics):
        try:
            checked = check_latest_schema(policy, schemas, topic)
        except RegistryUnavailableError as exc:
            raise UsageError(f"{path}: field mappings not checked: {exc}") from None
        if checked is None:
            continue
        where = f"{path}: topic {topic}:"
        if checked.unreadable is not None:
            lines.append(
                (
                    f"{where} warning: the latest schema of {checked.subject} cannot be "
                    f"read, so the mappings were not checked against it: {checked.unreadable}",
                    True,
                )
            )
        elif checked.schema_id is None:
            lines.append(
                (
                    f"{where} no schema registered as {checked.subject}; the worker checks "
                    "each schema as its first record arrives",
                    False,
                )
            )
        elif not checked.problems:
            lines.append(
                (
                    f"{where} the field mappings fit the latest schema of {checked.subject} "
                    f"(schema id {checked.schema_id})",
                    False,
                )
            )
        # Each line as `run` says it, and which topic's schema it is about.
        problems.extend(
            f"{line[:-1]}, topic {topic})" if line.endswith(")") else f"{line} (topic {topic})"
            for line in checked.problems
        )
    if problems:
        raise UsageError("\n".join(dict.fromkeys(problems)))
    return lines
