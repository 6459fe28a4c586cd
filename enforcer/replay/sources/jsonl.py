"""Records from a JSON Lines file (docs/contract.md: command line): each non-blank line is one
value.

Read as bytes, never decoded here: invalid UTF-8 becomes a dead letter in the step.
The 0-based line number is the offset, the file name the topic, partition 0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path

from enforcer.core.step import InputRecord, Source


def read_jsonl(stream: Iterable[bytes], name: str) -> Iterator[InputRecord]:
    """Yield one record per non-blank line of ``stream`` (a binary file, or its lines)."""
    for number, line in enumerate(stream):
        value = line.rstrip(b"\r\n")
        if not value or value.isspace():
            continue
        yield InputRecord(None, value, (), Source(name, 0, number))


def jsonl_source_name(path: Path) -> str:
    """The topic name a file's records carry: the file's name."""
    return path.name


class HashedLines:
    """The lines of a binary stream, hashed (SHA-256) as they are read.

    Once iterated to the end, :meth:`hexdigest` is the SHA-256 of exactly the bytes
    read, in one pass: the hash names what was replayed even if the file changes later.
    """

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream
        self._sha256 = hashlib.sha256()

    def __iter__(self) -> Iterator[bytes]:
        for line in self._stream:
            self._sha256.update(line)
            yield line

    def hexdigest(self) -> str:
        """The hex SHA-256 of the bytes read so far."""
        return self._sha256.hexdigest()
