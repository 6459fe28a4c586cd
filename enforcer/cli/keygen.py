"""``enforcer keygen``: a new random 256-bit fingerprint key on standard output."""

from __future__ import annotations

import argparse

from enforcer.cli.common import EXIT_OK, Parser


def add_flags(_: Parser) -> None:
    """``keygen`` takes no flags."""


def command(_: argparse.Namespace) -> int:
    """Print a new key."""
    from enforcer.core.fingerprint import generate_key

    print(generate_key())
    return EXIT_OK
