"""Records from a file of framed values, one base64 value a line (``replay --format
confluent``, docs/formats.md: "Replay and explain"): what ``enforcer sample --format
avro|protobuf|json-schema`` writes.

Lines are counted as a JSON Lines file's (:mod:`.jsonl`): blank lines are skipped, the
0-based line number is the offset, the file name the topic, partition 0. Each other line
is standard base64 (RFC 4648 with its ``+/`` alphabet and ``=`` padding; white space
around it is ignored) and its bytes are the record's value. A line that is not base64
holds no value to decide: it becomes a dead letter (``undecodable``) with the line's own
bytes as its value, and the replay goes on.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Iterator
from typing import BinaryIO

from enforcer.core.models import DeadLetterReason
from enforcer.core.step import InputRecord, Outcome, dead_letter
from enforcer.replay.sources.jsonl import BLOCK, HashedRecords

NOT_BASE64 = "the line is not base64 (--format confluent reads one base64 value a line)"
"""The dead-letter message of a line that holds no base64 value, before the decoder's
own words (which name counts and padding, never the line's bytes)."""

_new = tuple.__new__


def decode_line(line: bytes) -> bytes | str:
    """The value a base64 line holds, or why it holds none (one line, no data)."""
    try:
        return binascii.a2b_base64(line.strip(), strict_mode=True)
    except binascii.Error as exc:
        return f"{NOT_BASE64}: {exc}"


def base64_records(lines: Iterable[InputRecord]) -> Iterator[InputRecord | Outcome]:
    """The records ``lines`` (a JSON Lines reading of the file: values are the lines)
    hold: each line's value decoded, or a dead letter for a line that is not base64."""
    for line in lines:
        value = decode_line(line.value or b"")
        if type(value) is bytes:
            yield _new(InputRecord, (None, value, (), line.source))
        else:
            yield dead_letter(line, DeadLetterReason.UNDECODABLE, str(value))


class HashedBase64Records:
    """:func:`base64_records` over a binary file read a block at a time and hashed
    (SHA-256) as it is read, like :class:`~.jsonl.HashedRecords`."""

    def __init__(self, stream: BinaryIO, name: str, block: int = BLOCK) -> None:
        self._lines = HashedRecords(stream, name, block)

    def __iter__(self) -> Iterator[InputRecord | Outcome]:
        return base64_records(self._lines)

    def hexdigest(self) -> str:
        """The hex SHA-256 of the bytes read so far."""
        return self._lines.hexdigest()
