"""Avro bodies through fastavro: a registered schema's fields and tags, a body decoded
to the dict fastavro gives, and written back with fields set to null
(docs/formats.md, "Avro").

The view a path walks is fastavro's own dict: logical types come as Python objects
(``timestamp-millis`` a ``datetime``, ``uuid`` a ``UUID``, ``decimal`` a ``Decimal``),
``bytes`` and ``fixed`` as ``bytes``. A field can be emptied when its type is a union
with ``"null"``; a list item is removed from its list.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import fastavro
from fastavro import _read as fastavro_read

from enforcer.core.record_format import Unredactable
from enforcer.formats.avro_branches import BranchKeepingWriter
from enforcer.formats.avro_patch import AvroPatcher, PatchError
from enforcer.formats.avro_read import RecordReader, record_reader
from enforcer.formats.codec import DecodeError, FieldInfo, FieldKind, Location
from enforcer.formats.emptied import emptied_copy, schema_path
from enforcer.formats.paths import is_path_name
from enforcer.formats.registry import RegisteredSchema, SchemaType
from enforcer.formats.schema_error import UnusableSchemaError

TAGS_PROPERTY = "confluent:tags"
MAX_DEPTH = 16
"""Fields nested deeper than this (a recursive record) are not listed."""
MAX_FIELDS = 200_000
"""A schema listing more field paths than this is unusable: a record held again in
several of its own fields multiplies them at every level, and listing them would hold
the worker."""

# schemaless_reader's own reader, called without the wrapper (which builds the named
# types and the options again on every call); not in fastavro's type stubs.
_read_data: Callable[..., Any] = fastavro_read._read_data  # type: ignore[attr-defined]
_READ_OPTIONS: dict[str, Any] = {
    "return_record_name": False,
    "return_record_name_override": False,
    "handle_unicode_errors": "strict",
    "return_named_type": False,
    "return_named_type_override": False,
}
"""schemaless_reader's options when none are given (fastavro 1.13)."""

_UNCHECKED = object()
_CHECKED_KEPT = 1024

_KINDS: dict[str, FieldKind] = {
    "string": "string",
    "int": "int",
    "long": "int",
    "float": "float",
    "double": "float",
    "boolean": "bool",
    "bytes": "bytes",
    "fixed": "bytes",
    "enum": "enum",
    "record": "record",
    "error": "record",
    "array": "list",
    "map": "map",
}


class AvroCodec:
    """One registered Avro schema."""

    def __init__(
        self,
        schema_id: int,
        parsed: Any,
        record_name: str | None,
        fields: Mapping[str, FieldInfo],
        type_names: Mapping[str, str],
        patcher: AvroPatcher | None = None,
        reader: RecordReader | None = None,
        texts: tuple[str, Sequence[str]] | None = None,
    ) -> None:
        self.schema_id = schema_id
        self.schema_type: SchemaType = "AVRO"
        self.record_name = record_name
        self.fields = fields
        self._parsed = parsed
        self._type_names = type_names
        self._patcher = patcher
        self._reader = reader
        # The schema's text and its references', for the writer that keeps union
        # branches, made when a body is first written again.
        self._texts = texts
        self._rewriter: BranchKeepingWriter | None = None
        # The body last read by the compiled reader, and where its fields start: the
        # step writes a redacted record right after reading it, and the patch then
        # needs no walk of its own (one body kept, nothing per record).
        self._last_read: tuple[bytes | None, list[int]] = (None, [])
        # What fastavro's schemaless_reader hands its reader on every call (the named
        # types of the parsed schema and the default options), made once: the reader
        # itself is called straight away (tests/unit/formats/test_codec_avro.py holds the
        # two equal).
        self._named_schemas: dict[str, dict[str, Any]] = {"writer": {}, "reader": {}}
        fastavro.parse_schema(parsed, self._named_schemas["writer"])
        self._options: dict[str, Any] = dict(_READ_OPTIONS)
        # The schema's answer for each location, which depends on the path alone.
        self._checked: dict[Location, object] = {}

    def decode(self, body: bytes) -> tuple[object, Any]:
        """fastavro's record, as both the native form and the view: read by the reader
        generated for the schema (``avro_read``) when it reads the bytes, else by
        fastavro, which gives what it always gave, the error included."""
        end = len(body)
        read = self._read_common(body, end) if self._reader is not None else None
        if read is not None:
            record, stop, starts = read
            if stop != end:
                raise DecodeError(f"body has {end - stop} bytes after the Avro {self._name()}")
            # Where its fields start, for a redaction of this body that follows.
            self._last_read = (body, starts)
            return record, record
        stream = io.BytesIO(body)
        try:
            record = _read_data(stream, self._parsed, self._named_schemas, None, self._options)
        except Exception as exc:  # fastavro raises what the bytes make it raise
            raise DecodeError(
                f"body does not decode as Avro {self._name()}: {type(exc).__name__}"
            ) from None
        if stream.tell() != end:
            # A decoder that stops early would forward bytes nobody judged.
            raise DecodeError(f"body has {end - stream.tell()} bytes after the Avro {self._name()}")
        return record, record

    def _read_common(self, body: bytes, end: int) -> tuple[Any, int, list[int]] | None:
        """The compiled reader's record, where it ended and where each top-level field
        starts, or None for bytes it leaves to fastavro (whatever it raised)."""
        assert self._reader is not None
        try:
            return self._reader.noting_starts(body, 0, end)
        except Exception:  # fastavro reads it again and judges it
            return None

    def encode_without(self, native: object, locations: Sequence[Location]) -> bytes | Unredactable:
        """The record with each location's field set to null (a list item removed)."""
        return self._without(native, locations, None)

    def encode_body_without(
        self, body: bytes, native: object, locations: Sequence[Location]
    ) -> bytes | Unredactable:
        """As :meth:`encode_without`, given the ``body`` ``native`` was decoded from:
        record fields are emptied by patching its bytes (``avro_patch``); list items,
        and bodies the patch does not walk, by writing the record again."""
        return self._without(native, locations, body)

    def _without(
        self, native: object, locations: Sequence[Location], body: bytes | None
    ) -> bytes | Unredactable:
        checked = self._checked
        for location in locations:
            why = checked.get(location, _UNCHECKED)
            if why is _UNCHECKED:
                why = self._why_not_emptiable(location)
                if len(checked) >= _CHECKED_KEPT:
                    checked.clear()
                checked[location] = why
            if why is not None:
                assert isinstance(why, Unredactable)
                return why
        if body is not None and self._patcher is not None:
            read, starts = self._last_read
            try:
                return self._patcher.emptied(body, locations, starts if read is body else None)
            except PatchError:
                pass  # written again below, which gives the answer it always gave
        if body is not None and self._texts is not None:
            return self._written_again(body, locations)
        try:
            record = emptied_copy(native, [(location, False) for location in locations])
        except LookupError:
            return Unredactable(f"a redacted field is not in the Avro {self._name()} record")
        stream = io.BytesIO()
        try:
            fastavro.schemaless_writer(stream, self._parsed, record)
        except Exception as exc:  # the record came from this schema; fail closed anyway
            return Unredactable(f"Avro {self._name()} not written again: {type(exc).__name__}")
        return stream.getvalue()

    def _written_again(self, body: bytes, locations: Sequence[Location]) -> bytes | Unredactable:
        """``body`` written again by fastavro with ``locations`` emptied, every union
        under the branch its producer wrote (``avro_branches``): fastavro's choice of
        branch for a plain value could make another field read as another type."""
        try:
            if self._rewriter is None:
                assert self._texts is not None
                self._rewriter = BranchKeepingWriter(*self._texts)
            return self._rewriter.emptied(body, locations)
        except LookupError:
            return Unredactable(f"a redacted field is not in the Avro {self._name()} record")
        except Exception as exc:  # the body decoded under this schema; fail closed anyway
            return Unredactable(f"Avro {self._name()} not written again: {type(exc).__name__}")

    def _why_not_emptiable(self, location: Location) -> Unredactable | None:
        """Why the schema cannot hold ``location`` emptied, or None when it can."""
        if location and isinstance(location[-1], int):
            return None  # a list item: removed from its list
        path = schema_path(location)
        field = self.fields.get(path)
        if field is None:
            return Unredactable(f"Avro schema {self._name()} has no field {path}")
        if not field.emptiable:
            return Unredactable(
                f"Avro field {path} of {self._name()} is {self._type_names[path]}, "
                "which cannot be null"
            )
        return None

    def _name(self) -> str:
        return self.record_name or f"schema {self.schema_id}"


def avro_codec(registered: RegisteredSchema, referenced: Sequence[str] = ()) -> AvroCodec:
    """The codec of ``registered``; ``referenced`` are the texts of the schemas it
    references (named types), each after the ones it references itself. Raises
    :class:`UnusableSchemaError`."""
    named: dict[str, Any] = {}
    try:
        for text in referenced:
            fastavro.parse_schema(json.loads(text), named_schemas=named)
        schema = json.loads(registered.text)
        parsed = fastavro.parse_schema(schema, named_schemas=named)
    except Exception as exc:  # bad JSON, unknown types, bad names: all say the same
        raise UnusableSchemaError(
            f"Avro schema {registered.schema_id} does not parse: {_first_line(exc)}"
        ) from None
    empty_items = _list_of_no_bytes(parsed, named, "", set())
    if empty_items is not None:
        # A few bytes could announce 2^63 such items, each read in no bytes: one record
        # would hold a worker for ever. Records framed with it become dead letters.
        raise UnusableSchemaError(
            f"Avro schema {registered.schema_id} has a list whose items encode in no "
            f"bytes ({empty_items or 'the record itself'}): its item count is unbounded"
        )
    fields: dict[str, FieldInfo] = {}
    type_names: dict[str, str] = {}
    root = _resolved(parsed, named)
    record_name = None
    try:
        if isinstance(root, dict) and root.get("type") in ("record", "error"):
            record_name = str(root["name"])
            _walk_record(root, "", named, 1, fields, type_names)
        elif _holds_tags(parsed, named):
            raise UnusableSchemaError("tagged fields under a top-level type that is not a record")
    except UnusableSchemaError as exc:
        raise UnusableSchemaError(f"Avro schema {registered.schema_id}: {exc}") from None
    patcher = reader = None
    if record_name is not None:
        try:
            patcher = AvroPatcher(parsed, named)
        except Exception:  # a shape the skip functions do not know: written again instead
            patcher = None
        try:
            reader = record_reader(parsed, named)
        except Exception:  # a shape the generator does not know: read by fastavro alone
            reader = None
    texts = (registered.text, tuple(referenced))
    return AvroCodec(
        registered.schema_id, parsed, record_name, fields, type_names, patcher, reader, texts
    )


def _walk_record(
    record: dict[str, Any],
    prefix: str,
    named: Mapping[str, Any],
    depth: int,
    fields: dict[str, FieldInfo],
    type_names: dict[str, str],
) -> None:
    if depth > MAX_DEPTH:
        # Not listed: data can nest this deep only under a recursive record (or a very
        # deep schema), and a tagged field down here would pass unjudged.
        _refuse_tags_here(record, named, f"{prefix.rstrip('.')}: deeper than {MAX_DEPTH} records")
        return
    for field in record.get("fields", ()):
        if not isinstance(field["name"], str) or not is_path_name(field["name"]):
            # Avro names are [A-Za-z_][A-Za-z0-9_]*, which fastavro does not check: a
            # name with a space, "." or "[0]" in it would be read at another place, so
            # it is not listed, and a tag in it makes the schema unusable.
            if _holds_tags(field, named):
                raise UnusableSchemaError(
                    f"Avro field {json.dumps(field['name'])[:80]} (under "
                    f"{prefix.rstrip('.') or 'the top'}) is or holds a tagged field, and its "
                    "name is not an Avro name: no path can write it"
                )
            continue
        path = f"{prefix}{field['name']}"
        tags = field.get(TAGS_PROPERTY)
        tag_tuple = tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()
        _walk_type(field["type"], path, tag_tuple, named, depth, fields, type_names)


def _holds_tags(avro_field: Any, named: Mapping[str, Any]) -> bool:
    """Whether ``avro_field`` or any field of its type (named types followed) has tags."""
    stack: list[Any] = [avro_field]
    seen: set[str] = set()
    while stack:
        node = stack.pop()
        if isinstance(node, str) and node in named and node not in seen:
            seen.add(node)
            stack.append(named[node])
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if node.get(TAGS_PROPERTY):
                return True
            stack.extend(node.values())
    return False


def _walk_type(
    avro_type: Any,
    path: str,
    tags: tuple[str, ...],
    named: Mapping[str, Any],
    depth: int,
    fields: dict[str, FieldInfo],
    type_names: dict[str, str],
) -> None:
    if len(fields) >= MAX_FIELDS:
        raise UnusableSchemaError(
            f"more than {MAX_FIELDS:,} field paths (a record held again in several of its "
            "own fields lists paths without end)"
        )
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    nullable = any(branch == "null" for branch in branches)
    others = [_resolved(branch, named) for branch in branches if branch != "null"]
    inner = others[0] if len(others) == 1 else None
    fields[path] = FieldInfo(path, _kind(inner), nullable, tags)
    type_names[path] = _type_name(avro_type)
    if len(others) > 1:
        # Several branches are not walked: none of them may hold a tagged field.
        _refuse_tags_here(others, named, f"{path}: a union of several types")
    if not isinstance(inner, dict):
        return
    if inner.get("type") in ("record", "error"):
        _walk_record(inner, path + ".", named, depth + 1, fields, type_names)
    elif inner.get("type") == "map":
        _refuse_tags_here(inner.get("values"), named, f"{path}: a map's values")
    elif inner.get("type") == "array":
        # A list item can always be removed from its list.
        item_path = path + "[*]"
        items = inner["items"]
        if depth < MAX_DEPTH:
            _walk_type(items, item_path, (), named, depth + 1, fields, type_names)
            fields[item_path] = fields[item_path]._replace(emptiable=True)
        else:
            _refuse_tags_here(items, named, f"{item_path}: deeper than {MAX_DEPTH} records")


def _refuse_tags_here(avro_type: Any, named: Mapping[str, Any], where: str) -> None:
    """Raise :class:`UnusableSchemaError` when ``avro_type``, which the listing does not
    walk, holds a tagged field: the tags say it is an identifier or its purposes, and
    read by nobody it would pass unjudged."""
    if _holds_tags(avro_type, named):
        raise UnusableSchemaError(
            f"a tagged field where the enforcer does not read fields ({where})"
        )


def _list_of_no_bytes(
    avro_type: Any, named: Mapping[str, Any], path: str, seen: set[str]
) -> str | None:
    """The path of the first array in ``avro_type`` whose items encode in no bytes
    (``null``, a ``fixed`` of size 0, a record of only such fields), or None. A map's
    entry always has a key, so at least one byte; a union its branch index."""
    avro_type = _resolved(avro_type, named)
    if (
        isinstance(avro_type, dict)
        and avro_type.get("type") == "array"
        and _encodes_in_no_bytes(avro_type.get("items"), named, set())
    ):
        return f"{path}[*]"
    for inner_path, inner in _inner_types(avro_type, path, seen):
        found = _list_of_no_bytes(inner, named, inner_path, seen)
        if found is not None:
            return found
    return None


def _inner_types(avro_type: Any, path: str, seen: set[str]) -> list[tuple[str, Any]]:
    """The types directly inside ``avro_type``, each with its path; a named record only
    the first time it is met (``seen``)."""
    if isinstance(avro_type, list):
        return [(path, branch) for branch in avro_type]
    if not isinstance(avro_type, dict):
        return []
    kind = avro_type.get("type")
    if kind in ("array", "map"):
        inner = ("[*]", "items") if kind == "array" else ("{*}", "values")
        return [(f"{path}{inner[0]}", avro_type.get(inner[1]))]
    if kind in ("record", "error"):
        name = str(avro_type.get("name"))
        if name in seen:
            return []  # a recursive or reused record: walked where it was first met
        seen.add(name)
        return [
            (f"{path}.{field['name']}" if path else str(field["name"]), field["type"])
            for field in avro_type.get("fields", ())
        ]
    return [(path, kind)] if isinstance(kind, (dict, list)) else []


def _encodes_in_no_bytes(avro_type: Any, named: Mapping[str, Any], open_names: set[str]) -> bool:
    avro_type = _resolved(avro_type, named)
    if not isinstance(avro_type, dict):
        return bool(avro_type == "null")  # any other primitive, or a union (its index is a byte)
    kind = avro_type.get("type")
    if kind in ("record", "error"):
        name = str(avro_type.get("name"))
        if name in open_names:
            return False  # a record holding itself can hold no value at all
        open_names.add(name)
        fields = avro_type.get("fields", ())
        empty = all(_encodes_in_no_bytes(field["type"], named, open_names) for field in fields)
        open_names.discard(name)
        return empty
    if kind == "fixed":
        return avro_type.get("size") == 0
    # {"type": "null"}, or a logical type's base type
    return kind not in ("array", "map", "enum") and _encodes_in_no_bytes(kind, named, open_names)


def _resolved(avro_type: Any, named: Mapping[str, Any]) -> Any:
    """A named type's definition for its name (fastavro names a type fully once)."""
    if isinstance(avro_type, str) and avro_type in named:
        return named[avro_type]
    return avro_type


def _kind(avro_type: Any) -> FieldKind:
    if avro_type is None:
        return "other"
    if isinstance(avro_type, str):
        return _KINDS.get(avro_type, "other")
    if isinstance(avro_type, dict):
        if "logicalType" in avro_type:
            return "other"  # a datetime, UUID or Decimal in the view, not its base type
        base = avro_type.get("type")
        return _KINDS.get(base, "other") if isinstance(base, str) else "other"
    return "other"


def _type_name(avro_type: Any) -> str:
    """How the schema writes a field's type, short: named types by name."""
    if isinstance(avro_type, list):
        return "[" + ", ".join(_type_name(branch) for branch in avro_type) + "]"
    if isinstance(avro_type, dict):
        name = avro_type.get("name")
        if isinstance(name, str):
            return name
        base = avro_type.get("type")
        logical = avro_type.get("logicalType")
        text = base if isinstance(base, str) else "complex"
        return f"{text} ({logical})" if isinstance(logical, str) else text
    return str(avro_type)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__
