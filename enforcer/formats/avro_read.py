"""An Avro body read by a compiled walk of its schema, for the common bytes only
(docs/formats.md, "Avro").

fastavro's reader is Cython, but it reads a body one ``BytesIO.read`` at a time and
looks each type up in the schema's dicts for every value, which costs more than the
decoding itself. This reader turns the schema into a tree of nodes once (a kind number,
the fields' names and nodes), and a compiled loop (mypyc) walks the tree over the bytes,
indexing them directly: the same dict as fastavro's for a fraction of the time on the
sample events (docs/benchmarks.md, "Formats").

It reads what fastavro writes and what other writers commonly write: one-byte union and
enum indexes, blocks of any count. Anything else (a union or enum index that is
negative or longer than a byte, a varint wider than 64 bits, a body cut short, bytes
that are not UTF-8, values nested deeper than :data:`MAX_NESTING`) raises, and the
caller reads the body with fastavro, which gives the answer or the error it always
gave. Logical types are made by fastavro's own functions (``LOGICAL_READERS``), so a
timestamp is the same ``datetime``.

Nesting is bounded here because compiled code does not check the depth of its own
recursion as Python does: a recursive schema and a body nested without end would
otherwise overflow the stack instead of raising.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping
from typing import Any, Final

from fastavro import _read as fastavro_read

MAX_NESTING: Final = 64
"""Records, unions, lists and maps inside one another that this reader walks: deeper
values are left to fastavro."""

_LOGICAL: Mapping[str, Callable[..., Any]] = fastavro_read.LOGICAL_READERS  # type: ignore[attr-defined]
_PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))
_FLOAT = struct.Struct("<f").unpack_from
_DOUBLE = struct.Struct("<d").unpack_from

_NULL: Final = 0
_BOOLEAN: Final = 1
_LONG: Final = 2
_FLOAT_KIND: Final = 3
_DOUBLE_KIND: Final = 4
_BYTES: Final = 5
_STRING: Final = 6
_RECORD: Final = 7
_ENUM: Final = 8
_FIXED: Final = 9
_UNION: Final = 10
_ARRAY: Final = 11
_MAP: Final = 12
_KINDS = {
    "null": _NULL,
    "boolean": _BOOLEAN,
    "int": _LONG,
    "long": _LONG,
    "float": _FLOAT_KIND,
    "double": _DOUBLE_KIND,
    "bytes": _BYTES,
    "string": _STRING,
}


class NotCommon(Exception):  # noqa: N818 - a signal to read with fastavro, not an error
    """Bytes this reader leaves to fastavro."""


class _Node:
    """One type of the schema: its kind, and what reading a value of it needs."""

    def __init__(self, kind: int) -> None:
        self.kind = kind
        self.names: list[str] = []
        """A record's field names, in order."""
        self.children: list[_Node] = []
        """A record's fields, a union's branches, or a list's items or a map's values."""
        self.symbols: tuple[str, ...] = ()
        """An enum's symbols."""
        self.size = 0
        """A fixed's size."""
        self.logical: Callable[..., Any] | None = None
        """fastavro's function that makes the value of a logical type."""
        self.definition: Any = None
        """The type's definition, which ``logical`` is given."""


class _Builder:
    """The nodes of a schema's types, a record once per name (a recursive record is a
    node that is its own descendant)."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self._named = named
        self._records: dict[str, _Node] = {}

    def _definition(self, avro_type: Any) -> Any:
        if isinstance(avro_type, str) and avro_type not in _PRIMITIVES:
            return self._named[avro_type]
        return avro_type

    def record(self, avro_type: Any) -> _Node:
        definition = self._definition(avro_type)
        known = self._records.get(definition["name"])
        if known is not None:
            return known
        node = self._records[definition["name"]] = _Node(_RECORD)
        for field in definition["fields"]:
            node.names.append(str(field["name"]))
            node.children.append(self.value(field["type"]))
        return node

    def value(self, avro_type: Any) -> _Node:
        if isinstance(avro_type, list):
            union = _Node(_UNION)
            union.children = [self.value(branch) for branch in avro_type]
            return union
        definition = self._definition(avro_type)
        kind = definition if isinstance(definition, str) else definition["type"]
        if kind in ("record", "error"):
            node = self.record(definition)
        elif kind in ("array", "map"):
            node = _Node(_MAP if kind == "map" else _ARRAY)
            node.children = [self.value(definition["values" if kind == "map" else "items"])]
        elif kind == "enum":
            node = _Node(_ENUM)
            node.symbols = tuple(definition["symbols"])
        elif kind == "fixed":
            node = _Node(_FIXED)
            node.size = int(definition["size"])
        elif kind in _KINDS:
            node = _Node(_KINDS[kind])
        else:
            raise ValueError(f"unknown Avro type {kind}")
        logical = definition.get("logicalType") if isinstance(definition, dict) else None
        if logical:
            function = _LOGICAL.get(f"{kind}-{logical}")
            if function is not None:
                # A node of its own: a named record's node is shared by every use.
                made = _Node(node.kind)
                made.names, made.children = node.names, node.children
                made.symbols, made.size = node.symbols, node.size
                made.logical, made.definition = function, definition
                return made
        return node


class RecordReader:
    """The reader of one schema whose root is a record."""

    def __init__(self, root: _Node) -> None:
        self._root = root

    def __call__(self, body: bytes, start: int, end: int) -> tuple[Any, int]:
        """The record at ``start`` and the position after it."""
        return _record(self._root, body, start, end, 0)

    def noting_starts(self, body: bytes, start: int, end: int) -> tuple[Any, int, list[int]]:
        """The record at ``start``, the position after it, and where each of its fields
        starts followed by that position (what a patch of its fields needs)."""
        node = self._root
        names = node.names
        children = node.children
        record: dict[str, Any] = {}
        starts = [start]
        pos = start
        for index in range(len(names)):
            value, pos = _value(children[index], body, pos, end, 0)
            record[names[index]] = value
            starts.append(pos)
        return record, pos, starts


def _record(node: _Node, body: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    if depth > MAX_NESTING:
        raise NotCommon
    record: dict[str, Any] = {}
    names = node.names
    children = node.children
    for index in range(len(names)):
        value, pos = _value(children[index], body, pos, end, depth)
        record[names[index]] = value
    return record, pos


def _value(node: _Node, body: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    """The value of ``node``'s type at ``pos``, and the position after it."""
    value, pos = _plain_value(node, body, pos, end, depth)
    logical = node.logical
    if logical is not None:
        value = logical(value, node.definition, None)
    return value, pos


def _plain_value(  # noqa: PLR0911, PLR0912 - one branch a kind
    node: _Node, body: bytes, pos: int, end: int, depth: int
) -> tuple[Any, int]:
    kind = node.kind
    if kind in (_STRING, _BYTES):
        size = body[pos]
        stop = pos + 1 + (size >> 1)
        if size < 0x80 and not size & 1 and stop <= end:
            raw = body[pos + 1 : stop]
        else:
            length, pos = read_long(body, pos)
            stop = pos + length
            if length < 0 or stop > end:
                raise NotCommon
            raw = body[pos:stop]
        return (raw.decode() if kind == _STRING else raw), stop
    if kind == _LONG:
        return read_long(body, pos)
    if kind == _UNION:
        index = body[pos]
        # One byte, not negative: a byte of 0x80 or more starts a longer varint.
        if index & 0x81 or index >= 2 * len(node.children):
            raise NotCommon
        return _value(node.children[index >> 1], body, pos + 1, end, depth + 1)
    if kind == _NULL:
        return None, pos
    if kind == _RECORD:
        return _record(node, body, pos, end, depth + 1)
    if kind == _BOOLEAN:
        return body[pos] != 0, pos + 1
    if kind == _ENUM:
        index = body[pos]
        if index & 0x81 or index >> 1 >= len(node.symbols):
            raise NotCommon
        return node.symbols[index >> 1], pos + 1
    if kind == _DOUBLE_KIND:
        return _DOUBLE(body, pos)[0], pos + 8
    if kind == _FLOAT_KIND:
        return _FLOAT(body, pos)[0], pos + 4
    if kind == _FIXED:
        stop = pos + node.size
        if stop > end:
            raise NotCommon
        return body[pos:stop], stop
    return _blocks(node, body, pos, end, depth + 1)


def read_long(body: bytes, pos: int) -> tuple[int, int]:
    """A zig-zag varint as fastavro reads it (an int or a long: 64 bits at most) and the
    position after it; :class:`NotCommon` for a wider one."""
    byte = body[pos]
    if byte < 0x80:
        return (byte >> 1) ^ -(byte & 1), pos + 1
    number = byte & 0x7F
    shift = 7
    pos += 1
    while True:
        byte = body[pos]
        pos += 1
        number |= (byte & 0x7F) << shift
        if byte < 0x80:
            break
        shift += 7
        if shift > 63:
            raise NotCommon
    if number >> 64:
        raise NotCommon
    return (number >> 1) ^ -(number & 1), pos


def _blocks(node: _Node, body: bytes, pos: int, end: int, depth: int) -> tuple[Any, int]:
    """A list or a map: blocks of items, each block its count first, until a count of
    zero (a negative count is followed by the block's size in bytes)."""
    if depth > MAX_NESTING:
        raise NotCommon
    item = node.children[0]
    keyed = node.kind == _MAP
    items: list[Any] = []
    entries: dict[str, Any] = {}
    while True:
        count = body[pos]
        if count < 0x80 and not count & 1:
            count >>= 1
            pos += 1
        else:
            count, pos = read_long(body, pos)
            if count < 0:
                count = -count
                _, pos = read_long(body, pos)
        if not count:
            break
        for _ in range(count):
            if keyed:
                key, pos = _plain_value(_KEY, body, pos, end, depth)
                entries[key], pos = _value(item, body, pos, end, depth)
            else:
                found, pos = _value(item, body, pos, end, depth)
                items.append(found)
    return (entries if keyed else items), pos


_KEY = _Node(_STRING)


def record_reader(parsed: Any, named: Mapping[str, Any]) -> RecordReader:
    """The reader of a schema whose root is a record; raises (ValueError, KeyError) for
    a schema it cannot read, which is then read by fastavro alone."""
    return RecordReader(_Builder(named).record(parsed))
