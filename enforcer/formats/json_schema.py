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

from enforcer.core.json_numbers import json_document_to_write, number_checks
from enforcer.core.parse import repeats_a_key
from enforcer.core.record_format import Unredactable
from enforcer.formats.codec import DecodeError, FieldInfo, FieldKind, Location
from enforcer.formats.emptied import emptied_copy, schema_path
from enforcer.formats.paths import is_path_name
from enforcer.formats.registry import RegisteredSchema, SchemaType
from enforcer.formats.schema_error import UnusableSchemaError

TAGS_KEYWORD = "confluent:tags"
MAX_DEPTH = 16
"""Properties nested deeper than this (a recursive ``$ref``) are not listed."""
MAX_FIELDS = 200_000
"""More property paths than this make a schema unusable: a ``$ref`` that recurs in two
or three properties would list millions (3^16) and hold the worker that builds it."""

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
    """A decoded body: the document, whether it was read by the exact (standard
    library) parser, the body itself (written back with its numbers as they were), and
    whether a number of it may not be written back from ``document`` at its value."""

    document: Any
    exact: bool
    body: bytes
    numbers_may_change: bool


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
        # Whether another number would change when written back: the same look tells.
        exact, may_change = number_checks(body)
        try:
            # orjson first, as for plain JSON: the standard library also reads what is
            # no JSON (NaN, Infinity, 1e400 as infinity, a lone surrogate escape).
            document = orjson.loads(body)
            if exact:
                document = json.loads(body)
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
        return JsonRecord(document, exact, body, may_change), document

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
            to_write = json_document_to_write(
                native.body, native.document, native.numbers_may_change
            )
            written = document if to_write is native.document else emptied_copy(to_write, edits)
        except LookupError:
            return Unredactable(f"a redacted field is not in the JSON {self._name()} record")
        if not self._validator.is_valid(document):
            return self._no_longer_valid(document, locations)
        return orjson.dumps(written)

    def _no_longer_valid(self, document: Any, locations: Sequence[Location]) -> Unredactable:
        """Why the emptied document cannot be forwarded: it breaks a rule of the schema
        beside the type (a ``minItems`` the removed item leaves short, a ``const``, an
        ``enum`` or a ``type`` beside a ``oneOf`` that null does not meet, a
        ``minProperties``), so a validating consumer would refuse it."""
        error = next(iter(self._validator.iter_errors(document)))
        where = "/".join(str(part) for part in error.schema_path)
        emptied = ", ".join(sorted({schema_path(location) for location in locations}))
        return Unredactable(
            f"JSON Schema {self._name()} with {emptied} emptied does not match the schema "
            f"at {where}"
        )

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
        try:
            walker = _Walker(schema, fields, slots)
            if walker.tagged and _sets_a_base_below_the_top(schema):
                raise _UnusableError(
                    "a schema below the top sets its own base ($id, or id): a local $ref "
                    "under it names its own definitions, not the ones the enforcer reads"
                )
            walker.root()
        except _UnusableError as exc:
            raise UnusableSchemaError(
                f"JSON Schema {registered.schema_id} cannot be used: {exc}"
            ) from None
    return JsonSchemaCodec(registered.schema_id, validator, record_name, fields, slots)


class _UnusableError(Exception):
    """Why the walker cannot list a schema soundly: a tagged property whose values no
    listed path reaches (they would go unjudged), or too many paths to list."""


_REFS = frozenset({"$ref", "$dynamicRef", "$recursiveRef"})
_NAME_MAPS = frozenset({"properties", "patternProperties", "dependentSchemas", "dependencies"})
"""Keywords whose value maps names (or patterns) to schemas."""
_NO_SCHEMAS_HERE = frozenset({"definitions", "$defs", "enum", "const", "default", "examples"})
"""Keywords whose values apply to no value where they are: definitions (applied through
a ``$ref``, followed from there) and data."""


class _Walker:
    """Lists a schema's property paths, following ``$ref`` within the document.

    A schema tags a property wherever it likes (``allOf``, ``if``/``then``, a second
    ``oneOf`` branch, ``additionalProperties``, ``prefixItems``, a name no path can
    write, a recursion deeper than the listing goes); the values under a tag the
    listing does not reach would be forwarded unjudged. So every keyword the walker does
    not follow is searched, through local ``$ref``s too, and a tagged schema found there
    raises :class:`_UnusableError`: the schema is unusable."""

    def __init__(
        self, document: dict[str, Any], fields: dict[str, FieldInfo], slots: dict[str, _Slot]
    ) -> None:
        self.document = document
        self.fields = fields
        self.slots = slots
        # A schema without any tag has nothing to leave unjudged: nothing is searched.
        self.tagged = _has_tags(document)
        self.searched: set[int] = set()

    def root(self) -> None:
        chain = self.chain(self.document)
        self.links(chain, "the top")
        node = chain[-1]
        if isinstance(node, dict):
            self.properties(node, "", 1)
            self.rest(node, "the top", ("properties",), 1)

    def target(self, node: Any) -> Any:
        """The schema ``node``'s local ``$ref`` names (``#/definitions/x``), or ``None``
        (no ``$ref``, one that goes elsewhere, or names nothing)."""
        ref = node.get("$ref") if isinstance(node, dict) else None
        if not isinstance(ref, str) or not ref.startswith("#"):
            return None
        target: Any = self.document
        for part in filter(None, ref[1:].split("/")):
            key = part.replace("~1", "/").replace("~0", "~")
            if isinstance(target, dict) and key in target:
                target = target[key]
            elif isinstance(target, list) and key.isdigit() and int(key) < len(target):
                target = target[int(key)]
            else:
                return None
        return target

    def chain(self, node: Any) -> list[Any]:
        """``node``, then each schema its ``$ref`` names in turn (a bounded number)."""
        chain = [node]
        while len(chain) <= MAX_DEPTH + 1:
            target = self.target(chain[-1])
            if target is None:
                break
            chain.append(target)
        return chain

    def links(self, chain: list[Any], owner: str) -> None:
        """Search what the ``$ref`` schemas of ``chain`` (all but its last) hold beside
        their ``$ref``."""
        for link in chain[:-1]:
            self.rest(link, owner, ("$ref",), 1)

    def properties(self, node: dict[str, Any], prefix: str, depth: int) -> None:
        properties = node.get("properties")
        if not isinstance(properties, dict):
            return
        required = node.get("required")
        required_names = set(required) if isinstance(required, list) else set()
        for name, declared in properties.items():
            if not is_path_name(name):
                # "contact.email" or "phones[0]" as one property's name: a path would
                # read another place. Not listed; tagged, the schema is unusable.
                self.search(
                    declared, f"property {json.dumps(name)[:80]} (a name no path can write)"
                )
                continue
            path = f"{prefix}{name}"
            self.field(declared, path, required=name in required_names, depth=depth)

    def field(self, declared: Any, path: str, *, required: bool, depth: int) -> None:
        if len(self.fields) >= MAX_FIELDS:
            raise _UnusableError(
                f"it has more than {MAX_FIELDS} property paths (listed {MAX_DEPTH} levels "
                "deep, a $ref that recurs in more than one property grows without bound)"
            )
        chain = self.chain(declared)
        node = chain[-1]
        self.links(chain, f"property {path}")
        nullable, inner_chain = self.nullable_and_inner(node, path)
        inner = inner_chain[-1] if inner_chain else None
        kind = _kind(inner)
        tags = self.tags(path, chain + inner_chain)
        self.fields[path] = FieldInfo(path, kind, nullable or not required, tags)
        self.slots[path] = _Slot(nullable, required)
        followed: tuple[str, ...] = ()
        if kind == "record" and isinstance(inner, dict) and depth < MAX_DEPTH:
            followed = ("properties",)
            self.properties(inner, path + ".", depth + 1)
        elif kind == "list" and isinstance(inner, dict) and depth < MAX_DEPTH:
            items = inner.get("items")
            if isinstance(items, dict):
                followed = ("items",)
                item_path = path + "[*]"
                self.field(items, item_path, required=False, depth=depth + 1)
                # A list item is removed from its list, never set to null.
                self.fields[item_path] = self.fields[item_path]._replace(emptiable=True)
        if isinstance(inner, dict):
            self.rest(inner, f"property {path}", followed, depth)

    def nullable_and_inner(self, node: Any, path: str) -> tuple[bool, list[Any]]:
        """Whether ``node`` allows null, and the ``$ref`` chain of the one non-null
        schema it allows (empty when it allows several); what it holds beside is
        searched."""
        if not isinstance(node, dict):
            return node is True, []
        types = node.get("type")
        type_list = types if isinstance(types, list) else [types] if types else []
        nullable = "null" in type_list
        for keyword in ("oneOf", "anyOf"):
            choices = node.get(keyword)
            if isinstance(choices, list):
                self.rest(node, f"property {path}", (keyword,), 1)
                chains = [self.chain(choice) for choice in choices]
                others = [chain for chain in chains if not _is_null(chain[-1])]
                nullable = nullable or len(others) < len(chains)
                for chain in chains:
                    if len(others) != 1 or _is_null(chain[-1]):
                        self.search(chain[0], f"{keyword} of property {path}")
                if len(others) != 1:
                    return nullable, []
                self.links(others[0], f"property {path}")
                return nullable, others[0]
        return nullable, [node]

    def tags(self, path: str, chain: list[Any]) -> tuple[str, ...]:
        """The tags of the first schema of ``chain`` (the property, then what its
        ``$ref`` or its one non-null ``oneOf``/``anyOf`` branch names) that has any;
        another schema of the chain with other tags makes the schema unusable (which
        count is not clear)."""
        found = [tags for tags in map(_tags, chain) if tags]
        if any(not set(tags) <= set(found[0]) for tags in found[1:]):
            raise _UnusableError(
                f"property {path} has confluent:tags on its own schema and other tags on "
                "the schema its $ref, oneOf or anyOf names"
            )
        return found[0] if found else ()

    def rest(self, node: dict[str, Any], owner: str, followed: tuple[str, ...], depth: int) -> None:
        """Search what ``node`` holds under the keywords the listing did not follow."""
        if not self.tagged:
            return
        for keyword, value in node.items():
            if keyword in followed or keyword == TAGS_KEYWORD:
                continue
            if keyword in ("properties", "items") and depth >= MAX_DEPTH:
                where = f"{owner}, nested deeper than {MAX_DEPTH} levels (a recursive $ref)"
            else:
                where = f"{keyword} of {owner}"
            for found in self.below(node, keyword, value, where):
                self.search(found, where)

    def below(self, node: dict[str, Any], keyword: str, value: Any, where: str) -> list[Any]:
        """The schemas (or values that may hold schemas) ``node``'s ``keyword`` applies."""
        if keyword in _NO_SCHEMAS_HERE:
            return []
        if keyword in _NAME_MAPS and isinstance(value, dict):
            return list(value.values())
        if keyword in _REFS and isinstance(value, str):
            target = self.target(node) if keyword == "$ref" else None
            if target is None:
                raise _UnusableError(f"{where} is a {keyword} the enforcer does not follow")
            return [target]
        return [value]

    def search(self, value: Any, where: str) -> None:
        """Raise :class:`_UnusableError` when ``value`` (what a keyword holds) is or
        holds a tagged schema, through local ``$ref``s too."""
        if not self.tagged:
            return
        stack = [value]
        while stack:
            node = stack.pop()
            if isinstance(node, list):
                stack.extend(node)
                continue
            if not isinstance(node, dict) or id(node) in self.searched:
                continue
            self.searched.add(id(node))
            if _tags(node):
                raise _UnusableError(
                    f"{where}: a schema tagged with confluent:tags is there, where the "
                    "enforcer lists no field path, so its values would not be judged"
                )
            for keyword, held in node.items():
                stack.extend(self.below(node, keyword, held, where))


def _sets_a_base_below_the_top(document: dict[str, Any]) -> bool:
    """Whether a schema below the top has ``$id`` (or draft-4's ``id``): validators
    resolve a ``$ref`` against the nearest such base, the walker against the top."""
    stack: list[Any] = []
    for keyword, value in document.items():
        stack.extend(_schemas_under(keyword, value))
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict):
            if isinstance(node.get("$id"), str) or isinstance(node.get("id"), str):
                return True
            for keyword, value in node.items():
                stack.extend(_schemas_under(keyword, value))
    return False


def _schemas_under(keyword: str, value: Any) -> list[Any]:
    """What a schema's ``keyword`` holds that may be or hold schemas (not data, and
    not the names of a name map)."""
    if keyword in ("enum", "const", "default", "examples"):
        return []
    if keyword in _NAME_MAPS or keyword in ("definitions", "$defs"):
        return list(value.values()) if isinstance(value, dict) else []
    return [value] if isinstance(value, dict | list) else []


def _has_tags(document: Any) -> bool:
    """Whether any object in ``document`` has a non-empty ``confluent:tags``."""
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if _tags(node):
                return True
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


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
