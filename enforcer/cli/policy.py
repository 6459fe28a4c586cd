"""``enforcer policy check | test | schema``: validate, test or describe policies."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from enforcer.cli.common import EXIT_FINDINGS, EXIT_OK, Parser, settings_from


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
    test = policy_commands.add_parser("test", help="run policy test files")
    test.add_argument("files", type=Path, nargs="+", help="test files (*.test.yaml)")
    policy_commands.add_parser("schema", help="print the policy file's JSON Schema")


def command(args: argparse.Namespace) -> int:
    """Run the chosen subcommand."""
    from enforcer.core.policy.load import load_policy

    if args.policy_command == "check":
        # The destination the worker would check it for: the flag, else the environment.
        destination = settings_from(destination=args.destination).destination
        policy = load_policy(args.file, destination=destination)
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
