"""The JSON Schema codec: properties and their tags, bodies parsed and validated, and
bodies written back with properties set to null or removed (docs/formats.md, "JSON
Schema")."""

from __future__ import annotations

import copy
import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.record_format import Unredactable
from enforcer.formats.codec import Codec, DecodeError, FieldInfo, Location
from enforcer.formats.json_schema import JsonRecord, JsonSchemaCodec, json_schema_codec
from enforcer.formats.paths import parse_path
from enforcer.formats.registry import RegisteredSchema
from enforcer.formats.schema_error import UnusableSchemaError

SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "title": "Account",
    "type": "object",
    "definitions": {
        "Phone": {
            "type": "object",
            "properties": {
                "number": {"type": "string", "confluent:tags": ["PII_PHONE"]},
                "label": {"type": ["string", "null"]},
            },
            "required": ["number"],
        }
    },
    "properties": {
        "subject_id": {"type": "string"},
        "email": {
            "type": ["string", "null"],
            "confluent:tags": ["PII_EMAIL", "purpose:security.mfa"],
        },
        "nickname": {"type": "string"},
        "phones": {"type": "array", "items": {"$ref": "#/definitions/Phone"}},
        "primary": {"oneOf": [{"type": "null"}, {"$ref": "#/definitions/Phone"}]},
        "count": {"type": "integer"},
        "score": {"type": "number"},
        "ok": {"type": "boolean"},
        "kind": {"enum": ["a", "b"]},
        "attrs": {"type": "object", "additionalProperties": {"type": "string"}},
    },
    "required": ["subject_id", "email", "count"],
}

RECORD: dict[str, Any] = {
    "subject_id": "acct-1",
    "email": "a@example.com",
    "nickname": "al",
    "phones": [{"number": "+15550101", "label": "home"}, {"number": "+15550102", "label": None}],
    "primary": {"number": "+15550103"},
    "count": 3,
    "score": 0.5,
    "ok": True,
    "kind": "a",
    "attrs": {"k": "v"},
}


def _codec(schema: Any = SCHEMA, schema_id: int = 51) -> JsonSchemaCodec:
    return json_schema_codec(RegisteredSchema(schema_id, "JSON", json.dumps(schema), ()))


def test_the_codec_is_a_codec() -> None:
    codec: Codec = _codec()
    assert (codec.schema_id, codec.schema_type, codec.record_name) == (51, "JSON", "Account")


def test_fields_follow_properties_items_and_local_refs() -> None:
    """Emptiable when the type allows null or the property is not required; a list
    item can always be removed; tags from ``confluent:tags``, through a ``$ref`` too."""
    fields = _codec().fields
    assert fields["subject_id"] == FieldInfo("subject_id", "string", False, ())
    assert fields["email"] == FieldInfo(
        "email", "string", True, ("PII_EMAIL", "purpose:security.mfa")
    )
    assert fields["nickname"] == FieldInfo("nickname", "string", True, ())
    assert fields["phones"] == FieldInfo("phones", "list", True, ())
    assert fields["phones[*]"] == FieldInfo("phones[*]", "record", True, ())
    assert fields["phones[*].number"] == FieldInfo(
        "phones[*].number", "string", False, ("PII_PHONE",)
    )
    assert fields["phones[*].label"].emptiable
    assert fields["primary"] == FieldInfo("primary", "record", True, ())
    assert fields["primary.number"].tags == ("PII_PHONE",)
    assert [fields[name].kind for name in ("count", "score", "ok", "kind", "attrs")] == [
        "int",
        "float",
        "bool",
        "enum",
        "map",
    ]


def test_a_recursive_ref_is_listed_to_a_bounded_depth() -> None:
    schema = {
        "definitions": {
            "Node": {"type": "object", "properties": {"next": {"$ref": "#/definitions/Node"}}}
        },
        "$ref": "#/definitions/Node",
    }
    fields = _codec(schema).fields
    assert "next.next.next" in fields
    assert max(path.count(".") for path in fields) < 16


def test_decode_gives_the_document_validated() -> None:
    body = orjson.dumps(RECORD)
    native, view = _codec().decode(body)
    assert view == RECORD
    assert native == JsonRecord(RECORD, exact=False, body=body, numbers_may_change=False)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b"{not json", "is not JSON"),
        (b"\xff\xfe", "is not JSON"),
        (b'{"subject_id": "acct-1"}', "does not match JSON Schema Account at required"),
        (orjson.dumps({**RECORD, "count": "secret-value"}), "at properties/count/type"),
    ],
)
def test_bodies_that_are_not_json_or_do_not_match_are_decode_errors(body: bytes, why: str) -> None:
    """The message names the schema's rule, never the value that broke it."""
    with pytest.raises(DecodeError, match=why) as error:
        _codec().decode(body)
    assert "secret" not in str(error.value)


@pytest.mark.parametrize(
    "body",
    [
        # orjson keeps the last email, a consumer's parser may keep the first.
        b'{"subject_id": "acct-1", "email": "a@example.com", "count": 1, "email": null}',
        # The same, the second key escaped.
        b'{"subject_id": "acct-1", "email": "a@example.com", "count": 1, "\\u0065mail": null}',
        # Inside a list item.
        b'{"subject_id": "a", "email": null, "count": 1, '
        b'"phones": [{"number": "+15550101", "number": "+15550102"}]}',
    ],
)
def test_a_property_twice_in_one_object_is_a_decode_error(body: bytes) -> None:
    """Which of two equal keys counts is each parser's choice: the enforcer cannot say
    what such a record holds, so it is undecodable, never judged on one reading."""
    with pytest.raises(DecodeError, match="has a property twice in one object"):
        _codec().decode(body)


def test_a_name_written_twice_in_different_objects_is_no_repeat() -> None:
    """Two phones each with their own ``number`` are two objects, not a repeated key."""
    _, view = _codec().decode(orjson.dumps(RECORD))
    assert [phone["number"] for phone in view["phones"]] == ["+15550101", "+15550102"]


def test_a_map_key_is_not_named_in_a_decode_error() -> None:
    """The instance path could name a map's key (data): the schema path is named."""
    body = orjson.dumps({**RECORD, "attrs": {"someone@example.com": 1}})
    with pytest.raises(DecodeError) as error:
        _codec().decode(body)
    assert "someone" not in str(error.value)


def test_integers_beyond_64_bits_are_kept_exactly() -> None:
    """orjson would read them as floats; such a body goes through the exact parser both
    ways."""
    big = 2**70 + 1
    codec = _codec()
    native, view = codec.decode(
        orjson.dumps({**RECORD, "count": 1}).replace(b'"count":1', f'"count":{big}'.encode())
    )
    assert view["count"] == big
    assert isinstance(native, JsonRecord)
    assert native.exact
    assert native.numbers_may_change
    body = codec.encode_without(native, [("email",)])
    assert isinstance(body, bytes)
    assert json.loads(body)["count"] == big


def test_encode_without_nulls_what_may_be_null_and_removes_what_is_not_required() -> None:
    codec = _codec()
    native, view = codec.decode(orjson.dumps(RECORD))
    body = codec.encode_without(
        native, [("email",), ("nickname",), ("phones", 0), ("phones", 1, "label"), ("primary",)]
    )
    assert isinstance(body, bytes)
    again = orjson.loads(body)
    assert again["email"] is None
    assert "nickname" not in again
    assert again["phones"] == [{"number": "+15550102", "label": None}]
    assert again["primary"] is None
    codec.decode(body)  # still valid under its schema
    assert view == RECORD


@pytest.mark.parametrize(
    ("location", "why"),
    [
        (
            ("subject_id",),
            "JSON Schema property subject_id of Account is required and cannot be null",
        ),
        (("phones", 0, "number"), "JSON Schema property phones[*].number of Account is required"),
        (("nope",), "JSON Schema Account has no property nope"),
    ],
)
def test_a_required_property_that_cannot_be_null_is_unredactable(
    location: Location, why: str
) -> None:
    codec = _codec()
    native, _ = codec.decode(orjson.dumps(RECORD))
    result = codec.encode_without(native, [("email",), location])
    assert isinstance(result, Unredactable)
    assert result.why.startswith(why)


@pytest.mark.parametrize("odd", [b"NaN", b"-Infinity", b"1e400", b'"\\ud800"'])
def test_what_is_no_json_is_a_decode_error_beside_a_long_integer(odd: bytes) -> None:
    """A long integer sends the body to the exact parser, which also reads NaN,
    Infinity, 1e400 (as infinity) and a lone surrogate: no JSON a consumer parses,
    written back as ``NaN`` (or, for the surrogate, not written at all)."""
    body = orjson.dumps(RECORD)[:-1] + b',"big":12345678901234567890123,"extra":' + odd + b"}"
    with pytest.raises(DecodeError, match="is not JSON"):
        _codec().decode(body)


@pytest.mark.parametrize(
    "number", [b"0.30000000000000000001", b"12345678901234567.5", b"1e-400", b"2" * 30, b"1.10"]
)
def test_a_redacted_record_keeps_every_number_as_written(number: bytes) -> None:
    body = orjson.dumps(RECORD)[:-1] + b',"amount":' + number + b"}"
    codec = _codec()
    native, _ = codec.decode(body)
    written = codec.encode_without(native, [("email",)])
    assert isinstance(written, bytes)
    again = json.loads(written, parse_float=Decimal, parse_int=Decimal)
    assert again["amount"] == Decimal(number.decode())
    assert again["email"] is None


_EMAIL = {"type": "string", "confluent:tags": ["PII_EMAIL"]}


@pytest.mark.parametrize(
    ("schema", "record", "location", "rule"),
    [
        # null meets the oneOf, not the type beside it
        (
            {"properties": {"email": {**_EMAIL, "oneOf": [{"type": "null"}, {"type": "string"}]}}},
            {"email": "a@example.com"},
            ("email",),
            "properties/email/type",
        ),
        (
            {"properties": {"email": {**_EMAIL, "type": ["string", "null"], "const": "x@y.z"}}},
            {"email": "x@y.z"},
            ("email",),
            "properties/email/const",
        ),
        (
            {"properties": {"emails": {"type": "array", "minItems": 1, "items": _EMAIL}}},
            {"emails": ["a@example.com"]},
            ("emails", 0),
            "properties/emails/minItems",
        ),
        (
            {"minProperties": 2, "properties": {"email": _EMAIL}},
            {"subject_id": "acct-1", "email": "a@example.com"},
            ("email",),
            "minProperties",
        ),
        (
            {"dependentRequired": {"x": ["email"]}, "properties": {"email": _EMAIL}},
            {"email": "a@example.com", "x": 1},
            ("email",),
            "dependentRequired",
        ),
    ],
)
def test_a_record_its_schema_refuses_once_emptied_is_unredactable(
    schema: dict[str, Any], record: dict[str, Any], location: Location, rule: str
) -> None:
    """Emptied, the record would break a rule of its schema beside the type: forwarded,
    a validating consumer (confluent-kafka's JSONDeserializer) would refuse it. It is
    dropped instead, the violation naming the field and the rule, never a value."""
    codec = _codec({"type": "object", **schema})
    native, _ = codec.decode(orjson.dumps(record))
    result = codec.encode_without(native, [location])
    assert isinstance(result, Unredactable)
    assert result.why.endswith(f"emptied does not match the schema at {rule}")
    assert "a@example.com" not in result.why


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("{not json", "is not JSON"),
        ("[1, 2]", "is not an object"),
        ('{"type": 12}', "cannot be used"),
        ('{"$ref": "https://example.com/elsewhere.json"}', "cannot be used"),
    ],
)
def test_schemas_that_cannot_be_used(text: str, why: str) -> None:
    """A ``$ref`` outside the document is refused, not fetched."""
    with pytest.raises(UnusableSchemaError, match=why):
        json_schema_codec(RegisteredSchema(6, "JSON", text, ()))


_maybe_text = st.none() | st.text(max_size=10)
_phone = st.fixed_dictionaries({"number": st.text(max_size=8)}, optional={"label": _maybe_text})
_records = st.fixed_dictionaries(
    {
        "subject_id": st.text(max_size=8),
        "email": _maybe_text,
        "count": st.integers(-(2**63), 2**63 - 1),
    },
    optional={
        "nickname": st.text(max_size=8),
        "phones": st.lists(_phone, max_size=3),
        "primary": st.none() | _phone,
        "score": st.floats(allow_nan=False, allow_infinity=False),
    },
)


def _emptiable(record: dict[str, Any]) -> list[Location]:
    locations: list[Location] = [("email",)]
    locations += [(name,) for name in ("nickname", "primary", "score") if name in record]
    for index, phone in enumerate(record.get("phones", [])):
        locations.append(("phones", index))
        if "label" in phone:
            locations.append(("phones", index, "label"))
    return locations


def _expected(view: Any, locations: list[Location]) -> Any:
    """Nullable properties become null, the others go; list items go last."""
    chosen = set(locations)
    kept = [loc for loc in locations if not any(loc[:n] in chosen for n in range(1, len(loc)))]
    result = copy.deepcopy(view)

    def parent_of(location: Location) -> Any:
        node = result
        for part in location[:-1]:
            node = node[part]
        return node

    for location in kept:
        if location in (("nickname",), ("score",)):
            del parent_of(location)[location[-1]]
        elif not isinstance(location[-1], int):
            parent_of(location)[location[-1]] = None
    for location in sorted((loc for loc in kept if isinstance(loc[-1], int)), reverse=True):
        del parent_of(location)[location[-1]]
    return result


@given(record=_records, data=st.data())
def test_decode_of_encode_without_is_the_view_with_those_locations_emptied(
    record: dict[str, Any], data: st.DataObject
) -> None:
    codec = _codec()
    native, view = codec.decode(orjson.dumps(record))
    assert view == record
    locations = data.draw(st.lists(st.sampled_from(_emptiable(record)), unique=True))
    body = codec.encode_without(native, locations)
    assert isinstance(body, bytes)
    assert codec.decode(body)[1] == _expected(view, locations)


_ODD_NAMES = ["contact.email", "mfa phone", "phones[0]", "a]b", "phone\u00a0x", "", "x\ty"]
_PHONE_TAGS = ["PII_PHONE", "purpose:security.mfa"]


def _with(properties: dict[str, Any], **more: Any) -> dict[str, Any]:
    base = {"subject_id": {"type": "string"}, "occurred_at": {"type": "string"}}
    return {"title": "t.Account", "type": "object", "properties": base | properties, **more}


@pytest.mark.parametrize("name", _ODD_NAMES)
def test_a_tagged_property_no_path_can_name_makes_the_schema_unusable(name: str) -> None:
    """``contact.email`` or ``phones[0]`` as one property's name would be looked up at
    another place, a space or ``]`` breaks every path: its records could not be judged
    (they become ``unknown-schema``), decided once when the codec is built."""
    tagged = {"type": ["string", "null"], "confluent:tags": _PHONE_TAGS}
    with pytest.raises(UnusableSchemaError, match="a name no path can write"):
        _codec(_with({name: tagged}))
    holder = {"type": "object", "properties": {"phone": tagged}}
    with pytest.raises(UnusableSchemaError, match="a name no path can write"):
        _codec(_with({name: holder}))


@pytest.mark.parametrize("name", _ODD_NAMES)
def test_an_untagged_property_no_path_can_name_is_not_listed(name: str) -> None:
    """Nothing to judge there, and a mapped path can never name it: the schema stays
    usable, without the property among its fields (a mapping naming ``contact.email``
    is told the schema has no ``contact``, never read at the wrong place)."""
    codec = _codec(_with({name: {"type": "string"}, "phone": {"type": "string"}}))
    assert set(codec.fields) == {"subject_id", "occurred_at", "phone"}
    record = {"subject_id": "s", "occurred_at": "t", name: "x"}
    assert codec.decode(orjson.dumps(record))[1] == record


@given(name=st.text(max_size=6))
def test_every_listed_path_is_a_path(name: str) -> None:
    """Whatever a tagged property is called, the codec lists a path that reads it where
    it is, or refuses the schema."""
    tagged = {"type": "string", "confluent:tags": _PHONE_TAGS}
    try:
        codec = _codec(_with({name: {"type": "object", "properties": {name: tagged}}}))
    except UnusableSchemaError:
        return
    for path in codec.fields:
        assert parse_path(path).field_path == path
    assert codec.fields[f"{name}.{name}"].tags == tuple(_PHONE_TAGS)


_TAGGED: dict[str, Any] = {"type": "string", "confluent:tags": _PHONE_TAGS}
_HOLDS_TAGGED: dict[str, Any] = {"type": "object", "properties": {"phone": _TAGGED}}


@pytest.mark.parametrize(
    ("properties", "more", "keyword"),
    [
        ({"contact": {"oneOf": [_HOLDS_TAGGED, {"type": "object"}]}}, {}, "oneOf"),
        ({"contact": {"anyOf": [_HOLDS_TAGGED, {"type": "string"}]}}, {}, "anyOf"),
        ({"contact": {"allOf": [_HOLDS_TAGGED]}}, {}, "allOf"),
        ({}, {"allOf": [_HOLDS_TAGGED]}, "allOf of the top"),
        ({"contact": {"type": "object", "if": {}, "then": _HOLDS_TAGGED}}, {}, "then"),
        ({"contact": {"type": "object", "if": {}, "else": _HOLDS_TAGGED}}, {}, "else"),
        ({"contact": {"type": "object", "not": _HOLDS_TAGGED}}, {}, "not"),
        ({"phones": {"type": "object", "additionalProperties": _TAGGED}}, {}, "additionalProp"),
        ({"phones": {"type": "object", "patternProperties": {"^m": _TAGGED}}}, {}, "patternProp"),
        ({"phones": {"type": "array", "prefixItems": [_TAGGED]}}, {}, "prefixItems"),
        ({"phones": {"type": "array", "contains": _TAGGED}}, {}, "contains"),
        (
            {
                "contact": {
                    "type": "object",
                    "properties": {},
                    "dependentSchemas": {"a": _HOLDS_TAGGED},
                }
            },
            {},
            "dependentSchemas",
        ),
        ({"contact": {"$ref": "#/$defs/C", "properties": {"phone": _TAGGED}}}, {}, "properties"),
        (
            # Listed through "phone", but also applied under allOf, where nothing is listed.
            {"phone": {"$ref": "#/$defs/P"}, "contact": {"allOf": [{"$ref": "#/$defs/H"}]}},
            {},
            "allOf of property contact",
        ),
        ({"contact": {"$ref": "#anchor"}}, {}, "a .ref the enforcer does not follow"),
    ],
)
def test_a_tagged_property_where_no_path_is_listed_makes_the_schema_unusable(
    properties: dict[str, Any], more: dict[str, Any], keyword: str
) -> None:
    """Values under a tag the walker does not reach would be forwarded unjudged: the
    schema is unusable (its records ``unknown-schema``), the reason naming the keyword."""
    defs = {
        "$defs": {
            "C": {"type": "object"},
            "P": _TAGGED,
            "H": {"type": "object", "properties": {"p": {"$ref": "#/$defs/P"}}},
            "A": {"$anchor": "anchor", **_HOLDS_TAGGED},
        }
    }
    with pytest.raises(UnusableSchemaError, match=keyword) as error:
        _codec(_with(properties, **more, **defs))
    assert "cannot be used" in str(error.value)


def test_a_tag_in_a_recursion_deeper_than_the_listing_makes_the_schema_unusable() -> None:
    """A linked list of tagged emails: data may nest past the 16 listed levels."""
    node = {
        "type": ["object", "null"],
        "properties": {"email": _TAGGED, "next": {"$ref": "#/definitions/Node"}},
    }
    schema = _with({"node": {"$ref": "#/definitions/Node"}}, definitions={"Node": node})
    with pytest.raises(UnusableSchemaError, match="deeper than 16 levels"):
        _codec(schema)


def test_a_ref_that_recurs_in_several_properties_is_unusable_not_a_hang() -> None:
    """Three recursive properties would list 3^16 paths: refused once past the bound."""
    node = {"type": "object", "properties": {n: {"$ref": "#/$defs/N"} for n in "abc"}}
    with pytest.raises(UnusableSchemaError, match="property paths"):
        _codec(_with({"n": {"$ref": "#/$defs/N"}}, **{"$defs": {"N": node}}))


def test_tags_the_walker_reads_keep_the_schema_usable() -> None:
    """Definitions used only through listed ``$ref``s, tags on the one non-null branch
    of a ``oneOf`` (read now), the same tags on a property and its definition, and tags
    in a definition nothing uses."""
    schema = _with(
        {
            "phone": {"oneOf": [{"type": "null"}, _TAGGED]},
            "home": {"$ref": "#/$defs/P", "confluent:tags": _PHONE_TAGS},
            "phones": {"type": "array", "items": {"$ref": "#/$defs/H"}},
        },
        **{
            "$defs": {
                "P": _TAGGED,
                "H": {"type": "object", "properties": {"p": {"$ref": "#/$defs/P"}}},
                "unused": {"allOf": [_HOLDS_TAGGED]},
            }
        },
    )
    fields = _codec(schema).fields
    assert fields["phone"].tags == fields["home"].tags == fields["phones[*].p"].tags
    assert fields["phone"].tags == tuple(_PHONE_TAGS)


def test_other_tags_on_a_property_and_on_its_definition_make_the_schema_unusable() -> None:
    """``purpose:`` on the property and ``PII_EMAIL`` on its definition: which count?"""
    schema = _with(
        {"email": {"$ref": "#/$defs/E", "confluent:tags": ["purpose:marketing.advertising"]}},
        **{"$defs": {"E": {"type": "string", "confluent:tags": ["PII_EMAIL"]}}},
    )
    with pytest.raises(UnusableSchemaError, match="other tags"):
        _codec(schema)


_LISTED = ("properties", "items", "ref")
_UNLISTED = ("allOf", "anyOf", "if", "not", "additionalProperties", "patternProperties")


def _wrapped(leaf: dict[str, Any], wrappers: list[str], defs: dict[str, Any]) -> dict[str, Any]:
    node = leaf
    for index, wrapper in enumerate(wrappers):
        if wrapper == "properties":
            node = {"type": "object", "properties": {"x": node}}
        elif wrapper == "items":
            node = {"type": "array", "items": node}
        elif wrapper == "ref":
            defs[f"d{index}"] = node
            node = {"$ref": f"#/$defs/d{index}"}
        elif wrapper == "allOf":
            node = {"allOf": [node]}
        elif wrapper == "anyOf":
            node = {"anyOf": [node, {"type": "integer"}]}
        elif wrapper == "if":
            node = {"if": {"type": "object"}, "then": node}
        elif wrapper == "not":
            node = {"not": node}
        else:
            node = {"type": "object", wrapper: {"^x" if wrapper[0] == "p" else "": node}}
            if wrapper == "additionalProperties":
                node[wrapper] = node[wrapper][""]
    return node


@given(wrappers=st.lists(st.sampled_from(_LISTED + _UNLISTED), max_size=6))
def test_every_tag_is_listed_or_the_schema_is_unusable(wrappers: list[str]) -> None:
    """A tagged string under any nesting of keywords: a path carries its tags, or the
    schema is refused; through properties, items and $refs alone it is listed."""
    defs: dict[str, Any] = {}
    schema = _with({"root": _wrapped(_TAGGED, wrappers, defs)}, **{"$defs": defs})
    try:
        fields = _codec(schema).fields
    except UnusableSchemaError:
        assert any(wrapper in _UNLISTED for wrapper in wrappers)
        return
    assert all(wrapper in _LISTED for wrapper in wrappers)
    assert [info.tags for info in fields.values() if info.tags] == [tuple(_PHONE_TAGS)]


_NESTED_PHONE = {
    "type": "object",
    "properties": {"phone": {"type": "string", "confluent:tags": ["PII_PHONE"]}},
}


@pytest.mark.parametrize("base", ["$id", "id"])
def test_a_schema_below_the_top_with_its_own_base_is_unusable_when_tagged(base: str) -> None:
    """A validator resolves ``#/$defs/A`` against the nearest ``$id`` (draft 4: ``id``),
    the walker against the top: under a nested base the walker read the top's ``A``
    (a note) while records were validated, and read downstream, by the nested ``A``
    (a tagged phone), which went unjudged."""
    schema = {
        "type": "object",
        "properties": {
            "contact": {
                base: "https://example.com/contact",
                "$defs": {"A": _NESTED_PHONE},
                "$ref": "#/$defs/A",
            }
        },
        "$defs": {"A": {"type": "object", "properties": {"note": {"type": "string"}}}},
    }
    with pytest.raises(UnusableSchemaError, match=r"sets its own base \(\$id, or id\)"):
        _codec(schema)
    untagged = json.loads(json.dumps(schema).replace('"confluent:tags": ["PII_PHONE"]', '"x": 1'))
    assert "contact.note" in _codec(untagged).fields


def test_a_property_named_id_and_data_holding_id_are_no_base() -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "confluent:tags": ["PII_PHONE"]},
            "meta": {"type": "object", "default": {"$id": "x", "id": "y"}},
        },
    }
    assert _codec(schema).fields["id"].tags == ("PII_PHONE",)
