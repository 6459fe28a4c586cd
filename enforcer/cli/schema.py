"""``enforcer schema``: the JSON Schema of an input format (an event, a policy file)."""

from __future__ import annotations

import argparse
import sys

from enforcer.cli.common import EXIT_OK, Parser

# The shipped schema files, as (package, file); tests check each equals its model's schema.
SCHEMAS = {
    "event": ("enforcer.core", "event.schema.json"),
    "policy": ("enforcer.core.policy", "policy.schema.json"),
}


def add_flags(schema: Parser) -> None:
    """The one argument of ``schema``: which format."""
    schema.add_argument(
        "format",
        choices=sorted(SCHEMAS),
        help="event: an identity event; policy: a policy file",
    )


def print_schema(name: str) -> int:
    """Write the schema ``name`` to standard output."""
    from importlib import resources

    package, file = SCHEMAS[name]
    sys.stdout.write(resources.files(package).joinpath(file).read_text(encoding="utf-8"))
    return EXIT_OK


def command(args: argparse.Namespace) -> int:
    """Print the schema of ``args.format``."""
    return print_schema(args.format)
