"""A Protobuf body is forwarded only when it holds nothing the parsed message does not
show: unknown fields, copies of a field written twice, two members of one oneof, a map
key written twice are dead letters (``undecodable``); every valid encoding an ordinary
serializer writes still passes (docs/formats.md, "Protobuf")."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from confluent_kafka.schema_registry.confluent import meta_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from hypothesis import given
from hypothesis import strategies as st

from enforcer.formats.codec import DecodeError
from enforcer.formats.protobuf import ProtobufCodec, protobuf_codec
from enforcer.formats.protobuf_wire import MAX_CHECKED_FIELDS
from enforcer.formats.registry import RegisteredSchema

from .test_codec_protobuf import ACCOUNT, _codec, _messages

F = descriptor_pb2.FieldDescriptorProto


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            return bytes(out + bytes([byte]))
        out.append(byte | 0x80)


def _tag(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def _length(number: int, data: bytes) -> bytes:
    return _tag(number, 2) + _varint(len(data)) + data


def _chunks(data: bytes) -> list[tuple[int, bytes]]:
    """The body's top-level fields: (field number, the field's bytes with its tag)."""
    chunks, pos = [], 0
    while pos < len(data):
        start = pos
        tag, pos = _read_varint(data, pos)
        wire_type = tag & 7
        if wire_type == 0:
            _, pos = _read_varint(data, pos)
        elif wire_type == 1:
            pos += 8
        elif wire_type == 5:
            pos += 4
        else:
            assert wire_type == 2
            size, pos = _read_varint(data, pos)
            pos += size
        chunks.append((tag >> 3, data[start:pos]))
    return chunks


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def _decodes(codec: ProtobufCodec, payload: bytes) -> Any:
    return codec.decode(b"\x00" + payload)[1]


@given(message=_messages(), data=st.data())
def test_fields_in_any_order_pass_with_the_same_view(message: Any, data: st.DataObject) -> None:
    """Another serializer's field order (a repeated field's items, map entries in any
    order among themselves) is read as the same message, the body kept."""
    codec = _codec()
    payload = message.SerializeToString()
    chunks = _chunks(payload)
    order = data.draw(st.permutations(range(len(chunks))))
    # A list keeps its items' order; map entries may come in any order.
    rank = {number: order.index(i) for i, (number, _) in enumerate(chunks)}
    shuffled = sorted(
        enumerate(chunks),
        key=lambda item: (rank[item[1][0]], order.index(item[0]) if item[1][0] == 7 else 0),
    )
    reordered = b"".join(chunk for _, (_, chunk) in shuffled)
    assert _decodes(codec, reordered) == _decodes(codec, payload)


@given(message=_messages(), at=st.integers(0, 30), number=st.integers(11, 2**29 - 1))
def test_an_unknown_field_anywhere_is_a_dead_letter(message: Any, at: int, number: int) -> None:
    """A field number the schema does not have (a newer writer's ``backup_phone``),
    between any two fields: a consumer with that schema would read it unjudged."""
    if 19000 <= number <= 19999:
        number = 99  # reserved for the runtime itself: not a body anyone parses
    chunks = [chunk for _, chunk in _chunks(message.SerializeToString())]
    at = min(at, len(chunks))
    body = b"".join(chunks[:at]) + _length(number, b"+15550100") + b"".join(chunks[at:])
    with pytest.raises(
        DecodeError, match=r"holds a field Protobuf test\.formats\.Account does not"
    ):
        _decodes(_codec(), body)


def test_an_unknown_field_in_a_nested_message_is_a_dead_letter() -> None:
    contact = ACCOUNT.Contact(verified=True).SerializeToString() + _length(9, b"+15550100")
    with pytest.raises(DecodeError) as raised:
        _decodes(_codec(), ACCOUNT(subject_id="x").SerializeToString() + _length(4, contact))
    assert "+1555" not in str(raised.value)


def test_a_known_field_with_another_wire_type_is_a_dead_letter() -> None:
    with pytest.raises(DecodeError, match="wire type the schema does not name"):
        _decodes(_codec(), _tag(2, 5) + b"\x01\x02\x03\x04")


@pytest.mark.parametrize(
    "copies",
    [
        [b"+15550100", b""],  # an identifier, then emptied: the empty one is judged
        [b"victim@example.com", b"ok@example.com"],
        [b"a", b"a"],
    ],
)
def test_a_singular_field_written_twice_is_a_dead_letter(copies: list[bytes]) -> None:
    """The runtime keeps the last copy; a consumer whose schema makes the field
    repeated (a wire-compatible change) reads every one."""
    body = ACCOUNT(subject_id="x").SerializeToString() + b"".join(_length(2, c) for c in copies)
    with pytest.raises(DecodeError) as raised:
        _decodes(_codec(), body)
    assert str(raised.value).startswith(
        "body writes field phone of Protobuf test.formats.Account more than once"
    )
    assert "@" not in str(raised.value) and "+1" not in str(raised.value)


def test_a_nested_message_written_twice_is_a_dead_letter() -> None:
    """The runtime merges the copies: an email in the first is replaced by the second's."""
    first = ACCOUNT.Contact(email="victim@example.com").SerializeToString()
    second = ACCOUNT.Contact(email="ok@example.com").SerializeToString()
    with pytest.raises(DecodeError, match=r"field contact of Protobuf test\.formats\.Account"):
        _decodes(_codec(), _length(4, first) + _length(4, second))


def test_repeated_strings_written_one_by_one_pass() -> None:
    body = _length(3, b"a@example.com") + _length(1, b"x") + _length(3, b"b@example.com")
    assert _decodes(_codec(), body)["emails"] == ["a@example.com", "b@example.com"]


def _wire_file() -> descriptor_pb2.FileDescriptorProto:
    """Packable repeated scalars, a oneof, maps keyed by numbers and bools, a proto2
    closed enum."""
    file = descriptor_pb2.FileDescriptorProto(
        name="w.proto", package="w", syntax="proto2", dependency=["confluent/meta.proto"]
    )
    message = file.message_type.add(name="W")
    message.field.add(name="nums", number=1, type=F.TYPE_INT32, label=F.LABEL_REPEATED)
    message.oneof_decl.add(name="choice")
    for number, name in ((2, "a"), (3, "b")):
        message.field.add(
            name=name, number=number, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, oneof_index=0
        )
    for number, name, key_type in ((4, "by_int", F.TYPE_INT32), (5, "by_bool", F.TYPE_BOOL)):
        entry_name = name.title().replace("_", "") + "Entry"
        message.field.add(
            name=name,
            number=number,
            type=F.TYPE_MESSAGE,
            label=F.LABEL_REPEATED,
            type_name=f".w.W.{entry_name}",
        )
        entry = message.nested_type.add(name=entry_name)
        entry.options.map_entry = True
        entry.field.add(name="key", number=1, type=key_type, label=F.LABEL_OPTIONAL)
        entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    message.field.add(
        name="kind", number=6, type=F.TYPE_ENUM, label=F.LABEL_OPTIONAL, type_name=".w.Kind"
    )
    kind = file.enum_type.add(name="Kind")
    kind.value.add(name="ONE", number=1)
    return file


def _wire_codec() -> ProtobufCodec:
    text = base64.b64encode(_wire_file().SerializeToString()).decode()
    return protobuf_codec(RegisteredSchema(5, "PROTOBUF", text, ()))


def _wire_class() -> Any:
    pool = descriptor_pool.DescriptorPool()
    for dependency in (descriptor_pb2.DESCRIPTOR, meta_pb2.DESCRIPTOR):
        proto = descriptor_pb2.FileDescriptorProto()
        dependency.CopyToProto(proto)
        pool.Add(proto)
    pool.Add(_wire_file())
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("w.W"))


W = _wire_class()


@given(nums=st.lists(st.integers(-(2**31), 2**31 - 1), max_size=5), split=st.integers(0, 5))
def test_repeated_scalars_packed_or_not_pass(nums: list[int], split: int) -> None:
    """Packed, one by one, or both (a reader takes either, whatever the schema says)."""
    one_by_one = b"".join(_tag(1, 0) + _varint(n & 0xFFFFFFFFFFFFFFFF) for n in nums[:split])
    packed = b"".join(_varint(n & 0xFFFFFFFFFFFFFFFF) for n in nums[split:])
    body = one_by_one + (_length(1, packed) if packed else b"")
    assert _decodes(_wire_codec(), body)["nums"] == nums


def test_two_members_of_one_oneof_are_a_dead_letter() -> None:
    with pytest.raises(DecodeError, match=r"two members of oneof choice of Protobuf w.W \(a, b\)"):
        _decodes(_wire_codec(), _length(2, b"+15550100") + _length(3, b"x"))


@pytest.mark.parametrize(
    ("number", "first", "second"),
    [
        (4, _tag(1, 0) + _varint(7), _tag(1, 0) + _varint(7)),
        (4, b"", _tag(1, 0) + _varint(0)),  # no key is the default key
        (4, _tag(1, 0) + _varint(2**64 - 1), _tag(1, 0) + _varint(2**32 - 1)),  # both -1
        (5, _tag(1, 0) + _varint(1), _tag(1, 0) + _varint(2)),  # both true
    ],
)
def test_a_map_key_written_twice_is_a_dead_letter(number: int, first: bytes, second: bytes) -> None:
    """The runtime keeps the last entry; a consumer reading entries as a list reads
    both. Keys compare as the runtime reads them."""
    body = _length(number, first + _length(2, b"victim")) + _length(number, second)
    with pytest.raises(DecodeError, match="a key of map by_"):
        _decodes(_wire_codec(), body)


def test_map_entries_with_other_keys_pass() -> None:
    body = _length(4, _tag(1, 0) + _varint(2) + _length(2, b"b")) + _length(
        4, _length(2, b"a") + _tag(1, 0) + _varint(1)
    )
    assert _decodes(_wire_codec(), body)["by_int"] == {2: "b", 1: "a"}
    assert W.FromString(body).by_int == {1: "a", 2: "b"}


def test_a_closed_enum_value_the_schema_does_not_name_is_a_dead_letter() -> None:
    """Proto2 keeps it aside as an unknown field, out of the view."""
    assert _decodes(_wire_codec(), _tag(6, 0) + _varint(1))["kind"] == "ONE"
    with pytest.raises(DecodeError, match="enum value it does not name"):
        _decodes(_wire_codec(), _tag(6, 0) + _varint(5))


def test_an_extension_in_a_body_is_a_dead_letter() -> None:
    """The parsed message holds a declared extension and writes it back, but the view
    does not show it."""
    file = descriptor_pb2.FileDescriptorProto(name="e.proto", package="e", syntax="proto2")
    holder = file.message_type.add(name="Holder")
    holder.field.add(name="subject_id", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    holder.extension_range.add(start=100, end=200)
    file.extension.add(
        name="phone", number=100, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, extendee=".e.Holder"
    )
    text = base64.b64encode(file.SerializeToString()).decode()
    codec = protobuf_codec(RegisteredSchema(6, "PROTOBUF", text, ()))
    assert _decodes(codec, _length(1, b"x")) == {"subject_id": "x"}
    with pytest.raises(DecodeError, match=r"holds a field Protobuf e\.Holder does not have"):
        _decodes(codec, _length(1, b"x") + _length(100, b"+15550100"))


def test_a_body_of_too_many_fields_to_check_one_by_one_is_a_dead_letter() -> None:
    """Written in another order than the runtime writes (so checked field by field,
    about 2 µs each), a crafted body of many small fields would hold a worker: past
    MAX_CHECKED_FIELDS it is undecodable. In the runtime's own order it is compared
    byte for byte and passes, however many fields it has."""
    many = MAX_CHECKED_FIELDS + 1
    unpacked = b"".join(_tag(1, 0) + _varint(7) for _ in range(many))
    with pytest.raises(DecodeError, match="too many to check one by one"):
        _decodes(_wire_codec(), _length(2, b"x") + unpacked)
    canonical = W(nums=[7] * many, a="x").SerializeToString()
    assert len(_decodes(_wire_codec(), canonical)["nums"]) == many
    fewer = b"".join(_tag(1, 0) + _varint(7) for _ in range(MAX_CHECKED_FIELDS - 1))
    assert len(_decodes(_wire_codec(), _length(2, b"x") + fewer)["nums"]) == MAX_CHECKED_FIELDS - 1
