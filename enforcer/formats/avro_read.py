"""An Avro body read by Python generated for its schema, for the common bytes only
(docs/formats.md, "Avro").

fastavro's reader is Cython, but it reads a body one ``BytesIO.read`` at a time and
looks each type up in the schema's dicts for every value, which costs more than the
decoding itself. A record's reader made once per schema (one straight line of Python
over its fields, the bytes indexed directly) gives the same dict for a third of the
time on the sample events (docs/benchmarks.md, "Formats").

It reads what fastavro writes and what other writers commonly write: one-byte union and
enum indexes, blocks of any count. Anything else (a union or enum index that is
negative or longer than a byte, a varint wider than 64 bits, a body cut short, bytes
that are not UTF-8) raises, and the caller reads the body with fastavro, which gives
the answer or the error it always gave. Logical types are made by fastavro's own
functions (``LOGICAL_READERS``), so a timestamp is the same ``datetime``.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Mapping
from typing import Any

from fastavro import _read as fastavro_read

from enforcer.formats.avro_patch import read_long

Reader = Callable[[bytes, int, int], tuple[Any, int]]
"""A record's reader: ``(body, start, len(body))`` to ``(record, position after it)``."""

_LOGICAL: Mapping[str, Callable[..., Any]] = fastavro_read.LOGICAL_READERS  # type: ignore[attr-defined]
_PRIMITIVES = frozenset(("null", "boolean", "int", "long", "float", "double", "bytes", "string"))


_LONG = """\
x = b[p]
if x < 0x80:
    {out} = (x >> 1) ^ -(x & 1)
    p += 1
else:
    n = x & 0x7F
    s = 7
    p += 1
    while True:
        x = b[p]
        p += 1
        n |= (x & 0x7F) << s
        if x < 0x80:
            break
        s += 7
    if s > 63 or n >> 64:
        raise NotCommon
    {out} = (n >> 1) ^ -(n & 1)
"""
"""An int or a long: one byte inline, and a longer varint (a timestamp's six bytes)
inline too, with read_long's 64-bit bounds, without its call."""


class NotCommon(Exception):  # noqa: N818 - a signal to read with fastavro, not an error
    """Bytes the generated reader leaves to fastavro."""


def _text(body: bytes, pos: int, end: int) -> tuple[str, int]:
    size, pos = read_long(body, pos)
    stop = pos + size
    if size < 0 or stop > end:
        raise NotCommon
    return body[pos:stop].decode(), stop


def _raw(body: bytes, pos: int, end: int) -> tuple[bytes, int]:
    size, pos = read_long(body, pos)
    stop = pos + size
    if size < 0 or stop > end:
        raise NotCommon
    return body[pos:stop], stop


class _Generator:
    """The readers of a schema's records, generated on first use of each record."""

    def __init__(self, named: Mapping[str, Any]) -> None:
        self._named = named
        self._env: dict[str, Any] = {
            "_long": read_long,
            "_text": _text,
            "_raw": _raw,
            "_float": struct.Struct("<f").unpack_from,
            "_double": struct.Struct("<d").unpack_from,
            "NotCommon": NotCommon,
        }
        self._records: dict[str, str] = {}
        self._names = itertools.count()
        self._sources: list[str] = []

    def reader(self, root: Any) -> Reader:
        name = self._record(root)
        # The schema's text enters the source only as field names written with repr()
        # (string literals); symbols, sizes' ints and functions are bound objects.
        exec("\n\n".join(self._sources), self._env)  # noqa: S102 - our own text
        reader: Reader = self._env[name]
        return reader

    def _bind(self, value: object) -> str:
        name = f"_k{next(self._names)}"
        self._env[name] = value
        return name

    def _definition(self, avro_type: Any) -> Any:
        if isinstance(avro_type, str) and avro_type not in _PRIMITIVES:
            return self._named[avro_type]
        return avro_type

    def _record(self, avro_type: Any) -> str:
        """The name of the generated reader of a record type (made once per name)."""
        definition = self._definition(avro_type)
        known = self._records.get(definition["name"])
        if known is not None:
            return known
        name = self._records[definition["name"]] = f"_record{next(self._names)}"
        lines = [f"def {name}(b, p, end):"]
        keys = []
        for field in definition["fields"]:
            variable = f"v{next(self._names)}"
            self._value(field["type"], variable, lines, 1)
            keys.append(f"{field['name']!r}: {variable}")
        lines.append(f"    return {{{', '.join(keys)}}}, p")
        self._sources.append("\n".join(lines))
        return name

    def _value(self, avro_type: Any, out: str, lines: list[str], depth: int) -> None:
        """Lines that read a value of ``avro_type`` at ``p`` into ``out``."""
        pad = "    " * depth
        if isinstance(avro_type, list):
            self._union(avro_type, out, lines, depth)
            return
        definition = self._definition(avro_type)
        kind = definition if isinstance(definition, str) else definition["type"]
        if kind in ("record", "error"):
            lines.append(f"{pad}{out}, p = {self._record(definition)}(b, p, end)")
        elif kind in ("array", "map"):
            self._blocks(definition, kind == "map", out, lines, depth)
        elif kind == "enum":
            count = len(definition["symbols"])
            symbols = self._bind(tuple(definition["symbols"]))
            lines += [f"{pad}x = b[p] >> 1", f"{pad}if b[p] & 0x81 or x >= {count}:"]
            lines += [f"{pad}    raise NotCommon", f"{pad}{out} = {symbols}[x]", f"{pad}p += 1"]
        elif kind == "fixed":
            size = int(definition["size"])
            lines += [f"{pad}q = p + {size}", f"{pad}if q > end:", f"{pad}    raise NotCommon"]
            lines += [f"{pad}{out} = b[p:q]", f"{pad}p = q"]
        else:
            self._primitive(kind, out, lines, depth)
        logical = definition.get("logicalType") if isinstance(definition, dict) else None
        if logical:
            function = _LOGICAL.get(f"{kind}-{logical}")
            if function is not None:
                made = self._bind(function)
                lines.append(f"{pad}{out} = {made}({out}, {self._bind(definition)}, None)")

    def _primitive(self, kind: str, out: str, lines: list[str], depth: int) -> None:
        pad = "    " * depth
        if kind == "null":
            lines.append(f"{pad}{out} = None")
        elif kind == "boolean":
            lines += [f"{pad}{out} = b[p] != 0", f"{pad}p += 1"]
        elif kind in ("int", "long"):
            lines += [pad + line for line in _LONG.format(out=out).splitlines()]
        elif kind in ("float", "double"):
            width = 4 if kind == "float" else 8
            lines += [f"{pad}{out} = _{kind}(b, p)[0]", f"{pad}p += {width}"]
        elif kind in ("string", "bytes"):
            decoded = ".decode()" if kind == "string" else ""
            lines += [f"{pad}x = b[p]", f"{pad}q = p + 1 + (x >> 1)"]
            lines += [f"{pad}if x < 0x80 and not x & 1 and q <= end:"]
            lines += [f"{pad}    {out} = b[p + 1:q]{decoded}", f"{pad}    p = q", f"{pad}else:"]
            lines.append(f"{pad}    {out}, p = _{'text' if decoded else 'raw'}(b, p, end)")
        else:
            raise ValueError(f"unknown Avro type {kind}")

    def _union(self, branches: list[Any], out: str, lines: list[str], depth: int) -> None:
        pad = "    " * depth
        lines.append(f"{pad}x = b[p]")
        for index, branch in enumerate(branches):
            lines += [f"{pad}{'el' if index else ''}if x == {2 * index}:", f"{pad}    p += 1"]
            self._value(branch, out, lines, depth + 1)
        lines += [f"{pad}else:", f"{pad}    raise NotCommon"]

    def _blocks(self, definition: Any, keyed: bool, out: str, lines: list[str], depth: int) -> None:
        pad = "    " * depth
        item = f"v{next(self._names)}"
        count = f"c{next(self._names)}"
        lines += [f"{pad}{out} = {{}}" if keyed else f"{pad}{out} = []", f"{pad}while True:"]
        lines += [f"{pad}    x = b[p]", f"{pad}    if x < 0x80 and not x & 1:"]
        lines += [f"{pad}        {count} = x >> 1", f"{pad}        p += 1", f"{pad}    else:"]
        lines += [f"{pad}        {count}, p = _long(b, p)", f"{pad}        if {count} < 0:"]
        lines += [f"{pad}            {count} = -{count}", f"{pad}            _, p = _long(b, p)"]
        lines += [f"{pad}    if not {count}:", f"{pad}        break"]
        lines.append(f"{pad}    for _ in range({count}):")
        if keyed:
            key = f"k{next(self._names)}"
            self._primitive("string", key, lines, depth + 2)
            self._value(definition["values"], item, lines, depth + 2)
            lines.append(f"{pad}        {out}[{key}] = {item}")
        else:
            self._value(definition["items"], item, lines, depth + 2)
            lines.append(f"{pad}        {out}.append({item})")


def record_reader(parsed: Any, named: Mapping[str, Any]) -> Reader:
    """The generated reader of a schema whose root is a record; raises (ValueError,
    KeyError) for a schema it cannot generate, which is then read by fastavro alone."""
    return _Generator(named).reader(parsed)
