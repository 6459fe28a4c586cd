"""The Protobuf codec: message classes built from a registered serialized descriptor,
message indexes, tags from ``(confluent.field_meta).tags``, a view of plain values, and
fields cleared (docs/formats.md, "Protobuf")."""

from __future__ import annotations

import base64
import copy
from typing import Any

import pytest
from confluent_kafka.schema_registry.confluent import meta_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.message import Message
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.models import DeadLetterReason
from enforcer.core.parse import ParseFailure
from enforcer.core.policy.load import default_policy_bytes, parse_policy
from enforcer.core.record_format import Decoded
from enforcer.formats.codec import Codec, DecodeError, FieldInfo, Location, UnjudgedMessageError
from enforcer.formats.framing import frame
from enforcer.formats.paths import field_of, parse_path
from enforcer.formats.protobuf import MAX_DEPTH, ProtobufCodec, ProtoRecord, protobuf_codec
from enforcer.formats.protobuf_files import is_builtin
from enforcer.formats.reader import build_reader
from enforcer.formats.registry import RegisteredSchema
from enforcer.formats.schema_error import UnusableSchemaError

F = descriptor_pb2.FieldDescriptorProto
# Any: the generated meta_pb2 has no stubs, and the stubs type extension keys only for them.
FIELD_META: Any = meta_pb2.DESCRIPTOR.extensions_by_name["field_meta"]
PHONE_TAGS = ["PII_PHONE", "purpose:security.mfa"]


def _file() -> descriptor_pb2.FileDescriptorProto:
    """``test.formats.Account`` (and a second top-level message, and a nested one), as
    a producer's generated code would describe it."""
    file = descriptor_pb2.FileDescriptorProto(
        name="test/formats/account.proto",
        package="test.formats",
        syntax="proto3",
        dependency=["confluent/meta.proto", "google/protobuf/timestamp.proto"],
    )
    account = file.message_type.add(name="Account")
    account.field.add(name="subject_id", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    phone = account.field.add(name="phone", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    phone.options.Extensions[FIELD_META].tags.extend(PHONE_TAGS)
    emails = account.field.add(name="emails", number=3, type=F.TYPE_STRING, label=F.LABEL_REPEATED)
    emails.options.Extensions[FIELD_META].tags.append("PII_EMAIL")
    account.field.add(
        name="contact",
        number=4,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_OPTIONAL,
        type_name=".test.formats.Account.Contact",
    )
    account.field.add(
        name="devices",
        number=5,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=".test.formats.Account.Contact",
    )
    account.field.add(
        name="at",
        number=6,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_OPTIONAL,
        type_name=".google.protobuf.Timestamp",
    )
    account.field.add(
        name="attrs",
        number=7,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=".test.formats.Account.AttrsEntry",
    )
    account.field.add(
        name="kind",
        number=8,
        type=F.TYPE_ENUM,
        label=F.LABEL_OPTIONAL,
        type_name=".test.formats.Kind",
    )
    account.field.add(name="raw", number=9, type=F.TYPE_BYTES, label=F.LABEL_OPTIONAL)
    account.field.add(name="count", number=10, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    contact = account.nested_type.add(name="Contact")
    email = contact.field.add(
        name="email",
        number=1,
        type=F.TYPE_STRING,
        label=F.LABEL_OPTIONAL,
        proto3_optional=True,
        oneof_index=0,
    )
    email.options.Extensions[FIELD_META].tags.append("PII_EMAIL")
    contact.oneof_decl.add(name="_email")
    contact.field.add(name="verified", number=2, type=F.TYPE_BOOL, label=F.LABEL_OPTIONAL)
    entry = account.nested_type.add(name="AttrsEntry")
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.options.map_entry = True
    kind = file.enum_type.add(name="Kind")
    kind.value.add(name="KIND_UNSPECIFIED", number=0)
    kind.value.add(name="PERSON", number=1)
    other = file.message_type.add(name="Other")
    other.field.add(name="note", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    inner = other.nested_type.add(name="Inner")
    inner.field.add(name="secret", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    return file


def _classes() -> tuple[Any, Any, Any]:
    """The producer's side: message classes from the same descriptor, in a pool of
    their own."""
    pool = descriptor_pool.DescriptorPool()
    for dependency in (descriptor_pb2.DESCRIPTOR, meta_pb2.DESCRIPTOR, timestamp_pb2.DESCRIPTOR):
        proto = descriptor_pb2.FileDescriptorProto()
        dependency.CopyToProto(proto)
        pool.Add(proto)
    pool.Add(_file())
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("test.formats.Account")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("test.formats.Other")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("test.formats.Other.Inner")),
    )


# Any: classes built at run time have no stubs to name their fields.
ACCOUNT, OTHER, INNER = _classes()


def _b64(file: descriptor_pb2.FileDescriptorProto) -> str:
    return base64.b64encode(file.SerializeToString()).decode()


def _codec(schema_id: int = 61) -> ProtobufCodec:
    return protobuf_codec(RegisteredSchema(schema_id, "PROTOBUF", _b64(_file()), ()))


def _account(**fields: Any) -> Any:
    message = ACCOUNT(
        subject_id="acct-1",
        phone="+15550100",
        emails=["a@example.com", "b@example.com", "c@example.com"],
        attrs={"k": "v"},
        kind=1,
        raw=b"\x00\xff",
        count=2**40,
    )
    message.contact.email = "c@example.com"
    message.contact.verified = True
    message.devices.add(email="d@example.com")
    message.devices.add(verified=True)
    message.at.seconds = 1765015200
    for name, value in fields.items():
        setattr(message, name, value)
    return message


VIEW: dict[str, Any] = {
    "subject_id": "acct-1",
    "phone": "+15550100",
    "emails": ["a@example.com", "b@example.com", "c@example.com"],
    "contact": {"email": "c@example.com", "verified": True},
    "devices": [{"email": "d@example.com", "verified": False}, {"email": None, "verified": True}],
    "at": {"seconds": 1765015200, "nanos": 0},
    "attrs": {"k": "v"},
    "kind": "PERSON",
    "raw": b"\x00\xff",
    "count": 2**40,
}


def test_the_codec_is_a_codec() -> None:
    codec: Codec = _codec()
    assert (codec.schema_id, codec.schema_type, codec.record_name) == (
        61,
        "PROTOBUF",
        "test.formats.Account",
    )


def test_fields_of_the_first_message_with_tags_from_field_meta() -> None:
    """Every field can be cleared; tags come from ``(confluent.field_meta).tags``; a
    repeated field's tags are the list's."""
    fields = _codec().fields
    assert fields["phone"] == FieldInfo("phone", "string", True, tuple(PHONE_TAGS))
    assert fields["emails"] == FieldInfo("emails", "list", True, ("PII_EMAIL",))
    assert fields["emails[*]"] == FieldInfo("emails[*]", "string", True, ())
    assert fields["contact"] == FieldInfo("contact", "record", True, ())
    assert fields["contact.email"] == FieldInfo("contact.email", "string", True, ("PII_EMAIL",))
    assert fields["devices[*].email"].tags == ("PII_EMAIL",)
    assert fields["at.seconds"].kind == "int"
    assert [fields[name].kind for name in ("attrs", "kind", "raw", "count")] == [
        "map",
        "enum",
        "bytes",
        "int",
    ]
    assert "note" not in fields


def test_decode_the_first_message_after_a_single_zero_byte() -> None:
    native, view = _codec().decode(b"\x00" + _account().SerializeToString())
    assert view == VIEW
    assert isinstance(native, ProtoRecord)
    assert native.prefix == b"\x00"
    assert native.message.SerializeToString() == _account().SerializeToString()


def test_unset_fields_in_the_view() -> None:
    """Fields with presence that are not set are None, and so are proto3 strings and
    bytes without presence that are empty (the wire cannot tell them from unset); other
    proto3 scalars have their default; repeated and map fields are empty."""
    _, view = _codec().decode(b"\x00")
    assert view == {
        "subject_id": None,
        "phone": None,
        "emails": [],
        "contact": None,
        "devices": [],
        "at": None,
        "attrs": {},
        "kind": "KIND_UNSPECIFIED",
        "raw": None,
        "count": 0,
    }


@pytest.mark.parametrize(
    ("prefix", "message", "field", "value"),
    [
        (b"\x02\x00", ACCOUNT(subject_id="x"), "subject_id", "x"),  # [0] written out in full
    ],
)
def test_message_indexes_choose_the_message(
    prefix: bytes, message: Message, field: str, value: str
) -> None:
    """A zig-zag count then zig-zag indexes: top-level message, then nested ones. The
    prefix is kept and written back."""
    codec = _codec()
    native, decoded = codec.decode(prefix + message.SerializeToString())
    assert isinstance(native, ProtoRecord)
    assert native.prefix == prefix
    assert decoded[field] == value
    assert codec.encode_without(native, [(field,)]) == prefix
    assert codec.encode_without(native, []) == prefix + message.SerializeToString()


@pytest.mark.parametrize(
    ("prefix", "message", "name", "field"),
    [
        (b"\x02\x02", OTHER(note="n"), "test.formats.Other", "note"),  # [1]: the second
        (b"\x04\x02\x00", INNER(secret="s"), "test.formats.Other.Inner", "secret"),  # noqa: S106
        (b"\x04\x00\x00", ACCOUNT.Contact(email="e"), "test.formats.Account.Contact", "email"),
    ],
)
def test_another_message_of_the_file_has_a_codec_of_its_own(
    prefix: bytes, message: Message, name: str, field: str
) -> None:
    """The first message's codec judges only it: its fields and tags are not another
    message's (framed under the same schema id, as a producer of that message does).
    The codec the body's indexes name has that message's fields, tags and record
    name; the prefix is kept and written back."""
    codec = _codec()
    body = prefix + message.SerializeToString()
    with pytest.raises(UnjudgedMessageError) as raised:
        codec.decode(body)
    assert str(raised.value) == (
        f"message indexes [{prefix[1] // 2}{', 0' if len(prefix) == 3 else ''}] name Protobuf "
        f"message {name}: this codec judges only test.formats.Account"
    )
    other = codec.message_codec(body)
    assert (other.schema_id, other.record_name) == (61, name)
    assert codec.message_codec(body) is other
    assert set(other.fields) == {f.name for f in message.DESCRIPTOR.fields}
    native, view = other.decode(body)
    assert view[field] == getattr(message, field)
    assert other.encode_without(native, [(field,)]) == prefix
    assert other.encode_without(native, []) == body
    assert codec.message_codec(b"\x00") is codec
    assert codec.message_codec(b"\x02\x06") is codec  # names no message: its decode says so


def _event_file() -> descriptor_pb2.FileDescriptorProto:
    """Two event messages in one file, each with a tagged phone: ``x.Account`` and
    ``x.MfaEnrolled``; and ``x.Contacts``, whose tagged phones are in a map's values."""
    file = descriptor_pb2.FileDescriptorProto(
        name="x/events.proto", package="x", syntax="proto3", dependency=["confluent/meta.proto"]
    )
    for name, phone in (("Account", "phone"), ("MfaEnrolled", "mfa_phone")):
        message = file.message_type.add(name=name)
        for number, field in enumerate(("subject_id", "occurred_at", phone), start=1):
            message.field.add(name=field, number=number, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
        message.field[2].options.Extensions[FIELD_META].tags.extend(PHONE_TAGS)
    contacts = file.message_type.add(name="Contacts")
    for number, field in enumerate(("subject_id", "occurred_at"), start=1):
        contacts.field.add(name=field, number=number, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    contacts.field.add(
        name="phones",
        number=3,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=".x.Contacts.PhonesEntry",
    )
    entry = contacts.nested_type.add(name="PhonesEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(
        name="value",
        number=2,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_OPTIONAL,
        type_name=".x.MfaEnrolled",
    )
    return file


def _event_classes() -> tuple[Any, Any]:
    pool = descriptor_pool.DescriptorPool()
    for dependency in (descriptor_pb2.DESCRIPTOR, meta_pb2.DESCRIPTOR):
        proto = descriptor_pb2.FileDescriptorProto()
        dependency.CopyToProto(proto)
        pool.Add(proto)
    pool.Add(_event_file())
    return (
        message_factory.GetMessageClass(pool.FindMessageTypeByName("x.Account")),
        message_factory.GetMessageClass(pool.FindMessageTypeByName("x.MfaEnrolled")),
    )


EVENT, MFA_ENROLLED = _event_classes()


class _Lookup:
    def __init__(self, codec: Codec) -> None:
        self._codec = codec

    def codec(self, schema_id: int) -> Codec | None:
        return self._codec if schema_id == self._codec.schema_id else None


def _event_reader() -> Any:
    codec = protobuf_codec(RegisteredSchema(7, "PROTOBUF", _b64(_event_file()), ()))
    reader = build_reader(parse_policy(default_policy_bytes(), origin="t.yaml"), _Lookup(codec))
    assert reader is not None
    return reader


def test_records_of_each_message_are_judged_by_its_own_fields() -> None:
    """Through the reader, on one topic, in turns: each record by its message's tagged
    fields (and a mapping naming that message in ``records`` would match it); a
    message whose tagged fields cannot be listed is an ``unknown-schema`` dead letter,
    the reason named, no value."""
    reader = _event_reader()
    fields = {"subject_id": "u1", "occurred_at": "2019-10-08T12:00:00Z"}
    account = frame(7, b"\x00" + EVENT(phone="+15550100", **fields).SerializeToString())
    enrolled = frame(
        7, b"\x02\x02" + MFA_ENROLLED(mfa_phone="+15550199", **fields).SerializeToString()
    )
    contacts = frame(7, b"\x02\x04" + b"\x0a\x02u1")
    for _ in range(2):
        first = reader.read("t", 0, 1, account)
        assert isinstance(first, Decoded)
        assert [(i.type, i.value) for i in first.event.identifiers] == [("phone", "+15550100")]
        second = reader.read("t", 0, 2, enrolled)
        assert isinstance(second, Decoded)
        assert [(i.type, i.value, i.purposes) for i in second.event.identifiers] == [
            ("phone", "+15550199", ["security.mfa"])
        ]
        assert second.locations == ("mfa_phone",)
        third = reader.read("t", 0, 3, contacts)
        assert third == ParseFailure(
            DeadLetterReason.UNKNOWN_SCHEMA,
            "schema id 7: message indexes [2] name Protobuf message x.Contacts: the enforcer "
            "cannot judge it: Protobuf schema 7: map x.Contacts.phones holds tagged fields in "
            "its values, and the enforcer reads no field inside a map",
        )
    redacted = reader.redact(second, frozenset({0}))
    assert redacted == frame(7, b"\x02\x02" + MFA_ENROLLED(**fields).SerializeToString())


def _zigzag_varint(value: int) -> bytes:
    zigzag, out = value << 1, bytearray()
    while zigzag >= 0x80:
        out.append(zigzag & 0x7F | 0x80)
        zigzag >>= 7
    return bytes([*out, zigzag])


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "no valid Protobuf message-index list"),
        (b"\x80", "no valid Protobuf message-index list"),
        (b"\x01", "no valid Protobuf message-index list"),  # a count of -1
        (b"\x02\x06", r"message indexes \[3\] name no message"),
        (b"\x04\x00\x0a", r"message indexes \[0, 5\] name no message"),
        # An index as long as a phone number (15551234567, zig-zag encoded) is not shown.
        (
            b"\x02" + _zigzag_varint(15551234567),
            r"message indexes \(a list of 1, not shown\) name no message",
        ),
        (b"\x00\x0a\x05ab", "does not decode as Protobuf test.formats.Account"),
    ],
)
def test_undecodable_bodies_are_decode_errors(body: bytes, why: str) -> None:
    with pytest.raises(DecodeError, match=why):
        _codec().decode(body)


def test_encode_without_clears_fields_and_removes_items() -> None:
    codec = _codec()
    native, view = codec.decode(b"\x00" + _account().SerializeToString())
    body = codec.encode_without(
        native,
        [
            ("phone",),
            ("emails", 0),
            ("emails", 2),
            ("contact", "email"),
            ("devices", 0),
            ("attrs", "k"),
        ],
    )
    assert isinstance(body, bytes)
    assert body[:1] == b"\x00"
    again: Any = ACCOUNT.FromString(body[1:])
    assert again.phone == ""
    assert list(again.emails) == ["b@example.com"]
    assert not again.contact.HasField("email")
    assert again.contact.verified
    assert len(again.devices) == 1
    assert again.devices[0].verified
    assert dict(again.attrs) == {}
    assert view == VIEW  # the decoded message itself is not changed


def test_a_field_below_an_unset_message_is_already_empty() -> None:
    codec = _codec()
    native, _ = codec.decode(b"\x00" + ACCOUNT(subject_id="x").SerializeToString())
    assert (
        codec.encode_without(native, [("contact", "email")])
        == b"\x00" + ACCOUNT(subject_id="x").SerializeToString()
    )


@pytest.mark.parametrize(
    "location", [("nope",), ("emails", 7), ("attrs", "nokey"), ("phone", "x"), ()]
)
def test_a_location_that_names_no_value_is_unredactable(location: Location) -> None:
    codec = _codec()
    native, _ = codec.decode(b"\x00" + _account().SerializeToString())
    result = codec.encode_without(native, [location])
    assert not isinstance(result, bytes)
    assert "acct-1" not in result.why


def test_proto_source_is_not_read() -> None:
    """A schema registered as ``.proto`` text is refused with a reason, not parsed."""
    text = 'syntax = "proto3";\npackage t;\nmessage M { string a = 1; }\n'
    with pytest.raises(UnusableSchemaError, match=r"\.proto source, not a serialized descriptor"):
        protobuf_codec(RegisteredSchema(7, "PROTOBUF", text, ()))


def test_an_import_nobody_provides_makes_the_schema_unusable() -> None:
    file = _file()
    file.dependency.append("company/common.proto")
    with pytest.raises(UnusableSchemaError, match=r"imports company/common\.proto"):
        protobuf_codec(RegisteredSchema(8, "PROTOBUF", _b64(file), ()))


def test_imports_from_the_registry_are_added_first() -> None:
    """A file another registered schema provides (a reference) is named as imported;
    Confluent's and Google's files the reader has are not added twice."""
    common = descriptor_pb2.FileDescriptorProto(
        name="ignored.proto", package="company", syntax="proto3"
    )
    common.message_type.add(name="Email").field.add(
        name="address", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL
    )
    file = descriptor_pb2.FileDescriptorProto(
        name="holder.proto", package="t", syntax="proto3", dependency=["company/common.proto"]
    )
    file.message_type.add(name="Holder").field.add(
        name="email",
        number=1,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_OPTIONAL,
        type_name=".company.Email",
    )
    meta = descriptor_pb2.FileDescriptorProto()
    meta_pb2.DESCRIPTOR.CopyToProto(meta)
    codec = protobuf_codec(
        RegisteredSchema(9, "PROTOBUF", _b64(file), ()),
        [("confluent/meta.proto", _b64(meta)), ("company/common.proto", _b64(common))],
    )
    assert codec.fields["email.address"].kind == "string"
    assert is_builtin("confluent/meta.proto")
    assert not is_builtin("company/common.proto")


_maybe_email = st.none() | st.text(max_size=8)


@st.composite
def _messages(draw: st.DrawFn) -> Any:
    message = ACCOUNT(
        subject_id=draw(st.text(max_size=6)),
        phone=draw(st.text(max_size=8)),
        emails=draw(st.lists(st.text(max_size=6), max_size=4)),
        attrs=draw(st.dictionaries(st.text(max_size=3), st.text(max_size=3), max_size=3)),
        count=draw(st.integers(-(2**63), 2**63 - 1)),
    )
    if draw(st.booleans()):
        message.contact.verified = draw(st.booleans())
        email = draw(_maybe_email)
        if email is not None:
            message.contact.email = email
    for email in draw(st.lists(_maybe_email, max_size=3)):
        device = message.devices.add()
        if email is not None:
            device.email = email
    return message


def _locations(view: dict[str, Any]) -> list[Location]:
    locations: list[Location] = [("phone",), ("subject_id",), ("contact",), ("count",)]
    if view["contact"] is not None:
        locations.append(("contact", "email"))
    locations += [("emails", i) for i in range(len(view["emails"]))]
    locations += [("devices", i) for i in range(len(view["devices"]))]
    locations += [("devices", i, "email") for i in range(len(view["devices"]))]
    locations += [("attrs", key) for key in view["attrs"]]
    return locations


_CLEARED: dict[Location, object] = {("phone",): None, ("subject_id",): None, ("count",): 0}


def _expected(view: Any, locations: list[Location]) -> Any:
    """Cleared: a proto3 string to None (as unset), a number to its default, anything
    with presence to None, list items and map entries gone."""
    chosen = set(locations)
    kept = [loc for loc in locations if not any(loc[:n] in chosen for n in range(1, len(loc)))]
    result = copy.deepcopy(view)

    def parent_of(location: Location) -> Any:
        node = result
        for part in location[:-1]:
            node = node[part]
        return node

    for location in kept:
        if location[0] == "attrs":
            del parent_of(location)[location[-1]]
        elif not isinstance(location[-1], int):
            parent_of(location)[location[-1]] = _CLEARED.get(location)
    for location in sorted((loc for loc in kept if isinstance(loc[-1], int)), reverse=True):
        del parent_of(location)[location[-1]]
    return result


@given(message=_messages(), data=st.data())
def test_decode_of_encode_without_is_the_view_with_those_locations_emptied(
    message: Message, data: st.DataObject
) -> None:
    codec = _codec()
    native, view = codec.decode(b"\x00" + message.SerializeToString())
    locations = data.draw(st.lists(st.sampled_from(_locations(view)), unique=True))
    body = codec.encode_without(native, locations)
    assert isinstance(body, bytes)
    assert codec.decode(body)[1] == _expected(view, locations)


def _tagged(field: Any) -> Any:
    field.options.Extensions[FIELD_META].tags.extend(PHONE_TAGS)
    return field


def _holder(name: str = "h.proto") -> descriptor_pb2.FileDescriptorProto:
    """``h.Holder`` with a subject id; tests add what it holds."""
    file = descriptor_pb2.FileDescriptorProto(
        name=name, package="h", syntax="proto3", dependency=["confluent/meta.proto"]
    )
    holder = file.message_type.add(name="Holder")
    holder.field.add(name="subject_id", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    return file


def _message_field(
    message: Any, name: str, number: int, type_name: str, repeated: bool = False
) -> Any:
    label = F.LABEL_REPEATED if repeated else F.LABEL_OPTIONAL
    return message.field.add(
        name=name, number=number, type=F.TYPE_MESSAGE, label=label, type_name=type_name
    )


def _map_of_phones(tag_the_value: bool) -> descriptor_pb2.FileDescriptorProto:
    file = _holder()
    _message_field(file.message_type[0], "contacts", 2, ".h.Holder.ContactsEntry", repeated=True)
    entry = file.message_type[0].nested_type.add(name="ContactsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    _message_field(entry, "value", 2, ".h.Phone")
    number = file.message_type.add(name="Phone").field.add(
        name="number", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL
    )
    if tag_the_value:
        _tagged(number)
    else:
        _tagged(file.message_type[0].field[1])  # the map's own tags: listed as the map's
    return file


def test_a_tagged_field_in_a_maps_values_makes_the_schema_unusable() -> None:
    """The codec lists no field inside a map: a tagged phone in a map's values would
    never be read, and pass."""
    with pytest.raises(
        UnusableSchemaError,
        match=r"^Protobuf schema 3: map h\.Holder\.contacts holds tagged fields in its values",
    ):
        protobuf_codec(RegisteredSchema(3, "PROTOBUF", _b64(_map_of_phones(True)), ()))
    codec = protobuf_codec(RegisteredSchema(3, "PROTOBUF", _b64(_map_of_phones(False)), ()))
    assert codec.fields["contacts"].tags == tuple(PHONE_TAGS)


def _recursive(tagged: bool) -> descriptor_pb2.FileDescriptorProto:
    """``Holder.node``, a ``Node`` whose ``next`` is a ``Node``, with an email."""
    file = _holder()
    _message_field(file.message_type[0], "node", 2, ".h.Node")
    node = file.message_type.add(name="Node")
    email = node.field.add(name="email", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    if tagged:
        _tagged(email)
    _message_field(node, "next", 2, ".h.Node")
    return file


def test_a_recursive_message_with_tagged_fields_makes_the_schema_unusable() -> None:
    """A record can nest the tagged field deeper than the fields listed; a recursive
    message without tags is read as before."""
    with pytest.raises(
        UnusableSchemaError, match=r"^Protobuf schema 4: h\.Node is recursive and holds tagged"
    ):
        protobuf_codec(RegisteredSchema(4, "PROTOBUF", _b64(_recursive(True)), ()))
    codec = protobuf_codec(RegisteredSchema(4, "PROTOBUF", _b64(_recursive(False)), ()))
    assert "node.next.email" in codec.fields


def _chain(length: int, tag_at: int) -> descriptor_pb2.FileDescriptorProto:
    """``Holder`` holds ``L1``, which holds ``L2``, … ``L<length - 1>``: ``length``
    levels of messages, a tagged phone in the one at level ``tag_at``."""
    file = _holder()
    for level in range(1, length + 1):
        message = file.message_type[0] if level == 1 else file.message_type.add(name=f"L{level}")
        if level < length:
            _message_field(message, "inner", 9, f".h.L{level + 1}")
        if level == tag_at:
            _tagged(
                message.field.add(
                    name="phone", number=8, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL
                )
            )
    return file


@given(length=st.integers(1, 24), data=st.data())
def test_tagged_fields_deeper_than_the_listed_levels_make_the_schema_unusable(
    length: int, data: st.DataObject
) -> None:
    tag_at = data.draw(st.integers(1, length))
    registered = RegisteredSchema(5, "PROTOBUF", _b64(_chain(length, tag_at)), ())
    if tag_at > MAX_DEPTH:
        with pytest.raises(UnusableSchemaError, match="deeper than the 16 levels"):
            protobuf_codec(registered)
    else:
        path = "inner." * (tag_at - 1) + "phone"
        assert protobuf_codec(registered).fields[path].tags == tuple(PHONE_TAGS)


def test_a_tagged_extension_makes_the_schema_unusable() -> None:
    file = _holder()
    file.syntax = "proto2"
    file.message_type[0].field[0].label = F.LABEL_OPTIONAL
    file.message_type[0].extension_range.add(start=100, end=200)
    _tagged(
        file.extension.add(
            name="phone",
            number=100,
            type=F.TYPE_STRING,
            label=F.LABEL_OPTIONAL,
            extendee=".h.Holder",
        )
    )
    with pytest.raises(UnusableSchemaError, match=r"extension h\.phone has tags"):
        protobuf_codec(RegisteredSchema(6, "PROTOBUF", _b64(file), ()))


def _proto2_file() -> descriptor_pb2.FileDescriptorProto:
    """``p2.Account``: a required subject id and phone (tagged), an optional email."""
    file = descriptor_pb2.FileDescriptorProto(
        name="p2.proto", package="p2", syntax="proto2", dependency=["confluent/meta.proto"]
    )
    account = file.message_type.add(name="Account")
    for number, name in enumerate(("subject_id", "phone"), start=1):
        account.field.add(name=name, number=number, type=F.TYPE_STRING, label=F.LABEL_REQUIRED)
    _tagged(account.field[1])
    account.field.add(name="email", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    return file


def _proto2_codec() -> ProtobufCodec:
    return protobuf_codec(RegisteredSchema(8, "PROTOBUF", _b64(_proto2_file()), ()))


def _proto2_body(**fields: str) -> bytes:
    return b"".join(
        bytes([number << 3 | 2, len(fields[name].encode())]) + fields[name].encode()
        for number, name in enumerate(("subject_id", "phone", "email"), start=1)
        if name in fields
    )


@given(locations=st.lists(st.sampled_from([("phone",), ("subject_id",), ("email",)]), min_size=1))
def test_a_required_field_cannot_be_cleared(locations: list[Location]) -> None:
    """Proto2 cannot write a message without it: the record is dropped with the reason
    (docs/contract.md, ``action_reason``), not an internal error."""
    codec = _proto2_codec()
    native, _ = codec.decode(b"\x00" + _proto2_body(subject_id="u1", phone="+15550100", email="e"))
    result = codec.encode_without(native, locations)
    required = next((loc[0] for loc in locations if loc != ("email",)), None)
    if required is None:
        assert isinstance(result, bytes)
        assert codec.decode(result)[1]["email"] is None
    else:
        assert not isinstance(result, bytes)
        assert (
            result.why == f"Protobuf field p2.Account.{required} is required: it cannot be cleared"
        )


def test_a_required_field_is_listed_as_not_emptiable() -> None:
    fields = _proto2_codec().fields
    assert [fields[name].emptiable for name in ("subject_id", "phone", "email")] == [
        False,
        False,
        True,
    ]


def test_a_body_without_a_required_field_is_undecodable() -> None:
    """As other runtimes refuse it; a message without it is never written again."""
    codec = _proto2_codec()
    with pytest.raises(
        DecodeError,
        match=r"^body does not decode as Protobuf p2\.Account: a required field is missing$",
    ):
        codec.decode(b"\x00" + _proto2_body(subject_id="u1", email="e"))
    native, _ = codec.decode(b"\x00" + _proto2_body(subject_id="u1", phone="p", email="e"))
    assert isinstance(native, ProtoRecord)
    native.message.ClearField("phone")
    result = codec.encode_without(native, [("email",)])
    assert not isinstance(result, bytes)
    assert result.why == "Protobuf p2.Account lacks a required field: it cannot be written again"


def test_a_mapping_naming_another_message_reads_its_records() -> None:
    """``records: [x.MfaEnrolled]`` matches the records of the file's second message."""
    text = (
        default_policy_bytes()
        + b"""
formats:
  mappings:
    - name: enrolled
      records: [x.MfaEnrolled]
      subject_id: subject_id
      occurred_at: occurred_at
      schema_tags: false
      identifiers:
        - {path: mfa_phone, type: email, purposes: [marketing.advertising]}
"""
    )
    codec = protobuf_codec(RegisteredSchema(7, "PROTOBUF", _b64(_event_file()), ()))
    reader = build_reader(parse_policy(text, origin="t.yaml"), _Lookup(codec))
    assert reader is not None
    fields = {"subject_id": "u1", "occurred_at": "2019-10-08T12:00:00Z"}
    body = MFA_ENROLLED(mfa_phone="a@b.c", **fields).SerializeToString()
    out = reader.read("t", 0, 1, frame(7, b"\x02\x02" + body))
    assert isinstance(out, Decoded)
    assert [(i.type, i.purposes) for i in out.event.identifiers] == [
        ("email", ["marketing.advertising"])
    ]


def test_how_each_message_is_read_is_found_once() -> None:
    """Records of a file's messages in turns on one topic: each message's mapping is
    found once, not again at every turn (what was found stays the same object)."""
    reader = _event_reader()
    fields = {"subject_id": "u1", "occurred_at": "2019-10-08T12:00:00Z"}
    account = frame(7, b"\x00" + EVENT(**fields).SerializeToString())
    enrolled = frame(7, b"\x02\x02" + MFA_ENROLLED(**fields).SerializeToString())
    first: dict[Any, Any] = {}
    for offset in range(3):
        assert isinstance(reader.read("t", 0, offset, account), Decoded)
        assert isinstance(reader.read("t", 0, offset, enrolled), Decoded)
        found = dict(reader._framed)
        first = first or found
        assert found.keys() == first.keys()
        assert all(found[key] is first[key] for key in first)
    assert sorted(name for _, _, name in first) == ["x.Account", "x.MfaEnrolled"]


def _tree(children: int) -> descriptor_pb2.FileDescriptorProto:
    """``h.Holder`` holds a ``Node`` that holds ``children`` nodes and a name."""
    file = _holder()
    _message_field(file.message_type[0], "root", 2, ".h.Node")
    node = file.message_type.add(name="Node")
    for number in range(1, children + 1):
        _message_field(node, f"c{number}", number, ".h.Node")
    node.field.add(name="name", number=9, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    return file


def test_a_schema_with_too_many_field_paths_is_unusable() -> None:
    """Three nodes in a node: 3^15 paths, listed for minutes (a worker held); a binary
    tree's 2^15 nodes are listed as before."""
    with pytest.raises(UnusableSchemaError, match=r"h\.Holder has more than 250000 field paths"):
        protobuf_codec(RegisteredSchema(3, "PROTOBUF", _b64(_tree(3)), ()))
    fields = protobuf_codec(RegisteredSchema(3, "PROTOBUF", _b64(_tree(2)), ())).fields
    assert "root" + ".c2" * 14 + ".name" in fields


def test_a_path_cannot_name_an_entry_of_a_map_keyed_by_numbers() -> None:
    """A map keyed by numbers is read with number keys, which no path's name is: a path
    below it (``codes.1``) would find nothing and the identifier there would pass
    unjudged, so it is a problem of the mapping, not a field. A map keyed by strings is
    named as before."""
    file = _file()
    account = file.message_type[0]
    account.field.add(
        name="codes",
        number=11,
        type=F.TYPE_MESSAGE,
        label=F.LABEL_REPEATED,
        type_name=".test.formats.Account.CodesEntry",
    )
    entry = account.nested_type.add(name="CodesEntry")
    entry.field.add(name="key", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.options.map_entry = True
    fields = protobuf_codec(RegisteredSchema(62, "PROTOBUF", _b64(file), ())).fields
    assert fields["codes"].keyed_by_name is False
    assert fields["attrs"].keyed_by_name is True
    assert field_of(fields, parse_path("codes.1")) == (
        "'codes' is a map whose keys are not strings: a path cannot name its entries"
    )
    assert field_of(fields, parse_path("attrs.mfa")) == fields["attrs"]
