"""The record reader (docs/formats.md: "How a record is read"): which records it
claims, the dead letters of plain JSON and framed records, and redaction in the record's
own format."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from enforcer.core.models import DeadLetterReason
from enforcer.core.parse import ParseFailure, parse_event
from enforcer.core.policy.compiled import Policy
from enforcer.core.policy.load import default_policy_bytes, load_policy, parse_policy
from enforcer.core.policy.spec import MappingSpec
from enforcer.core.record_format import Decoded, Unredactable
from enforcer.formats.framing import frame
from enforcer.formats.mapping import FieldMapping
from enforcer.formats.reader import FormatReader, build_reader
from enforcer.formats.tags import TagConvention

from .dict_codec import Codecs, DictCodec, field

MAPPINGS = """
formats:
  mappings:
    - name: accounts
      topics: [identity.accounts]
      subject_id: user.id
      occurred_at: at
      empty: {empty}
      identifiers:
        - {{path: contact.email, type: email, purposes: {{path: contact.tags}}}}
        - {{path: two_factor_phone, type: phone, purposes: [security.mfa]}}
    - name: framed-accounts
      records: [com.acme.Account]
      subject_id: user.id
      occurred_at: at
      identifiers:
        - {{path: contact.email, type: email, purposes: {{path: contact.tags}}}}
"""

ACCOUNT: dict[str, Any] = {
    "user": {"id": "u-1", "name": "Zoë"},
    "at": "2019-10-08T12:00:00Z",
    "contact": {"email": "a@b.c", "tags": ["marketing.advertising"]},
    "two_factor_phone": "+14155550100",
    "score": 1.25,
}
ACCOUNT_SCHEMA = DictCodec(
    7,
    "com.acme.Account",
    field("user", "record"),
    field("user.id"),
    field("user.name"),
    field("at"),
    field("contact", "record"),
    field("contact.email", "string", emptiable=False),
    field("contact.tags", "list"),
    field("contact.tags[*]"),
    field("two_factor_phone", "string", "PII_PHONE", "purpose:security.mfa"),
)
SIGNUP_SCHEMA = DictCodec(
    8,
    "com.acme.Signup",
    field("subject_id"),
    field("occurred_at"),
    field("phone", "string", "PII_PHONE", "purpose:security.mfa"),
)


def policy(empty: str = "null") -> Policy:
    text = default_policy_bytes() + MAPPINGS.format(empty=empty).encode()
    return parse_policy(text, origin="test.yaml")


def reader(empty: str = "null") -> FormatReader:
    built = build_reader(policy(empty), Codecs(ACCOUNT_SCHEMA, SIGNUP_SCHEMA))
    assert built is not None
    return built


def decoded(out: Decoded | ParseFailure | None) -> Decoded:
    assert isinstance(out, Decoded), out
    return out


def dead(out: Decoded | ParseFailure | None) -> ParseFailure:
    assert isinstance(out, ParseFailure), out
    return out


def test_no_formats_and_no_registry_is_no_reader() -> None:
    """The core's own path, untouched."""
    assert build_reader(load_policy(None), None) is None
    assert build_reader(load_policy(None), Codecs()) is not None
    assert build_reader(policy(), None) is not None


def test_plain_json_on_an_unmapped_topic_is_left_to_the_core() -> None:
    """The identity event's own path decides it; so does a record without a value."""
    r = reader()
    assert r.read("identity.events", 0, 1, orjson.dumps(ACCOUNT)) is None
    assert r.read("identity.accounts", 0, 1, None) is None


def test_plain_json_on_a_mapped_topic_is_read_by_its_mapping() -> None:
    """The event, and each identifier's record path."""
    out = decoded(reader().read("identity.accounts", 0, 1, orjson.dumps(ACCOUNT)))
    assert out.event.subject_id == "u-1"
    assert out.event.event_id == "identity.accounts/0/1"
    assert [(i.type, i.value, i.purposes) for i in out.event.identifiers] == [
        ("email", "a@b.c", ["marketing.advertising"]),
        ("phone", "+14155550100", ["security.mfa"]),
    ]
    assert out.locations == ("contact.email", "two_factor_phone")


@pytest.mark.parametrize("value", [b"{not json", b'{"a": NaN}', b"\xff\xfe", b'{"a": "\\ud800"}'])
def test_invalid_json_is_the_dead_letter_the_core_gives(value: bytes) -> None:
    """Reason and message as for a plain identity event."""
    out = dead(reader().read("identity.accounts", 0, 1, value))
    core = parse_event(value)
    assert isinstance(core, ParseFailure)
    assert out.reason is DeadLetterReason.INVALID_JSON
    assert out == core or out.message == "not valid UTF-8 JSON"


@pytest.mark.parametrize("value", [b"[1, 2]", b'"text"', b"12"])
def test_json_that_is_not_an_object_is_not_an_object(value: bytes) -> None:
    """As for the plain event."""
    assert dead(reader().read("identity.accounts", 0, 1, value)).reason is (
        DeadLetterReason.NOT_AN_OBJECT
    )


def test_the_events_own_rules_name_the_records_path() -> None:
    """occurred_at that is not RFC 3339 is a schema dead letter at the mapped path."""
    value = orjson.dumps(ACCOUNT | {"at": "yesterday"})
    out = dead(reader().read("identity.accounts", 0, 1, value))
    assert out.reason is DeadLetterReason.SCHEMA
    assert out.message == "at: must be an RFC 3339 timestamp with a UTC offset"
    empty_id = orjson.dumps(ACCOUNT | {"user": {"id": ""}})
    assert dead(reader().read("identity.accounts", 0, 1, empty_id)).message.startswith("user.id: ")


def test_a_repeated_key_on_a_mapped_path_is_a_dead_letter() -> None:
    """Parsers disagree on which of two equal keys counts: the record cannot be judged."""
    value = (
        b'{"user":{"id":"u"},"at":"2019-10-08T12:00:00Z",'
        b'"two_factor_phone":"+1","two_factor_phone":"+2"}'
    )
    out = dead(reader().read("identity.accounts", 0, 1, value))
    assert out.reason is DeadLetterReason.SCHEMA and "twice" in out.message
    nested = b'{"user":{"id":"u"},"at":"2019-10-08T12:00:00Z","contact":{"email":"a","email":"b"}}'
    assert dead(reader().read("identity.accounts", 0, 1, nested)).reason is DeadLetterReason.SCHEMA
    # A key elsewhere may repeat as it likes (it decides nothing), and a mapped name
    # seen as a value or in another object is no repetition.
    fine = (
        b'{"user":{"id":"u"},"at":"2019-10-08T12:00:00Z","x":1,"x":2,'
        b'"note":"two_factor_phone","other":{"two_factor_phone":"+3"},"two_factor_phone":"+1"}'
    )
    assert isinstance(reader().read("identity.accounts", 0, 1, fine), Decoded)


@pytest.mark.parametrize(
    "contact",
    [
        b'{"email":"a@b.c","EMAIL":"+14155550142","tags":["marketing.advertising"]}',
        b'{"EMAIL":"+14155550142","email":"a@b.c","tags":["marketing.advertising"]}',
        b'{"Email":"+14155550142","tags":["marketing.advertising"]}',
        b'{"email":"a@b.c","tags":["security.mfa"],"TAGS":["marketing.advertising"]}',
        '{"email":"a@b.c","tag\u017f":["marketing.advertising"]}'.encode(),
    ],
)
def test_a_mapped_key_in_other_letter_cases_on_its_path_is_a_dead_letter(
    contact: bytes,
) -> None:
    """A key the mapping reads, written again (or only) in other letter cases in the
    object where it reads it: a consumer matching names without case (Go's encoding/json
    takes the last match) could read it instead of the judged one."""
    value = b'{"user":{"id":"u"},"at":"2019-10-08T12:00:00Z","contact":' + contact + b"}"
    out = dead(reader().read("identity.accounts", 0, 1, value))
    assert out.reason is DeadLetterReason.SCHEMA
    assert "other letter cases" in out.message and "+1415" not in out.message


def test_a_kelvin_sign_is_a_k_to_a_case_blind_match() -> None:
    """Go's case-blind match takes the Kelvin sign (U+212A) for a "k": a mapped name with
    a k is looked for written with it too."""
    text = (
        default_policy_bytes()
        + b"""
formats:
  mappings:
    - name: backups
      topics: [t]
      subject_id: id
      occurred_at: at
      identifiers:
        - {path: backup_email, type: email, purposes: [marketing.advertising]}
"""
    )
    r = build_reader(parse_policy(text, origin="p.yaml"), None)
    assert r is not None
    value = (
        '{"id":"s","at":"2019-10-08T12:00:00Z","backup_email":"a@b.c","bac\u212aup_email":"x@y.z"}'
    ).encode()
    out = dead(r.read("t", 0, 1, value))
    assert "other letter cases" in out.message


def test_a_mapped_name_in_other_letter_cases_off_its_paths_is_left_alone() -> None:
    """``Email`` in an object the mapping does not read decides nothing."""
    value = (
        b'{"user":{"id":"u","Email":"x"},"at":"2019-10-08T12:00:00Z","meta":{"EMAIL":"y"},'
        b'"contact":{"email":"a@b.c","tags":["marketing.advertising"]}}'
    )
    out = decoded(reader().read("identity.accounts", 0, 1, value))
    assert out.locations == ("contact.email",)


@pytest.mark.parametrize(("empty", "expected"), [("null", None), ("remove", "gone")])
def test_plain_json_redaction_empties_only_the_stopped_fields(empty: str, expected: Any) -> None:
    """Null or removed as the mapping says; every other field as it was."""
    r = reader(empty)
    out = decoded(r.read("identity.accounts", 0, 1, orjson.dumps(ACCOUNT)))
    written = r.redact(out, frozenset({1}))
    assert isinstance(written, bytes)
    document = orjson.loads(written)
    want = dict(ACCOUNT)
    if expected is None:
        want["two_factor_phone"] = None
    else:
        del want["two_factor_phone"]
    assert document == want


def test_integers_beyond_64_bits_keep_their_value() -> None:
    """orjson would read them as floats: such a record is written by the exact parser."""
    big = 12345678901234567890123
    value = json.dumps(ACCOUNT | {"big": big}).encode()
    r = reader()
    written = r.redact(decoded(r.read("identity.accounts", 0, 1, value)), frozenset({0}))
    assert isinstance(written, bytes)
    assert json.loads(written)["big"] == big
    assert json.loads(written)["contact"]["email"] is None


def test_a_record_without_escapes_is_read_directly_and_redacted_in_place() -> None:
    value = json.dumps(ACCOUNT | {"at": 1569931200000}, ensure_ascii=False).encode()
    r = reader()
    read = decoded(r.read("identity.accounts", 0, 1, value))
    assert read.native.direct  # type: ignore[attr-defined]
    written = r.redact(read, frozenset({0}))
    assert isinstance(written, bytes)
    expected = ACCOUNT | {"at": 1569931200000}
    expected["contact"] = {"email": None, "tags": ["marketing.advertising"]}
    assert orjson.loads(written) == expected


@pytest.mark.parametrize("at", [2**64 - 1, 2**64, 12345678901234567890123])
def test_a_time_past_what_a_date_holds_is_refused_whichever_parser_reads_it(at: int) -> None:
    """orjson reads an integer beyond 64 bits as a float, which the direct read hands
    back: the exact parser's integer is what the general read judges."""
    value = json.dumps(ACCOUNT | {"at": at}, ensure_ascii=False).encode()
    out = dead(reader().read("identity.accounts", 0, 1, value))
    assert (out.reason, out.message) == (
        DeadLetterReason.SCHEMA,
        "at: epoch milliseconds out of range",
    )


_NUMBER_TEXTS = st.one_of(
    st.sampled_from(["0.30000000000000000001", "12345678901234567.5", "1e2", "1.10", "-0"]),
    st.integers(-(2**70), 2**70).map(str),
    st.decimals(allow_nan=False, allow_infinity=False, places=25).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


@given(st.lists(_NUMBER_TEXTS, min_size=1, max_size=4), st.sampled_from(["null", "remove"]))
def test_a_redacted_plain_record_keeps_every_number_as_written(
    texts: list[str], empty: str
) -> None:
    """Read as a double, a number past its 17 digits (``0.30000000000000000001``) was
    written back as another value: now each reads back exactly as written."""
    numbers = "[" + ",".join(texts) + "]"
    value = orjson.dumps(ACCOUNT)[:-1] + b',"amounts":' + numbers.encode() + b"}"
    r = reader(empty)
    written = r.redact(decoded(r.read("identity.accounts", 0, 1, value)), frozenset({1}))
    assert isinstance(written, bytes)
    again = json.loads(written, parse_float=Decimal, parse_int=Decimal)
    assert again["amounts"] == [Decimal(text) for text in texts]
    assert b"+14155550100" not in written


def framed(codec: DictCodec, record: dict[str, Any]) -> bytes:
    return frame(codec.schema_id, codec.body(record))


def test_a_framed_record_is_read_by_the_mapping_for_its_record_name() -> None:
    """Any topic: the mapping names the record, not the topic; schema tags join in."""
    out = decoded(reader().read("anything", 0, 1, framed(ACCOUNT_SCHEMA, ACCOUNT)))
    assert [(i.type, i.value, i.purposes) for i in out.event.identifiers] == [
        ("email", "a@b.c", ["marketing.advertising"]),
        ("phone", "+14155550100", ["security.mfa"]),
    ]
    assert out.locations == ("contact.email", "two_factor_phone")


def test_a_framed_record_no_mapping_matches_is_read_by_its_schema_tags() -> None:
    """Top-level subject_id and occurred_at; the tagged fields; missing ids are schema."""
    signup = {"subject_id": "s", "occurred_at": "2019-10-08T12:00:00Z", "phone": "+1"}
    out = decoded(reader().read("signups", 3, 4, framed(SIGNUP_SCHEMA, signup)))
    assert out.event.event_id == "signups/3/4"
    assert [(i.type, i.value, i.purposes) for i in out.event.identifiers] == [
        ("phone", "+1", ["security.mfa"])
    ]
    missing = dead(reader().read("signups", 3, 4, framed(SIGNUP_SCHEMA, {"phone": "+1"})))
    assert missing.reason is DeadLetterReason.SCHEMA and missing.message == "subject_id: missing"


def test_framed_dead_letters() -> None:
    """Unknown schema id, too short a frame, a body that does not decode."""
    r = reader()
    unknown = dead(r.read("t", 0, 1, frame(99, b"{}")))
    assert unknown == ParseFailure(
        DeadLetterReason.UNKNOWN_SCHEMA, "schema id 99: not in the registry"
    )
    assert dead(r.read("t", 0, 1, b"\x00\x00\x01")).reason is DeadLetterReason.UNKNOWN_SCHEMA
    bad = dead(r.read("t", 0, 1, frame(7, b"\x02garbage")))
    assert bad.reason is DeadLetterReason.UNDECODABLE
    assert bad.message == "schema id 7: the body ends before its first field"
    wrong = dead(r.read("t", 0, 1, framed(ACCOUNT_SCHEMA, ACCOUNT | {"two_factor_phone": 5})))
    assert wrong == ParseFailure(
        DeadLetterReason.SCHEMA, "two_factor_phone: a number, not a string"
    )
    no_registry = build_reader(policy(), None)
    assert no_registry is not None
    assert dead(no_registry.read("t", 0, 1, frame(7, b"{}"))).reason is (
        DeadLetterReason.UNKNOWN_SCHEMA
    )


def test_a_codec_lookup_may_be_a_function() -> None:
    """Callable[[int], Codec | None] or an object with codec()."""
    r = FormatReader(reader().tags, [], {7: ACCOUNT_SCHEMA}.get)
    assert isinstance(
        r.read("t", 0, 1, framed(ACCOUNT_SCHEMA, ACCOUNT)), ParseFailure
    )  # no subject_id
    assert r.read("t", 0, 1, frame(9, b"{}")) == ParseFailure(
        DeadLetterReason.UNKNOWN_SCHEMA, "schema id 9: not in the registry"
    )


def test_framed_redaction_keeps_the_schema_id_or_says_why_it_cannot() -> None:
    """Re-encoded by the codec and framed with the same id; an unemptiable field is
    the codec's Unredactable."""
    r = reader()
    out = decoded(r.read("t", 0, 1, framed(ACCOUNT_SCHEMA, ACCOUNT)))
    written = r.redact(out, frozenset({1}))
    assert isinstance(written, bytes)
    assert written[:5] == frame(7, b"")
    assert orjson.loads(written[5:]) == ACCOUNT | {"two_factor_phone": None}
    assert r.redact(out, frozenset({0})) == Unredactable(
        "field 'contact.email' cannot be null under its schema"
    )


def test_check_names_the_file_the_place_and_the_schema() -> None:
    """Start-time problems read as policy errors; a schema no mapping reads is named by
    its topic."""
    broken = DictCodec(7, "com.acme.Account", field("user", "record"), field("at"))
    schema = "(com.acme.Account, schema id 7)"
    assert reader().check("t", broken) == [
        f"test.yaml: at formats.mappings[1].subject_id: 'user.id' is not a field of the schema "
        f"{schema}",
        f"test.yaml: at formats.mappings[1].identifiers[0].path: 'contact' is not a field of "
        f"the schema {schema}",
        f"test.yaml: at formats.mappings[1].identifiers[0].purposes.path: 'contact' is not a "
        f"field of the schema {schema}",
    ]
    assert reader().check("t", ACCOUNT_SCHEMA) == []
    assert reader().check("t", SIGNUP_SCHEMA) == []
    untagged = DictCodec(3, None, field("phone", "record", "PII_PHONE"))
    assert reader().check("signups", untagged) == [
        "test.yaml: topic signups, read by its schema's tags (no mapping reads it): "
        "subject_id: 'subject_id' is not a field of the schema (schema id 3)",
        "test.yaml: topic signups, read by its schema's tags (no mapping reads it): "
        "occurred_at: 'occurred_at' is not a field of the schema (schema id 3)",
        "test.yaml: topic signups, read by its schema's tags (no mapping reads it): "
        "schema tags: field 'phone' is tagged as phone but is a record, not a string "
        "(schema id 3)",
    ]


def test_records_of_a_schema_the_mapping_does_not_fit_are_dead_lettered_unread() -> None:
    """A later version of the schema that renamed a mapped field (the check at start saw
    only the version before, or none): its records are dead-lettered (schema) with the
    check's problems, never read with the renamed field left unjudged; nothing of the
    record's values is in the message. The version the mapping fits still reads."""
    renamed = DictCodec(
        9,
        "com.acme.Account",
        field("user", "record"),
        field("user.id"),
        field("at"),
        field("contact", "record"),
        field("contact.email_address"),
        field("contact.tags", "list"),
        field("contact.tags[*]"),
    )
    r = FormatReader(reader().tags, reader().mappings, Codecs(ACCOUNT_SCHEMA, renamed))
    record = {
        "user": {"id": "u-1"},
        "at": "2019-10-08T12:00:00Z",
        "contact": {"email_address": "a@b.c", "tags": ["marketing.advertising"]},
    }
    out = dead(r.read("t", 0, 1, framed(renamed, record)))
    assert out == ParseFailure(
        DeadLetterReason.SCHEMA,
        "schema id 9: the field mapping does not fit the schema: identifiers[0].path: "
        "'contact.email' is not a field of the schema",
    )
    assert "a@b.c" not in out.message
    assert dead(r.read("t", 0, 2, framed(renamed, record))) == out
    assert decoded(r.read("t", 0, 3, framed(ACCOUNT_SCHEMA, ACCOUNT))).locations == (
        "contact.email",
        "two_factor_phone",
    )


RENAMED_VERSION = """
formats:
  mappings:
    - name: accounts-v1
      records: [com.acme.Account]
      subject_id: user.id
      occurred_at: at
      identifiers:
        - {path: contact.email, type: email, purposes: {path: contact.tags}}
    - name: accounts-v2
      records: [com.acme.Account]
      subject_id: user.id
      occurred_at: at
      identifiers:
        - {path: contact.email_address, type: email, purposes: {path: contact.tags}}
"""


def test_each_version_of_a_renamed_field_is_read_by_the_mapping_that_fits_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two mappings of one record, one per version's field name: each version's records
    are read by the first mapping that fits its schema, and the check at start finds
    nothing wrong with either version. A schema read by a mapping other than the first
    matching one is said once in the log (the first's fields it lacks are judged only if
    tagged); a version neither fits is dead-lettered with the first mapping's problems,
    said once too."""
    renamed = DictCodec(
        9,
        "com.acme.Account",
        *(f for f in ACCOUNT_SCHEMA.fields.values() if f.path != "contact.email"),
        field("contact.email_address"),
    )
    neither = DictCodec(
        10,
        "com.acme.Account",
        *(f for f in ACCOUNT_SCHEMA.fields.values() if f.path != "contact.email"),
    )
    text = default_policy_bytes() + RENAMED_VERSION.encode()
    codecs = Codecs(ACCOUNT_SCHEMA, renamed, neither)
    r = build_reader(parse_policy(text, origin="p.yaml"), codecs)
    assert r is not None
    v2 = {**ACCOUNT, "contact": {"email_address": "x@y.z", "tags": ["marketing.advertising"]}}
    with caplog.at_level("WARNING", logger="enforcer.formats"):
        out = decoded(r.read("t", 0, 1, framed(renamed, v2)))
        decoded(r.read("t", 0, 5, framed(renamed, v2)))  # said once
    # The tagged phone is read by its schema tags under either mapping.
    assert out.locations == ("contact.email_address", "two_factor_phone")
    assert [i.value for i in out.event.identifiers] == ["x@y.z", "+14155550100"]
    assert decoded(r.read("t", 0, 2, framed(ACCOUNT_SCHEMA, ACCOUNT))).locations == (
        "contact.email",
        "two_factor_phone",
    )
    assert r.check("t", renamed) == [] and r.check("t", ACCOUNT_SCHEMA) == []
    assert r.check("t", neither) == [
        "p.yaml: at formats.mappings[0].identifiers[0].path: 'contact.email' is not a field "
        "of the schema (com.acme.Account, schema id 10)"
    ]
    with caplog.at_level("WARNING", logger="enforcer.formats"):
        for offset in (3, 4):
            failure = dead(r.read("t", 0, offset, framed(neither, ACCOUNT)))
            assert failure.reason is DeadLetterReason.SCHEMA
    assert [m.getMessage() for m in caplog.records] == [
        "p.yaml: records of schema id 9 on t are read by mapping 'accounts-v2': the mapping "
        "'accounts-v1' before it does not fit the schema (identifiers[0].path: "
        "'contact.email' is not a field of the schema)",
        "p.yaml: records of schema id 10 on t are dead letters (schema): no mapping fits the "
        "schema: identifiers[0].path: 'contact.email' is not a field of the schema",
    ]


def test_a_purposes_path_through_a_list_takes_the_identifiers_position() -> None:
    """``phones[*].number`` judged by ``phones[*].purposes``: the second phone's bad tag
    is ``phones[1].purposes[0]``; a fixed list names the identifier's own field."""
    text = (
        default_policy_bytes()
        + b"""
formats:
  mappings:
    - name: phones
      topics: [t]
      subject_id: id
      occurred_at: at
      identifiers:
        - {path: "phones[*].number", type: phone, purposes: {path: "phones[*].purposes"}}
        - {path: mfa, type: phone, purposes: [security.mfa]}
"""
    )
    r = build_reader(parse_policy(text, origin="p.yaml"), None)
    assert r is not None
    record = {
        "id": "s",
        "at": "2019-10-08T12:00:00Z",
        "phones": [
            {"number": "+14155550100", "purposes": ["marketing.advertising"]},
            {"number": "+14155550101", "purposes": ["Not A Tag!"]},
        ],
    }
    out = decoded(r.read("t", 0, 1, orjson.dumps(record)))
    assert r.record_path(out, "identifiers[1].purposes[0]") == "phones[1].purposes[0]"
    assert r.record_path(out, "subject_id") == "subject_id"
    with_mfa = decoded(r.read("t", 0, 1, orjson.dumps(record | {"mfa": "+14155550102"})))
    assert r.record_path(with_mfa, "identifiers[2].purposes[0]") == "mfa.purposes[0]"


JSON_ACCOUNT = {
    "title": "t.Account",
    "type": "object",
    "properties": {
        "subject_id": {"type": "string"},
        "occurred_at": {"type": "string"},
        "phone": {"type": ["string", "null"], "confluent:tags": ["PII_PHONE", "purpose:x.y"]},
        "contacts": {"type": "object", "additionalProperties": {"type": ["string", "null"]}},
    },
    "required": ["subject_id", "occurred_at"],
}
INTO_A_MAP = """
formats:
  mappings:
    - name: m
      records: [t.Account]
      subject_id: subject_id
      occurred_at: occurred_at
      identifiers:
        - {path: contacts.mfa_phone, type: phone, purposes: [security.mfa]}
"""
HEAD = b'{"subject_id":"u1","occurred_at":"2019-10-08T12:00:00Z",'


def json_schema_reader(mappings: str = "") -> FormatReader:
    from enforcer.formats.json_schema import json_schema_codec
    from enforcer.formats.registry import RegisteredSchema

    codec = json_schema_codec(RegisteredSchema(9, "JSON", json.dumps(JSON_ACCOUNT), ()))
    text = default_policy_bytes() + mappings.encode()
    policy = parse_policy(text, origin="p.yaml")
    assert policy.formats is not None or not mappings
    return FormatReader(
        TagConvention.of(None),
        [FieldMapping.of(m) for m in policy.formats.mappings] if policy.formats else [],
        lambda i: codec if i == 9 else None,
    )


@pytest.mark.parametrize(
    ("mappings", "rest", "why"),
    [
        ("", b'"PHONE":"+1-555-2fa"}', "other letter cases"),
        ("", b'"phone":null,"Phone":"+1-555-2fa"}', "other letter cases"),
        ("", '"phone":null,"\u017fubject_\u0131d":"u2"}'.encode(), "other letter cases"),
        ("", b'"phone":null,"Subject_ID":"u2"}', "other letter cases"),
        (INTO_A_MAP, b'"contacts":{"mfa_phone":"+1-555-2fa","mfa_phone":null}}', "twice"),
        (INTO_A_MAP, b'"contacts":{"mfa_phone":"+1-555-2fa","mfa_ph\\u006fne":null}}', "twice"),
        (INTO_A_MAP, b'"contacts":{"MFA_PHONE":"+1-555-2fa"}}', "other letter cases"),
        (INTO_A_MAP, b'"contacts":{"mfa_phone":null,"Mfa_Phone":"+1-555-2fa"}}', "other letter"),
    ],
)
def test_a_json_schema_body_gets_the_key_checks_of_plain_json(
    mappings: str, rest: bytes, why: str
) -> None:
    """A key the enforcer reads (a tagged property, a mapped key in a map) written twice
    in one object or in other letter cases: a consumer that matches names without case
    (Go's encoding/json takes the last match) reads the copy nobody judged. Dead letter
    ``schema``, as for plain JSON, the value never named."""
    out = dead(json_schema_reader(mappings).read("t", 0, 1, frame(9, HEAD + rest)))
    assert out.reason is DeadLetterReason.SCHEMA
    assert why in out.message and "2fa" not in out.message


def test_a_json_schema_body_with_other_cases_off_the_judged_paths_is_read() -> None:
    """``PHONE`` inside the map, ``Mfa_Phone`` at the top: no name is read there."""
    rest = b'"phone":"+1","contacts":{"PHONE":"x","mfa_phone":"+2"},"MFA_PHONE":"y"}'
    out = decoded(json_schema_reader(INTO_A_MAP).read("t", 0, 1, frame(9, HEAD + rest)))
    assert [i.value for i in out.event.identifiers] == ["+2", "+1"]


@given(
    name=st.sampled_from(["phone", "subject_id", "occurred_at"]),
    flips=st.lists(st.booleans(), min_size=11, max_size=11),
    first=st.booleans(),
)
def test_any_other_case_of_a_judged_key_is_refused(
    name: str, flips: list[bool], first: bool
) -> None:
    """Whatever letters are flipped, and before or after the judged key: refused."""
    other = "".join(c.upper() if flip else c for c, flip in zip(name, flips, strict=False))
    if other == name:
        other = name.upper()
    pair = [f'"{name}":null' if name == "phone" else f'"{name}":"v"', f'"{other}":"2fa"']
    body = {"phone": None, "subject_id": "u1", "occurred_at": "2019-10-08T12:00:00Z"}
    body.pop(name)
    text = json.dumps(body)[:-1] + "," + ",".join(pair if first else pair[::-1]) + "}"
    out = dead(json_schema_reader().read("t", 0, 1, frame(9, text.encode())))
    assert out.reason is DeadLetterReason.SCHEMA


def _seen_twice_by_definition(value: bytes, mapping: FieldMapping) -> frozenset[str]:
    """The mapped names counted case-blind more than once, or more often than written
    exactly: every count made, on a small-case copy."""
    lowered = value.lower()
    return frozenset(
        name
        for name, quoted, small in mapping.quoted_key_names
        if lowered.count(small) > 1
        or (lowered.count(small) and value.count(quoted) != lowered.count(small))
    )


_CASE_MAPPING = FieldMapping.of(
    MappingSpec.model_validate(
        {
            "name": "cases",
            "subject_id": "accountId",
            "occurred_at": "at",
            "identifiers": [{"path": "contact.email", "type": "email", "purposes": "ledger"}],
        }
    )
)


_CASE_PARTS = [
    *('"accountId"', '"accountid"', '"ACCOUNTID"', '"email"', '"Email"', '"at"', '"AT"'),
    *('"contact"', "x", "Y", ":", ",", "{", "}", "1"),
]


@given(st.lists(st.sampled_from(_CASE_PARTS), max_size=12))
def test_mapped_names_seen_twice_as_counted_on_a_small_case_copy(parts: list[str]) -> None:
    """The count skips the copy (and the exact count) for a record without a capital
    letter; it names exactly what every count on a small-case copy names, for names
    written in small letters or not (``accountId``)."""
    from enforcer.formats.reader import _seen_twice

    value = "".join(parts).encode()
    assert _seen_twice(value, _CASE_MAPPING) == _seen_twice_by_definition(value, _CASE_MAPPING)
