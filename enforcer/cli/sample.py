"""``enforcer sample``: sample identity events shaped like the 2019 case: JSON Lines, or
account events in a topic's own shape framed for a schema registry (Avro, Protobuf,
JSON Schema; one base64 value per line, docs/formats.md)."""

from __future__ import annotations

import argparse
import base64
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from enforcer.cli.common import EXIT_OK, Parser, UsageError


def add_flags(sample: Parser) -> None:
    """The flags of ``sample``."""
    sample.add_argument(
        "--records", type=int, required=True, metavar="N", help="how many records to write"
    )
    sample.add_argument(
        "--seed", type=int, default=2019, metavar="S", help="random seed (default: 2019)"
    )
    sample.add_argument(
        "--out", type=Path, metavar="FILE", help="write to FILE instead of standard output"
    )
    sample.add_argument(
        "--format",
        choices=("json", "avro", "protobuf", "json-schema"),
        default="json",
        help=(
            "json: identity events, one per line (default); avro, protobuf, json-schema: "
            "account events framed with a schema registered at --schema-registry-url, "
            "one base64 value per line"
        ),
    )
    sample.add_argument(
        "--schema-registry-url",
        metavar="URL",
        help="the registry the framed formats' schema is registered in",
    )
    sample.add_argument(
        "--subject",
        default="identity.events-value",
        metavar="NAME",
        help="the subject the schema is registered under (default: identity.events-value)",
    )


def command(args: argparse.Namespace) -> int:
    """Write ``--records`` events to ``--out`` or standard output."""
    if args.records < 0:
        raise UsageError("--records must be 0 or more")
    values = _framed_lines(args) if args.format != "json" else _json_lines(args)
    if args.out is None:
        try:
            sys.stdout.buffer.writelines(values)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader stopped (`| head`): not an error; stop writing to the closed pipe.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    try:
        with args.out.open("wb") as out:
            out.writelines(values)
    except OSError as exc:
        raise UsageError(f"{args.out}: {exc.strerror}") from None
    return EXIT_OK


def _json_lines(args: argparse.Namespace) -> Iterator[bytes]:
    from enforcer.demo.sample import sample_values

    return (value + b"\n" for value in sample_values(args.records, seed=args.seed))


def _framed_lines(args: argparse.Namespace) -> Iterator[bytes]:
    """Registers the schema first (a registry that cannot be reached is a usage error
    here: nothing is written), then yields base64 lines."""
    from enforcer.demo.formats_sample import FramedSample, sample_contacts
    from enforcer.formats.registry import (
        RegistrySettings,
        RegistryUnavailableError,
        SchemaRegistry,
    )

    if not args.schema_registry_url:
        raise UsageError(f"--format {args.format} needs --schema-registry-url")
    try:
        registry = SchemaRegistry(RegistrySettings(args.schema_registry_url))
        sample = FramedSample(args.format, registry, args.subject)
    except (ValueError, RegistryUnavailableError) as exc:
        raise UsageError(str(exc)) from None
    contacts = sample_contacts(args.records, seed=args.seed)
    return (base64.b64encode(sample.encode(contact)) + b"\n" for contact in contacts)
