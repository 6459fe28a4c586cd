"""The Avro codec's faster paths held to fastavro's own: an emptied field patched into
the body is the body fastavro writes for the emptied record, and the compiled reader of
the schema (or fastavro's called without ``schemaless_reader``'s wrapper) reads what
``schemaless_reader`` reads (docs/formats.md, "Avro")."""

from __future__ import annotations

import io
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enforcer.formats.avro import AvroCodec, avro_codec
from enforcer.formats.avro_patch import PatchError
from enforcer.formats.avro_read import MAX_NESTING
from enforcer.formats.codec import DecodeError, Location
from enforcer.formats.registry import RegisteredSchema

_PRIMITIVE_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "boolean": st.booleans(),
    "int": st.integers(-(2**31), 2**31 - 1),
    "long": st.integers(-(2**63), 2**63 - 1),
    "float": st.floats(width=32, allow_nan=False),
    "double": st.floats(allow_nan=False),
    # Long enough for a length of more than one byte (64 and up).
    "string": st.text(max_size=70),
    "bytes": st.binary(max_size=70),
}
_TIMESTAMPS = st.integers(-(2**40), 2**40).map(
    lambda ms: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)
)


_Drawn = tuple[Any, st.SearchStrategy[Any]]
"""A type as a schema writes it, and a strategy for its values."""


class _Schemas:
    """A random record schema and a strategy for its records, drawn type by type."""

    def __init__(self, draw: st.DrawFn) -> None:
        self._draw = draw
        self._names = itertools.count()

    def record(self, depth: int) -> tuple[dict[str, Any], st.SearchStrategy[Any]]:
        name = f"R{next(self._names)}"
        fields: list[dict[str, Any]] = []
        values: dict[str, st.SearchStrategy[Any]] = {}
        for number in range(self._draw(st.integers(1, 5))):
            field_type, value = self.any_type(depth)
            fields.append({"name": f"f{number}", "type": field_type})
            values[f"f{number}"] = value
        return {"type": "record", "name": name, "fields": fields}, st.fixed_dictionaries(values)

    def any_type(self, depth: int) -> _Drawn:
        choices = ["primitive", "nullable", "nullable", "logical", "fixed", "enum", "union"]
        if depth < 3:
            choices += ["array", "map", "record", "nullable record"]
        choice = self._draw(st.sampled_from(choices))
        if choice == "nullable":
            inner, value = self.plain_type(depth)
            branches = self._draw(st.sampled_from([["null", inner], [inner, "null"]]))
            return branches, st.none() | value
        if choice == "nullable record":
            inner, value = self.record(depth + 1)
            return ["null", inner], st.none() | value
        if choice == "union":
            # Branches of different Python types, so fastavro's choice of branch on
            # writing is the one the value was drawn for.
            branches = self._draw(
                st.sampled_from([["null", "string", "long"], ["string", "null", "double"]])
            )
            values = [_PRIMITIVE_VALUES[b] for b in branches if b != "null"]
            return branches, st.one_of(st.none(), *values)
        return self.plain_type(depth, choice)

    def plain_type(self, depth: int, choice: str = "primitive") -> _Drawn:
        """A type that is not a union."""
        if choice in ("array", "map", "record"):
            return self.nested(depth, choice)
        if choice in ("fixed", "enum"):
            return self.named(choice)
        if choice == "logical":
            return {"type": "long", "logicalType": "timestamp-millis"}, _TIMESTAMPS
        primitive = self._draw(st.sampled_from(sorted(_PRIMITIVE_VALUES)))
        return primitive, _PRIMITIVE_VALUES[primitive]

    def named(self, choice: str) -> _Drawn:
        if choice == "fixed":
            # Not of size 0: a list of items of no bytes, its count made huge by a
            # changed byte, has fastavro read items for ever; the codec refuses such
            # schemas (test_codec_avro.py), these properties read bodies directly.
            size = self._draw(st.integers(1, 4))
            fixed = {"type": "fixed", "name": f"X{next(self._names)}", "size": size}
            return fixed, st.binary(min_size=size, max_size=size)
        symbols = ["A", "B", "C"]
        enum = {"type": "enum", "name": f"E{next(self._names)}", "symbols": symbols}
        return enum, st.sampled_from(symbols)

    def nested(self, depth: int, choice: str) -> _Drawn:
        if choice == "array":
            items, value = self.any_type(depth + 1)
            return {"type": "array", "items": items}, st.lists(value, max_size=3)
        if choice == "map":
            values, value = self.any_type(depth + 1)
            return {"type": "map", "values": values}, st.dictionaries(
                st.text(max_size=4), value, max_size=3
            )
        return self.record(depth + 1)


@st.composite
def _schema_and_record(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any]]:
    schema, records = _Schemas(draw).record(0)
    return schema, draw(records)


def _codec(schema: dict[str, Any]) -> AvroCodec:
    return avro_codec(RegisteredSchema(7, "AVRO", json.dumps(schema), ()))


def _body(schema: dict[str, Any], record: Any) -> bytes:
    stream = io.BytesIO()
    fastavro.schemaless_writer(stream, fastavro.parse_schema(schema), record)
    return stream.getvalue()


def _nullable(field_type: Any) -> bool:
    return isinstance(field_type, list) and "null" in field_type


def _locations(schema: dict[str, Any], record: dict[str, Any], at: Location = ()) -> list[Location]:
    """Every location a redaction may name: fields whose union has null, through records
    and unions of records, and (which the patch leaves to the writer) list items and
    their fields."""
    found: list[Location] = []
    for field in schema["fields"]:
        location = (*at, field["name"])
        field_type, value = field["type"], record[field["name"]]
        if _nullable(field_type):
            found.append(location)
        branches = field_type if isinstance(field_type, list) else [field_type]
        for branch in branches:
            if isinstance(branch, dict) and branch["type"] == "record" and value is not None:
                found += _locations(branch, value, location)
            if isinstance(branch, dict) and branch["type"] == "array" and value:
                found += [(*location, index) for index in range(len(value))]
    return found


@settings(max_examples=300, deadline=None)
@given(drawn=_schema_and_record(), data=st.data())
def test_a_patched_body_is_the_body_fastavro_writes_for_the_emptied_record(
    drawn: tuple[dict[str, Any], dict[str, Any]], data: st.DataObject
) -> None:
    schema, record = drawn
    codec = _codec(schema)
    body = _body(schema, record)
    native, view = codec.decode(body)
    choices = _locations(schema, view)
    chosen = st.lists(st.sampled_from(choices), unique=True) if choices else st.just([])
    locations = data.draw(chosen)
    written = codec.encode_without(native, locations)
    patched = codec.encode_body_without(body, native, locations)
    assert patched == written
    if isinstance(patched, bytes):
        assert codec.decode(patched)[1] == codec.decode(written)[1]  # type: ignore[arg-type]
    if locations and not any(isinstance(part, int) for loc in locations for part in loc):
        # Record fields only: the patch itself gave it, not the writer behind it.
        assert codec._patcher is not None
        if isinstance(written, bytes):
            assert codec._patcher.emptied(body, locations) == written


def _changed(body: bytes, flip: int) -> list[bytes]:
    """``body`` cut at every length, and with each byte in turn changed by ``flip``."""
    cut = [body[:size] for size in range(len(body))]
    return cut + [body[:i] + bytes([body[i] ^ flip]) + body[i + 1 :] for i in range(len(body))]


@settings(max_examples=200, deadline=None)
@given(drawn=_schema_and_record(), flip=st.integers(1, 255))
def test_the_direct_reader_reads_what_schemaless_reader_reads(
    drawn: tuple[dict[str, Any], dict[str, Any]], flip: int
) -> None:
    """Bodies as written, cut short and with a byte changed: the same record or the
    same failure, whichever reader read them."""
    schema, record = drawn
    codec = _codec(schema)
    parsed = fastavro.parse_schema(schema)
    body = _body(schema, record)
    # What fastavro writes, the generated reader reads itself.
    assert codec._read_common(body, len(body)) is not None
    for candidate in [body, *_changed(body, flip)]:
        stream = io.BytesIO(candidate)
        try:
            expected: Any = fastavro.schemaless_reader(stream, parsed, None)
            trailing = stream.tell() != len(candidate)
        except Exception as exc:  # what the bytes make fastavro raise
            expected, trailing = type(exc).__name__, False
        if isinstance(expected, str) or trailing:
            with pytest.raises(DecodeError) as error:
                codec.decode(candidate)
            if not trailing:
                assert str(error.value).endswith(expected)
        else:
            # By repr: a changed byte can make a float NaN, which equals nothing.
            assert repr(codec.decode(candidate)[1]) == repr(expected)


_LINKED: dict[str, Any] = {
    "type": "record",
    "name": "Node",
    "fields": [
        {"name": "name", "type": "string"},
        {"name": "next", "type": ["null", "Node"]},
    ],
}


def _linked(levels: int) -> dict[str, Any]:
    node: dict[str, Any] | None = None
    for level in range(levels):
        node = {"name": f"n{level}", "next": node}
    assert node is not None
    return node


@pytest.mark.parametrize("levels", [3, MAX_NESTING // 2 + 1, MAX_NESTING // 2 + 2, 500])
def test_a_recursive_record_nested_deep_is_read_as_fastavro_reads_it(levels: int) -> None:
    """The compiled reader walks a recursive record to a bounded depth (compiled code
    does not check its own recursion): deeper bodies are read by fastavro, the same
    record either way."""
    codec = _codec(_LINKED)
    record = _linked(levels)
    body = _body(_LINKED, record)
    assert codec.decode(body)[1] == record
    # Each level below the first is a union and a record: two steps of nesting.
    walked = codec._read_common(body, len(body))
    assert (walked is not None) is (2 * (levels - 1) <= MAX_NESTING)


def test_the_starts_of_another_body_are_not_used() -> None:
    """The codec keeps where the fields of the body it read last start: a redaction of
    a body read before that one walks the body itself."""
    codec = _codec(_LIST_SCHEMA)
    first = _body(_LIST_SCHEMA, {"names": ["a"], "phone": "+15", "n": 1, "email": "e"})
    second = _body(_LIST_SCHEMA, {"names": ["bb", "cc"], "phone": None, "n": 300, "email": None})
    native, _ = codec.decode(first)
    codec.decode(second)
    patched = codec.encode_body_without(first, native, [("email",)])
    assert patched == codec.encode_without(native, [("email",)])
    assert isinstance(patched, bytes)
    assert codec.decode(patched)[1] == {"names": ["a"], "phone": "+15", "n": 1, "email": None}


_WIDE_UNION: dict[str, Any] = {
    "type": "record",
    "name": "Wide",
    "fields": [
        {
            "name": "u",
            "type": ["null", *({"type": "fixed", "name": f"F{i}", "size": 1} for i in range(69))],
        },
        {"name": "s", "type": "string"},
        {"name": "phone", "type": ["null", "string"]},
    ],
}


def test_a_union_index_of_two_bytes_is_not_taken_for_one() -> None:
    """Branch 66 of a union is the varint 0x84 0x01: its first byte is not branch 66
    of a one-byte index (which would read the fixed at 0x01 and shift every field
    after it), in the reader and in the patch's walk."""
    record = {"u": ("F65", b"\x00"), "s": "", "phone": "+15"}
    body = _body(_WIDE_UNION, record)
    assert body[:2] == b"\x84\x01"
    codec = _codec(_WIDE_UNION)
    view = codec.decode(body)[1]
    assert view == {"u": b"\x00", "s": "", "phone": "+15"}
    assert codec._read_common(body, len(body)) is None  # read by fastavro
    assert codec._patcher is not None
    patched = codec._patcher.emptied(body, [("phone",)])
    assert patched == body[:-5] + b"\x00"  # the phone field: 0x02, then "+15" with its length
    assert codec.decode(patched)[1] == {**view, "phone": None}


_LIST_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Listed",
    "fields": [
        {"name": "names", "type": {"type": "array", "items": "string"}},
        {"name": "phone", "type": ["null", "string"]},
        {"name": "n", "type": "long"},
        {"name": "email", "type": ["null", "string"]},
    ],
}


def test_a_body_not_as_fastavro_writes_it_keeps_its_other_bytes() -> None:
    """An array in two blocks, one with a negative count and its size, and a long with
    a redundant continuation byte: fastavro reads them, and the patch empties the
    fields after them without writing those again."""
    names = b"\x01" + b"\x04" + b"\x02a" + b"\x02" + b"\x02b" + b"\x00"  # -1 block, 2 bytes
    body = names + b"\x02\x06+15" + b"\x81\x00" + b"\x02\x02e"
    codec = _codec(_LIST_SCHEMA)
    native, view = codec.decode(body)
    assert view == {"names": ["a", "b"], "phone": "+15", "n": -1, "email": "e"}
    patched = codec.encode_body_without(body, native, [("phone",), ("email",)])
    assert patched == names + b"\x00" + b"\x81\x00" + b"\x00"
    assert isinstance(patched, bytes)
    assert codec.decode(patched)[1] == {**view, "phone": None, "email": None}


def test_a_body_the_walk_does_not_follow_is_written_again() -> None:
    """A union index of -1 (fastavro reads the last branch) is not walked: the record is
    written again, as before."""
    body = b"\x00" + b"\x01\x06+15" + b"\x02" + b"\x00"
    codec = _codec(_LIST_SCHEMA)
    native, view = codec.decode(body)
    assert view["phone"] == "+15"
    assert codec._patcher is not None
    with pytest.raises(PatchError):
        codec._patcher.emptied(body, [("phone",)])
    written = codec.encode_without(native, [("phone",)])
    assert codec.encode_body_without(body, native, [("phone",)]) == written
    assert written == b"\x00\x00\x02\x00"


_ODD_SCHEMA: dict[str, Any] = {
    "type": "record",
    "name": "Odd",
    "fields": [
        {"name": "n", "type": "long"},
        {"name": "u", "type": ["null", "string"]},
        {"name": "e", "type": {"type": "enum", "name": "K", "symbols": ["A", "B", "C"]}},
    ],
}


@pytest.mark.parametrize(
    "body",
    [
        b"\xff" * 9 + b"\x01" + b"\x00\x00",  # a ten-byte varint: the largest long
        b"\xff" * 9 + b"\x7f" + b"\x00\x00",  # ten bytes, wider than 64 bits
        b"\xff" * 10 + b"\x01" + b"\x00\x00",  # eleven bytes
        b"\x02" + b"\x01\x02x" + b"\x00",  # a union index of -1
        b"\x02" + b"\x80\x00" + b"\x00",  # a union index of 0 in two bytes
        b"\x02\x00" + b"\x03",  # an enum index of -2
        b"\x02\x00" + b"\x84\x00",  # an enum index of 2 in two bytes
        b"\x02\x00" + b"\x06",  # an enum index out of range
    ],
)
def test_bytes_the_generated_reader_leaves_are_read_by_fastavro(body: bytes) -> None:
    """The same record or the same failure as schemaless_reader, whichever read it."""
    codec = _codec(_ODD_SCHEMA)
    stream = io.BytesIO(body)
    try:
        expected = fastavro.schemaless_reader(stream, fastavro.parse_schema(_ODD_SCHEMA), None)
    except Exception as exc:  # what the bytes make fastavro raise
        with pytest.raises(DecodeError, match=type(exc).__name__):
            codec.decode(body)
        return
    assert stream.tell() == len(body)
    assert codec.decode(body)[1] == expected


def test_field_names_are_data_in_the_generated_code() -> None:
    """fastavro takes any field name; a name that looks like Python is a dict key like
    any other, in the reader and in the patch."""
    name = "a'}\n__import__('os')  # \"\\"
    schema = {
        "type": "record",
        "name": "Names",
        "fields": [
            {"name": name, "type": "string"},
            {"name": "phone", "type": ["null", "string"]},
        ],
    }
    codec = _codec(schema)
    body = _body(schema, {name: "x", "phone": "+15"})
    starts = [0, 2, len(body)]
    assert codec._read_common(body, len(body)) == ({name: "x", "phone": "+15"}, len(body), starts)
    native, _ = codec.decode(body)
    patched = codec.encode_body_without(body, native, [("phone",)])
    assert patched == codec.encode_without(native, [("phone",)]) == b"\x02x\x00"
