"""An Avro body written again with some values emptied and every union keeping the
branch its producer wrote (docs/formats.md, "Avro").

fastavro writes a plain value in a union under the first branch that accepts it: a
``long`` 5 under ``["int", "long"]`` becomes an ``int``, a ``B`` record under two
records of the same fields becomes an ``A``, an enum or a fixed under the first of two
alike. The value reads the same in Python, but a consumer that reads the branch (a Java
specific record, a union of event kinds) reads another record than the one judged. So a
body that must be written again is read under a copy of its schema in which each union
branch is wrapped in a record of one field: a record of one field is encoded as that
field, so the copy reads the same bytes, and its reader names each union's branch,
which the writer then takes."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Sequence
from typing import Any

import fastavro
from fastavro import _read as fastavro_read

_WRAPPER = "enforcer_union_{}_branch_{}"
"""A wrapper record's simple name: it takes the namespace of the type around it, so the
names inside its branch resolve as in the schema."""
_VALUE = "v"

# schemaless_reader's own reader (not in fastavro's type stubs), and its options with
# each union's value as (its wrapper's name, {"v": value}).
_read_data: Callable[..., Any] = fastavro_read._read_data  # type: ignore[attr-defined]
_READ_OPTIONS: dict[str, Any] = {
    "return_record_name": True,
    "return_record_name_override": False,
    "handle_unicode_errors": "strict",
    "return_named_type": False,
    "return_named_type_override": False,
}


class BranchKeepingWriter:
    """Writes bodies of one schema again, the given locations emptied, each union under
    the branch it was written with."""

    def __init__(self, schema_text: str, referenced: Sequence[str]) -> None:
        self._null_branches: dict[str, str | None] = {}
        self._unions = 0
        named: dict[str, Any] = {}
        for text in referenced:
            fastavro.parse_schema(self._wrapped(json.loads(text)), named_schemas=named)
        self._parsed = fastavro.parse_schema(
            self._wrapped(json.loads(schema_text)), named_schemas=named
        )
        # What schemaless_reader makes on every call, made once (as AvroCodec does).
        self._named: dict[str, dict[str, Any]] = {"writer": {}, "reader": {}}
        fastavro.parse_schema(self._parsed, self._named["writer"])

    def emptied(self, body: bytes, locations: Sequence[Sequence[str | int]]) -> bytes:
        """``body`` with each location's value set to null (the null branch of its
        union), a list item removed. Raises :class:`LookupError` for a location that
        names no value or a field that cannot be null."""
        # Each union's value comes as (its wrapper's name, {"v": value}).
        tree = _read_data(io.BytesIO(body), self._parsed, self._named, None, _READ_OPTIONS)
        nulls: list[tuple[Any, str | int]] = []
        items: dict[int, tuple[list[Any], set[int]]] = {}
        for location in locations:
            container, last = _parent(tree, location)
            if isinstance(container, list):
                if not isinstance(last, int) or not 0 <= last < len(container):
                    raise LookupError("no such list item")
                items.setdefault(id(container), (container, set()))[1].add(last)
            else:
                if not isinstance(last, str) or last not in container:
                    raise LookupError("no such field")
                nulls.append((container, last))
        # Fields first, then list items (a list's highest index first, so the other
        # indexes still hold); a field inside a removed item goes with it.
        for container, key in nulls:
            container[key] = self._null_of(container[key])
        for listed, gone in items.values():
            for index in sorted(gone, reverse=True):
                del listed[index]
        stream = io.BytesIO()
        fastavro.schemaless_writer(stream, self._parsed, tree)
        return stream.getvalue()

    def _null_of(self, value: Any) -> Any:
        if value is None:
            return None  # a field of type "null"
        if not isinstance(value, tuple):
            raise LookupError("a field that is no union cannot be null")
        namespace, _, simple = str(value[0]).rpartition(".")
        null = self._null_branches.get(simple)
        if null is None:
            raise LookupError("a union without null cannot be null")
        return (f"{namespace}.{null}" if namespace else null, {_VALUE: None})

    def _wrapped(self, avro_type: Any) -> Any:
        """A copy of ``avro_type`` with every union branch wrapped in a record of one
        field, without logical types and defaults (a body is read and written without
        them)."""
        if isinstance(avro_type, list):
            union = self._unions
            self._unions += 1
            names = [_WRAPPER.format(union, index) for index in range(len(avro_type))]
            null = next((n for n, t in zip(names, avro_type, strict=True) if t == "null"), None)
            for name in names:
                self._null_branches[name] = null
            return [
                {
                    "type": "record",
                    "name": name,
                    "fields": [{"name": _VALUE, "type": self._wrapped(branch)}],
                }
                for name, branch in zip(names, avro_type, strict=True)
            ]
        if not isinstance(avro_type, dict):
            return avro_type
        # Without its logical type a value is read and written as its bytes hold it (a
        # uuid's text in the case it was written, a decimal's bytes as they were).
        copy = {key: value for key, value in avro_type.items() if key != "logicalType"}
        kind = copy.get("type")
        if kind in ("record", "error"):
            copy["fields"] = [
                {
                    **{key: value for key, value in field.items() if key != "default"},
                    "type": self._wrapped(field.get("type")),
                }
                for field in copy.get("fields", [])
            ]
        elif kind == "array":
            copy["items"] = self._wrapped(copy.get("items"))
        elif kind == "map":
            copy["values"] = self._wrapped(copy.get("values"))
        elif isinstance(kind, list | dict):
            copy["type"] = self._wrapped(kind)
        return copy


def _parent(tree: Any, location: Sequence[str | int]) -> tuple[Any, str | int]:
    """The dict or list that holds the value at ``location``, and its key there."""
    if not location:
        raise LookupError("an empty location names the whole record, not a field")
    node = _unwrapped(tree)
    for part in location[:-1]:
        in_dict = isinstance(node, dict) and isinstance(part, str) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if not (in_dict or in_list):
            raise LookupError("no such field")
        node = _unwrapped(node[part])
    if not isinstance(node, dict | list):
        raise LookupError("no field below a value")
    return node, location[-1]


def _unwrapped(node: Any) -> Any:
    while isinstance(node, tuple):
        node = node[1][_VALUE]
    return node
