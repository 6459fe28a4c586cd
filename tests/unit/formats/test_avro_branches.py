"""An Avro body written again (a list item removed, a field under a list emptied) keeps
every other value as its producer wrote it: each union under its branch, logical types
as their bytes were (docs/formats.md, "Avro")."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
from hypothesis import assume, given
from hypothesis import strategies as st

from enforcer.formats.avro import avro_codec
from enforcer.formats.codec import Location
from enforcer.formats.registry import RegisteredSchema

_A = {"type": "record", "name": "Home", "fields": [{"name": "x", "type": "string"}]}
_B = {"type": "record", "name": "Work", "fields": [{"name": "x", "type": "string"}]}
_E1 = {"type": "enum", "name": "E1", "symbols": ["X", "Y"]}
_E2 = {"type": "enum", "name": "E2", "symbols": ["X", "Z"]}
_F1 = {"type": "fixed", "name": "F1", "size": 2}
_F2 = {"type": "fixed", "name": "F2", "size": 2}
_DEVICE = {
    "type": "record",
    "name": "Device",
    "fields": [
        {"name": "id", "type": ["null", "string"], "confluent:tags": ["PII_DEVICE_ID"]},
        {"name": "n", "type": ["null", "int", "long"]},
    ],
}

SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Account",
    "namespace": "test.branches",
    "fields": [
        {"name": "subject_id", "type": "string"},
        {"name": "phones", "type": {"type": "array", "items": "string"}},
        {"name": "devices", "type": {"type": "array", "items": _DEVICE}},
        {"name": "n", "type": ["int", "long"]},
        {"name": "address", "type": [_A, _B]},
        {"name": "e", "type": [_E1, _E2]},
        {"name": "f", "type": [_F1, _F2]},
        {"name": "ratio", "type": ["float", "double"]},
        {"name": "token", "type": ["null", "string", {"type": "string", "logicalType": "uuid"}]},
    ],
}
PLAIN = fastavro.parse_schema(SCHEMA)
FULL = "test.branches."


def _body(record: dict[str, Any]) -> bytes:
    stream = io.BytesIO()
    fastavro.schemaless_writer(stream, PLAIN, record)
    return stream.getvalue()


def _codec() -> Any:
    return avro_codec(RegisteredSchema(71, "AVRO", json.dumps(SCHEMA), ()))


@st.composite
def _records(draw: st.DrawFn) -> tuple[dict[str, Any], list[Location]]:
    """A record with each union's branch drawn (tuple notation names it) and the
    locations to empty: some phones, some devices, some devices' ids."""
    phones = draw(st.lists(st.sampled_from(["+15550100", "+15550101"]), max_size=3))
    devices = [
        {
            "id": draw(st.sampled_from([None, "d-1", "d-2"])),
            "n": draw(st.sampled_from([None, ("int", 3), ("long", 3)])),
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    record = {
        "subject_id": "acct-1",
        "phones": phones,
        "devices": devices,
        "n": (draw(st.sampled_from(["int", "long"])), 5),
        "address": (FULL + draw(st.sampled_from(["Home", "Work"])), {"x": "q"}),
        "e": (FULL + draw(st.sampled_from(["E1", "E2"])), "X"),
        "f": (FULL + draw(st.sampled_from(["F1", "F2"])), b"ab"),
        "ratio": (draw(st.sampled_from(["float", "double"])), 0.5),
        "token": draw(st.sampled_from([None, ("string", "0F8FAD5B-D9CB-469F-A165-70867728950E")])),
    }
    locations: list[Location] = [("phones", i) for i in range(len(phones)) if draw(st.booleans())]
    for i in range(len(devices)):
        what = draw(st.sampled_from(["keep", "item", "id"]))
        if what == "item":
            locations.append(("devices", i))
        elif what == "id":
            locations.append(("devices", i, "id"))
    assume(locations)
    return record, locations


def _expected(record: dict[str, Any], locations: list[Location]) -> dict[str, Any]:
    expected = dict(record)
    gone = {loc for loc in locations if len(loc) == 2}
    expected["phones"] = [p for i, p in enumerate(record["phones"]) if ("phones", i) not in gone]
    devices = []
    for i, device in enumerate(record["devices"]):
        if ("devices", i) in gone:
            continue
        devices.append({**device, "id": None} if ("devices", i, "id") in locations else device)
    expected["devices"] = devices
    return expected


@given(_records())
def test_a_body_written_again_keeps_each_union_branch_and_every_other_byte(
    drawn: tuple[dict[str, Any], list[Location]],
) -> None:
    """fastavro writes a plain value under the first branch that takes it: a long 5 as
    an int, a Work address as a Home one, an upper-case uuid in lower case. The body
    written again is the body its producer would have written without the emptied
    values, which a consumer reading the branch reads as the record judged."""
    record, locations = drawn
    codec = _codec()
    body = _body(record)
    native, _ = codec.decode(body)
    written = codec.encode_body_without(body, native, locations)
    assert written == _body(_expected(record, locations))


def test_a_work_address_stays_a_work_address() -> None:
    record: dict[str, Any] = {
        "subject_id": "acct-1",
        "phones": ["+15550100", "+15550101"],
        "devices": [],
        "n": ("long", 5),
        "address": (FULL + "Work", {"x": "q"}),
        "e": (FULL + "E2", "X"),
        "f": (FULL + "F2", b"ab"),
        "ratio": ("double", 0.5),
        "token": ("string", "0F8FAD5B-D9CB-469F-A165-70867728950E"),
    }
    codec = _codec()
    body = _body(record)
    native, _ = codec.decode(body)
    written = codec.encode_body_without(body, native, [("phones", 0)])
    assert isinstance(written, bytes)
    again: Any = fastavro.schemaless_reader(
        io.BytesIO(written), PLAIN, None, return_record_name=True, return_named_type=True
    )
    assert again["phones"] == ["+15550101"]
    assert again["address"] == (FULL + "Work", {"x": "q"})
    assert again["e"] == (FULL + "E2", "X")
    assert again["f"] == (FULL + "F2", b"ab")
    assert written.endswith(b"0F8FAD5B-D9CB-469F-A165-70867728950E")


def test_unions_in_a_referenced_schema_keep_their_branch_too() -> None:
    """A named type another registered schema defines is written again under the
    branches its producer wrote, as the schema's own types are."""
    contact = {
        "type": "record",
        "name": "Contact",
        "namespace": "shared",
        "fields": [
            {"name": "email", "type": ["null", "string"], "confluent:tags": ["PII_EMAIL"]},
            {"name": "n", "type": ["int", "long"]},
        ],
    }
    schema = {
        "type": "record",
        "name": "Holder",
        "fields": [{"name": "contacts", "type": {"type": "array", "items": "shared.Contact"}}],
    }
    full = {**schema, "fields": [{"name": "contacts", "type": {"type": "array", "items": contact}}]}
    codec = avro_codec(RegisteredSchema(72, "AVRO", json.dumps(schema), ()), (json.dumps(contact),))
    record = {
        "contacts": [
            {"email": "a@example.com", "n": ("long", 1)},
            {"email": "b@example.com", "n": ("long", 2)},
        ]
    }
    stream = io.BytesIO()
    fastavro.schemaless_writer(stream, fastavro.parse_schema(full), record)
    body = stream.getvalue()
    native, _ = codec.decode(body)
    written = codec.encode_body_without(body, native, [("contacts", 0), ("contacts", 1, "email")])
    expected = io.BytesIO()
    fastavro.schemaless_writer(
        expected, fastavro.parse_schema(full), {"contacts": [{"email": None, "n": ("long", 2)}]}
    )
    assert written == expected.getvalue()
    assert isinstance(written, bytes) and b"@example.com" not in written
