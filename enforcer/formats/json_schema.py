"""JSON Schema bodies: the UTF-8 JSON text after the frame, validated against the
registered schema, and written back with fields set to null or removed
(docs/formats.md, "JSON Schema").

Validation is jsonschema-rs (docs/decisions.md, "Schema formats: fastavro, the
protobuf runtime, jsonschema-rs"), offline: a ``$ref`` outside the schema's own
document makes the schema unusable rather than a request from the enforcer to anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import jsonschema_rs
import orjson

from enforcer.core.parse import has_long_digit_run, repeats_a_key
from enforcer.core.record_format import Unredactable
from enforcer.formats.codec import DecodeError, FieldInfo, FieldKind, Location
from enforcer.formats.emptied import emptied_copy, schema_path
from enforcer.formats.registry import RegisteredSchema, SchemaType
from enforcer.formats.schema_error import UnusableSchemaError

TAGS_KEYWORD = "confluent:tags"
MAX_DEPTH = 16
"""Properties nested deeper than this (a recursive ``$ref``) are not listed."""

_KINDS: dict[str, FieldKind] = {
    "string": "string",
    "integer": "int",
    "number": "float",
    "boolean": "bool",
    "array": "list",
}


class _Slot(NamedTuple):
    """How a property is emptied: null when its type allows it, else removed when it is
    not required."""

    nullable: bool
    required: bool


class JsonRecord(NamedTuple):
    """A decoded body: the document, and whether it must be written by the exact
    (standard library) encoder."""

    document: Any
    exact: bool


class JsonSchemaCodec:
    """One registered JSON Schema."""

    def __init__(
        self,
        schema_id: int,
        validator: Any,
        record_name: str | None,
        fields: Mapping[str, FieldInfo],
        slots: Mapping[str, _Slot],
    ) -> None:
        self.schema_id = schema_id
        self.schema_type: SchemaType = "JSON"
        self.record_name = record_name
        self.fields = fields
        self._validator = validator
        self._slots = slots
        # The schema's property names, each as its quoted JSON text: a name written
        # more than once in a body may be a key twice in one object (checked exactly).
        self._names = frozenset(
            str(part) for path in fields for part in path.replace("[*]", "").split(".")
        )
        self._quoted = tuple(orjson.dumps(name) for name in self._names)

    def decode(self, body: bytes) -> tuple[object, Any]:
        """The parsed document (native: a :class:`JsonRecord`), validated."""
        # orjson would read an integer beyond 64 bits as a float: the exact parser does.
        exact = has_long_digit_run(body)
        try:
            document = json.loads(body) if exact else orjson.loads(body)
        except ValueError:  # orjson's JSONDecodeError and UnicodeDecodeError included
            raise DecodeError(f"body of JSON Schema {self._name()} is not JSON") from None
        if (92 in body or any(body.count(name) > 1 for name in self._quoted)) and (
            repeats_a_key(body, self._names)
        ):
            # Which of the two a consumer reads is its parser's choice: the enforcer
            # cannot judge what the record says.
            raise DecodeError(
                f"body of JSON Schema {self._name()} has a property twice in one object"
            )
        if not self._validator.is_valid(document):
            error = next(iter(self._validator.iter_errors(document)))
            # The schema's path names the rule; the instance path could name map keys,
            # which are data.
            where = "/".join(str(part) for part in error.schema_path)
            raise DecodeError(f"body does not match JSON Schema {self._name()} at {where}")
        return JsonRecord(document, exact), document

    def encode_without(self, native: object, locations: Sequence[Location]) -> bytes | Unredactable:
        """The document with each location's property set to null where its type allows
        it, else removed where it is not required; a list item removed."""
        if not isinstance(native, JsonRecord):
            raise TypeError("native must be what decode returned")
        edits: list[tuple[Location, bool]] = []
        for location in locations:
            if location and isinstance(location[-1], int):
                edits.append((location, True))
                continue
            path = schema_path(location)
            slot = self._slots.get(path)
            if slot is None:
                return Unredactable(f"JSON Schema {self._name()} has no property {path}")
            if not slot.nullable and slot.required:
                return Unredactable(
                    f"JSON Schema property {path} of {self._name()} is required and cannot be null"
                )
            edits.append((location, not slot.nullable))
        try:
            document = emptied_copy(native.document, edits)
        except LookupError:
            return Unredactable(f"a redacted field is not in the JSON {self._name()} record")
        if native.exact:
            return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()
        return orjson.dumps(document)

    def _name(self) -> str:
        return self.record_name or f"schema {self.schema_id}"


def json_schema_codec(registered: RegisteredSchema) -> JsonSchemaCodec:
    """The codec of ``registered``. Raises :class:`UnusableSchemaError`."""
    try:
        schema = json.loads(registered.text)
    except ValueError:
        raise UnusableSchemaError(f"JSON Schema {registered.schema_id} is not JSON") from None
    if not isinstance(schema, dict | bool):
        raise UnusableSchemaError(f"JSON Schema {registered.schema_id} is not an object")
    try:
        validator = jsonschema_rs.validator_for(schema, offline=True)
    except (ValueError, TypeError) as exc:  # ValidationError and bad schemas are ValueErrors
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UnusableSchemaError(
            f"JSON Schema {registered.schema_id} cannot be used: {first}"
        ) from None
    fields: dict[str, FieldInfo] = {}
    slots: dict[str, _Slot] = {}
    record_name = None
    if isinstance(schema, dict):
        title = schema.get("title")
        record_name = title if isinstance(title, str) else None
        root = _Walker(schema, fields, slots)
        root.properties(root.resolved(schema), "", 1)
    return JsonSchemaCodec(registered.schema_id, validator, record_name, fields, slots)


class _Walker:
    """Lists a schema's property paths, following ``$ref`` within the document."""

    def __init__(
        self, document: dict[str, Any], fields: dict[str, FieldInfo], slots: dict[str, _Slot]
    ) -> None:
        self.document = document
        self.fields = fields
        self.slots = slots

    def resolved(self, node: Any, hops: int = 0) -> Any:
        """``node`` with a local ``$ref`` followed (``#/definitions/x``); a ref that goes
        elsewhere leaves the node as it is."""
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#") or hops > MAX_DEPTH:
            return node
        target: Any = self.document
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and key in target:
                target = target[key]
            elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
            else:
                return node
        return self.resolved(target, hops + 1)

    def properties(self, node: Any, prefix: str, depth: int) -> None:
        if depth > MAX_DEPTH or not isinstance(node, dict):
            return
        properties = node.get("properties")
        if not isinstance(properties, dict):
            return
        required = node.get("required")
        required_names = set(required) if isinstance(required, list) else set()
        for name, declared in properties.items():
            path = f"{prefix}{name}"
            self.field(declared, path, required=name in required_names, depth=depth)

    def field(self, declared: Any, path: str, *, required: bool, depth: int) -> None:
        node = self.resolved(declared)
        tags = _tags(declared) or _tags(node)
        nullable, inner = self.nullable_and_inner(node)
        kind = _kind(inner)
        self.fields[path] = FieldInfo(path, kind, nullable or not required, tags)
        self.slots[path] = _Slot(nullable, required)
        if kind == "record":
            self.properties(inner, path + ".", depth + 1)
        elif kind == "list" and isinstance(inner, dict) and depth < MAX_DEPTH:
            items = inner.get("items")
            if isinstance(items, dict):
                item_path = path + "[*]"
                self.field(items, item_path, required=False, depth=depth + 1)
                # A list item is removed from its list, never set to null.
                self.fields[item_path] = self.fields[item_path]._replace(emptiable=True)

    def nullable_and_inner(self, node: Any) -> tuple[bool, Any]:
        """Whether ``node`` allows null, and the one non-null schema it allows (or
        ``None`` when it allows several)."""
        if not isinstance(node, dict):
            return node is True, None
        types = node.get("type")
        type_list = types if isinstance(types, list) else [types] if types else []
        nullable = "null" in type_list
        for keyword in ("oneOf", "anyOf"):
            choices = node.get(keyword)
            if isinstance(choices, list):
                resolved = [self.resolved(choice) for choice in choices]
                others = [c for c in resolved if not _is_null(c)]
                nullable = nullable or len(others) < len(resolved)
                return nullable, others[0] if len(others) == 1 else None
        return nullable, node


def _is_null(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "null"


def _kind(node: Any) -> FieldKind:
    if not isinstance(node, dict):
        return "other"
    if "enum" in node:
        return "enum"
    types = node.get("type")
    named = [t for t in types if t != "null"] if isinstance(types, list) else [types]
    if len(named) != 1:
        return "other"
    (kind,) = named
    if kind == "object" or (kind is None and "properties" in node):
        if "properties" in node:
            return "record"
        return "map" if "additionalProperties" in node else "other"
    return _KINDS.get(kind, "other") if isinstance(kind, str) else "other"


def _tags(node: Any) -> tuple[str, ...]:
    tags = node.get(TAGS_KEYWORD) if isinstance(node, dict) else None
    return tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else ()
