"""A compiled field mapping (docs/formats.md: "Field mappings"): what it reads out of a
record, the dead letters it names by path, and its checks against a schema."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.models import DeadLetterReason
from enforcer.core.parse import ParseFailure
from enforcer.core.policy.spec import MappingSpec
from enforcer.formats.mapping import FieldMapping, Read, fallback_mapping
from enforcer.formats.paths import PathTypeError, find, value_at
from enforcer.formats.tags import TagConvention

from .dict_codec import field

TAGS = TagConvention.of(None)


def mapping(**spec: Any) -> FieldMapping:
    base: dict[str, Any] = {"name": "accounts", "subject_id": "user.id", "occurred_at": "at"}
    return FieldMapping.of(MappingSpec.model_validate(base | spec))


def read(m: FieldMapping, view: Any, fields: Any = None) -> Read:
    out = m.read(view, "identity.accounts", 2, 7, fields, TAGS)
    assert isinstance(out, Read), out
    return out


def failure(m: FieldMapping, view: Any, fields: Any = None) -> ParseFailure:
    out = m.read(view, "identity.accounts", 2, 7, fields, TAGS)
    assert isinstance(out, ParseFailure), out
    return out


ACCOUNT = {
    "user": {"id": "u-1"},
    "at": "2019-10-08T12:00:00Z",
    "meta": {"id": "e-9"},
    "contact": {"email": "a@b.c", "tags": ["marketing.advertising"]},
    "two_factor_phone": "+14155550100",
    "phones": [
        {"number": "+1", "purposes": ["security.mfa"]},
        {"number": "+2"},
        {"number": None, "purposes": ["x"]},
        {"number": "+4", "purposes": None},
    ],
}


def test_each_source_of_purposes() -> None:
    """A tag list in the record (bound by position), a fixed list, the ledger."""
    m = mapping(
        event_id="meta.id",
        identifiers=[
            {"path": "contact.email", "type": "email", "purposes": {"path": "contact.tags"}},
            {"path": "two_factor_phone", "type": "phone", "purposes": ["security.mfa"]},
            {
                "path": "phones[*].number",
                "type": "phone",
                "purposes": {"path": "phones[*].purposes"},
            },
            {"path": "recovery", "type": "email", "purposes": "ledger"},
        ],
    )
    out = read(m, ACCOUNT | {"recovery": "r@x.y"})
    assert out.fields["event_id"] == "e-9"
    assert out.fields["subject_id"] == "u-1"
    assert out.fields["occurred_at"] == "2019-10-08T12:00:00Z"
    assert [(i["type"], i["value"], i["purposes"]) for i in out.fields["identifiers"]] == [
        ("email", "a@b.c", ["marketing.advertising"]),
        ("phone", "+14155550100", ["security.mfa"]),
        ("phone", "+1", ["security.mfa"]),
        ("phone", "+2", None),
        ("phone", "+4", None),
        ("email", "r@x.y", None),
    ]
    assert out.locations == (
        ("contact", "email"),
        ("two_factor_phone",),
        ("phones", 0, "number"),
        ("phones", 1, "number"),
        ("phones", 3, "number"),
        ("recovery",),
    )


def test_absent_null_and_empty_identifiers_are_simply_absent() -> None:
    """Nothing to judge where the record has no value."""
    m = mapping(identifiers=[{"path": "contact.phone", "type": "phone", "purposes": "ledger"}])
    for contact in ({}, {"phone": None}, {"phone": ""}, None):
        assert (
            read(m, {"user": {"id": "u"}, "at": "2019-10-08T12:00:00Z", "contact": contact}).fields[
                "identifiers"
            ]
            == []
        )


def test_the_event_id_defaults_to_the_records_coordinates() -> None:
    """The same record, the same id."""
    assert read(mapping(), ACCOUNT).fields["event_id"] == "identity.accounts/2/7"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1570536000000, "2019-10-08T12:00:00.000Z"),
        (1570536000123, "2019-10-08T12:00:00.123Z"),
        (
            datetime(2019, 10, 8, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            "2019-10-08T12:00:00.000Z",
        ),
        ("2019-10-08T14:00:00+02:00", "2019-10-08T14:00:00+02:00"),
    ],
)
def test_occurred_at_as_text_epoch_milliseconds_or_a_timestamp(value: Any, expected: str) -> None:
    """Epoch milliseconds and aware datetimes become RFC 3339 UTC with milliseconds."""
    assert read(mapping(), {"user": {"id": "u"}, "at": value}).fields["occurred_at"] == expected


def test_an_integer_subject_id_is_written_in_decimal() -> None:
    """An Avro long user id is an id."""
    assert read(mapping(), {"user": {"id": 2**70}, "at": 0}).fields["subject_id"] == str(2**70)


@pytest.mark.parametrize(
    ("view", "message"),
    [
        ({"at": 0}, "user.id: missing"),
        ({"user": {"id": None}, "at": 0}, "user.id: missing"),
        ({"user": {"id": True}, "at": 0}, "user.id: a boolean, not a string"),
        ({"user": {"id": 1.5}, "at": 0}, "user.id: a number, not a string"),
        ({"user": "u", "at": 0}, "user: a string, not an object"),
        ({"user": {"id": "u"}}, "at: missing"),
        ({"user": {"id": "u"}, "at": 1.5}, "at: a number, not a timestamp"),
        ({"user": {"id": "u"}, "at": 10**20}, "at: epoch milliseconds out of range"),
        ({"user": {"id": "u"}, "at": datetime(2019, 1, 1)}, "at: a timestamp without a time zone"),
        (
            {"user": {"id": "u"}, "at": 0, "phones": [{"number": 5551234}]},
            "phones[0].number: a number, not a string",
        ),
        (
            {"user": {"id": "u"}, "at": 0, "phones": [{"number": {"n": "1"}}]},
            "phones[0].number: an object, not a string",
        ),
        ({"user": {"id": "u"}, "at": 0, "phones": "x"}, "phones: a string, not a list"),
        (
            {"user": {"id": "u"}, "at": 0, "phones": [{"number": "1", "tags": 3}]},
            "phones[0].tags: a number, not a list of purpose tags",
        ),
        (
            {"user": {"id": "u"}, "at": 0, "phones": [{"number": "1", "tags": ["a", 2]}]},
            "phones[0].tags[1]: a number, not a string",
        ),
    ],
)
def test_a_wrong_type_is_a_schema_dead_letter_naming_the_path(view: Any, message: str) -> None:
    """Reason schema, the record's path and the value's type, never the value."""
    m = mapping(
        identifiers=[
            {"path": "phones[*].number", "type": "phone", "purposes": {"path": "phones[*].tags"}}
        ]
    )
    out = failure(m, view)
    assert out.reason is DeadLetterReason.SCHEMA
    assert out.message == message


def test_a_tag_list_may_be_one_string() -> None:
    """A single purpose written as a string is a list of one."""
    m = mapping(identifiers=[{"path": "p", "type": "phone", "purposes": {"path": "why"}}])
    out = read(m, {"user": {"id": "u"}, "at": 0, "p": "1", "why": "security.mfa"})
    assert out.fields["identifiers"][0]["purposes"] == ["security.mfa"]


FIELDS = {
    f.path: f
    for f in (
        field("user", "record"),
        field("user.id", "int"),
        field("at", "int"),
        field("contact", "record"),
        field("contact.email", "string", "PII_EMAIL", "purpose:marketing.advertising"),
        field("phones", "list"),
        field("phones[*]", "record"),
        field("phones[*].number", "string", "PII_PHONE", "purpose:security.mfa"),
        field("phones[*].label", "string"),
        field("tags", "list"),
        field("tags[*]", "string"),
    )
}


def test_schema_tagged_fields_are_judged_with_their_purposes() -> None:
    """Every tagged field the mapping does not map, after the mapped ones."""
    m = mapping(identifiers=[{"path": "contact.email", "type": "email", "purposes": ["x.y"]}])
    view = {"user": {"id": 1}, "at": 0, "contact": {"email": "a@b.c"}, "phones": [{"number": "+1"}]}
    out = read(m, view, FIELDS)
    assert [(i["type"], i["value"], i["purposes"]) for i in out.fields["identifiers"]] == [
        ("email", "a@b.c", ["x.y"]),
        ("phone", "+1", ["security.mfa"]),
    ]
    untagged = mapping(schema_tags=False)
    assert read(untagged, view, FIELDS).fields["identifiers"] == []


def test_purposes_from_the_schemas_tags_of_a_mapped_field() -> None:
    """'schema-tags' reads the mapped field's purpose tags; plain JSON has none."""
    m = mapping(
        schema_tags=False,
        identifiers=[{"path": "phones[*].number", "type": "phone", "purposes": "schema-tags"}],
    )
    view = {"user": {"id": 1}, "at": 0, "phones": [{"number": "+1"}]}
    assert read(m, view, FIELDS).fields["identifiers"][0]["purposes"] == ["security.mfa"]
    assert read(m, view).fields["identifiers"][0]["purposes"] is None


def test_the_fallback_reads_top_level_fields_and_the_schemas_tags() -> None:
    """subject_id and occurred_at at the top; event_id when the schema has it."""
    fields = {
        "subject_id": field("subject_id"),
        "occurred_at": field("occurred_at", "int"),
        **FIELDS,
    }
    m = fallback_mapping(fields)
    out = read(m, {"subject_id": "s", "occurred_at": 0, "phones": [{"number": "+1"}]}, fields)
    assert out.fields["event_id"] == "identity.accounts/2/7"
    assert out.locations == (("phones", 0, "number"),)
    with_id = fallback_mapping({**fields, "event_id": field("event_id")})
    assert (
        read(with_id, {"subject_id": "s", "occurred_at": 0, "event_id": "e"}, fields).fields[
            "event_id"
        ]
        == "e"
    )
    assert failure(m, {"occurred_at": 0}, fields).message == "subject_id: missing"


def test_check_against_a_schema() -> None:
    """Missing paths, a record or list where a string is needed, a bad purpose tag."""
    fields = {
        **FIELDS,
        "odd": field("odd", "record", "PII_PHONE"),
        "bad": field("bad", "string", "PII_EMAIL", "purpose:NOT A TAG"),
    }
    m = mapping(
        subject_id="user.name",
        identifiers=[
            {"path": "contact", "type": "email", "purposes": "ledger"},
            {"path": "phones[*]", "type": "phone", "purposes": {"path": "phones[*].nope"}},
            {"path": "phones[*].label", "type": "phone", "purposes": {"path": "tags"}},
            {"path": "bad", "type": "email", "purposes": "schema-tags"},
        ],
    )
    assert m.check(fields, TAGS) == [
        "subject_id: 'user.name' is not a field of the schema",
        "identifiers[0].path: 'contact' is a record, where a string is needed",
        "identifiers[1].path: 'phones[*]' is a record, where a string is needed",
        "identifiers[1].purposes.path: 'phones[*].nope' is not a field of the schema",
        "identifiers[3]: field 'bad' has a purpose tag that is not a purpose tag "
        "(dot-separated segments of [a-z0-9_-])",
        "schema tags: field 'odd' is tagged as phone but is a record, not a string",
    ]
    assert mapping().check(FIELDS, TAGS) == []


def test_matches_by_topic_and_record_name() -> None:
    """No topics: every topic; records: framed records of those names only."""
    assert mapping().matches("any", None)
    assert mapping(topics=["a"]).matches("a", "X") and not mapping(topics=["a"]).matches("b", None)
    named = mapping(records=["com.acme.Account"])
    assert named.matches("t", "com.acme.Account")
    assert not named.matches("t", None) and not named.matches("t", "com.acme.Other")


@given(
    st.lists(st.one_of(st.none(), st.just(""), st.text(min_size=1, max_size=4)), max_size=5),
    st.integers(0, 4),
)
def test_positional_binding_over_generated_lists(numbers: list[str | None], extra: int) -> None:
    """Each identifier of phones[*].number takes the tag list of its own item."""
    phones = [{"number": n, "purposes": [f"p{i}"]} for i, n in enumerate(numbers)]
    phones += [{"purposes": ["never"]}] * extra
    m = mapping(
        identifiers=[
            {
                "path": "phones[*].number",
                "type": "phone",
                "purposes": {"path": "phones[*].purposes"},
            }
        ]
    )
    out = read(m, {"user": {"id": "u"}, "at": 0, "phones": phones})
    expected = [(n, [f"p{i}"]) for i, n in enumerate(numbers) if n]
    assert [(i["value"], i["purposes"]) for i in out.fields["identifiers"]] == expected
    assert [loc[1] for loc in out.locations] == [i for i, n in enumerate(numbers) if n]


def test_a_tagged_list_is_read_item_by_item_with_the_lists_purposes() -> None:
    """A repeated field tagged PII_EMAIL: each string in it is an email, judged by the
    list's purpose tags; a mapped item path reads the same tags."""
    fields = {
        f.path: f
        for f in (
            field("user", "record"),
            field("user.id"),
            field("at", "int"),
            field("emails", "list", "PII_EMAIL", "purpose:security.account_recovery"),
            field("emails[*]", "string"),
            field("ids", "list", "PII_DEVICE_ID"),
            field("ids[*]", "int"),
        )
    }
    view = {"user": {"id": "u"}, "at": 0, "emails": ["a@b.c", None, "d@e.f"], "ids": []}
    out = read(mapping(), view, fields)
    assert [(i["type"], i["value"], i["purposes"]) for i in out.fields["identifiers"]] == [
        ("email", "a@b.c", ["security.account_recovery"]),
        ("email", "d@e.f", ["security.account_recovery"]),
    ]
    assert out.locations == (("emails", 0), ("emails", 2))
    mapped = mapping(
        schema_tags=False,
        identifiers=[{"path": "emails[*]", "type": "email", "purposes": "schema-tags"}],
    )
    assert read(mapped, view, fields).fields["identifiers"][1]["purposes"] == [
        "security.account_recovery"
    ]
    assert mapping().check(fields, TAGS) == [
        "schema tags: field 'ids' is tagged as device_id but its items are an int, not a string"
    ]
    untagged_items = mapping(
        identifiers=[{"path": "emails", "type": "email", "purposes": "ledger"}]
    )
    assert untagged_items.check(fields, TAGS)[0] == (
        "identifiers[0].path: 'emails' is a list, where a string is needed "
        "(every item: 'emails[*]')"
    )


@given(st.data())
def test_generated_documents_and_paths(data: st.DataObject) -> None:
    """Whatever the record and the path: each identifier read is the string at its
    location, every non-empty string the path names is read, and anything else the path
    names (a number, an object, a list) makes the record a schema dead letter."""
    from .test_paths import OBJECTS, paths

    document = data.draw(OBJECTS)
    path = data.draw(paths())
    view = {"user": {"id": "u"}, "at": 0, "doc": document}
    m = mapping(identifiers=[{"path": f"doc.{path.text}", "type": "phone", "purposes": "ledger"}])
    out = m.read(view, "t", 0, 1)
    try:
        found = find(document, path)
    except PathTypeError:
        assert isinstance(out, ParseFailure) and out.reason is DeadLetterReason.SCHEMA
        return
    values = [(loc, v) for loc, v in found if v is not None and v != ""]
    if any(not isinstance(v, str) for _, v in values):
        assert isinstance(out, ParseFailure) and out.reason is DeadLetterReason.SCHEMA
        assert out.message.startswith("doc.")
        return
    assert isinstance(out, Read)
    assert out.locations == tuple(("doc", *loc) for loc, _ in values)
    assert [i["value"] for i in out.fields["identifiers"]] == [v for _, v in values]
    for location, item in zip(out.locations, out.fields["identifiers"], strict=True):
        assert value_at(view, location) == item["value"]


@pytest.mark.parametrize("name", ["mfa phone", "a]b", "phone\u00a0x", "", "x[y"])
def test_a_tagged_field_no_path_can_name_is_a_problem_not_an_error(name: str) -> None:
    """A codec should refuse such a schema; if one ever lists it, the mapping reports it
    (start: exit 2; a record: dead letter ``schema``) and reads no record by it, instead
    of raising on every record and at start."""
    fields = {**FIELDS, name: field(name, "string", "PII_PHONE")}
    m = mapping()
    assert name not in [item.place for item in m.tagged_fields(fields, TAGS)]
    assert m.check(fields, TAGS) == [
        f"schema tags: field {json.dumps(name)} is tagged as phone but its name is not one "
        "a record path can write"
    ]
    view = {"user": {"id": 1}, "at": 0, name: "+1"}
    assert read(m, view, fields).fields["identifiers"] == []
    m.direct(fields, TAGS)  # building the direct read raises nothing
