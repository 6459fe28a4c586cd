"""Records from a JSON Lines file (SPEC §10): each non-blank line is one value.

Read as bytes, never decoded here: invalid UTF-8 becomes a dead letter in the step.
The 0-based line number is the offset, the file name the topic, partition 0.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from enforcer.step import InputRecord, Source


def read_jsonl(stream: BinaryIO, name: str) -> Iterator[InputRecord]:
    """Yield one record per non-blank line of ``stream``."""
    for number, line in enumerate(stream):
        value = line.rstrip(b"\r\n")
        if not value or value.isspace():
            continue
        yield InputRecord(None, value, (), Source(name, 0, number))


def jsonl_source_name(path: Path) -> str:
    """The topic name a file's records carry: the file's name."""
    return path.name
