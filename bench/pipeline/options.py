"""The command-line options every pipeline module takes (no Kafka client imported, so
a pipeline in another venv can use them)."""

from __future__ import annotations

import argparse


def passthrough_parser(description: str) -> argparse.ArgumentParser:
    """The options every pass-through pipeline takes (some add their own)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--sink", required=True)
    parser.add_argument("--group", required=True)
    parser.add_argument(
        "--guarantee", choices=["at_least_once", "exactly_once"], default="exactly_once"
    )
    parser.add_argument("--commit-interval", type=float, default=1.0)
    parser.add_argument("--batch-max", type=int, default=500)
    parser.add_argument("--batch-within", type=float, default=0.1)
    return parser
