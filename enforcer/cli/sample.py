"""``enforcer sample``: sample identity events shaped like the 2019 case (JSON Lines)."""

from __future__ import annotations

import argparse
import os
import sys
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


def command(args: argparse.Namespace) -> int:
    """Write ``--records`` events to ``--out`` or standard output."""
    from enforcer.demo.sample import sample_values

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
