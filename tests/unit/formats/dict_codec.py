"""A codec for tests: the body is the record as JSON, the schema a dict of fields. It
keeps to the :class:`~enforcer.formats.codec.Codec` protocol so the reader's framed path
is tested without a real format."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from enforcer.core.record_format import Unredactable
from enforcer.formats.codec import DecodeError, FieldInfo, FieldKind, Location
from enforcer.formats.paths import emptied, location_text, parse_path
from enforcer.formats.registry import SchemaType


def field(path: str, kind: FieldKind = "string", *tags: str, emptiable: bool = True) -> FieldInfo:
    """A schema field."""
    return FieldInfo(path, kind, emptiable, tags)


class DictCodec:
    """One 'registered schema': its id, record name and fields."""

    schema_type: SchemaType = "AVRO"

    def __init__(self, schema_id: int, record_name: str | None, *fields: FieldInfo) -> None:
        self.schema_id = schema_id
        self.record_name = record_name
        self.fields: Mapping[str, FieldInfo] = {f.path: f for f in fields}

    def body(self, record: dict[str, Any]) -> bytes:
        """A record written under this schema."""
        return orjson.dumps(record)

    def decode(self, body: bytes) -> tuple[object, Any]:
        try:
            record = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise DecodeError("the body ends before its first field") from None
        return record, record

    def encode_without(self, native: object, locations: Sequence[Location]) -> bytes | Unredactable:
        for location in locations:
            info = self.fields.get(parse_path(location_text(location)).field_path)
            if info is not None and not info.emptiable:
                return Unredactable(f"field '{info.path}' cannot be null under its schema")
        return orjson.dumps(emptied(native, locations, remove=False))


class Codecs:
    """A codec lookup over a few codecs."""

    def __init__(self, *codecs: DictCodec) -> None:
        self.by_id = {c.schema_id: c for c in codecs}

    def codec(self, schema_id: int) -> DictCodec | None:
        return self.by_id.get(schema_id)
