"""The Confluent wire format: byte 0 is the magic ``0``, bytes 1 to 4 the schema id
(big-endian), then the body (docs/formats.md). JSON text never starts with a zero byte,
so plain JSON and framed values can share a topic and are told apart by their first
byte."""

from __future__ import annotations

import struct
from collections.abc import Iterable

MAGIC = 0
HEADER = struct.Struct(">bI")
"""The frame's header: the magic byte and the schema id."""


def schema_id_of(value: bytes | None) -> int | None:
    """The schema id of a framed value, or ``None`` when the value is not framed (a
    value that starts with the magic byte but is too short to hold an id is framed, and
    its id is ``-1``: no registry has it)."""
    if not value or value[0] != MAGIC:
        return None
    if len(value) < HEADER.size:
        return -1
    return int.from_bytes(value[1:5], "big")


def frame(schema_id: int, body: bytes) -> bytes:
    """``body`` framed with ``schema_id``."""
    return HEADER.pack(MAGIC, schema_id) + body


def schema_ids(values: Iterable[bytes | None]) -> set[int]:
    """The schema ids the framed ``values`` name."""
    return {
        int.from_bytes(value[1:5], "big")
        for value in values
        if value and value[0] == MAGIC and len(value) >= HEADER.size
    }
