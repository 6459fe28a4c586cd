"""Records from a JSON Lines file (docs/contract.md: command line): each non-blank line is one
value.

Read as bytes, never decoded here: invalid UTF-8 becomes a dead letter in the step.
The 0-based line number is the offset, the file name the topic, partition 0.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from enforcer.core.step import InputRecord, Source

BLOCK = 1 << 20
"""Bytes :class:`HashedRecords` reads (and hashes) at a time."""

_CR, _SPACE = ord("\r"), ord(" ")
# A record is built per line: tuple.__new__ builds the same named tuples as their
# constructors without a Python-level call each (0.15 µs a record less).
_new = tuple.__new__


def read_jsonl(stream: Iterable[bytes], name: str) -> Iterator[InputRecord]:
    """Yield one record per non-blank line of ``stream`` (a binary file, or its lines)."""
    for number, line in enumerate(stream):
        value = line.rstrip(b"\r\n")
        if not value or value.isspace():
            continue
        yield InputRecord(None, value, (), Source(name, 0, number))


class HashedRecords:
    """The records :func:`read_jsonl` gives for a binary file, read a block at a time and
    hashed (SHA-256) as they are read.

    Lines end at ``\\n`` as a binary file's lines do, so values and offsets are the same;
    once iterated to the end, :meth:`hexdigest` is the SHA-256 of the whole file. One
    read, one hash update and one split per block instead of per line.
    """

    def __init__(self, stream: BinaryIO, name: str, block: int = BLOCK) -> None:
        self._stream = stream
        self._name = name
        self._block = block
        self._sha256 = hashlib.sha256()

    def __iter__(self) -> Iterator[InputRecord]:
        read, update, name = self._stream.read, self._sha256.update, self._name
        record, source = InputRecord, Source
        number = 0
        open_line: list[bytes] = []  # the line still open at the end of the last block
        while block := read(self._block):
            update(block)
            if b"\n" not in block:  # one line longer than a block: kept in pieces, not re-copied
                open_line.append(block)
                continue
            lines = block.split(b"\n")
            if open_line:  # the line open at the last block's end ends in this one
                open_line.append(lines[0])
                lines[0] = b"".join(open_line).rstrip(b"\r")
            open_line = [lines.pop()]
            if _CR in block:  # rare: most files have no carriage return to strip
                lines = [line.rstrip(b"\r") for line in lines]
            for offset, value in enumerate(lines, number):
                # Blank lines are skipped; a byte above the space is no whitespace.
                if value and (value[0] > _SPACE or not value.isspace()):
                    yield _new(record, (None, value, (), _new(source, (name, 0, offset))))
            number += len(lines)
        value = b"".join(open_line).rstrip(b"\r")  # a last line without a newline
        if value and not value.isspace():
            yield InputRecord(None, value, (), Source(name, 0, number))

    def hexdigest(self) -> str:
        """The hex SHA-256 of the bytes read so far."""
        return self._sha256.hexdigest()


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
