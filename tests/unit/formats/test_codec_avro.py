"""The Avro codec: a registered schema's fields and tags, bodies decoded by fastavro,
and bodies written back with fields set to null (docs/formats.md, "Avro")."""

from __future__ import annotations

import copy
import io
import json
from datetime import UTC, datetime
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.record_format import Unredactable
from enforcer.formats.avro import MAX_DEPTH, AvroCodec, avro_codec
from enforcer.formats.codec import Codec, DecodeError, FieldInfo, Location
from enforcer.formats.registry import RegisteredSchema
from enforcer.formats.schema_error import UnusableSchemaError

PHONE_TAGS = ["PII_PHONE", "purpose:security.mfa"]

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Account",
    "namespace": "test.formats",
    "fields": [
        {"name": "subject_id", "type": "string"},
        {
            "name": "phone",
            "type": ["null", "string"],
            "default": None,
            "confluent:tags": PHONE_TAGS,
        },
        {
            "name": "contact",
            "type": {
                "type": "record",
                "name": "Contact",
                "fields": [
                    {"name": "email", "type": ["null", "string"], "confluent:tags": ["PII_EMAIL"]},
                    {"name": "verified", "type": "boolean"},
                ],
            },
        },
        {"name": "backup", "type": ["null", "Contact"], "default": None},
        {"name": "phones", "type": {"type": "array", "items": "string"}},
        {
            "name": "devices",
            "type": {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Device",
                    "fields": [
                        {"name": "id", "type": ["null", "string"]},
                        {"name": "n", "type": "long"},
                    ],
                },
            },
        },
        {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["A", "B"]}},
        {"name": "raw", "type": "bytes"},
        {"name": "score", "type": "double"},
        {"name": "attrs", "type": {"type": "map", "values": "string"}},
        {"name": "either", "type": ["string", "long"]},
    ],
}

RECORD: dict[str, Any] = {
    "subject_id": "acct-1",
    "phone": "+15550100",
    "contact": {"email": "a@example.com", "verified": True},
    "backup": {"email": "b@example.com", "verified": False},
    "phones": ["+15550101", "+15550102", "+15550103"],
    "devices": [{"id": "d-1", "n": 1}, {"id": None, "n": 2}],
    "at": datetime(2026, 12, 6, 10, 0, tzinfo=UTC),
    "kind": "B",
    "raw": b"\x00\xff",
    "score": 0.5,
    "attrs": {"k": "v"},
    "either": 7,
}


def _codec(
    schema: Any = SCHEMA, schema_id: int = 41, referenced: tuple[str, ...] = ()
) -> AvroCodec:
    return avro_codec(RegisteredSchema(schema_id, "AVRO", json.dumps(schema), ()), referenced)


def _body(record: dict[str, Any], schema: Any = SCHEMA) -> bytes:
    stream = io.BytesIO()
    fastavro.schemaless_writer(stream, fastavro.parse_schema(schema), record)
    return stream.getvalue()


def test_the_codec_is_a_codec() -> None:
    """It has what the record reader asks of a schema format."""
    codec: Codec = _codec()
    assert (codec.schema_id, codec.schema_type, codec.record_name) == (
        41,
        "AVRO",
        "test.formats.Account",
    )


def test_fields_every_path_with_kind_emptiable_and_tags() -> None:
    """Every field is listed by its path, records descended (a named type reused is
    descended again under its new path), list items as ``[*]``."""
    fields = _codec().fields
    assert fields["subject_id"] == FieldInfo("subject_id", "string", False, ())
    assert fields["phone"] == FieldInfo("phone", "string", True, tuple(PHONE_TAGS))
    assert fields["contact"] == FieldInfo("contact", "record", False, ())
    assert fields["contact.email"] == FieldInfo("contact.email", "string", True, ("PII_EMAIL",))
    assert fields["backup"] == FieldInfo("backup", "record", True, ())
    assert fields["backup.email"].tags == ("PII_EMAIL",)
    assert fields["phones"] == FieldInfo("phones", "list", False, ())
    assert fields["phones[*]"] == FieldInfo("phones[*]", "string", True, ())
    assert fields["devices[*]"].kind == "record"
    assert fields["devices[*].id"] == FieldInfo("devices[*].id", "string", True, ())
    assert fields["devices[*].n"] == FieldInfo("devices[*].n", "int", False, ())
    # A logical type is its Python object in the view, not its base type.
    assert fields["at"].kind == "other"
    assert [fields[name].kind for name in ("kind", "raw", "score", "attrs", "either")] == [
        "enum",
        "bytes",
        "float",
        "map",
        "other",
    ]


def test_a_recursive_record_is_listed_to_a_bounded_depth() -> None:
    """A record that holds itself is cut at MAX_DEPTH levels instead of recursing."""
    schema = {
        "type": "record",
        "name": "Node",
        "fields": [
            {"name": "email", "type": ["null", "string"]},
            {"name": "next", "type": ["null", "Node"]},
        ],
    }
    fields = _codec(schema).fields
    deepest = max(fields, key=lambda path: path.count("."))
    assert deepest.count(".") == MAX_DEPTH - 1
    assert "next.next.email" in fields


def test_decode_gives_fastavros_record_as_native_and_view() -> None:
    native, view = _codec().decode(_body(RECORD))
    assert view == RECORD
    assert isinstance(view["at"], datetime)
    assert isinstance(view["raw"], bytes)
    assert native is view


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"", "EOFError"),
        (b"\x0c" + b"acct", "EOFError"),
        (_body(RECORD) + b"\x00", "1 bytes after"),
    ],
)
def test_undecodable_bodies_are_decode_errors(body: bytes, why: str) -> None:
    """A body cut short, or with bytes after the record (which no one would have
    judged), does not decode."""
    with pytest.raises(DecodeError, match=why):
        _codec().decode(body)


def test_a_decode_error_names_no_value() -> None:
    """A string whose bytes are not UTF-8 fails without its bytes in the message."""
    schema = {"type": "record", "name": "S", "fields": [{"name": "s", "type": "string"}]}
    with pytest.raises(DecodeError) as error:
        _codec(schema).decode(b"\x06\xffsecret")
    assert "secret" not in str(error.value)
    assert "xff" not in str(error.value)


def test_encode_without_sets_fields_to_null_and_removes_list_items() -> None:
    codec = _codec()
    native, view = codec.decode(_body(RECORD))
    body = codec.encode_without(
        native,
        [("phone",), ("contact", "email"), ("phones", 0), ("phones", 2), ("devices", 0, "id")],
    )
    assert isinstance(body, bytes)
    _, again = codec.decode(body)
    assert again["phone"] is None
    assert again["contact"] == {"email": None, "verified": True}
    assert again["phones"] == ["+15550102"]
    assert again["devices"] == [{"id": None, "n": 1}, {"id": None, "n": 2}]
    assert view == RECORD  # the decoded record itself is not changed


def test_a_whole_nullable_record_is_emptied() -> None:
    codec = _codec()
    native, _ = codec.decode(_body(RECORD))
    body = codec.encode_without(native, [("backup",), ("backup", "email")])
    assert isinstance(body, bytes)
    assert codec.decode(body)[1]["backup"] is None


@pytest.mark.parametrize(
    ("location", "why"),
    [
        (
            ("subject_id",),
            "field subject_id of test.formats.Account is string, which cannot be null",
        ),
        (("contact",), "field contact of test.formats.Account is test.formats.Contact, which"),
        (("devices", 1, "n"), "field devices[*].n of test.formats.Account is long, which"),
        (("either",), "field either of test.formats.Account is [string, long], which"),
    ],
)
def test_a_field_that_cannot_be_null_is_unredactable(location: Location, why: str) -> None:
    """Fail closed: the record cannot be written without the value, and the reason names
    the field and its Avro type, never the value."""
    codec = _codec()
    native, _ = codec.decode(_body(RECORD))
    result = codec.encode_without(native, [("phone",), location])
    assert isinstance(result, Unredactable)
    assert result.why.startswith("Avro " + why)
    assert "acct-1" not in result.why


def test_a_location_that_names_no_value_is_unredactable() -> None:
    codec = _codec()
    native, _ = codec.decode(_body(RECORD))
    assert isinstance(codec.encode_without(native, [("nope",)]), Unredactable)
    assert isinstance(codec.encode_without(native, [("phones", 9)]), Unredactable)


def test_named_types_from_referenced_schemas() -> None:
    """A schema that uses a type another registered schema defines (a reference) is
    built with the referenced texts first."""
    contact = {
        "type": "record",
        "name": "Contact",
        "namespace": "shared",
        "fields": [{"name": "email", "type": ["null", "string"], "confluent:tags": ["PII_EMAIL"]}],
    }
    schema = {
        "type": "record",
        "name": "Holder",
        "fields": [{"name": "contact", "type": "shared.Contact"}],
    }
    codec = _codec(schema, referenced=(json.dumps(contact),))
    assert codec.fields["contact.email"].tags == ("PII_EMAIL",)
    full = {"type": "record", "name": "Holder", "fields": [{"name": "contact", "type": contact}]}
    _, view = codec.decode(_body({"contact": {"email": "x@example.com"}}, full))
    assert view == {"contact": {"email": "x@example.com"}}
    with pytest.raises(UnusableSchemaError, match="does not parse"):
        _codec(schema)  # without the reference, shared.Contact is unknown


@pytest.mark.parametrize("text", ["{not json", '{"type": "record", "fields": []}', '"nosuchtype"'])
def test_a_schema_that_does_not_parse_is_unusable(text: str) -> None:
    with pytest.raises(UnusableSchemaError, match="Avro schema 5 does not parse"):
        avro_codec(RegisteredSchema(5, "AVRO", text, ()))


_EMPTY = {"type": "record", "name": "Empty", "fields": []}
_NOTHING = {"type": "fixed", "name": "Nothing", "size": 0}


def _holder(field_type: Any) -> dict[str, Any]:
    return {"type": "record", "name": "Holder", "fields": [{"name": "f", "type": field_type}]}


@pytest.mark.parametrize(
    ("field_type", "where"),
    [
        ({"type": "array", "items": "null"}, "f[*]"),
        ({"type": "array", "items": _NOTHING}, "f[*]"),
        ({"type": "array", "items": _EMPTY}, "f[*]"),
        # A record of two fields of the same empty record is empty too.
        (
            {
                "type": "array",
                "items": {
                    "type": "record",
                    "name": "Pair",
                    "fields": [{"name": "a", "type": _EMPTY}, {"name": "b", "type": "Empty"}],
                },
            },
            "f[*]",
        ),
        (["null", {"type": "map", "values": {"type": "array", "items": "null"}}], "f{*}[*]"),
        (
            {"type": "array", "items": {"type": "array", "items": {"type": "null"}}},
            "f[*][*]",
        ),
    ],
)
def test_a_list_of_items_of_no_bytes_is_unusable(field_type: Any, where: str) -> None:
    """A few bytes could announce 2^63 items that each take no bytes, and fastavro
    would read them for ever: such a schema is refused when it is built (its records
    become unknown-schema dead letters)."""
    with pytest.raises(UnusableSchemaError, match="encode in no bytes") as raised:
        _codec(_holder(field_type), schema_id=6)
    assert f"({where})" in str(raised.value)
    assert "Avro schema 6" in str(raised.value)


@pytest.mark.parametrize(
    "field_type",
    [
        {"type": "array", "items": ["null", "string"]},  # a union's index is a byte
        {"type": "map", "values": "null"},  # each entry has a key
        {"type": "array", "items": {"type": "enum", "name": "One", "symbols": ["A"]}},
        {"type": "array", "items": {"type": "fixed", "name": "Byte", "size": 1}},
        {"type": "array", "items": {"type": "array", "items": "long"}},
        {
            "type": "array",
            "items": {
                "type": "record",
                "name": "Node",
                "fields": [
                    {"name": "nothing", "type": "null"},
                    {"name": "children", "type": {"type": "array", "items": "Node"}},
                ],
            },
        },
        _EMPTY,  # a field of no bytes outside a list: one per record, bounded
    ],
)
def test_lists_whose_items_take_bytes_are_usable(field_type: Any) -> None:
    codec = _codec(_holder(field_type))
    assert "f" in codec.fields


_PHONE_RECORD = {
    "type": "record",
    "name": "Phone",
    "fields": [{"name": "number", "type": "string", "confluent:tags": PHONE_TAGS}],
}
_MAIL_RECORD = {
    "type": "record",
    "name": "Mail",
    "fields": [{"name": "address", "type": "string", "confluent:tags": ["PII_EMAIL"]}],
}


@pytest.mark.parametrize(
    ("field_type", "why"),
    [
        (["null", _PHONE_RECORD, _MAIL_RECORD], "f: a union of several types"),
        ({"type": "map", "values": _PHONE_RECORD}, "f: a map's values"),
        (
            {
                "type": "record",
                "name": "Node",
                "fields": [
                    {"name": "phone", "type": ["null", "string"], "confluent:tags": PHONE_TAGS},
                    {"name": "next", "type": ["null", "Node"]},
                ],
            },
            "deeper than 16 records",
        ),
        (
            {
                "type": "record",
                "name": "Tree",
                "fields": [
                    {"name": "children", "type": {"type": "array", "items": "Tree"}},
                    {"name": "contact", "type": ["null", _MAIL_RECORD]},
                ],
            },
            "deeper than 16 records",
        ),
    ],
)
def test_a_field_tagged_where_it_is_not_read_makes_the_schema_unusable(
    field_type: Any, why: str
) -> None:
    """A tagged field the enforcer would not read (a record in a union of several, a
    map's values, past the listed depth under a recursive record) would pass unjudged:
    the schema is refused when it is built, its records become unknown-schema dead
    letters."""
    with pytest.raises(UnusableSchemaError, match=why) as raised:
        _codec(_holder(field_type), schema_id=8)
    assert str(raised.value).startswith(
        "Avro schema 8: a tagged field where the enforcer does not read fields ("
    )


@pytest.mark.parametrize(
    "elsewhere",
    [
        {"type": "map", "values": "Phone"},
        ["null", "Phone", {"type": "record", "name": "Other", "fields": []}],
    ],
)
def test_a_record_read_at_one_place_is_checked_at_every_other(elsewhere: Any) -> None:
    """A named record is one definition used at several places: read where a path
    reaches it does not make it read in a map's values or a union of several types."""
    schema = {
        "type": "record",
        "name": "Holder",
        "fields": [
            {"name": "listed", "type": ["null", _PHONE_RECORD]},
            {"name": "elsewhere", "type": elsewhere},
        ],
    }
    with pytest.raises(UnusableSchemaError, match="elsewhere: a"):
        _codec(schema)


def test_a_record_held_again_in_several_of_its_own_fields_is_unusable_not_a_hang() -> None:
    """Three nullable fields of its own type list 3^16 paths: the listing stops at its
    limit and the schema is unusable, tags or none, rather than holding the worker."""
    node = {
        "type": "record",
        "name": "Node",
        "fields": [{"name": name, "type": ["null", "Node"]} for name in ("a", "b", "c")],
    }
    with pytest.raises(UnusableSchemaError, match="more than 200,000 field paths"):
        _codec(node)


def test_untagged_fields_anywhere_and_tagged_fields_the_enforcer_reads_are_usable() -> None:
    """The same shapes without tags are usable, and so are tagged fields where the
    paths reach (a nullable record, a list of records)."""
    plain_union = [
        "null",
        {"type": "record", "name": "A", "fields": [{"name": "x", "type": "int"}]},
    ]
    untagged = {
        "type": "record",
        "name": "Holder",
        "fields": [
            {
                "name": "either",
                "type": [*plain_union, {"type": "record", "name": "B", "fields": []}],
            },
            {"name": "by_key", "type": {"type": "map", "values": "A"}},
            {"name": "phone", "type": ["null", _PHONE_RECORD]},
            {"name": "mails", "type": {"type": "array", "items": _MAIL_RECORD}},
        ],
    }
    codec = _codec(untagged)
    assert codec.fields["phone.number"].tags == tuple(PHONE_TAGS)
    assert codec.fields["mails[*].address"].tags == ("PII_EMAIL",)


_maybe_text = st.none() | st.text(max_size=12)
_records = st.fixed_dictionaries(
    {
        "subject_id": st.text(max_size=8),
        "phone": _maybe_text,
        "contact": st.fixed_dictionaries({"email": _maybe_text, "verified": st.booleans()}),
        "backup": st.none()
        | st.fixed_dictionaries({"email": _maybe_text, "verified": st.booleans()}),
        "phones": st.lists(st.text(max_size=8), max_size=4),
        "devices": st.lists(
            st.fixed_dictionaries({"id": _maybe_text, "n": st.integers(-(2**63), 2**63 - 1)}),
            max_size=3,
        ),
        "at": st.just(RECORD["at"]),
        "kind": st.sampled_from(["A", "B"]),
        "raw": st.binary(max_size=6),
        "score": st.floats(allow_nan=False),
        "attrs": st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=2),
        "either": st.text(max_size=4) | st.integers(-(2**63), 2**63 - 1),
    }
)


def _emptiable_locations(record: dict[str, Any]) -> list[Location]:
    locations: list[Location] = [("phone",), ("contact", "email"), ("backup",)]
    if record["backup"] is not None:
        locations.append(("backup", "email"))
    locations += [("phones", i) for i in range(len(record["phones"]))]
    locations += [("devices", i) for i in range(len(record["devices"]))]
    locations += [("devices", i, "id") for i in range(len(record["devices"]))]
    return locations


def _expected(view: Any, locations: list[Location]) -> Any:
    """The view with the locations emptied, the slow obvious way: a location below
    another one is moot; fields become None, then list items go, highest index first."""
    chosen = set(locations)
    kept = [loc for loc in locations if not any(loc[:n] in chosen for n in range(1, len(loc)))]
    result = copy.deepcopy(view)

    def parent_of(location: Location) -> Any:
        node = result
        for part in location[:-1]:
            node = node[part]
        return node

    for location in kept:
        if not isinstance(location[-1], int):
            parent_of(location)[location[-1]] = None
    for location in sorted((loc for loc in kept if isinstance(loc[-1], int)), reverse=True):
        del parent_of(location)[location[-1]]
    return result


@given(record=_records, data=st.data())
def test_decode_of_encode_without_is_the_view_with_those_locations_emptied(
    record: dict[str, Any], data: st.DataObject
) -> None:
    codec = _codec()
    native, view = codec.decode(_body(record))
    assert view == record
    locations = data.draw(st.lists(st.sampled_from(_emptiable_locations(record)), unique=True))
    body = codec.encode_without(native, locations)
    assert isinstance(body, bytes)
    assert codec.decode(body)[1] == _expected(view, locations)


@pytest.mark.parametrize("name", ["contact.email", "mfa phone", "phones[0]", "a]b", "x\u00a0y"])
def test_a_field_name_no_path_can_write(name: str) -> None:
    """fastavro takes any name: tagged (or holding a tagged field, through a named type)
    the schema is unusable; untagged the field is not listed, so no mapping reads it at
    another place."""
    phone: dict[str, Any] = {"name": "p", "type": "string", "confluent:tags": ["PII_PHONE"]}
    holder: dict[str, Any] = {"type": "record", "name": "Holder", "fields": [phone]}
    field: dict[str, Any]
    for field in (
        {"name": name, "type": "string", "confluent:tags": ["PII_PHONE"]},
        {"name": name, "type": holder},
    ):
        schema: dict[str, Any] = {"type": "record", "name": "A", "fields": [field]}
        with pytest.raises(UnusableSchemaError, match="no path can write it"):
            avro_codec(RegisteredSchema(5, "AVRO", json.dumps(schema), ()))
    schema = {"type": "record", "name": "A", "fields": [{"name": name, "type": "string"}]}
    schema["fields"].append({"name": "ok", "type": "string"})
    codec = avro_codec(RegisteredSchema(5, "AVRO", json.dumps(schema), ()))
    assert list(codec.fields) == ["ok"]
