"""Protobuf bodies through the protobuf runtime, with message classes built at run time
from the registry's serialized descriptors (docs/formats.md, "Protobuf").

A body starts with its message-index list, which names the message in the schema's file:
a zig-zag varint count, then that many zig-zag varint indexes (top-level message, then
nested ones); a count of 0 (one zero byte) means ``[0]``, the file's first message. The
view is a dict of the message's fields by their ``.proto`` names: nested messages as
dicts, repeated fields as lists, maps as dicts, enums by value name, scalars as Python
values. A field with presence (a message, a proto3 ``optional``, a ``oneof`` member, a
proto2 field) that is not set is ``None``; a proto3 scalar without presence has its
default. Every field but a proto2 ``required`` one can be emptied: it is cleared (a
list item removed).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, NoReturn

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import EncodeError, Message

from enforcer.core.record_format import Unredactable
from enforcer.formats.codec import (
    DecodeError,
    FieldInfo,
    FieldKind,
    Location,
    UnjudgedMessageError,
)
from enforcer.formats.protobuf_files import OPTIONS_VIEW, base_pool
from enforcer.formats.protobuf_wire import WireCheck, varint
from enforcer.formats.registry import RegisteredSchema, SchemaType
from enforcer.formats.schema_error import UnusableSchemaError

MAX_DEPTH = 16
"""Fields nested deeper than this (a recursive message) are not listed."""
MAX_FIELDS = 250_000
"""More field paths than this make a schema unusable: listing them takes too long (a
message with three fields of its own type has 3^16 paths 16 levels down; one with two,
a binary tree, has some 200 000, listed in a third of a second)."""
_MAX_INDEXES = 100
_MAX_PREFIXES = 64
"""Index lists cached per codec: one message's can be written in many ways."""

_KINDS: dict[int, FieldKind] = {
    FieldDescriptor.TYPE_STRING: "string",
    FieldDescriptor.TYPE_BYTES: "bytes",
    FieldDescriptor.TYPE_BOOL: "bool",
    FieldDescriptor.TYPE_DOUBLE: "float",
    FieldDescriptor.TYPE_FLOAT: "float",
    FieldDescriptor.TYPE_ENUM: "enum",
    FieldDescriptor.TYPE_MESSAGE: "record",
    FieldDescriptor.TYPE_GROUP: "record",
    **dict.fromkeys(
        (
            FieldDescriptor.TYPE_INT32,
            FieldDescriptor.TYPE_INT64,
            FieldDescriptor.TYPE_UINT32,
            FieldDescriptor.TYPE_UINT64,
            FieldDescriptor.TYPE_SINT32,
            FieldDescriptor.TYPE_SINT64,
            FieldDescriptor.TYPE_FIXED32,
            FieldDescriptor.TYPE_FIXED64,
            FieldDescriptor.TYPE_SFIXED32,
            FieldDescriptor.TYPE_SFIXED64,
        ),
        "int",
    ),
}


class ProtoRecord(NamedTuple):
    """A decoded body: its message-index prefix as read (written back unchanged) and the
    message."""

    prefix: bytes
    message: Message


class ProtobufCodec:
    """One registered Protobuf schema (a file and the files it imports), judging one
    message of it: the file's first, or the one :meth:`message_codec` names."""

    def __init__(
        self,
        schema_id: int,
        file: Any,
        fields: Mapping[str, FieldInfo],
        record_name: str | None,
        options_view: type[Message] | None = None,
    ) -> None:
        self.schema_id = schema_id
        self.schema_type: SchemaType = "PROTOBUF"
        self.record_name = record_name
        self.fields = fields
        self._file = file
        self._options_view = options_view
        self._classes: dict[bytes, type[Message]] = {}
        # The codecs of the file's other messages (by full name), made when a record
        # names one; or why that message cannot be judged (its tagged fields unlisted).
        self._others: dict[str, ProtobufCodec | str] = {}
        self._views = _Views()
        self._wire = WireCheck()
        # A message type with extension ranges may carry extensions, which the parsed
        # message holds and writes back but the view does not show: such bodies are
        # always checked on the wire.
        judged = file.pool.FindMessageTypeByName(record_name)
        self._extendable = any(message.is_extendable for message in reachable_messages(judged))

    def decode(self, body: bytes) -> tuple[object, Any]:
        """The message the body's indexes name (native: a :class:`ProtoRecord`) and its
        view."""
        indexes, offset = _message_indexes(body)
        prefix = body[:offset]
        message_class = self._classes.get(prefix)
        if message_class is None:
            message_class = self._message_class(indexes)
            if len(self._classes) < _MAX_PREFIXES:  # overlong varints make more
                self._classes[prefix] = message_class
        payload = body[offset:]
        try:
            message = message_class.FromString(payload)
        except (ProtobufDecodeError, RuntimeError, ValueError):
            raise DecodeError(
                f"body does not decode as Protobuf {message_class.DESCRIPTOR.full_name}"
            ) from None
        if not message.IsInitialized():
            # A proto2 required field is missing: other runtimes refuse such a body, and
            # this one cannot measure or write it again.
            raise DecodeError(
                f"body does not decode as Protobuf {message_class.DESCRIPTOR.full_name}: "
                "a required field is missing"
            )
        self._check_all_judged(message, body, offset)
        return ProtoRecord(prefix, message), self._views.of(message)

    def _check_all_judged(self, message: Message, body: bytes, offset: int) -> None:
        """Raises :class:`DecodeError` when the body holds bytes the parsed message
        does not show (so its view does not judge), which a consumer with another
        schema would read: unknown fields, copies of a field written twice
        (:mod:`enforcer.formats.protobuf_wire`)."""
        size = message.ByteSize()
        message.DiscardUnknownFields()
        if message.ByteSize() != size:
            # Unknown field numbers, wire types the schema does not give the field, a
            # closed enum's values the schema does not name: kept aside by the runtime.
            raise DecodeError(
                f"body holds a field Protobuf {message.DESCRIPTOR.full_name} does not have "
                "(a field number or wire type the schema does not name, or an enum value "
                "it does not name): a consumer with another schema would read it unjudged"
            )
        # The message written again is the body: nothing in it was left unread. Any
        # other encoding (another field order, unpacked repeated scalars, map entries
        # in another order, copies of a field) is walked on the wire.
        if self._extendable or message.SerializeToString() != body[offset:]:
            descriptor: Any = message.DESCRIPTOR  # the stubs know two Descriptor classes
            self._wire.check_body(body, offset, descriptor)

    def encode_without(self, native: object, locations: Sequence[Location]) -> bytes | Unredactable:
        """The message with each location's field cleared (a list item removed, a map
        entry deleted), after the same message indexes."""
        if not isinstance(native, ProtoRecord):
            raise TypeError("native must be what decode returned")
        message = type(native.message)()
        message.CopyFrom(native.message)
        removals: dict[int, tuple[Any, set[Any]]] = {}
        for location in locations:
            why = _clear(message, location, removals)
            if why is not None:
                return Unredactable(why)
        # Items go last, a list's highest index first, so the other indexes still hold.
        for container, keys in removals.values():
            for key in keys if _is_map(container) else sorted(keys, reverse=True):
                del container[key]
        try:
            return native.prefix + message.SerializeToString()
        except EncodeError:
            # A proto2 body that came without a required field (the runtime parses it).
            return Unredactable(
                f"Protobuf {message.DESCRIPTOR.full_name} lacks a required field: it cannot "
                "be written again"
            )

    def message_codec(self, body: bytes) -> ProtobufCodec:
        """The codec of the message the body's indexes name: this one for its own
        message (or for a body whose indexes name none: its decode says why), else the
        codec of that message of the same file, with that message's fields, tags and
        record name. A message whose tagged fields the codec could not list has none:
        this codec is returned and its decode says why."""
        if body[:1] == b"\x00" or self._options_view is None:
            return self
        try:
            indexes, _ = _message_indexes(body)
            found = self._descriptor(indexes)
        except DecodeError:
            return self
        if found.full_name == self.record_name:
            return self
        other = self._others.get(found.full_name)
        if other is None:
            other = self._others[found.full_name] = self._codec_of(found)
        return self if isinstance(other, str) else other

    def _codec_of(self, message: Descriptor) -> ProtobufCodec | str:
        assert self._options_view is not None  # the codec of a file's first message
        try:
            fields = _listed_fields(message, self.schema_id, self._options_view)
            _TagReach(self.schema_id, self._options_view).check(message, self._file)
        except UnusableSchemaError as exc:
            return str(exc)
        return ProtobufCodec(self.schema_id, self._file, fields, message.full_name)

    def _message_class(self, indexes: tuple[int, ...]) -> type[Message]:
        found = self._descriptor(indexes)
        if found.full_name != self.record_name:
            # Its fields and tags are not the ones this codec lists: read as if they
            # were, its identifiers would pass unjudged.
            other = self._others.get(found.full_name)
            why = (
                f"the enforcer cannot judge it: {other}"
                if isinstance(other, str)
                else f"this codec judges only {self.record_name}"
            )
            raise UnjudgedMessageError(
                f"message indexes {list(indexes)} name Protobuf message {found.full_name}: " + why
            )
        return message_factory.GetMessageClass(found)

    def _descriptor(self, indexes: tuple[int, ...]) -> Descriptor:
        types = self._file.message_types_by_name
        found: Descriptor | None = None
        candidates = list(types.values())
        for index in indexes:
            if not 0 <= index < len(candidates):
                raise DecodeError(
                    f"message indexes {_shown_indexes(indexes)} name no message of Protobuf "
                    f"schema {self.schema_id}"
                )
            found = candidates[index]
            candidates = list(found.nested_types)
        assert found is not None  # indexes are never empty
        return found


def protobuf_codec(
    registered: RegisteredSchema, imports: Sequence[tuple[str, str]] = ()
) -> ProtobufCodec:
    """The codec of ``registered``; ``imports`` are ``(import name, schema text)`` of the
    files it imports that the registry holds, each after its own imports. Raises
    :class:`UnusableSchemaError`."""
    pool = base_pool()
    for name, text in imports:
        if _has_file(pool, name):
            continue  # a well-known or Confluent file this reader knows already
        _add(pool, _file_proto(text, registered.schema_id, name), registered.schema_id)
    file_proto = _file_proto(registered.text, registered.schema_id, None)
    if not file_proto.name or _has_file(pool, file_proto.name):
        file_proto.name = f"enforcer-schema-{registered.schema_id}.proto"
    _add(pool, file_proto, registered.schema_id)
    file = pool.FindFileByName(file_proto.name)
    messages = list(file.message_types_by_name.values())
    if not messages:
        raise UnusableSchemaError(f"Protobuf schema {registered.schema_id} has no message")
    options_view = message_factory.GetMessageClass(pool.FindMessageTypeByName(OPTIONS_VIEW))
    fields = _listed_fields(messages[0], registered.schema_id, options_view)
    _TagReach(registered.schema_id, options_view).check(messages[0], file)
    return ProtobufCodec(registered.schema_id, file, fields, messages[0].full_name, options_view)


class _TagReach:
    """Whether every tagged field a judged message can hold is one the codec lists
    (:func:`_walk`): not inside a map's values, not inside a recursive message type
    (its records may nest it deeper than any listing), not deeper than
    :data:`MAX_DEPTH`, not an extension. Else its identifiers would be read by nobody
    and pass, so the schema is unusable."""

    def __init__(self, schema_id: int, options_view: type[Message]) -> None:
        self._schema_id = schema_id
        self._options_view = options_view
        self._heights: dict[str, int] = {}
        self._tagged: set[str] = set()
        """Messages with a tagged field of their own."""
        self._reaching: set[str] = set()
        """Messages that are, or lead to, one of those."""

    def check(self, root: Descriptor, file: Any) -> None:
        """Raises :class:`UnusableSchemaError` naming the first such field."""
        self._extensions(file)
        types = reachable_messages(root)
        self._tagged = {t.full_name for t in types if self._has_tags(t)}
        self._reaching = _reaching(types, self._tagged)
        for message in types:
            for field in message.fields:
                target = field.message_type
                if (
                    _is_map_field(field)
                    and target is not None
                    and target.full_name in self._reaching
                ):
                    self._unusable(
                        f"map {message.full_name}.{field.name} holds tagged fields in its "
                        "values, and the enforcer reads no field inside a map"
                    )
        if root.full_name in self._reaching:
            self._height(root, [])

    def _height(self, message: Descriptor, path: list[str]) -> int:
        """How many levels of messages, from ``message`` (on ``path``, a message that
        reaches a tagged field) down, hold tagged fields: 1 when only its own do."""
        name = message.full_name
        if name in path:
            self._unusable(
                f"{name} is recursive and holds tagged fields, which a record may nest "
                f"deeper than the {MAX_DEPTH} levels the enforcer reads"
            )
        height = self._heights.get(name)
        if height is None:
            if len(path) >= MAX_DEPTH:
                height = 1  # deeper than listed already: said below
            else:
                path.append(name)
                height = 1 if name in self._tagged else 0
                for field in message.fields:
                    target = field.message_type
                    if target is not None and target.full_name in self._reaching:
                        height = max(height, 1 + self._height(target, path))
                path.pop()
                self._heights[name] = height
        if len(path) + height > MAX_DEPTH:
            self._unusable(
                f"tagged fields below {name} sit deeper than the {MAX_DEPTH} levels of "
                "nested messages the enforcer reads"
            )
        return height

    def _has_tags(self, message: Descriptor) -> bool:
        return any(_tags(field, self._options_view) for field in message.fields)

    def _extensions(self, file: Any) -> None:
        pending = list(file.message_types_by_name.values())
        extensions = list(file.extensions_by_name.values())
        while pending:
            message = pending.pop()
            extensions += message.extensions
            pending += message.nested_types
        for extension in extensions:
            if _tags(extension, self._options_view):
                self._unusable(
                    f"extension {extension.full_name} has tags, and the enforcer reads no extension"
                )

    def _unusable(self, why: str) -> NoReturn:
        raise UnusableSchemaError(f"Protobuf schema {self._schema_id}: {why}")


def _reaching(types: Sequence[Descriptor], tagged: set[str]) -> set[str]:
    """The names of ``types`` that are, or lead through their fields to, a message
    with tagged fields (map values and recursion included)."""
    parents: dict[str, list[str]] = {}
    for message in types:
        for field in message.fields:
            if field.message_type is not None:
                parents.setdefault(field.message_type.full_name, []).append(message.full_name)
    found = set(tagged)
    pending = list(tagged)
    while pending:
        for parent in parents.get(pending.pop(), ()):
            if parent not in found:
                found.add(parent)
                pending.append(parent)
    return found


def reachable_messages(root: Descriptor) -> list[Descriptor]:
    """``root`` and every message type its fields lead to (nested messages, map
    entries and their values, groups, ``oneof`` members), each once."""
    found: dict[str, Descriptor] = {root.full_name: root}
    pending = [root]
    while pending:
        for field in pending.pop().fields:
            message = field.message_type
            if message is not None and message.full_name not in found:
                found[message.full_name] = message
                pending.append(message)
    return list(found.values())


def _file_proto(
    text: str, schema_id: int, import_name: str | None
) -> descriptor_pb2.FileDescriptorProto:
    what = f"import {import_name} of " if import_name else ""
    try:
        serialized = base64.b64decode(text, validate=True)
        file_proto = descriptor_pb2.FileDescriptorProto.FromString(serialized)
    except (binascii.Error, ValueError, ProtobufDecodeError):
        raise UnusableSchemaError(
            f"{what}Protobuf schema {schema_id} is .proto source, not a serialized "
            "descriptor: the enforcer reads Protobuf schemas registered as descriptors "
            "(as confluent-kafka's ProtobufSerializer registers them)"
        ) from None
    if import_name is not None:
        file_proto.name = import_name  # imports name the file as the reference does
    return file_proto


def _add(
    pool: descriptor_pool.DescriptorPool,
    file_proto: descriptor_pb2.FileDescriptorProto,
    schema_id: int,
) -> None:
    missing = [name for name in file_proto.dependency if not _has_file(pool, name)]
    if missing:
        raise UnusableSchemaError(
            f"Protobuf schema {schema_id}: {file_proto.name} imports {', '.join(missing)}, "
            "which neither the registry's references nor the enforcer provide"
        )
    try:
        pool.Add(file_proto)
    except (TypeError, ValueError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise UnusableSchemaError(
            f"Protobuf schema {schema_id}: {file_proto.name} is not a valid file: {first}"
        ) from None


def _has_file(pool: descriptor_pool.DescriptorPool, name: str) -> bool:
    try:
        pool.FindFileByName(name)
    except KeyError:
        return False
    return True


class _TooManyFieldsError(Exception):
    """More than :data:`MAX_FIELDS` paths listed."""


def _listed_fields(
    message: Descriptor, schema_id: int, options_view: type[Message]
) -> dict[str, FieldInfo]:
    """The field paths of ``message`` (:func:`_walk`). Raises
    :class:`UnusableSchemaError` when there are more than :data:`MAX_FIELDS`."""
    fields: dict[str, FieldInfo] = {}
    try:
        _walk(message, "", 1, fields, options_view)
    except _TooManyFieldsError:
        raise UnusableSchemaError(
            f"Protobuf schema {schema_id}: {message.full_name} has more than {MAX_FIELDS} "
            f"field paths in its {MAX_DEPTH} levels of nested messages (a message that "
            "holds itself more than once grows them by that factor at each level)"
        ) from None
    return fields


def _walk(
    message: Descriptor,
    prefix: str,
    depth: int,
    fields: dict[str, FieldInfo],
    options_view: type[Message],
) -> None:
    if depth > MAX_DEPTH:
        return
    for field in message.fields:
        if len(fields) >= MAX_FIELDS:
            raise _TooManyFieldsError
        path = prefix + field.name
        tags = _tags(field, options_view)
        if _is_map_field(field):
            key: Any = field.message_type.fields_by_name["key"]  # type: ignore[union-attr]
            named = key.type == key.TYPE_STRING
            fields[path] = FieldInfo(path, "map", True, tags, keyed_by_name=named)
            continue
        kind = _KINDS.get(field.type, "other")
        if field.is_repeated:
            fields[path] = FieldInfo(path, "list", True, tags)
            path += "[*]"
        emptiable = not field.is_required  # a list item can always be removed
        fields[path] = FieldInfo(path, kind, emptiable, () if field.is_repeated else tags)
        if field.message_type is not None:
            _walk(field.message_type, path + ".", depth + 1, fields, options_view)


def _tags(field: FieldDescriptor, options_view: type[Message]) -> tuple[str, ...]:
    if not field.has_options:
        return ()
    view: Any = options_view.FromString(field.GetOptions().SerializeToString())
    return tuple(view.field_meta.tags)


def _is_map_field(field: FieldDescriptor) -> bool:
    return (
        field.is_repeated
        and field.message_type is not None
        and field.message_type.GetOptions().map_entry
    )


def _is_map(container: Any) -> bool:
    return hasattr(container, "keys")


def _message_indexes(body: bytes) -> tuple[tuple[int, ...], int]:
    """The message indexes at the start of ``body`` and where the message starts."""
    if body[:1] == b"\x00":
        return (0,), 1  # the common case, written as one zero byte
    count, offset = _zigzag(body, 0)
    if not 0 < count <= _MAX_INDEXES:
        raise DecodeError("body has no valid Protobuf message-index list")
    indexes = []
    for _ in range(count):
        index, offset = _zigzag(body, offset)
        indexes.append(index)
    return tuple(indexes), offset


def _zigzag(body: bytes, offset: int) -> tuple[int, int]:
    try:
        value, offset = varint(body, offset, len(body))
    except DecodeError:
        raise DecodeError("body has no valid Protobuf message-index list") from None
    return (value >> 1) ^ -(value & 1), offset


_UNSET = object()
"""What a path through a message field that is not set leads to: nothing to clear."""


def _clear(
    message: Message, location: Location, removals: dict[int, tuple[Any, set[Any]]]
) -> str | None:
    """Clear the field at ``location`` (or note the list item or map entry to delete);
    why not, when it cannot be."""
    if not location:
        return "a redaction names the whole Protobuf record"
    current: Any = message
    try:
        for part in location[:-1]:
            current = _child(current, part)
            if current is _UNSET:
                return None
        last = location[-1]
        if isinstance(current, Message):
            field = _field(current, last)
            if field.is_required:
                # Cleared, the message cannot be written (proto2): the record is dropped.
                return f"Protobuf field {field.full_name} is required: it cannot be cleared"
            current.ClearField(field.name)
        else:
            _child(current, last)
            removals.setdefault(id(current), (current, set()))[1].add(last)
    except LookupError:
        return f"Protobuf {message.DESCRIPTOR.full_name} has no value at a redacted location"
    return None


def _child(current: Any, part: str | int) -> Any:
    """The value below ``current`` (a message, a list or a map) at ``part``."""
    if isinstance(current, Message):
        field = _field(current, part)
        unset = not field.is_repeated and field.message_type is not None
        if unset and not current.HasField(field.name):
            return _UNSET
        return getattr(current, field.name)
    if _is_map(current):
        if part not in current:
            raise LookupError(part)
        return current[part]
    if not isinstance(part, int) or not 0 <= part < len(current):
        raise LookupError(part)
    return current[part]


def _field(message: Message, part: str | int) -> FieldDescriptor:
    # Any: the stubs tell the pure-Python and the upb descriptor classes apart.
    descriptor: Any = message.DESCRIPTOR
    field: FieldDescriptor | None = (
        descriptor.fields_by_name.get(part) if isinstance(part, str) else None
    )
    if field is None:
        raise LookupError(part)
    return field


Convert = Callable[[Any], Any]
"""Turns one field's value (as the message's attribute gives it) into its view."""


class _FieldView(NamedTuple):
    name: str
    presence: bool
    """Whether the field can be unset (then its view is ``None``)."""
    convert: Convert | None
    """``None``: a scalar, taken as it is."""
    empty_is_unset: bool
    """A proto3 ``string`` or ``bytes`` without presence: the wire holds nothing for
    ``""``, so an empty value is a value not given (``None``), not an empty identifier."""


class _Views:
    """Views of messages. What each field of a message type needs is worked out once:
    asking a upb descriptor about a field costs more than reading the field (2.8 µs for
    the sample event's view this way, 6.0 µs walking ``ListFields`` and descriptors)."""

    def __init__(self) -> None:
        self._shapes: dict[str, tuple[_FieldView, ...]] = {}

    def of(self, message: Message) -> dict[str, Any]:
        descriptor: Any = message.DESCRIPTOR  # the stubs know two Descriptor classes
        shape = self._shapes.get(descriptor.full_name)
        if shape is None:
            shape = self._shapes[descriptor.full_name] = self._shape(descriptor)
        view: dict[str, Any] = {}
        for name, presence, convert, empty_is_unset in shape:
            if presence and not message.HasField(name):
                view[name] = None
            else:
                value = getattr(message, name)
                if convert is not None:
                    value = convert(value)
                elif empty_is_unset and not value:
                    value = None
                view[name] = value
        return view

    def _shape(self, descriptor: Descriptor) -> tuple[_FieldView, ...]:
        return tuple(
            _FieldView(
                field.name,
                field.has_presence,
                self._convert(field),
                not field.has_presence
                and not field.is_repeated
                and field.type in (field.TYPE_STRING, field.TYPE_BYTES),
            )
            for field in descriptor.fields
        )

    def _convert(self, field: FieldDescriptor) -> Convert | None:
        if _is_map_field(field):
            value_field: Any = field.message_type.fields_by_name["value"]  # type: ignore[union-attr]
            each = self._single(value_field)
            if each is None:
                return dict
            convert_value: Convert = each
            return lambda entries: {key: convert_value(item) for key, item in entries.items()}
        each = self._single(field)
        if field.is_repeated:
            if each is None:
                return list
            convert_item: Convert = each
            return lambda items: [convert_item(item) for item in items]
        return each

    def _single(self, field: FieldDescriptor) -> Convert | None:
        """How one value of ``field`` becomes its view: a message by its own shape, an
        enum by its value's name."""
        if field.message_type is not None:
            return self.of
        enum = field.enum_type
        if enum is not None:
            return lambda number: _enum_name(enum, number)
        return None


def _enum_name(enum: Any, number: int) -> str | int:
    """An enum value's name; the number itself for a value the schema does not name (a
    newer writer's)."""
    named = enum.values_by_number.get(number)
    return named.name if named is not None else number


def _shown_indexes(indexes: Sequence[int]) -> str:
    """Indexes that name no message, as a dead letter may show them: the list when it is
    short and its numbers small, else only how many there are. They are the record's own
    bytes, and a long number among them could be anything, a phone number included."""
    if len(indexes) <= _INDEXES_SHOWN and all(0 <= index < _INDEX_SHOWN_BELOW for index in indexes):
        return str(list(indexes))
    return f"(a list of {len(indexes)}, not shown)"


_INDEXES_SHOWN = 8
_INDEX_SHOWN_BELOW = 10_000
