"""What a Protobuf body holds beyond the message the runtime parses from it
(docs/formats.md, "Protobuf"): bytes nobody judges but a consumer may read.

The runtime keeps fields the schema does not name (a newer writer's ``backup_phone =
99``) as unknown fields, and of a singular field written twice it keeps the last copy;
of a map key written twice, the last entry; of two members of one ``oneof``, the last.
The enforcer judges the parsed message but forwards the body as it came, so a consumer
whose schema names that number, makes the field ``repeated`` (a wire-compatible change)
or reads the map as a list of entries would read values nobody judged. Such bodies are
not forwarded: :func:`check_body` walks the wire form against the schema and says what
is there that the parsed message does not show.

Every encoding an ordinary serializer writes passes: fields in any order, repeated
scalars packed or not, map entries in any order.
"""

from __future__ import annotations

from typing import NamedTuple

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from enforcer.formats.codec import DecodeError

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5
_MAX_NESTING = 200
"""Deeper than the runtime parses (100): a body it parsed never gets here."""

_FIXED64_TYPES = frozenset(
    (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FIXED64, FieldDescriptor.TYPE_SFIXED64)
)
_FIXED32_TYPES = frozenset(
    (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_FIXED32, FieldDescriptor.TYPE_SFIXED32)
)
_LENGTH_TYPES = frozenset(
    (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES, FieldDescriptor.TYPE_MESSAGE)
)
_KEY_32_BITS = frozenset(
    (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_SINT32)
)


class _WireField(NamedTuple):
    """What the wire may hold for one field number of a message."""

    name: str
    repeated: bool
    oneof: str | None
    wire_types: frozenset[int]
    message: Descriptor | None
    """The message type a length-delimited value (or a group) is parsed as."""
    is_map: bool


class _Shape(NamedTuple):
    name: str
    fields: dict[int, _WireField]
    key_type: int | None
    """For a map entry, its key's type (keys compare as the runtime reads them)."""


MAX_CHECKED_FIELDS = 20_000
"""Fields a body may hold when it is checked field by field (written in another order
than the runtime writes, so not compared byte for byte): each costs about 2 µs, and a
crafted body of many small fields would otherwise hold a worker a tenth of a second."""


class WireCheck:
    """Checks bodies of one schema; each message type's shape is worked out once."""

    def __init__(self) -> None:
        self._shapes: dict[str, _Shape] = {}
        self._fields_left = MAX_CHECKED_FIELDS

    def check_body(self, data: bytes, start: int, message: Descriptor) -> None:
        """Raises :class:`DecodeError` when the body from ``start`` holds more than the
        parsed ``message`` shows: a field number (or wire type) the schema does not
        have, a singular field or a map key written twice, two members of one
        ``oneof``. The body is one the runtime parsed."""
        self._fields_left = MAX_CHECKED_FIELDS
        self._message(data, start, len(data), message, 0, None)

    def _message(
        self,
        data: bytes,
        pos: int,
        end: int,
        descriptor: Descriptor,
        depth: int,
        group: int | None,
    ) -> tuple[int, object]:
        """Where the message (or the group numbered ``group``) ends, and for a map
        entry its key as the runtime reads it."""
        if depth > _MAX_NESTING:
            raise DecodeError("body nests Protobuf messages too deeply")
        shape = self._shape(descriptor)
        seen: set[int] = set()
        oneofs: dict[str, str] = {}
        keys: dict[int, set[object]] = {}
        key: object = None
        while pos < end:
            self._fields_left -= 1
            if self._fields_left < 0:
                raise DecodeError(
                    f"body holds more than {MAX_CHECKED_FIELDS:,} fields written in another "
                    "order than the runtime writes them: too many to check one by one"
                )
            tag, pos = varint(data, pos, end)
            number, wire_type = tag >> 3, tag & 7
            if wire_type == _END_GROUP and group is not None and number == group:
                return pos, key
            field = shape.fields.get(number)
            if field is None or wire_type not in field.wire_types:
                raise DecodeError(
                    f"body holds a field Protobuf {shape.name} does not have (a field "
                    "number or wire type the schema does not name): a consumer with "
                    "another schema would read it unjudged"
                )
            _check_once(shape, field, number, seen, oneofs)
            pos, value = self._value(data, pos, end, field, number, wire_type, depth)
            if field.is_map:
                taken = keys.setdefault(number, set())
                if value in taken:
                    raise DecodeError(
                        f"body writes a key of map {field.name} of Protobuf {shape.name} "
                        "twice: the enforcer judges the last entry"
                    )
                taken.add(value)
            elif shape.key_type is not None and number == 1:
                key = _runtime_key(value, shape.key_type)
        if group is not None:
            raise DecodeError(f"body ends inside a group of Protobuf {shape.name}")
        if shape.key_type is not None and key is None:
            key = b"" if shape.key_type == FieldDescriptor.TYPE_STRING else 0  # its default
        return pos, key

    def _value(
        self,
        data: bytes,
        pos: int,
        end: int,
        field: _WireField,
        number: int,
        wire_type: int,
        depth: int,
    ) -> tuple[int, object]:
        """Where the field's value ends, and the value itself where a map key needs it
        (a map entry's key field, a map field's entry key)."""
        if wire_type == _VARINT:
            value, pos = varint(data, pos, end)
            return pos, value
        if wire_type in (_FIXED64, _FIXED32):
            size = 8 if wire_type == _FIXED64 else 4
            if pos + size > end:
                raise DecodeError("body ends inside a Protobuf field")
            return pos + size, int.from_bytes(data[pos : pos + size], "little")
        if wire_type == _START_GROUP:
            assert field.message is not None  # groups only are allowed this wire type
            return self._message(data, pos, end, field.message, depth + 1, number)
        size, pos = varint(data, pos, end)
        if pos + size > end:
            raise DecodeError("body ends inside a Protobuf field")
        if field.message is not None:
            _, key = self._message(data, pos, pos + size, field.message, depth + 1, None)
            return pos + size, key
        return pos + size, data[pos : pos + size]

    def _shape(self, descriptor: Descriptor) -> _Shape:
        shape = self._shapes.get(descriptor.full_name)
        if shape is None:
            shape = self._shapes[descriptor.full_name] = _shape_of(descriptor)
        return shape


def _check_once(
    shape: _Shape, field: _WireField, number: int, seen: set[int], oneofs: dict[str, str]
) -> None:
    """Raises :class:`DecodeError` when a singular field, or another member of the
    field's oneof, was written already in this message."""
    if not field.repeated:
        if number in seen:
            raise DecodeError(
                f"body writes field {field.name} of Protobuf {shape.name} more than once: "
                "the enforcer judges the last copy, a consumer reading the field as "
                "repeated reads every one"
            )
        seen.add(number)
    if field.oneof is not None:
        other = oneofs.setdefault(field.oneof, field.name)
        if other != field.name:
            raise DecodeError(
                f"body writes two members of oneof {field.oneof} of Protobuf {shape.name} "
                f"({other}, {field.name}): the enforcer judges the last"
            )


def _shape_of(descriptor: Descriptor) -> _Shape:
    fields = {}
    for field in descriptor.fields:
        message = field.message_type
        oneof = field.containing_oneof
        fields[field.number] = _WireField(
            field.name,
            field.is_repeated,
            oneof.name if oneof is not None else None,
            _wire_types(field),
            message,
            message is not None and bool(message.GetOptions().map_entry),
        )
    key_type = None
    if descriptor.GetOptions().map_entry:
        key_type = descriptor.fields_by_number[1].type
    return _Shape(descriptor.full_name, fields, key_type)


def _wire_types(field: FieldDescriptor) -> frozenset[int]:
    if field.type == FieldDescriptor.TYPE_GROUP:
        return frozenset((_START_GROUP,))
    if field.type in _LENGTH_TYPES:
        return frozenset((_LENGTH,))
    own = (
        _FIXED64
        if field.type in _FIXED64_TYPES
        else _FIXED32
        if field.type in _FIXED32_TYPES
        else _VARINT
    )
    # A repeated scalar is read packed or not, whatever the schema says.
    return frozenset((own, _LENGTH)) if field.is_repeated else frozenset((own,))


def _runtime_key(key: object, key_type: int) -> object:
    """A map key as the runtime reads it from its wire value: a 32-bit integer's low 32
    bits, a bool as true or false (two wire values, one key)."""
    if isinstance(key, bytes):
        return key
    assert isinstance(key, int)
    if key_type == FieldDescriptor.TYPE_BOOL:
        return int(key != 0)
    if key_type in _KEY_32_BITS:
        return key & 0xFFFFFFFF
    return key & 0xFFFFFFFFFFFFFFFF


def varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    """The base-128 varint at ``pos`` (64 bits at most) and the position after it."""
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise DecodeError("body ends inside a Protobuf varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos
