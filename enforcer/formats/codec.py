"""What a schema format (Avro, Protobuf, JSON Schema) gives the record reader: the
schema's fields with their tags, a body decoded into plain values a path can walk, and
the body written back with some fields emptied (docs/formats.md)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, NamedTuple, Protocol, runtime_checkable

from enforcer.core.record_format import Unredactable
from enforcer.formats.registry import SchemaType

FieldKind = Literal[
    "string", "int", "float", "bool", "bytes", "enum", "record", "list", "map", "other"
]

Location = tuple[str | int, ...]
"""Where one value sits in a decoded record: field names and list indexes,
``("contact", "email")``, ``("phones", 1, "number")``."""


class FieldInfo(NamedTuple):
    """One field of a schema, by its path (``contact.email``; a list's items are
    ``phones[*]``, their fields ``phones[*].number``)."""

    path: str
    kind: FieldKind
    emptiable: bool
    """Whether the schema lets the field be emptied: an Avro union with ``null``, any
    Protobuf field (cleared) but a proto2 ``required`` one, a JSON Schema property that
    allows ``null`` or is not required. A list item can always be removed from its list."""
    tags: tuple[str, ...]
    """The field's schema tags (Avro and JSON Schema ``confluent:tags``, Protobuf
    ``(confluent.field_meta).tags``)."""
    keyed_by_name: bool = True
    """For a map: whether a path can name its entries (string keys). A Protobuf map
    keyed by numbers or booleans is read with those keys, which no path's name is."""


class DecodeError(Exception):
    """A body that does not decode under its schema; ``str()`` names no value."""


class UnjudgedMessageError(DecodeError):
    """A body framed as a message of its schema that the codec does not judge (a
    Protobuf message whose tagged fields cannot be listed): its record is an
    ``unknown-schema`` dead letter, as for a schema the enforcer cannot read."""


class Codec(Protocol):
    """One registered schema, ready to read and write bodies (the bytes after the
    frame's five; a Protobuf body starts with its message-index list)."""

    schema_id: int
    schema_type: SchemaType
    record_name: str | None
    """The schema's record name: Avro's full name, the Protobuf message's full name,
    JSON Schema's ``title``."""
    fields: Mapping[str, FieldInfo]
    """Every field path of the schema, records descended, list items as ``[*]``."""

    def decode(self, body: bytes) -> tuple[object, Any]:
        """``(native, view)``: the codec's own decoded form (kept for
        :meth:`encode_without`) and the same record as dicts, lists and scalars that a
        path walks. Raises :class:`DecodeError`."""
        ...

    def encode_without(self, native: object, locations: Sequence[Location]) -> bytes | Unredactable:
        """The body re-encoded under the same schema with the values at ``locations``
        emptied (set to null, cleared, or removed from their list), or why the schema
        cannot hold that."""
        ...


@runtime_checkable
class CodecLookup(Protocol):
    """The codecs of the schemas the driver has fetched, by schema id (no I/O)."""

    def codec(self, schema_id: int) -> Codec | None:
        """The codec for ``schema_id``, or ``None`` when the registry has no such id."""
        ...
